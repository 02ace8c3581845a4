"""Grids, anchor boxes and YOLO target assignment (slides "Anchor box algorithm", "Anchor box
example", "Training").

Coordinates here are relative to the image (0..1, (0, 0) top-left). For an ``S x S`` grid the
cell size is ``1/S``.

* Assignment (the slide's rule): "each object in the training image is assigned to the grid cell
  that contains the object's midpoint and the anchor box for the grid cell with the highest IoU".
  The IoU is between shapes (both boxes centred at the same point).
* Encoding (YOLOv2, Redmon & Farhadi 2017): ``b_x = (j + sigmoid(t_x)) / S``,
  ``b_y = (i + sigmoid(t_y)) / S``, ``b_w = p_w e^{t_w}``, ``b_h = p_h e^{t_h}`` for cell
  ``(i, j)`` and anchor ``(p_w, p_h)``.
* Anchors by k-means over the training boxes' shapes with distance ``1 - IoU`` (YOLOv2, section
  "Dimension Clusters"), or Faster R-CNN's nine hand-chosen shapes (:func:`paper_anchors`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cnnlab.errors import CnnlabError
from cnnlab.words import counted


def shape_iou(wh1: torch.Tensor, wh2: torch.Tensor) -> torch.Tensor:
    """IoU of box shapes centred on one point: ``(N, 2) x (M, 2) -> (N, M)``."""
    inter = torch.minimum(wh1[:, None, 0], wh2[None, :, 0]) * torch.minimum(
        wh1[:, None, 1], wh2[None, :, 1]
    )
    union = (wh1[:, 0] * wh1[:, 1])[:, None] + (wh2[:, 0] * wh2[:, 1])[None, :] - inter
    return inter / union.clamp(min=1e-12)


def kmeans_anchors(wh: torch.Tensor, k: int, iterations: int = 100, seed: int = 0) -> torch.Tensor:
    """``k`` anchor shapes ``(k, 2)`` from box shapes ``(N, 2)`` by k-means with distance
    ``1 - IoU``; sorted by area. Centres are the cluster medians (robust to outliers)."""
    if k < 1:
        raise CnnlabError(f"k-means needs at least 1 anchor, got {k}")
    _check_shapes(wh, "box shapes")
    if len(wh) < k:
        raise CnnlabError(f"{counted(len(wh), 'box', 'boxes')}: too few for {k} anchors")
    g = torch.Generator().manual_seed(seed)
    centres = wh[torch.randperm(len(wh), generator=g)[:k]].clone()
    assign = torch.full((len(wh),), -1)
    for _ in range(iterations):
        new = shape_iou(wh, centres).argmax(1)
        if torch.equal(new, assign):
            break
        assign = new
        for c in range(k):
            members = wh[assign == c]
            if len(members):
                centres[c] = members.median(0).values
    return centres[(centres[:, 0] * centres[:, 1]).argsort()]


PAPER_SCALES = (128, 256, 512)  # Faster R-CNN's anchor sides, pixels of a 600 px image
PAPER_RATIOS = (0.5, 1.0, 2.0)  # its aspect ratios h / w: 1:2, 1:1, 2:1
PAPER_IMAGE = 600  # the shorter side its images were resized to


def paper_anchors(image_size: int) -> torch.Tensor:
    """Faster R-CNN's anchors (Ren et al. 2015, section 3.1.1: "3 scales with box areas of
    128^2, 256^2, and 512^2 pixels, and 3 aspect ratios of 1:1, 1:2, and 2:1", for images whose
    shorter side is 600 px), scaled to an ``image_size`` image: ``(9, 2)`` (w, h) pixels, scale
    by scale. Each has the area ``s^2`` and ``h / w = r``: ``w = s / sqrt(r)``, ``h = s sqrt(r)``
    (torchvision's ``AnchorGenerator`` rule)."""
    s = torch.tensor(PAPER_SCALES, dtype=torch.float32) * image_size / PAPER_IMAGE
    root = torch.tensor(PAPER_RATIOS).sqrt()
    w, h = (s[:, None] / root[None]).flatten(), (s[:, None] * root[None]).flatten()
    return torch.stack([w, h], 1)


def mean_best_iou(wh: torch.Tensor, anchors: torch.Tensor) -> float:
    """Average over boxes of the best shape IoU with an anchor (how well anchors fit the data)."""
    _check_shapes(wh, "box shapes")
    _check_shapes(anchors, "anchors")
    if len(wh) == 0 or len(anchors) == 0:
        raise CnnlabError(f"{len(wh)} boxes and {len(anchors)} anchors: nothing to compare")
    return shape_iou(wh, anchors).max(1).values.mean().item()


def iou_by_k(wh: torch.Tensor, ks: range, seed: int = 0) -> list[float]:
    """:func:`mean_best_iou` of the k-means anchors for every ``k`` in ``ks``: YOLOv2's figure 2
    (average IoU against the number of clusters), from which the paper chose k = 5 as "a good
    tradeoff between model complexity and high recall"."""
    return [mean_best_iou(wh, kmeans_anchors(wh, k, seed=seed)) for k in ks]


def _check_shapes(wh: torch.Tensor, what: str) -> None:
    """``(N, 2)`` widths and heights, each finite and > 0: a zero-area box is a 0/0 shape IoU
    and its anchor a log(0) in the YOLO target ``log(box / anchor)``."""
    if wh.dim() != 2 or wh.shape[1] != 2:
        raise CnnlabError(f"{what} must be (N, 2) widths and heights, got {tuple(wh.shape)}")
    if not (torch.isfinite(wh) & (wh > 0)).all():
        raise CnnlabError(f"{what}: every width and height must be a finite number > 0")


@dataclass(frozen=True)
class YoloTargets:
    """Dense targets for an ``(B, S, S, A)`` grid of anchors."""

    responsible: torch.Tensor  # (B, S, S, A) bool: this anchor predicts an object
    txy: torch.Tensor  # (B, S, S, A, 2) offsets in the cell, in [0, 1): sigmoid targets
    twh: torch.Tensor  # (B, S, S, A, 2) log(box / anchor)
    labels: torch.Tensor  # (B, S, S, A) int64 class (0 where not responsible)
    boxes: torch.Tensor  # (B, S, S, A, 4) the assigned box, xyxy relative


def assign_targets(
    boxes_xyxy: list[torch.Tensor], labels: list[torch.Tensor], grid: int, anchors: torch.Tensor
) -> YoloTargets:
    """Build :class:`YoloTargets` for a batch. ``boxes_xyxy[b] (N_b, 4)`` relative to the image,
    ``labels[b] (N_b,)``, ``anchors (A, 2)`` relative ``(w, h)``. When two objects claim the
    same cell and anchor the later one wins (a known limit of the scheme)."""
    b, a = len(boxes_xyxy), len(anchors)
    shape = (b, grid, grid, a)
    responsible = torch.zeros(shape, dtype=torch.bool)
    txy, twh = torch.zeros(*shape, 2), torch.zeros(*shape, 2)
    lab, assigned = torch.zeros(shape, dtype=torch.int64), torch.zeros(*shape, 4)
    for n, (bx, lb) in enumerate(zip(boxes_xyxy, labels, strict=True)):
        if len(bx) == 0:
            continue
        centre = (bx[:, :2] + bx[:, 2:]) / 2
        wh = (bx[:, 2:] - bx[:, :2]).clamp(min=1e-6)
        cell = (centre * grid).floor().clamp(0, grid - 1).long()  # (N, 2) as (col j, row i)
        best = shape_iou(wh, anchors).argmax(1)
        j, i = cell[:, 0], cell[:, 1]
        responsible[n, i, j, best] = True
        txy[n, i, j, best] = centre * grid - cell
        twh[n, i, j, best] = torch.log(wh / anchors[best])
        lab[n, i, j, best] = lb
        assigned[n, i, j, best] = bx
    return YoloTargets(responsible, txy, twh, lab, assigned)


def decode_boxes(raw_xy: torch.Tensor, raw_wh: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Raw ``t_x, t_y`` and ``t_w, t_h`` of shape ``(B, S, S, A, 2)`` -> boxes ``(B, S, S, A, 4)``
    xyxy relative to the image."""
    grid = raw_xy.shape[1]
    ii, jj = torch.meshgrid(
        torch.arange(grid, device=raw_xy.device),
        torch.arange(grid, device=raw_xy.device),
        indexing="ij",
    )
    offset = torch.stack([jj, ii], -1)[None, :, :, None, :].to(raw_xy)  # (1, S, S, 1, 2)
    centre = (offset + torch.sigmoid(raw_xy)) / grid
    wh = anchors.to(raw_wh)[None, None, None] * torch.exp(raw_wh.clamp(max=8))
    return torch.cat([centre - wh / 2, centre + wh / 2], -1)
