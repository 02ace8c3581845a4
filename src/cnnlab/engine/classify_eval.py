"""Scoring a saved classifier (``cnnlab classify eval``, ``classify predict`` on a split): on a
split of the data it was trained on, recreated from its config, or on other labelled data
(:mod:`cnnlab.engine.eval_data`: classes matched by name, every image unless the data has split
folders of its own).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from cnnlab.config import ClassifyTrainConfig
from cnnlab.data.classification import ClassificationData, Split, load_classification
from cnnlab.engine.checkpoint import model_from_checkpoint
from cnnlab.engine.classify import Inputs, data_from_config, require_split
from cnnlab.engine.classify_scores import EvalResult, evaluate
from cnnlab.engine.device import resolve_device
from cnnlab.engine.eval_data import is_other_data
from cnnlab.engine.performance import FP32
from cnnlab.engine.runlog import data_changed
from cnnlab.errors import CnnlabError


def evaluate_checkpoint(
    path: str | Path, split: str = "test", device: str = "auto", other: str | None = None
) -> tuple[EvalResult, dict[str, Any], str, torch.Tensor]:
    """Score a saved model on a split of the dataset it was trained on, or on ``other``
    labelled data (:func:`other_data`). Returns the result, the checkpoint, what was scored
    (``split``, or ``all`` for every image of a folder without split folders) and its images
    ``(N, C, H, W)`` uint8, as the model saw them before standardising."""
    model, ckpt = model_from_checkpoint(path, "classification")
    config = ClassifyTrainConfig.from_dict(ckpt.get("config", {}))
    dev = resolve_device(device)
    if is_other_data(other, config.data):  # naming the run's own data scores its split
        data, split = other_data(ckpt, config, other, split)
    else:
        data = data_from_config(config)
        require_split(data.splits[split], split, config.data)
        data_changed(ckpt, split, data.splits[split].labels, data.splits[split].images)
    norm = ckpt.get("normalization")
    if norm:  # the statistics the model was trained with
        data = ClassificationData(
            data.name,
            data.splits,
            data.class_names,
            tuple(norm["mean"]),
            tuple(norm["std"]),
            data.invert_light,
        )
    inputs = Inputs(data, dev, FP32, None)
    return evaluate(model.to(dev), inputs, split), ckpt, split, data.splits[split].images


def other_data(
    ckpt: dict[str, Any], config: ClassifyTrainConfig, source: str, split: str
) -> tuple[ClassificationData, str]:
    """Labelled data other than the run's, as the checkpoint's inputs and classes
    (:mod:`cnnlab.engine.eval_data`): a folder of class folders (every image, or ``split``'s
    where it has split folders) or a CSV file labelling images (every row), light-background
    images inverted as ``predict`` does for a model trained on light ink; or a named dataset's
    ``split``, labels renumbered by name."""
    from cnnlab.data.folder import load_labelled_folder
    from cnnlab.engine.eval_data import class_lookup

    names = ckpt["class_names"]
    channels, size = ckpt["input_size"][0], ckpt["input_size"][-1]
    if Path(source).is_dir() or source.lower().endswith(".csv"):
        if source.lower().endswith(".csv"):
            part, split, skipped = _csv_part(source, names, size, channels, config)
        else:
            part, split, skipped = load_labelled_folder(
                Path(source),
                names,
                split,
                image_size=size,
                channels=channels,
                resize=config.resize,
                strict=config.strict,
            )
        if ckpt.get("invert_light"):
            light = part.images.flatten(1).float().mean(1) > 127.5
            part.images[light] = 255 - part.images[light]
        for line in skipped:
            warnings.warn(f"skipped {line}", stacklevel=2)
    else:
        data = load_classification(
            source,
            image_size=size,
            split_seed=config.split_seed,
            val_fraction=config.val_fraction,
            test_fraction=config.test_fraction,
            data_root=config.data_root,
        )
        if data.channels != channels:
            raise CnnlabError(
                f"{source}: {data.channels}-channel images; the checkpoint takes {channels}"
            )
        part = require_split(data.splits[split], split, source)
        part = Split(part.images, class_lookup(data.class_names, names, source)[part.labels])
    plain = ((0.0,) * channels, (1.0,) * channels)  # replaced by the checkpoint's statistics
    return ClassificationData(source, {split: part}, list(names), *plain), split


def _csv_part(
    source: str, names: list[str], size: int, channels: int, config: ClassifyTrainConfig
) -> tuple[Split, str, list[str]]:
    """Every image a CSV file labels (:mod:`cnnlab.data.csv_labels`), its classes among the
    checkpoint's ``names``, as one split to score ("all"), and the files skipped."""
    from cnnlab.data.csv_labels import read_label_csv
    from cnnlab.data.folder import decode_files

    table = read_label_csv(source, names)  # its class_names: the checkpoint's, in their order
    part, skipped = decode_files(
        table.indexed(), size, channels, config.resize, config.strict, source
    )
    return part, "all", skipped


def load_split(ckpt: dict[str, Any], split: str) -> Split:
    """The split a checkpoint's dataset holds, recreated from its config."""
    config = ClassifyTrainConfig.from_dict(ckpt.get("config", {}))
    return require_split(data_from_config(config).splits[split], split, config.data)
