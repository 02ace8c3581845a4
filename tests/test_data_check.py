"""``cnnlab data check``: a dataset counted per split and class as training reads it; the
oracle is the label files themselves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import COLOURS, write_folder
from PIL import Image

from cnnlab.cli import main
from cnnlab.data.scenes import make_scenes, write_masks
from cnnlab.engine.data_check import check_data


def _yolo_split_folder(root: Path) -> dict[str, list[list[int]]]:
    """A YOLO folder in Roboflow's split folders whose val split holds no 'b'; returns each
    split's label lines' classes, per image."""
    rng = np.random.default_rng(0)
    classes = {"train": [[0, 1], [1], [], [0, 0, 2]], "valid": [[0], [2, 2]], "test": [[1, 0, 2]]}
    for split, images in classes.items():
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir()
        for i, labels in enumerate(images):
            Image.fromarray(rng.integers(0, 255, (20, 40, 3), dtype=np.uint8)).save(
                root / split / "images" / f"{i}.png"
            )
            lines = [f"{c} 0.5 0.5 {0.1 * (c + 1):.1f} 0.2\n" for c in labels]
            (root / split / "labels" / f"{i}.txt").write_text("".join(lines))
    (root / "classes.txt").write_text("a\nb\nc\n")
    return {"train": classes["train"], "val": classes["valid"], "test": classes["test"]}


def test_boxes_are_counted_per_split_and_class(tmp_path: Path) -> None:
    truth = _yolo_split_folder(tmp_path)
    found = check_data("detect", str(tmp_path), 32)
    assert found["own_splits"] and list(found["splits"]) == ["train", "val", "test"]
    for split, images in truth.items():
        figures = found["splits"][split]
        assert figures["images"] == len(images)
        assert figures["boxes"] == sum(len(i) for i in images)
        assert figures["images_without_boxes"] == sum(not i for i in images)
        for c, name in enumerate("abc"):
            assert figures["per_class"][name]["boxes"] == sum(i.count(c) for i in images)
            assert figures["per_class"][name]["images"] == sum(c in i for i in images)
    a = found["splits"]["train"]["per_class"]["a"]
    assert (a["median_width"], a["median_height"]) == (pytest.approx(0.1), pytest.approx(0.2))
    assert found["problems"] == ["class 'b': no box in the val split"]


def test_classes_of_a_folder_and_pixels_of_masks(tmp_path: Path) -> None:
    write_folder(tmp_path / "colours", per_class=10)
    found = check_data("classify", str(tmp_path / "colours"), 32)
    totals = {n: sum(s["per_class"][n] for s in found["splits"].values()) for n in COLOURS}
    assert totals == dict.fromkeys(COLOURS, 10) and found["problems"] == []
    scenes = make_scenes(20, seed=1, image_size=48)
    write_masks(scenes, tmp_path / "masks")
    found = check_data("segment", str(tmp_path / "masks"), 48)
    everything = np.stack([s.semantic for s in scenes])
    assert sum(s["images"] for s in found["splits"].values()) == 20
    for figures in found["splits"].values():
        assert sum(c["pixels"] for c in figures["per_class"].values()) == pytest.approx(1, abs=1e-3)
    car = found["class_names"].index("car")
    held = sum(s["per_class"]["car"]["images"] for s in found["splits"].values())
    assert held == int((everything == car).reshape(20, -1).any(1).sum())


def test_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _yolo_split_folder(tmp_path / "yolo")
    assert main(["data", "check", "detect", "--data", str(tmp_path / "yolo"), "--json"]) == 0
    said = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert said["problems"] == ["class 'b': no box in the val split"]
    assert main(["data", "check", "detect", "--data", str(tmp_path / "yolo")]) == 0
    shown = capsys.readouterr().out
    assert "problem: class 'b': no box in the val split" in shown and "2 in 2" in shown
    argv = ["data", "check", "detect", "--data", str(tmp_path / "yolo"), "-o"]
    assert main([*argv, str(tmp_path / "balance"), "--json"]) == 0
    said = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert said["figure"] == str(tmp_path / "balance.png")
    with Image.open(said["figure"]) as figure:
        assert figure.width > 400
    assert main(["data", "check", "segment", "--data", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_localize_counts_the_object_it_trains_on(tmp_path: Path) -> None:
    """localize takes each image's first object: its counts are of those, and the images
    holding more are named as a problem."""
    truth = _yolo_split_folder(tmp_path)
    found = check_data("localize", str(tmp_path), 32)
    for split, images in truth.items():
        figures = found["splits"][split]
        assert figures["boxes"] == sum(1 for i in images if i)
        assert figures["images_with_more_objects"] == sum(len(i) > 1 for i in images)
        for c, name in enumerate("abc"):
            assert figures["per_class"][name]["boxes"] == sum(i[:1] == [c] for i in images)
    assert found["problems"][0] == (
        "2 images of the train split hold more than one object: localize trains on the first "
        "of each"
    )


def test_identities_seen_and_held_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """faces: the identities faces train trains on and holds out, each one's images counted
    from the folders; an identity of a single image is named."""
    rng = np.random.default_rng(0)
    images = {"ann": 3, "bob": 1, "cy": 2, "dee": 4, "eve": 1}
    for person, n in images.items():
        (tmp_path / person).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(
                tmp_path / person / f"{i}.png"
            )
    found = check_data("faces", str(tmp_path), 32, unseen="cy,eve")
    assert found["splits"]["seen"]["per_class"] == {"ann": 3, "bob": 1, "dee": 4}
    assert found["splits"]["unseen"]["per_class"] == {"cy": 2, "eve": 1}
    assert found["problems"] == [
        "1 seen identity with a single image, no pair of the same person: bob",
        "1 unseen identity with a single image, no pair of the same person: eve",
    ]
    argv = ["data", "check", "faces", "--data", str(tmp_path), "--unseen", "cy,eve"]
    assert main(argv) == 0
    assert "problem: 1 seen identity with a single image" in capsys.readouterr().out
    assert main([*argv, "-o", str(tmp_path / "x.png")]) == 2
    assert main(["data", "check", "detect", "--data", str(tmp_path), "--unseen", "cy"]) == 2
    assert "--unseen names the identities faces train holds out" in capsys.readouterr().err


@pytest.mark.parametrize("layout", ["yolo", "voc", "labelme", "masks", "voc-masks"])
def test_every_bad_label_file_is_named(
    layout: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Training stops at the first bad label file; data check names each one (a line each,
    then how many, exit 2), so a folder is fixed in one pass, not one file a run."""
    root = tmp_path / layout
    form = layout.removesuffix("-masks")
    assert main(["data", "scenes", "--format", form, "--out", str(root), "--images", "5"]) == 0
    if layout == "yolo":
        bad = {
            root / "labels" / "000001.txt": "7 0.5 0.5 0.2 0.2\n",  # 3 classes
            root / "labels" / "000003.txt": "0 0.5 0.5 0.2\n",
        }
        said = [":1: unknown class id 7 (3 class names)", ":1: expected 'class cx cy w h'"]
    elif layout == "voc":
        xml = (root / "Annotations" / "000003.xml").read_text()
        bad = {
            root / "Annotations" / "000001.xml": "<annotation><filename>",
            root / "Annotations" / "000003.xml": xml.replace("<name>", "<name>x", 1),
        }
        said = [": malformed XML", ": class 'x"]
    elif layout.endswith("masks"):  # segmentation: a mask of another size, an unknown class
        masks = root / ("masks" if layout == "masks" else "SegmentationClass")
        Image.new("L", (3, 3)).save(masks / "000001.png")
        Image.new("L", (128, 128), 9).save(masks / "000003.png")
        bad = {masks / "000001.png": "", masks / "000003.png": ""}
        listed = "classes.txt" if layout == "masks" else "labelmap.txt"
        said = [": mask is 3x3, its image is 128x128", f": class index 9 is not in {listed}"]
    else:
        spec = json.loads((root / "000003.json").read_text())
        spec["shapes"][0]["label"] = ""
        bad = {root / "000001.json": "{not json", root / "000003.json": json.dumps(spec)}
        said = [": not readable JSON", ": shape 0: no label"]
    for path, text in bad.items():
        if text:
            path.write_text(text)
    task = "segment" if layout.endswith("masks") else "detect"
    capsys.readouterr()
    assert main(["data", "check", task, "--data", str(root)]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning" not in line]
    assert len(lines) == 3, lines
    for line, path, what in zip(lines, bad, said, strict=False):
        assert line.startswith(f"cnnlab: error: {path}{what}"), line
    assert lines[2] == (
        f"cnnlab: error: {root}: 2 problems in its label files (each above); training stops at "
        "the first it reads"
    )
    assert main([task, "train", "--data", str(root), "--epochs", "1"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning" not in line]
    assert len(lines) == 1 and lines[0].startswith(f"cnnlab: error: {next(iter(bad))}")


@pytest.mark.parametrize("task", ["detect", "segment"])
def test_every_bad_entry_of_a_coco_file_is_named(
    task: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A COCO file is one label file of many entries: data check names each bad entry and each
    missing image, leaving them out, where training stops at the first."""
    root = tmp_path / "coco"
    assert main(["data", "scenes", "--format", "coco", "--out", str(root), "--images", "5"]) == 0
    file = root / "annotations.json"
    coco = json.loads(file.read_text())
    coco["images"][1]["width"] = 0
    coco["annotations"][0]["category_id"] = 99
    ann = coco["annotations"][-1]
    ann["bbox"][2] = 0  # a box of no width, or a polygon of two points
    ann["segmentation"] = [[1, 2, 3, 4]]
    file.write_text(json.dumps(coco))
    (root / "images" / coco["images"][3]["file_name"]).unlink()
    n = len(coco["annotations"]) - 1
    said = [
        f"{file}: image {coco['images'][1]['id']}: needs file_name, width and height",
        f"{file}: annotation 0: unknown category_id 99",
        f"{file}: annotation {n}: "
        + ("box has a negative or zero size" if task == "detect" else "segmentation polygons"),
        f"{root / 'images' / coco['images'][3]['file_name']}: no such file",
    ]
    capsys.readouterr()
    assert main(["data", "check", task, "--data", str(file)]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning" not in line]
    assert len(lines) == len(said) + 1, lines
    for what in said:  # in the order read: segment reads an image's entries with the image
        assert sum(line.startswith(f"cnnlab: error: {what}") for line in lines) == 1, what
    assert lines[-1].startswith(f"cnnlab: error: {file}: 4 problems")
    assert main([task, "train", "--data", str(file), "--epochs", "1"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning" not in line]
    assert lines == [f"cnnlab: error: {said[0]}"]


def test_every_bad_row_of_a_label_csv_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CSV labelling images: data check names each row without a class and each row whose
    image is missing, where training names the first (or counts the missing images)."""
    rng = np.random.default_rng(0)
    rows = ["file,label"]
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(
            tmp_path / f"{i}.png"
        )
        rows.append(f"{i}.png,{'ab'[i % 2]}")
    rows[3] = "2.png,"  # line 4: no class
    rows += ["gone.png,a", "also_gone.png,b"]  # lines 10 and 11
    sheet = tmp_path / "labels.csv"
    sheet.write_text("\n".join(rows) + "\n")
    capsys.readouterr()
    assert main(["data", "check", "classify", "--data", str(sheet)]) == 2
    lines = [" ".join(line.split()) for line in capsys.readouterr().err.splitlines()]
    assert lines == [
        f"cnnlab: error: {sheet}:4: no class for '2.png'",
        f"cnnlab: error: {sheet}:10: no image 'gone.png' in {tmp_path}",
        f"cnnlab: error: {sheet}:11: no image 'also_gone.png' in {tmp_path}",
        f"cnnlab: error: {sheet}: 3 problems in its label files (each above); training stops "
        "at the first it reads",
    ]
    assert main(["classify", "train", "--data", str(sheet), "--epochs", "1"]) == 2
    assert capsys.readouterr().err.strip() == f"cnnlab: error: {sheet}:4: no class for '2.png'"
