"""Non-max suppression, exactly the slide's algorithm, vectorised.

Slide "Non-max suppression algorithm": discard every box with ``p_c`` below a threshold (0.6);
while boxes remain, pick the one with the largest ``p_c``, output it, and discard every remaining
box with ``IoU >= 0.5`` against it. "For each class use non-max suppression" (slide "Outputting
the non-max suppressed outputs"): :func:`batched_nms` keeps classes (or images) apart.

The loop takes the candidates a block at a time: greedy inside the block by a vectorised
fixed point, then one vectorised step removes every later box the block's survivors overlap
(see :func:`_greedy`); there is no N x N matrix.
``batched_nms`` offsets each group's boxes so groups cannot overlap (torchvision's trick), and runs
one NMS.

Note: suppression is ``IoU > iou_threshold`` in ``torchvision.ops.nms``; the slide says
``IoU >= 0.5``. :func:`nms` follows torchvision by default so results are interchangeable, and
``inclusive=True`` gives the slide's ``>=``.
"""

from __future__ import annotations

import numpy as np
import torch

from cnnlab.errors import CnnlabError
from cnnlab.ops.boxes import check_boxes


def _check_pairs(
    boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor | None = None
) -> None:
    """``boxes (N, 4)`` with one score (and one group index) per box, all finite: a NaN score
    sorts above every real one, so the greedy loop would keep it first and let it suppress the
    best real box (a model that diverged gives such scores)."""
    check_boxes(boxes)
    for what, t in (("scores", scores), ("idxs", idxs)):
        if t is not None and tuple(t.shape) != (len(boxes),):
            raise CnnlabError(
                f"{what} must have shape ({len(boxes)},), one per box, got {tuple(t.shape)}"
            )
    for what, t in (("boxes", boxes), ("scores", scores)):
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CnnlabError(f"{what} hold NaN or infinite values (a diverged model?)")


def nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float,
    inclusive: bool = False,
    block: int | None = None,
) -> torch.Tensor:
    """Indices of the kept boxes, sorted by decreasing score. ``boxes (N, 4)`` xyxy, ``scores
    (N,)``. ``inclusive`` suppresses at ``IoU >= threshold`` (the slide) instead of ``>``.
    ``block``: candidates per step (default: 64 up to 2,000 boxes, else 16; the result does not
    depend on it).

    The slide's loop, taken a block of candidates at a time (see :func:`_greedy`). On the CPU
    the arrays are NumPy views of the tensors (no copy; far less per-call overhead than small
    tensor ops), elsewhere the same steps run as tensor operations on the device.
    """
    _check_pairs(boxes, scores)
    n = len(boxes)
    if n == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    order = scores.argsort(descending=True, stable=True)
    block = block or (64 if n <= 2000 else 16)  # fastest measured: see benchmarks/nms.py
    if boxes.device.type == "cpu":
        sorted_boxes = boxes.detach()[order]  # boxes a model still has gradients for
        if sorted_boxes.dtype == torch.bfloat16:  # NumPy has no bfloat16; widening is exact
            sorted_boxes = sorted_boxes.float()
        keep = _greedy(sorted_boxes.numpy(), iou_threshold, inclusive, np, block)
        return order[torch.from_numpy(keep)]
    return order[_greedy(boxes[order], iou_threshold, inclusive, torch, block)]


def _iou(ax1, ay1, ax2, ay2, aarea, bx1, by1, bx2, by2, barea, xp):
    """IoU of every ``a`` (column vectors) with every ``b`` (rows), as torchvision computes it:
    ``inter / (area_a + area_b - inter)``; a zero union gives 0."""
    w = (xp.minimum(ax2, bx2) - xp.maximum(ax1, bx1)).clip(0, None)
    h = (xp.minimum(ay2, by2) - xp.maximum(ay1, by1)).clip(0, None)
    inter = w * h
    union = aarea + barea - inter
    return inter / xp.where(union > 0, union, 1.0) * (union > 0)


def _greedy(b, iou_threshold: float, inclusive: bool, xp, block: int):
    """The slide's loop on score-sorted boxes ``b`` with array module ``xp`` (numpy or torch).

    Candidates are taken ``block`` at a time, in score order. Inside a block, ``S[i, j]`` says
    box ``i`` would suppress the lower-scored box ``j``; the greedy answer is the fixed point of
    ``alive[j] = not any_i(alive[i] and S[i, j])``, reached by iterating from all-alive (entry
    ``j`` is final after at most ``j + 1`` rounds, usually after two or three). The block's
    survivors are kept and then remove, in one vectorised step, every later candidate they
    overlap. The result is identical to the one-box-at-a-time loop, with a Python iteration per
    block instead of per kept box.
    """
    x1, y1, x2, y2 = (b[:, k] for k in range(4))
    area = (x2 - x1) * (y2 - y1)
    idx = xp.arange(len(b))
    keep = []
    while len(idx):
        head, rest = idx[:block], idx[block:]
        h = [v[head] for v in (x1, y1, x2, y2, area)]
        iou = _iou(*(v[:, None] for v in h), *h, xp)
        s = xp.triu(iou >= iou_threshold if inclusive else iou > iou_threshold, 1)
        alive = s[0] == s[0]  # all True
        while True:
            new = ~(s & alive[:, None]).any(0)
            if bool((new == alive).all()):
                break
            alive = new
        kept = head[alive]
        keep.append(kept)
        if not len(rest):
            break
        k = [v[kept][:, None] for v in (x1, y1, x2, y2, area)]
        iou = _iou(*k, *(v[rest] for v in (x1, y1, x2, y2, area)), xp)
        hit = iou >= iou_threshold if inclusive else iou > iou_threshold
        idx = rest[~hit.any(0)]
    return xp.concatenate(keep) if xp is np else torch.cat(keep)


def batched_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    idxs: torch.Tensor,
    iou_threshold: float,
    inclusive: bool = False,
) -> torch.Tensor:
    """NMS within each group of ``idxs`` (a class, or an image); kept indices sorted by score.

    With few groups each is suppressed on its own (smaller candidate arrays: measured 1.9x faster
    than one NMS at 10,000 boxes in 3 classes); with many, torchvision's trick of offsetting each
    group's boxes so groups cannot overlap runs one NMS."""
    _check_pairs(boxes, scores, idxs)
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
    """The slide's full procedure: "discard all boxes with ``p_c <= 0.6``", then NMS with
    ``IoU >= 0.5`` suppressing, per class when ``classes`` is given. Returns indices into the
    inputs."""
    candidates = (scores > score_threshold).nonzero().flatten()
    b, s = boxes[candidates], scores[candidates]
    if classes is None:
        kept = nms(b, s, iou_threshold, inclusive=True)
    else:
        kept = batched_nms(b, s, classes[candidates], iou_threshold, inclusive=True)
    return candidates[kept]
