"""The R-CNN family (slide "Faster algorithms"): the two ways to a region's features agree, the
region and anchor labels by hand, each method learns, and the comparison command."""

from __future__ import annotations

import json

import pytest
import torch

from cnnlab.cli import main
from cnnlab.config import RegionsConfig
from cnnlab.engine.rcnn import (
    RegionTrainer,
    anchor_boxes,
    label_anchors,
    label_regions,
    scene_regions,
)
from cnnlab.errors import CnnlabError
from cnnlab.models.rcnn import RegionNet, warp_regions

CPU = torch.device("cpu")


def test_rcnn_on_the_whole_image_is_fast_rcnn_on_its_map():
    """R-CNN's one pass per region and Fast R-CNN's shared map give the same scores and deltas
    when the region is the whole image and the warp keeps its size."""
    torch.manual_seed(0)
    model = RegionNet(num_classes=3, crop_size=32).eval()
    x = torch.randn(2, 3, 32, 32)
    rois = torch.tensor([[0.0, 0, 0, 32, 32], [1.0, 0, 0, 32, 32]])
    with torch.no_grad():
        crops = model.classify_crops(x, rois)
        shared = model.classify_regions(model.backbone(x), rois)
    for a, b in zip(crops, shared, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_warp_cuts_a_region_out_and_resizes_it():
    x = torch.arange(2 * 3 * 20 * 24, dtype=torch.float32).view(2, 3, 20, 24)
    crop = warp_regions(x, torch.tensor([[1.0, 4, 2, 12, 10]]), 8)  # an 8x8 box, kept 8x8
    torch.testing.assert_close(crop[0], x[1, :, 2:10, 4:12])
    # the same box warped to 16x16 is the bilinear enlargement of the crop (inside its border,
    # where the warp also reads the pixels around the box and interpolate clamps instead)
    big = warp_regions(x, torch.tensor([[1.0, 4, 2, 12, 10]]), 16)
    crop = x[1:2, :, 2:10, 4:12]
    enlarged = torch.nn.functional.interpolate(crop, 16, mode="bilinear", align_corners=False)
    torch.testing.assert_close(big[:, :, 1:-1, 1:-1], enlarged[:, :, 1:-1, 1:-1])


def test_regions_are_labelled_by_their_best_object():
    regions = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 5, 5]])
    boxes = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 32]])
    classes, matched = label_regions(regions, boxes, torch.tensor([2, 0]))
    # IoUs: 1; 81/119 = 0.68; 100/120 = 0.83; 25/100 = 0.25 (background)
    assert classes.tolist() == [3, 3, 1, 0]
    assert matched[2].tolist() == [20, 20, 30, 32]
    none, _ = label_regions(regions, torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64))
    assert none.tolist() == [0, 0, 0, 0]


def test_anchors_sit_on_cell_centres_and_are_labelled_as_faster_rcnn_does():
    anchors = anchor_boxes(torch.tensor([[8.0, 8.0], [16.0, 8.0]]), 2, 3)
    assert anchors.shape == (2, 3, 2, 4)
    assert anchors[1, 2, 1].tolist() == [2 * 4 + 2 - 8, 1 * 4 + 2 - 4, 2 * 4 + 2 + 8, 6 + 4]
    flat = torch.tensor([[0.0, 0, 10, 10], [0, 0, 9, 10], [30, 30, 40, 40], [0, 0, 4, 10]])
    boxes = torch.tensor([[0.0, 0, 10, 10], [31, 31, 45, 45]])
    target, matched = label_anchors(flat, boxes)
    # IoU 1 and 0.9: objects; 81/215 = 0.38 is neither but the second object's best: object;
    # 0.4 is neither (-1)
    assert target.tolist() == [1, 1, 1, -1]
    assert matched[2].tolist() == [31, 31, 45, 45]


def test_the_papers_anchors():
    """Faster R-CNN's nine anchors: areas 128^2, 256^2, 512^2 and aspect ratios h/w of 1:2, 1:1
    and 2:1 on its 600 px images (torchvision's AnchorGenerator gives (w, h) = (181.02, 90.51)
    for 128 at 1:2), scaled with the image."""
    import math

    from cnnlab.ops.anchors import kmeans_anchors, paper_anchors

    wh = paper_anchors(600)
    assert wh.shape == (9, 2)
    assert wh[0].tolist() == pytest.approx([128 * math.sqrt(2), 128 / math.sqrt(2)])
    areas = (wh[:, 0] * wh[:, 1]).sqrt().view(3, 3)
    assert areas == pytest.approx(torch.tensor([128.0, 256, 512])[:, None].expand(3, 3))
    assert (wh[:, 1] / wh[:, 0]).view(3, 3)[1].tolist() == pytest.approx([0.5, 1, 2])
    assert paper_anchors(64) == pytest.approx(paper_anchors(600) * 64 / 600)
    config = RegionsConfig(images=8, image_size=32, max_objects=3)  # the paper's, by default
    trainer = RegionTrainer("faster-rcnn", config, scene_regions(8, config, seed=0), CPU)
    assert trainer.model.rpn_objectness.out_channels == 9  # an objectness an anchor
    assert trainer.anchors.shape == (8, 8, 9, 4)  # 32 px at stride 4
    sides = trainer.anchors[0, 0, :, 2:] - trainer.anchors[0, 0, :, :2]
    assert sides == pytest.approx(paper_anchors(32))
    kmeans = RegionsConfig(images=8, image_size=32, max_objects=3, anchor_shapes="kmeans")
    data = scene_regions(8, kmeans, seed=0)
    trainer = RegionTrainer("faster-rcnn", kmeans, data, CPU)  # YOLOv2's: fitted to the boxes
    assert trainer.model.rpn_objectness.out_channels == 5 and trainer.anchors.shape[2] == 5
    shapes = torch.cat([b[:, 2:] - b[:, :2] for b in data.boxes])
    sides = trainer.anchors[0, 0, :, 2:] - trainer.anchors[0, 0, :, :2]
    assert sides == pytest.approx(kmeans_anchors(shapes, 5, seed=0))
    with pytest.raises(CnnlabError, match="--anchor-shapes is kmeans or paper"):
        RegionsConfig(anchor_shapes="ssd")


