"""The scene generator and its file formats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.data.scenes import LANDMARKS, make_scenes, write_coco, write_masks, write_yolo
from cnnlab.data.yolo import parse_label_file, read_yolo_folder
from cnnlab.errors import CnnlabError


def test_scenes_are_seeded_and_annotations_consistent() -> None:
    a, b = make_scenes(20, seed=5, image_size=96), make_scenes(20, seed=5, image_size=96)
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b, strict=True))
    counts = [len(s.labels) for s in a]
    assert min(counts) == 0 and max(counts) <= 6
    for s in a:
        assert s.image.shape == (96, 96, 3) and s.image.dtype == np.uint8
        for label, box, mask, marks in zip(
            s.labels, s.boxes_xyxy, s.masks, s.landmarks, strict=True
        ):
            rows, cols = np.nonzero(mask)
            assert (box == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]).all()
            assert 0 <= label < 3 and marks.shape == (len(LANDMARKS), 2)
        if len(s.labels) > 1:
            assert not (s.masks[0] & s.masks[1]).any()  # visible masks never overlap
        sem = s.semantic
        assert set(np.unique(sem)) <= {0, 1, 2, 3}


def test_options() -> None:
    scenes = make_scenes(
        10, seed=1, image_size=64, num_classes=5, min_objects=2, max_objects=2, max_occlusion=1.0
    )
    assert all(len(s.labels) == 2 for s in scenes)
    assert scenes[0].class_names[3:] == ("triangle", "star")
    with pytest.raises(CnnlabError):
        make_scenes(1, num_classes=20)
    from cnnlab.data.scenes import check_scene_size

    assert sum(len(s.labels) for s in make_scenes(50, image_size=16)) == 0  # all background
    with pytest.raises(CnnlabError, match="--image-size 16: scenes need 32 pixels or more"):
        check_scene_size(16)
    from cnnlab.data.scenes import check_scene_memory

    big = make_scenes(1, seed=0, image_size=600)[0]  # larger than the 512 px textures
    assert big.image.shape == (600, 600, 3) and big.image.std() > 10  # textured, not flat
    check_scene_memory(4000, 128)  # the detection default: about 0.6 GiB
    with pytest.raises(CnnlabError, match=r"--images 1000000000 at 128 px needs about 1\d{5}"):
        check_scene_memory(10**9, 128)  # would be killed by the OS half-way, without a word
    # --max-objects 100000 drew for minutes on end, to show at most ~25
    from cnnlab.engine.detect import DetectConfig

    assert DetectConfig(max_objects=50).max_objects == 50
    with pytest.raises(CnnlabError, match="--max-objects 51: at most 50"):
        DetectConfig(max_objects=51)
    with pytest.raises(CnnlabError, match="--max-objects 100000: at most 50"):
        make_scenes(1, max_objects=100_000)


def test_writers_round_trip(tmp_path: Path) -> None:
    scenes = make_scenes(6, seed=2, image_size=64)
    root = write_yolo(scenes, tmp_path / "yolo")
    items, names = read_yolo_folder(root)
    assert names == ["pedestrian", "car", "motorcycle"] and len(items) == 6
    for scene, item in zip(scenes, items, strict=True):
        assert np.array_equal(item.labels, scene.labels)
        x1, y1, x2, y2 = (scene.boxes_xyxy / 64).T
        expected = np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], 1)
        assert np.allclose(item.boxes_cxcywh, expected, atol=1e-5)
    coco = json.loads(write_coco(scenes, tmp_path / "coco").read_text())
    assert len(coco["annotations"]) == sum(len(s.labels) for s in scenes)
    assert coco["categories"][0] == {"id": 1, "name": "pedestrian", "keypoints": list(LANDMARKS)}
    root = write_masks(scenes, tmp_path / "masks")
    with Image.open(root / "masks" / "000000.png") as image:
        mask = np.asarray(image)
    assert np.array_equal(mask, scenes[0].semantic)


@pytest.mark.parametrize(
    "line, message",
    [
        ("0 0.5 0.5 0.2", "expected 'class cx cy w h' or a polygon"),
        ("0 0.1 0.1 0.5 0.5 0.9", r"expected .* \(a sixth number: a prediction file's conf"),
        ("1.5 0.5 0.5 0.2 0.2", "class id must be a whole number, got 1.5"),
        ("-1 0.5 0.5 0.2 0.2", "unknown class id -1"),
        ("0 0.1 0.1 0.5 0.5 0.9 0.9", "the polygon has no area"),
        ("0 0.1 0.1 0.5 0.5 1.2 0.3", "a polygon point lies outside the image"),
        ("0 0.5 0.5 x 0.2", "not numbers"),
        ("7 0.5 0.5 0.2 0.2", "unknown class id 7"),
        ("0 0.5 0.5 -0.2 0.2", "box has a negative or zero size"),
        ("0 0.95 0.5 0.2 0.2", "box lies outside the image$"),
        ("0 73 47 62 39", r"box lies outside the image \(pixel coordinates\? YOLO labels"),
        ("0 10 10 50 50 90 10", r"a polygon point lies outside the image \(pixel coord"),
    ],
)
def test_bad_yolo_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "a.txt"
    path.write_text(f"1 0.5 0.5 0.2 0.2\n{line}\n")
    with pytest.raises(CnnlabError, match=f"a.txt:2: {message}"):
        parse_label_file(path, 3)


def test_a_class_id_written_as_a_float_is_read(tmp_path: Path) -> None:
    """Some exporters write the class as "2.0"; Ultralytics reads it as class 2, so do we."""
    path = tmp_path / "a.txt"
    path.write_text("2.0 0.5 0.5 0.2 0.2\n1 0.4 0.4 0.2 0.2\n")
    labels, boxes, _ = parse_label_file(path, 3)
    assert labels.tolist() == [2, 1] and boxes.shape == (2, 4)


def _split_layout(root: Path, ultralytics: bool) -> int:
    """``write_yolo``'s flat folder moved into train/val/test folders: images/train/ and
    labels/train/ (Ultralytics) or train/images/ and train/labels/ (Roboflow, "valid").
    Returns the number of objects."""
    scenes = make_scenes(9, seed=3, image_size=32)
    flat = write_yolo(scenes, root / "flat")
    for k, image in enumerate(sorted((flat / "images").iterdir())):
        split = ("train", "val" if ultralytics else "valid", "test")[k % 3]
        for kind, file in (("images", image), ("labels", flat / "labels" / f"{image.stem}.txt")):
            folder = root / kind / split if ultralytics else root / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            if file.exists():
                file.rename(folder / file.name)
    return sum(len(s.labels) for s in scenes)


@pytest.mark.parametrize("ultralytics", [True, False])
def test_yolo_split_layouts_give_their_splits(tmp_path: Path, ultralytics: bool) -> None:
    from cnnlab.data.yolo import folder_splits

    objects = _split_layout(tmp_path, ultralytics)
    (tmp_path / "data.yaml").write_text("nc: 3\nnames:\n  0: pedestrian\n  1: car\n  2: bike\n")
    items, names = read_yolo_folder(tmp_path)
    assert names == ["pedestrian", "car", "bike"] and len(items) == 9
    assert sum(len(i.labels) for i in items) == objects
    splits = folder_splits(items)
    assert splits is not None and sorted(splits) == ["test", "train", "val"]
    for split, idx in splits.items():
        assert len(idx) == 3
        folders = {
            items[i].image.parent.name if ultralytics else items[i].image.parts[-3] for i in idx
        }
        assert folders == {split if ultralytics or split != "val" else "valid"}


def test_flat_yolo_folder_has_no_splits_and_yaml_names_list(tmp_path: Path) -> None:
    from cnnlab.data.yolo import folder_splits

    root = write_yolo(make_scenes(4, seed=1, image_size=32), tmp_path / "y")
    (root / "classes.txt").unlink()
    (root / "data.yaml").write_text("names: [p, c, m]\n")
    items, names = read_yolo_folder(root)
    assert names == ["p", "c", "m"] and folder_splits(items) is None
    (root / "data.yaml").write_text("names: [7, 8, 9]\n")  # digits as class names: YAML ints
    assert read_yolo_folder(root)[1] == ["7", "8", "9"]
    (root / "labels" / "000001.txt").rename(root / "labels" / "lost.txt")  # its image: no labels
    with pytest.warns(
        UserWarning, match=r"1 label file with no image, left out, e\.g\. labels/lost\.txt"
    ):
        items = read_yolo_folder(root)[0]
    assert len(items[1].labels) == 0


@pytest.mark.parametrize(
    "damage, message",
    [
        ("no labels", "labels: missing"),
        ("renamed labels", r"no image has a label file .*; labels/img_000000\.txt matches no"),
        ("no names", "classes.txt: missing"),
        ("bad yaml", "data.yaml: not readable YAML"),
        ("yaml without names", "data.yaml: 'names' must be"),
        ("no images folder", "no images/ folder"),
    ],
)
def test_broken_yolo_folders_say_what_is_wrong(tmp_path: Path, damage: str, message: str) -> None:
    import shutil

    root = write_yolo(make_scenes(3, seed=1, image_size=32), tmp_path / "y")
    if damage == "no labels":
        shutil.rmtree(root / "labels")
    elif damage == "renamed labels":
        for f in (root / "labels").iterdir():
            f.rename(f.with_name(f"img_{f.name}"))
    elif damage == "no images folder":
        (root / "images").rename(root / "pictures")
    else:
        (root / "classes.txt").unlink()
        if damage != "no names":
            text = "names: [a, b\n" if damage == "bad yaml" else "nc: 3\n"
            (root / "data.yaml").write_text(text)
    with pytest.raises(CnnlabError, match=message):
        read_yolo_folder(root)


def test_data_scenes_writes_what_the_readers_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``cnnlab data scenes`` in each format reads back with the loader that format feeds, with
    the same objects; an existing non-empty folder is refused and left as it was."""
    from cnnlab.cli import main
    from cnnlab.engine.detection_data import coco_data
    from cnnlab.engine.segment_data import folder_segmentation

    counts = {}
    for fmt in ("yolo", "coco", "masks", "yolo-seg"):
        argv = ["data", "scenes", "--format", fmt, "--out", str(tmp_path / fmt), "--json"]
        assert main([*argv, "--images", "6", "--image-size", "48", "--seed", "3"]) == 0
        counts[fmt] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["objects"]
    assert len(set(counts.values())) == 1  # one seed, the same scenes in every format
    items, names = read_yolo_folder(tmp_path / "yolo")
    assert len(items) == 6 and sum(len(i.labels) for i in items) == counts["yolo"]
    coco = coco_data(str(tmp_path / "coco" / "annotations.json"), 48)
    assert sum(len(b) for b in coco.boxes) == counts["coco"] and coco.class_names == names
    seg = folder_segmentation(tmp_path / "masks", 48)
    assert seg.masks.shape == (6, 48, 48) and seg.class_names[1:] == names
    polygons = folder_segmentation(tmp_path / "yolo-seg", 48)  # polygon labels: painted
    assert (polygons.masks == seg.masks).float().mean() > 0.98
    before = sorted(p.name for p in (tmp_path / "yolo").iterdir())
    assert main(["data", "scenes", "--format", "yolo", "--out", str(tmp_path / "yolo")]) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "yolo").iterdir()) == before


