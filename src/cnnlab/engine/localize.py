"""Training, evaluation and prediction for classification with localisation (and landmarks).

Metrics (slide "Evaluating object localization"): classification accuracy (object or not, and
which class), the fraction of images with an object whose predicted box has ``IoU >= 0.5``
("correct"), the mean IoU, and for landmarks the mean point error divided by the object's size
(the box diagonal).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import torch
from rich.console import Console

from cnnlab.config import LocalizeConfig
from cnnlab.data.augment import mirror_keypoint_pairs
from cnnlab.data.images import image_list
from cnnlab.data.localization import LocalizationData, from_boxes, from_scenes
from cnnlab.data.scenes import MEAN, STD, standardise
from cnnlab.data.split_folders import final_split
from cnnlab.data.video import Every
from cnnlab.engine.checkpoint import model_from_checkpoint
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
from cnnlab.losses.localization import LocalizationTarget, localization_loss
from cnnlab.models.backbone import check_batch_of_one
from cnnlab.models.heads import LocalizationNet, LocalizationOutput
from cnnlab.ops.boxes import box_convert, elementwise_iou
from cnnlab.registry import create_model


def load_data(config: LocalizeConfig) -> LocalizationData:
    """The images and single-object targets ``--data`` names: generated scenes (with
    landmarks if asked), or whatever :func:`~cnnlab.engine.detection_data.load_detection_data` reads
    (YOLO, COCO, VOC XML, labelme), the first object of each image."""
    if config.data == "scenes":
        return from_scenes(
            config.images, config.image_size, config.num_classes, config.seed, config.landmarks
        )
    if config.landmarks:
        raise CnnlabError("--landmarks needs --data scenes (YOLO and COCO files carry none here)")
    from cnnlab.engine.detect import DetectConfig
    from cnnlab.engine.detection_data import load_detection_data

    det = load_detection_data(DetectConfig(data=config.data, image_size=config.image_size))
    return from_boxes(
        det.images, det.boxes, det.labels, det.class_names, config.seed, det.splits, config.data
    )


def other_localization_data(
    source: str, ckpt: dict[str, Any], split: str
) -> tuple[LocalizationData, str]:
    """Labelled boxes other than the run's (a YOLO folder or data.yaml, or a COCO file) as the
    checkpoint's single-object targets (:mod:`cnnlab.engine.eval_data`: classes by name; every
    image, or ``split``'s where the data has split folders), and what is scored."""
    from cnnlab.engine.detect import DetectConfig
    from cnnlab.engine.detection_data import load_detection_data, relabelled
    from cnnlab.engine.eval_data import scored_indices

    size = ckpt["input_size"][-1]
    det = load_detection_data(DetectConfig(data=source, image_size=size))
    det = relabelled(det, ckpt["class_names"], source)
    idx, scored = scored_indices(det.splits, len(det.images), split, source)
    data = from_boxes(
        det.images,
        det.boxes,
        det.labels,
        det.class_names,
        splits={scored: idx},
        source=source,
        least=1,
    )
    return data, scored


def batch(
    data: LocalizationData, idx: torch.Tensor, device: torch.device, mirror: bool = False
) -> tuple[torch.Tensor, LocalizationTarget]:
    """Images (standardised) and targets for ``idx``; with ``mirror`` half are flipped: ``b_x``
    becomes ``1 - b_x`` and landmarks mirror with their left/right identities swapped."""
    x = data.images[idx].float().div_(255)
    box, marks = data.box[idx].clone(), data.landmarks[idx].clone()
    if mirror:
        flip = torch.rand(len(idx)) < 0.5
        x[flip] = x[flip].flip(-1)
        box[flip, 0] = torch.where(data.pc[idx][flip] > 0, 1 - box[flip, 0], box[flip, 0])
        if marks.shape[1]:
            marks[flip, :, 0] = 1 - marks[flip, :, 0]
            marks = mirror_keypoint_pairs(marks, flip, data.landmark_pairs)
    target = LocalizationTarget(
        data.pc[idx].to(device), box.to(device), data.label[idx].to(device), marks.to(device)
    )
    return ((x - MEAN) / STD).to(device), target


