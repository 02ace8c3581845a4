"""Semantic segmentation: U-Net shapes, transposed-convolution sizes, losses, metrics, CLI."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import cnnlab
from cnnlab.cli import main
from cnnlab.data.palettes import voc_colormap
from cnnlab.data.scenes import make_scenes, write_masks
from cnnlab.engine.runs import summarise
from cnnlab.engine.segment import VOID, confusion_matrix, segmentation_metrics
from cnnlab.engine.segment_data import folder_segmentation, scenes_segmentation
from cnnlab.engine.segment_maps import colorize, upsampled_argmax, upsampled_strips
from cnnlab.errors import CnnlabError
from cnnlab.losses.segmentation import dice_loss, segmentation_loss
from cnnlab.ops import transposed_output_size
from cnnlab.viz.summary import summarize


def test_unet_paper_572_to_388() -> None:
    with torch.device("meta"):
        model = cnnlab.create_model("unet_paper")
    s = summarize(model, (1, 572, 572))
    shapes = [r.slide_shape for r in s.rows]
    assert shapes[0] == (570, 570, 64) and shapes[1] == (568, 568, 64)  # valid 3x3 convs
    assert (28, 28, 1024) in shapes  # the bottleneck
    assert (56, 56, 512) in shapes  # the first up-conv doubles 28 -> 56
    assert shapes[-1] == (388, 388, 2)


@pytest.mark.parametrize("s, p, expected", [(1, 0, 4), (1, 1, 2), (2, 0, 5), (2, 1, 3)])
def test_transposed_conv_sizes_of_the_slide(s: int, p: int, expected: int) -> None:
    """The slide's four cases for a 2x2 input and a 3x3 kernel: (i - 1) s + k - 2p."""
    assert transposed_output_size(2, 3, s, p) == expected
    y = F.conv_transpose2d(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 3, 3), stride=s, padding=p)
    assert y.shape[-1] == expected


@pytest.mark.parametrize("upsample", ["transpose", "bilinear"])
def test_padded_unet_keeps_any_size(upsample: str) -> None:
    model = cnnlab.create_model("unet", upsample=upsample, depth=3, base_width=4)
    for h, w in ((37, 50), (64, 64), (9, 17)):
        assert model(torch.randn(1, 3, h, w)).shape == (1, 4, h, w)


def test_validation_runs_the_network_as_training_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a training's settings (as each epoch's validation is: test_training_engine.py),
    every batch of 32 runs through ``settings.forward`` with them. On a U-Net fitted to its 40
    scenes, the channels-last layout alone (fp32) scores as plain fp32, and bf16 autocast within
    0.05 mean IoU of it."""
    from cnnlab.engine.performance import SpeedSettings
    from cnnlab.engine.segment import evaluate_segmenter, make_batch

    torch.manual_seed(0)
    data = scenes_segmentation(40, image_size=32, seed=3)
    model = cnnlab.create_model("unet", depth=3, base_width=8)
    idx, cpu = torch.arange(40), torch.device("cpu")
    x, y = make_batch(data, idx)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        loss = segmentation_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    plain = evaluate_segmenter(model, data, idx, cpu)
    assert plain["mean_iou"] > 0.4  # fitted: every class found, a score worth comparing
    calls = []
    forward = SpeedSettings.forward
    monkeypatch.setattr(
        SpeedSettings, "forward", lambda self, *a: calls.append(self) or forward(self, *a)
    )
    layout = evaluate_segmenter(model, data, idx, cpu, SpeedSettings(False, True))
    assert calls == [SpeedSettings(False, True)] * 2  # 40 images in batches of 32
    assert layout["per_class_iou"] == pytest.approx(plain["per_class_iou"], abs=1e-6)
    bf16 = evaluate_segmenter(model, data, idx, cpu, SpeedSettings(True, True))
    assert bf16["mean_iou"] == pytest.approx(plain["mean_iou"], abs=0.05)


def test_metrics_hand_example() -> None:
    target = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2]])
    pred = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1], [2, 2, 0, 2]])
    conf = confusion_matrix(pred, target, 3)
    assert conf.tolist() == [[3, 1, 0], [0, 4, 0], [1, 0, 3]]
    m = segmentation_metrics(conf)
    assert m["per_class_iou"] == pytest.approx([3 / 5, 4 / 5, 3 / 4])
    assert m["mean_iou"] == pytest.approx((3 / 5 + 4 / 5 + 3 / 4) / 3)
    assert m["per_class_dice"] == pytest.approx([6 / 8, 8 / 9, 6 / 7])
    assert m["pixel_accuracy"] == pytest.approx(10 / 12)


def test_losses() -> None:
    labels = torch.randint(0, 3, (2, 8, 8))
    perfect = F.one_hot(labels, 3).permute(0, 3, 1, 2).float() * 50
    assert dice_loss(perfect, labels) < 1e-3
    assert dice_loss(torch.zeros(2, 3, 8, 8), labels) > 0.3
    both = segmentation_loss(perfect, labels, "ce+dice")
    assert both == pytest.approx(
        segmentation_loss(perfect, labels, "ce") + segmentation_loss(perfect, labels, "dice")
    )
    w = torch.tensor([0.0, 1.0, 1.0])
    assert segmentation_loss(torch.zeros(2, 3, 8, 8), labels, "ce", w) == pytest.approx(
        np.log(3), abs=1e-5
    )


def test_void_pixels_are_neither_trained_on_nor_scored() -> None:
    """VOC's 255 border: the losses and the confusion matrix see the labelled pixels only."""
    torch.manual_seed(0)
    labels = torch.randint(0, 3, (2, 8, 8))
    labels[:, 2:5, 3:6] = VOID
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    labelled = labels != VOID
    ce = segmentation_loss(logits, labels, "ce")
    flat = logits.permute(0, 2, 3, 1)[labelled]  # (n, 3) the labelled pixels' scores
    assert ce.item() == pytest.approx(F.cross_entropy(flat, labels[labelled]).item(), rel=1e-6)
    for kind in ("ce", "dice"):  # scores at void pixels change nothing and get no gradient
        loss = segmentation_loss(logits, labels, kind)
        (grad,) = torch.autograd.grad(loss, logits)
        assert grad.permute(0, 2, 3, 1)[~labelled].abs().max() == 0
        moved = logits.detach().clone()
        moved.permute(0, 2, 3, 1)[~labelled] += 10 * torch.randn(int((~labelled).sum()), 3)
        assert segmentation_loss(moved, labels, kind) == pytest.approx(loss.item(), rel=1e-6)
    # dice over the labelled pixels = dice of those pixels alone, laid out as one row
    one_row = dice_loss(flat.detach().T[None, :, None, :], labels[labelled][None, None, :])
    dice = segmentation_loss(logits, labels, "dice").item()
    assert dice == pytest.approx(one_row.item(), rel=1e-6)
    assert segmentation_loss(logits, torch.full_like(labels, VOID), "ce+dice") == 0  # not NaN
    target = torch.tensor([[0, VOID, 1], [2, 2, VOID]])
    pred = torch.tensor([[0, 1, 1], [2, 0, 0]])
    assert confusion_matrix(pred, target, 3).tolist() == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]


