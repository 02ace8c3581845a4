"""Classification with localisation and landmarks: targets, the slide's loss, training."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab.cli import main
from cnnlab.data.localization import from_scenes
from cnnlab.data.scenes import make_scenes, write_yolo
from cnnlab.data.yolo import yolo_line
from cnnlab.engine.localize import LocalizeConfig, batch, load_data
from cnnlab.losses.localization import LocalizationTarget, localization_loss
from cnnlab.models.heads import LocalizationOutput


def output(pc: float, box: list[float], logits: list[float]) -> LocalizationOutput:
    return LocalizationOutput(
        torch.tensor([pc]), torch.tensor([box]), torch.tensor([logits]), torch.zeros(1, 0, 2)
    )


def test_validation_runs_the_network_as_training_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a training's settings (as each epoch's validation is: test_training_engine.py),
    every batch runs through ``settings.forward`` with them. On a localiser fitted to its
    scenes, the channels-last layout alone (fp32) scores as plain fp32, and bf16 autocast within
    0.05 of each figure."""
    from cnnlab.engine.localize import batch, evaluate
    from cnnlab.engine.performance import SpeedSettings

    torch.manual_seed(0)
    data = from_scenes(60, image_size=32, seed=2, landmarks=True)
    model = cnnlab.create_model("localizer", num_landmarks=5, input_size=32)
    cpu = torch.device("cpu")
    x, target = batch(data, data.splits["train"], cpu)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(100):
        loss = localization_loss(model.split(model(x)), target, "practical")
        opt.zero_grad()
        loss.backward()
        opt.step()
    plain = evaluate(model, data, "train", cpu)
    assert plain["accuracy"] > 0.8 and plain["mean_iou"] > 0.3  # fitted: worth comparing
    calls = []
    forward = SpeedSettings.forward
    monkeypatch.setattr(
        SpeedSettings, "forward", lambda self, *a: calls.append(self) or forward(self, *a)
    )
    layout = evaluate(model, data, "train", cpu, SpeedSettings(False, True))
    assert calls == [SpeedSettings(False, True)] and layout == pytest.approx(plain, abs=1e-6)
    bf16 = evaluate(model, data, "train", cpu, SpeedSettings(True, True))
    assert bf16 == pytest.approx(plain, abs=0.05)


def test_slide_target_vector() -> None:
    """Slide: a car at b_x=0.5, b_y=0.7, b_h=0.3, b_w=0.4 -> y = [1, .5, .7, .3, .4, 0, 1, 0]."""
    t = LocalizationTarget(
        torch.tensor([1.0]), torch.tensor([[0.5, 0.7, 0.3, 0.4]]), torch.tensor([1])
    )
    assert torch.allclose(t.slide_vector(3), torch.tensor([[1, 0.5, 0.7, 0.3, 0.4, 0, 1, 0]]))
    empty = LocalizationTarget(
        torch.tensor([0.0]), torch.tensor([[0.2, 0.2, 0.2, 0.2]]), torch.tensor([-1])
    )
    assert empty.slide_vector(3).tolist() == [[0.0] * 8]


def test_squared_loss_is_the_slide_formula() -> None:
    out = output(0.0, [0.4, 0.6, 0.2, 0.5], [0.0, 2.0, 0.0])
    present = LocalizationTarget(
        torch.tensor([1.0]), torch.tensor([[0.5, 0.7, 0.3, 0.4]]), torch.tensor([1])
    )
    probs = torch.tensor([0.0, 2.0, 0.0]).softmax(0)
    pred = torch.cat([torch.tensor([0.5]), torch.tensor([0.4, 0.6, 0.2, 0.5]), probs])
    expected = ((pred - present.slide_vector(3)[0]) ** 2).sum()
    assert localization_loss(out, present, "squared").item() == pytest.approx(expected.item())
    absent = LocalizationTarget(torch.tensor([0.0]), torch.zeros(1, 4), torch.tensor([-1]))
    # Only the p_c term counts when there is no object: box and class are "don't care".
    assert localization_loss(out, absent, "squared").item() == pytest.approx(0.25)
    far = output(0.0, [9.0, 9.0, 9.0, 9.0], [5.0, -5.0, 0.0])
    assert localization_loss(far, absent, "squared").item() == pytest.approx(0.25)
    assert localization_loss(far, absent, "practical").item() == pytest.approx(
        torch.nn.functional.softplus(torch.tensor(0.0)).item()
    )


