"""Semantic segmentation: training and metrics (its data: :mod:`cnnlab.engine.segment_data`; a
trained model's maps: :mod:`cnnlab.engine.segment_maps`).

Metrics come from one confusion matrix (rows: true class, columns: predicted) accumulated over
the pixels: per-class IoU ``TP / (TP + FP + FN)``, mean IoU, per-class Dice
``2 TP / (2 TP + FP + FN)``, and pixel accuracy ``trace / total``. Pixels labelled
:data:`VOID` (255, Pascal VOC's border around each object) are neither trained on nor scored,
as in VOC's own evaluation.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from cnnlab.config import SegmentConfig
from cnnlab.data.scenes import (
    MEAN,
    STD,
)
from cnnlab.data.split_folders import (
    final_split,
    own_or_seeded,
)
from cnnlab.engine.checkpoint import model_from_checkpoint
from cnnlab.engine.class_balance import class_weights, parse_class_weights
from cnnlab.engine.device import resolve_device
from cnnlab.engine.epochs import EpochRun, resumed, run_dir
from cnnlab.engine.performance import FP32, SpeedSettings, choose_settings
from cnnlab.engine.runlog import (
    batch_slices,
    batches_per_epoch,
    describe_data,
    epoch_progress,
    fingerprint,
    one_cycle,
    optimizer_step,
)
from cnnlab.engine.segment_data import (
    SegmentationData,
    load_segmentation_data,
)
from cnnlab.engine.transfer import backbone_groups, freeze_part, start_backbone, train_mode
from cnnlab.errors import CnnlabError
from cnnlab.losses.segmentation import VOID, segmentation_loss
from cnnlab.models.backbone import check_batch_of_one, input_must_fit
from cnnlab.models.shapes import shapes_only
from cnnlab.models.unet import at_input_size
from cnnlab.registry import create_model, require_task


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, k: int) -> torch.Tensor:
    """``(k, k)`` counts, rows true class, columns predicted; :data:`VOID` pixels left out."""
    scored = target != VOID
    cells = target[scored] * k + pred[scored]
    return torch.bincount(cells, minlength=k * k).view(k, k)


def segmentation_metrics(confusion: torch.Tensor) -> dict[str, Any]:
    """Per-class IoU ``TP / (TP + FP + FN)`` and Dice ``2 TP / (2 TP + FP + FN)`` from a
    pixel confusion matrix ``(K, K)`` (rows: true class, columns: predicted), their means
    over the classes present (``per_class_pixels``: each class's labelled pixels; a class with
    none is left out of the means), and pixel accuracy."""
    tp = confusion.diag().double()
    fp = confusion.sum(0).double() - tp
    fn = confusion.sum(1).double() - tp
    present = (tp + fn) > 0
    iou = tp / (tp + fp + fn).clamp(min=1)
    dice = 2 * tp / (2 * tp + fp + fn).clamp(min=1)
    return {
        "per_class_iou": iou.tolist(),
        "mean_iou": iou[present].mean().item(),
        "per_class_dice": dice.tolist(),
        "mean_dice": dice[present].mean().item(),
        "pixel_accuracy": (tp.sum() / confusion.sum().clamp(min=1)).item(),
        "per_class_pixels": (tp + fn).long().tolist(),
    }


def make_batch(
    data: SegmentationData, idx: torch.Tensor, augment: torch.nn.Module | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardised images and their label maps; ``augment`` (a kornia pipeline with data keys
    ``input`` and ``mask``) moves both with the same transform, nearest-neighbour for masks.
    Pixels an augmentation brings in from outside the image (a rotation's corners, a crop's
    padding: black in the image) are :data:`VOID` in the map, not background, as
    torchvision's segmentation reference pads its targets with 255."""
    x = data.images[idx].float().div_(255)
    y = data.masks[idx].clone()
    if augment is not None:
        with warnings.catch_warnings():  # kornia < 0.9 warps masks with align_corners=None, and
            # torch warns that None means False; the masks still land on their images (tested)
            warnings.filterwarnings("ignore", "Default grid_sample and affine_grid", UserWarning)
            x, m = augment(x, (y[:, None] + 1).float())  # +1: the zero fill marks outside
        y = m[:, 0].round().long() - 1
        y[y < 0] = VOID
    return (x - MEAN) / STD, y


def _channels(name: str) -> dict[str, int]:
    """``in_channels=3`` (the data are RGB) for a model that takes it (``unet_paper`` is made
    for the paper's grey cell images)."""
    return (
        {"in_channels": 3}
        if "in_channels" in require_task(name, "segmentation").parameters()
        else {}
    )


