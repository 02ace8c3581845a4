"""Building blocks used by several families: conv-BN-activation, squeeze-and-excitation,
stochastic depth and the channel-rounding rule of MobileNet/EfficientNet."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Activation = Callable[..., nn.Module]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor``, never more than 10% below ``value``
    (the rule of the MobileNet v2 and EfficientNet reference code)."""
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBNAct(nn.Sequential):
    """``Conv2d(bias=False) -> BatchNorm2d -> activation``, with "same" padding ``(k-1)/2 * d``.

    Shapes: ``(B, C_in, H, W) -> (B, C_out, ceil(H/s), ceil(W/s))`` for odd ``k``. Children are
    numbered 0 (conv), 1 (norm), 2 (activation) as in torchvision's ``Conv2dNormActivation``, so
    official weights map onto it directly. ``activation=None`` leaves the output linear (the
    "linear bottleneck" of MobileNet v2).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        activation: Activation | None = nn.ReLU,
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
        dilation: int = 1,
    ) -> None:
        padding = (kernel_size - 1) // 2 * dilation
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride,
                padding,
                dilation=dilation,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels, eps=norm_eps, momentum=norm_momentum),
        ]
        if activation is not None:
            layers.append(activation(inplace=True) if activation in _INPLACE else activation())
        super().__init__(*layers)
        self.out_channels = out_channels


_INPLACE = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al., 2018): ``x * sigmoid(W2 act(W1 avgpool(x)))``.

    ``(B, C, H, W) -> (B, C, H, W)``; the two 1x1 convolutions are named ``fc1``/``fc2`` as in
    torchvision's ``SqueezeExcitation``.
    """

    def __init__(
        self, channels: int, squeeze_channels: int, activation: Activation = nn.SiLU
    ) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.activation = activation()
        self.scale_activation = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return x * self.scale_activation(scale)


class DropPath(nn.Module):
    """Stochastic depth (Huang et al., 2016), "row" mode: in training, drop the whole residual
    branch of a sample with probability ``p`` and scale survivors by ``1/(1-p)``."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"
