"""Datasets whose files come in two parallel folders (images and their labels, or images and
their masks), laid out in one of the ways tools write them:

- ``root/images/`` and ``root/labels/`` (files matched by their path inside the folder);
- the same with split folders: ``root/images/train/`` and ``root/labels/train/`` (Ultralytics);
- ``root/train/images/`` and ``root/train/labels/`` (Roboflow exports; ``valid`` means ``val``).

Split folders named ``train``, ``val`` and optionally ``test`` become the data's splits; data
without them is split 70/15/15 with a seed (:func:`split_indices`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import torch

from cnnlab.data.classification import require_splittable
from cnnlab.errors import CnnlabError

T = TypeVar("T")
SPLIT_FOLDERS = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}


def split_dirs(root: Path) -> list[tuple[Path, str]]:
    """``root``'s split folders, sorted, each with its split: ``train``, ``val`` (``val``,
    ``valid`` or ``validation``) or ``test``, named in any case (Kaggle's ``Train/``)."""
    return [
        (d, SPLIT_FOLDERS[d.name.lower()])
        for d in sorted(root.iterdir())
        if d.is_dir() and d.name.lower() in SPLIT_FOLDERS
    ]


def split_dir_of_each(root: Path) -> dict[str, Path]:
    """One folder per split of ``root`` (the first by name where two mean the same split)."""
    found: dict[str, Path] = {}
    for d, split in split_dirs(root):
        found.setdefault(split, d)
    return found


def folder_pairs(root: Path, first: str, second: str) -> list[tuple[Path, Path, str | None]]:
    """``(root/first, root/second, None)``, or ``(root/<split>/first, root/<split>/second,
    split)`` for each split folder; a :class:`CnnlabError` when neither layout is there."""
    if (root / first).is_dir():
        return [(root / first, root / second, None)]
    pairs = [
        (d / first, d / second, split) for d, split in split_dirs(root) if (d / first).is_dir()
    ]
    if not pairs:
        raise CnnlabError(
            f"{root}: no {first}/ folder (expected {first}/ and {second}/, or train/{first} and "
            f"train/{second})"
        )
    return pairs


def has_pair_folder(root: Path, name: str) -> bool:
    """Whether ``root`` has a ``name`` folder in one of the layouts: ``root/name`` (flat or
    ``name/train``), or ``root/<split>/name``."""
    return (root / name).is_dir() or any((d / name).is_dir() for d, _ in split_dirs(root))


def split_of(relative: Path, split: str | None) -> str | None:
    """The split of a file at ``relative`` inside an images folder: the pair's own, else its
    first folder's when that is a split name (``images/train/a.png``)."""
    if split is None and len(relative.parts) > 1:
        return SPLIT_FOLDERS.get(relative.parts[0].lower())
    return split


def given_splits(splits: list[str | None]) -> dict[str, torch.Tensor] | None:
    """The indices of each split the folders name, when every file lies in a ``train``, ``val``
    or ``test`` folder and there are train and val files; else ``None`` (split at random)."""
    if None in splits or not {"train", "val"} <= set(splits):
        return None
    return {
        k: torch.tensor([i for i, s in enumerate(splits) if s == k])
        for k in ("train", "val", "test")
        if k in splits
    }


def split_indices(n: int, seed: int) -> dict[str, torch.Tensor]:
    """15% test, 15% validation (an image each at least), the rest to train."""
    require_splittable(n)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = max(1, round(0.15 * n))
    return {"test": order[:k], "val": order[k : 2 * k], "train": order[2 * k :]}


def own_or_seeded(
    splits: dict[str, torch.Tensor] | None, n: int, seed: int
) -> dict[str, torch.Tensor]:
    """A dataset's own ``splits`` where its source names them, else :func:`split_indices`."""
    return splits if splits is not None else split_indices(n, seed)


def final_split(parts: dict[str, torch.Tensor]) -> str:
    """Where a run reports its final figures: the test split, or val when the data's folders
    have train and val only (val then also chose the best epoch, and the output says so)."""
    return "test" if "test" in parts else "val"


def require_split(parts: dict[str, T], split: str, source: str) -> T:
    """``parts[split]``, or the error that ``source``'s folders have no such split (a layout
    with train/ and val/ only has no test split)."""
    if split not in parts:
        raise CnnlabError(
            f"{source} has no {split} split (its folders name {', '.join(sorted(parts))})"
            + ("; use the validation split: --split val" if split == "test" else "")
        )
    return parts[split]
