"""Training for image classification (scoring a split: :mod:`cnnlab.engine.classify_scores`).

Datasets live in memory as uint8 tensors (:mod:`cnnlab.data.classification`); each step slices
a batch, moves it to the device, augments it there (kornia), normalises it and runs the model,
optionally in bf16 autocast and the channels-last layout (:mod:`cnnlab.engine.performance`).

A run folder holds ``config.json``, ``last.pt`` (everything needed to resume exactly: model,
optimizer, scheduler, epoch, history and RNG states) and ``best.pt`` (by validation accuracy),
``metrics.csv``, ``curves.png``, ``confusion_matrix.png``, ``mistakes.png`` and
``results.json``. ``--resume`` continues a run killed at any moment from its ``last.pt``; on
the CPU with a fixed seed it ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.markup import escape
from torch import nn

from cnnlab.config import ClassifyTrainConfig
from cnnlab.data.augment import build_augmentation, parse_augment, pca_basis
from cnnlab.data.classification import ClassificationData, Split, load_classification, normalize
from cnnlab.engine import distributed as D
from cnnlab.engine.checkpoint import model_from_checkpoint, save_checkpoint
from cnnlab.engine.class_balance import class_weights, parse_class_weights, warn_if_imbalanced
from cnnlab.engine.classify_scores import EvalResult, evaluate, mistakes_figure
from cnnlab.engine.device import resolve_device
from cnnlab.engine.performance import FP32, SpeedSettings, choose_settings
from cnnlab.engine.resume import (
    config_of,
    load_resumable,
    rank_states,
    restore,
    resume_hint,
    rng_state,
    set_rank_state,
)
from cnnlab.engine.run_folders import next_run_dir, warn_if_reused
from cnnlab.engine.runlog import (
    EarlyStop,
    announce,
    batch_slices,
    batches_per_epoch,
    data_changed,
    describe_data,
    diverged,
    epoch_progress,
    fingerprint,
    write_rows,
)
from cnnlab.engine.transfer import (
    apply_freeze,
    frozen_norms_to_eval,
    load_pretrained,
    loaded_note,
    parameter_groups,
    warn_frozen_at_random,
)
from cnnlab.errors import CnnlabError
from cnnlab.models.backbone import (
    check_batch_of_one,
    check_input_fits,
    head_parameter_names,
    require_images,
)
from cnnlab.registry import create_model, require_task
from cnnlab.words import skipped_lines

# Augmentation when --augment is auto: translations for digits (a mirrored digit is another
# symbol), mirror + crop for faces, the ImageNet-style recipe for photo folders.
AUTO_AUGMENT = {"digits": "crop", "faces": "flip,crop"}
FOLDER_AUGMENT = "flip,rcrop,color"


@dataclass
class TrainResult:
    """What a training run produced."""

    run_dir: Path
    best_epoch: int
    best_val_accuracy: float
    test: EvalResult
    seconds: float
    settings: SpeedSettings
    history: list[dict[str, float]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    stopped_at: int | None = None  # --patience ended the run after this epoch

    def to_dict(self) -> dict[str, Any]:
        figures = self.test.per_class
        return {
            "run_dir": str(self.run_dir),
            "best_epoch": self.best_epoch,
            "best_val_accuracy": self.best_val_accuracy,
            "test_accuracy": self.test.accuracy,
            "test_balanced_accuracy": figures["balanced_accuracy"],
            "test_macro_f1": figures["macro_f1"],
            "test_loss": self.test.loss,
            "test_count": self.test.count,
            "seconds": round(self.seconds, 2),
            "settings": self.settings.to_dict(),
            "skipped_files": self.skipped,
            "stopped_early_at": self.stopped_at,
        }


def data_from_config(config: ClassifyTrainConfig) -> ClassificationData:
    """The dataset a training config names, split as that config says."""
    return load_classification(
        config.data,
        image_size=config.image_size,
        channels=config.channels or None,
        split_seed=config.split_seed,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        strict=config.strict,
        resize=config.resize,
        data_root=config.data_root,
    )


def augment_names(config: ClassifyTrainConfig, data: ClassificationData) -> tuple[str, ...]:
    """The augmentations a run applies: ``--augment`` as given, or for ``auto`` the measured
    choice for the dataset (none when features are cached: they must not change)."""
    if config.augment != "auto":
        return parse_augment(config.augment)
    if config.cache_features:
        return ()
    return parse_augment(AUTO_AUGMENT.get(data.name, FOLDER_AUGMENT))


class Inputs:
    """Turns split indices into model inputs: uint8 images -> device -> augment -> normalise ->
    layout; or, with cached features, rows of the cache."""

    def __init__(
        self,
        data: ClassificationData,
        device: torch.device,
        settings: SpeedSettings,
        augment: nn.Module | None,
    ) -> None:
        self.data, self.device, self.settings, self.augment = data, device, settings, augment
        self.features: dict[str, torch.Tensor] | None = None

    def batch(
        self, split: str, idx: torch.Tensor, train: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        part = self.data.splits[split]
        labels = part.labels[idx].to(self.device)
        if self.features is not None:
            return self.features[split][idx].to(self.device), labels
        x = part.images[idx].to(self.device).float().div_(255)
        if train and self.augment is not None:
            x = self.augment(x)
        return self.settings.layout(normalize(x, self.data.mean, self.data.std)), labels

    def forward(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        with self.settings.autocast(self.device):
            out = model.forward_head(x) if self.features is not None else model(x)
        return out.float()

    @torch.no_grad()
    def cache(self, model: nn.Module, batch_size: int = 256) -> None:
        """Run the frozen backbone once over every split (``--cache-features``)."""
        model.eval()
        self.features = None
        features = {}
        for name, part in self.data.splits.items():
            chunks = []
            for start in range(0, len(part), batch_size):
                x, _ = self.batch(
                    name, torch.arange(start, min(start + batch_size, len(part))), train=False
                )
                with self.settings.autocast(self.device):
                    chunks.append(model.forward_features(x).float().cpu())
            features[name] = torch.cat(chunks) if chunks else torch.zeros(0)
        self.features = features


def _schedule(
    optimizer: torch.optim.Optimizer, steps_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over the first epoch (at most 10% of training), then cosine decay."""
    total = steps_per_epoch * epochs
    warmup = max(1, min(steps_per_epoch, total // 10))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min(
            (step + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(step / total, 1.0)))
        ),
    )