def test_augmentation_marks_pixels_from_outside_as_void() -> None:
    """A rotation's corners and a crop's padding are black in the image and VOID in the map
    (not background, which the network would learn black means); inside, classes move with
    the image, and VOID pixels of the data stay VOID."""
    from cnnlab.data.augment import build_augmentation
    from cnnlab.engine.segment import make_batch
    from cnnlab.engine.segment_data import SegmentationData

    masks = torch.ones(4, 32, 32, dtype=torch.long)
    masks[:, :, :8] = 2
    masks[:, 0, 0] = VOID  # a pixel nobody labelled
    data = SegmentationData(
        torch.full((4, 3, 32, 32), 200, dtype=torch.uint8), masks, ("bg", "a", "b")
    )
    torch.manual_seed(0)
    for names in (("rotate",), ("crop",)):
        augment = build_augmentation(names, image_size=32, channels=3, data_keys=("input", "mask"))
        augment[0].p = 1.0  # every image moved
        _, y = make_batch(data, torch.arange(4), augment)
        assert (y == 0).sum() == 0  # no pixel became background
        assert (y == VOID).sum() > 4 and ((y == 1) | (y == 2) | (y == VOID)).all()
    _, y = make_batch(data, torch.arange(4))
    assert torch.equal(y, masks)


