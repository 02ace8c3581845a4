"""``cnnlab data check``: a dataset read exactly as a task's training reads it (the same
loaders, the same splits), and counted, without training: how many images each split holds and
how each class is represented there. Labels are best checked before an hour of training: a
class with no image in the test split, boxes that are nearly all one class, a mask folder whose
pixels are 99% background, show here in a second.

Each task's figures, per split (train, val, test: the data's own split folders, else the
seeded 70/15/15 split training makes):

- ``classify``: images of each class;
- ``detect``: boxes of each class, the images holding at least one of them, the images with no
  box, and each class's median box width and height as fractions of the image;
- ``localize``: the same of the one object each image gives (its first, as localize train
  takes it), and the images holding more, whose other objects it never sees;
- ``segment``: each class's share of the labelled pixels and the images holding any of it
  (pixels nobody labelled, :data:`~cnnlab.losses.segmentation.VOID`, are counted apart).

``faces`` splits identities, not images: the ``seen`` ones faces train trains on and the
``unseen`` ones it holds out to score the encoder on (``--unseen``, else
:func:`~cnnlab.engine.faces.held_out_names`), each identity's images counted; an identity with
a single image is named, as it gives no pair of the same person (no positive for a triplet, no
"same" pair to verify; it can still be enrolled).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from cnnlab.data.split_folders import own_or_seeded
from cnnlab.engine.runlog import SPLIT_ORDER
from cnnlab.errors import CnnlabError, problems_collected
from cnnlab.words import counted

TASKS = ("classify", "detect", "localize", "segment", "faces")


def check_data(
    task: str,
    data: str,
    image_size: int = 64,
    data_root: str = "",
    seed: int = 0,
    unseen: str = "",
) -> dict[str, Any]:
    """``data`` read as ``task``'s training reads it at ``image_size`` (``seed``: the split of
    data without split folders), counted per split and class (module docstring), with the
    ``problems`` found: a class a split holds none of (a metric of that split says nothing of
    it; in the training split, the model never sees it)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; one of {', '.join(TASKS)}")
    with problems_collected() as bad_files:
        try:
            if task == "classify":
                found = _classification(data, image_size, data_root, seed)
            elif task in ("detect", "localize"):
                first_only = task == "localize"
                found = _detection(data, image_size, data_root, seed, first_only=first_only)
            elif task == "segment":
                found = _segmentation(data, image_size, data_root, seed)
            else:
                return _identities(data, image_size, unseen)
        except CnnlabError as exc:  # what the files left after the bad ones could not make
            if not bad_files:
                raise
            bad_files.append(str(exc))
    if bad_files:
        raise BadLabelFiles(data, bad_files)
    return found | {"problems": _absent(found)}


class BadLabelFiles(CnnlabError):
    """Every label file of ``data`` that training would stop at (``problems``, one message
    each, in the order read: YOLO label files, Pascal VOC XML, labelme JSON and mask files, a
    COCO file's entries and the images they name, a label CSV's rows), where training names
    only the first."""

    def __init__(self, data: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"{data}: {counted(len(problems), 'problem')} in its label files (each above); "
            "training stops at the first it reads"
        )


def _absent(found: dict[str, Any]) -> list[str]:
    """``class 'car': no box in the test split`` for each class a split holds none of (the
    background of a class map excepted)."""
    unit = {"classify": "image", "detect": "box", "localize": "box", "segment": "pixel"}[
        found["task"]
    ]
    problems = []
    for split, figures in found["splits"].items():
        if figures.get("images_with_more_objects"):
            problems.append(
                f"{figures['images_with_more_objects']:,} images of the {split} split hold more "
                "than one object: localize trains on the first of each"
            )
    for split, figures in found["splits"].items():
        for name, count in figures["per_class"].items():
            if found["task"] == "segment" and name == found["class_names"][0]:
                continue
            n = count if isinstance(count, int) else count["boxes" if unit == "box" else "images"]
            if n == 0:
                problems.append(f"class {name!r}: no {unit} in the {split} split")
    return problems


def _ordered(parts: dict[str, Any]) -> list[str]:
    return sorted(parts, key=lambda k: SPLIT_ORDER.index(k) if k in SPLIT_ORDER else 3)


def _classification(data: str, size: int, root: str, seed: int) -> dict[str, Any]:
    from cnnlab.data.classification import load_classification

    loaded = load_classification(data, image_size=size, data_root=root, split_seed=seed)
    names, k = loaded.class_names, len(loaded.class_names)
    splits = {}
    for split in _ordered(loaded.splits):
        labels = loaded.splits[split].labels
        counts = torch.bincount(labels, minlength=k).tolist()
        splits[split] = {"images": len(labels), "per_class": dict(zip(names, counts, strict=True))}
    return {"task": "classify", "data": data, "class_names": names, "splits": splits}


