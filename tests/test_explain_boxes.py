"""``cnnlab explain iou`` and ``explain nms``: hand-computed slide arithmetic, and the traced
algorithm against the vectorised ``slide_nms``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cnnlab.cli import main
from cnnlab.explain_boxes import EXAMPLE_BOXES, explain_iou, explain_nms, parse_scored_boxes
from cnnlab.ops.boxes import box_iou
from cnnlab.ops.nms import slide_nms


def test_iou_by_hand() -> None:
    """Two 4x4 boxes overlapping in a 2x2 corner: 4 / (16 + 16 - 4) = 1/7."""
    r = explain_iou(torch.tensor([0.0, 0, 4, 4]), torch.tensor([2.0, 2, 6, 6]))
    assert (r["intersection"], r["union"], r["intersection_box"]) == (4, 28, [2, 2, 4, 4])
    assert r["iou"] == pytest.approx(1 / 7, abs=1e-6) and not r["correct"]
    apart = explain_iou(torch.tensor([0.0, 0, 4, 4]), torch.tensor([5.0, 5, 6, 6]))
    assert apart["intersection_box"] is None and apart["iou"] == 0 and apart["union"] == 17
    inside = explain_iou(torch.tensor([0.0, 0, 4, 4]), torch.tensor([1.0, 0, 4, 4]))
    assert inside["iou"] == 0.75 and inside["correct"]


def test_iou_terms_agree_with_box_iou() -> None:
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        xy = torch.rand(2, 2, generator=g, dtype=torch.float64) * 10
        wh = torch.rand(2, 2, generator=g, dtype=torch.float64) * 8
        a, b = torch.cat([xy, xy + wh], 1)
        r = explain_iou(a, b)
        assert r["intersection"] / r["union"] == pytest.approx(r["iou"], abs=1e-6)
        assert r["iou"] == pytest.approx(float(box_iou(a[None], b[None])), abs=1e-6)


def test_traced_nms_keeps_what_slide_nms_keeps() -> None:
    g = torch.Generator().manual_seed(1)
    for n in (1, 2, 5, 20, 60):
        xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * 50
        boxes = torch.cat([xy, xy + 5 + torch.rand(n, 2, generator=g) * 20], 1)
        scores = torch.rand(n, generator=g, dtype=torch.float64)
        r = explain_nms(boxes, scores)
        assert r["kept"] == slide_nms(boxes, scores).tolist()
        gone = [j for s in r["steps"] for j in s["discarded"]]
        assert sorted(r["kept"] + gone + r["dropped_low_p_c"]) == list(range(n))
        for step in r["steps"]:  # each discarded box overlapped its pick by IoU >= 0.5
            assert all(step["iou_with_rest"][j] >= 0.5 for j in step["discarded"])


def test_example_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = explain_nms(*parse_scored_boxes(EXAMPLE_BOXES))
    assert r["kept"] == [0, 3] and r["dropped_low_p_c"] == [1, 6]  # 0.6 itself is discarded
    png = tmp_path / "nms.png"
    assert main(["explain", "nms", "--out", str(png), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["kept"] == [0, 3] and png.stat().st_size > 5000
    assert main(["explain", "nms"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "discard all boxes with p_c <= 0.6: 1 (0.6), 6 (0.5)" in text
    assert "predictions: boxes 0, 3" in text
    assert main(["explain", "iou", "--a", "0 0 4 4", "--b", "2 2 6 6"]) == 0
    assert "union = 16 + 16 - 4 = 28" in capsys.readouterr().out
    for a, b in (("0 0 4 4", "2 2 6 6"), ("0 0 1 1", "5 5 6 6")):  # overlapping; apart
        png = tmp_path / f"iou {b}.png"
        assert main(["explain", "iou", "--a", a, "--b", b, "--out", str(png), "--json"]) == 0
        figure = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["figure"]
        assert figure == str(png) and png.stat().st_size > 5000
    for argv, message in (
        (["iou", "--a", "4 0 0 4", "--b", "0 0 1 1"], "--a: box 1 has x2 < x1"),
        (["iou", "--a", "0 0 4", "--b", "0 0 1 1"], "--a: expected one box"),
        (["nms", "--boxes", "0 0 1 1"], "5 numbers"),
        (["nms", "--boxes", "0 0 1 1 1.5"], "p_c is a probability"),
    ):
        assert main(["explain", *argv]) == 2
        assert message in capsys.readouterr().err


def test_yolo_target_is_the_slides_y() -> None:
    """The slide's car: middle cell of a 3 x 3 grid, the wide anchor 2, and y for that cell
    [0 ? ? ? ? ? ? ? | 1 0.3 0.4 0.5 1.1 0 1 0] (y is 3 x 3 x 2 x 8)."""
    from cnnlab.explain_boxes import (
        EXAMPLE_ANCHORS,
        EXAMPLE_OBJECTS,
        explain_yolo_target,
        parse_anchors,
        parse_objects,
    )

    boxes, labels = parse_objects(EXAMPLE_OBJECTS, 300, 3)
    r = explain_yolo_target(boxes, labels, 3, parse_anchors(EXAMPLE_ANCHORS))
    assert r["shape"] == [3, 3, 2, 8] and len(r["cells"]) == 1
    (car,) = r["objects"]
    assert car["cell"] == [1, 1] and car["anchor"] == 2 and car["class"] == "car"
    assert [car[k] for k in ("b_x", "b_y", "b_h", "b_w")] == pytest.approx([0.3, 0.4, 0.5, 1.1])
    assert r["cells"][0]["y"][0] == [0] + [None] * 7
    assert r["cells"][0]["y"][1] == pytest.approx([1, 0.3, 0.4, 0.5, 1.1, 0, 1, 0])
    # a second car in the same cell wanting the same anchor takes the slot (the later one wins)
    boxes, labels = parse_objects(f"{EXAMPLE_OBJECTS}; 80 110 190 170 2", 300, 3)
    r = explain_yolo_target(boxes, labels, 3, parse_anchors(EXAMPLE_ANCHORS))
    assert [o["replaced"] for o in r["objects"]] == [True, False]
    assert r["cells"][0]["y"][1][1:5] == pytest.approx([0.35, 0.4, 0.6, 1.1])


def test_yolo_target_cells_and_offsets_agree_with_the_boxes() -> None:
    """For random objects: the midpoint is (col + b_x, row + b_y) / S and the size (b_w, b_h) / S,
    and the anchor is the one whose shape overlaps the box most."""
    from cnnlab.explain_boxes import explain_yolo_target
    from cnnlab.ops.anchors import shape_iou

    g = torch.Generator().manual_seed(3)
    anchors = torch.tensor([[0.1, 0.3], [0.3, 0.1], [0.2, 0.2]])
    xy = torch.rand(12, 2, generator=g) * 0.6
    boxes = torch.cat([xy, xy + 0.05 + torch.rand(12, 2, generator=g) * 0.3], 1)
    r = explain_yolo_target(boxes, torch.randint(0, 3, (12,), generator=g), 7, anchors)
    for box, o in zip(boxes, r["objects"], strict=True):
        row, col = o["cell"]
        centre = [(col + o["b_x"]) / 7, (row + o["b_y"]) / 7]
        assert centre == pytest.approx(((box[:2] + box[2:]) / 2).tolist(), abs=1e-4)
        assert [o["b_w"] / 7, o["b_h"] / 7] == pytest.approx((box[2:] - box[:2]).tolist(), abs=1e-4)
        assert 0 <= o["b_x"] < 1 and 0 <= o["b_y"] < 1
        assert o["anchor"] - 1 == int(shape_iou((box[2:] - box[:2])[None], anchors).argmax())


def test_yolo_target_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "yolo-target"]) == 0
    out = capsys.readouterr().out
    assert "y[1, 1], anchor 2: [1 0.3 0.4 0.5 1.1 0 1 0]" in out and "3 x 3 x 2 x 8" in out
    assert main(["explain", "yolo-target", "--grid", "19", "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["shape"] == [19, 19, 2, 8] and r["objects"][0]["cell"] == [8, 8]
    for argv, message in (
        (["--objects", "0 0 10 10 4"], "class must be a whole number from 1 to 3"),
        (["--objects", "0 0 400 10 1"], "leaves the 300 x 300 image"),
        (["--objects", "0 0 10 10"], "5 numbers"),
        (["--anchors", "0.1 0"], "--anchors: each anchor is 'w h'"),
        (["--anchors", ""], "--anchors: empty matrix row"),  # not the slide's anchors instead
    ):
        assert main(["explain", "yolo-target", *argv]) == 2
        assert message in capsys.readouterr().err
    # an image without objects: every slot's p_c is 0 (the slide's car no longer stands in)
    assert main(["explain", "yolo-target", "--objects", "", "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["objects"] == [] and r["responsible_slots"] == 0 and r["shape"] == [3, 3, 2, 8]
    # the slide's picture, and an empty grid
    for objects in ([], ["--objects", ""]):
        png = tmp_path / f"target{len(objects)}.png"
        assert main(["explain", "yolo-target", *objects, "--out", str(png), "--json"]) == 0
        figure = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["figure"]
        assert figure == str(png) and png.stat().st_size > 5000
    assert main(["explain", "nms", "--boxes", ""]) == 2
    assert "--boxes: empty matrix row" in capsys.readouterr().err
