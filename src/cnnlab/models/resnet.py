"""Residual networks: He, Zhang, Ren & Sun, 2015, "Deep residual learning for image recognition".

Slide "Residual block": ``a[l+2] = g(z[l+2] + a[l])``, or ``g(z[l+2] + W_s a[l])`` when the shapes
differ (a projection shortcut: 1x1 convolution + BN).

* ImageNet ResNet-18/34 (basic blocks) and 50/101/152 (bottleneck blocks), Table 1 of the paper.
  Module names match torchvision (``conv1``, ``bn1``, ``layer1``..``layer4``, ``fc``), so its
  weights load directly.
  Note: the default is torchvision's "v1.5" bottleneck, which strides in the 3x3 convolution;
  ``stride_in_1x1=True`` gives the paper's v1, striding in the first 1x1 (ResNet-50: 4.09 vs 3.86
  G MACs at 224, same parameters).
* CIFAR ResNet-20/32/44/56/110 (section 4.2): ``6n + 2`` layers, three stages of 16/32/64
  channels on 32x32 inputs, option A shortcuts (identity with stride-2 subsampling and zero-padded
  extra channels: no parameters), and their "plain" twins without shortcuts, for the slide's
  20-vs-56-layer experiment (figure 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.registry import register_model

HE_2015 = "He et al., 2015. Deep residual learning for image recognition"


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut. ``(B, C_in, H, W) -> (B, C, H/s, W/s)``."""

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        z = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(z + shortcut)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4), and a shortcut. The stride sits in the 3x3 (v1.5) or, with
    ``stride_in_1x1``, in the first 1x1 (the paper's v1)."""

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(in_channels, channels, 1, s1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, s3, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, channels * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        z = self.relu(self.bn1(self.conv1(x)))
        z = self.relu(self.bn2(self.conv2(z)))
        z = self.bn3(self.conv3(z))
        return self.relu(z + shortcut)


Block = type[BasicBlock] | type[Bottleneck]

# Table 1 of the paper: block type and blocks per stage (conv2_x .. conv5_x).
RESNET_CONFIGS: dict[int, tuple[Block, tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class ResNet(nn.Module):
    """ImageNet ResNet. ``(B, 3, 224, 224) -> stem (B, 64, 56, 56) -> layer1..4 (56, 28, 14, 7)
    -> global average pool -> fc``. Shortcuts are identities except where the shape changes,
    where they are projections (option B of the paper)."""

    def __init__(
        self,
        block: Block,
        layers: tuple[int, ...],
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        stride_in_1x1: bool = False,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        channels = 64
        stages = []
        for i, (width, n) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            stride = 1 if i == 0 else 2
            downsample = None
            if stride != 1 or channels != width * block.expansion:
                downsample = nn.Sequential(
                    nn.Conv2d(channels, width * block.expansion, 1, stride, bias=False),
                    nn.BatchNorm2d(width * block.expansion),
                )
            blocks = [block(channels, width, stride, downsample, stride_in_1x1)]
            channels = width * block.expansion
            blocks += [block(channels, width, 1, None, stride_in_1x1) for _ in range(1, n)]
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        self.num_features = channels
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:
            for m in self.modules():
                last = getattr(m, "bn3", None) or getattr(m, "bn2", None)
                if isinstance(m, BasicBlock | Bottleneck) and last is not None:
                    nn.init.zeros_(last.weight)

    def freeze_groups(self) -> list[list[str]]:
        """Parameter names per stage for ``--freeze stages:K``: stem, layer1 .. layer4."""
        stem = [
            f"{m}.{n}" for m in ("conv1", "bn1") for n, _ in getattr(self, m).named_parameters()
        ]
        return [stem] + [
            [f"{s}.{n}" for n, _ in getattr(self, s).named_parameters()]
            for s in ("layer1", "layer2", "layer3", "layer4")
        ]

    def feature_maps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named intermediate maps: ``stem``, ``layer1`` .. ``layer4``."""
        maps = {"stem": self.maxpool(self.relu(self.bn1(self.conv1(x))))}
        y = maps["stem"]
        for name in ("layer1", "layer2", "layer3", "layer4"):
            y = getattr(self, name)(y)
            maps[name] = y
        return maps

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W) -> (B, C, H/32, W/32)``, the last stage's map."""
        return self.feature_maps(x)["layer4"]

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(features), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _register_imagenet(depth: int) -> None:
    block, layers = RESNET_CONFIGS[depth]

    def build(
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        stride_in_1x1: bool = False,
        zero_init_residual: bool = False,
    ) -> ResNet:
        return ResNet(
            block,
            layers,
            num_classes=num_classes,
            in_channels=in_channels,
            stride_in_1x1=stride_in_1x1,
            zero_init_residual=zero_init_residual,
        )

    build.__name__ = f"resnet{depth}"
    build.__doc__ = f"ResNet-{depth} (Table 1); ``stride_in_1x1=True`` for the paper's v1."
    register_model(f"resnet{depth}", input_size=(3, 224, 224), paper=HE_2015)(build)


for _depth in RESNET_CONFIGS:
    _register_imagenet(_depth)


# --- CIFAR ResNets (section 4.2) --------------------------------------------------------------


class OptionAShortcut(nn.Module):
    """Parameter-free shortcut "A": subsample by the stride and zero-pad the new channels.
    ``(B, C, H, W) -> (B, C_out, H/s, W/s)``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.stride, self.extra = stride, out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        half = self.extra // 2
        return F.pad(x, (0, 0, 0, 0, half, self.extra - half))


class CifarBlock(nn.Module):
    """Basic block with an option-A shortcut, or no shortcut at all (``residual=False``: plain)."""

    def __init__(self, in_channels: int, channels: int, stride: int, residual: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.residual = residual
        needs_projection = stride != 1 or in_channels != channels
        self.shortcut: nn.Module = (
            OptionAShortcut(in_channels, channels, stride) if needs_projection else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(z + self.shortcut(x) if self.residual else z)


class CifarResNet(nn.Module):
    """``6n + 2`` layers: a 3x3 conv of 16, then ``n`` blocks at each of 16@32x32, 32@16x16,
    64@8x8, global average pooling and a 10-way FC (section 4.2)."""

    def __init__(
        self, n: int, *, residual: bool = True, num_classes: int = 10, in_channels: int = 3
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        channels, stages = 16, []
        for i, width in enumerate((16, 32, 64)):
            blocks = []
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(CifarBlock(channels, width, stride, residual))
                channels = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, 32, 32) -> (B, 64, 8, 8)``."""
        x = F.relu(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(x)))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features.mean((2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _register_cifar(depth: int, residual: bool) -> None:
    n = (depth - 2) // 6
    name = f"cifar_{'resnet' if residual else 'plain'}{depth}"

    def build(*, num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
        return CifarResNet(n, residual=residual, num_classes=num_classes, in_channels=in_channels)

    build.__name__ = name
    build.__doc__ = f"CIFAR {'ResNet' if residual else 'plain net'}-{depth} (section 4.2, n={n})."
    register_model(name, input_size=(3, 32, 32), paper=HE_2015 + ", section 4.2")(build)


CIFAR_DEPTHS = (20, 32, 44, 56, 110)  # 6n + 2 layers, n = 3, 5, 7, 9, 18 (the paper's Table 6)

for _depth in CIFAR_DEPTHS:
    for _residual in (True, False):
        _register_cifar(_depth, _residual)


__all__ = ["CIFAR_DEPTHS", "BasicBlock", "Bottleneck", "CifarResNet", "ResNet"]
