"""Network in Network: Lin, Chen & Yan, 2013. Slides "Why does a 1x1 convolution do?" and
"Using 1x1 convolutions": a 1x1 convolution is a fully connected layer applied to every pixel's
channel vector (an "mlpconv" layer), which can shrink, keep or grow the number of channels.

The ImageNet model of the authors' Caffe release (as in Dive into Deep Learning): four mlpconv
blocks (a k x k convolution followed by two 1x1 convolutions, all ReLU), max pooling between
them, and global average pooling over ``num_classes`` maps instead of fully connected layers.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.registry import register_model


def mlpconv(
    in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int
) -> nn.Sequential:
    """``k x k conv -> ReLU -> 1x1 conv -> ReLU -> 1x1 conv -> ReLU``: the "micro network"."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 1),
        nn.ReLU(inplace=True),
    )


class NiN(nn.Module):
    """``(B, 3, 224, 224) -> 96@54 -> pool 26 -> 256@26 -> pool 12 -> 384@12 -> pool 5 ->
    num_classes@5 -> global average -> (B, num_classes)``."""

    def __init__(
        self, *, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            mlpconv(in_channels, 96, 11, 4, 0),
            nn.MaxPool2d(3, 2),
            mlpconv(96, 256, 5, 1, 2),
            nn.MaxPool2d(3, 2),
            mlpconv(256, 384, 3, 1, 1),
            nn.MaxPool2d(3, 2),
            nn.Dropout(dropout),
        )
        self.classifier = mlpconv(384, num_classes, 3, 1, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, 224, 224) -> (B, 384, 5, 5)``."""
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """One map per class, averaged over space: ``(B, 384, h, w) -> (B, num_classes)``."""
        return torch.flatten(self.pool(self.classifier(features)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model("nin", input_size=(3, 224, 224), paper="Lin et al., 2013. Network in network")
def nin(*, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> NiN:
    """Network in Network for ImageNet-sized inputs."""
    return NiN(num_classes=num_classes, in_channels=in_channels, dropout=dropout)
