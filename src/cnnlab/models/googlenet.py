"""Network-in-Network's 1x1 idea grown into GoogLeNet: Szegedy et al., 2014, "Going deeper with
convolutions" (Inception v1).

Slides "Motivation for inception network", "The problem of computational cost", "Inception
module": run 1x1, 3x3, 5x5 convolutions and a 3x3 max pool side by side and concatenate their
channels; put 1x1 "bottleneck" convolutions before the 3x3 and 5x5 ones (and after the pool) to cut
the cost (the 5x5 on 28x28x192 -> 32 costs 120M MACs directly and 12.4M through a 16-channel
bottleneck, see ``cnnlab explain cost``).

* ``googlenet``: torchvision's layout (conv + BN, eps 1e-3), whose "5x5" branch uses a 3x3
  convolution (a known slip kept for weight compatibility); 6,624,904 parameters without the
  auxiliary heads, so official weights load.
* ``googlenet_paper``: the paper's Table 1 with real 5x5 convolutions, biases instead of batch
  norm, and local response normalisation after the stem's first pool and third convolution.

Both can carry the two auxiliary classifiers (``aux_logits=True``); ``forward`` always returns the
main logits and :meth:`GoogLeNet.forward_with_aux` returns all three for training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.registry import register_model

SZEGEDY_2014 = "Szegedy et al., 2014. Going deeper with convolutions"


@dataclass(frozen=True)
class InceptionSpec:
    """One row of Table 1: ``#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj``."""

    ch1x1: int
    ch3x3red: int
    ch3x3: int
    ch5x5red: int
    ch5x5: int
    pool_proj: int

    @property
    def out_channels(self) -> int:
        return self.ch1x1 + self.ch3x3 + self.ch5x5 + self.pool_proj


# Table 1 of the paper.
INCEPTION_TABLE: dict[str, InceptionSpec] = {
    "3a": InceptionSpec(64, 96, 128, 16, 32, 32),
    "3b": InceptionSpec(128, 128, 192, 32, 96, 64),
    "4a": InceptionSpec(192, 96, 208, 16, 48, 64),
    "4b": InceptionSpec(160, 112, 224, 24, 64, 64),
    "4c": InceptionSpec(128, 128, 256, 24, 64, 64),
    "4d": InceptionSpec(112, 144, 288, 32, 64, 64),
    "4e": InceptionSpec(256, 160, 320, 32, 128, 128),
    "5a": InceptionSpec(256, 160, 320, 32, 128, 128),
    "5b": InceptionSpec(384, 192, 384, 48, 128, 128),
}


class BasicConv2d(nn.Module):
    """``conv -> (BN) -> ReLU``. With ``batch_norm`` (torchvision's form) the conv has no bias and
    BN uses eps 1e-3; without it (the paper's form) the conv has a bias."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, bias=not batch_norm
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001) if batch_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    """The Inception module with dimension reductions (figure 2b).
    ``(B, C_in, H, W) -> (B, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)``."""

    def __init__(
        self, in_channels: int, spec: InceptionSpec, *, five: int = 5, batch_norm: bool = True
    ) -> None:
        super().__init__()
        bn = batch_norm
        self.branch1 = BasicConv2d(in_channels, spec.ch1x1, 1, batch_norm=bn)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, spec.ch3x3red, 1, batch_norm=bn),
            BasicConv2d(spec.ch3x3red, spec.ch3x3, 3, padding=1, batch_norm=bn),
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, spec.ch5x5red, 1, batch_norm=bn),
            BasicConv2d(spec.ch5x5red, spec.ch5x5, five, padding=five // 2, batch_norm=bn),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, spec.pool_proj, 1, batch_norm=bn),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        one, three = self.branch1(x), self.branch2(x)
        five, pool = self.branch3(x), self.branch4(x)
        return torch.cat([one, three, five, pool], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier on 4a (512 channels) or 4d (528): pool to 4x4, 1x1 conv to 128,
    FC 1024, dropout 0.7, FC ``num_classes``."""

    def __init__(
        self, in_channels: int, num_classes: int, *, batch_norm: bool = True, dropout: float = 0.7
    ) -> None:
        super().__init__()
        self.conv = BasicConv2d(in_channels, 128, 1, batch_norm=batch_norm)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.conv(F.adaptive_avg_pool2d(x, (4, 4))), 1)
        return self.fc2(self.dropout(F.relu(self.fc1(x), inplace=True)))


