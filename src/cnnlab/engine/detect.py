"""Object detection the YOLO way: training, decoding, evaluation and pictures (its data:
:mod:`cnnlab.engine.detection_data`).

Decoding is the slide "Outputting the non-max suppressed outputs": for each grid cell take the
A predicted boxes; score each by ``p_c x P(class)``; get rid of low-probability predictions
(``score_threshold``); for each class run non-max suppression; keep the ``top_k`` best.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import torch
from rich.console import Console

from cnnlab.config import DetectConfig
from cnnlab.data.images import image_list
from cnnlab.data.scenes import (
    MEAN,
    STD,
    standardise,
)
from cnnlab.data.split_folders import (
    final_split,
    own_or_seeded,
)
from cnnlab.data.video import Every
from cnnlab.engine.checkpoint import model_from_checkpoint
from cnnlab.engine.detection_data import (
    DetectionData,
    load_detection_data,
)
from cnnlab.engine.detection_metrics import (
    coco_evaluate,
    plot_map_against_time,
    plot_pr_curve,
)
from cnnlab.engine.detection_mistakes import draw_detection_mistakes
from cnnlab.engine.device import resolve_device
from cnnlab.engine.epochs import EpochRun, resumed, run_dir
from cnnlab.engine.performance import FP32, SpeedSettings, choose_settings
from cnnlab.engine.predict import (
    Predictor,
    in_chunks,
    in_frame,
    source_names,
    stretched_chunks,
    video_chunks,
)
from cnnlab.engine.runlog import (
    batch_slices,
    batches_per_epoch,
    describe_data,
    epoch_progress,
    fingerprint,
    one_cycle,
    optimizer_step,
)
from cnnlab.engine.transfer import backbone_groups, start_backbone, train_mode
from cnnlab.errors import CnnlabError
from cnnlab.losses.yolo import YoloLoss
from cnnlab.models.backbone import check_batch_of_one
from cnnlab.ops.anchors import assign_targets, decode_boxes, kmeans_anchors, mean_best_iou
from cnnlab.ops.nms import batched_nms
from cnnlab.registry import create_model


def make_batch(
    data: DetectionData, idx: torch.Tensor, mirror: bool, augment: torch.nn.Module | None = None
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Standardised images and their boxes. ``mirror`` flips half the images (``x -> 1 - x``
    boxes); ``augment`` is a kornia pipeline with data keys ``input`` and ``bbox_xyxy`` that moves
    the boxes with the image (boxes are padded per batch and the padding dropped afterwards;
    boxes squeezed below 4 square pixels, or pushed out of the image, are dropped too)."""
    x = data.images[idx].float().div_(255)
    pairs = [data.trained_on(i) for i in idx.tolist()]
    boxes = [b.clone() for b, _ in pairs]
    labels = [lab for _, lab in pairs]
    if mirror:
        flip = torch.rand(len(idx)) < 0.5
        x[flip] = x[flip].flip(-1)
        for k in flip.nonzero().flatten().tolist():
            b = boxes[k]
            boxes[k] = torch.stack([1 - b[:, 2], b[:, 1], 1 - b[:, 0], b[:, 3]], 1)
    if augment is not None:
        h, w = x.shape[-2:]
        scale = torch.tensor([w, h, w, h], dtype=torch.float32)
        n = max(1, max(len(b) for b in boxes))
        padded = torch.zeros(len(boxes), n, 4)
        for k, b in enumerate(boxes):
            padded[k, : len(b)] = b * scale
        x, moved = augment(x, padded)
        new_boxes, new_labels = [], []
        for k, (b, lab) in enumerate(zip(boxes, labels, strict=True)):
            m = moved[k, : len(b)].clone()
            m[:, 0::2] = m[:, 0::2].clamp(0, w)
            m[:, 1::2] = m[:, 1::2].clamp(0, h)
            keep = ((m[:, 2] - m[:, 0]) * (m[:, 3] - m[:, 1])) >= 4
            new_boxes.append(m[keep] / scale)
            new_labels.append(lab[keep])
        boxes, labels = new_boxes, new_labels
    return (x - MEAN) / STD, boxes, labels


@torch.no_grad()
def decode(
    pred: torch.Tensor,
    anchors: torch.Tensor,
    score_threshold: float = 0.05,
    iou_threshold: float = 0.5,
    top_k: int = 100,
) -> list[dict[str, torch.Tensor]]:
    """Raw ``(B, S, S, A, 5 + C)`` -> per image ``boxes`` (xyxy relative), ``scores``,
    ``labels``: score = p_c x P(class), threshold, per-class NMS, top-k."""
    boxes = decode_boxes(pred[..., 1:3], pred[..., 3:5].flip(-1), anchors)
    scores = torch.sigmoid(pred[..., 0:1]) * pred[..., 5:].softmax(-1)  # (B, S, S, A, C)
    out = []
    for n in range(len(pred)):
        s, c = scores[n].reshape(-1, scores.shape[-1]).max(1)
        b = boxes[n].reshape(-1, 4).clamp(0, 1)
        keep = s >= score_threshold
        b, s, c = b[keep], s[keep], c[keep]
        kept = batched_nms(b, s, c, iou_threshold)[:top_k]
        out.append({"boxes": b[kept], "scores": s[kept], "labels": c[kept]})
    return out