def _xyxy(box_slide: torch.Tensor) -> torch.Tensor:
    """``[b_x, b_y, b_h, b_w]`` (fractions of the image) -> ``xyxy`` inside the image. The
    regression is unbounded: a raw output outside [0, 1], or a negative height or width, would
    make an inverted box, so the centre and size are clamped and the corners clipped."""
    b = box_slide.clamp(0, 1)
    cxcywh = torch.stack([b[:, 0], b[:, 1], b[:, 3], b[:, 2]], 1)
    return box_convert(cxcywh, "cxcywh", "xyxy").clamp(0, 1)


def evaluate(
    model: LocalizationNet,
    data: LocalizationData,
    split: str,
    device: torch.device,
    settings: SpeedSettings = FP32,
    per_class: bool = False,
) -> dict[str, Any]:
    """The metrics of the module docstring on ``split``. ``settings``: run the network as
    training does (bf16 autocast, channels-last), for the per-epoch validation; by default
    float32 (the reported figures). ``per_class`` adds, for each class and for the images with
    no object, how many images, the share answered right (:func:`_per_class`)."""
    said = answers(model, data, data.splits[split], device, settings)
    return score_answers(data, split, said, per_class)


class Answers(NamedTuple):
    """A localiser's answers on a split's ``N`` images, judged: its outputs (on the CPU),
    whether each image was answered right (an object and its class where there is one, none
    where there is none) and the IoU of its predicted box with the true one (0 where there is
    no object), each ``(N,)``."""

    out: LocalizationOutput
    correct: torch.Tensor
    iou: torch.Tensor


@torch.no_grad()
def answers(
    model: LocalizationNet,
    data: LocalizationData,
    idx: torch.Tensor,
    device: torch.device,
    settings: SpeedSettings = FP32,
) -> Answers:
    """The model's :class:`Answers` on the images ``idx``, 256 a forward pass."""
    model.eval()
    preds = []
    for start in range(0, len(idx), 256):
        x, _ = batch(data, idx[start : start + 256], device)
        preds.append(settings.forward(model, x, device).cpu())
    out = model.split(torch.cat(preds))
    pc, label = data.pc[idx] > 0.5, data.label[idx]
    pred_pc = torch.sigmoid(out.pc_logit) > 0.5
    correct = torch.where(pc, pred_pc & (out.class_logits.argmax(1) == label), ~pred_pc)
    iou = elementwise_iou(_xyxy(out.box), _xyxy(data.box[idx])) * pc
    return Answers(out, correct, iou)


def score_answers(
    data: LocalizationData, split: str, said: Answers, per_class: bool = False
) -> dict[str, Any]:
    """:func:`evaluate`'s metrics of the answers ``said`` on ``split``."""
    idx = data.splits[split]
    out, correct = said.out, said.correct
    pc, label = data.pc[idx] > 0.5, data.label[idx]
    iou = said.iou[pc]
    metrics = {
        "accuracy": correct.float().mean().item(),
        "iou_correct": (iou >= 0.5).float().mean().item() if len(iou) else 0.0,
        "mean_iou": iou.mean().item() if len(iou) else 0.0,
        "count": len(idx),
    }
    if data.landmarks.shape[1]:
        truth = data.landmarks[idx][pc]
        size = (data.box[idx][pc][:, 2] ** 2 + data.box[idx][pc][:, 3] ** 2).sqrt()
        err = (out.landmarks[pc] - truth).norm(dim=-1).mean(1) / size
        metrics["landmark_error"] = err.mean().item()
    if per_class:
        metrics["per_class"] = _per_class(data.class_names, pc, label, correct, iou)
    return metrics


def _per_class(
    names: list[str],
    pc: torch.Tensor,
    label: torch.Tensor,
    correct: torch.Tensor,
    iou: torch.Tensor,
) -> dict[str, dict[str, Any]]:
    """Per true class (and ``"no object"``): ``images``, ``accuracy`` (presence and class
    right), and for objects ``iou_correct`` and ``mean_iou`` of their boxes (``None`` where a
    class has no images here). ``pc``, ``label``, ``correct``: ``(N,)``; ``iou``: one per
    image with an object, in order."""
    rows = {}
    object_label = label[pc]
    for k, name in enumerate(names):
        mine = pc & (label == k)
        ious = iou[object_label == k]
        n = int(mine.sum())
        rows[name] = {
            "images": n,
            "accuracy": correct[mine].float().mean().item() if n else None,
            "iou_correct": (ious >= 0.5).float().mean().item() if n else None,
            "mean_iou": ious.mean().item() if n else None,
        }
    empty = ~pc
    rows["no object"] = {
        "images": int(empty.sum()),
        "accuracy": correct[empty].float().mean().item() if empty.any() else None,
        "iou_correct": None,
        "mean_iou": None,
    }
    return rows


