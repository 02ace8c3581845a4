"""Regions of interest: RoI max pooling and the R-CNN box-regression deltas.

Slide "Faster algorithms": R-CNN classifies the proposed regions one at a time (each one cropped,
warped and run through the CNN); Fast R-CNN "uses the convolution implementation of sliding
windows to classify all the proposed regions": the CNN runs once over the whole image and each
region's features are cut out of that shared map by **RoI pooling** (Girshick 2015, section 2.1):
the region, projected onto the feature map, is divided into an ``h x w`` grid of sub-windows of
about equal size, and each sub-window is max-pooled. Every region, whatever its size, comes out
as the same ``(C, h, w)`` volume the fully connected layers take.

Both methods output "label + bounding box": the box is the proposal moved by regressed deltas
(R-CNN, Girshick et al. 2013, appendix C): for a proposal ``P`` and its object ``G`` (centres
``x, y``, sizes ``w, h``)

    t_x = (G_x - P_x) / P_w,  t_y = (G_y - P_y) / P_h,  t_w = log(G_w / P_w),  t_h = log(G_h / P_h)

multiplied by fixed weights ``(10, 10, 5, 5)`` (Fast R-CNN's normalisation of the targets to
about unit variance; the same defaults as torchvision's ``BoxCoder``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cnnlab.errors import CnnlabError
from cnnlab.ops.boxes import box_convert, check_boxes

DELTA_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
# a predicted log-size step is clamped here before exp(): no box grows more than 62x at once
MAX_LOG_SIZE = math.log(1000.0 / 16)


def _bins(start: torch.Tensor, end: torch.Tensor, bins: int, size: int) -> torch.Tensor:
    """``(R, bins, 2)``: the feature cells ``[lo, hi)`` each of a region's ``bins`` sub-windows
    covers. A region spanning cells ``[start, end)`` (at least one) is cut where
    ``torch.nn.functional.adaptive_max_pool2d`` cuts a whole map: sub-window ``i`` covers
    ``[start + floor(i L / bins), start + ceil((i + 1) L / bins))`` with ``L = end - start``;
    then clipped to the map's ``size`` cells (``lo >= hi``: off the map)."""
    length = (end - start).clamp(min=1).to(torch.float64)
    i = torch.arange(bins, dtype=torch.float64, device=start.device)
    lo = start[:, None] + torch.floor(i[None] * length[:, None] / bins).long()
    hi = start[:, None] + torch.ceil((i[None] + 1) * length[:, None] / bins).long()
    return torch.stack([lo.clamp(0, size), hi.clamp(0, size)], -1)


def _level(extent: torch.Tensor) -> torch.Tensor:
    """``floor(log2(extent))`` of positive integers (exact in float64 far beyond map sizes:
    ``log2(2^k - 1)`` stays ``~2^-k`` below ``k``)."""
    return torch.log2(extent.double()).floor().long()


