"""Reading ``.pt``/``.pth`` files safely: tensors and plain values only (``weights_only=True``),
and every way a file can fail to load becomes one :class:`CnnlabError` line naming it."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from cnnlab.errors import CnnlabError


def load_torch_file(path: str | Path, what: str = "checkpoint file") -> Any:
    """``torch.load(weights_only=True)`` on CPU; a missing, truncated or refused file is a
    :class:`CnnlabError` naming it (``what``: "checkpoint file" or "weights file")."""
    path = Path(path)
    if path.is_dir():  # a run folder given for its checkpoint
        held = [name for name in ("best.pt", "last.pt") if (path / name).is_file()]
        hint = f"; it holds {' and '.join(held)}: give one of them" if held else ""
        raise CnnlabError(f"{path}: a folder, not a {what}{hint}")
    if not path.is_file():
        raise CnnlabError(f"{path}: no such {what}")
    try:
        with warnings.catch_warnings():  # garbage read as a pickle "protocol 220" warns first
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # whatever a file's bytes make the loader raise: unreadable
        # (a metrics.csv given as a checkpoint made the unpickler raise IndexError, a traceback)
        raise CnnlabError(f"{path}: not a readable {what} ({_unreadable(path, exc)})") from None


def _unreadable(path: Path, exc: Exception) -> str:
    """Why ``torch.load`` could not read ``path``: empty; not a PyTorch file at all (it saves a
    zip archive, or before PyTorch 1.6 a pickle: a notes.txt made the unpickler raise a bare
    ``KeyError: 101``); refused by the weights-only loader (a pickle of code, not tensors); or
    cut short or damaged (then the loader's first line)."""
    with path.open("rb") as f:
        head = f.read(8)
    if not head:
        return "an empty file"
    if not head.startswith((b"PK", b"\x80")):  # a zip archive's or a pickle's first bytes
        return f"not a PyTorch file: it begins {head!r}"
    text = str(exc).strip()
    if "WeightsUnpickler error:" in text:  # torch's message is a paragraph; keep its reason
        detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0]
        detail = detail.split(". ")[0][:120]  # "Unsupported global: GLOBAL print was not ..."
        return f"the weights-only loader refused it: {detail}; only tensors and plain values load"
    first = text.splitlines()[0] if text else ""
    # PyTorch's C++ checks append "(Could this error message be improved? ...)"
    first = first.split("(Could this error message")[0].strip()
    # and miniz's "... This is an internal miniz error. If you are seeing this error, ..."
    first = first.split(". This is an internal")[0]
    if "central directory" in first:  # a zip archive's index is written last, at its end
        first += " (its end is missing: a save or copy that did not finish)"
    if not any(c.isalpha() for c in first):  # "101", "" or "(0,)": at least name the error
        first = f"{type(exc).__name__}: {first}".rstrip(": ")
    return f"truncated or corrupt: {first[:160]}"