@torch.no_grad()
def detect_images(
    model: torch.nn.Module,
    images: torch.Tensor,
    score_threshold: float = 0.3,
    iou_threshold: float = 0.5,
) -> list[dict[str, torch.Tensor]]:
    """``images (N, 3, S, S)`` uint8 -> per image :func:`decode`'s ``boxes`` (xyxy in the
    ``S x S`` input's pixels), ``scores`` and ``labels``, 64 images a forward pass."""
    size, dets = images.shape[-1], []
    for chunk in images.split(64):
        dets += decode(
            model(standardise(chunk.float())), model.anchors, score_threshold, iou_threshold
        )
    return [{k: (v * size if k == "boxes" else v) for k, v in d.items()} for d in dets]


def detection_rows(
    dets: list[dict[str, torch.Tensor]],
    class_names: Sequence[str],
    sources: Sequence[str],
    frames: Sequence[tuple[int, int]],
    size: int,
) -> list[dict[str, Any]]:
    """One row per image: ``source``, its ``image_size`` and each detection's ``label``,
    ``score`` and ``box_xyxy`` in the file's own ``(width, height)`` pixels."""
    return [
        {
            "source": src,
            "image_size": list(frame),
            "detections": [
                {
                    "label": class_names[int(c)],
                    "score": round(float(sc), 4),
                    "box_xyxy": in_frame(b.tolist(), size, frame),
                }
                for b, sc, c in zip(d["boxes"], d["scores"], d["labels"], strict=True)
            ],
        }
        for src, d, frame in zip(sources, dets, frames, strict=True)
    ]


class Detector(Predictor):
    """A trained detector loaded once for many images (a folder's photos, a video's frames): a
    run's ``best.pt`` on a device, or a file ``cnnlab export`` wrote, run by ONNX Runtime.
    ``network`` maps a standardised ``(N, 3, S, S)`` CPU batch to YOLO's raw output and has
    the ``anchors`` decoding needs; ``meta`` holds ``class_names`` and ``input_size``.

    >>> detector = Detector.load("runs/detect/yolo-scenes/best.pt")  # doctest: +SKIP
    >>> detector.predict_images([frame])[0]["detections"]  # doctest: +SKIP
    """

    TASK: ClassVar[str] = "detection"

    def predict_files(
        self, images: Sequence[Any], score_threshold: float = 0.3, iou_threshold: float = 0.5
    ) -> list[dict[str, Any]]:
        """Images -> :func:`detection_rows`: each stretched to the detector's input, as training
        saw its images, and the boxes brought back to the image's own pixels. Files, or images
        a program holds (Pillow images, numpy ``uint8`` arrays: a camera frame), named
        ``images[i]`` (:func:`~cnnlab.engine.predict.preprocess`)."""
        images = image_list(images)  # a generator too, or one image alone
        size = self.meta["input_size"][-1]
        dets, frames, _ = in_chunks(
            stretched_chunks(images, size),
            lambda x: detect_images(self.network, x, score_threshold, iou_threshold),
            size,
        )
        return detection_rows(dets, self.class_names, source_names(images), frames, size)

    def predict_video(
        self,
        video: str | Path,
        score_threshold: float = 0.3,
        iou_threshold: float = 0.5,
        every: Every = 1,
    ) -> list[dict[str, Any]]:
        """:meth:`predict_files` of a video's frames (every ``every``-th from the first), a row
        each named ``clip.mp4#frame=i``, the frames streamed :data:`~cnnlab.engine.predict.CHUNK`
        at a time (:func:`~cnnlab.engine.predict.video_chunks`)."""
        size, sources = self.meta["input_size"][-1], []
        dets, frames, _ = in_chunks(
            video_chunks(video, size, sources, every),
            lambda x: detect_images(self.network, x, score_threshold, iou_threshold),
            size,
        )
        return detection_rows(dets, self.class_names, sources, frames, size)


def predict_files(
    checkpoint: str | Path,
    paths: Sequence[Any],
    score_threshold: float = 0.3,
    iou_threshold: float = 0.5,
) -> list[dict[str, Any]]:
    """:meth:`Detector.predict_files` of a checkpoint loaded for this one call, on the CPU."""
    detector = Detector.load(checkpoint, device="cpu")
    return detector.predict_files(paths, score_threshold, iou_threshold)


