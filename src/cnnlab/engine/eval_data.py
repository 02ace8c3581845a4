"""Scoring a checkpoint on labelled data other than its own (``cnnlab
classify|localize|detect|segment eval --data ...``): a test set gathered after training, or
another dataset with the same classes.

Two rules, shared by the tasks:

* the classes are matched **by name**: each of the data's classes must be one the checkpoint
  knows (its labels are renumbered to the checkpoint's indices); the data may hold fewer;
* **every image** is scored, unless the data has split folders of its own (``train/``,
  ``val/``, ``test/``), in which case ``--split`` picks one.

``--data`` naming the run's own data (the same text as its training ``--data``, e.g.
``scenes``) scores the run's ``--split``, as without it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cnnlab.data.split_folders import require_split
from cnnlab.errors import CnnlabError


def is_other_data(given: str | None, own: str) -> bool:
    """Whether ``--data given`` names data other than the run's own (``own``, its training
    ``--data``); no ``--data``, or the same text, is the run's own."""
    return bool(given) and given != own


def class_lookup(names: Sequence[str], known: Sequence[str], source: str) -> torch.Tensor:
    """``(len(names),)`` int64: the checkpoint's index of each of the data's class names, or
    the error that names those it does not know."""
    index = {name: i for i, name in enumerate(known)}
    unknown = [n for n in names if n not in index]
    if unknown:
        shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
        raise CnnlabError(
            f"{source}: class(es) {', '.join(unknown[:5])} unknown to the checkpoint "
            f"(its classes: {shown})"
        )
    return torch.tensor([index[n] for n in names], dtype=torch.int64)


def scored_indices(
    splits: dict[str, torch.Tensor] | None, n: int, split: str, source: str
) -> tuple[torch.Tensor, str]:
    """The images of ``split`` when the data has its own splits, else all ``n`` of them; and
    the name of what is scored (``split`` or ``all``)."""
    if not splits:
        return torch.arange(n), "all"
    return require_split(splits, split, source), split
