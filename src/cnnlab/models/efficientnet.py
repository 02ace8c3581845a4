"""EfficientNet: Tan & Le, 2019, "EfficientNet: Rethinking model scaling for convolutional neural
networks". Slides "EfficientNet": scale depth ``d = alpha^phi``, width ``w = beta^phi`` and
resolution ``r = gamma^phi`` together, with ``alpha = 1.2, beta = 1.1, gamma = 1.15`` found by grid
search under ``alpha * beta^2 * gamma^2 ~ 2`` (equation 3).

The baseline B0 is Table 1 of the paper: MBConv blocks (MobileNet v2's inverted residual with
squeeze-and-excitation, SiLU and stochastic depth). B1-B7 use the *released* coefficients
(:data:`EFFICIENTNET_VARIANTS`), which differ from the rule; :func:`compound_scaling` computes the
rule so the two can be compared (``cnnlab explain scale``).

Module names: ``features.0`` stem, ``features.1..7`` stages, ``features.8`` head conv,
``classifier.1`` the FC, as in torchvision; inside a block ``expand``, ``depthwise``, ``se`` and
``project``.
B0: 5,288,548 parameters, ~0.386 G MACs at 224; B7: 66,347,960 at 600.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from cnnlab.layers import ConvBNAct, DropPath, SqueezeExcite, make_divisible
from cnnlab.registry import register_model

TAN_2019 = "Tan & Le, 2019. EfficientNet: Rethinking model scaling"
ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15  # depth, width, resolution bases (section 3.3)


@dataclass(frozen=True)
class MBConvStage:
    """One row of Table 1: expansion, kernel, stride, input and output channels, layers."""

    expand_ratio: int
    kernel: int
    stride: int
    in_channels: int
    out_channels: int
    layers: int


# Table 1 of the paper (EfficientNet-B0 baseline), stages 2-8.
B0_STAGES: tuple[MBConvStage, ...] = (
    MBConvStage(1, 3, 1, 32, 16, 1),
    MBConvStage(6, 3, 2, 16, 24, 2),
    MBConvStage(6, 5, 2, 24, 40, 2),
    MBConvStage(6, 3, 2, 40, 80, 3),
    MBConvStage(6, 5, 1, 80, 112, 3),
    MBConvStage(6, 5, 2, 112, 192, 4),
    MBConvStage(6, 3, 1, 192, 320, 1),
)


@dataclass(frozen=True)
class EfficientNetVariant:
    """Released scaling of one variant: width and depth multipliers, resolution, dropout."""

    width: float
    depth: float
    resolution: int
    dropout: float


# The released settings (the reference implementation's params_dict; also torchvision's).
EFFICIENTNET_VARIANTS: dict[str, EfficientNetVariant] = {
    "b0": EfficientNetVariant(1.0, 1.0, 224, 0.2),
    "b1": EfficientNetVariant(1.0, 1.1, 240, 0.2),
    "b2": EfficientNetVariant(1.1, 1.2, 260, 0.3),
    "b3": EfficientNetVariant(1.2, 1.4, 300, 0.3),
    "b4": EfficientNetVariant(1.4, 1.8, 380, 0.4),
    "b5": EfficientNetVariant(1.6, 2.2, 456, 0.4),
    "b6": EfficientNetVariant(1.8, 2.6, 528, 0.5),
    "b7": EfficientNetVariant(2.0, 3.1, 600, 0.5),
}


def compound_scaling(phi: float, base_resolution: int = 224) -> EfficientNetVariant:
    """Equation 3: ``d = 1.2^phi, w = 1.1^phi, r = 1.15^phi`` (FLOPs grow about ``2^phi``)."""
    return EfficientNetVariant(
        width=BETA**phi,
        depth=ALPHA**phi,
        resolution=round(base_resolution * GAMMA**phi),
        dropout=0.2,
    )


class MBConv(nn.Module):
    """Mobile inverted bottleneck with squeeze-and-excitation:
    ``1x1 expand (SiLU) -> k x k depthwise (SiLU) -> SE (squeeze to C_in/4) -> 1x1 linear project``,
    plus a stochastically dropped residual when stride is 1 and channels match."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int,
        expand_ratio: int,
        drop_path: float,
        norm_eps: float,
        norm_momentum: float,
    ) -> None:
        super().__init__()
        hidden = make_divisible(in_channels * expand_ratio)
        norm = {"norm_eps": norm_eps, "norm_momentum": norm_momentum}
        self.use_residual = stride == 1 and in_channels == out_channels
        self.expand = (
            ConvBNAct(in_channels, hidden, 1, activation=nn.SiLU, **norm)
            if hidden != in_channels
            else None
        )
        self.depthwise = ConvBNAct(
            hidden, hidden, kernel, stride, groups=hidden, activation=nn.SiLU, **norm
        )
        self.se = SqueezeExcite(hidden, max(1, in_channels // 4))
        self.project = ConvBNAct(hidden, out_channels, 1, activation=None, **norm)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.expand(x) if self.expand is not None else x
        z = self.project(self.se(self.depthwise(z)))
        return x + self.drop_path(z) if self.use_residual else z


class EfficientNet(nn.Module):
    """EfficientNet-B0..B7: ``stem 3x3/2 -> 7 MBConv stages -> 1x1 conv to 4 x last channels ->
    pool -> dropout -> FC``. Channels are ``make_divisible(c * width)``, layers
    ``ceil(n * depth)``; stochastic depth rises linearly to ``drop_path_rate`` over the blocks."""

    def __init__(
        self,
        variant: EfficientNetVariant,
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        drop_path_rate: float = 0.2,
        dropout: float | None = None,
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        norm = {"norm_eps": norm_eps, "norm_momentum": norm_momentum}

        def width(c: int) -> int:
            return make_divisible(c * variant.width)

        stages = [
            (s, width(s.in_channels), width(s.out_channels), math.ceil(s.layers * variant.depth))
            for s in B0_STAGES
        ]
        total = sum(n for *_, n in stages)
        layers: list[nn.Module] = [
            ConvBNAct(in_channels, stages[0][1], 3, 2, activation=nn.SiLU, **norm)
        ]
        block_id = 0
        for stage, c_in, c_out, n in stages:
            blocks = []
            for i in range(n):
                blocks.append(
                    MBConv(
                        c_in if i == 0 else c_out,
                        c_out,
                        stage.kernel,
                        stage.stride if i == 0 else 1,
                        stage.expand_ratio,
                        drop_path_rate * block_id / total,
                        **norm,
                    )
                )
                block_id += 1
            layers.append(nn.Sequential(*blocks))
        last_in = stages[-1][2]
        layers.append(ConvBNAct(last_in, 4 * last_in, 1, activation=nn.SiLU, **norm))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        p = variant.dropout if dropout is None else dropout
        self.classifier = nn.Sequential(nn.Dropout(p), nn.Linear(4 * last_in, num_classes))
        self.default_input_size = (in_channels, variant.resolution, variant.resolution)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(features), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _register(key: str) -> None:
    variant = EFFICIENTNET_VARIANTS[key]
    # B5-B7 were ported from TensorFlow with its batch-norm constants (torchvision does the same).
    eps, momentum = (1e-3, 0.01) if key in ("b5", "b6", "b7") else (1e-5, 0.1)

    def build(
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        drop_path_rate: float = 0.2,
        dropout: float | None = None,
    ) -> EfficientNet:
        return EfficientNet(
            variant,
            num_classes=num_classes,
            in_channels=in_channels,
            drop_path_rate=drop_path_rate,
            dropout=dropout,
            norm_eps=eps,
            norm_momentum=momentum,
        )

    build.__name__ = f"efficientnet_{key}"
    build.__doc__ = (
        f"EfficientNet-{key.upper()}: width x{variant.width}, depth x{variant.depth}, "
        f"{variant.resolution} px."
    )
    size = (3, variant.resolution, variant.resolution)
    register_model(f"efficientnet_{key}", input_size=size, paper=TAN_2019)(build)


for _key in EFFICIENTNET_VARIANTS:
    _register(_key)