def train_classifier(
    config: ClassifyTrainConfig, console: Console | None = None, resume: str | Path = ""
) -> TrainResult:
    """Train ``config.model`` on ``config.data`` and write a run folder (see module docstring).

    ``resume``: a ``last.pt`` to continue; its own config is used and the run folder is its
    folder.
    """
    console = console or Console(stderr=True)
    started = time.perf_counter()
    ckpt: dict[str, Any] | None = None
    if resume:
        ckpt = load_resumable(resume, "classification")
        config = config_of(ckpt, ClassifyTrainConfig, config.device)
    device = resolve_device(config.device)
    dist_info = D.init_distributed(device)
    if config.batch_size < dist_info.world_size:
        raise CnnlabError(
            f"--batch-size {config.batch_size} is smaller than the {dist_info.world_size} processes"
        )
    entry = require_task(config.model, "classification")
    require_images(config.model, entry.input_size)
    data, weight = _training_data(config, console)

    generator = torch.Generator().manual_seed(config.seed)
    model, model_kwargs = _new_model(config, data, pretrained=ckpt is None, console=console)
    input_size = (data.channels, data.image_size, data.image_size)
    head = head_parameter_names(model, input_size)
    frozen = apply_freeze(model, config.freeze, input_size)
    if ckpt is None:  # resumed: warned when it began
        warn_frozen_at_random(config.freeze, config.pretrained)
    if not config.cache_features:  # cached: only the head trains, on feature vectors
        model.train()
        frozen_norms_to_eval(model)
        check_batch_of_one(
            model, input_size, config.batch_size, config.model, processes=dist_info.world_size
        )
    settings = choose_settings(
        config.model, device, config.precision, config.channels_last, image_size=input_size[-1]
    )
    settings.layout(model.to(device))
    torch.manual_seed(config.seed + dist_info.rank)  # augmentation and dropout differ per rank

    inputs, names = _inputs(config, data, model, device, settings, console)

    train = data.splits["train"]
    weight = weight.to(device) if weight is not None else None
    smallest = 2 * dist_info.world_size  # every rank's share of the last batch: >= 2 for BN
    new_run = ckpt is None and dist_info.is_main
    steps_per_epoch = batches_per_epoch(len(train), config.batch_size, smallest, new_run)
    optimizer = torch.optim.AdamW(
        parameter_groups(model, head, config.lr, config.backbone_lr_mult),
        lr=config.lr,
        weight_decay=config.weight_decay,
    )
    schedule = _schedule(optimizer, steps_per_epoch, config.epochs)
    history: list[dict[str, float]] = []
    best_acc, best_epoch, start_epoch = -1.0, 0, 1
    if ckpt is not None:
        start_epoch, history, _ = restore(ckpt, resume, model, optimizer, schedule, generator)
        set_rank_state(ckpt["rng"], dist_info, console)
        best_acc, best_epoch = ckpt.get("best_val_accuracy", -1.0), ckpt.get("best_epoch", 0)
        if history:  # the time column goes on from where the run stopped
            started -= history[-1]["seconds"]
        run_dir = Path(resume).parent
        data_changed(ckpt, "train", train.labels, train.images)  # resumed on other data: warn
    else:
        run_dir = _claim_run_dir(config, dist_info, device)
    main = dist_info.is_main
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        resolved = {
            "model_kwargs": model_kwargs,
            "device_resolved": str(device),
            "settings": settings.to_dict(),
            "augment_resolved": names,
            "frozen_parameters": len(frozen),
            "world_size": dist_info.world_size,
        }  # the settings as given, and what "auto" and the data made of them
        (run_dir / "config.json").write_text(
            json.dumps(config.to_dict() | resolved, indent=2) + "\n"
        )
    writer = _tensorboard(run_dir) if config.tensorboard and main else None
    base = {
        "model": config.model,
        "model_kwargs": model_kwargs,
        "config": config.to_dict(),
        "class_names": data.class_names,
        "input_size": list(input_size),
        "normalization": data.normalization(),
        "invert_light": data.invert_light,
        "data_fingerprint": {k: fingerprint(s.labels, s.images) for k, s in data.splits.items()},
    }

    stop = EarlyStop.resumed(config.patience, ckpt)
    if main:
        about = describe_data(config.data, len(data.class_names), data.splits)
        how = settings.describe()
        if dist_info.world_size > 1:
            how += f", {dist_info.world_size} processes"
        last = stop.last_epoch(config.epochs)
        announce(console, config.model, model, input_size, about, device, how, start_epoch, last)
    hint = resume_hint(run_dir / "last.pt", "cnnlab classify train")
    with hint, epoch_progress(console, disable=not main) as progress:
        task = progress.add_task("train", total=config.epochs, completed=start_epoch - 1, stats="")
        for epoch in range(start_epoch, stop.last_epoch(config.epochs) + 1):
            saved = run_dir / "last.pt" if history else None  # this run's, not an old one
            order = torch.randperm(len(train), generator=generator)
            batches = batch_slices(order, config.batch_size, smallest)
            try:
                loss_sum, correct, seen = train_epoch(
                    model,
                    inputs,
                    batches,
                    optimizer,
                    schedule,
                    weight,
                    config.label_smoothing,
                    dist_info,
                )
            except _NotFinite as bad:
                where = f"epoch {epoch}, step {bad.step}"
                raise diverged(bad.loss, where, settings.bf16, saved) from None
            val = evaluate(model, inputs, "val")
            row = {
                "epoch": epoch,
                "train_loss": loss_sum / seen,
                "train_accuracy": correct / seen,
                "val_loss": val.loss,
                "val_accuracy": val.accuracy,
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": time.perf_counter() - started,
            }
            history.append(row)
            improved = val.accuracy > best_acc
            if improved:
                best_acc, best_epoch = val.accuracy, epoch
            halt = stop.update(epoch, improved)
            rng = rng_state(generator) | rank_states(dist_info, device)  # every rank takes part
            if main:
                resumable = {
                    "optimizer": optimizer.state_dict(),
                    "scheduler": schedule.state_dict(),
                    "history": history,
                    "best_val_accuracy": best_acc,
                    "best_epoch": best_epoch,
                    "stopped_at": stop.stopped_at,
                    "rng": rng,
                }
                _save_epoch(run_dir, base, model, row, improved, resumable)
                write_rows(run_dir / "metrics.csv", history)
                if writer is not None:
                    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"):
                        writer.add_scalar(key, row[key], epoch)
            progress.update(
                task,
                advance=1,
                stats=(
                    f"loss {row['train_loss']:.3f}  acc {row['train_accuracy']:.3f}  "
                    f"val_acc {val.accuracy:.3f}"
                ),
            )
            if halt:
                break
    if stop.stopped_at is not None and main:
        console.print(stop.note("accuracy"))

    D.barrier(dist_info)
    best_model, _ = model_from_checkpoint(run_dir / "best.pt")
    # scored in float32 on the images themselves, as `classify eval` scores the checkpoint
    # (training and validation ran with `settings`, and on cached features where asked)
    scoring = Inputs(inputs.data, device, FP32, None)
    test = evaluate(best_model.to(device), scoring, "test")
    result = TrainResult(
        run_dir,
        best_epoch,
        best_acc,
        test,
        time.perf_counter() - started,
        settings,
        history,
        data.skipped,
        stop.stopped_at,
    )
    if main:
        _write_results(result, config, data)
    if writer is not None:
        writer.close()
    D.cleanup(dist_info)
    return result


