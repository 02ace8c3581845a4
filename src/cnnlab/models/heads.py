"""Task heads on any registered backbone, and a small fast backbone for synthetic scenes.

* :class:`LocalizationNet` (slide "Classification with localization" and "Landmark detection"):
  ``backbone.forward_features -> global average pool -> one linear layer`` predicting the slide's
  ``y = [p_c, b_x, b_y, b_h, b_w, c_1 .. c_C]`` and, optionally, ``K`` landmarks
  ``(l_1x, l_1y, ..., l_Kx, l_Ky)``.
* ``convnet_small``: five conv-BN-ReLU stages (16-32-64-128-128 channels, each halving the size),
  a registered classifier like the others, sized for 64-128 px scenes on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cnnlab.layers import ConvBNAct
from cnnlab.models.backbone import build_backbone
from cnnlab.registry import register_model


class ConvNetSmall(nn.Module):
    """``(B, C, H, W) -> (B, 128, H/32, W/32) -> pool -> (B, num_classes)``."""

    def __init__(
        self,
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        widths: tuple[int, ...] = (16, 32, 64, 128, 128),
    ) -> None:
        super().__init__()
        layers, c = [], in_channels
        for w in widths:
            layers += [ConvBNAct(c, w, 3), ConvBNAct(w, w, 3, stride=2)]
            c = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(features), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model("convnet_small", input_size=(3, 64, 64), paper="cnnlab: a small VGG-style CNN")
def convnet_small(
    *, num_classes: int = 10, in_channels: int = 3, widths: tuple[int, ...] = (16, 32, 64, 128, 128)
) -> ConvNetSmall:
    """A small, fast conv-BN-ReLU network for 32-128 px inputs; each width is one stage that
    halves the size (four stages: stride 16)."""
    return ConvNetSmall(num_classes=num_classes, in_channels=in_channels, widths=widths)


@dataclass(frozen=True)
class LocalizationOutput:
    """The head's raw outputs split by meaning (slide order)."""

    pc_logit: torch.Tensor  # (B,) object present, before the sigmoid
    box: torch.Tensor  # (B, 4) b_x, b_y, b_h, b_w, relative to the image
    class_logits: torch.Tensor  # (B, C)
    landmarks: torch.Tensor  # (B, K, 2) (x, y) relative to the image; K may be 0


class LocalizationNet(nn.Module):
    """Any registered backbone plus a linear head for ``1 + 4 + C + 2K`` numbers.

    ``forward`` returns the raw ``(B, 5 + C + 2K)`` vector; :meth:`split` names its parts.
    """

    def __init__(
        self,
        backbone: str = "convnet_small",
        *,
        num_classes: int = 3,
        num_landmarks: int = 0,
        in_channels: int = 3,
        input_size: int = 64,
    ) -> None:
        super().__init__()
        self.backbone, (channels, *_) = build_backbone(backbone, in_channels, input_size)
        self.num_classes, self.num_landmarks = num_classes, num_landmarks
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(channels, 5 + num_classes + 2 * num_landmarks)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(features), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def split(self, out: torch.Tensor) -> LocalizationOutput:
        return split_localization(out, self.num_classes, self.num_landmarks)


def split_localization(
    out: torch.Tensor, num_classes: int, num_landmarks: int
) -> LocalizationOutput:
    """``y (B, 5 + C + 2K)`` -> its parts: ``p_c``, the box, the class logits, the landmarks."""
    c, k = num_classes, num_landmarks
    return LocalizationOutput(
        out[:, 0], out[:, 1:5], out[:, 5 : 5 + c], out[:, 5 + c :].reshape(len(out), k, 2)
    )


@register_model(
    "localizer",
    input_size=(3, 64, 64),
    task="localization",
    paper="Course slide 'Classification with localization'",
)
def localizer(
    *,
    backbone: str = "convnet_small",
    num_classes: int = 3,
    num_landmarks: int = 0,
    in_channels: int = 3,
    input_size: int = 64,
) -> LocalizationNet:
    """A backbone with the slide's localisation (and landmark) head."""
    return LocalizationNet(
        backbone,
        num_classes=num_classes,
        num_landmarks=num_landmarks,
        in_channels=in_channels,
        input_size=input_size,
    )