@torch.no_grad()
def evaluate_detector(
    model: torch.nn.Module,
    data: DetectionData,
    device: torch.device,
    batch_size: int = 64,
    settings: SpeedSettings = FP32,
) -> dict[str, Any]:
    """COCO mAP@[.5:.95], mAP@0.5 and mAP@0.75 (pycocotools) of :func:`detections` on every
    image of ``data``; VOC's difficult boxes count neither way. ``settings``: run the network as
    training does (bf16 autocast, channels-last), for the per-epoch validation; by default
    float32 (the reported figures)."""
    return score_detections(detections(model, data, device, batch_size, settings), data)


@torch.no_grad()
def detections(
    model: torch.nn.Module,
    data: DetectionData,
    device: torch.device,
    batch_size: int = 64,
    settings: SpeedSettings = FP32,
) -> list[dict[str, torch.Tensor]]:
    """The decoded, non-max-suppressed predictions (:func:`decode`'s defaults) of every image
    of ``data``, on the CPU, boxes xyxy in the input's pixels."""
    model.eval()
    preds = []
    for idx in torch.arange(len(data.images)).split(batch_size):
        x, _, _ = make_batch(data, idx, mirror=False)
        preds += decode(settings.forward(model, x.to(device), device).cpu(), model.anchors.cpu())
    size = data.images.shape[-1]
    return [{k: (v * size if k == "boxes" else v) for k, v in d.items()} for d in preds]


def score_detections(dets: list[dict[str, torch.Tensor]], data: DetectionData) -> dict[str, Any]:
    """:func:`evaluate_detector`'s figures of the detections ``dets`` (boxes in pixels) of the
    images of ``data``."""
    size = data.images.shape[-1]
    t = [{"boxes": b * size, "labels": lab} for b, lab in zip(data.boxes, data.labels, strict=True)]
    if data.difficult is not None:  # neither found nor missed: pycocotools' ignore regions
        for target, difficult in zip(t, data.difficult, strict=True):
            target["ignore"] = difficult
    return coco_evaluate(dets, t, len(data.class_names))


