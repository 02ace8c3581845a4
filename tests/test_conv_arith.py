"""Output-size arithmetic against the shapes real PyTorch layers produce."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

from cnnlab.errors import CnnlabError
from cnnlab.ops import (
    LayerGeometry,
    conv_output_size,
    pool_output_size,
    receptive_field,
    resolve_padding,
    same_padding,
    transposed_output_size,
)


def test_slide_examples() -> None:
    assert conv_output_size(6, 3) == 4  # 6x6 * 3x3 = 4x4 ("valid")
    assert conv_output_size(6, 3, p=1) == 6  # padding keeps 6x6
    assert conv_output_size(7, 3, s=2) == 3  # strided convolution
    assert pool_output_size(4, 2, 2) == 2
    assert pool_output_size(5, 3, 1) == 3
    assert transposed_output_size(2, 3, s=1, p=0) == 4  # the slide's 2x2 -> 4x4
    assert conv_output_size(32, 5) == 28 and pool_output_size(28, 2) == 14  # LeNet rows


@given(
    n=st.integers(1, 40),
    f=st.integers(1, 7),
    p=st.integers(0, 4),
    s=st.integers(1, 4),
    d=st.integers(1, 3),
)
def test_conv_size_matches_pytorch(n: int, f: int, p: int, s: int, d: int) -> None:
    assume(d * (f - 1) + 1 <= n + 2 * p)
    y = F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, f, f), stride=s, padding=p, dilation=d)
    assert y.shape[-1] == conv_output_size(n, f, p, s, d)


@given(n=st.integers(1, 30), f=st.integers(1, 6), s=st.integers(1, 4))
def test_pool_size_matches_pytorch(n: int, f: int, s: int) -> None:
    assume(f <= n)
    assert F.max_pool2d(torch.zeros(1, 1, n, n), f, s).shape[-1] == pool_output_size(n, f, s)


@given(
    i=st.integers(1, 12),
    k=st.integers(1, 6),
    s=st.integers(1, 4),
    p=st.integers(0, 3),
    op=st.integers(0, 3),
    d=st.integers(1, 3),
)
def test_transposed_size_matches_pytorch(i: int, k: int, s: int, p: int, op: int, d: int) -> None:
    assume(op < max(s, d))
    expected = (i - 1) * s + d * (k - 1) + 1 - 2 * p + op
    assume(expected >= 1)
    y = F.conv_transpose2d(
        torch.zeros(1, 1, i, i),
        torch.zeros(1, 1, k, k),
        stride=s,
        padding=p,
        output_padding=op,
        dilation=d,
    )
    assert y.shape[-1] == transposed_output_size(i, k, s, p, op, d) == expected


@given(n=st.integers(3, 30), half=st.integers(0, 4))
def test_same_padding_keeps_size(n: int, half: int) -> None:
    f = 2 * half + 1
    assume(f <= n + 2 * half)
    assert same_padding(f) == half
    assert conv_output_size(n, f, same_padding(f)) == n


def test_same_padding_even_kernel_is_an_error() -> None:
    with pytest.raises(CnnlabError, match="odd kernel"):
        same_padding(4)
    assert resolve_padding("valid", 4) == 0
    with pytest.raises(CnnlabError):
        resolve_padding("half", 3)


@pytest.mark.parametrize("kwargs", [{"s": 0}, {"s": -1}, {"p": -1}, {"n": 0}])
def test_bad_values(kwargs: dict) -> None:
    args = {"n": 6, "f": 3} | kwargs
    with pytest.raises(CnnlabError):
        conv_output_size(**args)


def test_kernel_larger_than_padded_input() -> None:
    with pytest.raises(CnnlabError, match="larger than the padded input"):
        conv_output_size(4, 7, p=1)


def test_receptive_field() -> None:
    assert receptive_field([(3, 1), (3, 1)]).size == 5  # two 3x3 convs see 5x5 (VGG)
    assert receptive_field([(3, 1)] * 3).size == 7
    rf = receptive_field([(5, 1), (2, 2), (5, 1), (2, 2)])  # LeNet-5 conv/pool stack
    assert (rf.size, rf.jump) == (16, 4)
    assert receptive_field([LayerGeometry(3, 1, dilation=2)]).size == 5


@given(layers=st.lists(st.tuples(st.integers(1, 5), st.integers(1, 3)), min_size=1, max_size=4))
def test_receptive_field_by_gradient(layers: list[tuple[int, int]]) -> None:
    """Oracle: the span of input pixels with a non-zero gradient for one output unit."""
    n = 64
    size = n
    for f, s in layers:
        assume(f <= size)
        size = conv_output_size(size, f, 0, s)
    x = torch.ones(1, 1, n, n, requires_grad=True)
    y = x
    for f, s in layers:
        y = F.conv2d(y, torch.ones(1, 1, f, f), stride=s)
    y[0, 0, 0, 0].backward()
    touched = (x.grad[0, 0, 0] != 0).nonzero()
    assert int(touched.max() - touched.min()) + 1 == receptive_field(layers).size


def test_receptive_field_refuses_a_model_name() -> None:
    """A string is iterable: without the check each letter was read as a kernel size."""
    with pytest.raises(CnnlabError, match="cnnlab explain receptive-field"):
        receptive_field("vgg16")