@torch.no_grad()
def predicted_maps(
    model: torch.nn.Module,
    data: SegmentationData,
    idx: torch.Tensor,
    device: torch.device,
    settings: SpeedSettings = FP32,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The model's arg-max maps of the images ``idx`` at the input size, 32 at a time: each
    chunk's predicted ``(n, H, W)`` and true maps (void pixels :data:`VOID`), on the CPU."""
    model.eval()
    for chunk in idx.split(32):
        x, y = make_batch(data, chunk)
        logits = settings.forward(partial(at_input_size, model), x.to(device), device)
        yield logits.argmax(1).cpu(), y


def evaluate_segmenter(
    model: torch.nn.Module,
    data: SegmentationData,
    idx: torch.Tensor,
    device: torch.device,
    settings: SpeedSettings = FP32,
) -> dict[str, Any]:
    """:func:`segmentation_metrics` of the model's arg-max maps on the images ``idx``, scored
    at the input size (void pixels left out). ``settings``: run the network as training does
    (bf16 autocast, channels-last), for the per-epoch validation; by default float32 (the
    reported figures)."""
    return segmentation_metrics(score_maps(model, data, idx, device, settings)[0])


def score_maps(
    model: torch.nn.Module,
    data: SegmentationData,
    idx: torch.Tensor,
    device: torch.device,
    settings: SpeedSettings = FP32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass over the images ``idx``: the ``(k, k)`` :func:`confusion_matrix` of their
    maps, and each image's share of its labelled pixels right ``(N,)`` (``inf`` for an image
    with no labelled pixel: nothing to get wrong), which :func:`worst_maps` ranks."""
    k = len(data.class_names)
    conf = torch.zeros(k, k, dtype=torch.int64)
    shares = [torch.zeros(0)]
    for predicted, y in predicted_maps(model, data, idx, device, settings):
        conf += confusion_matrix(predicted, y, k)
        labelled = (y != VOID).sum((1, 2))
        right = ((predicted == y) & (y != VOID)).sum((1, 2))
        share = right / labelled.clamp(min=1)
        shares.append(share.masked_fill(labelled == 0, float("inf")))
    return conf, torch.cat(shares)


def worst_maps(
    model: torch.nn.Module,
    data: SegmentationData,
    idx: torch.Tensor,
    shares: torch.Tensor,
    device: torch.device,
    count: int = 8,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``count`` images of ``idx`` with the smallest ``shares`` (:func:`score_maps`) of
    labelled pixels right, worst first (one with no labelled pixel left out). Returns their
    indices into ``data``, their shares and their predicted maps ``(count, H, W)``, made again
    for these images only, so that the split's maps are never all held."""
    order = torch.argsort(shares, stable=True)[: min(count, int(shares.isfinite().sum()))]
    chosen = idx[order]
    maps = [predicted for predicted, _ in predicted_maps(model, data, chosen, device)]
    empty = torch.zeros(0, *data.masks.shape[1:], dtype=torch.int64)
    return chosen, shares[order], torch.cat(maps) if maps else empty


def draw_worst_maps(
    model: torch.nn.Module,
    data: SegmentationData,
    idx: torch.Tensor,
    shares: torch.Tensor,
    device: torch.device,
    path: Path,
    title: str,
) -> Path | None:
    """:func:`worst_maps` drawn (:func:`~cnnlab.engine.segment_maps.plot_worst_maps`) at
    ``path``; ``None`` where ``idx`` holds no labelled pixel to get wrong."""
    from cnnlab.engine.segment_maps import plot_worst_maps

    chosen, worst, maps = worst_maps(model, data, idx, shares, device)
    if not len(chosen):
        return None
    images, truth = data.images[chosen], data.masks[chosen]
    return plot_worst_maps(images, truth, maps, worst, data.class_names, path, title)


def pixel_counts(data: SegmentationData, idx: torch.Tensor) -> torch.Tensor:
    """``(k,)`` pixels of each class in the maps ``idx`` (for balanced class weights)."""
    k = len(data.class_names)
    counts = torch.zeros(k, dtype=torch.int64)
    for part in idx.split(256):
        labels = data.masks[part]
        counts += torch.bincount(labels[labels != VOID], minlength=k)
    return counts


def train_segmenter(
    config: SegmentConfig, console: Console | None = None, resume: str | Path = ""
) -> dict[str, Any]:
    """Train a segmentation network and write ``out/`` with ``best.pt``, ``last.pt``,
    ``metrics.csv``, ``curves.png`` (loss, validation mean IoU and pixel accuracy per epoch),
    ``worst_maps.png`` (:func:`draw_worst_maps`, on the final split) and ``results.json``;
    return the test metrics (val's, under ``val``, when the data's folders have train and val
    only; ``evaluated_on`` says which). ``resume``: a run's ``last.pt`` to
    continue with its own settings, in its folder (:mod:`cnnlab.engine.resume`)."""
    console = console or Console(stderr=True)
    started = time.perf_counter()
    config, ckpt = resumed(config, SegmentConfig, "segmentation", resume)
    require_task(config.model, "segmentation")
    size = (3, config.image_size, config.image_size)
    with shapes_only(), input_must_fit(config.model, size):  # before any scene is drawn
        ghost = create_model(config.model, **_channels(config.model)).eval()  # BN: 1 image
        at_input_size(ghost, torch.zeros(1, *size))
    part = "encoder"  # unet_resnet18's ResNet: the part pretrained weights fit
    if (
        config.pretrained or config.backbone_lr_mult != 1 or config.freeze != "none"
    ) and not hasattr(ghost, part):
        raise CnnlabError(
            "--pretrained, --freeze and --backbone-lr-mult are for a U-Net with a classifier's "
            f"encoder (--model unet_resnet18); {config.model} has none"
        )
    freeze_part(ghost, config.freeze, part)  # as it trains: frozen batch norms meet no batch
    check_batch_of_one(train_mode(ghost), size, config.batch_size, config.model, at_input_size)
    given_weights = parse_class_weights(config.class_weights)
    if given_weights is not None and config.loss == "dice":  # it would be ignored, silently
        raise CnnlabError(
            "--class-weights weighs the cross-entropy term; --loss dice has none (Dice already "
            "gives every class an equal say): use --loss ce or ce+dice, or drop --class-weights"
        )
    device = resolve_device(config.device)
    data = load_segmentation_data(config)
    parts = own_or_seeded(data.splits, len(data.images), config.seed)
    final = final_split(parts)
    torch.manual_seed(config.seed)
    kwargs = {"num_classes": len(data.class_names), **_channels(config.model)}
    model = create_model(config.model, **kwargs)
    start_backbone(model, config, console, resumed=ckpt is not None, part=part)
    model = model.to(device)
    settings = choose_settings(config.model, device, config.precision, image_size=config.image_size)
    model = settings.layout(model)
    weights = class_weights(given_weights, pixel_counts(data, parts["train"]), data.class_names)
    weights = weights.to(device) if weights is not None else None
    groups = backbone_groups(model, config.lr, config.backbone_lr_mult, part=part)
    opt = torch.optim.AdamW(groups, lr=config.lr, weight_decay=1e-4)
    from cnnlab.data.augment import build_augmentation, parse_augment

    augment = build_augmentation(
        parse_augment(config.augment),
        image_size=config.image_size,
        channels=3,
        data_keys=("input", "mask"),
    )
    train = parts["train"]
    steps = batches_per_epoch(len(train), config.batch_size, warn=ckpt is None) * config.epochs
    sched = one_cycle(opt, steps)
    out = run_dir(config.out, "segment", resume)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(
        json.dumps(asdict(config) | {"settings": settings.to_dict()}, indent=2) + "\n"
    )
    base = {
        "model": config.model,
        "model_kwargs": kwargs,
        "config": asdict(config),
        "class_names": data.class_names,
        "input_size": list(data.images.shape[1:]),
        "data_fingerprint": {k: fingerprint(data.images[v]) for k, v in parts.items()},
    }
    run = EpochRun.begin("cnnlab segment train", out, base, config.patience, ckpt)
    run.restore(resume, model, opt, sched, data.images[train])
    started -= run.seconds_before
    about = describe_data(config.data, len(data.class_names), parts)
    run.announce(
        console, config.model, model, size, about, device, settings.describe(), epochs=config.epochs
    )
    with run.hint(), epoch_progress(console) as progress:
        task = progress.add_task("train", total=config.epochs, completed=run.start - 1, stats="")
        for epoch in run.epochs(config.epochs):
            train_mode(model)
            total = 0.0
            for idx in batch_slices(train[torch.randperm(len(train))], config.batch_size):
                x, y = make_batch(data, idx, augment)
                logits = settings.forward(partial(at_input_size, model), x.to(device), device)
                loss = segmentation_loss(logits, y.to(device), config.loss, weights)
                value = optimizer_step(loss, opt, sched, f"epoch {epoch}", settings.bf16, run.saved)
                total += value * len(idx)
            val = evaluate_segmenter(model, data, parts["val"], device, settings)  # as it trains
            row = {
                "epoch": epoch,
                "seconds": round(time.perf_counter() - started, 1),
                "train_loss": total / len(train),
                "val_mean_iou": val["mean_iou"],
                "val_pixel_accuracy": val["pixel_accuracy"],
            }
            halt = run.end_epoch(model, row, val["mean_iou"], opt, sched)
            progress.update(
                task,
                advance=1,
                stats=(f"loss {row['train_loss']:.3f}  mIoU {val['mean_iou']:.3f}"),
            )
            if halt:
                break
    run.finish(console, "mean IoU")
    model, _ = model_from_checkpoint(out / "best.pt")
    conf, shares = score_maps(model.to(device), data, parts[final], device)  # scored, drawn
    final_metrics = segmentation_metrics(conf)
    from cnnlab.viz.plots import plot_epoch_curves

    curves = {"val_mean_iou": "mean IoU", "val_pixel_accuracy": "pixel accuracy"}
    plot_epoch_curves(run.rows, curves, out / "curves.png", "Segmentation")
    title = f"{config.model} on {final}: the images it gets least right"
    draw_worst_maps(model, data, parts[final], shares, device, out / "worst_maps.png", title)
    result = {
        "run_dir": str(out),
        "evaluated_on": final,
        final: final_metrics,
        "class_names": data.class_names,
        "seconds": round(time.perf_counter() - started, 1),
        "stopped_early_at": run.stop.stopped_at,
    }
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
