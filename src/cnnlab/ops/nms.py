"""Non-max suppression, exactly the slide's algorithm, vectorised.

Slide "Non-max suppression algorithm": discard every box with ``p_c`` below a threshold (0.6);
while boxes remain, pick the one with the largest ``p_c``, output it, and discard every remaining
box with ``IoU >= 0.5`` against it. "For each class use non-max suppression" (slide "Outputting
the non-max suppressed outputs"): :func:`batched_nms` keeps classes (or images) apart.

All IoU arithmetic is vectorised: the overlapping pairs come from one sweep along x, with no
N x N matrix; the greedy rule then needs one scan down the score order (see :func:`nms`).
``batched_nms`` offsets each group's boxes so groups cannot overlap (torchvision's trick), and runs
one NMS.

Note: suppression is ``IoU > iou_threshold`` in ``torchvision.ops.nms``; the slide says
``IoU >= 0.5``. :func:`nms` follows torchvision by default so results are interchangeable, and
``inclusive=True`` gives the slide's ``>=``.
"""

from __future__ import annotations

import numpy as np
import torch


def overlapping_pairs(
    boxes: torch.Tensor, iou_threshold: float, inclusive: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pair ``(a, b)``, ``a != b``, whose IoU exceeds the threshold (``>=`` if inclusive),
    each pair once, without an N x N matrix.

    A sweep along x: after sorting by ``x1``, a box can only reach the threshold with boxes whose
    ``x1`` lies in ``[x1, x1 + (1 - t) w]``, a contiguous run found by ``searchsorted``; all
    candidate pairs are laid out with ``repeat_interleave`` and their IoUs computed at once.
    """
    n = len(boxes)
    by_x = boxes[:, 0].argsort()
    b = boxes[by_x]
    # IoU >= t needs intersection width >= t * w (intersection <= width x h, and >= t * area),
    # so a partner's x1 can be at most x1 + (1 - t) * w: a shorter run than [x1, x2).
    reach = b[:, 0] + (1 - iou_threshold) * (b[:, 2] - b[:, 0])
    end = torch.searchsorted(b[:, 0].contiguous(), reach.contiguous(), side="right")
    counts = (end - torch.arange(1, n + 1, device=b.device)).clamp(min=0)
    total = int(counts.sum())
    if total == 0:
        empty = torch.empty(0, dtype=torch.int64, device=boxes.device)
        return empty, empty
    src = torch.repeat_interleave(torch.arange(n, device=b.device), counts)
    starts = torch.cumsum(counts, 0) - counts
    dst = src + 1 + (torch.arange(total, device=b.device) - starts[src])
    p, q = b[src], b[dst]
    w = (torch.minimum(p[:, 2], q[:, 2]) - torch.maximum(p[:, 0], q[:, 0])).clamp(min=0)
    h = (torch.minimum(p[:, 3], q[:, 3]) - torch.maximum(p[:, 1], q[:, 1])).clamp(min=0)
    inter = w * h
    union = (
        (p[:, 2] - p[:, 0]) * (p[:, 3] - p[:, 1])
        + (q[:, 2] - q[:, 0]) * (q[:, 3] - q[:, 1])
        - inter
    )
    iou = torch.where(union > 0, inter / union.clamp(min=torch.finfo(union.dtype).tiny), 0.0)
    hit = iou >= iou_threshold if inclusive else iou > iou_threshold
    return by_x[src[hit]], by_x[dst[hit]]


def nms(
    boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, inclusive: bool = False
) -> torch.Tensor:
    """Indices of the kept boxes, sorted by decreasing score. ``boxes (N, 4)`` xyxy, ``scores
    (N,)``. ``inclusive`` suppresses at ``IoU >= threshold`` (the slide) instead of ``>``.

    All IoU arithmetic is one vectorised sweep (:func:`overlapping_pairs`). What remains is
    inherently sequential (a box's fate depends on whether the boxes above it were kept): a
    single scan down the score order, O(1) work per box plus marking its suppressed neighbours.
    """
    n = len(boxes)
    if n == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    order = scores.argsort(descending=True, stable=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(n, device=boxes.device)
    a, b = overlapping_pairs(boxes, iou_threshold, inclusive)
    ra, rb = rank[a], rank[b]
    hi, lo = torch.minimum(ra, rb), torch.maximum(ra, rb)  # higher score suppresses lower
    by_hi = hi.argsort()
    hi_np, lo_np = hi[by_hi].cpu().numpy(), lo[by_hi].cpu().numpy()
    ptr = np.searchsorted(hi_np, np.arange(n + 1))
    removed = np.zeros(n, dtype=bool)
    keep = []
    for r in range(n):
        if removed[r]:
            continue
        keep.append(r)
        s, e = ptr[r], ptr[r + 1]
        if e > s:
            removed[lo_np[s:e]] = True
    return order[torch.as_tensor(keep, dtype=torch.int64, device=boxes.device)]


def batched_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    idxs: torch.Tensor,
    iou_threshold: float,
    inclusive: bool = False,
) -> torch.Tensor:
    """NMS within each group of ``idxs`` (a class, or an image); kept indices sorted by score."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
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
