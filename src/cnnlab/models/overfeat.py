"""Sliding-window classification and its convolutional implementation (Sermanet et al., 2014,
"OverFeat"; slides "Sliding windows detection", "Turning FC layer into convolutional layers",
"Convolution implementation of sliding windows").

:class:`WindowClassifier` is the slide's network for 14x14x3 windows:
``CONV 5x5, 16 -> 10x10x16 -> MAX POOL 2x2 -> 5x5x16 -> FC 400 -> FC 400 -> softmax``.
:meth:`WindowClassifier.to_convolutional` turns each FC layer into the equivalent convolution:
the FC of 400 units on a 5x5x16 volume becomes 400 filters of 5x5x16; the later FCs become 1x1
convolutions. The result, :class:`ConvWindowClassifier`, runs on any image of at least 14x14 and
outputs one prediction per window position at stride 2 (the pooling's stride): a 16x16 image
gives a 2x2 grid, 28x28 an 8x8 grid, ``(n - 14) / 2 + 1`` per side.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.registry import register_model

WINDOW = 14
STRIDE = 2


class WindowClassifier(nn.Module):
    """The FC form: ``(B, 3, 14, 14) -> (B, num_classes)``."""

    def __init__(
        self, *, num_classes: int = 4, in_channels: int = 3, width: int = 16, hidden: int = 400
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(in_channels, width, 5), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2, 2)
            )
        )
        self.fc1 = nn.Linear(width * 5 * 5, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, num_classes)
        self.width, self.hidden, self.num_classes = width, hidden, num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(torch.flatten(features, 1)))
        return self.fc3(torch.relu(self.fc2(h)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    @torch.no_grad()
    def to_convolutional(self) -> ConvWindowClassifier:
        """The same network with every FC layer rewritten as a convolution (weights copied)."""
        conv = ConvWindowClassifier(
            num_classes=self.num_classes,
            in_channels=self.features.conv1.in_channels,
            width=self.width,
            hidden=self.hidden,
        )
        conv.features.load_state_dict(self.features.state_dict())
        # flatten() orders a (C, 5, 5) volume channel-major, exactly a conv weight's (C, 5, 5).
        conv.fc1.weight.copy_(self.fc1.weight.view(self.hidden, self.width, 5, 5))
        conv.fc1.bias.copy_(self.fc1.bias)
        conv.fc2.weight.copy_(self.fc2.weight[:, :, None, None])
        conv.fc2.bias.copy_(self.fc2.bias)
        conv.fc3.weight.copy_(self.fc3.weight[:, :, None, None])
        conv.fc3.bias.copy_(self.fc3.bias)
        return conv


class ConvWindowClassifier(nn.Module):
    """The convolutional form: ``(B, 3, H, W) -> (B, num_classes, (H-14)/2+1, (W-14)/2+1)``."""

    def __init__(
        self, *, num_classes: int = 4, in_channels: int = 3, width: int = 16, hidden: int = 400
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(in_channels, width, 5), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2, 2)
            )
        )
        self.fc1 = nn.Conv2d(width, hidden, 5)  # FC 400 on 5x5x16 = 400 filters of 5x5x16
        self.fc2 = nn.Conv2d(hidden, hidden, 1)
        self.fc3 = nn.Conv2d(hidden, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc1(self.features(x)))
        return self.fc3(torch.relu(self.fc2(h)))


def naive_sliding_windows(
    model: WindowClassifier, image: torch.Tensor, stride: int = STRIDE, batched: bool = False
) -> torch.Tensor:
    """Crop every 14x14 window at ``stride`` and classify each crop: ``(B, C, H, W) ->
    (B, classes, gh, gw)``. ``batched=False`` runs the crops one at a time (the slide's
    procedure); ``batched=True`` stacks them into one batch (same arithmetic, less overhead)."""
    b, _, h, w = image.shape
    gh, gw = (h - WINDOW) // stride + 1, (w - WINDOW) // stride + 1
    if batched:
        crops = image.unfold(2, WINDOW, stride).unfold(3, WINDOW, stride)  # (B, C, gh, gw, 14, 14)
        crops = crops.permute(0, 2, 3, 1, 4, 5).reshape(b * gh * gw, -1, WINDOW, WINDOW)
        return model(crops).view(b, gh, gw, -1).permute(0, 3, 1, 2)
    out = image.new_empty(b, model.num_classes, gh, gw)
    for i in range(gh):
        for j in range(gw):
            crop = image[:, :, i * stride : i * stride + WINDOW, j * stride : j * stride + WINDOW]
            out[:, :, i, j] = model(crop)
    return out


@register_model(
    "window_classifier",
    input_size=(3, 14, 14),
    paper="Sermanet et al., 2014. OverFeat (the course's 14x14 example)",
)
def window_classifier(*, num_classes: int = 4, in_channels: int = 3) -> WindowClassifier:
    """The slide's 14x14 window classifier with FC layers."""
    return WindowClassifier(num_classes=num_classes, in_channels=in_channels)