def _training_data(
    config: ClassifyTrainConfig, console: Console
) -> tuple[ClassificationData, torch.Tensor | None]:
    """The data to train on (files it skipped named on ``console``) and the cross-entropy's
    class weights ``(classes,)`` (``None``: unweighted), from ``--class-weights`` and the
    training split's counts; a warning when the classes are imbalanced and unweighted."""
    given_weights = parse_class_weights(config.class_weights)
    data = data_from_config(config)
    for line in skipped_lines(data.skipped):
        console.print(line, markup=False, style="yellow")
    if not len(data.splits["val"]):
        raise CnnlabError("the validation split is empty; raise --val-fraction")
    train_counts = torch.bincount(data.splits["train"].labels, minlength=len(data.class_names))
    weight = class_weights(given_weights, train_counts, data.class_names)
    warn_if_imbalanced(train_counts, data.class_names, weighted=weight is not None)
    return data, weight


def _inputs(
    config: ClassifyTrainConfig,
    data: ClassificationData,
    model: nn.Module,
    device: torch.device,
    settings: SpeedSettings,
    console: Console,
) -> tuple[Inputs, tuple[str, ...]]:
    """The batches' source: the augmentation ``--augment`` names (built on the model's device),
    or with ``--cache-features`` the frozen backbone's features computed once (which rules
    augmentation out); ``model`` is on ``device`` already. Returns it and the augmentation names
    resolved."""
    names = augment_names(config, data)
    if config.cache_features and names:
        raise CnnlabError("--cache-features trains on fixed features: use --augment none")
    pca = pca_basis(data.splits["train"].images) if "pca" in names else None
    augment = build_augmentation(names, image_size=data.image_size, channels=data.channels, pca=pca)
    inputs = Inputs(data, device, settings, augment.to(device) if augment else None)
    if config.cache_features:
        t0 = time.perf_counter()
        inputs.cache(model)
        console.print(f"cached backbone features in {time.perf_counter() - t0:.1f} s")
    return inputs, names


