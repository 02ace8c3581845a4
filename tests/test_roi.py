"""RoI pooling against torch.nn.functional.adaptive_max_pool2d and a per-bin loop; the R-CNN
box deltas as an inverse pair."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cnnlab.errors import CnnlabError
from cnnlab.ops.roi import decode_deltas, encode_deltas, roi_pool


def naive_roi_pool(features, boxes, size, scale):
    """One region, one sub-window at a time, as Fast R-CNN's section 2.1 describes it, in
    cnnlab's continuous coordinates (a region takes every cell it touches)."""
    h, w = size
    _, c, height, width = features.shape
    out = torch.zeros(len(boxes), c, h, w, dtype=features.dtype)
    for r, (i, x1, y1, x2, y2) in enumerate(boxes.tolist()):
        sx, sy = math.floor(x1 * scale), math.floor(y1 * scale)
        ex, ey = max(math.ceil(x2 * scale), sx + 1), max(math.ceil(y2 * scale), sy + 1)
        for a in range(h):
            top = sy + math.floor(a * (ey - sy) / h)
            bottom = sy + math.ceil((a + 1) * (ey - sy) / h)
            top, bottom = max(top, 0), min(bottom, height)
            for b in range(w):
                left = sx + math.floor(b * (ex - sx) / w)
                right = sx + math.ceil((b + 1) * (ex - sx) / w)
                left, right = max(left, 0), min(right, width)
                if top < bottom and left < right:
                    out[r, :, a, b] = features[int(i), :, top:bottom, left:right].amax((1, 2))
    return out


@pytest.mark.parametrize(
    ("height", "width", "h", "w"), [(7, 7, 7, 7), (13, 9, 5, 4), (4, 6, 7, 7), (23, 17, 1, 2)]
)
def test_a_region_covering_the_map_pools_as_adaptive_max_pool(height, width, h, w):
    torch.manual_seed(0)
    x = torch.randn(2, 3, height, width)
    boxes = torch.tensor([[0, 0, 0, width * 4, height * 4], [1, 0, 0, width * 4, height * 4]])
    ours = roi_pool(x, boxes.float(), (h, w), spatial_scale=0.25)
    torch.testing.assert_close(ours, F.adaptive_max_pool2d(x, (h, w)), rtol=0, atol=0)


def test_matches_the_per_bin_loop_with_regions_off_the_map_and_gradients():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 4, 16, 20, generator=g, requires_grad=True)
    xy = torch.rand(60, 2, generator=g) * torch.tensor([90.0, 70.0]) - 10  # some start off the map
    wh = torch.rand(60, 2, generator=g) * 50 + 0.3  # down to a third of a cell
    boxes = torch.cat([torch.randint(0, 3, (60, 1), generator=g).float(), xy, xy + wh], 1)
    boxes = torch.cat([boxes, torch.tensor([[0.0, 100, 100, 120, 130]])])  # wholly off the map
    ours = roi_pool(x, boxes, (3, 5), spatial_scale=0.25)
    oracle = naive_roi_pool(x, boxes, (3, 5), 0.25)
    torch.testing.assert_close(ours, oracle, rtol=0, atol=0)
    assert (ours[-1] == 0).all()
    weight = torch.randn(ours.shape, generator=g)
    (grad,) = torch.autograd.grad((ours * weight).sum(), x)
    (expected,) = torch.autograd.grad((oracle * weight).sum(), x)
    torch.testing.assert_close(grad, expected)


def test_ties_and_zeros_of_relu_maps_pool_as_the_loop_does():
    g = torch.Generator().manual_seed(3)
    x = torch.relu(torch.randint(-3, 4, (2, 3, 12, 12), generator=g).float())  # many ties
    xy = torch.rand(40, 2, generator=g) * 40
    boxes = torch.cat([torch.randint(0, 2, (40, 1), generator=g).float(), xy, xy + 9], 1)
    torch.testing.assert_close(
        roi_pool(x, boxes, (2, 3), 0.25), naive_roi_pool(x, boxes, (2, 3), 0.25), rtol=0, atol=0
    )


def test_every_region_comes_out_the_same_size():
    x = torch.randn(1, 2, 32, 32)
    boxes = torch.tensor([[0, 0, 0, 8, 8], [0, 10, 4, 128, 60], [0, 50, 50, 51, 51]]).float()
    assert roi_pool(x, boxes, 5, spatial_scale=0.25).shape == (3, 2, 5, 5)
    assert roi_pool(x, boxes[:0], 5).shape == (0, 2, 5, 5)


def test_bad_input_is_named():
    x = torch.randn(1, 2, 8, 8)
    with pytest.raises(CnnlabError, match=r"\(R, 5\)"):
        roi_pool(x, torch.zeros(2, 4), 2)
    with pytest.raises(CnnlabError, match="image indices"):
        roi_pool(x, torch.tensor([[1.0, 0, 0, 4, 4]]), 2)
    with pytest.raises(CnnlabError, match=r"\(N, C, H, W\)"):
        roi_pool(x[0], torch.zeros(1, 5), 2)


def test_deltas_move_each_proposal_onto_its_target_and_back():
    g = torch.Generator().manual_seed(2)
    p = torch.rand(50, 2, generator=g) * 100
    proposals = torch.cat([p, p + torch.rand(50, 2, generator=g) * 40 + 1], 1)
    t = torch.rand(50, 2, generator=g) * 100
    targets = torch.cat([t, t + torch.rand(50, 2, generator=g) * 40 + 1], 1)
    deltas = encode_deltas(proposals, targets)
    torch.testing.assert_close(decode_deltas(proposals, deltas), targets, rtol=1e-5, atol=1e-4)
    assert encode_deltas(proposals, proposals).abs().max() < 1e-6
    # the slide's parametrisation by hand: a 10x20 box moved right by 5 and made twice as wide
    d = encode_deltas(torch.tensor([[0.0, 0, 10, 20]]), torch.tensor([[0.0, 0, 20, 20]]))
    torch.testing.assert_close(d, torch.tensor([[10 * 5 / 10, 0.0, 5 * math.log(2), 0.0]]))
