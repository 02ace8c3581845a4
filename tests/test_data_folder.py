"""Image folders, the faces set, and bad files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_folder
from PIL import Image

from cnnlab.cli import main
from cnnlab.data.classification import load_classification, load_faces
from cnnlab.data.folder import load_labelled_folder
from cnnlab.errors import CnnlabError


def test_folder_loads_and_skips_bad_files(image_folder: Path) -> None:
    data = load_classification(str(image_folder), image_size=24, split_seed=1)
    assert data.class_names == ["blue", "green", "red"]
    assert sum(len(s) for s in data.splits.values()) == 36
    assert data.splits["train"].images.shape[1:] == (3, 24, 24)
    assert data.splits["train"].images.dtype == torch.uint8
    assert len(data.skipped) == 3
    assert any("truncated.png" in s and "corrupt or truncated" in s for s in data.skipped)
    assert any("empty.jpg" in s for s in data.skipped)
    for split in ("val", "test"):  # stratified: every class in every split
        assert set(data.splits[split].labels.tolist()) == {0, 1, 2}
    gray = load_classification(str(image_folder), image_size=24, channels=1)
    assert gray.channels == 1


def test_hidden_files_and_folders_are_not_images(image_folder: Path) -> None:
    """macOS's ``._name.png`` metadata beside each copied file, and copies under hidden
    folders, are neither trained on, nor skipped with a warning, nor given to predict."""
    from cnnlab.data.folder import image_files, images_under

    (image_folder / "red" / "._000.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (image_folder / "red" / ".ipynb_checkpoints").mkdir()
    (image_folder / "red" / "000.png").rename(image_folder / "red" / ".ipynb_checkpoints" / "a.png")
    listed = images_under(image_folder / "red")
    assert listed and not any(p.name.startswith(".") or ".ipynb" in str(p) for p in listed)
    assert image_files([str(image_folder / "red")]) == [str(p) for p in listed]
    data = load_classification(str(image_folder), image_size=24, split_seed=1)
    assert sum(len(s) for s in data.splits.values()) == 35  # 000.png is now hidden
    assert len(data.skipped) == 3  # the same three bad files: no word about "._000.png"


def test_a_folders_images_are_given_in_natural_order(tmp_path: Path) -> None:
    """Frames a video tool wrote (``frame_1`` ... ``frame_10``) are predicted in their order,
    not with ``frame_10`` second as plain ``sorted`` lists them; subfolders likewise."""
    from cnnlab.data.folder import image_files

    names = ["frame_1.png", "frame_2.png", "frame_10.png", "part2/x.png", "part10/x.png"]
    for name in names:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    assert image_files([str(tmp_path)]) == [str(tmp_path / n) for n in names]


def test_a_folder_of_only_unreadable_files_is_an_error_naming_one(tmp_path: Path) -> None:
    from cnnlab.data.folder import image_files

    (tmp_path / "a.png").write_text("not an image")
    (tmp_path / "b.jpg").write_bytes(b"")
    skipped: list[str] = []
    with pytest.raises(
        CnnlabError, match=r"none of its 2 image files can be read \(.*a.png: not an"
    ):
        image_files([str(tmp_path)], skipped)
    assert image_files([str(tmp_path)]) == [str(tmp_path / "a.png"), str(tmp_path / "b.jpg")]


@pytest.mark.parametrize("image_format", ["JPEG", "GIF", "BMP", "WEBP"])
def test_a_copy_cut_short_is_found_and_one_with_a_trailer_is_kept(
    tmp_path: Path, image_format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JPEG, GIF, BMP or WebP cut short (an interrupted copy) is passed over in a folder, as
    a cut-short PNG was: it used to stop a whole folder's prediction when read. One with bytes
    after its end (a camera's trailer after JPEG's end-of-image marker) is decoded to decide, and
    kept; a whole file is not decoded at all."""
    from cnnlab.data import images as images_module
    from cnnlab.data.folder import image_files

    pixels = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    whole = tmp_path / f"whole.{image_format.lower()}"
    Image.fromarray(pixels).save(whole, format=image_format)
    data = whole.read_bytes()
    (tmp_path / f"cut.{image_format.lower()}").write_bytes(data[: len(data) * 2 // 3])
    (tmp_path / f"trailer.{image_format.lower()}").write_bytes(data + b"\0\0SEFT trailer")
    from PIL import ImageFile

    decoded: list[str] = []
    load = ImageFile.ImageFile.load
    monkeypatch.setattr(
        ImageFile.ImageFile,
        "load",
        lambda im: decoded.append(getattr(im, "filename", "")) or load(im),
    )
    skipped: list[str] = []
    kept = image_files([str(tmp_path)], skipped)
    assert [Path(f).stem for f in kept] == ["trailer", "whole"]
    assert len(skipped) == 1 and "cut." in skipped[0] and "truncated" in skipped[0], skipped
    assert images_module.read_image(kept[0], "RGB").size == (48, 48)  # the trailer's reads
    assert any("trailer" in f for f in decoded) and not any("whole" in f for f in decoded)


def test_a_detection_or_segmentation_folder_is_not_two_classes(tmp_path: Path) -> None:
    """images/ + labels/ (or masks/) given to classify trained a classifier of two classes
    named "images" and "labels"; it is an error naming the command that reads it."""
    from cnnlab.data.scenes import make_scenes, write_masks, write_yolo

    scenes = make_scenes(6, seed=1, image_size=32)
    for root, words in (
        (
            write_yolo(scenes, tmp_path / "y"),
            "a detection dataset, not class folders (cnnlab detect",
        ),
        (
            write_masks(scenes, tmp_path / "m"),
            "segmentation dataset, not class folders (cnnlab segment",
        ),
    ):
        with pytest.raises(CnnlabError, match=re.escape(words)):
            load_classification(str(root), image_size=16)
        # scoring a classifier on it (eval --data) says the same, not "a class unknown"
        with pytest.raises(CnnlabError, match=re.escape(words) + r" eval --checkpoint"):
            load_labelled_folder(root, ["0", "1"], "test", image_size=16, channels=3)


def test_class_folders_are_not_a_detection_or_segmentation_folder(tmp_path: Path) -> None:
    """The other way round: class folders given to detect, localize or segment train said
    "classes.txt: missing"; now they name the command that reads them, split folders too."""
    from cnnlab.config import DetectConfig
    from cnnlab.engine.detection_data import load_detection_data
    from cnnlab.engine.segment_data import folder_segmentation

    flat = write_folder(tmp_path / "flat", per_class=2)
    write_folder(tmp_path / "split" / "train", per_class=2)
    for root in (flat, tmp_path / "split"):
        words = f"{root}: 3 folders of images (blue/, green/, red/) make a classification dataset"
        with pytest.raises(CnnlabError, match=re.escape(words) + ".*images/ with labels/"):
            load_detection_data(DetectConfig(data=str(root)))
        with pytest.raises(CnnlabError, match=re.escape(words) + ".*images/ with masks/"):
            folder_segmentation(root)
    # a folder that is neither still asks for what a detection folder needs
    (tmp_path / "bare").mkdir()
    with pytest.raises(CnnlabError, match=r"classes\.txt: missing"):
        load_detection_data(DetectConfig(data=str(tmp_path / "bare")))


def test_a_datasets_own_images_or_labels_folder_names_the_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--data yolo/images` said "yolo/images/classes.txt: missing"; it names the folder to give.
    A dataset that is itself called images (with its own images/ and labels/) is left alone."""
    from cnnlab.config import DetectConfig
    from cnnlab.data.scenes import make_scenes, write_masks, write_yolo
    from cnnlab.engine.detection_data import load_detection_data
    from cnnlab.engine.segment_data import folder_segmentation

    scenes = make_scenes(4, seed=0, image_size=32)
    write_yolo(scenes, tmp_path / "yolo")
    write_masks(scenes, tmp_path / "seg")
    for inner in ("images", "labels"):
        with pytest.raises(CnnlabError) as caught:
            load_detection_data(DetectConfig(data=str(tmp_path / "yolo" / inner)))
        assert str(caught.value) == (
            f"{tmp_path}/yolo/{inner}: the {inner}/ folder of a dataset; give the folder that "
            f"holds images/ and labels/: --data {tmp_path}/yolo"
        )
    with pytest.raises(CnnlabError, match=r"masks/ folder of a dataset; .* masks/: --data \S+seg$"):
        folder_segmentation(tmp_path / "seg" / "masks")
    monkeypatch.chdir(tmp_path / "yolo" / "images")
    with pytest.raises(CnnlabError, match=r"^\.: the images/ folder .*: --data \.\.$"):
        load_detection_data(DetectConfig(data="."))
    write_yolo(scenes, tmp_path / "ds" / "images")  # ds/images/{images,labels}, beside
    (tmp_path / "ds" / "labels").mkdir()  # a labels/ folder of the parent's
    load_detection_data(DetectConfig(data=str(tmp_path / "ds" / "images")))


def test_strict_stops_at_the_first_bad_file(image_folder: Path) -> None:
    with pytest.raises(CnnlabError, match=r"(empty\.jpg|notes\.png|truncated\.png)"):
        load_classification(str(image_folder), strict=True)


def test_presplit_folder(tmp_path: Path) -> None:
    write_folder(tmp_path / "ds" / "train", per_class=6)
    write_folder(tmp_path / "ds" / "val", per_class=2, seed=1)
    data = load_classification(str(tmp_path / "ds"), image_size=16)
    assert (len(data.splits["train"]), len(data.splits["val"])) == (18, 6)
    # no test/: no test split. The val images chose the best epoch; scored again as "test" they
    # would flatter the model
    assert len(data.splits["test"]) == 0
    stray = tmp_path / "ds" / "val" / "purple"  # a class train/ lacks: not dropped in silence
    stray.mkdir()
    (tmp_path / "ds" / "val" / "red").rename(stray / "red")
    with pytest.raises(CnnlabError, match=r"val/purple: a class that .*train does not have"):
        load_classification(str(tmp_path / "ds"), image_size=16)
    # train/, valid/, test/ as Roboflow and Kaggle exports name them
    write_folder(tmp_path / "rf" / "train", per_class=6)
    write_folder(tmp_path / "rf" / "valid", per_class=2, seed=1)
    write_folder(tmp_path / "rf" / "test", per_class=3, seed=2)
    data = load_classification(str(tmp_path / "rf"), image_size=16)
    assert [len(data.splits[k]) for k in ("train", "val", "test")] == [18, 6, 9]
    # Train/, Test/ as some Kaggle sets name them: split folders, not two classes to learn
    write_folder(tmp_path / "kg" / "Train", per_class=6)
    write_folder(tmp_path / "kg" / "Validation", per_class=2, seed=1)
    write_folder(tmp_path / "kg" / "Test", per_class=3, seed=2)
    data = load_classification(str(tmp_path / "kg"), image_size=16)
    assert data.class_names == ["blue", "green", "red"]
    assert [len(data.splits[k]) for k in ("train", "val", "test")] == [18, 6, 9]


def test_empty_inputs_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "none").mkdir()
    with pytest.raises(CnnlabError, match="no class folders"):
        load_classification(str(tmp_path / "none"))
    root = write_folder(tmp_path / "ds", per_class=4)
    for f in (root / "green").iterdir():
        f.unlink()
    with pytest.raises(CnnlabError, match=r"class folder.*no usable image: green"):
        load_classification(str(root))
    with pytest.raises(CnnlabError, match="not a bundled dataset"):
        load_classification(str(tmp_path / "missing"))
    (root / "green").rmdir()
    for other in [d for d in root.iterdir() if d.is_dir()][1:]:
        for f in other.iterdir():
            f.unlink()
        other.rmdir()
    with pytest.raises(CnnlabError, match="one class folder"):  # a 1-class "classifier"
        load_classification(str(root))


def test_decompression_bomb_is_refused(tmp_path: Path, monkeypatch) -> None:
    root = write_folder(tmp_path / "ds", per_class=4)
    Image.new("L", (120, 120)).save(root / "red" / "bomb.png")
    Image.new("L", (80, 80)).save(root / "red" / "near.png")  # Pillow only warns under 2x
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)  # 40x48 images pass, 120x120 is a bomb
    data = load_classification(str(root), image_size=16)
    for name, pixels in (("bomb.png", "14,400"), ("near.png", "6,400")):
        said = f"{name}: an image of {pixels} pixels, over the 5,000 read here (Pillow's guard"
        assert any(said in s for s in data.skipped), data.skipped


def test_faces_is_the_real_lfw_subset() -> None:
    data = load_faces(image_size=32)
    assert data.class_names == ["not_face", "face"]
    assert sum(len(s) for s in data.splits.values()) == 200
    labels = torch.cat([s.labels for s in data.splits.values()])
    assert torch.bincount(labels).tolist() == [100, 100]


def test_train_on_a_folder(
    image_folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "run"
    assert (
        main(
            [
                "classify",
                "train",
                "--data",
                str(image_folder),
                "--model",
                "lenet5",
                "--epochs",
                "12",
                "--batch-size",
                "8",
                "--out",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(result["skipped_files"]) == 3
    assert result["test_accuracy"] >= 0.8  # colour squares are easy
    config = json.loads((out / "config.json").read_text())
    assert config["augment_resolved"] == ["flip", "rcrop", "color"]
    assert (
        main(
            [
                "classify",
                "predict",
                "--checkpoint",
                str(out / "best.pt"),
                str(image_folder / "red" / "001.png"),
                "--json",
            ]
        )
        == 0
    )
    pred = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["predictions"][0]
    assert pred["prediction"] == "red"
    # a folder's three unreadable files are passed over with a line each, as training does; the
    # rest are predicted (one bad file used to stop the whole folder)
    predict = ["classify", "predict", "--checkpoint", str(out / "best.pt"), "--json"]
    assert main([*predict, str(image_folder)]) == 0
    captured = capsys.readouterr()
    said = json.loads(captured.out.strip().splitlines()[-1])
    assert sorted(Path(s.split(": ")[0]).name for s in said["skipped_files"]) == [
        "empty.jpg",
        "notes.png",
        "truncated.png",
    ]
    assert len(said["predictions"]) == 36  # the 39 images of the folder, less those three
    assert captured.err.count("skipped ") == 3
    assert main([*predict, str(image_folder / "red" / "truncated.png")]) == 2  # named: refused
    assert "truncated.png: corrupt or truncated image" in capsys.readouterr().err
    # --csv holds every prediction, flat; the terminal shows the first SHOWN
    import csv

    import cnnlab.cli.shown as cli_shown

    monkeypatch.setattr(cli_shown, "SHOWN", 5)
    table = tmp_path / "sheets" / "pred.csv"
    assert main([*predict[:-1], str(image_folder), "--csv", str(table)]) == 0
    shown = capsys.readouterr().out
    assert f"the first 5 of 36 images shown; all in {table}" in " ".join(shown.split())
    assert shown.count(".png") == 5  # five rows of files
    with table.open(newline="") as f:
        written = list(csv.DictReader(f))
    assert [(r["source"], r["prediction"], r["label"]) for r in written] == [
        (r["source"], r["prediction"], r["label"]) for r in said["predictions"]
    ]
    top = said["predictions"][0]["top_k"]
    assert float(written[0]["probability_2"]) == pytest.approx(top[1][1])
    assert written[0]["class_3"] == top[2][0]
    assert main([*predict, str(image_folder), "--csv", str(tmp_path)]) == 2  # a folder
    assert "a folder; give the CSV's file name" in capsys.readouterr().err
    # a folder of many files shows how far its prediction got (a bar on stderr, as training's
    # decoding does); few files, or a stderr that is no terminal, show none (no bar at all)
    import rich.console
    import rich.progress

    from cnnlab.data import images as image_io

    bars: list[str] = []

    def track(items, description, transient, console):
        assert transient and console.stderr  # gone when done, never on --json's stdout
        bars.append(description)
        return items

    monkeypatch.setattr(rich.progress, "track", track)
    monkeypatch.setattr(rich.console.Console, "is_terminal", property(lambda self: True))
    assert main([*predict, str(image_folder)]) == 0
    assert bars == []
    monkeypatch.setattr(image_io, "MANY_FILES", 36)
    assert main([*predict, str(image_folder)]) == 0
    assert bars == ["predicting"]
    monkeypatch.setattr(rich.console.Console, "is_terminal", property(lambda self: False))
    assert main([*predict, str(image_folder)]) == 0
    assert bars == ["predicting"]
    capsys.readouterr()
    if Path("/proc/self").is_dir():  # nothing can be made there: refused before predicting
        assert main([*predict, str(image_folder), "--csv", "/proc/self/p.csv"]) == 2
        assert "/proc/self/p.csv: cannot be written" in capsys.readouterr().err
    (tmp_path / "afile").write_text("")  # was "cannot be written (File exists)"
    assert (
        main([*predict, str(image_folder), "--csv", str(tmp_path / "afile" / "d" / "p.csv")]) == 2
    )
    assert f"p.csv: cannot be written ({tmp_path}/afile is a file, where a folder is needed)" in (
        capsys.readouterr().err
    )
    evaluate = ["classify", "eval", "--checkpoint", str(out / "best.pt"), "--json"]
    assert main(evaluate) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])["data_changed"] is False
    assert "warning" not in captured.err
    # images added since training: the split made again is another one, and eval says so
    for i in range(40, 52):
        Image.new("RGB", (24, 24), (200, 40, 40)).save(image_folder / "red" / f"{i:03d}.png")
    assert main(evaluate) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])["data_changed"] is True
    assert main(["classify", "train", "--resume", str(out / "last.pt"), "--json"]) == 0
    assert "warning: the train split made again now differs" in capsys.readouterr().err
    assert (
        "warning: the test split made again now differs from the one this checkpoint"
        in captured.err
    )


def test_train_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "none").mkdir()
    assert main(["classify", "train", "--data", str(tmp_path / "none")]) == 2
    assert "no class folders" in capsys.readouterr().err
    assert main(["classify", "train", "--augment", "sparkle"]) == 2
    assert "unknown augmentation 'sparkle'" in capsys.readouterr().err


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path: Path) -> None:
    """Pillow's own conversion clips 16-bit grey at 255 (a scientific PNG turns white); read as
    8 bits it keeps its gradient: 0 -> 0, 65535 -> 255, in order."""
    import numpy as np
    from PIL import Image

    from cnnlab.data.images import read_image

    ramp = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "ramp16.png")
    grey = np.asarray(read_image(tmp_path / "ramp16.png"), dtype=int).ravel()
    assert grey[0] == 0 and grey[-1] == 255 and (np.diff(grey) >= 0).all()
    assert len(np.unique(grey)) > 200
    assert np.asarray(read_image(tmp_path / "ramp16.png", "RGB")).shape == (32, 32, 3)


@pytest.mark.parametrize(
    "values, dtype, expected_max",
    [
        (255, np.int32, 255),  # an 8-bit picture saved as 32-bit "I" stays as it was (was /257)
        (65535, np.int32, 255),  # 16-bit values held in "I"
        (1.0, np.float32, 255),  # a float image in [0, 1] (was black: convert clips to 0/1)
        (200.0, np.float32, 200),  # a float image on the 0-255 scale
    ],
)
def test_deep_grey_images_keep_their_range(
    tmp_path: Path, values: float, dtype: type, expected_max: int
) -> None:
    from PIL import Image

    from cnnlab.data.images import read_image

    ramp = (np.linspace(0, 1, 16 * 16) * values).reshape(16, 16).astype(dtype)
    Image.fromarray(ramp).save(tmp_path / "deep.tif")
    grey = np.asarray(read_image(tmp_path / "deep.tif"), dtype=int).ravel()
    assert grey[0] == 0 and grey.max() == expected_max and (np.diff(grey) >= 0).all()


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    """A photo stored sideways with EXIF orientation 6 ("rotate 90 clockwise to view") reads
    upright, as viewers show it: a 40x20 stored image becomes 20x40."""
    import numpy as np
    from PIL import Image

    from cnnlab.data.images import read_image

    stored = Image.fromarray(np.zeros((20, 40, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    stored.save(tmp_path / "phone.jpg", exif=exif)
    assert read_image(tmp_path / "phone.jpg", "RGB").size == (20, 40)
    from cnnlab.data.images import displayed_size

    assert displayed_size(tmp_path / "phone.jpg") == (20, 40)  # from the header, turned too


def test_big_jpegs_decode_at_reduced_scale_with_the_same_result(tmp_path: Path) -> None:
    """A 2400x1800 photo for a 64 px input is decoded at 1/8 scale (libjpeg DCT scaling) yet
    gives the image the full decode gives, to within a grey level on average; both sides stay
    at least twice the input, and other formats decode in full."""
    import numpy as np
    from PIL import Image
    from skimage import data

    from cnnlab.data.folder import fit_image, image_tensor, image_to_uint8
    from cnnlab.data.images import read_image

    photo = Image.fromarray(data.astronaut()).resize((2400, 1800))
    photo.save(tmp_path / "big.jpg", quality=92)
    photo.save(tmp_path / "big.png")
    assert read_image(tmp_path / "big.jpg", "RGB", at_least=128).size == (300, 225)
    from cnnlab.data.images import displayed_size

    assert displayed_size(tmp_path / "big.jpg") == (2400, 1800)  # the frame predictions use
    assert read_image(tmp_path / "big.png", "RGB", at_least=128).size == (2400, 1800)
    for resize in ("center-crop", "stretch"):
        fast = image_to_uint8(tmp_path / "big.jpg", 64, 3, resize).float()
        full = image_tensor(fit_image(read_image(tmp_path / "big.jpg", "RGB"), 64, resize))
        assert fast.shape == (3, 64, 64) and (fast - full.float()).abs().mean() < 1.0
    grey = image_to_uint8(tmp_path / "big.jpg", 64, 1).float()
    full_grey = image_tensor(fit_image(read_image(tmp_path / "big.jpg", "L"), 64))
    assert (grey - full_grey.float()).abs().mean() < 1.0
    assert np.asarray(read_image(tmp_path / "big.jpg", "RGB", at_least=5000)).shape[:2] == (
        1800,
        2400,
    )


def test_a_folder_too_big_for_memory_is_refused_before_decoding(
    image_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The images are held decoded (uint8): a set that needs more than half the machine's
    memory is refused with the estimate, before any file is decoded."""
    import cnnlab.data.memory as memory

    decoded = []
    monkeypatch.setattr("cnnlab.data.folder.image_to_uint8", lambda *a: decoded.append(a))
    monkeypatch.setattr(memory, "physical_memory", lambda: 2 * 3 * 64 * 64 * 10)  # 10 images
    with pytest.raises(CnnlabError, match=r"images at 64 px needs about .* GiB in memory"):
        load_classification(str(image_folder), image_size=64)
    assert decoded == []
    monkeypatch.setattr(memory, "physical_memory", lambda: None)  # an OS that does not say
    memory.require_memory(10**15, "anything", "")


@pytest.mark.parametrize("source, size", [("digits", 2000), ("faces", 4000)])
def test_a_bundled_set_too_big_at_its_image_size_is_refused(
    source: str, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``classify train --image-size 20000`` on the digits (or ``faces train``, which reads
    them) asked torch for 2.9 TB and ended in its allocator's traceback."""
    import cnnlab.data.memory as memory

    monkeypatch.setattr(memory, "physical_memory", lambda: 8 * 2**30)
    with pytest.raises(CnnlabError, match=rf"{source}: .* images at {size} px needs about"):
        load_classification(source, image_size=size)
    assert load_classification(source, image_size=64).image_size == 64


def test_a_bad_resize_mode_is_named_not_blamed_on_every_file(tmp_path: Path) -> None:
    """``resize="crop"`` from Python is one error naming the option: checked per file, it read
    as "no usable image (N unreadable)", as if every image were broken."""
    from cnnlab.data.folder import load_image_folder

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / name / f"{i}.png")
    with pytest.raises(CnnlabError, match="--resize must be center-crop or stretch, got 'crop'"):
        load_image_folder(tmp_path, image_size=8, resize="crop")
    assert len(load_image_folder(tmp_path, image_size=8, resize="stretch").class_names) == 2


def test_a_web_address_from_python_is_named_as_one() -> None:
    """``read_image("https://...")`` says nothing is fetched, not "https:/...: no such file"
    (a path keeps one of the two slashes); a drive letter is a path, not an address."""
    from cnnlab.data.images import read_image

    with pytest.raises(CnnlabError, match=r"^https://x\.org/a\.jpg: a web address; cnnlab reads"):
        read_image("https://x.org/a.jpg")
    with pytest.raises(CnnlabError, match=r"^C:/x\.png: no such file$"):
        read_image("C:/x.png")


def test_names_for_written_files_and_folders(tmp_path: Path) -> None:
    """What --as-dataset writes cannot overwrite itself: stems shared by two images are
    numbered, and class names become folder names that stay inside the dataset and apart."""
    from cnnlab.data.folder import class_folder_names, distinct_stems, new_dataset_folder

    assert distinct_stems(["a/x.png", "b/y.jpg"]) == ["x", "y"]
    assert distinct_stems(["a/0.png", "b/0.png", "c.png"]) == ["0_0", "1_0", "2_c"]
    assert distinct_stems(["0.png", "0.jpg"]) == ["0_0", "1_0"]
    assert class_folder_names(["cat", "a/b", "..", "", "crane", "crane"]) == [
        "cat",
        "a_b",
        "class_..",
        "class_",
        "crane_4",
        "crane_5",
    ]
    assert new_dataset_folder(tmp_path / "new") == tmp_path / "new"
    assert not (tmp_path / "new" / "dataset.tmp").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(CnnlabError, match="full: not empty"):
        new_dataset_folder(tmp_path / "full")
    with pytest.raises(CnnlabError, match=r"keep\.txt: a file"):
        new_dataset_folder(tmp_path / "full" / "keep.txt")
