"""Box formats, the IoU family and non-max suppression: hand examples and properties."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cnnlab.ops import (
    batched_nms,
    box_area,
    box_convert,
    box_iou,
    complete_box_iou,
    distance_box_iou,
    elementwise_iou,
    generalized_box_iou,
    nms,
    slide_nms,
)


def random_boxes(n: int, seed: int, spread: float = 100.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * spread
    wh = torch.rand(n, 2, generator=g) * 30 + 1
    return torch.cat([xy, xy + wh], 1)


def python_nms(
    boxes: torch.Tensor, scores: torch.Tensor, thr: float, inclusive: bool = False
) -> list[int]:
    """The slide's algorithm, written as a plain loop: the oracle."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    keep = []
    while order:
        best = order.pop(0)
        keep.append(best)
        ious = box_iou(boxes[best][None], boxes[order])[0].tolist() if order else []
        order = [
            j for j, v in zip(order, ious, strict=True) if not (v >= thr if inclusive else v > thr)
        ]
    return keep


def test_slide_iou_examples() -> None:
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 6.0, 6.0]])
    assert torch.allclose(box_iou(a, b), torch.tensor([[1 / 7, 1.0, 0.0]]))  # 1 / (4 + 4 - 1)
    assert box_area(b).tolist() == [4.0, 4.0, 1.0]


@given(seed=st.integers(0, 10_000), n=st.integers(1, 12), m=st.integers(1, 12))
def test_iou_properties(seed: int, n: int, m: int) -> None:
    a, b = random_boxes(n, seed), random_boxes(m, seed + 1)
    iou = box_iou(a, b)
    assert iou.shape == (n, m) and (iou >= 0).all() and (iou <= 1 + 1e-6).all()
    assert torch.allclose(iou, box_iou(b, a).T)
    assert torch.allclose(box_iou(a, a).diagonal(), torch.ones(n))
    for fn, low in ((generalized_box_iou, -1), (distance_box_iou, -1), (complete_box_iou, -2)):
        v = fn(a, b)  # each subtracts a non-negative penalty from IoU
        assert (v <= iou + 1e-6).all() and (v >= low - 1e-6).all()


def test_integer_pixel_boxes_give_the_same_ious_as_floats() -> None:
    """Integer boxes (pixel coordinates) used to fail in ``torch.finfo``; the pairwise and the
    matching IoU now equal those of the same boxes as floats."""
    a = random_boxes(9, 3).round().long()
    b = random_boxes(9, 4).round().long()
    b[0] = torch.tensor([5, 5, 5, 9])  # no area: a zero union against itself
    assert torch.equal(box_iou(a, b), box_iou(a.float(), b.float()))
    assert box_iou(b[:1], b[:1]).item() == 0.0
    assert torch.equal(elementwise_iou(a, b), elementwise_iou(a.float(), b.float()))


@given(seed=st.integers(0, 10_000))
def test_format_round_trips(seed: int) -> None:
    boxes = random_boxes(8, seed)
    for fmt in ("xywh", "cxcywh"):
        assert torch.allclose(
            box_convert(box_convert(boxes, "xyxy", fmt), fmt, "xyxy"), boxes, atol=1e-4
        )
    cx = box_convert(boxes, "xyxy", "cxcywh")
    assert torch.allclose(cx[:, 2] * cx[:, 3], box_area(boxes), rtol=1e-5)


def test_giou_diou_ciou_hand_values() -> None:
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    far = torch.tensor([[4.0, 0.0, 6.0, 2.0]])  # disjoint, hull 6x2 = 12, union 8
    assert generalized_box_iou(a, far).item() == pytest.approx(0 - (12 - 8) / 12, abs=1e-6)
    # centres 4 apart, hull diagonal^2 = 36 + 4
    assert distance_box_iou(a, far).item() == pytest.approx(-16 / 40, abs=1e-6)
    assert complete_box_iou(a, far).item() == pytest.approx(-16 / 40, abs=1e-6)  # same aspect
    tall = torch.tensor([[0.0, 0.0, 1.0, 4.0]])
    v = 4 / math.pi**2 * (math.atan(1 / 4) - math.atan(1.0)) ** 2
    iou = 2 / 6  # intersection 1 x 2, union 4 + 4 - 2
    assert complete_box_iou(a, tall).item() < distance_box_iou(a, tall).item()
    assert distance_box_iou(a, tall).item() - complete_box_iou(a, tall).item() == pytest.approx(
        v / (1 - iou + v) * v, abs=1e-5
    )


@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 60),
    thr=st.sampled_from([0.3, 0.5, 0.7]),
    inclusive=st.booleans(),
)
def test_nms_matches_the_slide_loop_and_its_properties(
    seed: int, n: int, thr: float, inclusive: bool
) -> None:
    boxes = random_boxes(n, seed, spread=40)
    scores = torch.rand(n, generator=torch.Generator().manual_seed(seed))
    kept = nms(boxes, scores, thr, inclusive)
    assert kept.tolist() == python_nms(boxes, scores, thr, inclusive)
    if n == 0:
        return
    assert (scores[kept].diff() <= 0).all()  # sorted by score
    iou = box_iou(boxes[kept], boxes[kept]).fill_diagonal_(0)
    assert not ((iou >= thr) if inclusive else (iou > thr)).any()
    dropped = torch.tensor(sorted(set(range(n)) - set(kept.tolist())), dtype=torch.int64)
    if len(dropped):
        cover = box_iou(boxes[dropped], boxes[kept]).max(1).values
        assert ((cover >= thr) if inclusive else (cover > thr)).all()


