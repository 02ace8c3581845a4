"""Folders labelled in labelme (Wada, 2016-): one JSON file per image beside it, each shape a
labelled ``polygon``, ``rectangle`` or ``circle`` in the image's pixels.

A file holds ``imagePath`` (relative to the JSON file), ``imageHeight``, ``imageWidth``,
optionally ``imageData`` (the image itself, base64: used where the file is not there) and
``shapes``: ``{"label", "points": [[x, y], ...], "shape_type"}``. A rectangle is its two opposite
corners, a circle its centre and a point on its rim, and a ``mask`` (labelme's AI-assisted
masks) a bitmap, base64 PNG in ``"mask"``, covering the pixels from its first point to its
second, both included. Shapes that enclose no area (``point``,
``line``, ``linestrip``) are left out with a warning, and so are images without a JSON file.

For boxes (:func:`cnnlab.engine.detection_data.labelme_data`) each shape is its bounding box;
for class maps (:func:`cnnlab.engine.segment_data.labelme_segmentation`) its area is painted,
larger shapes first so a small one in front keeps its pixels, as COCO's polygons are. The
class names are ``labels.txt``'s (labelme's own ``--labels`` file: ``__ignore__`` and
``_background_`` lines skipped) or ``classes.txt``'s, else the labels the files use, sorted.
The folder may be flat or split (``train/``, ``val/``, ``test/`` folders of images and JSON
files): its splits then. labelme shows a phone photo turned as its EXIF tag says, as cnnlab
does; a file whose size is the photo's stored one where the tag turns it a quarter was labelled
on the stored pixels (labelme before 2019, some other tools), and its shapes are turned with
the photo (:mod:`cnnlab.data.orientation`).
"""

from __future__ import annotations

import base64
import io
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.data.coco import is_number
from cnnlab.data.folder import IMAGE_SUFFIXES
from cnnlab.data.orientation import as_shown, pixels_as_shown, shown_size, stored_and_orientation
from cnnlab.data.split_folders import has_pair_folder, split_dirs
from cnnlab.data.textfiles import read_names, sorted_names
from cnnlab.errors import CnnlabError, collected, raise_unless_collected
from cnnlab.words import counted

AREA_SHAPES = ("polygon", "rectangle", "circle", "mask")
CIRCLE_POINTS = 32  # a circle painted as a polygon of this many corners


@dataclass(frozen=True)
class LabelmeImage:
    """One image (its file, or the Pillow image the JSON embeds), its ``(width, height)``, its
    shapes as polygons ``(K, 2)`` in pixels with their class indices (a mask shape: its box,
    with its bitmap in ``bitmaps``), and its split."""

    image: Any
    size: tuple[int, int]
    labels: np.ndarray  # (N,) int64
    polygons: tuple[np.ndarray, ...]  # N x (K, 2) float64 x, y in pixels
    split: str | None = None
    source: Path = Path()
    bitmaps: tuple[np.ndarray | None, ...] = ()  # N: a mask shape's (h, w) bool, else None

    def boxes_xyxy(self) -> np.ndarray:
        """``(N, 4)`` float32: each shape's bounds, relative to the image, clipped to it."""
        w, h = self.size
        if not self.polygons:
            return np.zeros((0, 4), np.float32)
        lo = np.stack([p.min(0) for p in self.polygons]) / (w, h)
        hi = np.stack([p.max(0) for p in self.polygons]) / (w, h)
        return np.concatenate([lo, hi], 1).clip(0, 1).astype(np.float32)


def _jsons(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".json")


def _is_labelme(path: Path) -> bool:
    try:
        head = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(head, dict) and "shapes" in head and "imagePath" in head


def _folders(root: Path) -> list[tuple[Path, str | None]]:
    if any(_is_labelme(j) for j in _jsons(root)[:3]):
        return [(root, None)]
    return [(d, s) for d, s in split_dirs(root) if any(_is_labelme(j) for j in _jsons(d)[:3])]


def is_labelme_folder(root: str | Path) -> bool:
    """Whether ``root`` (or its split folders) holds labelme JSON files (and no YOLO
    ``labels/``, which wins)."""
    root = Path(root)
    return root.is_dir() and not has_pair_folder(root, "labels") and bool(_folders(root))


def shape_polygon(shape: dict[str, Any], where: str) -> np.ndarray | None:
    """One shape's outline ``(K, 2)`` in pixels: a polygon's points, a rectangle's four corners,
    a circle's :data:`CIRCLE_POINTS`; ``None`` for a shape with no area (a point, a line)."""
    kind = shape.get("shape_type") or "polygon"
    points = shape.get("points")
    if not (
        isinstance(points, list)
        and points
        and all(
            isinstance(p, list) and len(p) == 2 and all(is_number(v) for v in p) for p in points
        )
    ):
        raise CnnlabError(f"{where}: 'points' must be a list of [x, y] pairs")
    xy = np.asarray(points, np.float64)
    if kind not in AREA_SHAPES:
        return None
    need = {"polygon": 3, "rectangle": 2, "circle": 2, "mask": 2}[kind]
    if len(xy) < need:
        raise CnnlabError(f"{where}: a {kind} needs {need} points, it has {len(xy)}")
    if kind in ("rectangle", "mask"):
        (x1, y1), (x2, y2) = xy.min(0), xy.max(0) + (kind == "mask")  # a mask's last pixel
        return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
    if kind == "circle":
        radius = float(np.hypot(*(xy[1] - xy[0])))
        angle = np.linspace(0, 2 * np.pi, CIRCLE_POINTS, endpoint=False)
        return xy[0] + radius * np.stack([np.cos(angle), np.sin(angle)], 1)
    return xy


