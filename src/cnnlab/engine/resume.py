"""Continuing a training run from its ``last.pt``, exactly where it stopped.

Every training loop writes ``last.pt`` after each epoch. Beside the weights it holds what the
next epoch needs to run as it would have in an uninterrupted run (:func:`resumable_state`): the
optimizer's moments, the learning-rate schedule's step, the metrics rows so far, the best
validation score, and the random number generators' states (shuffling, mirroring and kornia's
augmentations draw from them). :func:`restore` puts all of it back, so a run killed at any
moment and resumed ends, on the CPU with a fixed seed, with the very weights of a run that was
never stopped. Under torchrun every rank's generator is kept (:func:`rank_states`), since each
draws its own augmentation. The run's own settings come from the checkpoint (:func:`config_of`);
only the device may change.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import torch
from rich.console import Console

from cnnlab.engine.checkpoint import check_task, load_checkpoint
from cnnlab.engine.distributed import DistInfo, gather_from_ranks
from cnnlab.errors import CnnlabError

C = TypeVar("C")
RESUMABLE = ("optimizer", "scheduler", "rng")  # what last.pt has and best.pt lacks


def rng_state(generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """The CPU (and, where there is one, CUDA) generator states, and ``generator``'s."""
    state = {"torch": torch.get_rng_state()}
    if generator is not None:
        state["generator"] = generator.get_state()
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> None:
    """Undo :func:`rng_state`: the generators draw next what they would have drawn then."""
    torch.set_rng_state(state["torch"])
    if generator is not None:
        generator.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def resumable_state(
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator | None = None,
) -> dict[str, Any]:
    """The keys :data:`RESUMABLE` for ``last.pt``, taken at the end of an epoch."""
    return {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(generator),
    }


def load_resumable(path: str | Path, task: str) -> dict[str, Any]:
    """A run's ``last.pt`` of ``task``; a checkpoint of another task, or a ``best.pt`` (which
    has no optimizer state), is a one-line error."""
    ckpt = load_checkpoint(path)
    check_task(ckpt, path, task)  # a detector's last.pt given to segment: say what it is
    if any(key not in ckpt for key in RESUMABLE) or not isinstance(ckpt.get("config"), dict):
        raise CnnlabError(f"{path}: not a resumable checkpoint (use a run's last.pt)")
    return ckpt


def config_of(ckpt: dict[str, Any], cls: type[C], device: str = "auto") -> C:
    """The settings dataclass ``cls`` the run was started with (keys this version does not know
    are ignored), on ``device`` when that is not ``auto`` (a run started on a GPU may finish on
    the CPU, and the other way round). A setting the run's cnnlab did not have yet takes the
    value that reproduces what that version did (``cls.ADDED_LATER``), not today's default."""
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {k: v for k, v in ckpt["config"].items() if k in known}
    values = getattr(cls, "ADDED_LATER", {}) | values
    if device != "auto":
        values["device"] = device
    return cls(**values)


def restore(
    ckpt: dict[str, Any],
    path: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator | None = None,
) -> tuple[int, list[dict[str, Any]], float]:
    """Load ``last.pt``'s (at ``path``) weights and states into the freshly built run; return
    the first epoch to run, the metrics rows so far and the best score. Call it just before the
    epoch loop: it sets the random generators, which building the model and the data would
    move on. A state that does not fit the run its own settings rebuild (a ``last.pt`` of an
    older cnnlab whose model has changed, or one edited by hand) is a one-line error."""
    try:
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        set_rng_state(ckpt["rng"], generator)
        start = int(ckpt["epoch"]) + 1
        rows = [dict(row) for row in ckpt.get("history", [])]
        best = float(ckpt.get("best_score", -math.inf))
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = (lines[min(1, len(lines) - 1)] if lines else type(exc).__name__)[:160]
        raise CnnlabError(
            f"{path}: its saved state does not fit the run its settings describe ({detail})"
        ) from None
    return start, rows, best


def rank_states(info: DistInfo, device: torch.device) -> dict[str, list[torch.Tensor]]:
    """Under torchrun, every rank's generator states (each draws its own augmentation and
    dropout), for ``last.pt``; nothing for one process (:func:`rng_state` has its state)."""
    if not info.enabled:
        return {}
    states = {"torch_ranks": gather_from_ranks(torch.get_rng_state(), info, device)}
    if device.type == "cuda":
        states["cuda_ranks"] = gather_from_ranks(torch.cuda.get_rng_state(), info, device)
    return states


def set_rank_state(rng: dict[str, Any], info: DistInfo, console: Console) -> None:
    """Give this rank its own generator state back (``restore`` set rank 0's on every rank)."""
    if not info.enabled:
        return
    ranks = rng.get("torch_ranks")
    if ranks is None or len(ranks) != info.world_size:
        if info.is_main:
            saved = f"{len(ranks)} processes" if ranks is not None else "one process"
            console.print(
                f"[yellow]resumed on {info.world_size} processes a run saved with {saved}: "
                "the ranks' random draws differ from the unbroken run's[/]"
            )
        return
    torch.set_rng_state(ranks[info.rank])
    if "cuda_ranks" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda_ranks"][info.rank])


@contextlib.contextmanager
def resume_hint(last: Path, command: str) -> Iterator[None]:
    """Ctrl-C during training: the interrupt carries the command that continues from ``last``
    (written after every epoch), which the CLI prints beside "interrupted". Stopped during
    the first epoch there is nothing to continue from; a ``last.pt`` an earlier run left in a
    reused ``--out`` folder is not this run's."""

    def written() -> tuple[int, int] | None:  # save_checkpoint replaces the file: a new inode
        return (last.stat().st_ino, last.stat().st_mtime_ns) if last.is_file() else None

    before = written()
    try:
        yield
    except KeyboardInterrupt:
        if written() in (None, before):
            raise
        raise KeyboardInterrupt(
            f"`{command} --resume {last}` continues from the last finished epoch"
        ) from None
