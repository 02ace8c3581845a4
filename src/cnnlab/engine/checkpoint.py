"""Checkpoints: written atomically, read with ``weights_only=True``.

A checkpoint is a plain dict of tensors and primitive values:
``{"format": FORMAT, "model": name, "model_kwargs": {...}, "state_dict": ..., "config": {...},
"epoch": int, "metrics": {...}, "class_names": [...]}`` (plus ``optimizer`` in ``last.pt``).
Nothing in it can run code when loaded.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.registry import create_model, get_model_entry
from cnnlab.torchfile import load_torch_file
from cnnlab.words import counted, with_article

FORMAT = "cnnlab.checkpoint/1"
REQUIRED = ("format", "model", "model_kwargs", "state_dict")


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` via a temporary file in the same folder and a rename, so a
    crash mid-write never leaves a truncated checkpoint in place of a good one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint safely; a missing, truncated or foreign file is a :class:`CnnlabError`."""
    ckpt = load_torch_file(path, "checkpoint file")
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CnnlabError(f"{path}: not a cnnlab checkpoint{_what_else(ckpt, path)}")
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise CnnlabError(f"{path}: checkpoint lacks {', '.join(missing)}")
    kinds = {"model": str, "model_kwargs": dict, "state_dict": dict}
    wrong = [k for k, kind in kinds.items() if not isinstance(ckpt[k], kind)]
    if "class_names" in ckpt and not (
        isinstance(ckpt["class_names"], list)
        and all(isinstance(n, str) for n in ckpt["class_names"])
    ):
        wrong.append("class_names")
    if "input_size" in ckpt and not (
        isinstance(ckpt["input_size"], list | tuple)
        and len(ckpt["input_size"]) > 0
        and all(isinstance(d, int) and d > 0 for d in ckpt["input_size"])
    ):
        wrong.append("input_size")
    channels = ckpt["input_size"][0] if "input_size" in ckpt and not wrong else None
    if "normalization" in ckpt and not _is_normalization(ckpt["normalization"], channels):
        wrong.append("normalization")
    if wrong:
        raise CnnlabError(f"{path}: checkpoint has a malformed {', '.join(wrong)}")
    return ckpt


def _what_else(loaded: object, path: str | Path) -> str:
    """What a file that is not a cnnlab checkpoint holds instead, when it is bare weights (a
    state dict, tensors by name, as torchvision's ``.pth`` files are): no model, classes or
    input size to evaluate or predict with, but a run can start from them."""
    if not (
        isinstance(loaded, dict)
        and loaded
        and all(isinstance(v, torch.Tensor) for v in loaded.values())
    ):
        return f" (no '{FORMAT}' format tag)"
    return (
        f" but bare weights ({counted(len(loaded), 'tensor')} by name, as torchvision's .pth "
        f"files hold: no model, classes or input size); a run can start from them: train "
        f"--pretrained {path}"
    )


def _is_normalization(norm: object, channels: int | None) -> bool:
    """``{"mean": [...], "std": [...]}``: one number a channel (``channels`` of them, when
    known), each standard deviation > 0."""
    if not isinstance(norm, dict):
        return False
    mean, std = norm.get("mean"), norm.get("std")
    numbers = (int, float)
    return (
        isinstance(mean, list | tuple)
        and isinstance(std, list | tuple)
        and len(mean) == len(std) > 0
        and channels in (None, len(mean))
        and all(isinstance(m, numbers) and not isinstance(m, bool) for m in mean)
        and all(isinstance(d, numbers) and not isinstance(d, bool) and d > 0 for d in std)
    )


# the command that trains a model of each registered task, for the error that names it
TRAINED_BY = {
    "classification": "cnnlab classify train",
    "localization": "cnnlab localize train",
    "detection": "cnnlab detect train",
    "segmentation": "cnnlab segment train",
    "embedding": "cnnlab faces train",
}


def check_task(ckpt: dict[str, Any], path: str | Path, task: str) -> None:
    """Refuse a checkpoint whose model does another task than the command needs (a face encoder
    given to ``classify predict``, say) with one line instead of a ``KeyError`` later."""
    made = get_model_entry(ckpt["model"]).task
    if made != task:
        raise CnnlabError(
            f"{path}: {with_article(made)} checkpoint (model {ckpt['model']!r}), "
            f"not {with_article(task)} one; make one with {TRAINED_BY[task]}"
        )


def model_from_checkpoint(
    path: str | Path, task: str | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the registered model a checkpoint was saved from and load its weights; with
    ``task``, refuse a checkpoint of another task (:func:`check_task`)."""
    ckpt = load_checkpoint(path)
    if task is not None:
        check_task(ckpt, path, task)
    model = create_model(ckpt["model"], **ckpt["model_kwargs"])
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:  # torch: a header line, then one line per mismatch
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = lines[min(1, len(lines) - 1)][:160]
        raise CnnlabError(
            f"{path}: weights do not fit model {ckpt['model']!r} ({detail})"
        ) from None
    classes = ckpt.get("class_names")
    n_classes = ckpt["model_kwargs"].get("num_classes")
    if classes is not None and n_classes is not None and n_classes != len(classes):
        raise CnnlabError(f"{path}: {len(classes)} class names for a model of {n_classes} classes")
    return model, ckpt
