"""Single-object data for classification with localisation and landmark detection.

Each image holds at most one object; its target is the slide's ``[p_c, b_x, b_y, b_h, b_w,
class]`` with the midpoint and size relative to the image ((0, 0) is the top-left corner) and,
from the scene generator, five landmarks relative to the image. Sources: the scene generator
(``scenes``), a YOLO label folder or a COCO file (the first object of each image).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cnnlab.data.classification import require_splittable, stratified_split
from cnnlab.data.scenes import (
    LANDMARK_PAIRS,
    LANDMARKS,
    check_scene_memory,
    check_scene_size,
    make_scenes,
)
from cnnlab.errors import CnnlabError
from cnnlab.words import counted


@dataclass(frozen=True)
class LocalizationData:
    """Images ``(N, 3, S, S)`` uint8 and targets; ``splits`` maps train/val/test to indices."""

    images: torch.Tensor
    pc: torch.Tensor  # (N,) float 0/1
    box: torch.Tensor  # (N, 4) b_x, b_y, b_h, b_w (zeros where pc = 0)
    label: torch.Tensor  # (N,) int64 (-1 where pc = 0)
    landmarks: torch.Tensor  # (N, K, 2) relative (x, y); K = 0 without landmarks
    class_names: list[str]
    splits: dict[str, torch.Tensor]  # train, val and (unless a folder layout lacks it) test
    landmark_names: tuple[str, ...] = ()
    landmark_pairs: tuple[tuple[int, int], ...] = ()


def _split(pc: np.ndarray, label: np.ndarray, seed: int) -> dict[str, torch.Tensor]:
    """70/15/15, stratified by class (background as its own) when every group has 3 images,
    else by object presence, else a plain seeded shuffle."""
    require_splittable(len(pc))
    for strata in (np.where(pc > 0, label + 1, 0), (pc > 0).astype(int)):
        if np.unique(strata, return_counts=True)[1].min() >= 3:
            try:
                parts = stratified_split(strata, 0.15, 0.15, seed)
                return {k: torch.from_numpy(v) for k, v in parts.items()}
            except (CnnlabError, ValueError):
                continue
    order = np.random.default_rng(seed).permutation(len(pc))
    n_held = max(1, round(0.15 * len(pc)))
    return {
        "test": torch.from_numpy(order[:n_held]),
        "val": torch.from_numpy(order[n_held : 2 * n_held]),
        "train": torch.from_numpy(order[2 * n_held :]),
    }


def from_scenes(
    n: int = 2000,
    image_size: int = 64,
    num_classes: int = 3,
    seed: int = 0,
    landmarks: bool = False,
) -> LocalizationData:
    """``n`` scenes with zero or one object (always one when ``landmarks``)."""
    check_scene_size(image_size)
    check_scene_memory(n, image_size, max_objects=1)
    scenes = make_scenes(
        n,
        seed=seed,
        image_size=image_size,
        num_classes=num_classes,
        min_objects=1 if landmarks else 0,
        max_objects=1,
        min_scale=0.35,
        max_scale=0.7,
        max_occlusion=1.0,
    )
    s = float(image_size)
    pc = np.array([len(x.labels) > 0 for x in scenes], np.float32)
    label = np.array([x.labels[0] if len(x.labels) else -1 for x in scenes], np.int64)
    box = np.zeros((n, 4), np.float32)
    marks = np.zeros((n, len(LANDMARKS) if landmarks else 0, 2), np.float32)
    for i, x in enumerate(scenes):
        if len(x.labels):
            x1, y1, x2, y2 = x.boxes_xyxy[0] / s
            box[i] = [(x1 + x2) / 2, (y1 + y2) / 2, y2 - y1, x2 - x1]
            if landmarks:
                marks[i] = x.landmarks[0] / s
    images = torch.from_numpy(np.stack([x.image for x in scenes])).permute(0, 3, 1, 2)
    return LocalizationData(
        images.contiguous(),
        torch.from_numpy(pc),
        torch.from_numpy(box),
        torch.from_numpy(label),
        torch.from_numpy(marks),
        list(scenes[0].class_names),
        _split(pc, label, seed),
        LANDMARKS if landmarks else (),
        LANDMARK_PAIRS if landmarks else (),
    )


def from_boxes(
    images: torch.Tensor,
    boxes: list[torch.Tensor],
    labels: list[torch.Tensor],
    class_names: list[str],
    seed: int = 0,
    splits: dict[str, torch.Tensor] | None = None,
    source: str = "the data",
    least: int = 10,
) -> LocalizationData:
    """Detection-style data (``images (N, 3, S, S)`` uint8, per image ``boxes (K, 4)`` xyxy
    relative and ``labels (K,)``, from a YOLO folder or a COCO file) as single-object targets:
    the first object of each image, ``p_c = 0`` for an image with none. ``splits``: the source's
    own, else a stratified 70/15/15 by ``seed``. Fewer than ``least`` images are an error (to
    train on; a set to score may be smaller)."""
    if len(images) < least:
        raise CnnlabError(f"{source}: {counted(len(images), 'image')}, too few to train on")
    pc = np.array([len(b) > 0 for b in boxes], np.float32)
    label = np.array([int(lab[0]) if len(lab) else -1 for lab in labels], np.int64)
    box = torch.zeros(len(images), 4)
    for i, b in enumerate(boxes):
        if len(b):
            x1, y1, x2, y2 = b[0].tolist()
            box[i] = torch.tensor([(x1 + x2) / 2, (y1 + y2) / 2, y2 - y1, x2 - x1])
    return LocalizationData(
        images,
        torch.from_numpy(pc),
        box,
        torch.from_numpy(label),
        torch.zeros(len(images), 0, 2),
        class_names,
        splits if splits is not None else _split(pc, label, seed),
    )