def train_localizer(
    config: LocalizeConfig, console: Console | None = None, resume: str | Path = ""
) -> dict[str, Any]:
    """Train and write ``out/`` with ``best.pt``, ``last.pt``, ``metrics.csv``, ``curves.png``
    (the same per epoch, drawn), ``mistakes.png`` (:func:`draw_mistakes`, on the final split)
    and ``results.json``; return the test metrics (val's, under
    ``val``, when the data's folders have train and val only; ``evaluated_on`` says which).
    ``resume``: a run's ``last.pt`` to continue with its own settings, in its folder
    (:mod:`cnnlab.engine.resume`)."""
    console = console or Console(stderr=True)
    started = time.perf_counter()
    config, ckpt = resumed(config, LocalizeConfig, "localization", resume)
    device = resolve_device(config.device)
    precision = "fp32" if config.precision == "auto" else config.precision  # see LocalizeConfig
    settings = choose_settings(config.backbone, device, precision, image_size=config.image_size)
    data = load_data(config)
    torch.manual_seed(config.seed)
    kwargs = {
        "backbone": config.backbone,
        "num_classes": len(data.class_names),
        "num_landmarks": data.landmarks.shape[1],
        "input_size": config.image_size,
    }
    model = create_model("localizer", **kwargs)
    start_backbone(model, config, console, resumed=ckpt is not None)
    model = model.to(device)
    size = (3, config.image_size, config.image_size)
    train_mode(model)  # as it trains: a frozen backbone's batch norms meet no batch
    check_batch_of_one(model, size, config.batch_size, f"the localizer ({config.backbone})")
    model = settings.layout(model)
    groups = backbone_groups(model, config.lr, config.backbone_lr_mult)
    opt = torch.optim.AdamW(groups, lr=config.lr, weight_decay=5e-4)
    train_idx = data.splits["train"]
    steps = batches_per_epoch(len(train_idx), config.batch_size, warn=ckpt is None) * config.epochs
    sched = one_cycle(opt, steps)
    out = run_dir(config.out, "localize", resume)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(
        json.dumps(asdict(config) | {"settings": settings.to_dict()}, indent=2) + "\n"
    )
    base = {
        "model": "localizer",
        "model_kwargs": kwargs,
        "config": asdict(config),
        "class_names": data.class_names,
        "landmark_names": list(data.landmark_names),
        "input_size": [3, config.image_size, config.image_size],
        "data_fingerprint": {k: fingerprint(data.images[v]) for k, v in data.splits.items()},
    }
    run = EpochRun.begin("cnnlab localize train", out, base, config.patience, ckpt)
    run.restore(resume, model, opt, sched, data.images[train_idx])
    started -= run.seconds_before
    about = describe_data(config.data, len(data.class_names), data.splits)
    name = f"localizer ({config.backbone})"
    run.announce(
        console, name, model, size, about, device, settings.describe(), epochs=config.epochs
    )
    with run.hint(), epoch_progress(console) as progress:
        task = progress.add_task("train", total=config.epochs, completed=run.start - 1, stats="")
        for epoch in run.epochs(config.epochs):
            train_mode(model)
            total = 0.0
            for chunk in batch_slices(train_idx[torch.randperm(len(train_idx))], config.batch_size):
                x, target = batch(data, chunk, device, mirror=config.mirror)
                raw = settings.forward(model, x, device)
                loss = localization_loss(model.split(raw), target, config.loss)
                value = optimizer_step(loss, opt, sched, f"epoch {epoch}", settings.bf16, run.saved)
                total += value * len(chunk)
            val = evaluate(model, data, "val", device, settings)  # as it trains
            score = val["accuracy"] + val["mean_iou"] - val.get("landmark_error", 0.0)
            row = {
                "epoch": epoch,
                "seconds": round(time.perf_counter() - started, 1),
                "train_loss": total / len(train_idx),
                **{f"val_{k}": v for k, v in val.items() if k != "count"},
            }
            halt = run.end_epoch(model, row, score, opt, sched)
            progress.update(
                task,
                advance=1,
                stats=(
                    f"loss {row['train_loss']:.3f}  acc {val['accuracy']:.3f}  "
                    f"IoU {val['mean_iou']:.3f}"
                ),
            )
            if halt:
                break
    run.finish(console, "accuracy + mean IoU")
    model, _ = model_from_checkpoint(out / "best.pt")
    from cnnlab.viz.plots import plot_epoch_curves

    curves = {"val_accuracy": "class accuracy", "val_mean_iou": "mean IoU"}
    if data.landmarks.shape[1]:
        curves["val_landmark_error"] = "landmark error / box diagonal"
    plot_epoch_curves(run.rows, curves, out / "curves.png", "Localisation")
    final = final_split(data.splits)
    said = answers(model.to(device), data, data.splits[final], device)  # scored and drawn
    draw_mistakes(data, final, said, out / "mistakes.png")
    result = {
        "run_dir": str(out),
        "evaluated_on": final,
        final: score_answers(data, final, said),
        "seconds": round(time.perf_counter() - started, 1),
        "stopped_early_at": run.stop.stopped_at,
    }
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