def _new_model(
    config: ClassifyTrainConfig, data: ClassificationData, pretrained: bool, console: Console
) -> tuple[nn.Module, dict[str, Any]]:
    """``config.model`` built for the data's classes and channels from ``config.seed``, checked
    to take its ``(C, H, W)`` images, with ``config.pretrained``'s weights loaded when
    ``pretrained`` (not when resuming: the checkpoint's weights follow). Returns the model and
    the keyword arguments it was built with (saved in every checkpoint)."""
    entry = require_task(config.model, "classification")
    model_kwargs = {"num_classes": len(data.class_names), "in_channels": data.channels}
    model_kwargs = {k: v for k, v in model_kwargs.items() if k in entry.parameters()}
    torch.manual_seed(config.seed)
    model = create_model(config.model, **model_kwargs)
    input_size = (data.channels, data.image_size, data.image_size)
    check_input_fits(model, input_size, config.model)  # LeNet-5's head wants 32 px exactly
    if pretrained and config.pretrained:
        missing = load_pretrained(model, config.pretrained)
        console.print(escape(loaded_note(config.pretrained, missing)))
    return model, model_kwargs


def _claim_run_dir(
    config: ClassifyTrainConfig, dist_info: D.DistInfo, device: torch.device
) -> Path:
    """A new run's folder: ``--out``, or the next free ``runs/classify/<model>-<data>[-k]``,
    claimed by rank 0 and told to the other ranks."""
    if config.out:  # every rank writes there; rank 0 says when it holds an earlier run
        return warn_if_reused(Path(config.out)) if dist_info.is_main else Path(config.out)
    name = re.sub(r"[^\w.-]", "_", f"{config.model}-{Path(config.data).name}")
    claimed = next_run_dir(Path("runs/classify"), name) if dist_info.is_main else ""
    return Path(D.from_main(str(claimed), dist_info, device))