def test_mirroring_swaps_landmarks_and_moves_the_box() -> None:
    data = from_scenes(40, image_size=32, seed=1, landmarks=True)
    idx = torch.arange(40)
    torch.manual_seed(0)
    x_flip, t_flip = batch(data, idx, torch.device("cpu"), mirror=True)
    x, t = batch(data, idx, torch.device("cpu"))
    flipped = ~torch.isclose(x_flip, x).flatten(1).all(1)
    assert flipped.any() and (~flipped).any()
    i = int(flipped.nonzero()[0])
    assert t_flip.box[i, 0] == pytest.approx(1 - t.box[i, 0].item())
    # the new top_left is the mirrored old top_right
    assert torch.allclose(
        t_flip.landmarks[i, 0], torch.stack([1 - t.landmarks[i, 1, 0], t.landmarks[i, 1, 1]])
    )


def test_overfit_one_batch() -> None:
    data = from_scenes(32, image_size=32, seed=2, landmarks=True)
    model = cnnlab.create_model("localizer", num_landmarks=5, input_size=32)
    x, target = batch(data, torch.arange(32), torch.device("cpu"))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss = localization_loss(model.split(model(x)), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]


def test_cli_train_eval_predict(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    opened: Callable[[Path | str], Image.Image],
) -> None:
    out = tmp_path / "run"
    assert (
        main(
            [
                "localize",
                "train",
                "--images",
                "300",
                "--image-size",
                "32",
                "--epochs",
                "3",
                "--landmarks",
                "--out",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result["test"]) >= {"accuracy", "iou_correct", "mean_iou", "landmark_error"}
    assert (out / "curves.png").stat().st_size > 5000  # loss and validation figures per epoch
    assert (out / "mistakes.png").stat().st_size > 5000  # 3 epochs: test images answered wrong
    argv = ["localize", "eval", "--checkpoint", str(out / "best.pt")]
    assert main([*argv, "--out", str(tmp_path / "ev"), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ev["figure"] == str(tmp_path / "ev" / "mistakes_test.png")
    assert Path(ev["figure"]).stat().st_size > 5000
    assert ev["accuracy"] == pytest.approx(result["test"]["accuracy"])
    rows = ev["per_class"]  # each class's share of the images and of the boxes, weighted back
    assert list(rows) == ["pedestrian", "car", "motorcycle", "no object"]
    assert sum(r["images"] for r in rows.values()) == ev["count"]
    answered = sum(r["accuracy"] * r["images"] for r in rows.values() if r["images"])
    assert answered / ev["count"] == pytest.approx(ev["accuracy"])
    objects = [r for n, r in rows.items() if n != "no object" and r["images"]]
    weighted = sum(r["mean_iou"] * r["images"] for r in objects)
    assert weighted / sum(r["images"] for r in objects) == pytest.approx(ev["mean_iou"])
    png = tmp_path / "pred.png"
    assert (
        main(
            [
                "localize",
                "predict",
                "--checkpoint",
                str(out / "best.pt"),
                "--scenes",
                "4",
                "-o",
                str(png),
                "--json",
            ]
        )
        == 0
    )
    preds = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["predictions"]
    assert len(preds) == 4 and len(preds[0]["landmarks"]) == 5 and png.stat().st_size > 5000
    ckpt, shown = str(out / "best.pt"), str(tmp_path / "shown.png")
    assert main(["localize", "predict", "--checkpoint", ckpt, "--scenes", "4", "-o", shown]) == 0
    table = capsys.readouterr().out  # without --json: y = [p_c, box, class] for every image
    assert "y = [p_c, box, class]" in table and "scene[3]" in table
    # many images: the first 50 in the table, the first 24 in the figure (one per axis)
    assert main(["localize", "predict", "--checkpoint", ckpt, "--scenes", "70", "-o", shown]) == 0
    table = " ".join(capsys.readouterr().out.split())
    assert "scene[49]" in table and "scene[50]" not in table
    assert "the first 50 of 70 images shown; --csv FILE writes all" in table
    assert "(the first 24 of 70 images)" in table
    # a file twice as wide as the model's input: found on the stretched image, reported in the
    # file's own pixels (x doubled, y kept), not in the 32x32 frame the model saw

    from cnnlab.data.scenes import make_scenes

    scene = make_scenes(1, seed=11, image_size=32, min_objects=1, max_objects=1)[0].image
    Image.fromarray(scene).save(tmp_path / "square.png")
    Image.fromarray(scene).resize((64, 32), Image.Resampling.NEAREST).save(tmp_path / "wide.png")
    files = [str(tmp_path / "square.png"), str(tmp_path / "wide.png")]
    assert main(["localize", "predict", "--checkpoint", ckpt, *files, "-o", shown, "--json"]) == 0
    square, wide = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["predictions"]
    assert square["image_size"] == [32, 32] and wide["image_size"] == [64, 32]
    x1, y1, x2, y2 = square["box_xyxy"]
    assert wide["box_xyxy"] == pytest.approx([2 * x1, y1, 2 * x2, y2], abs=0.5)
    assert wide["landmarks"][0] == pytest.approx(
        [2 * square["landmarks"][0][0], square["landmarks"][0][1]], abs=0.5
    )
    # --as-dataset: a YOLO folder with the box of each image whose p_c reaches 0.5
    draft = tmp_path / "draft"
    argv = ["localize", "predict", "--checkpoint", ckpt, *files, "-o", shown, "--json"]
    assert main([*argv, "--as-dataset", str(draft)]) == 0
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    names = (draft / "classes.txt").read_text().split()
    for row in said["predictions"]:
        found = (draft / "labels" / f"{Path(row['source']).stem}.txt").read_text().splitlines()
        frame = tuple(row["image_size"])
        line = yolo_line(names.index(row["class"]), row["box_xyxy"], frame)
        assert found == ([line] if row["object_probability"] >= 0.5 else [])
    assert said["dataset"]["images"] == 2
    # no image with p_c >= 0.5 (a model made unsure): the draft's images, and why no box is
    import cnnlab.engine.localize as engine_localize

    sure = engine_localize.predict_images

    def unsure(*given: object) -> list[dict[str, object]]:
        return [r | {"object_probability": 0.1} for r in sure(*given)]

    monkeypatch.setattr(engine_localize, "predict_images", unsure)
    assert main([*argv[:-1], "--as-dataset", str(tmp_path / "empty")]) == 0
    monkeypatch.setattr(engine_localize, "predict_images", sure)
    said_lines = " ".join(capsys.readouterr().out.split())
    assert "wrote 2 images and 0 boxes as a yolo dataset" in said_lines
    assert "no box was found to draft: no image had p_c >= 0.5" in said_lines
    # --out: each file at its own size, the box and landmarks drawn where p_c >= 0.5
    assert main([*argv, "--out", str(tmp_path / "drawn")]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["predictions"]
    for row in rows:
        with Image.open(row["drawn"]) as drawn, Image.open(row["source"]) as source:
            assert drawn.size == source.size
            changed = np.abs(np.asarray(drawn, dtype=int) - np.asarray(source.convert("RGB")))
            assert changed.any() == (row["object_probability"] >= 0.5)
    sheet = tmp_path / "boxes.csv"  # one row an image: y = [p_c, class, box] in its pixels
    import cnnlab.cli.shown as cli_shown

    monkeypatch.setattr(cli_shown, "SHOWN", 1)  # the table stops at SHOWN images
    assert (
        main(
            ["localize", "predict", "--checkpoint", ckpt, *files, "-o", shown, "--csv", str(sheet)]
        )
        == 0
    )
    said = " ".join(capsys.readouterr().out.split())
    assert f"the first 1 of 2 images shown; all in {sheet}" in said
    assert "sq" in said and "wide" not in said  # a long path is folded in the table
    with sheet.open(newline="") as f:
        written = list(csv.DictReader(f))
    assert [w["source"] for w in written] == files and written[1]["class"] == wide["class"]
    assert [float(written[1][k]) for k in ("x1", "y1", "x2", "y2")] == wide["box_xyxy"]
    assert float(written[0]["object_probability"]) == square["object_probability"]
    from cnnlab.engine.localize import predict_files  # from Python: the same rows

    assert predict_files(ckpt, files) == [square, wide]
    assert predict_files(ckpt, []) == []
    # a program's own images (a camera frame as an array, a Pillow image): the same rows
    held = [opened(files[0]), np.asarray(opened(files[1]).convert("RGB"))]
    rows = predict_files(ckpt, held)
    assert [r.pop("source") for r in rows] == ["images[0]", "images[1]"]
    assert rows == [{k: v for k, v in r.items() if k != "source"} for r in (square, wide)]
    import cnnlab.engine.predict as predicting

    monkeypatch.setattr(predicting, "CHUNK", 1)  # one image in memory at a time: the same rows
    assert predict_files(ckpt, [*files, held[1]]) == [square, wide, {**wide, "source": "images[2]"}]
    assert main(["localize", "predict", "--checkpoint", ckpt, *files, "-o", shown, "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["predictions"] == [
        square,
        wide,
    ]
    assert f"{preds[0]['object_probability']:.3f}" in table and preds[0]["class"] in table


def test_boxes_are_well_formed_whatever_the_regression_says() -> None:
    """The slide's [b_x, b_y, b_h, b_w] is an unbounded regression: a raw output with a negative
    width or a centre off the image still gives a box inside the image with x1 <= x2, y1 <= y2."""
    from cnnlab.engine.localize import _xyxy

    raw = torch.tensor([[0.5, 0.5, 0.2, 0.4], [0.02, -0.3, 0.1, -0.2], [1.4, 0.9, 0.8, 0.9]])
    boxes = _xyxy(raw)
    assert torch.allclose(boxes[0], torch.tensor([0.3, 0.4, 0.7, 0.6]))
    assert ((boxes >= 0) & (boxes <= 1)).all()
    assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()


def test_yolo_folder_source(tmp_path: Path) -> None:
    root = write_yolo(make_scenes(12, seed=3, image_size=32, max_objects=1), tmp_path / "y")
    data = load_data(LocalizeConfig(data=str(root), image_size=32))  # read as detect reads it
    assert len(data.images) == 12 and data.landmarks.shape == (12, 0, 2)
    assert ((data.pc > 0) == (data.label >= 0)).all()


def test_first_epoch_is_best_whatever_its_score(tmp_path: Path) -> None:
    """With landmarks the selection score (accuracy + IoU - landmark error) can be below -1, the
    old starting 'best': no best.pt was written and loading it failed, or a best.pt left by an
    earlier run in the same folder was evaluated as this run's."""
    from cnnlab.engine.checkpoint import load_checkpoint
    from cnnlab.engine.runlog import save_epoch

    model = torch.nn.Linear(2, 1)
    base = {"model": "x", "model_kwargs": {}, "config": {}}
    torch.save({"stale": True}, tmp_path / "best.pt")
    best = save_epoch(tmp_path, base, model, [{"epoch": 1, "val": -3.0}], -3.0, -math.inf)
    assert best == -3.0 and load_checkpoint(tmp_path / "best.pt")["epoch"] == 1
    best = save_epoch(tmp_path, base, model, [{"epoch": 2, "val": -4.0}], -4.0, best)
    assert best == -3.0 and load_checkpoint(tmp_path / "best.pt")["epoch"] == 1
    best = save_epoch(tmp_path, base, model, [{"epoch": 3, "val": -2.0}], -2.0, best)
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 3
    nan_run = tmp_path / "nan"  # even a first epoch without a score is this run's best.pt
    nan_run.mkdir()
    best = save_epoch(nan_run, base, model, [{"epoch": 1, "val": math.nan}], math.nan, -math.inf)
    assert load_checkpoint(nan_run / "best.pt")["epoch"] == 1
    # and a score after it replaces it: NaN, greater than nothing, kept epoch 1 for good
    best = save_epoch(nan_run, base, model, [{"epoch": 2, "val": -9.0}], -9.0, best)
    assert best == -9.0 and load_checkpoint(nan_run / "best.pt")["epoch"] == 2


def test_figures_are_printed_in_words() -> None:
    from cnnlab.cli.localize import _localization_line

    line = _localization_line(
        {"accuracy": 0.9625, "iou_correct": 0.856, "mean_iou": 0.6712, "count": 300}
    )
    assert line == (
        "class accuracy 96.2%, IoU >= 0.5 for 85.6% of the objects, mean IoU 0.671 on 300 images"
    )
    with_landmarks = _localization_line(
        {"accuracy": 1.0, "iou_correct": 1.0, "mean_iou": 0.9, "count": 3, "landmark_error": 0.14}
    )
    assert "landmark error 0.140 of the box diagonal on 3 images" in with_landmarks


def test_yolo_folder_and_coco_file_give_the_same_targets(tmp_path: Path) -> None:
    """The same scenes written as a YOLO folder and as a COCO file: the same single-object
    targets (first object, p_c = 0 without one), and the slide's [b_x, b_y, b_h, b_w] order."""
    from cnnlab.data.scenes import make_scenes, write_coco, write_yolo
    from cnnlab.engine.localize import LocalizeConfig, load_data

    scenes = make_scenes(12, seed=8, image_size=32)
    yolo = load_data(LocalizeConfig(data=str(write_yolo(scenes, tmp_path / "y")), image_size=32))
    coco = load_data(LocalizeConfig(data=str(write_coco(scenes, tmp_path / "c")), image_size=32))
    assert torch.equal(yolo.pc, coco.pc) and torch.equal(yolo.label, coco.label)
    assert torch.allclose(yolo.box, coco.box, atol=1e-5)
    k = int(yolo.pc.argmax())  # an image with an object: its first box, as the slide writes it
    x1, y1, x2, y2 = (scenes[k].boxes_xyxy[0] / 32).tolist()
    expected = [(x1 + x2) / 2, (y1 + y2) / 2, y2 - y1, x2 - x1]
    assert yolo.box[k].tolist() == pytest.approx(expected, abs=1e-5)
    assert yolo.pc.min() == 0  # a scene without objects is background


def test_eval_on_other_labelled_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`localize eval --data`: a copy of the run's own YOLO folder (train/val/test folders)
    scores its test split exactly as the run's own eval does, and so does a copy whose
    classes.txt lists the classes in another order (labels renumbered to match); a folder
    without split folders is scored whole, however small."""
    import shutil

    root = write_yolo(make_scenes(30, seed=21, image_size=48, max_objects=1), tmp_path / "y")
    for kind in ("images", "labels"):
        for i, path in enumerate(sorted((root / kind).iterdir())):
            split = "train" if i < 20 else "val" if i < 25 else "test"
            (root / kind / split).mkdir(exist_ok=True)
            path.rename(root / kind / split / path.name)
    run = tmp_path / "run"
    argv = ["localize", "train", "--data", str(root), "--image-size", "48", "--epochs", "2"]
    assert main([*argv, "--out", str(run), "--json"]) == 0
    capsys.readouterr()

    def score(*more: str) -> dict:
        argv = ["localize", "eval", "--checkpoint", str(run / "best.pt"), *more, "--json"]
        assert main(argv) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    own = score()
    assert own["split"] == "test" and own["count"] == 5
    names = (root / "classes.txt").read_text().split()
    order = names[::-1]
    moved = shutil.copytree(root, tmp_path / "reordered")
    (moved / "classes.txt").write_text("\n".join(order) + "\n")
    for label_file in (moved / "labels").rglob("*.txt"):
        lines = [line.split() for line in label_file.read_text().splitlines() if line.strip()]
        label_file.write_text(
            "".join(" ".join([str(order.index(names[int(c)])), *rest]) + "\n" for c, *rest in lines)
        )
    for copy in (shutil.copytree(root, tmp_path / "copy"), moved):
        other = score("--data", str(copy))
        assert other["split"] == "test" and other["data_changed"] is None
        for key in ("accuracy", "mean_iou", "iou_correct", "count"):
            assert other[key] == own[key], key
    flat = write_yolo(make_scenes(3, seed=22, image_size=48), tmp_path / "few")
    assert score("--data", str(flat))["count"] == 3


def test_mistakes_are_the_images_answered_worst(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Wrong presence or class first, then boxes that miss (IoU < 0.5), each group by IoU,
    judged as ``evaluate`` judges; right answers are not drawn. Each drawn image carries its
    true class and box."""
    import math

    import cnnlab.engine.localize as localize
    from cnnlab.data.localization import LocalizationData
    from cnnlab.data.scenes import MEAN, STD
    from cnnlab.models.heads import split_localization

    car = [0.5, 0.5, 0.4, 0.4]  # b_x, b_y, b_h, b_w: pixels 3..7 of a 10 px image
    has = [1, 1, 1, 0, 0, 1]
    data = LocalizationData(
        images=torch.arange(6, dtype=torch.uint8).view(6, 1, 1, 1).expand(6, 3, 10, 10),
        pc=torch.tensor(has, dtype=torch.float32),
        box=torch.tensor([car if h else [0.0] * 4 for h in has]),
        label=torch.tensor([1, 1, 1, -1, -1, 1]),
        landmarks=torch.zeros(6, 0, 2),
        class_names=["pedestrian", "car"],
        splits={"test": torch.arange(6)},
    )
    said = [  # (object probability, class, predicted box as b_x, b_y, b_h, b_w)
        (0.9, 1, car),  # right, IoU 1
        (0.9, 1, [0.7, 0.5, 0.4, 0.4]),  # right class, IoU 1/3: a box that misses
        (0.2, 1, [0.05, 0.05, 0.1, 0.1]),  # no object said: wrong
        (0.9, 0, car),  # an object where there is none: wrong
        (0.1, 1, car),  # none, rightly
        (0.9, 0, [0.5, 0.45, 0.3, 0.4]),  # wrong class, IoU 0.75
    ]
    y = torch.tensor(
        [[math.log(p / (1 - p)), *b, *(5.0 * (c == k) for k in range(2))] for p, c, b in said]
    )

    class Stub(torch.nn.Module):  # each image's pixels are its index: its row of y
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return y[((x[:, 0, 0, 0] * STD + MEAN) * 255).round().long()]

        def split(self, out: torch.Tensor) -> LocalizationOutput:
            return split_localization(out, 2, 0)

    seen: dict = {}

    def capture(images, drawn, path, threshold=0.5, truth=None, title=""):
        seen.update(drawn=drawn, truth=truth)
        return Path(path)

    monkeypatch.setattr(localize, "draw_predictions", capture)
    model, cpu = Stub(), torch.device("cpu")
    said_on = localize.answers(model, data, data.splits["test"], cpu)
    assert localize.draw_mistakes(data, "test", said_on, tmp_path / "m.png") == tmp_path / "m.png"
    assert [r["object_probability"] for r in seen["drawn"]] == pytest.approx([0.2, 0.9, 0.9, 0.9])
    assert [r["class"] for r in seen["drawn"]] == ["car", "pedestrian", "pedestrian", "car"]
    assert [t["class"] for t in seen["truth"]] == ["car", "car", None, "car"]
    assert seen["truth"][0]["box_xyxy"] == pytest.approx([3, 3, 7, 7])
    assert seen["truth"][0]["iou"] is None  # no box said
    assert seen["truth"][1]["iou"] == pytest.approx(0.75)
    assert seen["truth"][3]["iou"] == pytest.approx(1 / 3)
    # the same judgement as the reported figures
    assert localize.evaluate(model, data, "test", cpu)["accuracy"] == pytest.approx(3 / 6)
    data.splits["right"] = torch.tensor([0, 4])
    right = localize.answers(model, data, data.splits["right"], cpu)
    assert localize.draw_mistakes(data, "right", right, tmp_path / "none.png") is None
