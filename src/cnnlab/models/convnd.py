"""Small convolutional networks for 1D signals and 3D volumes (slides "Convolutions in 2D and 1D"
and "3D convolution"): the same conv -> BN -> ReLU -> pool pattern, with ``Conv1d``/``Conv3d``.

* ``conv1d_net``: ``(B, C, L)``, e.g. an ECG trace of 256 samples; filters slide along time.
* ``conv3d_net``: ``(B, C, D, H, W)``, e.g. a CT volume or a clip of video frames; filters slide
  along depth (or time) as well as height and width.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.registry import register_model

_LAYERS = {
    1: (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d, nn.AdaptiveAvgPool1d),
    3: (nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d, nn.AdaptiveAvgPool3d),
}


class ConvNdNet(nn.Module):
    """``len(widths)`` blocks of ``k``-wide convolution, BN, ReLU and 2x max pooling, then global
    average pooling and a linear classifier. ``(B, C, *spatial) -> (B, num_classes)``."""

    def __init__(
        self,
        dims: int,
        *,
        num_classes: int,
        in_channels: int,
        widths: tuple[int, ...],
        kernel_size: int,
    ) -> None:
        super().__init__()
        conv, norm, pool, gap = _LAYERS[dims]
        layers: list[nn.Module] = []
        channels = in_channels
        for width in widths:
            layers += [
                conv(channels, width, kernel_size, padding=kernel_size // 2, bias=False),
                norm(width),
                nn.ReLU(inplace=True),
                pool(2),
            ]
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = gap(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(features), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model("conv1d_net", input_size=(1, 256), paper="Course slide 'Convolutions in 2D and 1D'")
def conv1d_net(
    *,
    num_classes: int = 5,
    in_channels: int = 1,
    widths: tuple[int, ...] = (32, 64, 128),
    kernel_size: int = 5,
) -> ConvNdNet:
    """A 1D CNN for signals of shape ``(C, L)``."""
    return ConvNdNet(
        1, num_classes=num_classes, in_channels=in_channels, widths=widths, kernel_size=kernel_size
    )


@register_model("conv3d_net", input_size=(1, 16, 32, 32), paper="Course slide '3D convolution'")
def conv3d_net(
    *,
    num_classes: int = 2,
    in_channels: int = 1,
    widths: tuple[int, ...] = (16, 32, 64),
    kernel_size: int = 3,
) -> ConvNdNet:
    """A 3D CNN for volumes of shape ``(C, D, H, W)``."""
    return ConvNdNet(
        3, num_classes=num_classes, in_channels=in_channels, widths=widths, kernel_size=kernel_size
    )
