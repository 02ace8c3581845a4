"""Detection metrics with pycocotools (the maintained reference implementation): COCO mAP
@[.5:.95], mAP@0.5 and the precision-recall curve at IoU 0.5."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import torch


def coco_evaluate(
    predictions: list[dict[str, torch.Tensor]],
    targets: list[dict[str, torch.Tensor]],
    num_classes: int,
) -> dict[str, object]:
    """``predictions[i]``: ``boxes (N, 4)`` xyxy pixels, ``scores (N,)``, ``labels (N,)``;
    ``targets[i]``: ``boxes``, ``labels`` and optionally ``ignore`` (bool per box: a region
    whose detections count neither way, pycocotools' ``iscrowd``, used for VOC's difficult
    objects). Returns ``map``, ``map_50``, ``map_75`` and the precision-recall curve at IoU 0.5
    averaged over classes."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, anns, dets = [], [], []
    for i, (p, t) in enumerate(zip(predictions, targets, strict=True)):
        images.append({"id": i + 1})
        ignore = t.get("ignore", torch.zeros(len(t["labels"]), dtype=torch.bool)).tolist()
        for box, label, crowd in zip(
            t["boxes"].tolist(), t["labels"].tolist(), ignore, strict=True
        ):
            x1, y1, x2, y2 = box
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i + 1,
                    "category_id": label + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": int(crowd),
                }
            )
        for box, score, label in zip(
            p["boxes"].tolist(), p["scores"].tolist(), p["labels"].tolist(), strict=True
        ):
            x1, y1, x2, y2 = box
            dets.append(
                {
                    "image_id": i + 1,
                    "category_id": label + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": score,
                }
            )
    if not anns:
        return _nothing_scored(num_classes, targets)
    gt = COCO()
    gt.dataset = {
        "images": images,
        "annotations": anns,
        "categories": [{"id": c + 1} for c in range(num_classes)],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        if not dets:
            return _nothing_scored(num_classes, targets)
        dt = gt.loadRes(dets)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    every = ev.eval["precision"][:, :, :, 0, -1]  # (IoUs, recalls, classes), all areas, 100 dets
    precision = every[0]  # IoU 0.5
    valid = precision > -1
    curve = np.where(valid, precision, np.nan)
    mean_curve = np.nanmean(curve, axis=1) if valid.any() else np.zeros(len(precision))
    return {
        "map": float(ev.stats[0]),
        "map_50": float(ev.stats[1]),
        "map_75": float(ev.stats[2]),
        "recall": ev.params.recThrs.tolist(),
        "precision": np.nan_to_num(mean_curve).tolist(),
        "per_class": per_class_ap(every, box_counts(targets, num_classes)),
        "class_precision": [np.nan_to_num(curve[:, k]).tolist() for k in range(num_classes)],
    }


def per_class_ap(precision: np.ndarray, boxes: list[int]) -> list[dict[str, float | int | None]]:
    """Each class's ``boxes`` (ground truth), ``ap_50`` and ``ap`` (@[.5:.95]) from
    pycocotools' interpolated precision ``(IoUs, recalls, classes)`` (-1 where a class has no
    boxes: its AP is ``None``). COCO's mAP is the mean of these over the classes with boxes."""
    rows = []
    for k, n in enumerate(boxes):
        p = precision[:, :, k]
        seen = bool((p > -1).any())
        rows.append(
            {
                "boxes": n,
                "ap_50": float(p[0][p[0] > -1].mean()) if seen else None,
                "ap": float(p[p > -1].mean()) if seen else None,
            }
        )
    return rows


def box_counts(targets: list[dict[str, torch.Tensor]], num_classes: int) -> list[int]:
    """Ground-truth boxes of each class (ignored ones too: pycocotools scores by class)."""
    labels = [t["labels"].long() for t in targets] + [torch.zeros(0, dtype=torch.long)]
    return torch.bincount(torch.cat(labels), minlength=num_classes).tolist()


def _nothing_scored(num_classes: int, targets: list[dict[str, torch.Tensor]]) -> dict[str, object]:
    """The figures when there is nothing to score: no boxes (every AP undefined) or no
    detections (every class with boxes at 0)."""
    return {
        "map": 0.0,
        "map_50": 0.0,
        "map_75": 0.0,
        "recall": [],
        "precision": [],
        "per_class": [
            {"boxes": n, "ap_50": 0.0 if n else None, "ap": 0.0 if n else None}
            for n in box_counts(targets, num_classes)
        ],
        "class_precision": [],
    }


def plot_pr_curve(
    result: dict[str, object],
    path: str | Path,
    title: str = "",
    class_names: list[str] | None = None,
) -> Path:
    """The precision-recall curve at IoU 0.5 (``result``'s ``recall`` and ``precision``: the
    mean over classes), and with ``class_names`` each class's own thinly beside it (classes
    without boxes left out), written to ``path``."""
    from cnnlab.viz.plots import plt, save_figure

    fig, ax = plt.subplots(figsize=(4.5, 4))
    per_class = result.get("per_class", [])
    for k, curve in enumerate(result.get("class_precision", []) if class_names else []):
        if per_class[k]["ap_50"] is None:
            continue
        label = f"{class_names[k]} ({per_class[k]['ap_50']:.2f})"
        ax.plot(result["recall"], curve, lw=1, alpha=0.8, label=label)
    ax.plot(result["recall"], result["precision"], color="black", lw=2, label="mean")
    ax.set(
        xlabel="recall",
        ylabel="precision",
        xlim=(0, 1),
        ylim=(0, 1.02),
        title=title or f"PR at IoU 0.5 (mAP@0.5 = {result['map_50']:.3f})",
    )
    if class_names:
        ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    return save_figure(fig, path, dpi=100)


def plot_map_against_time(rows: list[dict[str, float]], path: str | Path) -> Path:
    """Validation mAP@0.5 and mAP@[.5:.95] against training seconds (one point per epoch)."""
    from cnnlab.viz.plots import plt, save_figure

    minutes = [r["seconds"] / 60 for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(minutes, [r["val_map_50"] for r in rows], "o-", ms=3, label="mAP@0.5")
    ax.plot(minutes, [r["val_map"] for r in rows], "s-", ms=3, label="mAP@[.5:.95]")
    ax.set(xlabel="training time (minutes)", ylabel="validation mAP", ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return save_figure(fig, path, dpi=100)