def shape_bitmap(shape: dict[str, Any], box: np.ndarray, where: str) -> np.ndarray:
    """A ``mask`` shape's bitmap ``(h, w)`` bool, checked to fill its ``box`` (the corners
    :func:`shape_polygon` gives it)."""
    from PIL import Image

    from cnnlab.data.images import UNREADABLE, why_unreadable

    try:
        with Image.open(io.BytesIO(base64.b64decode(shape.get("mask") or ""))) as img:
            bitmap = np.asarray(img.convert("L")) > 0
    except (*UNREADABLE, ValueError) as exc:
        raise CnnlabError(f"{where}: its 'mask' is no image ({why_unreadable(exc)})") from None
    (x1, y1), (x2, y2) = box.min(0), box.max(0)
    if bitmap.shape != (round(y2 - y1), round(x2 - x1)):
        raise CnnlabError(
            f"{where}: its mask is {bitmap.shape[1]}x{bitmap.shape[0]}, its points span "
            f"{round(x2 - x1)}x{round(y2 - y1)} pixels"
        )
    return bitmap


def _image(spec: dict[str, Any], path: Path) -> Any:
    """The image file ``imagePath`` names (beside the JSON; else the one of its stem), or the
    Pillow image its ``imageData`` holds; ``None`` when neither is there."""
    named = str(spec.get("imagePath") or "").replace("\\", "/")
    candidates = [path.parent / named] if named else []
    candidates += [path.with_suffix(s) for s in sorted(IMAGE_SUFFIXES)]
    found = next((c for c in candidates if c.is_file()), None)
    if found is not None:
        return found
    if spec.get("imageData"):
        from PIL import Image

        from cnnlab.data.images import UNREADABLE, why_unreadable

        try:
            with Image.open(io.BytesIO(base64.b64decode(spec["imageData"]))) as img:
                img.load()
                return img.copy()
        except (*UNREADABLE, ValueError) as exc:
            raise CnnlabError(
                f"{path}: its imageData is no image ({why_unreadable(exc)})"
            ) from None
    return None


def _names(root: Path, found: set[str]) -> tuple[list[str], str | None]:
    """The class names and the file listing them (``None``: the labels found, sorted)."""
    for name in ("labels.txt", "classes.txt"):
        if (root / name).is_file():
            listed = read_names(root / name)
            return [c for c in listed if c not in ("__ignore__", "_background_")], name
    return sorted_names(found), None


_Shape = tuple[str, np.ndarray, np.ndarray | None]  # label, outline, a mask shape's bitmap


def read_labelme_folder(root: str | Path) -> tuple[list[LabelmeImage], list[str]]:
    """Every image of ``root`` that has a labelme JSON file, with its shapes, and the class names
    (module docstring). Bad files name the problem: not JSON, a shape without a label or with
    malformed points, a size that is not the image's, a label the listed names lack."""
    root = Path(root)
    parsed: list[tuple[Path, Any, tuple[int, int], list[_Shape], str | None]] = []
    flat: list[str] = []  # shapes with no area: left out
    lonely: list[Path] = []
    unlabelled: list[Path] = []
    for folder, split in _folders(root):
        used = set()
        for path in _jsons(folder):
            try:  # data check names every bad file; training stops at the first
                entry = _labelme_file(path, split, used, flat)
            except CnnlabError as exc:
                if collected(exc):
                    continue
                raise
            if entry is None:
                lonely.append(path)
            else:
                parsed.append(entry)
        unlabelled += [
            p
            for p in sorted(folder.iterdir())
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and p.resolve() not in used
        ]
    if not parsed:
        raise CnnlabError(f"{root}: no labelme JSON file has its image (imagePath) or imageData")
    names, listed = _names(root, {shape[0] for *_, shapes, _ in parsed for shape in shapes})
    index = {n: i for i, n in enumerate(names)}
    for path, *_, shapes, _ in parsed:
        if unknown := [label for label, *_ in shapes if label not in index]:
            raise_unless_collected(
                f"{path}: label {unknown[0]!r} is not in {listed} ({', '.join(names)})"
            )
    parsed = [entry for entry in parsed if all(label in index for label, *_ in entry[3])]
    for what, items in (
        ("shape with no area (a point or a line)", flat),
        ("JSON file with no image", lonely),
        ("image with no JSON file", unlabelled),
    ):
        if items:
            warnings.warn(
                f"{root}: {counted(len(items), what)}, left out, e.g. {items[0]}", stacklevel=2
            )
    return [
        LabelmeImage(
            image,
            size,
            np.asarray([index[label] for label, *_ in shapes], np.int64),
            tuple(polygon for _, polygon, _ in shapes),
            split,
            path,
            tuple(bitmap for *_, bitmap in shapes),
        )
        for path, image, size, shapes, split in parsed
    ], names


