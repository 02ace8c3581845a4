"""MobileNets: depthwise-separable convolutions for cheap inference.

* ``mobilenet_v1``: Howard et al., 2017, "MobileNets: Efficient convolutional neural networks for
  mobile vision applications", exactly the slide's Table 1 (a 3x3 stem, then 13 depthwise-separable
  blocks, average pool, FC), with the width multiplier ``alpha`` (channels x alpha) and the
  resolution multiplier ``rho`` (input 224 x rho). 1.0/224: 4,231,976 parameters, ~569 M MACs.
  Note: Table 1 lists the last depthwise convolution as "s2" but its input and output are both
  7x7; the released model uses stride 1, as here.
* ``mobilenet_v2``: Sandler et al., 2018, "MobileNetV2: Inverted residuals and linear
  bottlenecks": 1x1 expansion (x t), 3x3 depthwise, 1x1 *linear* projection, and a residual when
  the shape allows (slide "MobileNet v2 Bottleneck"). The ``t, c, n, s`` table is Table 2 of the
  paper. 3,504,872 parameters, ~300.8 M MACs at 224. Module names follow ours; the torchvision
  weight loader maps its ``conv.N`` keys onto ``expand``/``depthwise``/``project``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cnnlab.layers import ConvBNAct, make_divisible
from cnnlab.registry import register_model

HOWARD_2017 = "Howard et al., 2017. MobileNets"
SANDLER_2018 = "Sandler et al., 2018. MobileNetV2: Inverted residuals and linear bottlenecks"


class DepthwiseSeparable(nn.Module):
    """``3x3 depthwise conv -> BN -> ReLU -> 1x1 pointwise conv -> BN -> ReLU`` (figure 3)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.depthwise = ConvBNAct(in_channels, in_channels, 3, stride, groups=in_channels)
        self.pointwise = ConvBNAct(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


# Table 1 of the MobileNet paper after the stem: (depthwise stride, pointwise output channels).
MOBILENET_V1_BODY: tuple[tuple[int, int], ...] = (
    (1, 64),
    (2, 128),
    (1, 128),
    (2, 256),
    (1, 256),
    (2, 512),
    (1, 512),
    (1, 512),
    (1, 512),
    (1, 512),
    (1, 512),  # the "5x" rows
    (2, 1024),
    (1, 1024),
)


class MobileNetV1(nn.Module):
    """``(B, 3, 224, 224) -> stem 32@112 -> 13 blocks -> (B, 1024, 7, 7) -> pool -> FC``."""

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        width_mult: float = 1.0,
        resolution_mult: float = 1.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if width_mult <= 0 or resolution_mult <= 0:
            raise ValueError("width_mult and resolution_mult must be > 0")

        def width(c: int) -> int:
            return max(8, int(c * width_mult))

        channels = width(32)
        layers: list[nn.Module] = [ConvBNAct(in_channels, channels, 3, 2)]
        for stride, out in MOBILENET_V1_BODY:
            layers.append(DepthwiseSeparable(channels, width(out), stride))
            channels = width(out)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, num_classes))
        self.default_input_size = (
            in_channels,
            round(224 * resolution_mult),
            round(224 * resolution_mult),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(features), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@dataclass(frozen=True)
class InvertedResidualStage:
    """One row of Table 2 of the MobileNet v2 paper: expansion ``t``, output channels ``c``,
    repeats ``n``, stride ``s`` of the first repeat."""

    t: int
    c: int
    n: int
    s: int


MOBILENET_V2_STAGES: tuple[InvertedResidualStage, ...] = (
    InvertedResidualStage(1, 16, 1, 1),
    InvertedResidualStage(6, 24, 2, 2),
    InvertedResidualStage(6, 32, 3, 2),
    InvertedResidualStage(6, 64, 4, 2),
    InvertedResidualStage(6, 96, 3, 1),
    InvertedResidualStage(6, 160, 3, 2),
    InvertedResidualStage(6, 320, 1, 1),
)


class InvertedResidual(nn.Module):
    """The MobileNet v2 bottleneck: ``1x1 expand (ReLU6) -> 3x3 depthwise (ReLU6) -> 1x1 linear
    project``, plus ``x`` when stride is 1 and channels match.
    ``(B, C_in, H, W) -> (B, C_out, H/s, W/s)``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = round(in_channels * expand_ratio)
        self.use_residual = stride == 1 and in_channels == out_channels
        self.expand = (
            ConvBNAct(in_channels, hidden, 1, activation=nn.ReLU6) if expand_ratio != 1 else None
        )
        self.depthwise = ConvBNAct(hidden, hidden, 3, stride, groups=hidden, activation=nn.ReLU6)
        self.project = ConvBNAct(hidden, out_channels, 1, activation=None)  # linear bottleneck

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.expand(x) if self.expand is not None else x
        z = self.project(self.depthwise(z))
        return x + z if self.use_residual else z


class MobileNetV2(nn.Module):
    """``(B, 3, 224, 224) -> stem 32@112 -> 17 bottlenecks -> 320@7 -> 1x1 conv 1280 -> pool ->
    dropout -> FC``."""

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        width_mult: float = 1.0,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        channels = make_divisible(32 * width_mult)
        last = make_divisible(1280 * max(1.0, width_mult))
        layers: list[nn.Module] = [ConvBNAct(in_channels, channels, 3, 2, activation=nn.ReLU6)]
        for stage in MOBILENET_V2_STAGES:
            out = make_divisible(stage.c * width_mult)
            for i in range(stage.n):
                layers.append(InvertedResidual(channels, out, stage.s if i == 0 else 1, stage.t))
                channels = out
        layers.append(ConvBNAct(channels, last, 1, activation=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(features), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model("mobilenet_v1", input_size=(3, 224, 224), paper=HOWARD_2017)
def mobilenet_v1(
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    width_mult: float = 1.0,
    resolution_mult: float = 1.0,
    dropout: float = 0.0,
) -> MobileNetV1:
    """MobileNet v1 (Table 1) with width multiplier alpha and resolution multiplier rho."""
    return MobileNetV1(
        num_classes=num_classes,
        in_channels=in_channels,
        width_mult=width_mult,
        resolution_mult=resolution_mult,
        dropout=dropout,
    )


@register_model("mobilenet_v2", input_size=(3, 224, 224), paper=SANDLER_2018)
def mobilenet_v2(
    *, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0, dropout: float = 0.2
) -> MobileNetV2:
    """MobileNet v2 (Table 2); 3,504,872 parameters at width 1.0."""
    return MobileNetV2(
        num_classes=num_classes, in_channels=in_channels, width_mult=width_mult, dropout=dropout
    )