def test_text_files_with_a_byte_order_mark_or_not_text(tmp_path: Path) -> None:
    """Windows editors start UTF-8 files with a byte-order mark: class lists, YOLO labels and
    COCO files read the same with it; a file that is not text is a one-line error."""
    from cnnlab.engine.detection_data import coco_data

    root = write_yolo(make_scenes(3, seed=4, image_size=32), tmp_path / "y")
    plain = read_yolo_folder(root)
    for f in [root / "classes.txt", *(root / "labels").iterdir()]:
        f.write_bytes(b"\xef\xbb\xbf" + f.read_bytes())
    items, names = read_yolo_folder(root)
    assert names == plain[1] and all(
        np.array_equal(a.boxes_cxcywh, b.boxes_cxcywh) for a, b in zip(items, plain[0], strict=True)
    )
    (root / "classes.txt").write_bytes(b"\xff\xfe\x00car")
    with pytest.raises(CnnlabError, match=r"classes\.txt: not a UTF-8 text file"):
        read_yolo_folder(root)
    coco = write_coco(make_scenes(3, seed=4, image_size=32), tmp_path / "c")
    coco.write_bytes(b"\xef\xbb\xbf" + coco.read_bytes())
    assert len(coco_data(str(coco), 32).images) == 3
    coco.write_bytes(b"\xff\xfe\x00{")
    with pytest.raises(CnnlabError, match=r"annotations\.json: not a COCO annotation file"):
        coco_data(str(coco), 32)
    # a missing file, or a folder, is named as such, not as "not a COCO annotation file
    # (FileNotFoundError: [Errno 2] ...)"
    with pytest.raises(CnnlabError, match=r"none\.json: no such file$"):
        coco_data(str(tmp_path / "none.json"), 32)
    (tmp_path / "d.json").mkdir()
    with pytest.raises(CnnlabError, match=r"d\.json: a folder, not a COCO \.json$"):
        coco_data(str(tmp_path / "d.json"), 32)


