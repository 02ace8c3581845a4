"""YOLO detection: the slide's grid and target assignment, anchors, loss, decoding, mAP, CLI."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab.cli import main
from cnnlab.data.scenes import make_scenes, write_coco, write_yolo
from cnnlab.data.yolo import read_yolo_folder, yolo_line
from cnnlab.engine.detect import decode, make_batch
from cnnlab.engine.detection_data import DetectionData, coco_data, scenes_data, yolo_folder_data
from cnnlab.engine.detection_metrics import coco_evaluate
from cnnlab.engine.runs import summarise
from cnnlab.errors import CnnlabError
from cnnlab.losses.yolo import YoloLoss
from cnnlab.ops.anchors import (
    assign_targets,
    decode_boxes,
    iou_by_k,
    kmeans_anchors,
    mean_best_iou,
    shape_iou,
)

# Slide "Anchor box example": anchor 1 tall (pedestrian), anchor 2 wide (car).
ANCHORS = torch.tensor([[0.1, 0.3], [0.3, 0.1]])


def test_slide_output_shape() -> None:
    """S = 3, A = 2, C = 3: y is 3 x 3 x 2 x 8."""
    model = cnnlab.create_model(
        "yolo",
        anchors=tuple(map(tuple, ANCHORS.tolist())),
        input_size=96,
        backbone_kwargs={"widths": (16, 32, 64, 64, 64)},
    )
    assert model(torch.zeros(1, 3, 96, 96)).shape == (1, 3, 3, 2, 8)


def test_slide_target_assignment() -> None:
    """A car (wide) and a pedestrian (tall) share the middle cell: each goes to its anchor."""
    car = torch.tensor([[0.35, 0.45, 0.65, 0.55]])  # midpoint (0.5, 0.5): cell (1, 1)
    person = torch.tensor([[0.45, 0.35, 0.55, 0.65]])
    t = assign_targets([torch.cat([car, person])], [torch.tensor([1, 0])], 3, ANCHORS)
    assert t.responsible.sum() == 2
    assert t.responsible[0, 1, 1].tolist() == [True, True]
    assert t.labels[0, 1, 1].tolist() == [0, 1]  # anchor 1 pedestrian, anchor 2 car
    assert torch.allclose(t.txy[0, 1, 1, 1], torch.tensor([0.5, 0.5]))
    assert torch.allclose(
        t.twh[0, 1, 1, 1], torch.log(torch.tensor([0.3, 0.1]) / ANCHORS[1]), atol=1e-5
    )
    # The cell is the one holding the midpoint, here the bottom-right one.
    t = assign_targets([torch.tensor([[0.8, 0.7, 0.9, 0.95]])], [torch.tensor([2])], 3, ANCHORS)
    assert t.responsible[0, 2, 2, 0]
    # Encoding and decoding invert each other.
    raw_xy = torch.logit(t.txy.clamp(1e-6, 1 - 1e-6))
    boxes = decode_boxes(raw_xy, t.twh, ANCHORS)
    assert torch.allclose(boxes[t.responsible], torch.tensor([[0.8, 0.7, 0.9, 0.95]]), atol=1e-5)


def test_kmeans_anchors_find_the_clusters() -> None:
    g = torch.Generator().manual_seed(0)
    tall = torch.tensor([0.1, 0.3]) * (1 + 0.05 * torch.randn(50, 2, generator=g))
    wide = torch.tensor([0.3, 0.1]) * (1 + 0.05 * torch.randn(50, 2, generator=g))
    anchors = kmeans_anchors(torch.cat([tall, wide]), 2)
    assert shape_iou(anchors, ANCHORS).max(1).values.min() > 0.9
    with pytest.raises(CnnlabError, match="at least 1 anchor, got 0"):
        kmeans_anchors(tall, 0)
    with pytest.raises(CnnlabError, match="2 boxes: too few for 3 anchors"):
        kmeans_anchors(tall[:2], 3)
    # zero-area shapes gave (0, 0) anchors, a log(0) in the targets; none to compare, NaN
    with pytest.raises(CnnlabError, match="every width and height must be a finite number > 0"):
        kmeans_anchors(torch.zeros(5, 2), 2)
    with pytest.raises(CnnlabError, match=r"must be \(N, 2\) widths and heights, got \(5, 4\)"):
        kmeans_anchors(torch.rand(5, 4), 2)
    with pytest.raises(CnnlabError, match="0 boxes and 2 anchors: nothing to compare"):
        mean_best_iou(tall[:0], anchors)
    assert 0.9 < mean_best_iou(torch.cat([tall, wide]), anchors) <= 1


def test_iou_by_k_reaches_one_at_the_number_of_shapes() -> None:
    """Boxes of exactly three shapes: one anchor (their median shape) fits them partly, three
    or more fit every box exactly (YOLOv2's figure 2 levels off where the data's shapes end)."""
    shapes = torch.tensor([[0.1, 0.3], [0.3, 0.1], [0.2, 0.2]])
    wh = shapes.repeat_interleave(torch.tensor([5, 3, 4]), 0)
    ious = iou_by_k(wh, range(1, 6))
    assert ious[0] == pytest.approx(mean_best_iou(wh, wh.median(0).values[None]))
    assert ious[0] < ious[1] < 1 and ious[2:] == pytest.approx([1.0, 1.0, 1.0])


def fitted_detector() -> tuple[DetectionData, torch.nn.Module]:
    """8 scenes of 64 px and a YOLO detector fitted to them for 60 steps (seeded)."""
    torch.manual_seed(0)
    data = scenes_data(8, image_size=64, seed=1)
    model = cnnlab.create_model("yolo", input_size=64)
    x, boxes, labels = make_batch(data, torch.arange(8), mirror=False)
    targets = assign_targets(boxes, labels, model(x).shape[1], model.anchors)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        loss, _ = YoloLoss()(model(x), targets, model.anchors, boxes)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return data, model


def test_validation_runs_the_network_as_training_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a training's settings (as each epoch's validation is: test_training_engine.py),
    every batch runs through ``settings.forward`` with them. On a detector fitted to its 8
    scenes, the channels-last layout alone (fp32) scores exactly as plain fp32, and bf16
    autocast within 0.05 mAP@0.5 of it."""
    from cnnlab.engine.detect import evaluate_detector
    from cnnlab.engine.performance import SpeedSettings

    data, model = fitted_detector()
    cpu = torch.device("cpu")
    plain = evaluate_detector(model, data, cpu, batch_size=3)
    assert plain["map_50"] > 0.3  # fitted: a score worth comparing
    calls = []
    forward = SpeedSettings.forward
    monkeypatch.setattr(
        SpeedSettings, "forward", lambda self, *a: calls.append(self) or forward(self, *a)
    )
    layout = evaluate_detector(model, data, cpu, batch_size=3, settings=SpeedSettings(False, True))
    assert calls == [SpeedSettings(False, True)] * 3  # 8 images in batches of 3
    assert layout["map_50"] == pytest.approx(plain["map_50"], abs=1e-6)
    assert layout["map"] == pytest.approx(plain["map"], abs=1e-6)
    bf16 = evaluate_detector(model, data, cpu, settings=SpeedSettings(True, True))
    assert bf16["map_50"] == pytest.approx(plain["map_50"], abs=0.05)