@pytest.mark.parametrize("method", ["rcnn", "fast-rcnn", "faster-rcnn"])
def test_each_method_fits_a_batch(method):
    config = RegionsConfig(images=8, image_size=32, crop_size=16, max_objects=3, lr=2e-3)
    data = scene_regions(8, config, seed=0)
    trainer = RegionTrainer(method, config, data, torch.device("cpu"))
    optimizer = torch.optim.AdamW(trainer.model.parameters(), lr=2e-3)
    batch = torch.arange(8)
    losses = []
    for _ in range(60):
        loss = trainer.step(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) < 0.5 * sum(losses[:5])
    detections, counts = trainer.detect(data)
    assert len(counts) == 8 and min(counts) >= 1
    assert len(detections) == 8
    for d in detections:
        assert ((d["boxes"] >= 0) & (d["boxes"] <= 32)).all()
        assert (d["scores"] >= 0.05).all() and (d["scores"][:-1] >= d["scores"][1:]).all()
        assert ((d["labels"] >= 0) & (d["labels"] < 3)).all()


def test_the_command_compares_the_three_methods(tmp_path, capsys):
    figure = tmp_path / "rcnn.png"
    argv = [
        "explain",
        "rcnn",
        "--images",
        "12",
        "--test-images",
        "4",
        "--epochs",
        "1",
        "--image-size",
        "32",
        "--crop-size",
        "16",
        "-o",
        str(figure),
        "--json",
    ]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["method"] for r in result["rows"]] == ["rcnn", "fast-rcnn", "faster-rcnn"]
    rcnn, fast, faster = result["rows"]
    assert rcnn["cnn_passes_per_image"] == rcnn["regions_per_image"] > 1
    assert fast["cnn_passes_per_image"] == faster["cnn_passes_per_image"] == 1
    assert fast["regions_per_image"] == rcnn["regions_per_image"]  # the same proposals
    assert faster["ms_proposals_per_image"] == 0 and fast["ms_proposals_per_image"] > 0
    assert all(0 <= r["map_50"] <= 1 for r in result["rows"])
    assert figure.stat().st_size > 0


def test_faster_rcnn_alone_runs_no_selective_search(monkeypatch, capsys):
    import cnnlab.engine.rcnn as rcnn

    def refuse(image):
        raise AssertionError("selective search ran for Faster R-CNN alone")

    monkeypatch.setattr(rcnn, "selective_search", refuse)
    argv = [
        "explain",
        "rcnn",
        "--methods",
        "faster-rcnn",
        "--images",
        "8",
        "--test-images",
        "2",
        "--epochs",
        "1",
        "--image-size",
        "32",
    ]
    assert main(argv) == 0  # the table a person reads (the other test reads --json)
    out = capsys.readouterr().out
    (row,) = [line for line in out.splitlines() if "rcnn" in line and "│" in line]
    assert "faster-rcnn" in row and "(RPN)" in row  # no milliseconds of selective search
    assert "8 scenes" in out and "an image's time = proposals + network" in out


def test_bad_settings_are_refused_by_name(capsys):
    assert main(["explain", "rcnn", "--methods", "yolo"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--methods" in err[0] and "fast-rcnn" in err[0]
    with pytest.raises(CnnlabError, match="multiple of 4"):
        RegionsConfig(image_size=30)
    with pytest.raises(CnnlabError, match="multiple of 4"):
        RegionsConfig(image_size=512)
    assert main(["explain", "rcnn", "--anchors", "5"]) == 2  # the paper's nine by default
    assert capsys.readouterr().err.strip() == (
        "cnnlab: error: --anchors counts the shapes k-means finds (--anchor-shapes kmeans); the "
        "paper's anchors are nine"
    )
    assert main(["explain", "rcnn", "--images", "99999999", "--image-size", "32"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--images 99999999" in err[0] and "GiB" in err[0]


def test_scenes_without_objects_train_every_method():
    """Regions and anchors of an empty scene are all background; R-CNN needs no anchors."""
    config = RegionsConfig(images=2, image_size=32, crop_size=16, max_objects=1)
    data = scene_regions(2, config, seed=0)
    empty = [torch.zeros(0, 4)] * 2
    data.boxes, data.labels = empty, [torch.zeros(0, dtype=torch.int64)] * 2
    loss = RegionTrainer("rcnn", config, data, torch.device("cpu")).step(torch.arange(2))
    assert torch.isfinite(loss)
    target, _ = label_anchors(torch.tensor([[0.0, 0, 4, 4]]), torch.zeros(0, 4))
    assert target.tolist() == [0]
