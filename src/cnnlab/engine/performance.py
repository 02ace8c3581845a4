"""Fast-by-default settings: bf16 autocast and the channels-last memory layout.

Which helps depends on the model and the machine, so ``auto`` follows what
``benchmarks/train_throughput.py`` measured (2-core AMD EPYC with AVX-512 BF16, batch 64):

* dense-convolution networks (ResNet, VGG, AlexNet, GoogLeNet, NiN, U-Net, and
  ``convnet_small``, the localizer's and detector's default backbone: 3.05x at 64 px, 3.9x at
  128 px): bf16 autocast + channels-last;
* depthwise networks (MobileNet, EfficientNet): channels-last in fp32 (bf16 slowed them);
* LeNet-sized networks: neither (the layout conversions cost more than they save);
* ImageNet ResNets on inputs under 64 px: neither. Their last stages are 1x1 or 2x2 maps under
  millions of weights, which autocast casts to bf16 at every step: 0.70-0.78x the fp32 speed at
  32 px (ResNet-18/34/50), 0.96x at 48 px, 1.2-1.9x from 64 px up.

``fp32`` / ``off`` always give the plain PyTorch default; nothing here changes the maths beyond
bf16's rounding, and the benchmark reports bf16 accuracy beside fp32.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TypeVar

import torch

from cnnlab.errors import CnnlabError

DENSE = ("resnet", "cifar_", "vgg", "alexnet", "googlenet", "nin", "unet", "convnet_small")
DEPTHWISE = ("mobilenet", "efficientnet")
SMALL_INPUT_SLOWER = ("resnet",)  # the ImageNet ResNets (not cifar_resnet, not unet_resnet18)
SMALL_INPUT = 64  # px: below this, those take neither
T = TypeVar("T", torch.Tensor, torch.nn.Module)


@dataclass(frozen=True)
class SpeedSettings:
    """What the training step uses."""

    bf16: bool
    channels_last: bool

    def autocast(self, device: torch.device) -> AbstractContextManager:
        if not self.bf16:
            return nullcontext()
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    def to_dict(self) -> dict[str, bool]:
        return {"bf16": self.bf16, "channels_last": self.channels_last}

    def describe(self) -> str:
        """``bf16 autocast, channels-last``, or ``fp32``: for the line a run starts with."""
        return ", ".join(
            (["bf16 autocast"] if self.bf16 else ["fp32"])
            + (["channels-last"] if self.channels_last else [])
        )

    def layout(self, t: T) -> T:
        """A model (in place) or a ``(B, C, H, W)`` batch in the memory layout chosen."""
        if not self.channels_last:
            return t
        if isinstance(t, torch.Tensor):
            return t.contiguous(memory_format=torch.channels_last)  # type: ignore[return-value]
        return t.to(memory_format=torch.channels_last)

    def forward(
        self, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, device: torch.device
    ) -> torch.Tensor:
        """The training step's ``fn(x)``: ``x`` in the layout chosen, under autocast, the
        output back in float32 for the loss."""
        with self.autocast(device):
            return fn(self.layout(x)).float()


FP32 = SpeedSettings(bf16=False, channels_last=False)  # PyTorch's default: how figures are scored


def bf16_supported(device: torch.device) -> bool:
    """Whether ``device`` runs bfloat16 natively: a CUDA GPU that has it, a CPU whose
    oneDNN kernels take it (AVX-512 and newer, as ``torch.ops.mkldnn`` reports)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def choose_settings(
    model_name: str,
    device: torch.device,
    precision: str = "auto",
    channels_last: str = "auto",
    image_size: int | None = None,
) -> SpeedSettings:
    """Resolve ``--precision auto|fp32|bf16`` and ``--channels-last auto|on|off`` for
    ``model_name`` trained on ``image_size`` px images (None: the size is not known). Every
    training command takes 2-D images (the 1-D and 3-D models are refused before this)."""
    if precision not in ("auto", "fp32", "bf16"):
        raise CnnlabError(f"--precision must be auto, fp32 or bf16, got {precision!r}")
    if channels_last not in ("auto", "on", "off"):
        raise CnnlabError(f"--channels-last must be auto, on or off, got {channels_last!r}")
    dense = model_name.startswith(DENSE)
    if model_name.startswith(SMALL_INPUT_SLOWER) and image_size is not None:
        dense = dense and image_size >= SMALL_INPUT
    depthwise = model_name.startswith(DEPTHWISE)
    if precision == "bf16" and not bf16_supported(device):
        raise CnnlabError(f"--precision bf16: not supported on {device}")
    bf16 = precision == "bf16" or (precision == "auto" and dense and bf16_supported(device))
    cl = (dense or depthwise) if channels_last == "auto" else channels_last == "on"
    return SpeedSettings(bf16=bf16, channels_last=cl)
