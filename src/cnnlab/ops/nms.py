"""Non-max suppression, exactly the slide's algorithm, vectorised.

Slide "Non-max suppression algorithm": discard every box with ``p_c`` below a threshold (0.6);
while boxes remain, pick the one with the largest ``p_c``, output it, and discard every remaining
box with ``IoU >= 0.5`` against it. "For each class use non-max suppression" (slide "Outputting
the non-max suppressed outputs"): :func:`batched_nms` keeps classes (or images) apart.

The loop runs over *kept* boxes only, each pass vectorised over all remaining candidates (see
:func:`nms`); there is no N x N matrix.
``batched_nms`` offsets each group's boxes so groups cannot overlap (torchvision's trick), and runs
one NMS.

Note: suppression is ``IoU > iou_threshold`` in ``torchvision.ops.nms``; the slide says
``IoU >= 0.5``. :func:`nms` follows torchvision by default so results are interchangeable, and
``inclusive=True`` gives the slide's ``>=``.
"""

from __future__ import annotations

import numpy as np
import torch


def nms(
    boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, inclusive: bool = False
) -> torch.Tensor:
    """Indices of the kept boxes, sorted by decreasing score. ``boxes (N, 4)`` xyxy, ``scores
    (N,)``. ``inclusive`` suppresses at ``IoU >= threshold`` (the slide) instead of ``>``.

    The loop runs once per *kept* box (the slide's "pick the box with the largest p_c"); each
    pass computes that box's IoU with every remaining candidate at once and drops the ones it
    suppresses, so the candidate array shrinks fast where boxes cluster, as a detector's do.
    On the CPU the arrays are NumPy views of the tensors (no copy; far less per-call overhead
    than small tensor ops), elsewhere the same steps run as tensor operations on the device.
    """
    n = len(boxes)
    if n == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    order = scores.argsort(descending=True, stable=True)
    if boxes.device.type == "cpu":
        keep = _greedy(boxes[order].numpy(), iou_threshold, inclusive, np)
        return order[torch.from_numpy(keep)]
    keep_t = _greedy(boxes[order], iou_threshold, inclusive, torch)
    return order[keep_t]


def _greedy(b, iou_threshold: float, inclusive: bool, xp):
    """The slide's loop on score-sorted boxes ``b`` with array module ``xp`` (numpy or torch)."""
    x1, y1, x2, y2 = (b[:, k] for k in range(4))
    area = (x2 - x1) * (y2 - y1)
    idx = xp.arange(len(b))
    keep = []
    while len(idx):
        i, rest = idx[0], idx[1:]
        keep.append(i)
        if not len(rest):
            break
        w = (xp.minimum(x2[rest], x2[i]) - xp.maximum(x1[rest], x1[i])).clip(0, None)
        h = (xp.minimum(y2[rest], y2[i]) - xp.maximum(y1[rest], y1[i])).clip(0, None)
        inter = w * h
        union = area[rest] + area[i] - inter
        iou = inter / xp.where(union > 0, union, 1.0) * (union > 0)
        idx = rest[iou < iou_threshold] if inclusive else rest[iou <= iou_threshold]
    if xp is np:
        return np.array(keep, dtype=np.int64)
    return torch.stack(keep)


def batched_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    idxs: torch.Tensor,
    iou_threshold: float,
    inclusive: bool = False,
) -> torch.Tensor:
    """NMS within each group of ``idxs`` (a class, or an image); kept indices sorted by score.

    With few groups each is suppressed on its own (smaller candidate arrays: measured 1.4x faster
    than one NMS at 10,000 boxes in 3 classes); with many, torchvision's trick of offsetting each
    group's boxes so groups cannot overlap runs one NMS."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    groups = idxs.unique()
    if len(groups) <= 32:
        kept = []
        for g in groups:
            members = (idxs == g).nonzero().flatten()
            kept.append(members[nms(boxes[members], scores[members], iou_threshold, inclusive)])
        keep = torch.cat(kept)
        return keep[scores[keep].argsort(descending=True, stable=True)]
    span = boxes.max() - boxes.min() + 1
    shifted = boxes + (idxs.to(boxes) * span)[:, None]
    return nms(shifted, scores, iou_threshold, inclusive)


def slide_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    score_threshold: float = 0.6,
    iou_threshold: float = 0.5,
    classes: torch.Tensor | None = None,
) -> torch.Tensor:
    """The slide's full procedure: drop ``p_c < score_threshold``, then NMS with ``IoU >= 0.5``
    suppressing, per class when ``classes`` is given. Returns indices into the inputs."""
    candidates = (scores >= score_threshold).nonzero().flatten()
    b, s = boxes[candidates], scores[candidates]
    if classes is None:
        kept = nms(b, s, iou_threshold, inclusive=True)
    else:
        kept = batched_nms(b, s, classes[candidates], iou_threshold, inclusive=True)
    return candidates[kept]
