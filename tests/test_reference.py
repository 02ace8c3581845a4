"""Reference convolutions against torch.nn.functional, and the slides' worked examples."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

from cnnlab.errors import CnnlabError
from cnnlab.ops import (
    avg_pool,
    conv1d,
    conv2d,
    conv3d,
    conv_matrix,
    conv_transpose_matrix,
    conv_transpose_zero_insertion,
    depthwise_conv2d,
    depthwise_separable_conv2d,
    edge_filter,
    insert_zeros,
    max_pool,
    pointwise_conv2d,
)

from slide_examples import (
    CHECKER,
    CHECKER_HORIZONTAL,
    EDGE_INPUT,
    EDGE_OUTPUT,
    FILTER_1D,
    OUTPUT_1D,
    POOL5_INPUT,
    POOL5_MAX,
    POOL_AVG,
    POOL_INPUT,
    POOL_MAX,
    SIGNAL_1D,
    STEP_BRIGHT_LEFT,
    STEP_DARK_LEFT,
    STRIDED_CELLS_THAT_FOLLOW,
    STRIDED_FILTER,
    STRIDED_INPUT,
    STRIDED_OUTPUT_PRINTED,
    TRANSPOSE_CONV_OUTPUT,
    TRANSPOSE_INPUT,
    TRANSPOSE_KERNEL,
    CONV_MATRIX_4x16,
    t,
)

D = torch.float64


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, atol=1e-9, rtol=1e-9)


# --- the slides' examples -------------------------------------------------------------------


def test_vertical_edge_example() -> None:
    out = conv2d(t(EDGE_INPUT), edge_filter("vertical", D)[None, None])
    assert out[0, 0].tolist() == EDGE_OUTPUT


def test_step_edges() -> None:
    v = edge_filter("vertical", D)[None, None]
    assert conv2d(t(STEP_BRIGHT_LEFT), v)[0, 0].tolist() == [[0, 30, 30, 0]] * 4
    assert conv2d(t(STEP_DARK_LEFT), v)[0, 0].tolist() == [[0, -30, -30, 0]] * 4
    h = edge_filter("horizontal", D)[None, None]
    assert conv2d(t(CHECKER), h)[0, 0].tolist() == CHECKER_HORIZONTAL


def test_strided_example() -> None:
    out = conv2d(t(STRIDED_INPUT), t(STRIDED_FILTER), stride=2)[0, 0]
    assert close(out, F.conv2d(t(STRIDED_INPUT), t(STRIDED_FILTER), stride=2)[0, 0])
    for i, j in STRIDED_CELLS_THAT_FOLLOW:
        assert out[i, j] == STRIDED_OUTPUT_PRINTED[i][j]
    # The slide's 83 and 127 do not follow from its input (see slide_examples.py).
    assert (out[0, 2].item(), out[1, 2].item()) == (88, 117)


def test_padding_keeps_size() -> None:
    out = conv2d(t(EDGE_INPUT), edge_filter("vertical", D)[None, None], padding=1)
    assert out.shape[-2:] == (6, 6)
    assert out[0, 0, 1:5, 1:5].tolist() == EDGE_OUTPUT


def test_pooling_examples() -> None:
    assert max_pool(t(POOL_INPUT), 2, 2)[0, 0].tolist() == POOL_MAX
    assert avg_pool(t(POOL_INPUT), 2, 2)[0, 0].tolist() == POOL_AVG
    assert max_pool(t(POOL5_INPUT), 3, 1)[0, 0].tolist() == POOL5_MAX


def test_pooling_the_slides_integer_grids() -> None:
    """The slide's grids typed as integers: average pooling used to fail ("mean(): could not
    infer output dtype"), max pooling with padding to overflow its -inf fill."""
    grid = torch.tensor(POOL_INPUT)[None, None]  # int64
    assert avg_pool(grid, 2, 2)[0, 0].tolist() == POOL_AVG  # 3.75, not 3
    for dtype in (torch.int64, torch.uint8, torch.int8, torch.bool):
        x = grid.to(dtype)
        out = max_pool(x, 3, 1, padding=1)
        assert out.dtype == dtype
        assert torch.equal(out.double(), F.max_pool2d(x.double(), 3, 1, padding=1))


def test_insert_zeros_takes_one_stride_for_all_dims() -> None:
    x = torch.arange(1, 7).reshape(1, 1, 2, 3)
    spread = insert_zeros(x, 2)  # an int used to be a TypeError (len() of an int)
    assert torch.equal(spread, insert_zeros(x, (2, 2)))
    assert spread[0, 0].tolist() == [[1, 0, 2, 0, 3], [0, 0, 0, 0, 0], [4, 0, 5, 0, 6]]


