"""LeNet-5 in three forms.

* ``lenet5``: the modern reading (ReLU, max pooling, fully connected layers) used to train on
  digits.
* ``lenet5_classic``: LeCun, Bottou, Bengio & Haffner, 1998, "Gradient-based learning applied to
  document recognition", as published: scaled tanh, trainable subsampling layers S2/S4, the C3
  partial connection table (Table I), and Euclidean RBF output units. Exactly 60,000 trainable
  parameters.
* ``lenet_course``: the slide "Neural network example": 32x32x3 -> CONV 5x5x8 -> POOL ->
  CONV 5x5x16 -> POOL -> FC120 -> FC84 -> 10.

All three take ``(B, C, 32, 32)`` and return class scores ``(B, num_classes)``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.registry import register_model

LECUN_1998 = "LeCun et al., 1998. Gradient-based learning applied to document recognition"


class LeNet5(nn.Module):
    """Modern LeNet-5: conv5-6, pool, conv5-16, pool, FC120, FC84, FC ``num_classes``.

    Shapes for a 32x32 input: ``(B, C, 32, 32) -> conv1 (B, 6, 28, 28) -> pool1 (B, 6, 14, 14)
    -> conv2 (B, 16, 10, 10) -> pool2 (B, 16, 5, 5) -> fc (B, 120) -> (B, 84) -> (B, classes)``.

    Note: departs from the paper in ReLU (not scaled tanh), max pooling (not trainable
    subsampling), a full C3 (not the partial table) and a linear classifier (not RBF units).
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        num_classes: int = 10,
        widths: tuple[int, int] = (6, 16),
        hidden: tuple[int, int] = (120, 84),
    ) -> None:
        super().__init__()
        c1, c2 = widths
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(in_channels, c1, 5),
                relu1=nn.ReLU(inplace=True),
                pool1=nn.MaxPool2d(2, 2),
                conv2=nn.Conv2d(c1, c2, 5),
                relu2=nn.ReLU(inplace=True),
                pool2=nn.MaxPool2d(2, 2),
            )
        )
        self.head = nn.Sequential(
            OrderedDict(
                flatten=nn.Flatten(),
                fc1=nn.Linear(c2 * 5 * 5, hidden[0]),
                relu3=nn.ReLU(inplace=True),
                fc2=nn.Linear(hidden[0], hidden[1]),
                relu4=nn.ReLU(inplace=True),
                fc3=nn.Linear(hidden[1], num_classes),
            )
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, 32, 32) -> (B, 16, 5, 5)``."""
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, 16, 5, 5) -> (B, num_classes)`` logits."""
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class ScaledTanh(nn.Module):
    """LeCun's squashing ``f(a) = A tanh(S a)``, ``A = 1.7159``, ``S = 2/3`` (appendix A)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.7159 * torch.tanh(x * (2.0 / 3.0))


class Subsampling(nn.Module):
    """S2/S4 of LeNet-5: each map's 2x2 non-overlapping sums times a trainable coefficient plus a
    trainable bias (2 parameters per map). ``(B, C, H, W) -> (B, C, H/2, W/2)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.avg_pool2d(x, 2) * 4.0  # sum of the four inputs
        return pooled * self.weight[:, None, None] + self.bias[:, None, None]

    def macs(self, input_shape: torch.Size, output_shape: torch.Size) -> int:
        return int(torch.Size(output_shape[1:]).numel())