def test_loss_overfits_one_batch() -> None:
    data = scenes_data(8, image_size=64, seed=1)
    model = cnnlab.create_model("yolo", input_size=64)
    x, boxes, labels = make_batch(data, torch.arange(8), mirror=False)
    grid = model(x).shape[1]
    targets = assign_targets(boxes, labels, grid, model.anchors)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss, parts = YoloLoss()(model(x), targets, model.anchors, boxes)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first
    assert set(parts) == {"coord", "obj", "noobj", "class"}
    model.eval()
    dets = decode(model(x), model.anchors, score_threshold=0.3)
    found = sum(len(d["boxes"]) for d in dets)
    assert found >= 0.8 * sum(len(b) for b in boxes)


def test_decode_thresholds_and_nms() -> None:
    pred = torch.full((1, 2, 2, 2, 8), -10.0)
    pred[0, 0, 0, 0, 0] = 5.0  # confident object, class 2
    pred[0, 0, 0, 0, 7] = 5.0
    pred[0, 0, 0, 1, 0] = 4.0  # same place, other anchor: suppressed by NMS if same class
    pred[0, 0, 0, 1, 7] = 5.0
    pred[0, 0, 0, :, 3:5] = 0.0
    anchors = torch.tensor([[0.2, 0.2], [0.2, 0.2]])
    (det,) = decode(pred, anchors, score_threshold=0.5)
    assert det["labels"].tolist() == [2] and len(det["boxes"]) == 1


def test_map_with_pycocotools() -> None:
    t = [
        {
            "boxes": torch.tensor([[10.0, 10, 50, 50], [60, 60, 90, 100]]),
            "labels": torch.tensor([0, 1]),
        }
    ]
    perfect = [
        {"boxes": t[0]["boxes"], "scores": torch.tensor([0.9, 0.8]), "labels": torch.tensor([0, 1])}
    ]
    r = coco_evaluate(perfect, t, 2)
    assert r["map"] == pytest.approx(1.0) and r["map_50"] == pytest.approx(1.0)
    shifted = [
        {
            "boxes": t[0]["boxes"] + torch.tensor([12.0, 0, 12, 0]),
            "scores": torch.tensor([0.9, 0.8]),
            "labels": torch.tensor([0, 1]),
        }
    ]
    assert coco_evaluate(shifted, t, 2)["map"] < 0.5


