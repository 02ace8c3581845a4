"""Where a training run writes: a new ``runs/<task>/run-N`` folder, claimed atomically so no
earlier run is overwritten, and released again when the command fails before the run saved a
checkpoint in it (so a failed start leaves no folder that looks like a run but holds none).

Kept free of torch so the command line can import it before any model is built."""

from __future__ import annotations

import shutil
import time
import warnings
from pathlib import Path

_claimed: list[Path] = []  # the folders this process created with next_run_dir, newest last


def next_run_dir(root: Path, name: str) -> Path:
    """Create and return ``root/name``, or ``root/name-2``, ``-3``... so an earlier run is never
    overwritten. The folder is claimed by creating it (an atomic ``mkdir``), so two runs started
    at the same moment, in two shells or by one script, never share a folder."""
    root.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        candidate = root / (name if n == 1 else f"{name}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            n += 1
            continue
        _claimed.append(candidate)
        return candidate


def run_folder(out: str, task: str, warn: bool = True) -> Path:
    """The folder a run writes: ``out`` when given (the user's choice, reused as is, with
    :func:`warn_if_reused` unless ``warn`` is false: a caller that checks more of its input
    first warns later), else a new ``runs/<task>/run``, ``run-2``, ``run-3``... beside earlier
    runs."""
    if not out:
        return next_run_dir(Path("runs") / task, "run")
    return warn_if_reused(Path(out)) if warn else Path(out)


def warn_if_reused(out: Path) -> Path:
    """``out``, after a warning when it already holds a run's checkpoints (``best.pt``,
    ``last.pt``): a new run there writes over them. The user named the folder, so it is theirs
    to reuse (``make demo`` twice); the warning says what goes, and how to keep it."""
    earlier = [out / name for name in ("best.pt", "last.pt") if (out / name).is_file()]
    if earlier:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(earlier[-1].stat().st_mtime))
        names = " and ".join(p.name for p in earlier)
        them = "them" if len(earlier) > 1 else "it"
        warnings.warn(
            f"{out} holds an earlier run ({names} of {when}); this run writes over {them} "
            f"(leave out --out, or name another folder, to keep {them})",
            stacklevel=3,
        )
    return out


def newest_checkpoint(task: str, root: Path = Path("runs")) -> Path | None:
    """The most recently written ``best.pt`` under ``root/task`` (a hint for a command that
    was not given one), or ``None``."""
    found = (root / task).glob("**/best.pt") if (root / task).is_dir() else ()
    return max(found, key=lambda p: p.stat().st_mtime, default=None)


def checkpoint_hint(task: str, what: str = "run") -> str:
    """``a run's best.pt, e.g. runs/classify/demo/best.pt, the newest run here``: what to pass
    as ``--checkpoint``; ``what`` names the kind of run in the example."""
    newest = newest_checkpoint(task)
    example = f", e.g. {newest}, the newest {what} here" if newest else ""
    return f"a run's best.pt{example}"


def forget_claims() -> None:
    """Keep every folder claimed so far (a command that finished: its runs are the user's)."""
    _claimed.clear()


def release_unfinished_claims() -> None:
    """Remove the folders claimed since :func:`forget_claims` that hold no checkpoint (``*.pt``)
    yet, with what the failed run wrote there (its ``config.json``, say).

    Only folders :func:`next_run_dir` created in this process are touched, never an ``--out``
    the user named, and never one with a checkpoint: a run stopped after its first epoch keeps
    its ``last.pt`` for ``--resume``."""
    while _claimed:
        folder = _claimed.pop()
        if folder.is_dir() and not any(folder.rglob("*.pt")):
            shutil.rmtree(folder, ignore_errors=True)