def test_dataset_yaml_is_followed_as_ultralytics_does(tmp_path: Path) -> None:
    """``--data data.yaml``: train a folder, val a ``.txt`` list (``./`` lines from the list's
    folder), test a list of folders; labels where Ultralytics looks (``images`` -> ``labels``);
    ``path`` relative to the YAML, Roboflow's ``../train/images`` tried without ``../``."""
    from cnnlab.data.yolo import folder_splits, label_file_of

    objects = _split_layout(tmp_path / "d", ultralytics=True)  # d/images/{train,val,test}
    d = tmp_path / "d"
    (d / "val.txt").write_text(
        "".join(f"./images/val/{p.name}\n" for p in (d / "images/val").iterdir())
    )
    yaml_file = tmp_path / "cfg" / "mine.yaml"
    yaml_file.parent.mkdir()
    yaml_file.write_text(
        "path: ../d\ntrain: images/train\nval: val.txt\ntest: [images/test]\nnc: 3\n"
        "names: {0: pedestrian, 1: car, 2: bike}\n"
    )
    items, names = read_yolo_folder(yaml_file)
    assert names == ["pedestrian", "car", "bike"] and len(items) == 9
    assert sum(len(i.labels) for i in items) == objects
    splits = folder_splits(items)
    assert splits is not None
    assert {k: {items[i].image.parent.name for i in v} for k, v in splits.items()} == {
        "train": {"train"},
        "val": {"val"},
        "test": {"test"},
    }
    assert label_file_of(Path("x/images/a/images/b.jpg")) == Path("x/images/a/labels/b.txt")
    assert label_file_of(Path("x/pics/b.png")) == Path("x/pics/b.txt")
    # Roboflow: the YAML beside train/ and valid/, entries written as ../train/images
    rf = tmp_path / "rf"
    _split_layout(rf, ultralytics=False)
    (rf / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\nnames: [p, c, m]\n"
    )
    items, _ = read_yolo_folder(rf / "data.yaml")
    assert sorted(set(i.split for i in items)) == ["train", "val"] and len(items) == 6