class Localizer(Predictor):
    """A trained localiser (classification with localisation, and landmarks) loaded once for
    many images: a run's ``best.pt`` on a device, or a file ``cnnlab export`` wrote, run by
    ONNX Runtime. ``network`` maps a standardised ``(N, 3, S, S)`` CPU batch to ``y`` and
    ``split``s it by meaning; ``meta`` holds ``class_names`` and ``input_size``."""

    TASK: ClassVar[str] = "localization"

    def predict_files(self, images: Sequence[Any]) -> list[dict[str, Any]]:
        """Images -> :func:`predict_images`' rows with the ``source``, its ``image_size``, and
        the box and landmarks in the image's own pixels (the model saw it stretched to its
        input). Files, or images a program holds (Pillow images, numpy ``uint8`` arrays),
        named ``images[i]`` (:func:`~cnnlab.engine.predict.preprocess`)."""
        images = image_list(images)  # a generator too, or one image alone
        size = self.meta["input_size"][-1]
        rows, frames, _ = in_chunks(
            stretched_chunks(images, size),
            lambda x: predict_images(self.network, self.class_names, x),
            size,
        )
        return in_file_pixels(rows, source_names(images), frames, size)

    def predict_video(self, video: str | Path, every: Every = 1) -> list[dict[str, Any]]:
        """:meth:`predict_files` of a video's frames (every ``every``-th from the first), a row
        each named ``clip.mp4#frame=i``, the frames streamed :data:`~cnnlab.engine.predict.CHUNK`
        at a time (:func:`~cnnlab.engine.predict.video_chunks`)."""
        size, sources = self.meta["input_size"][-1], []
        rows, frames, _ = in_chunks(
            video_chunks(video, size, sources, every),
            lambda x: predict_images(self.network, self.class_names, x),
            size,
        )
        return in_file_pixels(rows, sources, frames, size)


def predict_files(checkpoint: str | Path, paths: Sequence[Any]) -> list[dict[str, Any]]:
    """:meth:`Localizer.predict_files` of a checkpoint loaded for this one call, on the CPU."""
    return Localizer.load(checkpoint, device="cpu").predict_files(paths)


def in_file_pixels(
    rows: list[dict[str, Any]], sources: Sequence[str], frames: Sequence[tuple[int, int]], size: int
) -> list[dict[str, Any]]:
    """:func:`predict_images`' rows (in the ``size x size`` input) with ``source``,
    ``image_size`` and coordinates in each ``(width, height)`` frame."""
    for src, row, frame in zip(sources, rows, frames, strict=True):
        row["source"], row["image_size"] = src, list(frame)
        row["box_xyxy"] = in_frame(row["box_xyxy"], size, frame)
        row["landmarks"] = [in_frame(xy, size, frame) for xy in row["landmarks"]]
    return rows


@torch.no_grad()
def predict_images(
    model: torch.nn.Module, names: Sequence[str], images: torch.Tensor
) -> list[dict[str, Any]]:
    """``images (N, 3, S, S)`` uint8 -> per image: object probability, class (of ``names``),
    box (pixels, xyxy) and landmarks (pixels), from a localizer (set to eval here)."""
    model.eval()
    if not len(images):
        return []
    out = model.split(torch.cat([model(standardise(c.float())) for c in images.split(64)]))
    return _rows(out, names, images.shape[-1])