def _labelme_file(
    path: Path, split: str | None, used: set[Path], flat: list[str]
) -> tuple[Path, Any, tuple[int, int], list[_Shape], str | None] | None:
    """One labelme JSON file read: ``(path, image, its size as shown, shapes, split)``, or
    ``None`` when its image is not there; the image's path is added to ``used``, and a shape
    with no area to ``flat`` (left out). A bad file is a :class:`CnnlabError` naming it."""
    try:
        spec = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CnnlabError(f"{path}: not readable JSON ({exc})") from None
    if not (isinstance(spec, dict) and isinstance(spec.get("shapes"), list)):
        raise CnnlabError(f"{path}: not a labelme file (no 'shapes' list)")
    image = _image(spec, path)
    if image is None:
        return None
    if isinstance(image, Path):
        used.add(image.resolve())  # imagePath may say ../photos/a.png
    stored, orientation = stored_and_orientation(image)
    shown = shown_size(stored, orientation)
    given = (spec.get("imageWidth"), spec.get("imageHeight"))
    if not all(isinstance(v, int) and v > 0 for v in given):
        given = shown  # not written: as labelme shows it
    if given not in (stored, shown):
        turned = f" ({stored[0]}x{stored[1]} as stored)" if shown != stored else ""
        raise CnnlabError(
            f"{path}: imageWidth x imageHeight is {given[0]}x{given[1]}, but its image is "
            f"{shown[0]}x{shown[1]}{turned} (resized or turned after labelling? the "
            "shapes would land in the wrong place)"
        )
    # a tool that showed the photo as stored (labelme before 2019, X-AnyLabeling): turn
    # the shapes with the photo, as training sees it
    on_stored = given == stored != shown
    shapes = []
    for k, shape in enumerate(spec["shapes"]):
        where = f"{path}: shape {k}"
        label = str(shape.get("label") or "").strip() if isinstance(shape, dict) else ""
        if not label:
            raise CnnlabError(f"{where}: no label")
        polygon = shape_polygon(shape, where)
        if polygon is None:
            flat.append(f"{path.name}: {shape.get('shape_type')} {label!r}")
        else:
            bitmap = (
                shape_bitmap(shape, polygon, where) if shape.get("shape_type") == "mask" else None
            )
            if on_stored:
                polygon = as_shown(polygon / stored, orientation) * shown
                if bitmap is not None:
                    bitmap = pixels_as_shown(bitmap, orientation)
            shapes.append((label, polygon, bitmap))
    return (path, image, shown, shapes, split)


def paint(item: LabelmeImage, size: int) -> np.ndarray:
    """The ``(size, size)`` int64 class map of ``item``'s shapes (background 0, class ``c`` as
    ``c + 1``), larger shapes first: outlines painted by pycocotools at that size, a mask
    shape's bitmap placed in the image at full size and resized nearest-neighbour."""
    from PIL import Image
    from pycocotools import mask as mask_utils

    w, h = item.size
    bitmaps = item.bitmaps or (None,) * len(item.polygons)
    masks = []
    for p, label, bitmap in zip(item.polygons, item.labels, bitmaps, strict=True):
        if bitmap is None:
            scaled = [(p * (size / w, size / h)).ravel().tolist()]
            mask = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(scaled, size, size)))
        else:
            x1, y1 = (round(v) for v in p.min(0))
            full = np.zeros((h, w), np.uint8)
            inside = bitmap[max(-y1, 0) : h - y1, max(-x1, 0) : w - x1]  # what the image holds
            full[
                max(y1, 0) : max(y1, 0) + inside.shape[0], max(x1, 0) : max(x1, 0) + inside.shape[1]
            ] = inside
            mask = np.asarray(Image.fromarray(full).resize((size, size), Image.Resampling.NEAREST))
        masks.append((mask.astype(bool), int(label)))
    semantic = np.zeros((size, size), np.int64)
    for mask, label in sorted(masks, key=lambda m: -int(m[0].sum())):
        semantic[mask] = label + 1
    return semantic


def labelme_json(
    image_path: str,
    size: tuple[int, int],
    shapes: Sequence[tuple[str, np.ndarray]],
    shape_type: str = "polygon",
) -> str:
    """One image's labelme JSON: ``shapes`` ``(label, (K, 2) points in pixels)``, each a
    ``polygon``, or a ``rectangle`` (its two opposite corners)."""
    return json.dumps(
        {
            "version": "5.4.1",
            "flags": {},
            "shapes": [
                {
                    "label": label,
                    "points": np.round(polygon, 2).tolist(),
                    "group_id": None,
                    "shape_type": shape_type,
                    "flags": {},
                }
                for label, polygon in shapes
            ],
            "imagePath": image_path,
            "imageData": None,
            "imageHeight": size[1],
            "imageWidth": size[0],
        },
        indent=1,
    )
