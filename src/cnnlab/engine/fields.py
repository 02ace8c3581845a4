"""Receptive fields along every branch of a forward pass.

The slides' recursion for a chain of layers, ``r_l = r + (k_eff - 1) j``,
``start_l = start + ((k_eff - 1) / 2 - p) j``, ``j_l = j s`` (``k_eff = d (k - 1) + 1``), holds
for LeNet, AlexNet or VGG, where each layer takes the previous one's output. A ResNet block adds
two branches (two 3x3 convolutions, and a strided 1x1 shortcut), an Inception module
concatenates four: taking the layers in execution order would chain the shortcut's stride onto
the block's own and double the jump at every downsampling (ResNet-18's last jump came out 256
instead of 32).

:class:`FieldTracker` follows each feature map instead. Every torch call of the forward pass is
seen (a :class:`~torch.overrides.TorchFunctionMode`), and each output map gets the field of the
maps it was made from:

* convolution, max and average pooling: the recursion above; a transposed convolution
  (stride s) divides the jump by s (:meth:`Field.transposed`: a field covering each output
  phase); resizing (``F.interpolate``) scales it;
* a sum, product or concatenation of maps of one size: the union of their fields;
* a map reduced to 1x1 (global pooling): the whole image; a product with it (a
  squeeze-and-excitation gate) makes every unit of the map see the whole image
  (:attr:`Field.whole`), while :attr:`Field.rf` keeps the window its spatial detail comes from;
* slicing rows and columns (U-Net's cropped skip connections) and padding move the start;
  anything else that keeps the map's size (normalisation, activations) keeps the field.

Maps that lose their rows and columns (flattening, fully connected layers) are no longer
followed. Fields are square: kernels, strides and paddings are read on the first axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch.overrides import TorchFunctionMode


@dataclass(frozen=True)
class Field:
    """The input pixels the units of one feature map see: ``rf`` wide, neighbouring units
    ``jump`` pixels apart, unit 0 centred at input coordinate ``start``; ``whole``: each unit
    also sees the whole image (through a global pool)."""

    rf: float
    jump: float
    start: float
    whole: bool = False

    def through(self, kernel: int, stride: int, padding: float, dilation: int = 1) -> Field:
        """This map through a convolution or pooling window (the slides' recursion)."""
        k_eff = dilation * (kernel - 1) + 1
        return replace(
            self,
            rf=self.rf + (k_eff - 1) * self.jump,
            jump=self.jump * stride,
            start=self.start + ((k_eff - 1) / 2 - padding) * self.jump,
        )

    def transposed(self, kernel: int, stride: int, padding: int, dilation: int = 1) -> Field:
        """This map through a transposed convolution: output unit ``o`` gathers the input units
        ``i`` with ``o = i s - p + t``, ``0 <= t < k_eff``, which lie in an interval of
        ``(k_eff - 1) / s`` input units centred at ``(o + p - (k_eff - 1) / 2) / s``: the
        recursion on the finer output grid (``j' = j / s``, ``r' = r + (k_eff - 1) j'``).
        Note: the interval holds ``ceil`` or ``floor`` of its width in units, by the output's
        phase, so the field is the smallest one covering every phase (up-conv 2x2: each output
        unit sees one input unit, the field spans ``j / 2`` more)."""
        k_eff = dilation * (kernel - 1) + 1
        jump = self.jump / stride
        return replace(
            self,
            rf=self.rf + (k_eff - 1) * jump,
            jump=jump,
            start=self.start + (padding - (k_eff - 1) / 2) * jump,
        )

    def resized(self, scale: float, mode: str, align_corners: bool | None) -> Field:
        """This map resized by ``scale`` (``F.interpolate``): nearest neighbours keep each unit's
        field, linear interpolation joins two neighbours'."""
        # half-pixel centres: output o at input (o + 0.5) / scale - 0.5; with align_corners
        # the first output unit sits on the first input unit
        shift = 0.0 if align_corners else 0.5 / scale - 0.5
        start = self.start + shift * self.jump
        extra = 0.0 if mode == "nearest" else self.jump
        return replace(self, rf=self.rf + extra, jump=self.jump / scale, start=start)

    def shifted(self, rows: float) -> Field:
        """The map with its first ``rows`` rows (and columns) cut off (negative: padded)."""
        return replace(self, start=self.start + rows * self.jump)


def union(fields: list[Field]) -> Field | None:
    """The field of a map computed from maps of one size (a sum, product or concatenation):
    each unit sees what the units at its place in all of them see; ``None`` when their units
    are not aligned (different jumps)."""
    if len({f.jump for f in fields}) > 1:
        return None
    lo = min(f.start - (f.rf - 1) / 2 for f in fields)
    hi = max(f.start + (f.rf - 1) / 2 for f in fields)
    return Field(hi - lo + 1, fields[0].jump, (lo + hi) / 2, any(f.whole for f in fields))


_POOLS = {"max_pool2d", "_max_pool2d", "max_pool2d_with_indices", "avg_pool2d"}


def _arg(args: tuple, kwargs: dict, i: int, name: str, default: Any) -> Any:
    """Argument ``name``, given at position ``i`` or by keyword."""
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


def _first(v: Any) -> Any:
    return v[0] if isinstance(v, tuple | list) else v


def _tensors(value: Any) -> list[torch.Tensor]:
    """The tensors in an argument (a tensor, or a list or tuple of them, as ``torch.cat``'s)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _tensors(v)]
    return []


class FieldTracker(TorchFunctionMode):
    """Inside ``with FieldTracker(x):``, every feature map computed from ``x (N, C, H, W)``
    carries its :class:`Field`; :meth:`field` reads it (``None`` for a tensor not followed)."""

    def __init__(self, x: torch.Tensor) -> None:
        super().__init__()
        # id -> (field, the tensor itself): kept alive, so that no other tensor takes its id
        self._fields: dict[int, tuple[Field, torch.Tensor]] = {id(x): (Field(1, 1, 0.0), x)}

    def field(self, t: torch.Tensor) -> Field | None:
        held = self._fields.get(id(t))
        return held[0] if held is not None and held[1] is t else None

    def __torch_function__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        maps = [t for t in _tensors(args) + _tensors(list(kwargs.values())) if t.dim() == 4]
        known = [(t, f) for t in maps if (f := self.field(t)) is not None]
        if known:
            for t in _tensors(out):
                if t.dim() == 4 and (f := self._made(func, args, kwargs, known, t)) is not None:
                    self._fields[id(t)] = (f, t)
        return out

    @staticmethod
    def _made(
        func: Any,
        args: tuple,
        kwargs: dict,
        known: list[tuple[torch.Tensor, Field]],
        out: torch.Tensor,
    ) -> Field | None:
        """The field of ``out``, made by ``func`` from the followed maps ``known``."""
        name = getattr(func, "__name__", "")
        source, field = known[0]
        size, out_size = tuple(source.shape[-2:]), tuple(out.shape[-2:])
        if name == "conv2d":
            kernel = args[1].shape[-1]
            stride = _first(_arg(args, kwargs, 3, "stride", 1))
            padding = _first(_arg(args, kwargs, 4, "padding", 0))
            dilation = _first(_arg(args, kwargs, 5, "dilation", 1))
            if padding == "valid":
                padding = 0
            elif padding == "same":
                padding = dilation * (kernel - 1) / 2
            return field.through(kernel, stride, padding, dilation)
        if name in _POOLS:
            kernel = _first(_arg(args, kwargs, 1, "kernel_size", None))
            stride = _first(_arg(args, kwargs, 2, "stride", None)) or kernel
            padding = _first(_arg(args, kwargs, 3, "padding", 0))
            dilation = _first(_arg(args, kwargs, 4, "dilation", 1)) if "max" in name else 1
            return field.through(kernel, stride, padding, dilation)
        if name == "conv_transpose2d":
            kernel = args[1].shape[-1]
            stride = _first(_arg(args, kwargs, 3, "stride", 1))
            padding = _first(_arg(args, kwargs, 4, "padding", 0))
            dilation = _first(_arg(args, kwargs, 7, "dilation", 1))
            return field.transposed(kernel, stride, padding, dilation)
        if name == "interpolate":
            mode = _arg(args, kwargs, 3, "mode", "nearest")
            align = _arg(args, kwargs, 4, "align_corners", None)
            return field.resized(out_size[0] / size[0], mode, align)
        if name == "pad":
            pads = _arg(args, kwargs, 1, "pad", ())
            return field.shifted(-pads[2] if len(pads) >= 4 else -pads[0])
        if name == "__getitem__" and out_size != size:
            return _sliced(field, args[1], size)
        if out_size == (1, 1) and size != (1, 1):  # a global pool: the whole image
            return replace(field, whole=True)
        if name.startswith("adaptive_") and out_size != size:  # windows of about size / out
            return field.through(math.ceil(size[0] / out_size[0]), size[0] // out_size[0], 0)
        aligned = [f for t, f in known if tuple(t.shape[-2:]) == out_size]
        gates = [f for t, f in known if tuple(t.shape[-2:]) == (1, 1) and out_size != (1, 1)]
        if len(aligned) + len(gates) == len(known) and aligned:
            joined = union(aligned)  # a residual sum, a concatenation, or one map kept as is
            if joined is not None and any(g.whole for g in gates):  # a squeeze-excite gate
                joined = replace(joined, whole=True)
            return joined
        return None


def _sliced(field: Field, index: Any, size: tuple[int, int]) -> Field | None:
    """The field after ``map[index]`` when it cuts rows (and columns) with steps of 1."""
    index = index if isinstance(index, tuple) else (index,)
    dots = [k for k, i in enumerate(index) if i is Ellipsis]
    if dots:  # x[..., a:b, c:d]: the slices count from the last axis
        at = dots[0]
        index = index[:at] + (slice(None),) * (5 - len(index)) + index[at + 1 :]
    rows = index[2] if len(index) > 2 else slice(None)
    if not isinstance(rows, slice) or rows.step not in (None, 1):
        return None
    return field.shifted(rows.indices(size[0])[0])
