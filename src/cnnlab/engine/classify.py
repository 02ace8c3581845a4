"""Training, evaluation and prediction for image classification.

The digits fit in memory, so batches are sliced from tensors on the device (no DataLoader):
an epoch of LeNet-5 on 1,257 images takes a fraction of a second on a CPU.
"""

from __future__ import annotations

import csv
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from cnnlab.config import ClassifyTrainConfig
from cnnlab.data.digits import CLASS_NAMES, Split, load_digits_splits
from cnnlab.engine.checkpoint import save_checkpoint
from cnnlab.engine.device import resolve_device
from cnnlab.errors import CnnlabError
from cnnlab.registry import create_model, get_model_entry


@dataclass
class EvalResult:
    """Loss, accuracy and confusion matrix (rows: true class, columns: predicted) of one split."""

    loss: float
    accuracy: float
    confusion: torch.Tensor  # (classes, classes) int64
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "loss": self.loss,
            "accuracy": self.accuracy,
            "count": self.count,
            "confusion": self.confusion.tolist(),
        }


@dataclass
class TrainResult:
    """What a training run produced."""

    run_dir: Path
    best_epoch: int
    best_val_accuracy: float
    test: EvalResult
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "best_epoch": self.best_epoch,
            "best_val_accuracy": self.best_val_accuracy,
            "test_accuracy": self.test.accuracy,
            "test_loss": self.test.loss,
            "test_count": self.test.count,
            "seconds": round(self.seconds, 2),
        }


def load_dataset(name: str, image_size: int, split_seed: int) -> tuple[dict[str, Split], list[str]]:
    """The splits and class names of a dataset named in :data:`cnnlab.config.DATASETS`."""
    if name == "digits":
        return load_digits_splits(image_size=image_size, split_seed=split_seed), CLASS_NAMES
    raise CnnlabError(f"unknown dataset {name!r}")