def test_transpose_slide_example() -> None:
    k = torch.tensor(TRANSPOSE_KERNEL, dtype=D)
    c = conv_matrix(k, (4, 4))
    assert c.tolist() == CONV_MATRIX_4x16
    x = torch.tensor(TRANSPOSE_INPUT, dtype=D)
    assert (c @ x.flatten()).reshape(2, 2).tolist() == TRANSPOSE_CONV_OUTPUT
    y = t(TRANSPOSE_CONV_OUTPUT)
    expected = F.conv_transpose2d(y, k[None, None])
    assert close(conv_transpose_matrix(y, k[None, None]), expected)
    assert close(conv_transpose_zero_insertion(y, k[None, None]), expected)
    assert close((c.T @ y.flatten()).reshape(1, 1, 4, 4), expected)


# --- property tests against torch.nn.functional ---------------------------------------------

conv_cases = st.fixed_dictionaries(
    {
        "batch": st.integers(1, 2),
        "groups": st.integers(1, 3),
        "cin_g": st.integers(1, 3),
        "cout_g": st.integers(1, 3),
        "n": st.integers(1, 9),
        "f": st.integers(1, 4),
        "p": st.integers(0, 2),
        "s": st.integers(1, 3),
        "d": st.integers(1, 2),
        "bias": st.booleans(),
    }
)


@given(c=conv_cases, nd=st.sampled_from([1, 2, 3]))
def test_conv_matches_functional(c: dict, nd: int) -> None:
    assume(c["d"] * (c["f"] - 1) + 1 <= c["n"] + 2 * c["p"])
    g = c["groups"]
    x = torch.randn(c["batch"], g * c["cin_g"], *([c["n"]] * nd), dtype=D)
    w = torch.randn(g * c["cout_g"], c["cin_g"], *([c["f"]] * nd), dtype=D)
    b = torch.randn(g * c["cout_g"], dtype=D) if c["bias"] else None
    ours = {1: conv1d, 2: conv2d, 3: conv3d}[nd]
    theirs = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    kw = {"stride": c["s"], "padding": c["p"], "dilation": c["d"], "groups": g}
    assert close(ours(x, w, b, **kw), theirs(x, w, b, **kw))


@given(
    h=st.integers(3, 9),
    w=st.integers(3, 9),
    fh=st.integers(1, 3),
    fw=st.integers(1, 3),
    sh=st.integers(1, 2),
    sw=st.integers(1, 3),
)
def test_rectangular_conv(h: int, w: int, fh: int, fw: int, sh: int, sw: int) -> None:
    x, k = torch.randn(1, 2, h, w, dtype=D), torch.randn(3, 2, fh, fw, dtype=D)
    assert close(
        conv2d(x, k, stride=(sh, sw), padding=(1, 0)),
        F.conv2d(x, k, stride=(sh, sw), padding=(1, 0)),
    )


