"""VGG: Simonyan & Zisserman, 2014, "Very deep convolutional networks for large-scale image
recognition". Slide "VGG-16": every CONV is 3x3, stride 1, "same" padding; every MAX-POOL is 2x2,
stride 2; channels double 64 -> 128 -> 256 -> 512 after each pool.

The configurations are Table 1 of the paper (A = VGG-11, B = VGG-13, D = VGG-16, E = VGG-19),
written as typed rows. Module indices match torchvision's (``features.N``, ``classifier.N``) so
official weights load. VGG-16: 138,357,544 parameters; VGG-19: 143,667,240.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cnnlab.registry import register_model

SIMONYAN_2014 = "Simonyan & Zisserman, 2014. Very deep convolutional networks"


@dataclass(frozen=True)
class VGGStage:
    """One row group of Table 1: ``convs`` 3x3 convolutions of ``channels``, then a 2x2 max pool."""

    convs: int
    channels: int


# Table 1 of the paper, column by column.
VGG_CONFIGS: dict[int, tuple[VGGStage, ...]] = {
    11: (VGGStage(1, 64), VGGStage(1, 128), VGGStage(2, 256), VGGStage(2, 512), VGGStage(2, 512)),
    13: (VGGStage(2, 64), VGGStage(2, 128), VGGStage(2, 256), VGGStage(2, 512), VGGStage(2, 512)),
    16: (VGGStage(2, 64), VGGStage(2, 128), VGGStage(3, 256), VGGStage(3, 512), VGGStage(3, 512)),
    19: (VGGStage(2, 64), VGGStage(2, 128), VGGStage(4, 256), VGGStage(4, 512), VGGStage(4, 512)),
}


class VGG(nn.Module):
    """VGG-11/13/16/19. ``(B, 3, 224, 224) -> features (B, 512, 7, 7) -> (B, num_classes)``.

    Note: like torchvision, an adaptive 7x7 average pool sits between features and classifier so
    other input sizes work; at 224x224 it is the identity.
    """

    def __init__(
        self,
        stages: tuple[VGGStage, ...],
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        batch_norm: bool = False,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for stage in stages:
            for _ in range(stage.convs):
                layers.append(nn.Conv2d(channels, stage.channels, 3, padding=1))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(stage.channels))
                layers.append(nn.ReLU(inplace=True))
                channels = stage.channels
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(channels * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.avgpool(self.features(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(features, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _register(depth: int, batch_norm: bool) -> None:
    name = f"vgg{depth}{'_bn' if batch_norm else ''}"

    def build(*, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
        return VGG(
            VGG_CONFIGS[depth],
            num_classes=num_classes,
            in_channels=in_channels,
            batch_norm=batch_norm,
            dropout=dropout,
        )

    build.__name__ = name
    build.__doc__ = f"VGG-{depth}{' with batch norm' if batch_norm else ''} (Table 1)."
    paper = SIMONYAN_2014 + (" (+ batch norm, Ioffe & Szegedy 2015)" if batch_norm else "")
    register_model(name, input_size=(3, 224, 224), paper=paper)(build)


for _depth in VGG_CONFIGS:
    for _bn in (False, True):
        _register(_depth, _bn)
