"""``cnnlab augment``: look at the augmentations before training with them, as a grid of the
originals and augmented draws. Class folders show the images; detection data (scenes, YOLO,
COCO, VOC) also the boxes and segmentation data (mask folders) the masks, moved with the image
by the very batch functions training uses (:func:`cnnlab.engine.detect.make_batch`,
:func:`cnnlab.engine.segment.make_batch`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from cnnlab.cli.values import positive_int, random_seed
from cnnlab.errors import CnnlabError

CLASSIFY_DEFAULT = "flip,crop,rotate,shear,warp,color"
TASKS = ("auto", "classify", "detect", "segment")


def task_of(data: str) -> str:
    """What ``--task auto`` takes ``--data`` for: a standard dataset the task `cnnlab data
    download` lists for it (VOC and COCO detection, the pets segmentation); the scenes, a COCO
    ``.json``, a dataset YAML, a folder with ``labels/`` (YOLO), VOC XML or labelme JSON files
    detection data;
    a folder with ``masks/`` or ``SegmentationClass/`` segmentation data; anything else is
    classified."""
    from cnnlab.data.coco import coco_files_in
    from cnnlab.data.download import DATASETS
    from cnnlab.data.labelme import is_labelme_folder
    from cnnlab.data.split_folders import has_pair_folder
    from cnnlab.data.voc_folder import is_voc_folder, is_voc_segmentation_folder

    if data in DATASETS:
        return DATASETS[data].task.split(",")[0].strip()  # voc2012: "detect, segment"
    root = Path(data)
    if data == "scenes" or data.endswith((".json", ".yaml", ".yml")):
        return "detect"
    if root.is_dir() and has_pair_folder(root, "masks"):
        return "segment"
    if root.is_dir() and (
        has_pair_folder(root, "labels")
        or is_voc_folder(root)
        or is_labelme_folder(root)
        or coco_files_in(root)
    ):
        return "detect"
    if is_voc_segmentation_folder(root):
        return "segment"
    return "classify"


def cmd_augment(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    import torch

    from cnnlab.data.augment import parse_augment

    task = task_of(args.data) if args.task == "auto" else args.task
    given = args.augment if args.augment is not None else _default_augment(task)
    names = parse_augment(given)
    if not names and not (task == "detect" and args.mirror):
        raise CnnlabError("--augment names nothing to show")
    torch.manual_seed(args.seed)
    draw = {"classify": _classify, "detect": _detect, "segment": _segment}[task]
    path, shown = draw(args, names)
    if not args.json:
        console.print(f"wrote {path} (first row: originals; then {args.variants} draws)")
    return {"figure": str(path), "task": task, "augment": list(names), "images": shown}


def _default_augment(task: str) -> str:
    """The augmentations a train command of ``task`` uses when not told."""
    from cnnlab.config import DetectConfig, SegmentConfig

    return {
        "classify": CLASSIFY_DEFAULT,
        "detect": DetectConfig().augment,
        "segment": SegmentConfig().augment,
    }[task]


def _title(args: argparse.Namespace, names: tuple[str, ...], mirror: bool = False) -> str:
    shown = (["mirror"] if mirror else []) + list(names)
    return f"{args.data}: {', '.join(shown)}"


def _classify(args: argparse.Namespace, names: tuple[str, ...]) -> tuple[Path, int]:
    import torch

    from cnnlab.data.augment import build_augmentation, pca_basis
    from cnnlab.data.classification import load_classification
    from cnnlab.viz.plots import plot_augmentation_grid

    data = load_classification(
        args.data, image_size=args.image_size, channels=args.channels or None, strict=args.strict
    )
    train = data.splits["train"]
    pca = pca_basis(train.images) if "pca" in names else None
    pipeline = build_augmentation(
        names, image_size=data.image_size, channels=data.channels, pca=pca
    )
    picks = torch.randperm(len(train))[: args.images]
    originals = train.images[picks].float() / 255
    rows = [originals] + [pipeline(originals) for _ in range(args.variants)]
    return plot_augmentation_grid(rows, args.output, title=_title(args, names)), len(picks)


def _draws(
    args: argparse.Namespace,
    names: tuple[str, ...],
    data: Any,
    target: str,
    batch: Callable[..., tuple[Any, Any]],
) -> tuple[list[Any], list[Any], int]:
    """The originals and ``--variants`` draws of ``--images`` of ``data``, each row with its
    targets: ``batch(data, idx, pipeline, original)`` is a train command's batch function
    (standardised images, and the boxes or masks moved with them); the pipeline moves
    ``target`` (kornia's data key) with each image."""
    import torch

    from cnnlab.data.augment import build_augmentation
    from cnnlab.data.scenes import MEAN, STD

    pipeline = build_augmentation(
        names, image_size=args.image_size, channels=3, data_keys=("input", target)
    )
    idx = torch.randperm(len(data.images))[: args.images]
    rows, targets = [], []
    for r in range(args.variants + 1):
        x, moved = batch(data, idx, None if r == 0 else pipeline, r == 0)
        rows.append(x * STD + MEAN)
        targets.append(moved)
    return rows, targets, len(idx)


def _detect(args: argparse.Namespace, names: tuple[str, ...]) -> tuple[Path, int]:
    """The boxes moved with each draw as ``detect train`` moves them (mirroring unless
    ``--no-mirror``); a box squeezed out of the image is dropped, as in training."""
    from cnnlab.config import DetectConfig
    from cnnlab.engine.detect import make_batch
    from cnnlab.engine.detection_data import load_detection_data
    from cnnlab.viz.plots import plot_augmentation_grid

    def batch(data: Any, idx: Any, pipeline: Any, original: bool) -> tuple[Any, Any]:
        x, boxes, labels = make_batch(data, idx, args.mirror and not original, pipeline)
        return x, list(zip(boxes, labels, strict=True))

    config = DetectConfig(
        data=args.data, images=args.images, image_size=args.image_size, seed=args.seed
    )
    rows, boxes, shown = _draws(args, names, load_detection_data(config), "bbox_xyxy", batch)
    title = _title(args, names, args.mirror)
    return plot_augmentation_grid(rows, args.output, title=title, boxes=boxes), shown


def _segment(args: argparse.Namespace, names: tuple[str, ...]) -> tuple[Path, int]:
    """The masks moved with each draw as ``segment train`` moves them; pixels brought in from
    outside the image are unlabelled (drawn grey), as training leaves them."""
    from cnnlab.config import SegmentConfig
    from cnnlab.engine.segment import make_batch
    from cnnlab.engine.segment_data import load_segmentation_data
    from cnnlab.viz.plots import plot_augmentation_grid

    def batch(data: Any, idx: Any, pipeline: Any, original: bool) -> tuple[Any, Any]:
        return make_batch(data, idx, pipeline)

    config = SegmentConfig(
        data=args.data, images=args.images, image_size=args.image_size, seed=args.seed
    )
    rows, masks, shown = _draws(args, names, load_segmentation_data(config), "mask", batch)
    title = _title(args, names)
    return plot_augmentation_grid(rows, args.output, title=title, masks=masks), shown


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """augment."""
    p = sub.add_parser("augment", parents=[common], help="write a grid of augmented samples")
    p.add_argument(
        "--data",
        default="digits",
        help="a bundled dataset or a class folder; or detection data (scenes, a YOLO folder, "
        "a COCO .json, VOC XML or labelme files) with its boxes, or a mask folder with its masks",
    )
    p.add_argument(
        "--task",
        choices=TASKS,
        default="auto",
        help="what the data is for (auto: from its layout; scenes are detection data unless "
        "--task segment)",
    )
    p.add_argument(
        "--augment",
        default=None,
        help="comma list of flip, crop, rcrop, rotate, shear, warp, tps, color, pca, erase "
        f"(default: the train command's: {CLASSIFY_DEFAULT} for classes, detect's and "
        "segment's own)",
    )
    p.add_argument(
        "--mirror",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="detection: mirror half the images as detect train does",
    )
    p.add_argument("-o", "--output", default="runs/augment/grid.png", help="the grid's PNG")
    p.add_argument("--images", type=positive_int, default=8, help="images (columns)")
    p.add_argument("--variants", type=positive_int, default=4, help="augmented rows")
    p.add_argument("--image-size", type=positive_int, default=64, help="images resized to NxN")
    p.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        default=0,
        help="1 or 3 for folders (default: the dataset's)",
    )
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable image")
    p.add_argument("--seed", type=random_seed, default=0, help="seeds the augmentations")
    p.set_defaults(handler=cmd_augment)