def train_detector(
    config: DetectConfig, console: Console | None = None, resume: str | Path = ""
) -> dict[str, Any]:
    """Train a YOLO detector; write ``out/`` with checkpoints, ``metrics.csv`` (mAP per epoch
    against elapsed time), ``map_time.png`` (the same as a figure), ``pr_curve.png``,
    ``mistakes.png`` (:func:`~cnnlab.engine.detection_mistakes.draw_detection_mistakes`) and
    ``results.json``. The best epoch's checkpoint is measured on the test split, or on val when
    the data's folders have train and val only (``evaluated_on`` says which). ``resume``: a
    run's ``last.pt`` to continue with its own settings, in its folder
    (:mod:`cnnlab.engine.resume`)."""
    console = console or Console(stderr=True)
    started = time.perf_counter()
    config, ckpt = resumed(config, DetectConfig, "detection", resume)
    device = resolve_device(config.device)
    settings = choose_settings(
        config.backbone, device, config.precision, image_size=config.image_size
    )
    data = load_detection_data(config)
    parts = own_or_seeded(data.splits, len(data.images), config.seed)
    final = final_split(parts)
    train, val, test = (data.subset(parts[k]) for k in ("train", "val", final))
    trained = [train.trained_on(k)[0] for k in range(len(train.images))]
    wh = torch.cat([b[:, 2:] - b[:, :2] for b in trained])
    if not len(wh):  # the anchors are fitted to these boxes, and the loss needs objects
        raise CnnlabError(f"{config.data}: no boxes in the training images; nothing to detect")
    anchors = kmeans_anchors(wh, config.anchors, seed=config.seed)
    torch.manual_seed(config.seed)
    kwargs = {
        "backbone": config.backbone,
        "num_classes": len(data.class_names),
        "anchors": tuple(tuple(round(v, 4) for v in a) for a in anchors.tolist()),
        "input_size": config.image_size,
    }
    model = create_model("yolo", **kwargs)
    start_backbone(model, config, console, resumed=ckpt is not None)
    model = model.to(device)
    size = (3, config.image_size, config.image_size)
    train_mode(model)  # as it trains: a frozen backbone's batch norms meet no batch
    check_batch_of_one(model, size, config.batch_size, f"yolo ({config.backbone})")
    with torch.no_grad():  # the grid, from one image: in eval mode (batch norm)
        grid = model.eval()(torch.zeros(1, *size, device=device)).shape[1]
    train_mode(model)
    model = settings.layout(model)
    loss_fn = YoloLoss()
    from cnnlab.data.augment import build_augmentation, parse_augment

    augment = build_augmentation(
        parse_augment(config.augment),
        image_size=config.image_size,
        channels=3,
        data_keys=("input", "bbox_xyxy"),
    )
    groups = backbone_groups(model, config.lr, config.backbone_lr_mult)
    opt = torch.optim.AdamW(groups, lr=config.lr, weight_decay=5e-4)
    per_epoch = batches_per_epoch(len(train.images), config.batch_size, warn=ckpt is None)
    steps = per_epoch * config.epochs
    sched = one_cycle(opt, steps)
    anchor_iou = mean_best_iou(wh, anchors)
    out = run_dir(config.out, "detect", resume)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(
        json.dumps(
            asdict(config)
            | {
                "anchors_resolved": kwargs["anchors"],
                "grid": grid,
                "anchor_mean_iou": anchor_iou,
                "settings": settings.to_dict(),
            },
            indent=2,
        )
        + "\n"
    )
    base = {
        "model": "yolo",
        "model_kwargs": kwargs,
        "config": asdict(config),
        "class_names": data.class_names,
        "input_size": [3, config.image_size, config.image_size],
        "data_fingerprint": {k: fingerprint(data.images[v]) for k, v in parts.items()},
    }
    run = EpochRun.begin("cnnlab detect train", out, base, config.patience, ckpt)
    run.restore(resume, model, opt, sched, train.images)
    started -= run.seconds_before
    about = describe_data(config.data, len(data.class_names), parts)
    about += f", {len(wh):,} training boxes, {len(anchors)} anchors (mean IoU {anchor_iou:.2f})"
    name = f"yolo ({config.backbone}, {grid}x{grid} grid)"
    run.announce(
        console, name, model, size, about, device, settings.describe(), epochs=config.epochs
    )
    with run.hint(), epoch_progress(console) as progress:
        task = progress.add_task("train", total=config.epochs, completed=run.start - 1, stats="")
        for epoch in run.epochs(config.epochs):
            train_mode(model)
            total = 0.0
            for idx in batch_slices(torch.randperm(len(train.images)), config.batch_size):
                x, boxes, labels = make_batch(train, idx, config.mirror, augment)
                targets = assign_targets(boxes, labels, grid, anchors)
                pred = settings.forward(model, x.to(device), device)
                loss, _ = loss_fn(pred, targets, model.anchors, boxes)
                value = optimizer_step(loss, opt, sched, f"epoch {epoch}", settings.bf16, run.saved)
                total += value * len(idx)
            ev = evaluate_detector(model, val, device, settings=settings)  # as it trains
            row = {
                "epoch": epoch,
                "seconds": round(time.perf_counter() - started, 1),
                "train_loss": total / len(train.images),
                "val_map_50": ev["map_50"],
                "val_map": ev["map"],
            }
            halt = run.end_epoch(model, row, ev["map_50"], opt, sched)
            progress.update(
                task,
                advance=1,
                stats=(f"loss {row['train_loss']:.3f}  mAP@0.5 {ev['map_50']:.3f}"),
            )
            if halt:
                break
    run.finish(console, "mAP@0.5")
    model, _ = model_from_checkpoint(out / "best.pt")
    dets = detections(model.to(device), test, device)  # one pass for the figures and mAP
    ev = score_detections(dets, test)
    plot_pr_curve(ev, out / "pr_curve.png", class_names=test.class_names)
    plot_map_against_time(run.rows, out / "map_time.png")
    title = f"{final}: the images with the most misses and false alarms"
    draw_detection_mistakes(test, dets, out / "mistakes.png", title)
    result = {
        "run_dir": str(out),
        "evaluated_on": final,
        f"{final}_map_50": ev["map_50"],
        f"{final}_map": ev["map"],
        f"{final}_map_75": ev["map_75"],
        f"{final}_per_class": dict(zip(test.class_names, ev["per_class"], strict=True)),
        "seconds": round(time.perf_counter() - started, 1),
        "grid": grid,
        "stopped_early_at": run.stop.stopped_at,
        "anchors": kwargs["anchors"],
    }
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def draw_detections(
    images: torch.Tensor,
    detections: list[dict[str, torch.Tensor]],
    class_names: list[str],
    path: str | Path,
    min_score: float = 0.3,
) -> Path:
    """A grid of images with labelled boxes (pixels) drawn."""
    from cnnlab.viz.plots import BOX_COLOURS as colours
    from cnnlab.viz.plots import labelled_box, plt, save_figure

    cols = min(4, len(images))
    rows = math.ceil(len(images) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, det in zip(axes.flat, images, detections, strict=False):
        ax.imshow(img.permute(1, 2, 0).numpy())
        for box, score, label in zip(
            det["boxes"].tolist(), det["scores"].tolist(), det["labels"].tolist(), strict=True
        ):
            if score >= min_score:
                text = f"{class_names[label]} {score:.2f}"
                labelled_box(ax, box, text, colours[label % len(colours)])
    return save_figure(fig, path, dpi=100)
