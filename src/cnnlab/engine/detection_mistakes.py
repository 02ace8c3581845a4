"""Where a detector goes wrong, image by image: its boxes matched to the true ones as VOC and
COCO match them, and the images with the most misses and false alarms drawn
(``mistakes.png`` of ``detect train``, ``detect eval --out``).

Matching (Everingham et al. 2010, section 4.4; COCO's ``evaluateImg``): the detections of an
image in descending score, each takes the not yet matched true box of its class with the
highest IoU, if that IoU is at least 0.5. A true box left unmatched is a *miss*, a detection
left unmatched a *false alarm*; a true box marked difficult (VOC) is neither missed nor makes
the detection on it false.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from cnnlab.engine.detection_data import DetectionData
from cnnlab.ops.boxes import box_iou

PREDICT_SCORE = 0.3  # as detect predict keeps a detection: what a user sees of the detector


def match_detections(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    labels: torch.Tensor,
    true_boxes: torch.Tensor,
    true_labels: torch.Tensor,
    ignore: torch.Tensor | None = None,
    iou_threshold: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy matching of one image's detections ``boxes (P, 4)`` xyxy, ``scores (P,)``,
    ``labels (P,)`` to its true ``true_boxes (T, 4)``, ``true_labels (T,)`` (module docstring);
    ``ignore (T,)`` marks difficult boxes. Returns ``(false_alarm (P,), missed (T,))`` bools."""
    ignore = torch.zeros(len(true_boxes), dtype=torch.bool) if ignore is None else ignore
    iou = box_iou(boxes, true_boxes) if len(boxes) and len(true_boxes) else None
    taken = torch.zeros(len(true_boxes), dtype=torch.bool)
    false_alarm = torch.ones(len(boxes), dtype=torch.bool)
    for p in torch.argsort(scores, descending=True, stable=True).tolist():
        if iou is None:
            break
        fits = (true_labels == labels[p]) & (iou[p] >= iou_threshold)
        free = fits & ~taken & ~ignore  # a box found already cannot be found twice
        if free.any():
            t = int(torch.where(free, iou[p], -1).argmax())
            taken[t], false_alarm[p] = True, False
        elif (fits & ignore).any():  # on a difficult box: not counted, as if never made
            false_alarm[p] = False
    return false_alarm, ~taken & ~ignore


def draw_detection_mistakes(
    data: DetectionData,
    dets: list[dict[str, torch.Tensor]],
    path: Path,
    title: str,
    score_threshold: float = PREDICT_SCORE,
    count: int = 12,
) -> Path | None:
    """The ``count`` images of ``data`` with the most misses and false alarms among their
    detections ``dets`` (:func:`~cnnlab.engine.detect.detections`, the ones mAP was scored on)
    that score at least ``score_threshold``; each with its true boxes (green, dashed; difficult
    ones grey) and those detections (a found object's in its class colour, a false alarm's
    red), captioned with its counts, most first (ties in order); ``None`` where every image was
    answered right. Keeping a lower threshold's detections that pass ``score_threshold`` keeps
    what decoding at it would (non-max suppression only drops a box for a higher-scored one)."""
    size = data.images.shape[-1]
    shown, errors, marks = [], [], []
    for k, det in enumerate(dets):
        keep = det["scores"] >= score_threshold
        det = {key: v[keep] for key, v in det.items()}
        ignore = data.difficult[k] if data.difficult is not None else None
        false_alarm, missed = match_detections(
            det["boxes"], det["scores"], det["labels"], data.boxes[k] * size, data.labels[k], ignore
        )
        shown.append(det)
        errors.append(int(false_alarm.sum() + missed.sum()))
        marks.append((false_alarm, missed))
    wrong = torch.tensor(errors)
    order = [k for k in torch.argsort(-wrong, stable=True).tolist() if errors[k]][:count]
    if not order:
        return None
    return _draw(data, shown, marks, order, path, title)


def _draw(
    data: DetectionData,
    dets: list[dict[str, torch.Tensor]],
    marks: list[tuple[torch.Tensor, torch.Tensor]],
    order: list[int],
    path: Path,
    title: str,
) -> Path:
    """The images ``order`` of ``data`` in a grid, as :func:`draw_detection_mistakes` says."""
    from matplotlib.patches import Rectangle

    from cnnlab.viz.plots import BOX_COLOURS, labelled_box, plt, save_figure
    from cnnlab.words import counted

    colours = [c for c in BOX_COLOURS if c not in ("red", "lime")]  # those two have meanings
    size = data.images.shape[-1]
    cols = min(4, len(order))
    rows = math.ceil(len(order) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, k in zip(axes.flat, order, strict=False):
        ax.imshow(data.images[k].permute(1, 2, 0).numpy())
        false_alarm, missed = marks[k]
        none = torch.zeros(len(data.boxes[k]), dtype=torch.bool)
        hard = data.difficult[k] if data.difficult is not None else none
        for (x1, y1, x2, y2), tough in zip((data.boxes[k] * size).tolist(), hard, strict=True):
            colour = "grey" if tough else "lime"
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=colour, ls="--"))
        det = dets[k]
        for box, score, label, false in zip(
            det["boxes"].tolist(),
            det["scores"].tolist(),
            det["labels"].tolist(),
            false_alarm.tolist(),
            strict=True,
        ):
            colour = "red" if false else colours[label % len(colours)]
            labelled_box(ax, box, f"{data.class_names[label]} {score:.2f}", colour)
        said = f"{int(missed.sum())} missed, {counted(int(false_alarm.sum()), 'false alarm')}"
        ax.set_title(said, fontsize=8)
    fig.suptitle(f"{title} (green: true boxes; red: false alarms)", fontsize=9)
    return save_figure(fig, path, dpi=100)