@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 300),
    block=st.sampled_from([1, 3, 16, 64]),
    inclusive=st.booleans(),
)
def test_block_size_and_backend_do_not_change_the_result(
    seed: int, n: int, block: int, inclusive: bool
) -> None:
    from cnnlab.ops.nms import _greedy

    boxes = random_boxes(n, seed, spread=60)
    scores = torch.rand(n, generator=torch.Generator().manual_seed(seed))
    expected = python_nms(boxes, scores, 0.5, inclusive)
    assert nms(boxes, scores, 0.5, inclusive, block=block).tolist() == expected
    order = scores.argsort(descending=True, stable=True)
    on_device = order[_greedy(boxes[order], 0.5, inclusive, torch, block)]  # the non-CPU path
    assert on_device.tolist() == expected


def test_nms_takes_bfloat16_boxes_and_boxes_with_gradients() -> None:
    """Boxes a model made under bf16 autocast, or that still track gradients, used to end in
    NumPy's "unsupported ScalarType BFloat16" / "Can't call numpy() on Tensor that requires
    grad". bf16 boxes give the slide loop's answer on the same (exactly widened) values."""
    boxes = random_boxes(200, 0, spread=60).to(torch.bfloat16)
    scores = torch.rand(200, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    expected = python_nms(boxes.float(), scores.float(), 0.5, False)
    assert nms(boxes, scores, 0.5).tolist() == expected
    classes = torch.arange(200) % 3
    assert (
        batched_nms(boxes, scores, classes, 0.5).tolist()
        == batched_nms(boxes.float(), scores.float(), classes, 0.5).tolist()
    )
    tracked = boxes.float().requires_grad_()
    assert nms(tracked, scores.float(), 0.5).tolist() == expected


@given(seed=st.integers(0, 10_000), n=st.integers(1, 50))
def test_batched_equals_one_by_one(seed: int, n: int) -> None:
    boxes = random_boxes(n, seed, spread=30)
    g = torch.Generator().manual_seed(seed)
    scores, classes = torch.rand(n, generator=g), torch.randint(0, 3, (n,), generator=g)
    kept = set(batched_nms(boxes, scores, classes, 0.5).tolist())
    expected = set()
    for c in range(3):
        idx = (classes == c).nonzero().flatten()
        expected |= set(idx[nms(boxes[idx], scores[idx], 0.5)].tolist())
    assert kept == expected


def test_slide_nms_drops_low_scores_and_uses_ge() -> None:
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 5], [20, 20, 30, 30]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.5])
    # box 2 has IoU exactly 0.5 with box 0: the slide discards it (>=); box 3 is below 0.6.
    assert slide_nms(boxes, scores).tolist() == [0]
    # "Discard all boxes with p_c <= 0.6": a lone box scoring exactly 0.6 goes too
    lone = torch.tensor([0.9, 0.8, 0.7, 0.6])
    assert slide_nms(boxes, lone).tolist() == [0] and slide_nms(boxes, lone, 0.59).tolist() == [
        0,
        3,
    ]
    assert nms(boxes, scores, 0.5).tolist() == [0, 2, 3]  # torchvision's strict >
    assert slide_nms(boxes, scores, classes=torch.tensor([0, 1, 0, 0])).tolist() == [0, 1]
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).numel() == 0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: box_iou(torch.rand(3, 3), torch.rand(2, 4)), r"boxes1 must be an \(N, 4\)"),
        (lambda: box_iou(torch.rand(2, 4), torch.rand(2, 2, 4)), r"boxes2 .* shape \(2, 2, 4\)"),
        (lambda: nms(torch.rand(3, 4), torch.rand(2), 0.5), r"scores must have shape \(3,\)"),
        (lambda: box_convert(torch.rand(3, 5), "xyxy", "xywh"), r"\(\.\.\., 4\).*\(3, 5\)"),
        (
            lambda: elementwise_iou(torch.rand(3, 4), torch.rand(2, 4)),
            r"share one \(\.\.\., 4\) shape, got \(3, 4\) and \(2, 4\)",
        ),
        (
            lambda: batched_nms(torch.rand(3, 4), torch.rand(3), torch.zeros(4), 0.5),
            r"idxs must have shape \(3,\)",
        ),
    ],
)
def test_mismatched_shapes_are_refused(call, message: str) -> None:
    """A score too few used to pass silently (NMS kept boxes by a shorter ranking)."""
    from cnnlab.errors import CnnlabError

    with pytest.raises(CnnlabError, match=message):
        call()


def test_non_finite_scores_or_boxes_are_refused() -> None:
    """A NaN score sorted above 0.9: NMS kept the NaN box first and it suppressed the best real
    box ([1, 2] was returned for the boxes below)."""
    from cnnlab.errors import CnnlabError

    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]])
    assert nms(boxes, torch.tensor([0.9, 0.8, 0.5]), 0.5).tolist() == [0, 2]
    with pytest.raises(CnnlabError, match="scores hold NaN or infinite values"):
        nms(boxes, torch.tensor([0.9, float("nan"), 0.5]), 0.5)
    with pytest.raises(CnnlabError, match="boxes hold NaN or infinite values"):
        batched_nms(
            boxes.index_fill(1, torch.tensor([2]), math.inf), torch.rand(3), torch.zeros(3), 0.5
        )
