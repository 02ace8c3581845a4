"""Convolution arithmetic: output sizes, padding, receptive fields.

Slides "Padding", "Valid and Same convolutions", "Strided convolution", "Summary of
convolutions" and "Convolution vs Transpose Convolution". All sizes are per spatial dimension.

* convolution / pooling:  ``floor((n + 2p - d(f-1) - 1) / s) + 1``; with dilation ``d = 1`` this is
  the slide's ``floor((n + 2p - f)/s) + 1``.
* "same" padding (stride 1): ``p = (f - 1) / 2``, an integer only for odd ``f``.
* transposed convolution: ``(i - 1)s + d(k - 1) + 1 - 2p + output_padding``; with ``d = 1`` and no
  output padding this is the slide's ``(i - 1)*s + k - 2p``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cnnlab.errors import CnnlabError


def _check(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise CnnlabError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise CnnlabError(f"{name} must be >= {minimum}, got {value}")


def effective_kernel_size(f: int, dilation: int = 1) -> int:
    """Extent of a dilated kernel: ``d(f - 1) + 1`` (a 3x3 kernel with d=2 spans 5 pixels)."""
    _check("kernel size f", f, 1)
    _check("dilation", dilation, 1)
    return dilation * (f - 1) + 1


def conv_output_size(n: int, f: int, p: int = 0, s: int = 1, dilation: int = 1) -> int:
    """Output length of a convolution: ``floor((n + 2p - d(f-1) - 1)/s) + 1`` (slide: Summary).

    Raises :class:`CnnlabError` when the (dilated) kernel is larger than the padded input.
    """
    _check("input size n", n, 1)
    _check("padding p", p, 0)
    _check("stride s", s, 1)
    span = effective_kernel_size(f, dilation)
    if span > n + 2 * p:
        raise CnnlabError(
            f"kernel of extent {span} is larger than the padded input n + 2p = {n + 2 * p}"
        )
    return (n + 2 * p - span) // s + 1


def pool_output_size(n: int, f: int, s: int | None = None, p: int = 0) -> int:
    """Output length of max/average pooling: the convolution formula; ``s`` defaults to ``f``."""
    return conv_output_size(n, f, p, f if s is None else s)


def same_padding(f: int, dilation: int = 1) -> int:
    """Padding that keeps the size at stride 1: ``p = (f - 1)/2`` (slide: Valid and Same).

    Raises :class:`CnnlabError` for an even (dilated) kernel, where no integer ``p`` exists.
    """
    span = effective_kernel_size(f, dilation)
    if span % 2 == 0:
        raise CnnlabError(
            f"'same' padding needs an odd kernel: p = (f - 1)/2 = {(span - 1) / 2} for f = {span}"
        )
    return (span - 1) // 2


def resolve_padding(p: int | str, f: int, dilation: int = 1) -> int:
    """Turn ``'valid'``, ``'same'`` or an integer into an integer padding."""
    if isinstance(p, str):
        if p == "valid":
            return 0
        if p == "same":
            return same_padding(f, dilation)
        try:
            p = int(p)
        except ValueError:
            raise CnnlabError(f"padding must be 'valid', 'same' or an integer, got {p!r}") from None
    _check("padding p", p, 0)
    return p


def transposed_output_size(
    i: int, k: int, s: int = 1, p: int = 0, output_padding: int = 0, dilation: int = 1
) -> int:
    """Output length of a transposed convolution: ``(i - 1)s + d(k-1) + 1 - 2p + output_padding``.

    With ``d = 1`` and no output padding this is the slide's ``(i - 1)*s + k - 2p``.
    """
    _check("input size i", i, 1)
    _check("stride s", s, 1)
    _check("padding p", p, 0)
    _check("output padding", output_padding, 0)
    if output_padding >= max(s, dilation):
        raise CnnlabError("output padding must be smaller than the stride or the dilation")
    out = (i - 1) * s + effective_kernel_size(k, dilation) - 2 * p + output_padding
    if out < 1:
        raise CnnlabError(f"padding p = {p} leaves no output (size {out})")
    return out


@dataclass(frozen=True)
class LayerGeometry:
    """One layer of a stack for receptive-field arithmetic: kernel ``f``, stride ``s``, dilation."""

    f: int
    s: int = 1
    dilation: int = 1


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field after a stack: ``size`` input pixels seen by one output unit, ``jump`` the
    distance in input pixels between neighbouring output units (the product of strides)."""

    size: int
    jump: int


def receptive_field(layers: Iterable[LayerGeometry | tuple[int, int]]) -> ReceptiveField:
    """Receptive field of a stack of conv/pool layers, input to output.

    Recurrence (Araujo et al., 2019): ``r_l = r_{l-1} + (k_l - 1) * j_{l-1}``, ``j_l = j_{l-1} s_l``
    with ``r_0 = 1, j_0 = 1`` and ``k_l`` the dilated kernel extent. Two 3x3 stride-1 layers see
    5x5, three see 7x7 (VGG's argument for stacking 3x3 convolutions).
    """
    if isinstance(layers, str):
        raise CnnlabError(
            f"receptive_field takes layer geometries (f, s), not {layers!r}; for a model by name "
            "use `cnnlab explain receptive-field NAME`"
        )
    r, j = 1, 1
    for layer in layers:
        g = layer if isinstance(layer, LayerGeometry) else LayerGeometry(*layer)
        _check("stride s", g.s, 1)
        r += (effective_kernel_size(g.f, g.dilation) - 1) * j
        j *= g.s
    return ReceptiveField(size=r, jump=j)