def test_average_precision_of_each_class() -> None:
    """Class 0 found exactly, class 1 found by a box shifted past IoU 0.5 at the lower IoUs
    only, class 2 with no boxes at all: APs 1, between, undefined; COCO's mAP is their mean
    over the classes with boxes; a class with boxes and no detections anywhere scores 0."""
    t = [
        {
            "boxes": torch.tensor([[10.0, 10, 50, 50], [60, 60, 100, 100]]),
            "labels": torch.tensor([0, 1]),
        }
    ]
    found = [
        {
            "boxes": torch.tensor([[10.0, 10, 50, 50], [66, 60, 106, 100]]),  # IoU 0.74
            "scores": torch.tensor([0.9, 0.8]),
            "labels": torch.tensor([0, 1]),
        }
    ]
    r = coco_evaluate(found, t, 3)
    first, second, third = r["per_class"]
    assert first == {"boxes": 1, "ap_50": pytest.approx(1.0), "ap": pytest.approx(1.0)}
    assert second["boxes"] == 1 and second["ap_50"] == pytest.approx(1.0)
    assert second["ap"] == pytest.approx(0.5)  # found at IoU 0.50-0.70 of 0.50-0.95: 5 of 10
    assert third == {"boxes": 0, "ap_50": None, "ap": None}
    assert r["map"] == pytest.approx((first["ap"] + second["ap"]) / 2)
    assert len(r["class_precision"]) == 3 and r["class_precision"][0][0] == pytest.approx(1.0)
    none = coco_evaluate([found[0] | {"labels": torch.tensor([0, 0])}], t, 3)["per_class"]
    assert none[1] == {"boxes": 1, "ap_50": 0.0, "ap": 0.0}
    nothing = coco_evaluate([{k: v[:0] for k, v in found[0].items()}], t, 3)["per_class"]
    assert [c["ap"] for c in nothing] == [0.0, 0.0, None]


def test_file_formats_and_bad_annotations(tmp_path: Path) -> None:
    scenes = make_scenes(5, seed=4, image_size=64)
    a = yolo_folder_data(str(write_yolo(scenes, tmp_path / "y")), 64)
    b = coco_data(str(write_coco(scenes, tmp_path / "c")), 64)
    for d in (a, b):
        assert len(d.images) == 5 and d.class_names == ["pedestrian", "car", "motorcycle"]
        for boxes, scene in zip(d.boxes, scenes, strict=True):
            assert torch.allclose(boxes * 64, torch.from_numpy(scene.boxes_xyxy), atol=1e-3)
    coco = json.loads((tmp_path / "c" / "annotations.json").read_text())
    coco["annotations"][0]["iscrowd"] = 1  # a crowd box is left out of the objects
    (tmp_path / "c" / "crowd.json").write_text(json.dumps(coco))
    crowd = coco_data(str(tmp_path / "c" / "crowd.json"), 64)
    first = coco["annotations"][0]["image_id"]
    image_ids = [im["id"] for im in coco["images"]]
    assert sum(map(len, crowd.labels)) == sum(map(len, b.labels)) - 1
    assert len(crowd.labels[image_ids.index(first)]) == len(b.labels[image_ids.index(first)]) - 1
    coco["annotations"][0]["iscrowd"] = 0
    (tmp_path / "c" / "empty.json").write_text(json.dumps(coco | {"images": []}))
    with pytest.raises(CnnlabError, match=r"empty\.json: no images listed"):
        coco_data(str(tmp_path / "c" / "empty.json"), 64)
    (tmp_path / "c" / "images" / coco["images"][1]["file_name"]).rename(tmp_path / "moved.png")
    with pytest.raises(CnnlabError, match=r"images/\S+: no such file \(image \S+ of \S+crowd"):
        coco_data(str(tmp_path / "c" / "crowd.json"), 64)
    (tmp_path / "moved.png").rename(tmp_path / "c" / "images" / coco["images"][1]["file_name"])
    coco["annotations"][0]["category_id"] = 99
    (tmp_path / "c" / "bad.json").write_text(json.dumps(coco))
    with pytest.raises(CnnlabError, match=r"bad\.json: annotation 0: unknown category_id 99"):
        coco_data(str(tmp_path / "c" / "bad.json"), 64)
    for change, fragment in [
        (
            lambda c: c["annotations"][0].update(bbox=[float("nan"), 1, 5, 5]),
            "bbox must be 4 finite",
        ),
        (lambda c: c["annotations"][0].update(bbox=["a", 1, 5, 5]), "bbox must be 4 finite"),
        (lambda c: c["annotations"][0].update(bbox=[1, 1, 5]), "bbox must be 4 finite"),
        (lambda c: c["annotations"][0].update(bbox=[60, 60, 50, 50]), "box outside image"),
        (lambda c: c["images"][0].pop("file_name"), "needs file_name, width and height"),
        (  # was "unknown image_id 2", when image 2 is listed: the id is a string
            lambda c: c["annotations"][0].update(image_id=str(c["annotations"][0]["image_id"])),
            r"unknown image_id '\d+' \(a str; the ids listed are numbers\)",
        ),
        (lambda c: c["annotations"][0].update(image_id=10**6), r"unknown image_id 1000000$"),
    ]:
        broken = json.loads((tmp_path / "c" / "annotations.json").read_text())
        change(broken)
        (tmp_path / "c" / "bad.json").write_text(json.dumps(broken))
        with pytest.raises(CnnlabError, match=rf"bad\.json: (annotation 0|image \d+): {fragment}"):
            coco_data(str(tmp_path / "c" / "bad.json"), 64)
    for key in ("images", "categories"):  # one id for two entries: one would swallow the other
        broken = json.loads((tmp_path / "c" / "annotations.json").read_text())
        broken[key].append(dict(broken[key][0], file_name="other.png", name="other"))
        (tmp_path / "c" / "bad.json").write_text(json.dumps(broken))
        first_id = broken[key][0]["id"]
        with pytest.raises(CnnlabError, match=rf"bad\.json: \w+ id {first_id} is listed twice"):
            coco_data(str(tmp_path / "c" / "bad.json"), 64)
    from cnnlab.engine.detect import DetectConfig, train_detector

    (tmp_path / "c" / "bare.json").write_text(json.dumps(coco | {"annotations": []}))
    bare = DetectConfig(data=str(tmp_path / "c" / "bare.json"), out=str(tmp_path / "r"))
    with pytest.raises(CnnlabError, match=r"bare\.json: no boxes in the training images"):
        train_detector(bare)  # was "0 boxes are too few for 3 anchors", naming no file
    from cnnlab.data.yolo import parse_label_file

    bad = tmp_path / "bad.txt"
    for line, fragment in [
        ("0 nan 0.5 0.2 0.2", "not finite"),  # nan passed every range check: IndexError later
        ("0 0.5 0.5 inf 0.2", "not finite"),
        ("zero 0.5 0.5 0.2 0.2", "not numbers"),
        ("0 0.5 0.5 -0.2 0.2", "box has a negative or zero size"),
        ("0 1.5 0.5 0.2 0.2", "box lies outside the image"),
        ("3 0.5 0.5 0.2 0.2", "unknown class id 3"),
    ]:
        bad.write_text(f"0 0.5 0.5 0.2 0.2\n{line}\n")
        with pytest.raises(CnnlabError, match=rf"bad\.txt:2: {fragment}"):
            parse_label_file(bad, 3)


