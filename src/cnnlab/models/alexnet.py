"""AlexNet: Krizhevsky, Sutskever & Hinton, 2012, "ImageNet classification with deep convolutional
neural networks".

* ``alexnet``: as published (section 3, figure 2): 96/256/384/384/256 kernels, local response
  normalisation after conv1 and conv2, overlapping 3x3/2 max pooling, and the two-GPU split
  expressed as grouped convolutions (conv2, conv4 and conv5 see only their own GPU's half of the
  previous layer, ``groups=2``; conv3 and the FC layers connect across GPUs). 60,965,224
  parameters. Input 3x227x227 (the paper says 224, but 227 is what makes its 55x55 conv1 map).
* ``alexnet_tv``: the single-tower variant torchvision ships (64/192/384/256/256, no LRN, adaptive
  6x6 average pooling), whose official weights load directly. 61,100,840 parameters.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.registry import register_model

KRIZHEVSKY_2012 = "Krizhevsky et al., 2012. ImageNet classification with deep CNNs"


def _lrn() -> nn.LocalResponseNorm:
    """Section 3.3: ``b = a / (k + alpha * sum_{n neighbours} a^2)^beta`` with ``k = 2, n = 5,
    alpha = 1e-4, beta = 0.75``. PyTorch divides ``alpha`` by ``n``, so it is given ``5e-4``."""
    return nn.LocalResponseNorm(size=5, alpha=5e-4, beta=0.75, k=2.0)


class AlexNet(nn.Module):
    """The published two-tower AlexNet. Shapes for a 227x227 input:
    ``conv1 96@55x55 -> pool 27 -> conv2 256@27 -> pool 13 -> conv3 384@13 -> conv4 384@13 ->
    conv5 256@13 -> pool 6 -> fc6 4096 -> fc7 4096 -> fc8 num_classes``.
    """

    def __init__(self, *, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(in_channels, 96, 11, stride=4),
                relu1=nn.ReLU(inplace=True),
                norm1=_lrn(),
                pool1=nn.MaxPool2d(3, 2),
                conv2=nn.Conv2d(96, 256, 5, padding=2, groups=2),
                relu2=nn.ReLU(inplace=True),
                norm2=_lrn(),
                pool2=nn.MaxPool2d(3, 2),
                conv3=nn.Conv2d(256, 384, 3, padding=1),
                relu3=nn.ReLU(inplace=True),
                conv4=nn.Conv2d(384, 384, 3, padding=1, groups=2),
                relu4=nn.ReLU(inplace=True),
                conv5=nn.Conv2d(384, 256, 3, padding=1, groups=2),
                relu5=nn.ReLU(inplace=True),
                pool5=nn.MaxPool2d(3, 2),
            )
        )
        self.head = nn.Sequential(
            OrderedDict(
                flatten=nn.Flatten(),
                drop6=nn.Dropout(dropout),
                fc6=nn.Linear(256 * 6 * 6, 4096),
                relu6=nn.ReLU(inplace=True),
                drop7=nn.Dropout(dropout),
                fc7=nn.Linear(4096, 4096),
                relu7=nn.ReLU(inplace=True),
                fc8=nn.Linear(4096, num_classes),
            )
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, 227, 227) -> (B, 256, 6, 6)``."""
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class AlexNetTV(nn.Module):
    """torchvision's single-tower AlexNet (from "One weird trick...", Krizhevsky 2014).

    Module names and indices match torchvision's (``features.N``, ``classifier.N``)."""

    def __init__(self, *, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W) -> (B, 256, 6, 6)`` for any H, W >= 63."""
        return self.avgpool(self.features(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(features, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model("alexnet", input_size=(3, 227, 227), paper=KRIZHEVSKY_2012)
def alexnet(*, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> AlexNet:
    """AlexNet as published: two-tower grouped convolutions and LRN; 60,965,224 parameters."""
    return AlexNet(num_classes=num_classes, in_channels=in_channels, dropout=dropout)


@register_model(
    "alexnet_tv",
    input_size=(3, 224, 224),
    paper="Krizhevsky, 2014. One weird trick for parallelizing CNNs (torchvision)",
)
def alexnet_tv(*, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> AlexNetTV:
    """torchvision's single-tower AlexNet; 61,100,840 parameters."""
    return AlexNetTV(num_classes=num_classes, in_channels=in_channels, dropout=dropout)