def _range_max_tables(x: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """A sparse table of ``x (N, C, H, W)``: ``(rows, cols, N, C, H, W)`` where entry
    ``[k, l, ..., y, x]`` is the maximum over the ``2^k x 2^l`` cells from ``(y, x)``
    (the lowest float past the map's edge). Any rectangle's maximum is then the maximum of
    four entries: two power-of-two windows a side that overlap to cover it."""
    lowest = torch.finfo(x.dtype).min

    def shifted(t: torch.Tensor, by: int, dim: int) -> torch.Tensor:
        pad = [0, 0, 0, by] if dim == -2 else [0, by]
        return F.pad(t.narrow(dim, by, t.shape[dim] - by), pad, value=lowest)

    by_rows = [x]
    for k in range(1, rows):
        prev = by_rows[-1]
        by_rows.append(torch.maximum(prev, shifted(prev, 2 ** (k - 1), -2)))
    table = []
    for t in by_rows:
        by_cols = [t]
        for k in range(1, cols):
            prev = by_cols[-1]
            by_cols.append(torch.maximum(prev, shifted(prev, 2 ** (k - 1), -1)))
        table.append(torch.stack(by_cols))
    return torch.stack(table)


def roi_pool(
    features: torch.Tensor,
    boxes: torch.Tensor,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
) -> torch.Tensor:
    """RoI max pooling (Fast R-CNN): ``features (N, C, H, W)``, ``boxes (R, 5)`` rows of
    ``(image index, x1, y1, x2, y2)`` in image pixels -> ``(R, C, h, w)``.

    ``spatial_scale`` maps image pixels onto the feature map (``1/4`` for a map at stride 4).
    A region covers the cells ``floor(x1 s) .. ceil(x2 s) - 1`` (at least one), is cut into
    ``h x w`` sub-windows like :func:`torch.nn.functional.adaptive_max_pool2d` cuts a map, and
    each sub-window's maximum is taken; a sub-window wholly off the map gives 0. Gradients flow
    to the maxima.

    Note: Caffe and ``torchvision.ops.roi_pool`` round the scaled corners and count the region
    ``x2 - x1 + 1`` cells wide (pixel-index boxes); cnnlab's boxes are continuous (no "+1",
    :mod:`cnnlab.ops.boxes`), so a region takes every cell it touches. A region that covers
    the whole map pools exactly as ``adaptive_max_pool2d`` does.

    Vectorised as range-maximum queries: the map's sparse table (:func:`_range_max_tables`, one
    per image, not per region) answers every sub-window of every region with four lookups,
    whatever its size.
    """
    if features.dim() != 4:
        raise CnnlabError(f"features must be (N, C, H, W), got shape {tuple(features.shape)}")
    if boxes.dim() != 2 or boxes.shape[1] != 5:
        raise CnnlabError(
            f"boxes must be (R, 5) rows of (image, x1, y1, x2, y2), got shape {tuple(boxes.shape)}"
        )
    h, w = (output_size, output_size) if isinstance(output_size, int) else output_size
    n, c, height, width = features.shape
    if not len(boxes):
        return features.new_zeros(0, c, h, w)
    index = boxes[:, 0].long()
    if index.min() < 0 or index.max() >= n:
        raise CnnlabError(f"box image indices must be in [0, {n - 1}], got {index.tolist()}")
    scaled = boxes[:, 1:].detach().double() * spatial_scale
    x1, y1 = torch.floor(scaled[:, 0]).long(), torch.floor(scaled[:, 1]).long()
    x2 = torch.maximum(torch.ceil(scaled[:, 2]).long(), x1 + 1)
    y2 = torch.maximum(torch.ceil(scaled[:, 3]).long(), y1 + 1)
    rows = _bins(y1, y2, h, height)[:, :, None, :].expand(-1, h, w, 2)  # (R, h, w, 2)
    cols = _bins(x1, x2, w, width)[:, None, :, :].expand(-1, h, w, 2)
    empty = (rows[..., 0] >= rows[..., 1]) | (cols[..., 0] >= cols[..., 1])  # (R, h, w)
    tall = (rows[..., 1] - rows[..., 0]).clamp(min=1)
    wide = (cols[..., 1] - cols[..., 0]).clamp(min=1)
    kr, kc = _level(tall), _level(wide)  # each sub-window's power-of-two window, a side
    table = _range_max_tables(features, int(kr.max()) + 1, int(kc.max()) + 1)
    levels_c = table.shape[1]
    # one row of C values a table cell (channels last), so each lookup is one row gathered
    cells = table.permute(0, 1, 2, 4, 5, 3).reshape(-1, c)
    image = index[:, None, None]

    def lookup(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        row = (((kr * levels_c + kc) * n + image) * height + y) * width + x  # (R, h, w)
        return cells.index_select(0, row.reshape(-1)).view(*row.shape, c)

    top, left = rows[..., 0].clamp(max=height - 1), cols[..., 0].clamp(max=width - 1)
    bottom, right = (rows[..., 1] - 2**kr).clamp(min=0), (cols[..., 1] - 2**kc).clamp(min=0)
    pooled = torch.maximum(  # (R, h, w, C): the four windows' maxima
        torch.maximum(lookup(top, left), lookup(top, right)),
        torch.maximum(lookup(bottom, left), lookup(bottom, right)),
    )
    return pooled.masked_fill(empty[..., None], 0.0).permute(0, 3, 1, 2).contiguous()


def encode_deltas(
    proposals_xyxy: torch.Tensor,
    targets_xyxy: torch.Tensor,
    weights: tuple[float, float, float, float] = DELTA_WEIGHTS,
) -> torch.Tensor:
    """R-CNN's regression targets ``(R, 4)``: ``(t_x, t_y, t_w, t_h)`` (module docstring) that
    move each proposal ``(R, 4)`` onto its target ``(R, 4)``, times ``weights``."""
    check_boxes(proposals_xyxy, "proposals")
    check_boxes(targets_xyxy, "targets")
    p = box_convert(proposals_xyxy, "xyxy", "cxcywh")
    g = box_convert(targets_xyxy, "xyxy", "cxcywh")
    wx, wy, ww, wh = weights
    return torch.stack(
        [
            wx * (g[:, 0] - p[:, 0]) / p[:, 2],
            wy * (g[:, 1] - p[:, 1]) / p[:, 3],
            ww * torch.log(g[:, 2] / p[:, 2]),
            wh * torch.log(g[:, 3] / p[:, 3]),
        ],
        1,
    )


def decode_deltas(
    proposals_xyxy: torch.Tensor,
    deltas: torch.Tensor,
    weights: tuple[float, float, float, float] = DELTA_WEIGHTS,
) -> torch.Tensor:
    """The inverse of :func:`encode_deltas`: proposals ``(R, 4)`` moved by ``deltas (R, 4)``
    -> boxes ``(R, 4)`` xyxy (a log-size step is clamped at :data:`MAX_LOG_SIZE`)."""
    check_boxes(proposals_xyxy, "proposals")
    p = box_convert(proposals_xyxy, "xyxy", "cxcywh")
    wx, wy, ww, wh = weights
    cx = p[:, 0] + deltas[:, 0] / wx * p[:, 2]
    cy = p[:, 1] + deltas[:, 1] / wy * p[:, 3]
    bw = p[:, 2] * torch.exp((deltas[:, 2] / ww).clamp(max=MAX_LOG_SIZE))
    bh = p[:, 3] * torch.exp((deltas[:, 3] / wh).clamp(max=MAX_LOG_SIZE))
    return box_convert(torch.stack([cx, cy, bw, bh], 1), "cxcywh", "xyxy")