def test_cli(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    opened: Callable[[Path | str], Image.Image],
) -> None:
    out = tmp_path / "run"
    assert (
        main(
            [
                "detect",
                "train",
                "--images",
                "120",
                "--image-size",
                "64",
                "--epochs",
                "2",
                "--out",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= result["test_map_50"] <= 1 and (out / "pr_curve.png").is_file()
    assert (out / "map_time.png").stat().st_size > 1000
    row = summarise(out)  # what `cnnlab runs` shows of it
    assert (row.task, row.state, row.progress) == ("detect", "finished", "2/2 epochs")
    assert row.figures == {"test mAP@.5": result["test_map_50"]}
    assert main(["detect", "eval", "--checkpoint", str(out / "best.pt"), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ev["map_50"] == pytest.approx(result["test_map_50"])
    assert ev["per_class"] == result["test_per_class"]  # each class's AP, as training scored it
    assert list(ev["per_class"]) == ["pedestrian", "car", "motorcycle"]
    scored = [c["ap_50"] for c in ev["per_class"].values() if c["ap_50"] is not None]
    assert ev["map_50"] == pytest.approx(sum(scored) / len(scored))
    assert (out / "mistakes.png").stat().st_size > 5000  # 2 epochs: boxes missed
    drawn = tmp_path / "ev"
    argv = ["detect", "eval", "--checkpoint", str(out / "best.pt"), "--out", str(drawn)]
    assert main([*argv, "--json"]) == 0
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert said["figure"] == str(drawn / "pr_test.png")
    assert said["mistakes_figure"] == str(drawn / "mistakes_test.png")
    assert Path(said["mistakes_figure"]).stat().st_size > 5000
    assert main(["detect", "eval", "--checkpoint", str(out / "best.pt")]) == 0
    shown = capsys.readouterr().out  # a row a class: its boxes and APs
    car = ev["per_class"]["car"]
    (line,) = [x.split() for x in shown.splitlines() if x.startswith("car ")]
    assert "average precision of each class" in shown
    assert line == ["car", f"{car['boxes']:,}", f"{car['ap_50']:.3f}", f"{car['ap']:.3f}"]
    png = tmp_path / "pred.png"
    assert (
        main(
            [
                "detect",
                "predict",
                "--checkpoint",
                str(out / "best.pt"),
                "--scenes",
                "2",
                "--score-threshold",
                "0.0",
                "-o",
                str(png),
                "--json",
            ]
        )
        == 0
    )
    preds = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["predictions"]
    assert len(preds) == 2 and png.is_file()
    ckpt, shown = str(out / "best.pt"), str(tmp_path / "shown.png")
    assert main(["detect", "predict", "--checkpoint", ckpt, "--scenes", "2", "-o", shown]) == 0
    table = capsys.readouterr().out  # without --json: a table of every detection, or a word
    first = preds[0]["detections"]
    assert "detections (score >= 0.3, NMS at IoU 0.5)" in table and "scene[1]" in table
    strong = [d for d in first if d["score"] >= 0.3]
    assert (f"{strong[0]['score']:.3f}" if strong else "nothing above the score") in table
    # a file twice as tall as the model's input: boxes come back in the file's own pixels
    scene = scenes_data(1, image_size=64, seed=12).images[0].permute(1, 2, 0).numpy()
    Image.fromarray(scene).save(tmp_path / "square.png")
    Image.fromarray(scene).resize((64, 128), Image.Resampling.NEAREST).save(tmp_path / "tall.png")
    files = [str(tmp_path / "square.png"), str(tmp_path / "tall.png")]
    argv = ["detect", "predict", "--checkpoint", ckpt, "--score-threshold", "0", "-o", shown]
    assert main([*argv, *files, "--json"]) == 0
    square, tall = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["predictions"]
    assert square["image_size"] == [64, 64] and tall["image_size"] == [64, 128]
    x1, y1, x2, y2 = square["detections"][0]["box_xyxy"]
    assert tall["detections"][0]["box_xyxy"] == pytest.approx([x1, 2 * y1, x2, 2 * y2], abs=0.5)
    # --as-dataset: the images and their boxes as a YOLO dataset, which the reader takes back
    pseudo = tmp_path / "pseudo"
    assert main([*argv, *files, "--as-dataset", str(pseudo), "--json"]) == 0
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    items, names = read_yolo_folder(pseudo)
    assert names == cnnlab.Detector.load(ckpt).class_names
    assert [i.image.name for i in items] == ["square.png", "tall.png"]
    for item, row in zip(items, said["predictions"], strict=True):
        assert item.image.read_bytes() == Path(row["source"]).read_bytes()
        w, h = row["image_size"]
        expected = [
            ((a + c) / 2 / w, (b + d) / 2 / h, (c - a) / w, (d - b) / h)
            for a, b, c, d in (det["box_xyxy"] for det in row["detections"])
        ]
        assert item.labels.tolist() == [names.index(d["label"]) for d in row["detections"]]
        assert np.allclose(item.boxes_cxcywh, np.array(expected).reshape(-1, 4), atol=2e-6)
    boxes = sum(len(r["detections"]) for r in said["predictions"])
    assert said["dataset"] == {
        "folder": str(pseudo),
        "images": 2,
        "boxes": boxes,
        "no_area": 0,
        "format": "yolo",
    }
    before = sorted((f.name, f.stat().st_mtime_ns) for f in pseudo.rglob("*"))
    # --out: each photo at its own size with its boxes drawn, in its class's colour
    drawn = tmp_path / "drawn"
    assert main([*argv, *files, "--out", str(drawn), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["predictions"]
    from PIL import ImageColor

    from cnnlab.viz.plots import BOX_COLOURS

    for row in rows:
        with Image.open(row["drawn"]) as shown_image:
            assert shown_image.size == tuple(row["image_size"])
            best = row["detections"][0]
            x1, y1, x2, y2 = best["box_xyxy"]
            colour = BOX_COLOURS[names.index(best["label"]) % len(BOX_COLOURS)]
            edge = shown_image.convert("RGB").getpixel((round(x1), round((y1 + y2) / 2)))
            assert edge == ImageColor.getrgb(colour)
    assert [Path(r["drawn"]).name for r in rows] == ["square_boxes.png", "tall_boxes.png"]
    assert main(["detect", "predict", "--checkpoint", ckpt, "--out", str(drawn)]) == 2
    assert "--out draws on the image files given" in capsys.readouterr().err
    assert main([*argv, *files, "--as-dataset", str(pseudo)]) == 2  # never overwritten
    err = capsys.readouterr().err
    assert f"{pseudo}: not empty; give a new or empty folder" in err
    assert sorted((f.name, f.stat().st_mtime_ns) for f in pseudo.rglob("*")) == before
    table = tmp_path / "boxes.csv"  # one row a detection, a bare source for an image with none
    import cnnlab.cli.shown as cli_shown

    monkeypatch.setattr(cli_shown, "SHOWN", 1)  # the table stops at SHOWN images
    assert main([*argv, *files, "--score-threshold", "0.99", "--csv", str(table)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert f"the first 1 of 2 images shown; all in {table}" in said
    assert "sq" in said and "tall" not in said  # a long path is folded in the table
    lines = ["source,label,score,x1,y1,x2,y2", *(f + ",,,,,," for f in files)]
    assert table.read_text().splitlines() == lines
    assert main([*argv, *files, "--csv", str(table), "--json"]) == 0
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    with table.open(newline="") as f:
        written = list(csv.DictReader(f))
    expected = [
        (r["source"], d["label"], d["score"], *d["box_xyxy"])
        for r in said["predictions"]
        for d in r["detections"]
    ]
    assert said["csv"] == str(table) and len(written) == len(expected) > 0
    assert [
        (
            w["source"],
            w["label"],
            float(w["score"]),
            *map(float, (w["x1"], w["y1"], w["x2"], w["y2"])),
        )
        for w in written
    ] == expected
    from cnnlab.engine.detect import predict_files  # from Python: the same rows

    assert predict_files(ckpt, files, score_threshold=0) == [square, tall]
    assert predict_files(ckpt, []) == []
    # a program's own images (a camera frame as an array, a Pillow image): the same boxes
    held = [opened(files[0]), np.asarray(opened(files[1]).convert("RGB"))]
    rows = predict_files(ckpt, held, score_threshold=0)
    assert [r.pop("source") for r in rows] == ["images[0]", "images[1]"]
    assert rows == [{k: v for k, v in r.items() if k != "source"} for r in (square, tall)]
    import cnnlab.engine.predict as predicting

    monkeypatch.setattr(predicting, "CHUNK", 1)  # one image in memory at a time: the same boxes
    chunked = predict_files(ckpt, [*files, held[1]], score_threshold=0)
    assert chunked == [square, tall, {**tall, "source": "images[2]"}]
    assert main([*argv, *files, "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["predictions"] == [
        square,
        tall,
    ]
    onnx_path = tmp_path / "yolo.onnx"
    assert main(["export", str(out / "best.pt"), "-o", str(onnx_path), "--json"]) == 0
    exported = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert exported["max_abs_diff"] < 1e-4 and onnx_path.is_file()  # the raw grid matches
    figure = tmp_path / "anchors.png"
    argv = ["detect", "anchors", "--images", "50", "--k", "2", "-o", str(figure), "--json"]
    assert main(argv) == 0
    found = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(found["anchors_wh"]) == 2 and figure.stat().st_size > 10_000
    assert list(found["mean_best_iou_by_k"]) == [str(k) for k in range(1, 10)]
    assert found["mean_best_iou_by_k"]["2"] == pytest.approx(found["mean_best_iou"], abs=1e-4)


def test_augmentation_moves_boxes_with_the_image(tmp_path: Path) -> None:
    from cnnlab.data.augment import build_augmentation

    data = scenes_data(6, image_size=64, seed=5, max_objects=1)
    keep = [i for i in range(6) if len(data.boxes[i])]
    sub = data.subset(torch.tensor(keep))
    aug = build_augmentation(
        ["rotate", "shear"], image_size=64, channels=3, data_keys=("input", "bbox_xyxy")
    )
    torch.manual_seed(1)
    x, boxes, labels = make_batch(sub, torch.arange(len(keep)), mirror=True, augment=aug)
    assert x.shape == (len(keep), 3, 64, 64)
    for b, lab in zip(boxes, labels, strict=True):
        assert len(b) == len(lab) and ((b >= 0) & (b <= 1)).all()
    assert (
        main(
            [
                "detect",
                "train",
                "--images",
                "60",
                "--image-size",
                "64",
                "--epochs",
                "1",
                "--augment",
                "color,rotate,shear",
                "--out",
                "/tmp/cnnlab-det-aug",
            ]
        )
        == 0
    )


@pytest.mark.parametrize("task, given", [("detect", "folder"), ("localize", "yaml")])
def test_train_val_folders_are_the_splits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], task: str, given: str
) -> None:
    """An Ultralytics folder (images/train, images/val, no test), given as the folder or as its
    data.yaml: training keeps the folders' split, reports on val and says so; eval on the
    missing test split is a one-line error."""
    flat = write_yolo(make_scenes(16, seed=6, image_size=32, min_objects=1), tmp_path / "flat")
    root = tmp_path / "u"
    for k, image in enumerate(sorted((flat / "images").iterdir())):
        split = "val" if k % 4 == 0 else "train"
        for kind, file in (("images", image), ("labels", flat / "labels" / f"{image.stem}.txt")):
            (root / kind / split).mkdir(parents=True, exist_ok=True)
            file.rename(root / kind / split / file.name)
    (root / "data.yaml").write_text(
        "train: images/train\nval: images/val\nnames: [pedestrian, car, motorcycle]\n"
    )
    data = root / "data.yaml" if given == "yaml" else root
    out = tmp_path / "run"
    args = [task, "train", "--data", str(data), "--image-size", "32", "--epochs", "1"]
    assert main([*args, "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["evaluated_on"] == "val" and "test" not in result
    ckpt = torch.load(out / "best.pt", weights_only=True)
    assert set(ckpt["data_fingerprint"]) == {"train", "val"}
    eval_args = [task, "eval", "--checkpoint", str(out / "best.pt")]
    assert main([*eval_args, "--split", "val", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    if task == "detect":
        assert ev["map_50"] == pytest.approx(result["val_map_50"])
    else:
        assert ev["count"] == 4 and ev["accuracy"] == pytest.approx(result["val"]["accuracy"])
    assert main(eval_args) == 2
    assert "no test split" in capsys.readouterr().err


def test_ignored_boxes_count_neither_way() -> None:
    """VOC's difficult objects: missing one costs nothing and finding one earns nothing (a
    pycocotools crowd region), where an ordinary box missed halves the recall."""
    t = {
        "boxes": torch.tensor([[0.0, 0, 20, 20], [40, 40, 60, 60]]),
        "labels": torch.tensor([0, 0]),
    }
    only_first = {
        "boxes": torch.tensor([[0.0, 0, 20, 20]]),
        "scores": torch.tensor([0.9]),
        "labels": torch.tensor([0]),
    }
    assert coco_evaluate([only_first], [t], 1)["map_50"] == pytest.approx(0.5, abs=0.01)
    ignored = t | {"ignore": torch.tensor([False, True])}
    assert coco_evaluate([only_first], [ignored], 1)["map_50"] == pytest.approx(1.0)
    both = {
        "boxes": t["boxes"],
        "scores": torch.tensor([0.9, 0.95]),  # the ignored box found first: not a true positive
        "labels": torch.tensor([0, 0]),
    }
    assert coco_evaluate([both], [ignored], 1)["map_50"] == pytest.approx(1.0)


def test_eval_on_other_labelled_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`detect eval --data`: the same scenes as a YOLO folder whose classes.txt lists the
    classes in another order (labels renumbered to match) score exactly as the original, and
    the COCO export of them too; every image is scored; an unknown class is a one-line error."""
    import shutil

    scenes = make_scenes(16, seed=8, image_size=64, min_objects=1)
    root = write_yolo(scenes, tmp_path / "y")
    run = tmp_path / "run"
    argv = ["detect", "train", "--data", str(root), "--image-size", "64", "--epochs", "2"]
    assert main([*argv, "--out", str(run), "--json"]) == 0
    capsys.readouterr()

    def score(data: Path) -> dict:
        argv = ["detect", "eval", "--checkpoint", str(run / "best.pt"), "--data", str(data)]
        assert main([*argv, "--json"]) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    assert score(root)["split"] == "test"  # the run's own data: its test split, as without --data
    copy = shutil.copytree(root, tmp_path / "copy")  # the same images elsewhere: all are scored
    original = score(copy)
    assert original["split"] == "all" and original["images"] == 16
    assert original["map_50"] > 0  # some boxes found: the comparisons below can fail
    names = (root / "classes.txt").read_text().split()
    order = names[::-1]  # classes.txt reversed; each label line renumbered to match
    moved = tmp_path / "reordered"
    shutil.copytree(root, moved)
    (moved / "classes.txt").write_text("\n".join(order) + "\n")
    for label_file in (moved / "labels").glob("*.txt"):
        lines = [line.split() for line in label_file.read_text().splitlines() if line.strip()]
        label_file.write_text(
            "".join(" ".join([str(order.index(names[int(c)])), *rest]) + "\n" for c, *rest in lines)
        )
    reordered = score(moved)
    assert reordered["map"] == original["map"] and reordered["map_50"] == original["map_50"]
    coco = score(write_coco(scenes, tmp_path / "c"))
    assert coco["map"] == pytest.approx(original["map"])
    (moved / "classes.txt").write_text("\n".join(["zebra", *order[1:]]) + "\n")
    argv = ["detect", "eval", "--checkpoint", str(run / "best.pt"), "--data", str(moved)]
    assert main(argv) == 2
    assert "class(es) zebra unknown to the checkpoint" in capsys.readouterr().err


def test_images_are_read_a_chunk_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A box model's images are stretched ``CHUNK`` at a time (one chunk in memory, however many
    files), in order, each with its own ``(width, height)``; the next chunk is not read before
    the first is used."""
    import cnnlab.engine.predict as predicting

    monkeypatch.setattr(predicting, "CHUNK", 2)
    frames = [np.full((h, 10, 3), i, np.uint8) for i, h in enumerate((4, 6, 8, 10, 12))]
    chunks = list(predicting.stretched_chunks(frames, 8))
    assert [tuple(c.shape) for c, _ in chunks] == [(2, 3, 8, 8), (2, 3, 8, 8), (1, 3, 8, 8)]
    assert [f for _, part in chunks for f in part] == [(10, h) for h in (4, 6, 8, 10, 12)]
    assert [int(image.float().mean()) for c, _ in chunks for image in c] == [0, 1, 2, 3, 4]
    assert list(predicting.stretched_chunks([], 8)) == []
    lazily = predicting.stretched_chunks([*frames[:4], "gone.png"], 8)
    next(lazily), next(lazily)  # the first four, before the fifth is read
    with pytest.raises(CnnlabError, match=r"gone\.png: no such file"):
        next(lazily)


def test_a_predicted_box_as_a_yolo_line() -> None:
    """``class cx cy w h`` relative to the image; clipped to it; no line for a box with no area
    there (the reader would refuse it)."""
    assert yolo_line(2, (10, 20, 30, 60), (40, 80)) == "2 0.500000 0.500000 0.500000 0.500000"
    assert yolo_line(0, (-10, 0, 20, 80), (40, 80)) == "0 0.250000 0.500000 0.500000 1.000000"
    assert yolo_line(1, (40, 10, 50, 20), (40, 80)) is None  # wholly right of the image
    assert yolo_line(1, (5, 10, 5, 20), (40, 80)) is None


def test_matching_finds_misses_and_false_alarms() -> None:
    """VOC's and COCO's greedy matching on a hand-made image: the higher score takes the box
    first, a second detection of a found box is a false alarm, a box of another class is no
    match, and a difficult box counts neither way."""
    from cnnlab.engine.detection_mistakes import match_detections

    true_boxes = torch.tensor(
        [[0, 0, 10, 10], [5, 0, 15, 10], [40, 40, 50, 50], [70, 70, 80, 80], [90, 0, 99, 9.0]]
    )
    true_labels = torch.tensor([0, 0, 1, 0, 1])
    difficult = torch.tensor([False, False, False, True, False])
    boxes = torch.tensor(
        [
            [1, 0, 11, 10],  # 0.7: IoU 0.82 with box 0, 0.43 with box 1 -> box 0
            [0, 0, 10, 10],  # 0.9: box 0 exactly, and first -> box 0; the 0.7 one gets none
            [40, 40, 50, 50],  # 0.8: box 2's place, another class: a false alarm
            [70, 70, 80, 80],  # 0.6: on the difficult box: not counted
            [4, 0, 14, 10],  # 0.5: IoU 0.82 with box 1 -> box 1
            [20, 20, 30, 30],  # 0.4: nothing there
        ],
        dtype=torch.float32,
    )
    scores = torch.tensor([0.7, 0.9, 0.8, 0.6, 0.5, 0.4])
    labels = torch.tensor([0, 0, 0, 0, 0, 1])
    false_alarm, missed = match_detections(
        boxes, scores, labels, true_boxes, true_labels, difficult
    )
    assert false_alarm.tolist() == [True, False, True, False, False, True]
    assert missed.tolist() == [False, False, True, False, True]
    none = torch.zeros(0, 4)
    false_alarm, missed = match_detections(
        none, torch.zeros(0), torch.zeros(0), true_boxes, true_labels
    )
    assert false_alarm.tolist() == [] and missed.tolist() == [True] * 5  # nothing said
    false_alarm, missed = match_detections(boxes, scores, labels, none, torch.zeros(0))
    assert false_alarm.all() and missed.tolist() == []  # nothing there


def test_mistakes_figure_draws_the_images_with_most_errors_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Images ranked by misses plus false alarms, most first, ties in order, among the
    detections a user would see (score >= 0.3); those answered right are left out, and a split
    answered right draws nothing."""
    import cnnlab.engine.detection_mistakes as mistakes
    from cnnlab.engine.detection_data import DetectionData

    box = torch.tensor([[0.1, 0.1, 0.5, 0.5]])  # 4..20 px of a 40 px image
    data = DetectionData(
        torch.zeros(4, 3, 40, 40, dtype=torch.uint8),
        [box, box, box.repeat(2, 1), box],
        [torch.tensor([0]), torch.tensor([0]), torch.tensor([0, 1]), torch.tensor([1])],
        ["a", "b"],
    )
    found = {"boxes": box * 40, "scores": torch.tensor([0.9]), "labels": torch.tensor([0])}
    faint = {  # and a faint box of another class where nothing is: below 0.3, not shown
        "boxes": torch.cat([box * 40, box * 40 + 10]),
        "scores": torch.tensor([0.9, 0.1]),
        "labels": torch.tensor([0, 1]),
    }
    dets = [found, faint, found, found]  # image 1: right; 2: one missed; 3: 1 + 1 wrong
    dets[0] = {k: v[:0] for k, v in found.items()}  # image 0: one missed
    seen: list[list[int]] = []
    monkeypatch.setattr(
        mistakes, "_draw", lambda d, dets, marks, order, path, title: seen.append(order) or path
    )
    path = tmp_path / "m.png"
    assert mistakes.draw_detection_mistakes(data, dets, path, "t") == path
    assert seen == [[3, 0, 2]]
    assert mistakes.draw_detection_mistakes(data, dets, path, "t", score_threshold=0.05) == path
    assert seen[-1] == [3, 0, 1, 2]  # the faint box counted: image 1 has a false alarm
    right = DetectionData(data.images[:2], data.boxes[:2], data.labels[:2], ["a", "b"])
    assert mistakes.draw_detection_mistakes(right, [found, faint], tmp_path / "n.png", "t") is None


def test_scored_detections_kept_above_a_threshold_are_what_decoding_at_it_gives() -> None:
    """The mistakes figure reuses the detections mAP was scored on (decoded at 0.05) and keeps
    those scoring at least its threshold: the same boxes as decoding at that threshold, as
    `detect predict` does, since non-max suppression drops a box only for a higher-scored one."""
    from cnnlab.engine.detect import detect_images, detections

    data, model = fitted_detector()  # scores spread from 0.05 to near 1
    cpu = torch.device("cpu")
    threshold = 0.3
    scored = detections(model, data, cpu, batch_size=4)
    direct = detect_images(model, data.images, threshold)
    kept = sum(int((d["scores"] >= threshold).sum()) for d in scored)
    assert kept > 10 and kept < sum(len(d["scores"]) for d in scored)  # some kept, some not
    for a, b in zip(scored, direct, strict=True):
        keep = a["scores"] >= threshold
        for key in ("boxes", "scores", "labels"):
            assert torch.allclose(a[key][keep].float(), b[key].float(), atol=1e-4)