# Table I of the paper: which S2 maps (rows 0-5) each C3 map (columns 0-15) takes as input.
C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2),
    (1, 2, 3),
    (2, 3, 4),
    (3, 4, 5),
    (0, 4, 5),
    (0, 1, 5),
    (0, 1, 2, 3),
    (1, 2, 3, 4),
    (2, 3, 4, 5),
    (0, 3, 4, 5),
    (0, 1, 4, 5),
    (0, 1, 2, 5),
    (0, 1, 3, 4),
    (1, 2, 4, 5),
    (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


class PartialConv2d(nn.Module):
    """A convolution where output map ``j`` sees only the input maps in ``table[j]`` (C3 of
    LeNet-5: 60 of the 96 possible connections, 1,516 trainable parameters).

    Only the connected 5x5 kernels are parameters (``weight (connections, k, k)``); the forward pass
    scatters them into a dense ``(out, in, k, k)`` kernel with zeros elsewhere and runs ``conv2d``.
    """

    def __init__(
        self, in_channels: int, table: tuple[tuple[int, ...], ...], kernel_size: int = 5
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, len(table), kernel_size
        pairs = [(j, i) for j, inputs in enumerate(table) for i in inputs]
        self.register_buffer("out_index", torch.tensor([j for j, _ in pairs]), persistent=False)
        self.register_buffer("in_index", torch.tensor([i for _, i in pairs]), persistent=False)
        self.maps_in = tuple(len(inputs) for inputs in table)  # input maps of each output map
        self.weight = nn.Parameter(torch.empty(len(pairs), kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(len(table)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The paper's init: U(-2.4/F, 2.4/F), F the output map's fan-in (inputs x k x k).

        Each output map's kernels are contiguous rows of ``weight``, filled in place by
        ``nn.init``, which :func:`cnnlab.models.shapes.shapes_only` skips on the meta device.
        """
        start = 0
        for n in self.maps_in:
            fan_in = n * self.kernel_size**2
            nn.init.uniform_(self.weight[start : start + n], -2.4 / fan_in, 2.4 / fan_in)
            start += n
        nn.init.zeros_(self.bias)

    def dense_weight(self) -> torch.Tensor:
        """The ``(out, in, k, k)`` kernel with zeros for unconnected map pairs."""
        k = self.kernel_size
        w = self.weight.new_zeros(self.out_channels, self.in_channels, k, k)
        return w.index_put((self.out_index, self.in_index), self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.dense_weight(), self.bias)

    def macs(self, input_shape: torch.Size, output_shape: torch.Size) -> int:
        positions = int(output_shape[-1] * output_shape[-2])
        return positions * self.weight.numel()


class RBFOutput(nn.Module):
    """Euclidean radial-basis output units: ``y_i = sum_j (x_j - w_ij)^2`` (eq. 7 of the paper).

    Returns ``-y`` so that the highest score is the best class and cross-entropy applies.
    Note: the paper hand-designs the ``w_i`` as stylised 7x12 bitmaps of the characters (+1/-1)
    and keeps them fixed; we keep them fixed too (a buffer, not trainable) but draw the +-1 codes
    from a fixed random generator, since the bitmaps were not published.
    """

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1998)
        # drawn on the CPU, then moved: the same codes wherever the model is built, and no
        # arithmetic on meta tensors (`cnnlab models` builds every model on the meta device)
        codes = torch.randint(0, 2, (num_classes, in_features), generator=g, device="cpu")
        self.register_buffer("prototypes", (codes * 2.0 - 1.0).to(torch.get_default_device()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -torch.cdist(x, self.prototypes).pow(2)

    def macs(self, input_shape: torch.Size, output_shape: torch.Size) -> int:
        return int(self.prototypes.numel())


class LeNet5Classic(nn.Module):
    """LeNet-5 as published (LeCun et al. 1998, section II.B).

    ``C1`` 6@28x28 (156 params) -> ``S2`` 6@14x14 (12) -> ``C3`` 16@10x10 (1,516, Table I) ->
    ``S4`` 16@5x5 (32) -> ``C5`` 120@1x1 (48,120) -> ``F6`` 84 (10,164) -> RBF output (fixed).
    Trainable parameters: 60,000. Input ``(B, 1, 32, 32)``.
    """

    def __init__(self, *, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                c1=nn.Conv2d(in_channels, 6, 5),
                act1=ScaledTanh(),
                s2=Subsampling(6),
                act2=ScaledTanh(),
                c3=PartialConv2d(6, C3_TABLE, 5),
                act3=ScaledTanh(),
                s4=Subsampling(16),
                act4=ScaledTanh(),
                c5=nn.Conv2d(16, 120, 5),
                act5=ScaledTanh(),
            )
        )
        self.head = nn.Sequential(
            OrderedDict(
                flatten=nn.Flatten(),
                f6=nn.Linear(120, 84),
                act6=ScaledTanh(),
                output=RBFOutput(84, num_classes),
            )
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, 32, 32) -> (B, 120, 1, 1)`` (C5)."""
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, 120, 1, 1) -> (B, num_classes)``: negative squared RBF distances."""
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class LeNetCourse(LeNet5):
    """The slide "Neural network example": ``(32,32,3) -> CONV1 5x5, 8 filters -> POOL1 2x2 s2 ->
    CONV2 5x5, 16 filters -> POOL2 -> FC3 120 -> FC4 84 -> softmax 10``.

    Per-layer parameters as on the slide: ``(5*5*3 + 1)*8 = 608``, ``(5*5*8 + 1)*16 = 3,216``,
    ``5*5*16*120 + 120 = 48,120``, ``120*84 + 84 = 10,164``, ``84*10 + 10 = 850``.
    The softmax is applied by the loss; the model returns logits.
    """

    def __init__(self, *, in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__(in_channels=in_channels, num_classes=num_classes, widths=(8, 16))


@register_model("lenet5", input_size=(1, 32, 32), paper=LECUN_1998 + " (modern reading)")
def lenet5(*, in_channels: int = 1, num_classes: int = 10) -> LeNet5:
    """Modern LeNet-5 (ReLU, max pooling); see :class:`LeNet5`."""
    return LeNet5(in_channels=in_channels, num_classes=num_classes)


@register_model("lenet5_classic", input_size=(1, 32, 32), paper=LECUN_1998)
def lenet5_classic(*, in_channels: int = 1, num_classes: int = 10) -> LeNet5Classic:
    """LeNet-5 as published, 60,000 trainable parameters; see :class:`LeNet5Classic`."""
    return LeNet5Classic(in_channels=in_channels, num_classes=num_classes)


@register_model(
    "lenet_course", input_size=(3, 32, 32), paper="Course slide 'Neural network example'"
)
def lenet_course(*, in_channels: int = 3, num_classes: int = 10) -> LeNetCourse:
    """The slide's LeNet-like example network; see :class:`LeNetCourse`."""
    return LeNetCourse(in_channels=in_channels, num_classes=num_classes)