def test_overfit_one_batch() -> None:
    data = scenes_segmentation(4, image_size=32, seed=1)
    model = cnnlab.create_model("unet", depth=3, base_width=8)
    x = (data.images.float() / 255 - 0.5) / 0.25
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(80):
        loss = segmentation_loss(model(x), data.masks)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_mask_folder_and_errors(tmp_path: Path) -> None:
    with pytest.raises(CnnlabError, match=r"nowhere: not a folder \(expected scenes, pets"):
        folder_segmentation(tmp_path / "nowhere")
    root = write_masks(make_scenes(4, seed=2, image_size=32), tmp_path / "m")
    data = folder_segmentation(root, 32)
    assert data.images.shape == (4, 3, 32, 32) and data.class_names[0] == "background"
    # resized to --image-size: nearest-neighbour keeps every mask's class indices (2x: each
    # pixel becomes a 2x2 block), and images of other sizes join the set
    with Image.open(root / "masks" / "000002.png") as mask:
        mask.resize((48, 40), Image.Resampling.NEAREST).save(root / "masks" / "000002.png")
    with Image.open(root / "images" / "000002.png") as image:
        image.resize((48, 40)).save(root / "images" / "000002.png")
    big = folder_segmentation(root, 64)
    assert big.images.shape == (4, 3, 64, 64) and big.masks.shape == (4, 64, 64)
    twice = data.masks[0].repeat_interleave(2, 0).repeat_interleave(2, 1)
    assert big.masks[0].equal(twice) and set(big.masks[2].unique().tolist()) <= {0, 1, 2, 3}
    mask_png = root / "masks" / "000001.png"
    with Image.open(mask_png) as mask:
        mask.convert("L").save(mask_png.with_suffix(".jpg"))
    mask_png.unlink()
    with pytest.raises(CnnlabError, match=r"missing mask .* 000001\.jpg is there, but masks must"):
        folder_segmentation(root)
    mask_png.with_suffix(".jpg").unlink()
    Image.fromarray(np.full((16, 16), 9, np.uint8)).save(root / "masks" / "000001.png")
    with pytest.raises(CnnlabError, match=r"000001\.png: mask is 16x16"):
        folder_segmentation(root)
    Image.fromarray(np.full((32, 32), 9, np.uint8)).save(root / "masks" / "000001.png")
    with pytest.raises(CnnlabError, match=r"class index 9 is not in classes\.txt"):
        folder_segmentation(root)
    colours = np.zeros((32, 32, 3), np.uint8)
    colours[:8] = (200, 30, 30)  # a mask painted in colours, not class indices
    Image.fromarray(colours).save(root / "masks" / "000001.png")
    with pytest.raises(
        CnnlabError, match=r"000001\.png: a colour image, .* \(256 pixels are no class's colour, "
    ) as caught:
        folder_segmentation(root)
    assert "most often (200, 30, 30)" in str(caught.value)
    # the same maps saved as RGB by an image editor (VOC's colours, as write_masks draws them;
    # or the colours of segment predict's maps) are read back as the same class indices
    recoloured = tmp_path / "rgb"
    shutil.copytree(root, recoloured)
    Image.fromarray(np.asarray(data.masks[1], np.uint8), "L").save(root / "masks" / "000001.png")
    Image.fromarray(voc_colormap()[data.masks[1].numpy()]).save(recoloured / "masks" / "000001.png")
    busy = max((0, 3), key=lambda k: len(data.masks[k].unique()))  # the more classes
    assert len(data.masks[busy].unique()) > 1  # an object's colour differs between the two
    for k in (0, 2, 3):
        with Image.open(root / "masks" / f"{k:06d}.png") as m:
            m.convert("RGBA").save(recoloured / "masks" / f"{k:06d}.png")
    predicted = colorize(np.asarray(data.masks[busy]))  # as segment predict draws a map
    predicted[0, 0] = voc_colormap()[VOID]  # VOC's void: only VOC's colours have it
    Image.fromarray(predicted).save(recoloured / "masks" / f"{busy:06d}.png")
    with pytest.raises(CnnlabError, match=r"\(1 pixel is no class's colour, most often \(224"):
        folder_segmentation(recoloured, 64)
    predicted[0, 0] = colorize(np.asarray(data.masks[busy]))[0, 0]
    Image.fromarray(predicted).save(recoloured / "masks" / f"{busy:06d}.png")
    assert folder_segmentation(recoloured, 64).masks.equal(folder_segmentation(root, 64).masks)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(root / "masks" / "000001.png")
    assert folder_segmentation(root, 32).masks[1].max() == 0  # a gray RGB mask: indices
    binary = np.zeros((32, 32), bool)
    binary[4:20, 6:12] = True
    Image.fromarray(binary).save(root / "masks" / "000001.png")  # mode "1": classes 0 and 1
    read = folder_segmentation(root, 32).masks[1]
    assert read.unique().tolist() == [0, 1] and read.bool().equal(torch.from_numpy(binary))
    deep = binary.astype(np.uint16) * 2  # a 16-bit mask: class indices read as they are
    Image.fromarray(deep).save(root / "masks" / "000001.png")
    assert folder_segmentation(root, 32).masks[1].equal(torch.from_numpy(deep.astype(np.int64)))
    deep[0, 0] = 300  # was clipped to 255 by Pillow's 8-bit conversion: void, silently
    Image.fromarray(deep).save(root / "masks" / "000001.png")
    with pytest.raises(CnnlabError, match=r"000001\.png: class index 300 is not in classes"):
        folder_segmentation(root)
    # 255 is VOC's "void" (nobody labelled it): kept as such; but when every mask holds only 0
    # and 255, they are black-and-white masks stored the wrong way round: an error
    Image.fromarray(binary.astype(np.uint8) * 255).save(root / "masks" / "000001.png")
    assert folder_segmentation(root, 32).masks[1].unique().tolist() == [0, VOID]
    for path in (root / "masks").glob("*.png"):
        with Image.open(root / "images" / path.name) as image:
            size = image.size
        Image.fromarray(binary.astype(np.uint8) * 255).resize(size, Image.NEAREST).save(path)
    with pytest.raises(
        CnnlabError, match=r"masks: the masks hold only 0 and 255.* indices 0 and 1"
    ):
        folder_segmentation(root)


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
                "segment",
                "train",
                "--images",
                "40",
                "--image-size",
                "32",
                "--epochs",
                "2",
                "--out",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= r["test"]["mean_iou"] <= 1 and len(r["test"]["per_class_iou"]) == 4
    assert (out / "curves.png").stat().st_size > 5000  # loss and validation IoU per epoch
    assert (out / "worst_maps.png").stat().st_size > 5000  # the test images it gets least right
    row = summarise(out)  # what `cnnlab runs` shows of it
    assert (row.task, row.state, row.progress) == ("segment", "finished", "2/2 epochs")
    assert row.figures == {"test mIoU": r["test"]["mean_iou"]}
    assert main(["segment", "eval", "--checkpoint", str(out / "best.pt"), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ev["mean_iou"] == pytest.approx(r["test"]["mean_iou"])
    assert sum(ev["per_class_pixels"]) == ev["images"] * 32 * 32  # scenes label every pixel
    pairs = zip(ev["per_class_iou"], ev["per_class_pixels"], strict=True)
    present = [iou for iou, n in pairs if n]
    assert ev["mean_iou"] == pytest.approx(sum(present) / len(present))
    drawn = tmp_path / "eval"
    argv = ["segment", "eval", "--checkpoint", str(out / "best.pt"), "--out", str(drawn)]
    assert main([*argv, "--json"]) == 0
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert said["figure"] == str(drawn / "worst_maps_test.png") and Path(said["figure"]).is_file()
    assert main(["segment", "eval", "--checkpoint", str(out / "best.pt")]) == 0
    shown = capsys.readouterr().out  # a row a class: its pixels, IoU and Dice
    (car,) = [line.split() for line in shown.splitlines() if line.startswith("car ")]
    k = 2  # background, pedestrian, car, motorcycle
    iou, dice = ev["per_class_iou"][k], ev["per_class_dice"][k]
    assert car == ["car", f"{ev['per_class_pixels'][k]:,}", f"{iou:.3f}", f"{dice:.3f}"]
    assert (
        main(
            [
                "segment",
                "predict",
                "--checkpoint",
                str(out / "best.pt"),
                "--scenes",
                "2",
                "--out",
                str(tmp_path / "pred"),
                "-o",
                str(tmp_path / "seen.png"),
                "--json",
            ]
        )
        == 0
    )
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    preds = said["predictions"]
    assert said["figure"] == str(tmp_path / "seen.png") and (tmp_path / "seen.png").is_file()
    assert sum(preds[0]["pixel_counts"].values()) == 32 * 32
    assert Path(preds[0]["overlay"]).is_file() and Path(preds[0]["map"]).is_file()
    # two photos called 0.png in different folders: two pairs of files, not one overwritten
    photos = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        photos.append(tmp_path / folder / "0.png")
        with Image.open(preds[0]["overlay"]) as overlay:
            overlay.convert("RGB").save(photos[-1])
    argv = ["segment", "predict", "--checkpoint", str(out / "best.pt"), "--out", str(tmp_path)]
    assert main([*argv, *map(str, photos), "--json"]) == 0
    preds = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["predictions"]
    assert [p["source"] for p in preds] == [str(p) for p in photos]
    assert len({p["map"] for p in preds}) == 2 and all(Path(p["map"]).is_file() for p in preds)
    # a photo of another size is segmented at the training size (32 px) and its map brought
    # back to the photo's own pixels; at the training size that is the model's own arg-max
    with Image.open(photos[0]) as photo:
        photo.resize((64, 48)).save(tmp_path / "wide.png")
    assert main([*argv, str(tmp_path / "wide.png"), str(photos[0]), "--json"]) == 0
    wide, same = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["predictions"]
    with Image.open(wide["map"]) as wide_map:  # a palette PNG: class indices, shown in colour
        assert wide_map.size == (64, 48) and wide_map.mode == "P"
        wide_classes, wide_colours = np.asarray(wide_map), np.asarray(wide_map.convert("RGB"))
    assert sum(wide["pixel_counts"].values()) == 64 * 48
    assert same["pixel_counts"] == preds[0]["pixel_counts"]
    from cnnlab.engine.segment_maps import colorize, predict_files  # from Python: the same maps

    rows = predict_files(out / "best.pt", [tmp_path / "wide.png", photos[0]])
    assert [r["pixel_counts"] for r in rows] == [wide["pixel_counts"], same["pixel_counts"]]
    assert rows[0]["mask"].shape == (48, 64) and rows[0]["mask"].dtype == torch.uint8
    assert np.array_equal(rows[0]["mask"].numpy(), wide_classes)
    assert np.array_equal(colorize(rows[0]["mask"].numpy()), wide_colours)
    # --as-dataset: images/ and masks/ a segmenter trains on: the answers as labels to correct
    again = tmp_path / "again"
    assert main([*argv, str(tmp_path / "wide.png"), "--as-dataset", str(again), "--json"]) == 0
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert said["dataset"] == {"folder": str(again), "format": "masks", "images": 1}
    assert (again / "images" / "wide.png").read_bytes() == (tmp_path / "wide.png").read_bytes()
    assert (again / "masks" / "wide.png").read_bytes() == Path(wide["map"]).read_bytes()
    relabelled = folder_segmentation(again, image_size=32)
    assert relabelled.class_names == list(wide["pixel_counts"])
    square = Image.fromarray(wide_classes).resize((32, 32), Image.Resampling.NEAREST)
    assert np.array_equal(relabelled.masks[0].numpy(), np.asarray(square))
    held = [np.asarray(opened(tmp_path / "wide.png").convert("RGB")), opened(photos[0])]
    again = predict_files(out / "best.pt", held)  # a program's own images: the same maps
    assert [r["source"] for r in again] == ["images[0]", "images[1]"]
    assert all(torch.equal(a["mask"], r["mask"]) for a, r in zip(again, rows, strict=True))
    assert main([*argv, str(photos[0])]) == 0  # without --json: each class's share of the pixels
    shown = capsys.readouterr().out
    counts = preds[0]["pixel_counts"]
    assert "share of the pixels" in shown and "background" in shown
    assert f"{counts['background'] / sum(counts.values()):.1%}" in shown
    # --csv: a row an image, its two files and each class's pixels; the table stops at SHOWN
    import csv

    import cnnlab.cli.shown as cli_shown

    monkeypatch.setattr(cli_shown, "SHOWN", 1)
    sheet = tmp_path / "sheets" / "pixels.csv"
    assert main([*argv, *map(str, photos), "--csv", str(sheet)]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert f"the first 1 of 2 images shown; all in {sheet}" in shown
    with sheet.open(newline="") as f:
        written = list(csv.DictReader(f))
    assert list(written[0]) == ["source", "map", "overlay", *(f"{n}_pixels" for n in counts)]
    assert [(w["source"], w["map"]) for w in written] == [(p["source"], p["map"]) for p in preds]
    assert {n: int(written[1][f"{n}_pixels"]) for n in counts} == preds[1]["pixel_counts"]
    assert main([*argv, str(photos[0]), "--csv", str(tmp_path)]) == 2  # a folder: refused
    # ONNX: the U-Net exports and matches PyTorch, without the tracer's warnings about its
    # padding arithmetic (constants in a graph of fixed size, as intended)
    import warnings

    onnx_path = tmp_path / "unet.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("error", torch.jit.TracerWarning)
        assert main(["export", str(out / "best.pt"), "-o", str(onnx_path), "--json"]) == 0
    exported = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert exported["max_abs_diff"] < 1e-4 and onnx_path.is_file()


def test_augmentation_keeps_masks_aligned() -> None:
    """An image that *is* its mask (channel = label / 3) must still be its mask after the
    geometric augmentation: bilinear on the image, nearest on the mask, same transform."""
    from cnnlab.data.augment import build_augmentation

    masks = scenes_segmentation(6, image_size=48, seed=3).masks
    image = (masks[:, None].float() / 3).repeat(1, 3, 1, 1)
    aug = build_augmentation(
        ["flip", "rotate", "shear"], image_size=48, channels=3, data_keys=("input", "mask")
    )
    torch.manual_seed(0)
    x, m = aug(image, masks[:, None].float())
    y = m[:, 0].round().long()
    assert set(y.unique().tolist()) <= set(masks.unique().tolist())  # no invented labels
    assert not torch.equal(y, masks)  # things moved
    agree = ((x[:, 0] * 3).round().long() == y).float().mean()
    assert agree > 0.97  # and moved together (edges differ by interpolation only)


def test_resnet_encoder_unet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = cnnlab.create_model("unet_resnet18", num_classes=3)
    y = model(torch.randn(2, 3, 50, 70))
    assert y.shape == (2, 3, 50, 70)
    y.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    # at 32 px its last stage is 1x1: neither the up-front shape check (one image) nor a last
    # batch of one (8 training images in batches of 7) may trip batch norm
    args = ["segment", "train", "--model", "unet_resnet18", "--images", "12", "--epochs", "1"]
    args += ["--batch-size", "7"]
    assert main([*args, "--image-size", "32", "--out", str(tmp_path / "run")]) == 0
    # an opset within torch's range that cannot express the U-Net (padding sizes that depend
    # on the input need opset 11): one line, not the exporter's traceback
    ckpt = str(tmp_path / "run" / "best.pt")
    assert main(["export", ckpt, "-o", str(tmp_path / "u.onnx"), "--opset", "9"]) == 2
    assert "--opset 9: the ONNX exporter failed" in capsys.readouterr().err
    assert not (tmp_path / "u.onnx").exists()


def test_a_resnet_encoder_starts_from_pretrained_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``segment train --model unet_resnet18 --pretrained resnet18.pth``: the torchvision
    file's weights start the U-Net's ResNet encoder (its classifier unused), which
    ``--backbone-lr-mult 0`` keeps as loaded while the decoder trains; the plain U-Net, with no
    classifier inside, refuses the options before any scene is drawn."""
    from cnnlab.engine.checkpoint import load_checkpoint

    weights = tmp_path / "resnet18.pth"
    torch.manual_seed(3)  # not what the run's seed draws
    given = cnnlab.create_model("resnet18").state_dict()
    torch.save(given, weights)
    args = ["segment", "train", "--images", "12", "--epochs", "1", "--image-size", "32"]
    more = ["--pretrained", str(weights), "--backbone-lr-mult", "0"]
    run = tmp_path / "run"
    assert main([*args, "--model", "unet_resnet18", *more, "--out", str(run)]) == 0
    assert f"loaded {weights} (every tensor)" in " ".join(capsys.readouterr().err.split())
    saved = load_checkpoint(run / "best.pt")
    for name in ("conv1.weight", "layer2.0.downsample.0.weight", "layer4.1.bn2.weight"):
        assert torch.equal(saved["state_dict"][f"encoder.{name}"], given[name])
    torch.manual_seed(0)  # the U-Net as the run drew it: its decoder trained at the full rate
    drawn = cnnlab.create_model("unet_resnet18", **saved["model_kwargs"]).state_dict()
    decoder = [k for k, v in drawn.items() if not k.startswith("encoder.") and v.dim() == 4]
    assert decoder and all(not torch.equal(saved["state_dict"][k], drawn[k]) for k in decoder)
    assert main([*args, *more]) == 2
    assert "unet has none" in capsys.readouterr().err


def test_a_frozen_resnet_encoder_keeps_every_tensor_it_was_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--freeze backbone`` keeps the whole pretrained encoder, its batch norms' running
    statistics too (``--backbone-lr-mult 0`` keeps the weights, not those); ``--freeze
    stages:2`` keeps the stem and layer1 and trains layer2 on. Without ``--pretrained`` it
    warns that the fixed layers stay random."""
    from cnnlab.engine.checkpoint import load_checkpoint

    weights = tmp_path / "resnet18.pth"
    torch.manual_seed(3)
    given = cnnlab.create_model("resnet18").state_dict()
    torch.save(given, weights)
    args = ["segment", "train", "--images", "12", "--epochs", "1", "--image-size", "32"]
    args += ["--model", "unet_resnet18", "--pretrained", str(weights)]
    encoder = {k: v for k, v in given.items() if not k.startswith("fc.")}

    def saved(run: str) -> dict[str, torch.Tensor]:
        state = load_checkpoint(tmp_path / run / "best.pt")["state_dict"]
        return {k: state[f"encoder.{k}"] for k in encoder}

    # one image a batch: the encoder's last maps are 1x1 at 32 px, which batch norm cannot
    # train on, but a frozen encoder's norms do not train (the check used to refuse it too)
    one = ["--batch-size", "1", "--out", str(tmp_path / "one")]
    assert main([*args, *one]) == 2
    assert "--batch-size 1: unet_resnet18's batch norm meets 1x1 maps" in capsys.readouterr().err
    assert main([*args, "--freeze", "backbone", "--out", str(tmp_path / "all"), *one[:2]]) == 0
    assert "--freeze" not in capsys.readouterr().err  # no warning: the weights were given
    assert all(torch.equal(v, encoder[k]) for k, v in saved("all").items())
    assert main([*args, "--backbone-lr-mult", "0", "--out", str(tmp_path / "lr0")]) == 0
    moved = [k for k, v in saved("lr0").items() if not torch.equal(v, encoder[k])]
    assert moved and all(
        k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in moved
    )
    assert main([*args, "--freeze", "stages:2", "--out", str(tmp_path / "two")]) == 0
    two = saved("two")
    assert all(
        torch.equal(v, encoder[k])
        for k, v in two.items()
        if k.startswith(("conv1", "bn1", "layer1"))
    )
    assert not torch.equal(two["layer2.0.conv1.weight"], encoder["layer2.0.conv1.weight"])
    plain = ["--out", str(tmp_path / "random"), "--freeze", "stages:1"]
    assert main([*args[:-2], *plain]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert (
        "warning: --freeze stages:1 without --pretrained: the frozen layers keep their random"
        in err
    )


@pytest.mark.parametrize(
    ("scores", "size", "strip"),
    [
        ((4, 32, 32), (48, 64), 1 << 22),  # one strip
        ((3, 32, 32), (31, 97), 50),  # shrunk one way, stretched the other; strips of a row
        ((5, 16, 16), (40, 16), 7 * 16 * 5),  # 7 rows a strip, the last one short
        ((2, 9, 13), (100, 7), 300),
        ((300, 8, 8), (20, 30), 1000),  # past 256 classes
    ],
)
def test_upsampling_in_strips_is_f_interpolate(
    scores: tuple[int, int, int], size: tuple[int, int], strip: int
) -> None:
    """A photo's map is made a strip of rows at a time (bounded memory): the strips, joined,
    are ``F.interpolate``'s bilinear scores, and the map their arg-max, in ``uint8`` up to 256
    classes."""
    x = torch.randn(*scores, generator=torch.Generator().manual_seed(0))
    expected = F.interpolate(x[None], size=size, mode="bilinear", align_corners=False)[0]
    strips = list(upsampled_strips(x, size, strip))
    assert all(s.numel() <= max(strip, scores[0] * size[1]) for _, s in strips)
    assert [rows.start for rows, _ in strips] == list(range(0, size[0], strips[0][1].shape[1]))
    assert torch.allclose(torch.cat([s for _, s in strips], 1), expected, atol=1e-5)
    mask = upsampled_argmax(x, size, strip)
    assert mask.dtype == (torch.uint8 if scores[0] <= 256 else torch.int64)
    assert torch.equal(mask.long(), expected.argmax(0))
    assert torch.equal(upsampled_argmax(x, scores[1:]), x.argmax(0).to(mask.dtype))


def test_a_map_past_256_classes_is_written_in_colour() -> None:
    """A palette PNG holds 256 class indices; a map with more is saved as its colours."""
    from cnnlab.engine.segment_maps import colorize, map_image

    mask = np.array([[0, 3], [255, 300]])
    assert map_image(mask).mode == "RGB"
    assert np.array_equal(np.asarray(map_image(mask)), colorize(mask))
    assert map_image(mask[:1]).mode == "P"
    assert np.array_equal(np.asarray(map_image(mask[:1])), mask[:1])


@pytest.mark.parametrize("name", ["unet", "unet_resnet18", "unet_paper"])
def test_every_segmenter_scores_at_the_input_size(name: str) -> None:
    """What training, eval, predict, export and visualize run: scores at the image's size,
    for each registered segmentation model (the paper's via its mirrored input)."""
    from cnnlab.models.unet import at_input_size, network_input

    with torch.device("meta"):
        model = cnnlab.create_model(name, num_classes=3, in_channels=3)
        x = torch.zeros(2, 3, 40, 56)
        assert at_input_size(model, x).shape == (2, 3, 40, 56)
        seen = network_input(model, x).shape
    assert seen == ((2, 3, 252, 252) if name == "unet_paper" else (2, 3, 40, 56))


def test_eval_says_when_the_folder_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """eval splits the folder again by the run's seed; with images added since training the
    test split is another one (it may hold training images), and eval warns instead of
    reporting inflated figures silently."""
    root = write_masks(make_scenes(12, seed=4, image_size=32), tmp_path / "m")
    out = tmp_path / "run"
    train = ["segment", "train", "--data", str(root), "--epochs", "1", "--image-size", "32"]
    assert main([*train, "--out", str(out), "--json"]) == 0
    evaluate = ["segment", "eval", "--checkpoint", str(out / "best.pt"), "--json"]
    capsys.readouterr()
    assert main(evaluate) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["data_changed"] is False
    write_masks(make_scenes(4, seed=9, image_size=32), tmp_path / "more")
    for kind in ("images", "masks"):
        for f in (tmp_path / "more" / kind).iterdir():
            f.rename(root / kind / f"new_{f.name}")
    assert main(evaluate) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])["data_changed"] is True
    assert "cnnlab: warning: the test split made again now differs" in captured.err


@pytest.mark.parametrize("ultralytics", [True, False])
def test_split_mask_folders_are_the_splits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ultralytics: bool
) -> None:
    """images/train + masks/train (or train/images + train/masks, "valid" for val): the folders
    are the splits; without a test folder the run reports val and eval --split test says so."""
    flat = write_masks(make_scenes(12, seed=5, image_size=32), tmp_path / "flat")
    root = tmp_path / "split"
    root.mkdir()
    (flat / "classes.txt").rename(root / "classes.txt")
    for k, image in enumerate(sorted((flat / "images").iterdir())):
        split = "train" if k % 3 else ("val" if ultralytics else "valid")
        for kind in ("images", "masks"):
            folder = root / kind / split if ultralytics else root / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            (flat / kind / image.name).rename(folder / image.name)
    data = folder_segmentation(root, 32)
    assert data.splits is not None and {k: len(v) for k, v in data.splits.items()} == {
        "train": 8,
        "val": 4,
    }
    out = tmp_path / "run"
    train = ["segment", "train", "--data", str(root), "--epochs", "1", "--image-size", "32"]
    assert main([*train, "--out", str(out), "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["evaluated_on"] == "val" and "test" not in r
    evaluate = ["segment", "eval", "--checkpoint", str(out / "best.pt")]
    assert main([*evaluate, "--split", "val", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ev["mean_iou"] == pytest.approx(r["val"]["mean_iou"]) and not ev["data_changed"]
    assert main(evaluate) == 2
    assert "no test split" in capsys.readouterr().err


def test_a_diverging_run_stops_with_what_may_help(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A NaN loss in epoch 2 stops the run with one line: where, what may help, and the last
    checkpoint written before it (epoch 1's), which stays loadable."""
    import cnnlab.engine.segment as seg

    calls = {"n": 0}
    real = seg.segmentation_loss

    def flaky(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs) * (float("nan") if calls["n"] == 4 else 1.0)

    monkeypatch.setattr(seg, "segmentation_loss", flaky)
    out = tmp_path / "run"
    argv = ["segment", "train", "--images", "40", "--image-size", "32", "--epochs", "3"]
    assert main([*argv, "--batch-size", "16", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "loss became nan at epoch 2; stopped (" in err and "may hold" in err
    assert f"The last good checkpoint is {out / 'last.pt'}" in " ".join(err.split())
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 1


def test_coco_segmentation_paints_the_scenes_back(tmp_path: Path) -> None:
    """write_coco stores each object's visible mask as RLE; read back, the class maps equal the
    scenes' own semantic maps pixel for pixel (objects' visible masks never overlap)."""
    from cnnlab.data.scenes import write_coco
    from cnnlab.engine.segment_data import coco_segmentation

    scenes = make_scenes(6, seed=7, image_size=48)
    data = coco_segmentation(write_coco(scenes, tmp_path / "c"), 48)
    assert data.class_names == ["background", "pedestrian", "car", "motorcycle"]
    for got, scene in zip(data.masks, scenes, strict=True):
        assert np.array_equal(got.numpy(), scene.semantic)
    json_file = str(tmp_path / "c" / "annotations.json")
    argv = ["segment", "train", "--data", json_file, "--image-size", "48", "--epochs", "1"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0  # the CLI takes the .json


def test_coco_polygons_crowds_and_bad_segmentations(tmp_path: Path) -> None:
    """A hand-made polygon fills its rectangle; a smaller object in front of a larger one keeps
    its pixels whatever the annotation order; a crowd region stays background; a box-only or
    malformed annotation is an error naming the file and the annotation."""
    from cnnlab.engine.segment_data import coco_segmentation

    (tmp_path / "images").mkdir()
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    big = [[0, 0, 6, 0, 6, 12, 0, 12]]  # x 0..5, every row
    small = [[3, 2, 8, 2, 8, 5, 3, 5]]  # x 3..7, y 2..4: in front of big where they meet
    crowd = {"size": [12, 12], "counts": [132, 12]}  # uncompressed RLE, column-major: x = 11

    def write(annotations: list[dict]) -> Path:
        coco = {
            "images": [{"id": 1, "file_name": "a.png", "width": 12, "height": 12}],
            "categories": [{"id": 1, "name": "sky"}, {"id": 5, "name": "bird"}],
            "annotations": [{"image_id": 1, "bbox": [0, 0, 1, 1], **a} for a in annotations],
        }
        path = tmp_path / "a.json"
        path.write_text(json.dumps(coco))
        return path

    path = write(
        [
            {"category_id": 5, "segmentation": small},
            {"category_id": 1, "segmentation": big},
            {"category_id": 5, "segmentation": crowd, "iscrowd": 1},
        ]
    )
    expected = np.zeros((12, 12), np.int64)
    expected[:, :6] = 1
    expected[2:5, 3:8] = 2
    assert np.array_equal(coco_segmentation(path, 12).masks[0].numpy(), expected)
    for annotation, message in [
        ({"category_id": 1}, r"annotation 0: no segmentation .* cnnlab detect train"),
        ({"category_id": 1, "segmentation": [[1, 2, 3]]}, "at least 3 x, y points"),
        ({"category_id": 1, "segmentation": {"size": [5, 5], "counts": "0"}}, "not the image's"),
    ]:
        with pytest.raises(CnnlabError, match=message):
            coco_segmentation(write([annotation]), 12)


def _yolo_seg_folder(root: Path, lines: list[str]) -> None:
    """Ultralytics' segmentation layout: images/{train,val}/k.png and labels/.../k.txt holding
    ``lines[k]`` (polygon lines), names in data.yaml."""
    for k, text in enumerate(lines):
        split = "val" if k % 2 else "train"
        for kind in ("images", "labels"):
            (root / kind / split).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30), (k * 40, 90, 200)).save(root / "images" / split / f"{k}.png")
        (root / "labels" / split / f"{k}.txt").write_text(text)
    (root / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [a, b, c]\n")


def test_yolo_polygon_labels_paint_class_maps(tmp_path: Path) -> None:
    """Ultralytics' polygon labels: an axis-aligned rectangle fills exactly its pixels (hand
    oracle), class c is painted c + 1, a small object in front of a larger one keeps its
    pixels, the folder's splits are kept; detection reads the polygons' bounds as boxes."""
    from cnnlab.engine.detection_data import yolo_folder_data
    from cnnlab.engine.segment_data import yolo_segmentation

    rect = "0 0.25 0.25 0.75 0.25 0.75 0.5 0.25 0.5"  # x 4..12, y 4..8 at 16 px
    small = "2 0.375 0.3125 0.5 0.3125 0.5 0.4375 0.375 0.4375"  # x 6..8, y 5..7, inside it
    _yolo_seg_folder(tmp_path, [f"{small}\n{rect}\n", "1 0 0 1 0 0 1\n", ""])
    for given in (tmp_path, tmp_path / "data.yaml"):
        data = yolo_segmentation(given, 16) if given.suffix else folder_segmentation(given, 16)
        assert data.class_names == ["background", "a", "b", "c"]
        expected = torch.zeros(16, 16, dtype=torch.int64)
        expected[4:8, 4:12] = 1
        expected[5:7, 6:8] = 3
        assert torch.equal(data.masks[0], expected)
        lower_left = torch.tensor([[int(x + y < 16) for x in range(16)] for y in range(16)])
        assert (data.masks[1] == 0).all()  # images/train/2.png has no labels: background only
        assert (data.masks[2] == 2 * lower_left).float().mean() > 0.9  # the triangle's half
        assert data.splits is not None and data.splits["val"].tolist() == [2]
    boxes = yolo_folder_data(str(tmp_path), 16).boxes[0]
    assert torch.allclose(
        boxes, torch.tensor([[0.375, 0.3125, 0.5, 0.4375], [0.25, 0.25, 0.75, 0.5]])
    )
    (tmp_path / "labels" / "train" / "2.txt").write_text("1 0.5 0.5 0.2 0.2\n")  # a box line
    with pytest.raises(CnnlabError, match=r"2\.png: its label file has boxes; segmentation needs"):
        folder_segmentation(tmp_path, 16)


def test_segment_train_on_a_yolo_polygon_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [f"{k % 3} 0.1 0.1 0.6 0.1 0.35 0.7\n" for k in range(12)]
    _yolo_seg_folder(tmp_path / "d", lines)
    args = ["segment", "train", "--data", str(tmp_path / "d" / "data.yaml"), "--epochs", "1"]
    assert main([*args, "--image-size", "32", "--out", str(tmp_path / "run"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["evaluated_on"] == "val" and len(result["val"]["per_class_iou"]) == 4


def test_overlap_tile_is_the_papers_mirrored_input() -> None:
    """The unpadded U-Net on an image whose side is a valid output side: its scores equal the
    raw network on the image mirrored by the context c on every side (Ronneberger et al. 2015,
    Fig. 2; c = 92 for 572 -> 388), with torch's reflect padding as the oracle. Other sides
    keep their size; a margin wider than the image is mirrored again."""
    from cnnlab.models.unet import UNet, mirror_pad

    torch.manual_seed(0)
    net = UNet(num_classes=3, in_channels=3, depth=2, base_width=4).eval()
    sides = {n: net.unpadded_output_side(n) for n in range(1, 200)}
    # the first input side whose output is wider than the margin c = (in - out) / 2, so that
    # torch's reflect padding takes the margin in one step
    side, out = next((n, o) for n, o in sides.items() if o is not None and o > (n - o) // 2)
    c = (side - out) // 2
    assert (side, out, c) == (64, 24, 20)  # depth 2: in 4b + 28 -> out 4b - 12
    x = torch.randn(2, 3, out, out)
    with torch.no_grad():
        expected = net(F.pad(x, (c, c, c, c), mode="reflect"))
        assert expected.shape[-2:] == (out, out)
        assert torch.allclose(net.overlap_tile(x), expected, atol=1e-6)
        assert net.overlap_tile(torch.randn(1, 3, out - 3, out + 5)).shape == (
            1,
            3,
            out - 3,
            out + 5,
        )
    assert cnnlab.create_model("unet_paper").unpadded_output_side(572) == 388
    small = torch.arange(6.0).view(1, 1, 2, 3)
    wide = mirror_pad(small, 5, 4, 3, 2)  # wider than the image: reflected again
    assert wide.shape == (1, 1, 7, 12)
    row = wide[0, 0, 3].tolist()  # the image's first row, mirrored out to both sides
    assert row == [1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2]


def test_unet_paper_trains_on_rgb_scenes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The published U-Net (unpadded, made for one grey channel) trains on RGB images of any
    size through the overlap-tile input, and its maps have the images' size."""
    out = tmp_path / "run"
    args = ["segment", "train", "--model", "unet_paper", "--images", "12", "--image-size", "32"]
    assert main([*args, "--epochs", "1", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= result["test"]["pixel_accuracy"] <= 1
    maps = tmp_path / "maps"
    assert (
        main(["segment", "predict", "--checkpoint", str(out / "best.pt"), "--out", str(maps)]) == 0
    )
    with Image.open(next(maps.glob("*map*.png"))) as first_map:
        assert first_map.size == (32, 32)
    for what, options in (  # on the mirrored input the network sees
        ("patches", ["--layers", "2", "--units", "2"]),
        ("activations", ["--channels", "2"]),
    ):
        figure = tmp_path / f"{what}.png"
        vis = ["visualize", what, "--checkpoint", str(out / "best.pt"), "--limit", "4"]
        assert main([*vis, *options, "-o", str(figure)]) == 0
        assert figure.is_file()
    from cnnlab.engine.export import export_onnx
    from cnnlab.engine.predict import onnx_predict, onnx_session

    exported = export_onnx(out / "best.pt", tmp_path / "unet.onnx", samples=1)
    assert exported.max_abs_diff < 1e-4  # the graph holds the mirroring and the cut
    session, _ = onnx_session(exported.path)
    assert onnx_predict(session, torch.randn(2, 3, 32, 32)).shape == (2, 4, 32, 32)


def test_training_on_masks_with_voc_void_borders(tmp_path: Path) -> None:
    """A mask folder as VOC draws it: a 255 border around every object, trained on as not
    labelled (before: "class index 255 is not in classes.txt")."""
    from skimage.segmentation import find_boundaries

    from cnnlab.engine.segment import pixel_counts

    root = write_masks(make_scenes(12, seed=3, image_size=32), tmp_path / "voc_like")
    for path in sorted((root / "masks").glob("*.png")):
        with Image.open(path) as m:
            mask, palette = np.array(m), m.getpalette()
        mask[find_boundaries(mask, mode="inner") & (mask > 0)] = VOID
        painted = Image.fromarray(mask, mode="P")
        painted.putpalette(palette)
        painted.save(path)
    data = folder_segmentation(root, 32)
    void = data.masks == VOID
    assert void.any()
    every = torch.arange(len(data.masks))
    counts = pixel_counts(data, every)
    assert counts.sum() == (~void).sum()  # void pixels are no class's pixels
    run = tmp_path / "run"
    args = ["segment", "train", "--data", str(root), "--image-size", "32", "--epochs", "1"]
    assert main([*args, "--class-weights", "balanced", "--out", str(run)]) == 0
    assert main(["segment", "eval", "--checkpoint", str(run / "best.pt")]) == 0
    # Dice alone has no term to weigh: the weights would be ignored without a word
    dice = ["--loss", "dice", "--class-weights", "balanced", "--out", str(tmp_path / "dice")]
    assert main([*args, *dice]) == 2 and not (tmp_path / "dice").exists()


def test_eval_on_other_labelled_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`segment eval --data`: the same scenes as a mask folder whose classes.txt lists the
    object classes in another order (mask indices renumbered to match) score exactly as the
    original, and as their COCO and YOLO-polygon exports come close; an unknown class is an
    error."""
    import shutil

    from cnnlab.data.scenes import write_coco

    scenes = make_scenes(12, seed=4, image_size=32)
    root = write_masks(scenes, tmp_path / "m")
    run = tmp_path / "run"
    argv = ["segment", "train", "--data", str(root), "--image-size", "32", "--epochs", "2"]
    assert main([*argv, "--out", str(run), "--json"]) == 0
    capsys.readouterr()

    def score(data: Path) -> dict:
        argv = ["segment", "eval", "--checkpoint", str(run / "best.pt"), "--data", str(data)]
        assert main([*argv, "--json"]) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    assert score(root)["split"] == "test"  # the run's own data: its test split, as without --data
    copy = shutil.copytree(root, tmp_path / "copy")  # the same images elsewhere: all are scored
    original = score(copy)
    assert original["split"] == "all" and original["images"] == 12
    assert 0 < original["pixel_accuracy"] < 1
    names = (root / "classes.txt").read_text().split()
    order = [names[0], *names[:0:-1]]  # background first, the object classes reversed
    moved = tmp_path / "reordered"
    shutil.copytree(root, moved)
    (moved / "classes.txt").write_text("\n".join(order) + "\n")
    lookup = np.array([order.index(n) for n in names], np.uint8)
    for path in (moved / "masks").glob("*.png"):
        with Image.open(path) as mask:
            indices = np.array(mask)
        Image.fromarray(lookup[indices]).save(path)
    reordered = score(moved)
    for key in ("per_class_iou", "mean_iou", "pixel_accuracy"):
        assert reordered[key] == pytest.approx(original[key], abs=1e-12), key
    coco = score(write_coco(scenes, tmp_path / "c"))
    assert coco["pixel_accuracy"] == pytest.approx(original["pixel_accuracy"], abs=0.02)
    (moved / "classes.txt").write_text("\n".join(["background", "zebra", *order[2:]]) + "\n")
    argv = ["segment", "eval", "--checkpoint", str(run / "best.pt"), "--data", str(moved)]
    assert main(argv) == 2
    assert "class(es) zebra unknown to the checkpoint" in capsys.readouterr().err


def test_predict_figure_shows_each_image_beside_its_map(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """segment predict -o: the image, then its colour map (the palette's colour of each class,
    stretched square by nearest pixels), the map captioned with its largest non-background
    classes' shares, and a swatch for each class but the background."""
    import cnnlab.viz.plots as plots
    from cnnlab.data.palettes import MAP_COLOURS
    from cnnlab.engine.segment_maps import plot_predictions

    seen: dict = {}

    def capture(images, captions, path, title="", colors=None, cols=4, legend=()):
        seen.update(images=images, captions=captions, legend=legend, cols=cols)
        return Path(path)

    monkeypatch.setattr(plots, "plot_captioned", capture)
    mask = torch.zeros(4, 8, dtype=torch.long)
    mask[:, :2] = 2  # a quarter car
    mask[0, 7] = 1  # one pixel of 32 pedestrian
    image = torch.full((3, 4, 8), 200, dtype=torch.uint8)
    names = ["background", "pedestrian", "car"]
    drawn = [("photos/a.png", image, mask), ("b.png", image, torch.zeros_like(mask))]
    plot_predictions(drawn, names, tmp_path / "f.png")
    assert seen["captions"] == ["a.png", "car 25%, pedestrian 3%", "b.png", "all background"]
    assert seen["images"].shape == (4, 3, 128, 128) and seen["images"].dtype == torch.uint8
    assert (seen["images"][0] == 200).all()  # the image itself
    car = torch.tensor(MAP_COLOURS[2].tolist(), dtype=torch.uint8)[:, None]
    assert (seen["images"][1][:, :, :32].reshape(3, -1) == car).all()  # left quarter: car
    assert (seen["images"][1][:, 32:, 32:].reshape(3, -1) == 0).all()  # background: black
    assert (seen["images"][3] == 0).all()
    assert seen["legend"] == [
        ("pedestrian", MAP_COLOURS[1].tolist()),
        ("car", MAP_COLOURS[2].tolist()),
    ]
    assert seen["cols"] % 2 == 0  # an image and its map stay on one row


def test_worst_maps_are_the_images_least_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model that calls every pixel background gets right each image's share of labelled
    background pixels: the worst are the least background, in that order; an image nobody
    labelled has nothing to get wrong. Each is drawn as image, true map (void white) and
    predicted map."""
    import cnnlab.viz.plots as plots
    from cnnlab.data.palettes import MAP_COLOURS
    from cnnlab.engine.segment import draw_worst_maps, score_maps, worst_maps
    from cnnlab.engine.segment_data import SegmentationData

    class AllBackground(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            scores = torch.zeros(len(x), 3, *x.shape[2:])
            scores[:, 0] = 1
            return scores

    masks = torch.zeros(5, 4, 4, dtype=torch.int64)
    masks[0, :2] = 1  # half right
    masks[1, :3] = 2  # a quarter right
    masks[2] = VOID  # nothing labelled
    masks[3, 0, 0] = 1  # 15 of 16 right
    masks[4, :3] = 1
    masks[4, 3] = VOID  # nothing right of the 12 labelled
    data = SegmentationData(
        torch.full((5, 3, 4, 4), 90, dtype=torch.uint8), masks, ["bg", "a", "b"]
    )
    model, cpu = AllBackground(), torch.device("cpu")
    conf, shares = score_maps(model, data, torch.arange(5), cpu)  # the pass that scores
    assert shares.tolist() == [0.5, 0.25, float("inf"), 15 / 16, 0.0]
    assert conf.sum() == 16 * 4 - 4 and (conf[:, 1:] == 0).all()  # void pixels left out
    chosen, worst, maps = worst_maps(model, data, torch.arange(5), shares, cpu, count=3)
    assert chosen.tolist() == [4, 1, 0] and worst.tolist() == [0.0, 0.25, 0.5]
    assert maps.shape == (3, 4, 4) and (maps == 0).all()
    some = torch.tensor([2, 3])
    chosen, worst, _ = worst_maps(model, data, some, score_maps(model, data, some, cpu)[1], cpu)
    assert chosen.tolist() == [3] and worst.tolist() == [15 / 16]
    two = torch.tensor([2])
    shares_2 = score_maps(model, data, two, cpu)[1]
    assert draw_worst_maps(model, data, two, shares_2, cpu, tmp_path / "w.png", "t") is None
    seen: dict = {}

    def capture(images, captions, path, title="", colors=None, cols=4, legend=()):
        seen.update(images=images, captions=captions, title=title, legend=legend, cols=cols)
        return Path(path)

    monkeypatch.setattr(plots, "plot_captioned", capture)
    pair = torch.tensor([0, 4])
    shares_04 = score_maps(model, data, pair, cpu)[1]
    draw_worst_maps(model, data, pair, shares_04, cpu, tmp_path / "w.png", "worst")
    assert seen["captions"] == [
        "0% of its pixels right", "true", "predicted",
        "50% of its pixels right", "true", "predicted",
    ]  # fmt: skip
    images = seen["images"]
    assert images.shape == (6, 3, 4, 4) and (images[0] == 90).all()
    a = torch.tensor(MAP_COLOURS[1].tolist(), dtype=torch.uint8)
    assert (images[1][:, :3] == a[:, None, None]).all() and (images[1][:, 3] == 255).all()
    assert (images[2] == 0).all() and (images[4][:, 2:] == 0).all()  # background: black
    assert seen["title"] == "worst; white: not labelled" and seen["cols"] % 3 == 0
    assert [name for name, _ in seen["legend"]] == ["a", "b"]


def test_masks_move_exactly_as_their_images() -> None:
    """A linear ramp survives bilinear resampling exactly, so where the image is x = column
    and the mask is the column's number, after rotation, shear, crop or flip the mask must be
    the image's value rounded, wherever the image drew on no pixel from outside (its second
    channel, all ones, still 1 there): at most 0.5 columns apart, plus 0.05 for kornia before
    0.9, which samples masks with align_corners None (0.540 seen). kornia's default resized crop
    ("slice") resizes masks by F.interpolate's nearest: 0.587 apart on kornia 0.9, 0.968 (0.4
    px up and left) before it."""
    from cnnlab.data.augment import build_augmentation

    n, size = 8, 64
    ramp = torch.arange(size, dtype=torch.float32).expand(n, 1, size, size)
    image = torch.cat([ramp, torch.ones_like(ramp)], dim=1)
    for name in ("rotate", "shear", "rcrop", "crop", "flip"):
        aug = build_augmentation([name], image_size=size, channels=1, data_keys=("input", "mask"))
        aug[0].p = 1.0
        torch.manual_seed(0)
        x, m = aug(image, ramp + 1)  # the mask shifted by one: the zero fill marks outside
        inside = (x[:, 1:] > 1 - 1e-5) & (m > 0)
        assert inside.float().mean() > 0.5, name
        gap = (m - 1 - x[:, :1])[inside].abs().max()
        assert gap <= 0.55, f"{name}: mask {gap:.3f} columns from its image"


def test_voc_colours_are_the_devkits() -> None:
    """Pascal VOC's colour map, as its devkit's labelcolormap gives it (and its masks show it):
    aeroplane dark red, bicycle green, bird olive, person (15) pink, void (255) pale."""
    colours = voc_colormap()
    assert colours[[0, 1, 2, 3, 4, 15, 255]].tolist() == [
        [0, 0, 0],
        [128, 0, 0],
        [0, 128, 0],
        [128, 128, 0],
        [0, 0, 128],
        [192, 128, 128],
        [224, 224, 192],
    ]
    assert len({tuple(c) for c in colours.tolist()}) == 256  # every index its own colour


def test_predicting_a_map_records_no_gradients() -> None:
    """predict_mask runs the network without autograd (its graph would hold every activation of
    a photo's forward pass until the map is made)."""
    from cnnlab.engine.segment_maps import predict_mask

    seen: list[bool] = []

    class Scores(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(torch.is_grad_enabled())
            return self.conv(x)

    image, mask = predict_mask(Scores(), np.zeros((20, 30, 3), np.uint8), 16)
    assert seen == [False] and image.shape == (3, 20, 30) and mask.shape == (20, 30)


def test_a_colour_mask_saved_as_grey_is_named_for_what_it_is(tmp_path: Path) -> None:
    """VOC-coloured palette masks converted to greyscale hold the colours' grey levels (38 for
    class 1's dark red), not class indices: the error says so instead of only "index 38"."""
    scenes = make_scenes(6, seed=2, image_size=48)
    write_masks(scenes, tmp_path)
    first = next(i for i, s in enumerate(scenes) if len(s.labels))
    mask = tmp_path / "masks" / f"{first:06d}.png"
    with Image.open(mask) as m:
        m.convert("L").save(mask)
    with pytest.raises(CnnlabError, match=rf"{mask.name}: class index \d+ .*grey levels of VOC's"):
        folder_segmentation(tmp_path, 48)
    Image.fromarray(np.full((48, 48), 7, np.uint8)).save(mask)  # a plain wrong index: no hint
    with pytest.raises(
        CnnlabError, match=r"class index 7 is not in classes\.txt \(4 classes; 255 [^;]*\)$"
    ):
        folder_segmentation(tmp_path, 48)
