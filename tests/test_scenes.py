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
    mask = np.asarray(Image.open(root / "masks" / "000000.png"))
    assert np.array_equal(mask, scenes[0].semantic)


@pytest.mark.parametrize(
    "line, message",
    [
        ("0 0.5 0.5 0.2", "expected 'class cx cy w h'"),
        ("0 0.5 0.5 x 0.2", "not numbers"),
        ("7 0.5 0.5 0.2 0.2", "unknown class id 7"),
        ("0 0.5 0.5 -0.2 0.2", "box has a negative or zero size"),
        ("0 0.95 0.5 0.2 0.2", "box lies outside the image"),
    ],
)
def test_bad_yolo_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "a.txt"
    path.write_text(f"1 0.5 0.5 0.2 0.2\n{line}\n")
    with pytest.raises(CnnlabError, match=f"a.txt:2: {message}"):
        parse_label_file(path, 3)
