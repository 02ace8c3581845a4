"""The bookkeeping around an epoch loop that localize, detect and segment train share: where the
run writes, what a ``--resume`` brings back, when ``--patience`` stops it, and what is saved
after each epoch. Each engine keeps only its own training step and its own figures:

    config, ckpt = resumed(config, DetectConfig, "detection", resume)
    ...build the data, model, optimizer and schedule from ``config``...
    run = EpochRun.begin("cnnlab detect train", out, base, config.patience, ckpt)
    run.restore(resume, model, opt, sched, train_images)
    started -= run.seconds_before  # the time column goes on after a resume
    with run.hint(), epoch_progress(console) as progress:
        for epoch in run.epochs(config.epochs):
            for batch in ...:  # the engine's own step, up to its loss, then:
                optimizer_step(loss, opt, sched, f"epoch {epoch}", bf16, run.saved)
            if run.end_epoch(model, row, score, opt, sched):
                break
    run.finish(console, "mAP@0.5")

(:mod:`cnnlab.engine.resume` for what ``last.pt`` holds, :mod:`cnnlab.engine.runlog` for the
training step, the checkpoints and early stopping, :mod:`cnnlab.engine.run_folders` for the
run folder.)
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from rich.console import Console

from cnnlab.engine.resume import config_of, load_resumable, restore, resumable_state, resume_hint
from cnnlab.engine.run_folders import run_folder
from cnnlab.engine.runlog import EarlyStop, announce, data_changed, improves, save_epoch

C = TypeVar("C")


def resumed(config: C, cls: type[C], task: str, resume: str | Path) -> tuple[C, dict | None]:
    """The settings to train with and, with ``resume``, its ``last.pt``: the run's own settings
    then, on the ``--device`` given (:func:`~cnnlab.engine.resume.config_of`)."""
    if not resume:
        return config, None
    ckpt = load_resumable(resume, task)
    return config_of(ckpt, cls, config.device), ckpt  # type: ignore[attr-defined]


def run_dir(out: str, task: str, resume: str | Path) -> Path:
    """A resumed run's own folder, else ``--out`` or a new ``runs/<task>/run-N``."""
    return Path(resume).parent if resume else run_folder(out, task)


@dataclass
class EpochRun:
    """One run's progress through its epochs: the metrics rows so far, the best validation score
    and the early stop, from scratch or as ``last.pt`` left them."""

    command: str  # "cnnlab detect train": what the Ctrl-C hint tells to run with --resume
    out: Path
    base: dict[str, Any]  # what every checkpoint of the run holds beside weights and epoch
    stop: EarlyStop
    start: int = 1
    rows: list[dict[str, Any]] = field(default_factory=list)
    best: float = -math.inf
    ckpt: dict[str, Any] | None = field(default=None, repr=False)  # the last.pt resumed

    @classmethod
    def begin(
        cls,
        command: str,
        out: Path,
        base: dict[str, Any],
        patience: int,
        ckpt: dict[str, Any] | None,
    ) -> EpochRun:
        """A new run, or the one ``ckpt`` (its ``last.pt``, or ``None``) continues."""
        run = cls(command, out, base, EarlyStop.resumed(patience, ckpt))
        run.ckpt = ckpt
        return run

    def restore(
        self,
        resume: str | Path,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        train_images: torch.Tensor,
    ) -> None:
        """For a resumed run (nothing otherwise): put ``last.pt``'s weights, optimizer, schedule,
        random generators, rows and best score back (call it just before the loop), and warn
        when the training split made again is not the one it trained on."""
        if self.ckpt is None:
            return
        data_changed(self.ckpt, "train", train_images)
        self.start, self.rows, self.best = restore(self.ckpt, resume, model, optimizer, scheduler)

    def announce(self, console: Console, *about: Any, epochs: int) -> None:
        """:func:`~cnnlab.engine.runlog.announce` ``(console, *about)`` for this run: where it
        resumed, or that it had finished (nothing left of its ``epochs`` to train)."""
        announce(console, *about, start_epoch=self.start, last_epoch=self.stop.last_epoch(epochs))

    @property
    def seconds_before(self) -> float:
        """Training time spent before a resume: the time column goes on from it."""
        return float(self.rows[-1]["seconds"]) if self.rows else 0.0

    @property
    def saved(self) -> Path | None:
        """This run's ``last.pt``, once it has one (not one an earlier run left in ``out``)."""
        return self.out / "last.pt" if self.rows else None

    def epochs(self, total: int) -> range:
        """The epochs left to train (none for a run ``--patience`` had stopped)."""
        return range(self.start, self.stop.last_epoch(total) + 1)

    def hint(self) -> AbstractContextManager[None]:
        return resume_hint(self.out / "last.pt", self.command)

    def end_epoch(
        self,
        model: torch.nn.Module,
        row: dict[str, Any],
        score: float,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
    ) -> bool:
        """Record the epoch's metrics ``row``, write ``best.pt`` (when ``score`` is the best
        yet), ``last.pt`` and ``metrics.csv``; return whether ``--patience`` stops the run."""
        self.rows.append(row)
        halt = self.stop.update(row["epoch"], improves(score, self.best))
        resumable = resumable_state(optimizer, scheduler) | self.stop.state()
        self.best = save_epoch(self.out, self.base, model, self.rows, score, self.best, resumable)
        return halt

    def finish(self, console: Console, score: str) -> None:
        """Say so when ``--patience`` ended the run (``score``: what the validation measured)."""
        if self.stop.stopped_at is not None:
            console.print(self.stop.note(score))
