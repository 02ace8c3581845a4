"""Using a registered classifier as a backbone: find its classification head and drop it.

Task models (localisation, detection, Siamese encoders) call ``forward_features`` of a
registered classifier; its own head would hold parameters that never run, so
:func:`build_backbone` replaces the head's layers with ``nn.Identity``.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from cnnlab.errors import CnnlabError, out_of_memory
from cnnlab.registry import create_model, get_model_entry, require_task


def head_parameter_names(model: nn.Module, input_size: tuple[int, ...]) -> set[str]:
    """Names of the parameters ``forward_head`` uses, found by back-propagating from the head
    alone on a ``meta`` copy (shapes only, no memory)."""
    # the backbone under no_grad (no graph kept through it: the head's gradients alone name
    # its parameters), in eval (dropout draws no masks; each mode uses the same parameters)
    ghost = copy.deepcopy(model).to("meta").eval()
    with input_must_fit(type(model).__name__, input_size):
        with torch.no_grad():
            feats = ghost.forward_features(torch.zeros(2, *input_size, device="meta"))
        # enable_grad: callers may sit inside no_grad (loading for prediction)
        with torch.enable_grad():
            ghost.forward_head(feats.requires_grad_()).sum().backward()
    return {n for n, p in ghost.named_parameters() if p.grad is not None}


def check_input_fits(model: nn.Module, input_size: tuple[int, ...], name: str) -> None:
    """One forward pass of a ``meta`` copy (shapes only): an input size the model cannot take
    is a :class:`CnnlabError` before any training starts."""
    ghost = copy.deepcopy(model).to("meta").eval()
    with input_must_fit(name, input_size), torch.no_grad():
        ghost(torch.zeros(1, *input_size, device="meta"))


def check_batch_of_one(
    model: nn.Module,
    input_size: tuple[int, ...],
    batch_size: int,
    name: str,
    forward: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
    processes: int = 1,
) -> None:
    """Batches of one image (``--batch-size 1``, or 1 per process) for a model whose batch norm
    would meet a 1x1 map (ResNet-18's last stage at 32 px: one value per channel has no batch
    statistics) are a :class:`CnnlabError` before training, not batch norm's ``ValueError`` at
    the first step. ``model`` in the mode it trains in (frozen norms in eval);
    ``forward(model, x)`` when not ``model(x)``."""
    if batch_size // processes != 1:
        return
    ghost = copy.deepcopy(model).to("meta")
    x = torch.zeros(1, *input_size, device="meta")
    try:
        with torch.no_grad():
            forward(ghost, x) if forward is not None else ghost(x)
    except ValueError:  # "Expected more than 1 value per channel when training"
        over = f" over {processes} processes" if processes > 1 else ""
        raise CnnlabError(
            f"--batch-size {batch_size}{over}: {name}'s batch norm meets 1x1 maps at "
            f"{'x'.join(map(str, input_size))} and cannot train on one image per batch; use "
            f"{2 * processes} or more"
        ) from None


@contextlib.contextmanager
def input_must_fit(
    name: str, input_size: Sequence[int], option: str = "--image-size"
) -> Iterator[None]:
    """Turn the ``RuntimeError`` of a forward pass on an input the model cannot take (a 5x5
    kernel over a 4x4 map, a head made for another size), or batch norm's ``ValueError`` (a 3-D
    volume net given an image), into one :class:`CnnlabError` line naming the size, the one
    the model was made for, and the ``option`` that sets it."""
    try:
        yield
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:160]
        size = "x".join(map(str, input_size))
        memory = out_of_memory(exc) if isinstance(exc, RuntimeError) else None
        if memory is not None:  # the input fits the layers, not the memory of the device
            raise CnnlabError(
                f"{size} inputs to {name}: out of memory ({memory}); a smaller {option}"
            ) from None
        raise CnnlabError(
            f"{size} inputs do not fit {name} ({_made_for(name)}another {option}?): {first}"
        ) from None


def _made_for(name: str) -> str:
    """``made for 1x32x32; `` for a registered model, else nothing."""
    try:
        return f"made for {'x'.join(map(str, get_model_entry(name).input_size))}; "
    except CnnlabError:  # a class name (head_parameter_names) or an unregistered model
        return ""


def require_images(name: str, input_size: tuple[int, ...], option: str = "--model") -> None:
    """A :class:`CnnlabError` unless the model takes images ``(C, H, W)`` (``conv1d_net`` and
    ``conv3d_net``, the slides' 1-D and 3-D convolutions, take signals and volumes)."""
    if len(input_size) != 3:
        shape = "x".join(map(str, input_size))
        raise CnnlabError(
            f"{option} {name} takes {shape} inputs ({len(input_size) - 1}-D data), not images "
            f"(`cnnlab summary {name}` walks its shapes)"
        )


def build_backbone(
    name: str, in_channels: int, input_size: int, **kwargs: object
) -> tuple[nn.Module, tuple[int, ...]]:
    """A registered classifier without its head, and its feature map's ``(C, H, W)`` at
    ``input_size``. The head is found at the classifier's own input size, where it fits even
    when it only takes one (LeNet-5's first FC layer wants 16x5x5 features, from 32 px); the
    features themselves may come from any size the convolutions take."""
    entry = require_task(name, "classification", "--backbone")
    require_images(name, entry.input_size, "--backbone")
    if "in_channels" in entry.parameters():
        kwargs["in_channels"] = in_channels
    model = create_model(name, **kwargs)
    shape = (in_channels, input_size, input_size)
    for pname in head_parameter_names(model, (in_channels, *entry.input_size[1:])):
        path = pname.rsplit(".", 1)[0]
        parent_path, _, child = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        setattr(parent, child, nn.Identity())
    return model, feature_shape(name, model, shape)


def feature_shape(name: str, model: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    """``(C, H, W)`` of ``model.forward_features`` on one ``shape`` input, found on the meta
    device (no memory, no arithmetic); an input the model cannot take is an error naming it."""
    with torch.device("meta"):
        ghost = copy.deepcopy(model).to("meta").eval()
        with input_must_fit(name, shape):
            return tuple(ghost.forward_features(torch.zeros(1, *shape)).shape[1:])
