"""Reading COCO annotation files (``instances_*.json`` and what labelling tools export as COCO):
the images, the categories and each annotation, checked first, so that a bad entry is a
:class:`CnnlabError` naming the file and the entry rather than a failure mid-training.

Detection reads each annotation's ``bbox`` (:func:`cnnlab.engine.detection_data.coco_data`);
segmentation reads its ``segmentation``, polygons or run-length encoded, decoded by pycocotools
(:func:`annotation_mask`, :func:`cnnlab.engine.segment_data.coco_segmentation`).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.errors import CnnlabError, raise_unless_collected


@dataclass(frozen=True)
class CocoFile:
    """A checked COCO file: ``images`` by id (each with ``file_name``, ``width``, ``height``),
    category names in id order with ``cat_index`` mapping a category id to its position, and
    the annotations, each with its index in the file (``(k, annotation)``, each with a known
    ``image_id`` and ``category_id``)."""

    path: Path
    images: dict[Any, dict[str, Any]]
    names: list[str]
    cat_index: dict[Any, int]
    annotations: list[tuple[int, dict[str, Any]]]

    def image_file(self, image_id: Any, image_dir: Path | None = None) -> Path:
        """Where image ``image_id`` is: in ``image_dir``, else ``images/`` beside the JSON, else
        beside the JSON itself; the error names the first place looked."""
        name = self.images[image_id]["file_name"]
        file = (image_dir or self.path.parent / "images") / name
        if not file.exists() and (self.path.parent / name).exists():
            file = self.path.parent / name
        if not file.exists():
            raise CnnlabError(f"{file}: no such file (image {image_id} of {self.path})")
        return file


def read_coco(path: str | Path) -> CocoFile:
    """Parse and check ``path``: categories and images (each id once; ``file_name``, positive
    ``width`` and ``height``; at least one image), and every annotation's ``image_id`` and
    ``category_id``."""
    path = Path(path)
    if not path.is_file():  # not "not a COCO annotation file (FileNotFoundError: ...)"
        raise CnnlabError(
            f"{path}: " + ("a folder, not a COCO .json" if path.is_dir() else "no such file")
        )
    try:
        coco = json.loads(path.read_text(encoding="utf-8-sig"))
        cats = _real_categories(coco["categories"], coco.get("annotations", []))
        cat_index = {c["id"]: i for i, c in enumerate(cats)}
        names = [str(c["name"]) for c in cats]
        image_ids = [im["id"] for im in coco["images"]]
        images = {im["id"]: im for im in coco["images"]}
        annotations = list(coco.get("annotations", []))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # bad JSON or UTF-8
        reason = f"{type(exc).__name__}: {exc}"
        raise CnnlabError(f"{path}: not a COCO annotation file ({reason})") from None
    for what, ids in (("category", [c["id"] for c in cats]), ("image", image_ids)):
        twice = [i for i, n in Counter(ids).items() if n > 1]
        if twice:
            # two images under one id would merge their boxes onto one picture, silently
            raise CnnlabError(f"{path}: {what} id {twice[0]!r} is listed twice")
    if not images:
        raise CnnlabError(f"{path}: no images listed")
    bad_images = set()  # data check goes on without them, and without their annotations
    for image_id, im in images.items():
        w, h = im.get("width"), im.get("height")
        if not (isinstance(im.get("file_name"), str) and is_positive(w) and is_positive(h)):
            raise_unless_collected(f"{path}: image {image_id}: needs file_name, width and height")
            bad_images.add(image_id)
    kept = []
    for k, a in enumerate(annotations):
        if _annotation_problem(path, k, a, images, cat_index):
            continue
        if a["image_id"] not in bad_images:
            kept.append((k, a))  # with its place in the file, for later messages
    good = {i: im for i, im in images.items() if i not in bad_images}
    return CocoFile(path, good, names, cat_index, kept)


def _annotation_problem(
    path: Path, k: int, a: object, images: dict[Any, Any], cat_index: dict[Any, int]
) -> bool:
    """Whether annotation ``k`` lacks a known ``image_id`` or ``category_id`` (its problem
    collected by ``cnnlab data check``; elsewhere a :class:`CnnlabError`)."""
    where = f"{path}: annotation {k}"
    if not isinstance(a, dict):
        raise_unless_collected(f"{where}: expected an object with image_id, category_id, bbox")
        return True
    for key, known in (("image_id", images), ("category_id", cat_index)):
        if a.get(key) not in known:
            raise_unless_collected(f"{where}: unknown {key} {_unknown_id(a.get(key), known)}")
            return True
    return False


def _real_categories(categories: list[dict], annotations: list[dict]) -> list[dict]:
    """The categories in id order, less any that is only the other categories' supercategory,
    with no annotation of its own: Roboflow's COCO exports list the dataset's name so, as
    category 0 (``{"id": 0, "name": "cars", "supercategory": "none"}``, the others'
    ``"supercategory": "cars"``), which would otherwise be a class no box has."""
    used = {a.get("category_id") for a in annotations if isinstance(a, dict)}

    def parent_only(c: dict) -> bool:  # COCO's own "person" is its own supercategory: kept
        others = (o for o in categories if o is not c)
        return c["id"] not in used and any(o.get("supercategory") == c["name"] for o in others)

    return sorted((c for c in categories if not parent_only(c)), key=lambda c: c["id"])


def _unknown_id(value: object, known: dict) -> str:
    """``99``, or ``'2' (a string; the ids listed are numbers)`` where only the type differs:
    COCO's ids are numbers, and a tool that writes ``"image_id": "2"`` matches nothing."""
    alike = [k for k in known if str(k) == str(value)]
    if alike:
        listed = "strings" if isinstance(alike[0], str) else "numbers"
        return f"{value!r} (a {type(value).__name__}; the ids listed are {listed})"
    return repr(value)


