"""The YOLO detector (Redmon et al., 2015; anchors as in YOLOv2): any registered backbone's
feature map, one 3x3 conv-BN-ReLU, and a 1x1 convolution to ``A * (5 + C)`` channels.

``forward`` returns the raw grid ``(B, S, S, A, 5 + C)`` in the slide's order
``[p_c, b_x, b_y, b_h, b_w, c_1 .. c_C]`` (logit, raw offsets, raw log-scales, class logits): the
slide's ``3 x 3 x 2 x 8`` for S = 3, A = 2, C = 3. It never computes a loss or boxes: the loss is
:class:`cnnlab.losses.yolo.YoloLoss`, decoding is :func:`cnnlab.engine.detect.decode`.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.layers import ConvBNAct
from cnnlab.models.backbone import build_backbone
from cnnlab.registry import register_model

DEFAULT_ANCHORS = ((0.12, 0.2), (0.25, 0.3), (0.35, 0.18))  # (w, h) relative; k-means replaces


class YoloDetector(nn.Module):
    """``(B, 3, H, W) -> (B, S, S, A, 5 + C)`` with ``S = H / backbone stride``."""

    def __init__(
        self,
        backbone: str = "convnet_small",
        *,
        num_classes: int = 3,
        anchors: tuple[tuple[float, float], ...] = DEFAULT_ANCHORS,
        in_channels: int = 3,
        backbone_kwargs: dict | None = None,
        input_size: int = 128,
    ) -> None:
        super().__init__()
        self.backbone, (c, *_) = build_backbone(
            backbone, in_channels, input_size, **dict(backbone_kwargs or {})
        )
        self.num_classes = num_classes
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32))
        self.neck = ConvBNAct(c, c, 3)
        self.head = nn.Conv2d(c, len(anchors) * (5 + num_classes), 1)

    @property
    def num_anchors(self) -> int:
        return self.anchors.shape[0]  # not len(): ONNX tracing warns on it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.head(self.neck(self.backbone.forward_features(x)))
        b, _, s, s2 = f.shape
        return f.view(b, self.num_anchors, 5 + self.num_classes, s, s2).permute(0, 3, 4, 1, 2)


@register_model(
    "yolo",
    input_size=(3, 128, 128),
    task="detection",
    paper="Redmon et al., 2015 (YOLO); Redmon & Farhadi, 2017 (anchors, YOLOv2)",
)
def yolo(
    *,
    backbone: str = "convnet_small",
    num_classes: int = 3,
    anchors: tuple[tuple[float, float], ...] = DEFAULT_ANCHORS,
    in_channels: int = 3,
    backbone_kwargs: dict | None = None,
    input_size: int = 128,
) -> YoloDetector:
    """A YOLO grid detector on a registered backbone."""
    if backbone == "convnet_small" and backbone_kwargs is None:
        backbone_kwargs = {"widths": (16, 32, 64, 128)}  # stride 16: an 8x8 grid at 128 px
    return YoloDetector(
        backbone,
        num_classes=num_classes,
        anchors=anchors,
        in_channels=in_channels,
        backbone_kwargs=backbone_kwargs,
        input_size=input_size,
    )
