"""A small model registry: ``register_model`` / ``create_model`` / ``list_models``.

Builders are plain functions with keyword-only arguments. ``create_model(name, **overrides)``
passes overrides straight to the builder and rejects any the builder does not accept, naming the
ones it does; nothing is dropped silently.

Importing it does not import torch (the model families are loaded on first lookup), so the
command line's parser, which names the tasks below, answers ``--help`` without waiting for torch.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cnnlab.config import kind_mismatch
from cnnlab.errors import CnnlabError
from cnnlab.words import with_article

if TYPE_CHECKING:
    from torch import nn

Builder = Callable[..., "nn.Module"]

# what a model's forward returns: class scores, or one task's raw output
TASKS = ("classification", "localization", "detection", "segmentation", "embedding")


@dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one model."""

    name: str
    builder: Builder
    input_size: tuple[int, ...]  # default input (C, H, W) without the batch dimension
    paper: str  # citation shown by `cnnlab models`
    task: str = "classification"  # what forward returns: class scores, or a task's raw output

    def parameters(self) -> list[str]:
        """Names of the keyword arguments the builder accepts."""
        return list(inspect.signature(self.builder).parameters)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str, *, input_size: tuple[int, ...], paper: str = "", task: str = "classification"
) -> Callable[[Builder], Builder]:
    """Decorator adding a builder to the registry under ``name``."""

    def decorate(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        if task not in TASKS:
            raise ValueError(f"model {name!r}: task {task!r} is not one of {TASKS}")
        positional = [
            p.name
            for p in inspect.signature(builder).parameters.values()
            if p.kind not in (p.KEYWORD_ONLY, p.VAR_KEYWORD)
        ]
        if positional:
            raise TypeError(f"builder {name!r} must take keyword-only arguments: {positional}")
        _REGISTRY[name] = ModelEntry(name, builder, tuple(input_size), paper, task)
        return builder

    return decorate


def get_model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; a :class:`CnnlabError` naming close matches otherwise."""
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        from cnnlab.words import nearest

        hint = nearest(name, _REGISTRY, n=3) or "; see `cnnlab models`"
        raise CnnlabError(f"unknown model {name!r}{hint}") from None


def require_task(name: str, task: str, option: str = "--model") -> ModelEntry:
    """The entry of ``name`` when its model does ``task``; otherwise a :class:`CnnlabError`
    listing the models that do (a detector named where a classifier belongs, say)."""
    entry = get_model_entry(name)
    if entry.task != task:
        raise CnnlabError(
            f"{option} {name}: {with_article(entry.task)} model, not {with_article(task)} one "
            f"(`cnnlab models --task {task}` lists them)"
        )
    return entry


def create_model(name: str, **overrides: object) -> nn.Module:
    """Build a registered model. ``overrides`` go to the builder; unknown ones are an error."""
    entry = get_model_entry(name)
    accepted = entry.parameters()
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise CnnlabError(
            f"model {name!r} does not accept {', '.join(unknown)}; "
            f"it accepts: {', '.join(accepted) or 'no overrides'}"
        )
    for key, value in overrides.items():
        check_override(name, key, value, inspect.signature(entry.builder).parameters[key])
    return entry.builder(**overrides)


# overrides checked by name (the builders' vocabulary): the least an integer may be, ...
_AT_LEAST = {
    "num_classes": 1,
    "in_channels": 1,
    "embedding_dim": 1,
    "base_width": 1,
    "depth": 1,
    "input_size": 1,
    "kernel_size": 1,
    "pool_size": 1,
    "num_landmarks": 0,
    "members": 2,
}
_FRACTIONS = ("dropout", "drop_path_rate")  # probabilities in [0, 1)
_POSITIVE = ("width_mult", "resolution_mult")  # multipliers > 0
_CHOICES = {"upsample": ("transpose", "bilinear")}  # U-Net's decoder


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and value == value


def check_override(name: str, key: str, value: object, parameter: inspect.Parameter) -> None:
    """A :class:`CnnlabError` for an override the builder would build wrong or fail on deep
    inside (``base_width=0``: a 4-parameter U-Net; ``anchors=()``: a YOLO head predicting
    nothing; ``dropout=-0.1``: torch's ValueError). Checked by the parameter's name and the
    kind its annotation names (:func:`cnnlab.config.kind_mismatch`); a value equal to the
    default passes (``dropout=None``)."""
    default = parameter.default
    if value is default or (type(value) is type(default) and value == default):
        return
    kind = str(parameter.annotation)  # a string: the builders' modules postpone annotations
    bad = ""
    if key in _AT_LEAST and not (_is_int(value) and value >= _AT_LEAST[key]):
        bad = f"an integer >= {_AT_LEAST[key]}"
    elif key in _FRACTIONS and not (_is_number(value) and 0 <= value < 1):
        bad = "a number in [0, 1)"
    elif key in _POSITIVE and not (_is_number(value) and value > 0):
        bad = "a number > 0"
    elif key == "widths" and not (
        isinstance(value, tuple | list) and value and all(_is_int(w) and w >= 1 for w in value)
    ):
        bad = "a non-empty sequence of integers >= 1"
    elif key == "anchors" and not (
        isinstance(value, tuple | list)
        and value
        and all(
            isinstance(a, tuple | list) and len(a) == 2 and all(_is_number(v) and v > 0 for v in a)
            for a in value
        )
    ):
        bad = "a non-empty sequence of (width, height) pairs > 0"
    elif key in _CHOICES and value not in _CHOICES[key]:
        bad = " or ".join(_CHOICES[key])
    else:  # any other: of the kind its annotation names (bool, str, int, float), as settings are
        bad = kind_mismatch(kind, value)
    if bad:
        raise CnnlabError(f"model {name!r}: {key} must be {bad}, got {value!r}")


def list_models(pattern: str = "*", task: str | None = None) -> list[str]:
    """Registered model names matching a shell-style ``pattern`` (and ``task``), sorted; a
    pattern without wildcards matches the names containing it (``"cifar"``: every
    ``cifar_*``, as a search box does)."""
    import fnmatch

    if not any(c in pattern for c in "*?["):
        pattern = f"*{pattern}*"

    if task is not None and task not in TASKS:
        raise CnnlabError(f"unknown task {task!r}; tasks are {', '.join(TASKS)}")
    _ensure_loaded()
    return sorted(
        n for n, e in _REGISTRY.items() if fnmatch.fnmatch(n, pattern) and task in (None, e.task)
    )


def _ensure_loaded() -> None:
    """Import the model families so their decorators have run."""
    import cnnlab.models  # noqa: F401
