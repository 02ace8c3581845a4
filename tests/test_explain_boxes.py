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
    for argv, message in (
        (["iou", "--a", "4 0 0 4", "--b", "0 0 1 1"], "--a: box 1 has x2 < x1"),
        (["iou", "--a", "0 0 4", "--b", "0 0 1 1"], "--a: expected one box"),
        (["nms", "--boxes", "0 0 1 1"], "5 numbers"),
        (["nms", "--boxes", "0 0 1 1 1.5"], "p_c is a probability"),
    ):
        assert main(["explain", *argv]) == 2
        assert message in capsys.readouterr().err
