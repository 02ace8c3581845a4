"""Convolution, pooling and transposed convolution as the course defines them.

These are the reference implementations for learners: written from the slides, vectorised (no
Python loop over pixels), and tested against ``torch.nn.functional`` on random configurations.
Training uses the fast library kernels; these exist to show and check the arithmetic.

Layout follows PyTorch: inputs ``(B, C, *spatial)`` with 1, 2 or 3 spatial dimensions,
convolution weights ``(C_out, C_in / groups, *kernel)``, transposed-convolution weights
``(C_in, C_out / groups, *kernel)``.

Note: the course's "convolution" is cross-correlation (the kernel is not flipped), exactly like
``torch.nn.functional.conv2d``; only the transposed convolution's method (a) flips it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from cnnlab.errors import CnnlabError
from cnnlab.ops.conv_arith import (
    conv_output_size,
    effective_kernel_size,
    resolve_padding,
    transposed_output_size,
)

IntOrSeq = int | Sequence[int]


def _tuple(value: IntOrSeq, n: int, name: str) -> tuple[int, ...]:
    out = (value,) * n if isinstance(value, int) else tuple(value)
    if len(out) != n:
        raise ValueError(f"{name} needs {n} values, got {value!r}")
    return out


def _pad_spatial(
    x: torch.Tensor, padding: Sequence[int], value: float | int | bool = 0.0
) -> torch.Tensor:
    """Pad the trailing spatial dims of ``x`` symmetrically (``padding`` lists them in order)."""
    if not any(padding):
        return x
    pads: list[int] = []
    for p in reversed(padding):  # F.pad wants the last dimension first
        pads += [p, p]
    return F.pad(x, pads, value=value)


def sliding_windows(
    x: torch.Tensor, kernel_size: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
) -> torch.Tensor:
    """Every ``f``-window of ``x`` that the filter visits, as a strided view.

    ``x``: ``(B, C, *n)`` (already padded) -> ``(B, C, *out, *kernel_size)`` where
    ``out = floor((n - d(f-1) - 1)/s) + 1`` per dimension. This is the slide's picture of the filter
    sliding over the image, one window per output pixel.
    """
    nd = len(kernel_size)
    for i, (f, s, d) in enumerate(zip(kernel_size, stride, dilation, strict=True)):
        dim = 2 + i
        span = d * (f - 1) + 1
        x = x.unfold(dim, span, s)  # appends a window axis of length `span`
        if d > 1:
            x = x[..., ::d]
    # unfold appends the window axes in the order they were made, which is the kernel order.
    assert x.dim() == 2 + 2 * nd
    return x


def conv_nd(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntOrSeq = 1,
    padding: IntOrSeq | str = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
) -> torch.Tensor:
    """Cross-correlation over 1, 2 or 3 spatial dimensions (slides: "Convolutions on RGB image",
    "Multiple filters", "Convolutions in 2D and 1D", "3D convolution").

    ``out[b, o, y] = bias[o] + sum_{c, k} x_pad[b, g*C_g + c, y*s + k*d] * weight[o, c, k]`` for the
    group ``g`` of output channel ``o``. Each filter spans all ``C_in / groups`` input channels of
    its group and produces one output channel; ``groups = C_in`` is a depthwise convolution.

    Shapes: ``x (B, C_in, *n)``, ``weight (C_out, C_in/groups, *f)`` -> ``(B, C_out, *out)``.

    ``padding`` may also be the slide's ``"valid"`` (p = 0) or ``"same"`` (p = (f - 1)/2, which
    keeps the size at stride 1), as in ``F.conv2d``. Note: ``"same"`` needs an odd (dilated)
    kernel and stride 1; PyTorch also pads even kernels, one pixel more after than before.
    """
    nd = weight.dim() - 2
    if isinstance(padding, str):
        padding = _named_padding(padding, tuple(weight.shape[2:]), stride, dilation, nd)
    if x.dim() != nd + 2:
        raise ValueError(f"a {nd}D convolution needs input (B, C, {nd} dims), got {tuple(x.shape)}")
    c_out, c_in_g = weight.shape[:2]
    kernel = tuple(weight.shape[2:])
    s, p, d = (
        _tuple(v, nd, n)
        for v, n in ((stride, "stride"), (padding, "padding"), (dilation, "dilation"))
    )
    batch, c_in = x.shape[:2]
    if c_in != c_in_g * groups or c_out % groups:
        raise ValueError(
            f"channels do not match: input has {c_in}, weight {tuple(weight.shape)}, "
            f"groups={groups}"
        )
    if bias is not None and tuple(bias.shape) != (c_out,):
        got = tuple(bias.shape)
        raise ValueError(f"bias must have shape ({c_out},), one per filter, got {got}")
    out_size = [
        conv_output_size(n, f, pi, si, di)
        for n, f, pi, si, di in zip(x.shape[2:], kernel, p, s, d, strict=True)
    ]
    win = sliding_windows(_pad_spatial(x, p), kernel, s, d)  # (B, C_in, *out, *f)
    win = win.reshape(batch, groups, c_in_g, -1, math.prod(kernel))
    w = weight.reshape(groups, c_out // groups, c_in_g, -1)
    y = torch.einsum("bgcok,gdck->bgdo", win, w).reshape(batch, c_out, *out_size)
    if bias is not None:
        y = y + bias.reshape(1, c_out, *([1] * nd))
    return y


def _named_padding(
    name: str, kernel: tuple[int, ...], stride: IntOrSeq, dilation: IntOrSeq, nd: int
) -> tuple[int, ...]:
    """``"valid"`` or ``"same"`` as one padding per spatial dimension (slide: Valid and Same)."""
    if name == "same" and any(s != 1 for s in _tuple(stride, nd, "stride")):
        raise CnnlabError(f"padding 'same' keeps the size only at stride 1, got stride {stride}")
    dilations = _tuple(dilation, nd, "dilation")
    return tuple(resolve_padding(name, f, d) for f, d in zip(kernel, dilations, strict=True))


def conv1d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntOrSeq = 1,
    padding: IntOrSeq | str = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
) -> torch.Tensor:
    """1D convolution (slide: "Convolutions in 2D and 1D", e.g. an ECG signal with a 1x5 filter).

    ``x (B, C_in, L)``, ``weight (C_out, C_in/groups, f)`` -> ``(B, C_out, L_out)``."""
    _expect_dims(weight, 3)
    return conv_nd(x, weight, bias, stride, padding, dilation, groups)


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntOrSeq = 1,
    padding: IntOrSeq | str = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
) -> torch.Tensor:
    """2D convolution: ``x (B, C_in, H, W)``, ``weight (C_out, C_in/groups, f_h, f_w)``."""
    _expect_dims(weight, 4)
    return conv_nd(x, weight, bias, stride, padding, dilation, groups)


def conv3d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntOrSeq = 1,
    padding: IntOrSeq | str = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
) -> torch.Tensor:
    """3D convolution (slide: "3D convolution", a CT volume or a video clip).

    ``x (B, C_in, D, H, W)``, ``weight (C_out, C_in/groups, f_d, f_h, f_w)``."""
    _expect_dims(weight, 5)
    return conv_nd(x, weight, bias, stride, padding, dilation, groups)


def _expect_dims(weight: torch.Tensor, dims: int) -> None:
    if weight.dim() != dims:
        raise ValueError(f"expected a {dims}-d weight, got shape {tuple(weight.shape)}")


def pointwise_conv2d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """1x1 convolution (slides "Why does a 1x1 convolution do?", "Pointwise Convolution"): a fully
    connected layer applied at every pixel across channels. ``weight (C_out, C_in, 1, 1)``."""
    if weight.shape[2:] != (1, 1):
        raise ValueError(f"a pointwise weight is (C_out, C_in, 1, 1), got {tuple(weight.shape)}")
    return conv2d(x, weight, bias)


def depthwise_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntOrSeq = 1,
    padding: IntOrSeq | str = 0,
) -> torch.Tensor:
    """Depthwise convolution (slide "Depthwise Convolution"): one ``f x f`` filter per input
    channel, no mixing across channels. ``weight (C * multiplier, 1, f, f)``."""
    if weight.shape[1] != 1:
        raise ValueError(f"a depthwise weight is (C, 1, f, f), got {tuple(weight.shape)}")
    return conv2d(x, weight, bias, stride, padding, groups=x.shape[1])


def depthwise_separable_conv2d(
    x: torch.Tensor,
    depthwise_weight: torch.Tensor,
    pointwise_weight: torch.Tensor,
    stride: IntOrSeq = 1,
    padding: IntOrSeq | str = 0,
) -> torch.Tensor:
    """Depthwise-separable convolution (MobileNet, Howard et al. 2017): depthwise then pointwise.

    ``x (B, C, H, W)``, ``depthwise_weight (C, 1, f, f)``, ``pointwise_weight (C', C, 1, 1)`` ->
    ``(B, C', H', W')``. Costs ``1/C' + 1/f^2`` of a normal convolution (see ``ops.cost``)."""
    return pointwise_conv2d(
        depthwise_conv2d(x, depthwise_weight, None, stride, padding), pointwise_weight
    )


def max_pool(
    x: torch.Tensor, kernel_size: IntOrSeq, stride: IntOrSeq | None = None, padding: IntOrSeq = 0
) -> torch.Tensor:
    """Max pooling over the trailing 1-3 spatial dims (slide "Pooling layer: Max pooling").

    ``x (B, C, *n)``; stride defaults to the kernel size. Padding is with ``-inf`` like PyTorch."""
    return _pool(x, kernel_size, stride, padding, "max")


def avg_pool(
    x: torch.Tensor, kernel_size: IntOrSeq, stride: IntOrSeq | None = None, padding: IntOrSeq = 0
) -> torch.Tensor:
    """Average pooling (slide "Pooling layer: Average pooling"). Zero padding counts in the mean,
    as with PyTorch's default ``count_include_pad=True``."""
    return _pool(x, kernel_size, stride, padding, "avg")


def _pool(
    x: torch.Tensor, kernel_size: IntOrSeq, stride: IntOrSeq | None, padding: IntOrSeq, mode: str
) -> torch.Tensor:
    nd = x.dim() - 2
    if nd not in (1, 2, 3):
        raise ValueError(f"pooling needs input (B, C, 1-3 spatial dims), got {tuple(x.shape)}")
    f = _tuple(kernel_size, nd, "kernel_size")
    for fi in f:
        effective_kernel_size(fi)  # "kernel size f must be >= 1" before the stride it sets
    s = f if stride is None else _tuple(stride, nd, "stride")
    p = _tuple(padding, nd, "padding")
    for n, fi, pi, si in zip(x.shape[2:], f, p, s, strict=True):
        conv_output_size(n, fi, pi, si)  # validates sizes with a clear message
    if mode == "avg" and not x.is_floating_point():  # the slide's integer grids: 3.75, not 3
        x = x.to(torch.get_default_dtype())
    fill = _lowest(x.dtype) if mode == "max" else 0.0  # padding never wins a max
    win = sliding_windows(_pad_spatial(x, p, fill), f, s, (1,) * nd).flatten(-nd)
    return win.amax(-1) if mode == "max" else win.mean(-1)


def _lowest(dtype: torch.dtype) -> float | int | bool:
    """The value below every other of ``dtype``: -inf for floats, the integer minimum."""
    if dtype.is_floating_point:
        return float("-inf")
    return False if dtype == torch.bool else torch.iinfo(dtype).min


# --- Transposed convolution -----------------------------------------------------------------


def insert_zeros(x: torch.Tensor, stride: IntOrSeq) -> torch.Tensor:
    """Step 2 of the slide "Transpose Convolution": put ``s - 1`` zeros between input pixels.

    ``x (B, C, *i)`` -> ``(B, C, *((i - 1)s + 1))``; ``stride`` one per spatial dim, or one
    for all."""
    stride = _tuple(stride, x.dim() - 2, "stride")
    nd = len(stride)
    size = [(n - 1) * s + 1 for n, s in zip(x.shape[2:], stride, strict=True)]
    out = x.new_zeros(*x.shape[:2], *size)
    index = (slice(None), slice(None), *(slice(None, None, s) for s in stride))
    out[index] = x
    assert out.dim() == nd + 2
    return out


def conv_transpose_zero_insertion(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntOrSeq = 1,
    padding: IntOrSeq = 0,
    output_padding: IntOrSeq = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
) -> torch.Tensor:
    """Transposed convolution, method (a) of the slides: insert ``s - 1`` zeros between input
    pixels, pad with ``d(k-1) - p`` zeros (``k - p - 1`` for ``d = 1``), then convolve with stride 1
    and the spatially flipped kernel (slide "Convolution vs Transpose Convolution").

    ``x (B, C_in, *i)``, ``weight (C_in, C_out/groups, *k)`` -> ``(B, C_out, *((i-1)s + k - 2p))``.
    Equals ``F.conv_transpose{1,2,3}d``.
    """
    nd = weight.dim() - 2
    s, p, op, d = (
        _tuple(v, nd, n)
        for v, n in (
            (stride, "stride"),
            (padding, "padding"),
            (output_padding, "output_padding"),
            (dilation, "dilation"),
        )
    )
    k = tuple(weight.shape[2:])
    out_size = [
        transposed_output_size(i, ki, si, pi, opi, di)
        for i, ki, si, pi, opi, di in zip(x.shape[2:], k, s, p, op, d, strict=True)
    ]
    z = insert_zeros(x, s)
    # Full padding d(k-1) on each side, then remove p from each side (negative pads crop) and add
    # the output padding on the far side only.
    pads: list[int] = []
    for ki, pi, opi, di in reversed(list(zip(k, p, op, d, strict=True))):
        full = di * (ki - 1)
        pads += [full - pi, full - pi + opi]
    z = F.pad(z, pads)
    # (C_in, C_out/g, *k) -> (C_out, C_in/g, *k), flipped in every spatial dimension.
    c_in, c_out_g = weight.shape[:2]
    w = weight.reshape(groups, c_in // groups, c_out_g, *k).transpose(1, 2)
    w = w.reshape(groups * c_out_g, c_in // groups, *k).flip(list(range(2, 2 + nd)))
    y = conv_nd(z, w, bias, stride=1, padding=0, dilation=d, groups=groups)
    assert list(y.shape[2:]) == out_size
    return y


def conv_matrix(
    weight: torch.Tensor, input_size: Sequence[int], stride: IntOrSeq = 1, padding: IntOrSeq = 0
) -> torch.Tensor:
    """The convolution as one matrix (slide "Convolution Matrix (4, 16)").

    ``weight (C_out, C_in, k_h, k_w)`` (or a single ``(k_h, k_w)`` kernel) and input ``(H, W)`` ->
    ``C`` of shape ``(C_out*H_out*W_out, C_in*H*W)`` with
    ``conv2d(x).flatten() == C @ x.flatten()``.
    Row ``o`` holds the kernel placed where output pixel ``o`` looks; padding cells drop out
    because they multiply zeros. For the slide's 3x3 kernel on a 4x4 input this is the 4x16 matrix.
    """
    if weight.dim() == 2:
        weight = weight[None, None]
    c_out, c_in, kh, kw = weight.shape
    h, w = input_size
    (sh, sw), (ph, pw) = _tuple(stride, 2, "stride"), _tuple(padding, 2, "padding")
    oh, ow = conv_output_size(h, kh, ph, sh), conv_output_size(w, kw, pw, sw)
    # Broadcast index grids: (C_out, OH, OW, C_in, KH, KW).
    o, oy, ox, c, ky, kx = torch.meshgrid(
        *(torch.arange(n) for n in (c_out, oh, ow, c_in, kh, kw)), indexing="ij"
    )
    iy, ix = oy * sh - ph + ky, ox * sw - pw + kx
    inside = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    rows = ((o * oh + oy) * ow + ox)[inside]
    cols = ((c * h + iy) * w + ix)[inside]
    values = weight[o, c, ky, kx][inside]
    matrix = weight.new_zeros(c_out * oh * ow, c_in * h * w)
    matrix[rows, cols] = values
    return matrix


def conv_transpose_matrix(
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: IntOrSeq = 1,
    padding: IntOrSeq = 0,
    output_padding: IntOrSeq = 0,
) -> torch.Tensor:
    """Transposed convolution, method (b) of the slides: multiply by the transpose of the
    convolution matrix ("Transposed Convolution Matrix").

    A transposed convolution with weight ``(C_in, C_out, k, k)`` is the adjoint of the convolution
    that maps ``C_out`` channels of the (larger) output size back to ``C_in`` channels, so
    ``y = C^T x`` with ``C = conv_matrix(weight, output_size)``.
    ``x (B, C_in, H, W)`` -> ``(B, C_out, (H-1)s + k - 2p + op, ...)``. Equals
    ``F.conv_transpose2d`` (groups = 1).
    """
    batch, c_in, h, w = x.shape
    if weight.shape[0] != c_in:
        raise ValueError(f"weight {tuple(weight.shape)} does not take {c_in} input channels")
    c_out, kh, kw = weight.shape[1], weight.shape[2], weight.shape[3]
    (sh, sw), (ph, pw) = _tuple(stride, 2, "stride"), _tuple(padding, 2, "padding")
    oph, opw = _tuple(output_padding, 2, "output_padding")
    out_h = transposed_output_size(h, kh, sh, ph, oph)
    out_w = transposed_output_size(w, kw, sw, pw, opw)
    matrix = conv_matrix(weight, (out_h, out_w), (sh, sw), (ph, pw))  # (C_in*h*w, C_out*H*W)
    if matrix.shape[0] != c_in * h * w:
        raise ValueError("input size does not match the convolution this transposes")
    return (x.reshape(batch, -1) @ matrix).reshape(batch, c_out, out_h, out_w)