def next_run_dir(root: Path, name: str) -> Path:
    """``root/name``, or ``root/name-2``, ``-3``... so an earlier run is never overwritten."""
    candidate, n = root / name, 1
    while candidate.exists():
        n += 1
        candidate = root / f"{name}-{n}"
    return candidate


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels in each direction, filling with the
    background value (the image's minimum). ``(B, C, H, W) -> (B, C, H, W)``."""
    if max_shift == 0:
        return x
    b, _, h, w = x.shape
    pad = max_shift
    fill = float(x.amin())
    padded = F.pad(x, (pad, pad, pad, pad), value=fill)
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


@torch.no_grad()
def evaluate(
    model: nn.Module, split: Split, num_classes: int, device: torch.device, batch_size: int = 512
) -> EvalResult:
    """Mean cross-entropy, accuracy and confusion matrix of ``model`` on ``split``."""
    model.eval()
    total_loss, confusion = 0.0, torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for start in range(0, len(split), batch_size):
        x = split.images[start : start + batch_size].to(device)
        y = split.labels[start : start + batch_size].to(device)
        logits = model(x)
        total_loss += F.cross_entropy(logits, y, reduction="sum").item()
        pred = logits.argmax(1)
        confusion += torch.bincount(
            (y * num_classes + pred).cpu(), minlength=num_classes * num_classes
        ).view(num_classes, -1)
    n = max(len(split), 1)
    return EvalResult(total_loss / n, confusion.diag().sum().item() / n, confusion, len(split))


def train_classifier(config: ClassifyTrainConfig, console: Console | None = None) -> TrainResult:
    """Train ``config.model`` on ``config.data`` and write a run folder.

    The folder holds ``config.json`` (the resolved config), ``last.pt`` and ``best.pt`` (by
    validation accuracy), ``metrics.csv`` (one row per epoch), ``curves.png`` and
    ``confusion_matrix.png`` (test split, best checkpoint) and ``results.json``.
    """
    from cnnlab.viz.plots import plot_confusion_matrix, plot_training_curves

    console = console or Console(stderr=True)
    started = time.perf_counter()
    device = resolve_device(config.device)
    entry = get_model_entry(config.model)
    splits, class_names = load_dataset(config.data, config.image_size, config.split_seed)
    in_channels = splits["train"].images.shape[1]
    model_kwargs = {"num_classes": len(class_names), "in_channels": in_channels}
    model_kwargs = {k: v for k, v in model_kwargs.items() if k in entry.parameters()}

    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = create_model(config.model, **model_kwargs).to(device)
    run_dir = (
        Path(config.out)
        if config.out
        else next_run_dir(
            Path("runs/classify"), re.sub(r"[^\w.-]", "_", f"{config.model}-{config.data}")
        )
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(
        json.dumps(
            config.to_dict() | {"model_kwargs": model_kwargs, "device_resolved": str(device)},
            indent=2,
        )
        + "\n"
    )

    train = splits["train"]
    x_train, y_train = train.images.to(device), train.labels.to(device)
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    warmup = max(1, min(steps_per_epoch, total_steps // 10))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min(
            (step + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(step / total_steps, 1.0)))
        ),
    )

    history: list[dict[str, float]] = []
    best_acc, best_epoch = -1.0, 0
    base = {
        "model": config.model,
        "model_kwargs": model_kwargs,
        "config": config.to_dict(),
        "class_names": class_names,
        "input_size": list(train.images.shape[1:]),
    }
    columns = [
        TextColumn("[bold]epoch {task.completed}/{task.total}"),
        BarColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("train", total=config.epochs, stats="")
        for epoch in range(1, config.epochs + 1):
            model.train()
            order = torch.randperm(len(train), generator=generator).to(device)
            loss_sum, correct = 0.0, 0
            for start in range(0, len(train), config.batch_size):
                idx = order[start : start + config.batch_size]
                x, y = x_train[idx], y_train[idx]
                if config.augment:
                    x = random_shift(x, config.shift, generator)
                logits = model(x)
                loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                loss_sum += loss.item() * len(y)
                correct += (logits.argmax(1) == y).sum().item()
            val = evaluate(model, splits["val"], len(class_names), device)
            row = {
                "epoch": epoch,
                "train_loss": loss_sum / len(train),
                "train_accuracy": correct / len(train),
                "val_loss": val.loss,
                "val_accuracy": val.accuracy,
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": time.perf_counter() - started,
            }
            history.append(row)
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            payload = base | {"state_dict": state, "epoch": epoch, "metrics": row}
            save_checkpoint(run_dir / "last.pt", payload | {"optimizer": optimizer.state_dict()})
            if val.accuracy > best_acc:
                best_acc, best_epoch = val.accuracy, epoch
                save_checkpoint(run_dir / "best.pt", payload)
            _write_metrics(run_dir / "metrics.csv", history)
            progress.update(
                task,
                advance=1,
                stats=(
                    f"loss {row['train_loss']:.3f}  acc {row['train_accuracy']:.3f}  "
                    f"val_acc {val.accuracy:.3f}"
                ),
            )

    from cnnlab.engine.checkpoint import model_from_checkpoint

    best_model, _ = model_from_checkpoint(run_dir / "best.pt")
    test = evaluate(best_model.to(device), splits["test"], len(class_names), device)
    plot_training_curves(history, run_dir / "curves.png")
    plot_confusion_matrix(
        test.confusion,
        class_names,
        run_dir / "confusion_matrix.png",
        title=f"{config.model} on {config.data} test split (accuracy {test.accuracy:.2%})",
    )
    result = TrainResult(
        run_dir, best_epoch, best_acc, test, time.perf_counter() - started, history
    )
    (run_dir / "results.json").write_text(
        json.dumps(result.to_dict() | {"test_confusion": test.confusion.tolist()}, indent=2) + "\n"
    )
    return result


def _write_metrics(path: Path, history: list[dict[str, float]]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    tmp.replace(path)