class GoogLeNet(nn.Module):
    """GoogLeNet. ``(B, 3, 224, 224) -> stem (B, 192, 28, 28) -> 3a, 3b -> pool (14x14) ->
    4a..4e -> pool (7x7) -> 5a, 5b (B, 1024, 7, 7) -> average pool -> dropout -> fc``."""

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        in_channels: int = 3,
        aux_logits: bool = False,
        paper: bool = False,
        dropout: float = 0.4,
        transform_input: bool = False,
    ) -> None:
        super().__init__()
        bn, five = not paper, 5 if paper else 3
        self.transform_input = transform_input
        self.conv1 = BasicConv2d(in_channels, 64, 7, 2, 3, batch_norm=bn)
        self.maxpool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.norm1 = nn.LocalResponseNorm(5, 1e-4 * 5, 0.75, 1.0) if paper else nn.Identity()
        self.conv2 = BasicConv2d(64, 64, 1, batch_norm=bn)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1, batch_norm=bn)
        self.norm2 = nn.LocalResponseNorm(5, 1e-4 * 5, 0.75, 1.0) if paper else nn.Identity()
        self.maxpool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        channels = 192
        for name, spec in INCEPTION_TABLE.items():
            setattr(self, f"inception{name}", Inception(channels, spec, five=five, batch_norm=bn))
            channels = spec.out_channels
        self.maxpool3 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.maxpool4 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.aux1 = InceptionAux(512, num_classes, batch_norm=bn) if aux_logits else None
        self.aux2 = InceptionAux(528, num_classes, batch_norm=bn) if aux_logits else None
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.01, a=-2, b=2)

    def _transform(self, x: torch.Tensor) -> torch.Tensor:
        """torchvision's ``transform_input``: re-normalise ImageNet-standardised input to [-1, 1],
        which the ported Caffe weights expect."""
        if not self.transform_input:
            return x
        mean = x.new_tensor([0.485, 0.456, 0.406])[None, :, None, None]
        std = x.new_tensor([0.229, 0.224, 0.225])[None, :, None, None]
        return (x * std + mean - 0.5) / 0.5

    def _run(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        x = self.maxpool2(
            self.norm2(
                self.conv3(self.conv2(self.norm1(self.maxpool1(self.conv1(self._transform(x))))))
            )
        )
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if self.aux1 is not None else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux2 is not None else None
        x = self.maxpool4(self.inception4e(x))
        return self.inception5b(self.inception5a(x)), aux1, aux2

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, 224, 224) -> (B, 1024, 7, 7)``."""
        return self._run(x)[0]

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(torch.flatten(self.avgpool(features), 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_with_aux(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """``(logits, aux1_logits, aux2_logits)``; the paper weights the auxiliary losses by 0.3."""
        features, aux1, aux2 = self._run(x)
        return self.forward_head(features), aux1, aux2


@register_model("googlenet", input_size=(3, 224, 224), paper=SZEGEDY_2014 + " (torchvision)")
def googlenet(
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    aux_logits: bool = False,
    dropout: float = 0.4,
    transform_input: bool = False,
) -> GoogLeNet:
    """GoogLeNet in torchvision's layout (BN; 3x3 in the "5x5" branch); 6,624,904 parameters."""
    return GoogLeNet(
        num_classes=num_classes,
        in_channels=in_channels,
        aux_logits=aux_logits,
        dropout=dropout,
        transform_input=transform_input,
    )


@register_model("googlenet_paper", input_size=(3, 224, 224), paper=SZEGEDY_2014)
def googlenet_paper(
    *, num_classes: int = 1000, in_channels: int = 3, aux_logits: bool = False, dropout: float = 0.4
) -> GoogLeNet:
    """GoogLeNet as in the paper's Table 1: real 5x5 convolutions, biases, LRN, no BN."""
    return GoogLeNet(
        num_classes=num_classes,
        in_channels=in_channels,
        aux_logits=aux_logits,
        paper=True,
        dropout=dropout,
    )