def _save_epoch(
    run_dir: Path,
    base: dict[str, Any],
    model: nn.Module,
    row: dict[str, float],
    improved: bool,
    resumable: dict[str, Any],
) -> None:
    """An epoch's checkpoints: ``best.pt`` when validation accuracy ``improved`` (the weights,
    ``base``'s description of the model and data, the epoch's ``row``), and always ``last.pt``,
    which adds the ``resumable`` state (optimizer, scheduler, history, RNG) ``--resume`` reads."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = base | {"state_dict": state, "epoch": row["epoch"], "metrics": row}
    if improved:
        save_checkpoint(run_dir / "best.pt", payload)
    save_checkpoint(run_dir / "last.pt", payload | resumable)


def _write_results(
    result: TrainResult, config: ClassifyTrainConfig, data: ClassificationData
) -> None:
    """The run folder's figures and ``results.json``: the loss and accuracy curves, and the
    best epoch's confusion matrix and worst mistakes on the test split (where there is one)."""
    from cnnlab.viz.plots import plot_confusion_matrix, plot_training_curves

    run_dir, test = result.run_dir, result.test
    plot_training_curves(result.history, run_dir / "curves.png")
    if test.count:  # --test-fraction 0 leaves no test split to draw
        name = f"{config.model} on {Path(config.data).name} test split"
        plot_confusion_matrix(
            test.confusion,
            data.class_names,
            run_dir / "confusion_matrix.png",
            title=f"{name} (accuracy {test.accuracy:.2%})",
        )
        mistakes_figure(
            test,
            data.splits["test"].images,
            data.class_names,
            run_dir / "mistakes.png",
            f"{name}: the worst mistakes",
        )
    (run_dir / "results.json").write_text(
        json.dumps(result.to_dict() | {"test_confusion": test.confusion.tolist()}, indent=2) + "\n"
    )


class _NotFinite(Exception):
    """A training step's loss was NaN or infinite (``step`` counted from 1)."""

    def __init__(self, loss: float, step: int) -> None:
        super().__init__(loss, step)
        self.loss, self.step = loss, step


def train_epoch(
    model: nn.Module,
    inputs: Inputs,
    batches: Iterable[torch.Tensor],
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    weight: torch.Tensor | None,
    label_smoothing: float,
    dist_info: D.DistInfo,
) -> tuple[float, float, float]:
    """One pass of mini-batch gradient descent: for each batch of training-image indices (this
    process's share of it when distributed), the summed cross-entropy of the logits
    ``(N, classes)`` against the labels ``(N,)``, backpropagated; gradients are averaged over
    the whole batch, then one AdamW step and one learning-rate step. Returns the summed loss,
    the correct predictions and the images seen, over every process. A NaN or infinite loss
    raises :class:`_NotFinite` before its step is taken."""
    model.train()
    frozen_norms_to_eval(model)
    loss_sum, correct, seen = 0.0, 0.0, 0.0
    for step, batch in enumerate(batches):
        mine = D.shard(batch, dist_info)
        optimizer.zero_grad(set_to_none=False)
        if len(mine):
            x, y = inputs.batch("train", mine, train=True)
            logits = inputs.forward(model, x)
            loss = F.cross_entropy(
                logits, y, weight=weight, reduction="sum", label_smoothing=label_smoothing
            )
            if not torch.isfinite(loss):
                raise _NotFinite(loss.item(), step + 1)
            loss.backward()
            loss_sum += loss.item()
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
        D.all_reduce_gradients(model, len(batch), dist_info)
        optimizer.step()
        schedule.step()
    loss_sum, correct, seen = D.all_reduce_sum([loss_sum, correct, seen], dist_info)
    return loss_sum, correct, seen


def _tensorboard(run_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise CnnlabError(
            "--tensorboard needs the tensorboard package: pip install 'cnnlab[tensorboard]'"
        ) from None
    return SummaryWriter(str(run_dir / "tensorboard"))


def require_split(images: Split, split: str, data: str) -> Split:
    """``images``, or the error that the ``data``'s ``split`` has none (``--test-fraction 0``)."""
    if not len(images):
        raise CnnlabError(
            f"{data} has no {split} split (--{split}-fraction 0, or a folder with train/ "
            f"and val/ but no {split}/)"
            + ("; use the validation split: --split val" if split == "test" else "")
        )
    return images
