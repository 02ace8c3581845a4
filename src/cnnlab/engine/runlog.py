"""What every training loop shares: the epoch progress bar, the metrics CSV, the per-epoch
``last.pt`` / ``best.pt`` checkpoints, early stopping (``--patience``), the fingerprints of the
data splits that let evaluation tell when the data changed since training, and the error that
stops a run whose loss is no longer finite. (:mod:`cnnlab.engine.run_folders`: the folder a run
writes.)"""

from __future__ import annotations

import csv
import hashlib
import math
import warnings
from collections.abc import Mapping, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn

from cnnlab.errors import CnnlabError
from cnnlab.progress import ProgressBar
from cnnlab.words import counted


def epoch_progress(console: Console, disable: bool = False, unit: str = "epoch") -> ProgressBar:
    """A progress bar showing ``unit n/N``, a bar, a ``stats`` text field and elapsed time."""
    columns = [
        TextColumn(f"[bold]{unit} {{task.completed}}/{{task.total}}"),
        BarColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
    ]
    return ProgressBar(*columns, console=console, disable=disable)


def announce(
    console: Console,
    model: str,
    module: torch.nn.Module,
    input_size: Sequence[int],
    data: str,
    device: torch.device,
    how: str,
    start_epoch: int = 1,
    last_epoch: int | None = None,
) -> None:
    """One line before the first step, so a run says what it is before it takes minutes:

    ``lenet5: 61,706 parameters, 1x32x32 inputs | digits: 10 classes, 1,257 train / 270 val /
    270 test images | cpu, fp32``

    ``data`` from :func:`describe_data`; ``how`` the precision and layout
    (:meth:`SpeedSettings.describe <cnnlab.engine.performance.SpeedSettings.describe>`);
    ``start_epoch`` past 1: a resumed run, said at the end (past ``last_epoch``, the last the
    run trains, its end or where ``--patience`` stopped it: a finished run, whose resumption
    trains nothing and scores it again)."""
    total = sum(p.numel() for p in module.parameters())
    trained = sum(p.numel() for p in module.parameters() if p.requires_grad)
    params = f"{total:,} parameters" + (f" ({trained:,} trained)" if trained != total else "")
    shape = "x".join(str(int(n)) for n in input_size)
    resumed = f" | resumed at epoch {start_epoch}" if start_epoch > 1 else ""
    if last_epoch is not None and start_epoch > last_epoch:
        resumed = " | resumed a finished run: nothing left to train, scored again"
    line = f"{model}: {params}, {shape} inputs | {data} | {device}, {how}{resumed}"
    console.print(escape(line))


SPLIT_ORDER = ("train", "val", "test")


def describe_data(
    name: str, classes: int, splits: Mapping[str, Sized], noun: str = "images"
) -> str:
    """``digits: 10 classes, 1,257 train / 270 val / 270 test images`` from the splits (their
    images, or index tensors into them): empty ones left out; train, val, test in that order,
    whatever the order of ``splits``."""
    order = sorted(splits, key=lambda k: SPLIT_ORDER.index(k) if k in SPLIT_ORDER else 3)
    counts = " / ".join(f"{len(splits[k]):,} {k}" for k in order if len(splits[k]))
    return f"{name}: {counted(classes, 'class', 'classes')}, {counts} {noun}"


def write_rows(
    path: str | Path, rows: Sequence[dict[str, Any]], header: Sequence[str] = ()
) -> Path:
    """Write one CSV row per dict via a temporary file and a rename. The columns: ``header``,
    else every key of the rows in order of appearance; a value a row lacks is left empty."""
    path = Path(path)
    header = list(header) or list(dict.fromkeys(k for r in rows for k in r))
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, restval="")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
    return path


class DataChangedWarning(UserWarning):
    """The dataset a checkpoint names is no longer the one it was trained on."""


def fingerprint(*tensors: torch.Tensor) -> str:
    """A short SHA-1 of tensors' bytes (a split's uint8 images, its labels): equal exactly when
    they hold the same values in the same order."""
    h = hashlib.sha1()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def batch_slices(order: torch.Tensor, batch_size: int, smallest: int = 2) -> list[torch.Tensor]:
    """``order`` (a permutation of a split's indices) cut into training batches of
    ``batch_size``, a last batch of fewer than ``smallest`` joined to the one before it: batch
    norm cannot train on a single image whose maps are 1x1 (a ResNet's last stage at 32 px), and
    a batch of one would say nothing about the batch's statistics anyway."""
    chunks = list(order.split(batch_size))
    if len(chunks) > 1 and len(chunks[-1]) < smallest:
        chunks[-2:] = [torch.cat(chunks[-2:])]
    return chunks


def batches_per_epoch(n: int, batch_size: int, smallest: int = 2, warn: bool = False) -> int:
    """How many batches :func:`batch_slices` cuts ``n`` images into (a scheduler's steps);
    with ``warn`` (a new run), a warning when ``batch_size`` is more than ``n``: every epoch
    is then a single step of all of them, seldom what was meant."""
    if warn and batch_size > n:
        warnings.warn(
            f"--batch-size {batch_size:,} is more than the {counted(n, 'training image')}: "
            "each epoch is one step of all of them",
            stacklevel=2,
        )
    return len(batch_slices(torch.arange(n), batch_size, smallest))


def data_changed(ckpt: dict[str, Any], split: str, *tensors: torch.Tensor) -> bool | None:
    """Whether ``split``, made again for evaluation, differs from the one the checkpoint was
    trained with (``None`` for checkpoints older than the fingerprints); warns when it does,
    since the figures could then count images the model trained on."""
    trained_on = ckpt.get("data_fingerprint", {}).get(split)
    if trained_on is None:
        return None
    changed = trained_on != fingerprint(*tensors)
    if changed:
        warnings.warn(
            f"the {split} split made again now differs from the one this checkpoint was trained "
            "with (images added, removed or changed since?); its figures may count images the "
            "model trained on",
            DataChangedWarning,
            stacklevel=2,
        )
    return changed