def _rows(out: LocalizationOutput, names: Sequence[str], s: int) -> list[dict[str, Any]]:
    """:func:`predict_images`' rows of the outputs ``out`` of images ``s`` pixels a side."""
    boxes = _xyxy(out.box) * s
    rows = []
    for i in range(len(out.pc_logit)):
        probs = out.class_logits[i].softmax(0)
        rows.append(
            {
                "object_probability": float(torch.sigmoid(out.pc_logit[i])),
                "class": names[int(probs.argmax())],
                "class_probability": float(probs.max()),
                "box_xyxy": [round(v, 2) for v in boxes[i].tolist()],
                "landmarks": (out.landmarks[i] * s).tolist(),
            }
        )
    return rows


def draw_predictions(
    images: torch.Tensor,
    rows: list[dict[str, Any]],
    path: str | Path,
    threshold: float = 0.5,
    truth: Sequence[dict[str, Any]] | None = None,
    title: str = "",
) -> Path:
    """A grid of images with the predicted box, label and landmarks drawn (yellow, cyan); with
    ``truth`` (per image ``class``, ``None`` for no object, and ``box_xyxy`` in pixels) the
    true box too (green, dashed), each title "true: ..." over "said: ..."."""
    from matplotlib.patches import Rectangle

    from cnnlab.viz.plots import plt, save_figure

    cols = min(4, len(images))
    n_rows = math.ceil(len(images) / cols)
    high = 2.6 if truth is None else 2.9  # two lines of title
    fig, axes = plt.subplots(n_rows, cols, figsize=(2.6 * cols, high * n_rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, img, row) in enumerate(zip(axes.flat, images, rows, strict=False)):
        ax.imshow(img.permute(1, 2, 0).numpy())
        ax.set_xlim(0, img.shape[-1])
        ax.set_ylim(img.shape[-2], 0)
        if row["object_probability"] >= threshold:
            x1, y1, x2, y2 = row["box_xyxy"]
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color="yellow", lw=2))
            said = f"{row['class']} {row['object_probability']:.2f}"
            for x, y in row["landmarks"]:
                ax.plot(x, y, "c.", ms=6)
        else:
            said = f"no object ({row['object_probability']:.2f})"
        if truth is None:
            ax.set_title(said, fontsize=8)
            continue
        true = truth[i]
        if true["class"] is not None:
            x1, y1, x2, y2 = true["box_xyxy"]
            box = Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color="lime", lw=1.5, ls="--")
            ax.add_patch(box)
        iou = f", IoU {true['iou']:.2f}" if true.get("iou") is not None else ""
        ax.set_title(f"true: {true['class'] or 'no object'}\nsaid: {said}{iou}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path, dpi=100)


def draw_mistakes(
    data: LocalizationData,
    split: str,
    said: Answers,
    path: Path,
    count: int = 12,
) -> Path | None:
    """``mistakes.png``: the images of ``split`` answered worst (``said``, as :func:`evaluate`
    judged them), up to ``count``: first those whose presence or class is wrong, then those
    whose box misses (``IoU < 0.5``), each group the lowest IoU first; each with its true box
    (green) and the predicted one (yellow). ``None`` where every image was answered right."""
    idx = data.splits[split]
    out, correct, iou = said
    rows = _rows(out, data.class_names, data.images.shape[-1])
    has = data.pc[idx] > 0.5
    said_object = torch.sigmoid(out.pc_logit) > 0.5
    score = torch.where(has, iou, torch.ones_like(iou)) + correct.float()  # wrong first
    wrong = torch.nonzero(~correct | (has & (iou < 0.5))).flatten()
    order = wrong[torch.argsort(score[wrong], stable=True)][:count]
    if not order.numel():
        return None
    true_boxes = _xyxy(data.box[idx]) * data.images.shape[-1]
    truth = [
        {
            "class": data.class_names[int(data.label[idx][i])] if has[i] else None,
            "box_xyxy": true_boxes[i].tolist(),
            "iou": float(iou[i]) if has[i] and said_object[i] else None,
        }
        for i in order.tolist()
    ]
    title = f"{split}: the images answered worst (green: true box; yellow: predicted)"
    images = data.images[idx][order]
    return draw_predictions(images, [rows[i] for i in order], path, truth=truth, title=title)