@pytest.mark.parametrize(
    "text, message",
    [
        ("train: images/train\nnames: [a, b, c]\n", "needs 'train' and 'val'"),
        ("train: images/train\nval: nowhere\nnames: [a, b, c]\n", r"val: .*nowhere does not exist"),
        ("train: images/train\nval: images/val\nnc: 2\nnames: [a, b, c]\n", "nc is 2 but"),
        ("path: gone\ntrain: a\nval: b\nnames: [a, b, c]\n", r"path: .*gone is not a folder"),
        ("train: images/train\nval: bad.txt\nnames: [a, b, c]\n", r"bad\.txt:2: .*z\.png does not"),
        ("train: images/train\nval: images/val\nnames: [a]\n", r"unknown class id"),
        ("train: images/train\nval: [images/val, 3]\nnames: [a, b, c]\n", "expected a path, got 3"),
    ],
)
def test_bad_dataset_yaml_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    _split_layout(tmp_path, ultralytics=True)
    first_val = sorted((tmp_path / "images/val").iterdir())[0].name
    (tmp_path / "bad.txt").write_text(f"images/val/{first_val}\nimages/val/z.png\n")
    (tmp_path / "data.yaml").write_text(text)
    with pytest.raises(CnnlabError, match=message):
        read_yolo_folder(tmp_path / "data.yaml")


def test_dataset_yaml_warns_of_images_in_two_splits(tmp_path: Path) -> None:
    _split_layout(tmp_path, ultralytics=True)
    (tmp_path / "data.yaml").write_text(
        "train: [images/train, images/val]\nval: images/val\nnames: [a, b, c]\n"
    )
    with pytest.warns(UserWarning, match=r"3 images in two splits"):
        items, _ = read_yolo_folder(tmp_path / "data.yaml")
    assert len(items) == 9
    for label in (tmp_path / "labels").rglob("*.txt"):
        label.unlink()
    (tmp_path / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [a, b]\n")
    missing = r"no image has a label file .*labels/train/000000\.txt is missing"
    with pytest.raises(CnnlabError, match=missing):
        read_yolo_folder(tmp_path / "data.yaml")


def test_polygon_labels_round_trip_to_the_scenes_maps(tmp_path: Path) -> None:
    """``data scenes --format yolo-seg``: each object's outline, read back by the segmentation
    reader, paints nearly the scenes' own class maps (only the smaller part of an object that
    another splits in two, and edge pixels of the half-pixel simplification, differ); a plain
    rectangle's outline is its pixel edges."""
    import torch

    from cnnlab.data.scenes import mask_outline, write_yolo_polygons
    from cnnlab.engine.segment_data import yolo_segmentation

    scenes = make_scenes(12, seed=4, image_size=64)
    write_yolo_polygons(scenes, tmp_path / "ys")
    data = yolo_segmentation(tmp_path / "ys", 64)
    truth = torch.from_numpy(np.stack([s.semantic for s in scenes]).astype(np.int64))
    assert (data.masks == truth).float().mean() > 0.99
    on_objects = truth > 0
    assert (data.masks[on_objects] == truth[on_objects]).float().mean() > 0.95
    rectangle = np.zeros((8, 8), bool)
    rectangle[2:5, 3:7] = True
    corners = mask_outline(rectangle)
    assert corners.min(0).tolist() == [3, 2] and corners.max(0).tolist() == pytest.approx(
        [7, 5], abs=0.25
    )
    assert mask_outline(np.zeros((4, 4), bool)) is None