def is_number(v: object) -> bool:
    """A finite int or float (``True`` is not a number here)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def is_positive(v: object) -> bool:
    """A number above zero (a box side, an image size); a bool is no number."""
    return is_number(v) and v > 0  # type: ignore[operator]


def annotation_mask(annotation: dict[str, Any], height: int, width: int, where: str) -> np.ndarray:
    """The ``(height, width)`` boolean mask of one annotation's ``segmentation``: a list of
    polygons ``[x1, y1, x2, y2, ...]`` in pixels, or run-length encoding (``{"size", "counts"}``,
    compressed string or uncompressed list), decoded by pycocotools."""
    from pycocotools import mask as mask_utils

    seg = annotation.get("segmentation")
    if isinstance(seg, list):
        polygons = [p for p in seg if isinstance(p, list)]
        if (
            not seg
            or len(polygons) != len(seg)
            or any(len(p) < 6 or len(p) % 2 or not all(is_number(v) for v in p) for p in polygons)
        ):
            raise CnnlabError(
                f"{where}: segmentation polygons must be lists of at least 3 x, y points"
            )
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    elif isinstance(seg, dict) and "counts" in seg and "size" in seg:
        if list(seg["size"]) != [height, width]:
            raise CnnlabError(
                f"{where}: segmentation size {seg['size']} is not the image's [{height}, {width}]"
            )
        rle = mask_utils.frPyObjects(seg, height, width) if isinstance(seg["counts"], list) else seg
    else:
        raise CnnlabError(
            f"{where}: no segmentation (polygons or RLE); a file with boxes only is for "
            "cnnlab detect train"
        )
    return mask_utils.decode(rle).astype(bool)


def _looks_like_coco(path: Path) -> bool:
    """Whether a ``.json`` file begins as a COCO file does (its first 64 KiB name ``images``
    or ``categories``; a labelme file's ``shapes`` say it is not one), without reading it all:
    COCO's own are hundreds of megabytes."""
    try:
        with path.open("rb") as f:
            head = f.read(65536).decode("utf-8", "ignore")
    except OSError:
        return False
    return ('"images"' in head or '"categories"' in head) and '"shapes"' not in head


def coco_files_in(root: str | Path) -> list[tuple[Path, str | None]]:
    """The COCO files a folder holds, each with its split: one in each split folder
    (``train/_annotations.coco.json`` with its images beside it, as Roboflow exports COCO), or
    the one the folder holds itself or in ``annotations/`` (``cnnlab data scenes --format
    coco``); ``[]`` when it holds none, or a YOLO ``labels/`` folder (which wins). Two in one
    place are a :class:`CnnlabError`: which is meant is for ``--data`` to say."""
    from cnnlab.data.split_folders import has_pair_folder, split_dirs

    root = Path(root)
    if not root.is_dir() or has_pair_folder(root, "labels"):
        return []

    def one_in(folder: Path) -> Path | None:
        found = sorted(p for p in folder.glob("*.json") if p.is_file() and _looks_like_coco(p))
        if len(found) > 1:
            raise CnnlabError(
                f"{folder}: {len(found)} COCO files ({', '.join(p.name for p in found[:3])}); "
                "give the one to read as --data"
            )
        return found[0] if found else None

    per_split = [(f, split) for d, split in split_dirs(root) if (f := one_in(d)) is not None]
    if per_split:
        return per_split
    for folder in (root, root / "annotations"):
        if folder.is_dir() and (found := one_in(folder)) is not None:
            return [(found, None)]
    return []
