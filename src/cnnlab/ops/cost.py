"""Computational cost of convolutions, counted in multiply-accumulates (MACs).

Slide "Normal Convolution": ``cost = #filter params x #filter positions x #filters``. One MAC is one
multiply and one add; FLOPs = 2 x MACs where FLOPs are shown. Three comparisons from the slides:

* normal vs depthwise-separable (MobileNet): 6x6x3 input, 3x3 filters, 5 of them, valid padding:
  2160 vs 432 + 240 = 672, ratio 0.31; in general ``1/n_c' + 1/f^2``.
* the Inception 1x1 bottleneck: 28x28x192 -> 5x5 "same" conv -> 28x28x32 costs 120M; through a
  1x1 bottleneck of 16 channels it costs 2.4M + 10M = 12.4M.
* the MobileNet v2 inverted residual at 6x6 with 64 -> 128 channels and expansion 6: a normal 3x3
  convolution costs 2.6M, the expand/depthwise/project block 2.7M (the slide's rounding).

And, in parameters, why images need convolutions at all (slide "Deep learning on large images"):
a fully connected first layer of 1,000 units on a 1000x1000x3 image has ``W^[1]`` of shape
``(1000, 3m)``, three billion weights, while a convolutional layer's parameters do not depend on
the image's size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnnlab.errors import CnnlabError
from cnnlab.ops.conv_arith import conv_output_size, resolve_padding


@dataclass(frozen=True)
class CostTerm:
    """One convolution's cost: ``macs = filter_params * positions * filters``."""

    name: str
    filter_params: int  # f_h * f_w * channels seen by one filter
    positions: int  # output height * output width
    filters: int  # number of filters = output channels
    output_shape: tuple[int, int, int]  # (H, W, C), as on the slides

    @property
    def macs(self) -> int:
        return self.filter_params * self.positions * self.filters

    @property
    def formula(self) -> str:
        return f"{self.positions} * {self.filters} * {self.filter_params}"


@dataclass(frozen=True)
class CostComparison:
    """A baseline convolution against a cheaper block that produces the same output shape."""

    title: str
    baseline: list[CostTerm]
    alternative: list[CostTerm]
    notes: list[str] = field(default_factory=list)

    @property
    def baseline_macs(self) -> int:
        return sum(t.macs for t in self.baseline)

    @property
    def alternative_macs(self) -> int:
        return sum(t.macs for t in self.alternative)

    @property
    def ratio(self) -> float:
        """Alternative cost / baseline cost (the slide's 672/2160 = 0.31)."""
        return self.alternative_macs / self.baseline_macs

    def to_dict(self) -> dict:
        def term(t: CostTerm) -> dict:
            return {
                "name": t.name,
                "macs": t.macs,
                "formula": t.formula,
                "output_shape": list(t.output_shape),
            }

        return {
            "title": self.title,
            "baseline": [term(t) for t in self.baseline],
            "alternative": [term(t) for t in self.alternative],
            "baseline_macs": self.baseline_macs,
            "alternative_macs": self.alternative_macs,
            "ratio": self.ratio,
            "notes": self.notes,
        }


def conv_cost(
    name: str,
    n: int,
    f: int,
    in_channels: int,
    filters: int,
    p: int | str = 0,
    s: int = 1,
    depthwise: bool = False,
) -> CostTerm:
    """Cost of one convolution on an ``n x n x in_channels`` input.

    A depthwise convolution has one ``f x f x 1`` filter per channel (``filters = in_channels``)."""
    for what, count in (("input channels", in_channels), ("filters", filters)):
        if not isinstance(count, int) or count < 1:
            raise CnnlabError(f"{name}: {what} must be an integer >= 1, got {count!r}")
    pad = resolve_padding(p, f)
    out = conv_output_size(n, f, pad, s)
    seen = 1 if depthwise else in_channels
    n_filters = in_channels if depthwise else filters
    return CostTerm(name, f * f * seen, out * out, n_filters, (out, out, n_filters))


def separable_cost(
    n: int, f: int, in_channels: int, filters: int, p: int | str = 0, s: int = 1
) -> CostComparison:
    """Normal convolution vs depthwise + pointwise (slides "Cost Summary")."""
    normal = conv_cost("normal conv", n, f, in_channels, filters, p, s)
    dw = conv_cost("depthwise conv", n, f, in_channels, in_channels, p, s, depthwise=True)
    m = dw.output_shape[0]
    pw = conv_cost("pointwise conv", m, 1, in_channels, filters)
    general = 1 / filters + 1 / (f * f)
    notes = [f"general ratio 1/n_c' + 1/f^2 = 1/{filters} + 1/{f * f} = {general:.4f}"]
    return CostComparison("normal vs depthwise-separable convolution", [normal], [dw, pw], notes)


def bottleneck_cost(
    n: int,
    f: int,
    in_channels: int,
    filters: int,
    bottleneck: int,
    p: int | str = "same",
    s: int = 1,
) -> CostComparison:
    """A direct ``f x f`` convolution vs a 1x1 bottleneck then the ``f x f`` convolution
    (slides "The problem of computational cost" and "Using 1x1 convolution")."""
    normal = conv_cost(f"{f}x{f} conv", n, f, in_channels, filters, p, s)
    squeeze = conv_cost(f"1x1 conv to {bottleneck}", n, 1, in_channels, bottleneck)
    conv = conv_cost(f"{f}x{f} conv", n, f, bottleneck, filters, p, s)
    return CostComparison("direct convolution vs 1x1 bottleneck", [normal], [squeeze, conv])


def inverted_residual_cost(
    n: int,
    f: int,
    in_channels: int,
    filters: int,
    expansion: int,
    p: int | str = "same",
    s: int = 1,
) -> CostComparison:
    """A normal ``f x f`` convolution vs the MobileNet v2 bottleneck: 1x1 expansion to
    ``expansion * in_channels``, ``f x f`` depthwise, 1x1 linear projection (Sandler et al. 2018).

    Note: the slide labels the baseline "MobileNet v1" but its formula ``6x6x128x9x64`` is a normal
    3x3 convolution from 64 to 128 channels; that is what is computed here."""
    hidden = expansion * in_channels
    normal = conv_cost(f"{f}x{f} conv", n, f, in_channels, filters, p, s)
    expand = conv_cost(f"1x1 expand to {hidden}", n, 1, in_channels, hidden)
    dw = conv_cost(f"{f}x{f} depthwise", n, f, hidden, hidden, p, s, depthwise=True)
    m = dw.output_shape[0]
    project = conv_cost(f"1x1 project to {filters}", m, 1, hidden, filters)
    return CostComparison(
        "normal convolution vs MobileNet v2 inverted residual", [normal], [expand, dw, project]
    )


@dataclass(frozen=True)
class DenseLayer:
    """A fully connected layer on a flattened ``H x W x C`` image (slide "Deep learning on large
    images"): ``n_x = H * W * C`` inputs, ``W^[1]`` of shape ``(units, n_x)`` and ``b^[1]`` of
    ``units``."""

    input_shape: tuple[int, int, int]  # (H, W, C), as on the slides
    units: int  # n^[1]

    @property
    def inputs(self) -> int:
        h, w, c = self.input_shape
        return h * w * c

    @property
    def weights(self) -> int:
        return self.units * self.inputs

    @property
    def parameters(self) -> int:
        return self.weights + self.units


def conv_parameters(f: int, in_channels: int, filters: int) -> int:
    """Parameters of a convolutional layer: each of ``filters`` filters has ``f * f *
    in_channels`` weights and one bias, shared by every position of any image size."""
    return filters * (f * f * in_channels + 1)