def one_cycle(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup: float = 0.1
) -> torch.optim.lr_scheduler.OneCycleLR:
    """The one-cycle schedule (Smith & Topin 2019): ``warmup`` of the steps rising to each
    parameter group's own ``lr`` as the optimizer was given it (a pretrained backbone's lower,
    :func:`~cnnlab.engine.transfer.backbone_groups`), then cosine decay. torch divides by the
    warm-up's length, ``warmup * total_steps - 1``: at exactly 0 (10 steps in all at 10%:
    ``detect train --images 200 --epochs 2``) that was a ``ZeroDivisionError``; the warm-up is
    then made half a step longer. A single step in all was taken at the schedule's very end,
    ``lr / 25 / 10^4`` (a one-epoch run of one batch trained nothing); it is taken as the first
    of two, near the peak, instead."""
    total = max(total_steps, 2)
    if abs(warmup * total - 1) < 1e-9:
        warmup = 1.5 / total
    peaks = [group["lr"] for group in optimizer.param_groups]
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, peaks, total_steps=total, pct_start=warmup
    )


def improves(score: float, best: float) -> bool:
    """Whether an epoch's validation ``score`` makes a new ``best.pt`` (:func:`save_epoch`): the
    first epoch's always does, and any epoch's after a best that is no number (NaN, which no
    score is greater than, would otherwise keep the first epoch best for the whole run)."""
    return best == -math.inf or math.isnan(best) or score > best


@dataclass
class EarlyStop:
    """``--patience N``: stop after the epoch that leaves the best validation score N epochs
    behind ("stop when the validation error has not improved for N epochs", Prechelt 1998); 0
    trains every epoch. ``best.pt`` already holds the best epoch, so stopping only saves the
    time the remaining epochs would take. Its state goes into ``last.pt`` (:meth:`state`): a
    resumed run stops where the unbroken run would have, and one that stopped stays stopped."""

    patience: int
    best_epoch: int = 0
    stopped_at: int | None = None

    @classmethod
    def resumed(cls, patience: int, ckpt: dict[str, Any] | None) -> EarlyStop:
        if ckpt is None:
            return cls(patience)
        return cls(patience, int(ckpt.get("best_epoch", 0)), ckpt.get("stopped_at"))

    def last_epoch(self, epochs: int) -> int:
        """The last epoch to train: ``epochs``, or the one a resumed run had stopped at."""
        return epochs if self.stopped_at is None else self.stopped_at

    def update(self, epoch: int, improved: bool) -> bool:
        """After ``epoch``: whether to stop now."""
        if improved:
            self.best_epoch = epoch
        if self.patience and epoch - self.best_epoch >= self.patience:
            self.stopped_at = epoch
        return self.stopped_at is not None

    def state(self) -> dict[str, Any]:
        return {"best_epoch": self.best_epoch, "stopped_at": self.stopped_at}

    def note(self, score: str) -> str:
        return (
            f"stopped at epoch {self.stopped_at}: no better validation {score} since epoch "
            f"{self.best_epoch} (--patience {self.patience})"
        )


def save_epoch(
    out: Path,
    base: dict[str, Any],
    model: Any,
    rows: list[dict[str, Any]],
    score: float,
    best: float,
    resumable: dict[str, Any] | None = None,
) -> float:
    """After an epoch: write ``best.pt`` when ``score`` beats ``best``, then ``last.pt`` (``base``
    + weights + the epoch's metrics row, and for ``--resume`` the rows so far, the best score
    and ``resumable``: :func:`cnnlab.engine.resume.resumable_state`), and ``metrics.csv``;
    return the new best. Start with ``best = -inf``: the first epoch always writes ``best.pt``,
    whatever its score, so a ``best.pt`` left in the folder by an earlier run is never taken
    for this run's."""
    from cnnlab.engine.checkpoint import save_checkpoint

    payload = base | {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "epoch": rows[-1]["epoch"],
        "metrics": rows[-1],
    }
    if improves(score, best):
        save_checkpoint(Path(out) / "best.pt", payload)
        best = score
    last = payload | {"history": rows, "best_score": best} | (resumable or {})
    save_checkpoint(Path(out) / "last.pt", last)
    write_rows(Path(out) / "metrics.csv", rows)
    return best


def optimizer_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    where: str,
    bf16: bool,
    last: Path | None = None,
) -> float:
    """One training step on ``loss``: stop with :func:`diverged` when it is NaN or infinite
    (before it reaches the weights), else zero the gradients, backpropagate, step the optimizer
    and the schedule. Returns the loss's value."""
    value = loss.item()
    if not math.isfinite(value):
        raise diverged(value, where, bf16, last)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    return value


def diverged(loss: float, where: str, bf16: bool, last: Path | None = None) -> CnnlabError:
    """The error for a loss that became NaN or infinite at ``where`` ("epoch 2, step 4"), with
    what may help (fp32 when the run trained in bfloat16, else a lower learning rate) and, when
    there is one, the last checkpoint saved before it."""
    hint = (
        "it trained in bfloat16: --precision fp32 may hold, or a lower --lr"
        if bf16
        else "a lower --lr may hold"
    )
    kept = f". The last good checkpoint is {last}" if last is not None and last.is_file() else ""
    return CnnlabError(f"loss became {loss} at {where}; stopped ({hint}){kept}")