@given(
    n=st.integers(2, 10),
    f=st.integers(1, 4),
    s=st.integers(1, 3),
    p=st.integers(0, 2),
    nd=st.sampled_from([1, 2, 3]),
)
def test_pooling_matches_functional(n: int, f: int, s: int, p: int, nd: int) -> None:
    assume(f <= n and p <= f // 2)
    x = torch.randn(2, 3, *([n] * nd), dtype=D)
    fmax = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[nd]
    favg = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[nd]
    assert close(max_pool(x, f, s, p), fmax(x, f, s, p))
    assert close(avg_pool(x, f, s, p), favg(x, f, s, p))


@given(
    i=st.integers(1, 6),
    k=st.integers(1, 4),
    s=st.integers(1, 3),
    p=st.integers(0, 2),
    op=st.integers(0, 2),
    cin=st.integers(1, 3),
    cout=st.integers(1, 3),
    groups=st.integers(1, 2),
    nd=st.sampled_from([1, 2, 3]),
    d=st.integers(1, 2),
)
def test_transpose_zero_insertion_matches_functional(
    i: int, k: int, s: int, p: int, op: int, cin: int, cout: int, groups: int, nd: int, d: int
) -> None:
    assume(op < max(s, d) and (i - 1) * s + d * (k - 1) + 1 - 2 * p + op >= 1)
    assume(p <= d * (k - 1))
    x = torch.randn(2, cin * groups, *([i] * nd), dtype=D)
    w = torch.randn(cin * groups, cout, *([k] * nd), dtype=D)
    b = torch.randn(cout * groups, dtype=D)
    fn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[nd]
    kw = {"stride": s, "padding": p, "output_padding": op, "groups": groups, "dilation": d}
    assert close(conv_transpose_zero_insertion(x, w, b, **kw), fn(x, w, b, **kw))


@given(
    i=st.integers(1, 6),
    k=st.integers(1, 4),
    s=st.integers(1, 3),
    p=st.integers(0, 2),
    op=st.integers(0, 2),
    cin=st.integers(1, 3),
    cout=st.integers(1, 3),
)
def test_transpose_matrix_matches_functional(
    i: int, k: int, s: int, p: int, op: int, cin: int, cout: int
) -> None:
    assume(op < s and (i - 1) * s + k - 2 * p + op >= k and p <= k - 1)
    x = torch.randn(2, cin, i, i, dtype=D)
    w = torch.randn(cin, cout, k, k, dtype=D)
    expected = F.conv_transpose2d(x, w, stride=s, padding=p, output_padding=op)
    assert close(conv_transpose_matrix(x, w, s, p, op), expected)


@given(
    h=st.integers(1, 7),
    w=st.integers(1, 7),
    k=st.integers(1, 3),
    s=st.integers(1, 2),
    p=st.integers(0, 1),
    cin=st.integers(1, 2),
    cout=st.integers(1, 2),
)
def test_conv_matrix_is_the_convolution(
    h: int, w: int, k: int, s: int, p: int, cin: int, cout: int
) -> None:
    assume(k <= min(h, w) + 2 * p)
    x = torch.randn(cin, h, w, dtype=D)
    weight = torch.randn(cout, cin, k, k, dtype=D)
    y = conv_matrix(weight, (h, w), s, p) @ x.flatten()
    assert close(y, F.conv2d(x[None], weight, stride=s, padding=p).flatten())


def test_depthwise_pointwise_separable() -> None:
    x = torch.randn(2, 3, 6, 6, dtype=D)
    dw = torch.randn(3, 1, 3, 3, dtype=D)
    pw = torch.randn(5, 3, 1, 1, dtype=D)
    assert close(depthwise_conv2d(x, dw), F.conv2d(x, dw, groups=3))
    assert close(pointwise_conv2d(x, pw), F.conv2d(x, pw))
    sep = depthwise_separable_conv2d(x, dw, pw)
    assert sep.shape == (2, 5, 4, 4)  # the slide's 6x6x3 -> 4x4x5
    assert close(sep, F.conv2d(F.conv2d(x, dw, groups=3), pw))
    # A 1x1 convolution is a fully connected layer applied at every pixel.
    fc = torch.einsum("bchw,oc->bohw", x, pw[:, :, 0, 0])
    assert close(pointwise_conv2d(x, pw), fc)


def test_gradients_flow_through_reference() -> None:
    x = torch.randn(1, 2, 5, 5, dtype=D, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: conv2d(a, b, stride=2, padding=1), (x, w))


def test_slide_1d_convolution() -> None:
    """The slide's 1D example: 8 samples and a 5-tap filter give 8 - 5 + 1 = 4 outputs."""
    x = torch.tensor(SIGNAL_1D, dtype=D)[None, None]
    w = torch.tensor(FILTER_1D, dtype=D)[None, None]
    assert conv1d(x, w).flatten().tolist() == OUTPUT_1D
    assert F.conv1d(x, w).flatten().tolist() == OUTPUT_1D


@given(
    nd=st.sampled_from([1, 2, 3]),
    n=st.integers(3, 7),
    half=st.integers(0, 2),
    d=st.integers(1, 2),
    name=st.sampled_from(["valid", "same"]),
)
def test_named_padding_matches_functional(nd: int, n: int, half: int, d: int, name: str) -> None:
    """The slide's "valid" and "same" (odd kernels, stride 1) give F.conv*d's result; "same"
    keeps the size."""
    f = 2 * half + 1
    assume(name == "same" or d * (f - 1) + 1 <= n)
    x = torch.randn(1, 2, *([n] * nd), dtype=D)
    w = torch.randn(3, 2, *([f] * nd), dtype=D)
    ours = {1: conv1d, 2: conv2d, 3: conv3d}[nd](x, w, padding=name, dilation=d)
    theirs = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd](x, w, padding=name, dilation=d)
    assert close(ours, theirs)
    if name == "same":
        assert ours.shape[2:] == x.shape[2:]


def test_named_padding_refusals() -> None:
    x, w = torch.randn(1, 1, 6, 6), torch.randn(1, 1, 3, 3)
    with pytest.raises(CnnlabError, match="only at stride 1"):
        conv2d(x, w, stride=2, padding="same")
    with pytest.raises(CnnlabError, match="needs an odd kernel"):
        conv2d(x, torch.randn(1, 1, 2, 2), padding="same")
    with pytest.raises(CnnlabError, match="'valid', 'same' or an integer, got 'full'"):
        conv2d(x, w, padding="full")
    with pytest.raises(CnnlabError, match="kernel size f must be >= 1, got 0"):
        max_pool(x, 0)


def test_shape_mismatches_say_which_shape() -> None:
    """Wrong channel counts or a bias of the wrong length name the shapes involved (the
    reshape deep inside gave "shape '[1, 2, 1, 1]' is invalid for input of size 3")."""
    # float64, as `close` (tolerance 1e-9) expects: in float32 the two sum in different orders
    x, w = torch.randn(1, 3, 6, 6, dtype=D), torch.randn(2, 3, 3, 3, dtype=D)
    with pytest.raises(ValueError, match=r"input has 3, weight \(2, 4, 3, 3\)"):
        conv2d(x, torch.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\), one per filter, got \(3"):
        conv2d(x, w, bias=torch.randn(3))
    b = torch.ones(2, dtype=D)
    assert close(conv2d(x, w, bias=b), F.conv2d(x, w, bias=b))