def _detection(
    data: str, size: int, root: str, seed: int, first_only: bool = False
) -> dict[str, Any]:
    from cnnlab.config import DetectConfig
    from cnnlab.engine.detection_data import load_detection_data

    loaded = load_detection_data(DetectConfig(data=data, data_root=root, image_size=size))
    keep = slice(0, 1) if first_only else slice(None)  # localize: each image's first object

    def counted(index: torch.Tensor) -> dict[str, Any]:
        labels = [loaded.labels[i][keep] for i in index.tolist()]
        boxes = [loaded.boxes[i][keep] for i in index.tolist()]
        joined = torch.cat([torch.empty(0, dtype=torch.long), *labels])
        sides = torch.cat([torch.empty(0, 4), *boxes])
        sides = sides[:, 2:] - sides[:, :2]  # (B, 2) width, height as fractions of the image
        k = len(loaded.class_names)
        owner = torch.repeat_interleave(torch.tensor([len(lab) for lab in labels] or [0]))
        holding = torch.bincount(torch.unique(owner * k + joined) % k, minlength=k)  # per class
        per_class = {}
        for c, name in enumerate(loaded.class_names):
            mine = sides[joined == c]
            per_class[name] = {
                "boxes": len(mine),
                "images": int(holding[c]),
                "median_width": round(float(mine[:, 0].median()), 4) if len(mine) else None,
                "median_height": round(float(mine[:, 1].median()), 4) if len(mine) else None,
            }
        more = sum(len(loaded.labels[i]) > 1 for i in index.tolist())
        return {
            "images": len(labels),
            "boxes": len(joined),
            "images_without_boxes": sum(len(lab) == 0 for lab in labels),
            "per_class": per_class,
        } | ({"images_with_more_objects": more} if first_only else {})

    return _per_split("localize" if first_only else "detect", data, loaded, seed, counted)


def _segmentation(data: str, size: int, root: str, seed: int) -> dict[str, Any]:
    from cnnlab.config import SegmentConfig
    from cnnlab.engine.segment_data import load_segmentation_data
    from cnnlab.losses.segmentation import VOID

    loaded = load_segmentation_data(SegmentConfig(data=data, data_root=root, image_size=size))
    names = loaded.class_names

    def counted(index: torch.Tensor) -> dict[str, Any]:
        masks = loaded.masks[index]
        void = masks == VOID
        labelled = max(1, int((~void).sum()))
        counts = torch.bincount(masks[~void], minlength=len(names))
        holding = [int((masks == c).flatten(1).any(1).sum()) for c in range(len(names))]
        return {
            "images": len(masks),
            "unlabelled_pixels": round(float(void.float().mean()), 4) if masks.numel() else 0.0,
            "per_class": {
                name: {"pixels": round(int(counts[c]) / labelled, 4), "images": holding[c]}
                for c, name in enumerate(names)
            },
        }

    return _per_split("segment", data, loaded, seed, counted)


def _per_split(
    task: str, data: str, loaded: Any, seed: int, counted: Callable[[torch.Tensor], dict]
) -> dict[str, Any]:
    """``counted(index)`` of each split of ``loaded`` (its own splits, else the seeded ones
    training makes), train, val, test in that order."""
    parts = own_or_seeded(loaded.splits, len(loaded.images), seed)
    return {
        "task": task,
        "data": data,
        "class_names": loaded.class_names,
        "own_splits": loaded.splits is not None,
        "splits": {split: counted(parts[split]) for split in _ordered(parts)},
    }


def _identities(data: str, size: int, unseen: str) -> dict[str, Any]:
    from cnnlab.config import FacesConfig
    from cnnlab.engine.faces import load_identities

    seen, held_out, _ = load_identities(FacesConfig(data=data, unseen=unseen, image_size=size))
    splits, problems = {}, []
    for split, people in (("seen", seen), ("unseen", held_out)):
        counts = torch.bincount(people.labels, minlength=len(people.names))
        present = counts.nonzero().flatten().tolist()
        per_class = {people.names[i]: int(counts[i]) for i in present}
        splits[split] = {"images": len(people.labels), "identities": len(per_class)}
        splits[split]["per_class"] = per_class
        if alone := [name for name, n in per_class.items() if n == 1]:
            shown = ", ".join(alone[:5]) + (", ..." if len(alone) > 5 else "")
            who = counted(len(alone), f"{split} identity", f"{split} identities")
            problems.append(f"{who} with a single image, no pair of the same person: {shown}")
    return {
        "task": "faces",
        "data": data,
        "class_names": seen.names,
        "splits": splits,
        "problems": problems,
    }
