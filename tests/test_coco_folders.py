"""A folder of COCO files as --data: Roboflow's COCO export (a file per split folder, the images
beside it, the dataset's name as an unused category 0) and a folder holding one file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from cnnlab.data.coco import read_coco
from cnnlab.data.scenes import make_scenes, write_coco
from cnnlab.engine.detect import DetectConfig
from cnnlab.engine.detection_data import coco_data, load_detection_data
from cnnlab.engine.segment_data import coco_segmentation, folder_segmentation
from cnnlab.errors import CnnlabError


def roboflow_coco(root: Path) -> dict[str, Path]:
    """``root/{train,valid,test}/_annotations.coco.json`` with the images beside each file, and
    the categories as Roboflow lists them: the dataset's name first, the classes under it."""
    files = {}
    for seed, split in enumerate(("train", "valid", "test")):
        folder = root / split
        write_coco(make_scenes(6, seed=seed, image_size=48), folder)
        for image in (folder / "images").iterdir():
            image.rename(folder / image.name)
        (folder / "images").rmdir()
        spec = json.loads((folder / "annotations.json").read_text())
        for c in spec["categories"]:
            c["supercategory"] = "street-scenes"
        spec["categories"].insert(0, {"id": 0, "name": "street-scenes", "supercategory": "none"})
        (folder / "annotations.json").unlink()
        files[split] = folder / "_annotations.coco.json"
        files[split].write_text(json.dumps(spec))
    return files


def test_roboflow_coco_export_reads_with_its_splits(tmp_path: Path) -> None:
    files = roboflow_coco(tmp_path / "rf")
    data = load_detection_data(DetectConfig(data=str(tmp_path / "rf"), image_size=32))
    assert data.class_names == ["pedestrian", "car", "motorcycle"]  # not the dataset's name
    parts = [coco_data(str(files[s]), 32) for s in ("test", "train", "valid")]  # folder order
    assert torch.equal(data.images, torch.cat([p.images for p in parts]))
    assert all(
        torch.equal(a, b)
        for a, b in zip(data.boxes, [b for p in parts for b in p.boxes], strict=True)
    )
    assert {k: v.tolist() for k, v in data.splits.items()} == {
        "test": list(range(6)),
        "train": list(range(6, 12)),
        "val": list(range(12, 18)),
    }
    seg = folder_segmentation(tmp_path / "rf", 32)
    assert seg.class_names == ["background", "pedestrian", "car", "motorcycle"]
    assert torch.equal(seg.masks[:6], coco_segmentation(files["test"], 32).masks)
    assert sorted(seg.splits) == ["test", "train", "val"]


def test_a_folder_with_one_coco_file_and_two_are_refused(tmp_path: Path) -> None:
    write_coco(make_scenes(5, seed=1, image_size=48), tmp_path / "c")
    data = load_detection_data(DetectConfig(data=str(tmp_path / "c"), image_size=32))
    assert len(data.images) == 5 and data.splits is None
    shutil.copy(tmp_path / "c" / "annotations.json", tmp_path / "c" / "more.json")
    with pytest.raises(
        CnnlabError, match=r"c: 2 COCO files \(annotations\.json, more\.json\); give"
    ):
        load_detection_data(DetectConfig(data=str(tmp_path / "c"), image_size=32))


def test_only_an_unused_parent_category_is_dropped(tmp_path: Path) -> None:
    """COCO's own "person" is its own supercategory: kept, used or not; a parent that boxes
    use is a class."""
    spec = {
        "images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}],
        "categories": [
            {"id": 1, "name": "person", "supercategory": "person"},
            {"id": 2, "name": "vehicle", "supercategory": "none"},
            {"id": 3, "name": "car", "supercategory": "vehicle"},
        ],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 1, 2, 2]}],
    }
    path = tmp_path / "a.json"
    path.write_text(json.dumps(spec))
    assert read_coco(path).names == ["person", "car"]
    spec["annotations"].append({"id": 2, "image_id": 1, "category_id": 2, "bbox": [1, 1, 4, 4]})
    path.write_text(json.dumps(spec))
    assert read_coco(path).names == ["person", "vehicle", "car"]
