"""The slide "Neural network example" table for any model: per layer the activation shape, the
activation size and the number of parameters, plus multiply-accumulates (MACs), with totals.

It runs one forward pass of a zero input with hooks on the layers, so the shapes are the ones the
real model produces. MACs per layer:

* ``ConvNd``: ``output elements * (C_in / groups) * prod(kernel)`` (slide "Normal Convolution":
  #filter params x #filter positions x #filters);
* ``ConvTransposeNd``: ``input elements * (C_out / groups) * prod(kernel)``;
* ``Linear``: ``output elements * in_features``;
* any module with a ``macs(input_shape, output_shape)`` method: what it says;
* everything else (activations, pooling, normalisation): 0, by the usual convention.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LayerRow:
    """One row of the summary table."""

    name: str  # the module's path in the model, e.g. "features.conv1"
    kind: str  # the module's class, e.g. "Conv2d"
    shape: tuple[int, ...]  # activation shape without the batch dimension, PyTorch order (C, H, W)
    size: int  # number of activation values
    params: int  # parameters owned by this layer (trainable or not)
    macs: int

    @property
    def slide_shape(self) -> tuple[int, ...]:
        """The shape in the slides' channels-last order: (H, W, C), (L, C) or (D, H, W, C)."""
        return (*self.shape[1:], self.shape[0]) if len(self.shape) >= 2 else self.shape


@dataclass(frozen=True)
class ModelSummary:
    """A model's layer table and totals."""

    model: str
    input_shape: tuple[int, ...]
    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    total_macs: int
    notes: tuple[str, ...] = ()  # what forward does between the layers (:func:`forward_notes`)

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "input_shape": list(self.input_shape),
            "rows": [asdict(r) | {"slide_shape": list(r.slide_shape)} for r in self.rows],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "total_macs": self.total_macs,
            "notes": list(self.notes),
        }


def _slide(shape: tuple[int, ...]) -> str:
    """``(C, H, W)`` as the slides write it, ``112x112x16``."""
    return "x".join(map(str, (*shape[1:], shape[0]) if len(shape) >= 2 else shape))


def forward_notes(
    input_shape: tuple[int, ...],
    first_input: tuple[int, ...] | None,
    rows: list[LayerRow],
    output: tuple[int, ...] | None,
) -> tuple[str, ...]:
    """What the table's rows cannot show: a ``forward`` that changes the input before its
    first layer (the padded U-Net pads 100x100 to a multiple of 16) or returns other than its
    last layer's values (the U-Net cuts them back to 100x100, an ensemble joins its members');
    sizes compared by their number of values, so a flatten or a normalisation says nothing."""
    notes = []
    if first_input is not None and math.prod(first_input) != math.prod(input_shape):
        notes.append(
            f"the first layer receives {_slide(first_input)}, not the {_slide(input_shape)} "
            "input: the model's forward changes it before any layer (a U-Net pads it to a "
            "size every pooling halves)"
        )
    if output is not None and rows and math.prod(output) != rows[-1].size:
        notes.append(
            f"the model returns {_slide(output)}, not its last layer's "
            f"{_slide(rows[-1].shape)}: its forward makes the output out of the layers' values "
            "(a U-Net cuts its padding away, an ensemble joins its members' embeddings)"
        )
    return tuple(notes)


def layer_macs(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    """Multiply-accumulates of one call of ``module`` for one sample (see the module docstring)."""
    per_sample_out = out[0].numel() if out.dim() > 0 else 1
    if hasattr(module, "macs"):
        return int(module.macs(inp.shape, out.shape))
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        k = int(torch.tensor(module.kernel_size).prod())
        return inp[0].numel() * (module.out_channels // module.groups) * k
    if isinstance(module, nn.modules.conv._ConvNd):
        k = int(torch.tensor(module.kernel_size).prod())
        return per_sample_out * (module.in_channels // module.groups) * k
    if isinstance(module, nn.Linear):
        return per_sample_out * module.in_features
    return 0


def summarize(
    model: nn.Module, input_shape: tuple[int, ...], name: str = "", show_all: bool = False
) -> ModelSummary:
    """Trace ``model`` on a zero tensor of ``(1, *input_shape)`` and tabulate its layers.

    Rows are layers in execution order. Unless ``show_all``, a layer is shown only when it has
    parameters or changes the number of activation values (so ReLU, Dropout and Flatten are
    folded away, as on the slide). Raises ``RuntimeError`` from the model when the input does not
    fit it.
    """
    rows: list[LayerRow] = []
    counted: set[int] = set()
    handles = []

    def own_params(module: nn.Module) -> int:
        total = 0
        for p in module.parameters(recurse=False):
            if id(p) not in counted:
                counted.add(id(p))
                total += p.numel()
        return total

    first_input: list[tuple[int, ...]] = []

    def hook(module: nn.Module, args: tuple, out: object, path: str) -> None:
        if not args or not isinstance(args[0], torch.Tensor) or not isinstance(out, torch.Tensor):
            return
        inp = args[0]
        if not first_input:
            first_input.append(tuple(inp.shape[1:]))
        params = own_params(module)
        changes = out[0].numel() != inp[0].numel()
        if show_all or params or changes:
            rows.append(
                LayerRow(
                    path,
                    type(module).__name__,
                    tuple(out.shape[1:]),
                    out[0].numel(),
                    params,
                    layer_macs(module, inp, out),
                )
            )

    for path, module in model.named_modules():
        is_leaf = not any(True for _ in module.children())
        has_own = any(True for _ in module.parameters(recurse=False))
        if path and (is_leaf or has_own or hasattr(module, "macs")):
            handles.append(
                module.register_forward_hook(lambda m, a, o, path=path: hook(m, a, o, path))
            )
    was_training = model.training
    try:
        model.eval()
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        with torch.no_grad():
            out = model(torch.zeros(1, *input_shape, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return ModelSummary(
        model=name or type(model).__name__,
        input_shape=tuple(input_shape),
        rows=rows,
        total_params=sum(p.numel() for p in model.parameters()),
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        total_macs=sum(r.macs for r in rows),
        notes=forward_notes(
            tuple(input_shape),
            first_input[0] if first_input else None,
            rows,
            tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else None,
        ),
    )
