"""Reading YOLO-format label folders: images with one ``.txt`` label file each, one line
``class cx cy w h`` per object (relative to the image), or ``class x1 y1 x2 y2 x3 y3 ...``
where the object is a polygon (Ultralytics' segmentation labels), and the class names.

The folders may be flat (``root/images/``, ``root/labels/``) or split as Ultralytics and Roboflow
write them (:mod:`cnnlab.data.split_folders`); an image without a label file has no objects.
The class names come from ``root/classes.txt`` (one per line) or from the ``names`` of
``root/data.yaml``. Given the YAML file itself, its ``train``/``val``/``test`` entries are
followed wherever they point (:func:`read_yolo_yaml`). Bad annotations are reported with file
and line: a malformed line, an unknown class id, a negative or zero size, a box outside the
image.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.data.folder import IMAGE_SUFFIXES, images_under, refuse_class_folders
from cnnlab.data.split_folders import folder_pairs, given_splits, split_of
from cnnlab.data.textfiles import read_lines, read_names, write_names
from cnnlab.errors import CnnlabError, collected
from cnnlab.words import counted

EPS = 1e-6
YAML_FILES = ("data.yaml", "dataset.yaml", "data.yml")


@dataclass(frozen=True)
class YoloImage:
    """One image's path, labels and boxes (``cxcywh`` relative to the image), the split its
    folder names (``None`` when the layout has no split folders), and the objects' polygons
    where the label file gives them (Ultralytics' segmentation labels)."""

    image: Path
    labels: np.ndarray  # (N,) int64
    boxes_cxcywh: np.ndarray  # (N, 4) float32 in [0, 1]
    split: str | None = None
    polygons: tuple[np.ndarray | None, ...] = ()  # per object (K, 2) xy in [0, 1]; None: a box


def _pixels(values: np.ndarray) -> str:
    """A hint where a label line's numbers look like pixels: YOLO's are fractions (0-1)."""
    if (values > 1.5).any():
        return (
            " (pixel coordinates? YOLO labels give them as fractions of the width and height, 0-1)"
        )
    return ""


def parse_label_file(
    path: Path, num_classes: int
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray | None, ...]]:
    """``(labels (N,), boxes (N, 4) cxcywh, polygons)`` of one label file. A line is a box
    ``class cx cy w h``, or a polygon ``class x1 y1 x2 y2 x3 y3 ...`` as Ultralytics writes
    segmentation labels (its box is the polygon's bounds; its ``(K, 2)`` points, relative to the
    image, are kept in ``polygons``, where a box line has ``None``). A bad line is a
    :class:`CnnlabError` naming file and line."""
    labels, boxes, polygons = [], [], []
    for n, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        parts = line.split()
        where = f"{path}:{n}"
        if len(parts) != 5 and (len(parts) < 7 or len(parts) % 2 == 0):
            hint = " (a sixth number: a prediction file's confidence?)" if len(parts) == 6 else ""
            raise CnnlabError(
                f"{where}: expected 'class cx cy w h' or a polygon 'class x1 y1 x2 y2 x3 y3 ...', "
                f"got {line.strip()!r}{hint}"
            )
        try:
            numbers = np.array([float(v) for v in parts])
        except ValueError:
            raise CnnlabError(f"{where}: not numbers: {line.strip()!r}") from None
        if not np.isfinite(numbers).all():  # nan passes every comparison below
            raise CnnlabError(f"{where}: not finite numbers: {line.strip()!r}")
        if numbers[0] != round(numbers[0]):  # "0.0" is class 0, as Ultralytics reads it
            raise CnnlabError(f"{where}: class id must be a whole number, got {parts[0]}")
        cls, values = int(numbers[0]), numbers[1:]
        if not 0 <= cls < num_classes:
            raise CnnlabError(f"{where}: unknown class id {cls} ({num_classes} class names)")
        polygon = None
        if len(values) > 4:
            polygon = values.reshape(-1, 2).astype(np.float32)
            if (polygon < -EPS).any() or (polygon > 1 + EPS).any():
                raise CnnlabError(
                    f"{where}: a polygon point lies outside the image{_pixels(values)}"
                )
            polygon = polygon.clip(0, 1)
            if polygon_area(polygon) < 1e-9:
                raise CnnlabError(f"{where}: the polygon has no area (its points lie on a line)")
            (x1, y1), (x2, y2) = polygon.min(0), polygon.max(0)
            values = np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])
        cx, cy, w, h = values
        if w <= 0 or h <= 0:
            raise CnnlabError(f"{where}: box has a negative or zero size ({w} x {h})")
        if cx - w / 2 < -EPS or cy - h / 2 < -EPS or cx + w / 2 > 1 + EPS or cy + h / 2 > 1 + EPS:
            raise CnnlabError(f"{where}: box lies outside the image{_pixels(values)}")
        labels.append(cls)
        boxes.append(values)
        polygons.append(polygon)
    boxes_array = np.array(boxes, np.float32).reshape(-1, 4)
    return np.array(labels, np.int64), boxes_array, tuple(polygons)


def polygon_area(points: np.ndarray) -> float:
    """The area enclosed by ``points (K, 2)`` (the shoelace formula; either winding)."""
    x, y = points[:, 0].astype(np.float64), points[:, 1].astype(np.float64)
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def read_class_names(root: str | Path) -> list[str]:
    """``root/classes.txt``, else the ``names`` of ``root/data.yaml`` (a list, or a mapping from
    0, 1, ... to names, as Ultralytics writes them)."""
    root = Path(root)
    classes_file = root / "classes.txt"
    if classes_file.is_file():
        return read_names(classes_file)
    for name in YAML_FILES:
        if (root / name).is_file():
            return _yaml_names(root / name)
    raise CnnlabError(
        f"{classes_file}: missing (one class name per line; or a data.yaml with 'names'; or "
        "a folder of Pascal VOC .xml files instead of YOLO labels)"
    )


def _read_yaml(path: Path) -> dict:
    import yaml

    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CnnlabError(f"{path}: not readable YAML ({type(exc).__name__})") from None
    return spec if isinstance(spec, dict) else {}


def _yaml_names(path: Path, spec: dict | None = None) -> list[str]:
    spec = _read_yaml(path) if spec is None else spec
    names = spec.get("names")
    if isinstance(names, dict) and sorted(names) == list(range(len(names))):
        names = [names[i] for i in range(len(names))]
    # YAML reads `names: [0, 1]` as numbers: class names that are digits are names all the same
    if not (isinstance(names, list) and names and all(isinstance(n, str | int) for n in names)):
        raise CnnlabError(
            f"{path}: 'names' must be a list of class names or a mapping 0, 1, ... -> name"
        )
    return [str(n) for n in names]


def _labelled(image: Path, label_file: Path, names: list[str], split: str | None) -> YoloImage:
    """One image with the objects of its label file (none when there is no such file)."""
    if not label_file.is_file():
        return YoloImage(image, np.zeros(0, np.int64), np.zeros((0, 4), np.float32), split)
    labels, boxes, polygons = parse_label_file(label_file, len(names))
    return YoloImage(image, labels, boxes, split, polygons)


def read_yolo_folder(root: str | Path) -> tuple[list[YoloImage], list[str]]:
    """Every image of ``root`` with its labels, and the class names (layouts: module docstring).
    An image without a label file has no objects, but a folder where no image has one is an
    error: the label files are elsewhere or named differently. ``root`` may also be an
    Ultralytics dataset YAML file (:func:`read_yolo_yaml`)."""
    root = Path(root)
    if root.suffix.lower() in (".yaml", ".yml") and root.is_file():
        return read_yolo_yaml(root)
    if not root.is_dir():
        raise CnnlabError(
            f"{root}: not a folder (expected a YOLO folder, its data.yaml, or a COCO .json)"
        )
    refuse_class_folders(root, "labels")
    names = read_class_names(root)
    items, labelled, unmatched = [], 0, []
    for images_dir, labels_dir, split in folder_pairs(root, "images", "labels"):
        if not labels_dir.is_dir():
            raise CnnlabError(f"{labels_dir}: missing (one .txt per image: 'class cx cy w h')")
        used = set()
        for image in images_under(images_dir):
            relative = image.relative_to(images_dir)
            label_file = labels_dir / relative.with_suffix(".txt")
            used.add(label_file)
            labelled += label_file.is_file()
            try:
                items.append(_labelled(image, label_file, names, split_of(relative, split)))
            except CnnlabError as exc:  # data check names every bad file; training the first
                if not collected(exc):
                    raise
        unmatched += sorted(set(labels_dir.rglob("*.txt")) - used)
    if not items:
        raise CnnlabError(f"{root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    if not labelled:
        raise CnnlabError(
            f"{root}: no image has a label file (images/a.png needs labels/a.txt; "
            "images/train/a.png needs labels/train/a.txt)"
            + (f"; {unmatched[0].relative_to(root)} matches no image" if unmatched else "")
        )
    if unmatched:  # their objects would be left out without a word
        warnings.warn(
            f"{root}: {counted(len(unmatched), 'label file')} with no image, left out, e.g. "
            f"{unmatched[0].relative_to(root)} (images/a.png goes with labels/a.txt)",
            stacklevel=2,
        )
    return items, names


def read_yolo_yaml(path: Path) -> tuple[list[YoloImage], list[str]]:
    """The images of an Ultralytics dataset YAML with their labels, and its class ``names``.

    Followed as Ultralytics does: ``path`` is the dataset root (a relative one is taken from
    the YAML's folder, where Ultralytics takes it from its own datasets folder; without ``path``,
    the YAML's folder); ``train``, ``val`` and optionally ``test`` are each a folder of
    images (searched recursively), a ``.txt`` list of image paths (relative ones from the list's
    folder), or a list of these, relative to the root; an entry starting ``../`` that does not
    exist there is tried without it (Roboflow writes ``train: ../train/images`` beside the
    folders). Each image's label file is :func:`label_file_of` it. The entries become the
    splits; an image listed in two of them is a warning (the later figures would count images
    trained on)."""
    spec = _read_yaml(path)
    names = _yaml_names(path, spec)
    nc = spec.get("nc")
    if nc is not None and nc != len(names):
        raise CnnlabError(f"{path}: nc is {nc} but 'names' has {len(names)} class names")
    root = path.parent
    if spec.get("path"):
        root = path.parent / Path(str(spec["path"])).expanduser()  # an absolute path stays
        if not root.is_dir():
            raise CnnlabError(f"{path}: path: {root} is not a folder")
    if not spec.get("train") or not spec.get("val"):
        raise CnnlabError(f"{path}: needs 'train' and 'val' (folders of images or .txt lists)")
    items: list[YoloImage] = []
    first_split: dict[Path, str] = {}
    overlap, labelled = [], 0
    for split in ("train", "val", "test"):
        for image in dict.fromkeys(_split_images(path, root, split, spec.get(split))):
            if first_split.setdefault(image.resolve(), split) != split:
                overlap.append(image)
            label_file = label_file_of(image)
            labelled += label_file.is_file()
            items.append(_labelled(image, label_file, names, split))
    if not labelled:
        raise CnnlabError(
            f"{path}: no image has a label file (.../images/a.png needs .../labels/a.txt), "
            f"e.g. {label_file_of(items[0].image)} is missing"
        )
    if overlap:
        warnings.warn(
            f"{path}: {counted(len(overlap), 'image')} in two splits, e.g. {overlap[0]}: the "
            "figures on val or test count images that were trained on",
            stacklevel=2,
        )
    return items, names


def label_file_of(image: Path) -> Path:
    """Ultralytics' rule: the last ``images`` folder in the path swapped for ``labels``, the
    suffix for ``.txt`` (``d/images/train/a.jpg -> d/labels/train/a.txt``); an image with no
    ``images`` folder above it has its ``.txt`` beside it."""
    folders = image.parts[:-1]
    if "images" in folders:
        k = len(folders) - 1 - folders[::-1].index("images")
        image = Path(*folders[:k], "labels", *image.parts[k + 1 :])
    return image.with_suffix(".txt")


def _split_images(yaml_file: Path, root: Path, split: str, entry: object) -> list[Path]:
    """The image files one split entry of a dataset YAML names (:func:`read_yolo_yaml`)."""
    if entry in (None, ""):
        return []
    images: list[Path] = []
    for given in entry if isinstance(entry, list) else [entry]:
        if not isinstance(given, str):
            raise CnnlabError(f"{yaml_file}: {split}: expected a path, got {given!r}")
        where = root / given
        if not where.exists() and given.startswith("../") and (root / given[3:]).exists():
            where = root / given[3:]
        if where.is_dir():
            found = images_under(where)
        elif where.is_file() and where.suffix.lower() == ".txt":
            found = _listed_images(where)
        elif where.is_file():
            raise CnnlabError(
                f"{yaml_file}: {split}: {where} is not a folder of images or a .txt list"
            )
        else:
            raise CnnlabError(f"{yaml_file}: {split}: {where} does not exist")
        if not found:
            raise CnnlabError(
                f"{yaml_file}: {split}: no images in {where} ({', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        images += found
    return images


def _listed_images(list_file: Path) -> list[Path]:
    """The image paths of a ``.txt`` list, one per line (relative ones from the list's folder);
    a missing one is an error naming the list and the line."""
    images = []
    for n, line in enumerate(read_lines(list_file), start=1):
        if not line.strip():
            continue
        image = list_file.parent / line.strip()
        if not image.is_file():
            raise CnnlabError(f"{list_file}:{n}: {image} does not exist")
        if image.suffix.lower() not in IMAGE_SUFFIXES:
            raise CnnlabError(f"{list_file}:{n}: {image.name} is not an image file")
        images.append(image)
    return images


def folder_splits(items: list[YoloImage]) -> dict[str, torch.Tensor] | None:
    """The splits the folders name (:func:`cnnlab.data.split_folders.given_splits`)."""
    return given_splits([item.split for item in items])


def yolo_line(label: int, box_xyxy: Sequence[float], frame: tuple[int, int]) -> str | None:
    """``class cx cy w h`` of a box ``(x1, y1, x2, y2)`` in the pixels of a ``(width, height)``
    image, relative to it (6 decimals, clipped to the image); ``None`` for a box with no area
    there, which :func:`parse_label_file` would refuse."""
    width, height = frame
    x1, y1, x2, y2 = (
        min(max(v / (width if i % 2 == 0 else height), 0.0), 1.0) for i, v in enumerate(box_xyxy)
    )
    w, h = round(x2 - x1, 6), round(y2 - y1, 6)
    if w <= 0 or h <= 0:
        return None
    return f"{label} {(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} {w:.6f} {h:.6f}"


def write_yolo_dataset(
    folder: str | Path,
    names: Sequence[str],
    images: Sequence[tuple[str | Path, Sequence[tuple[int, Sequence[float]]], tuple[int, int]]],
) -> dict[str, Any]:
    """Write the layout :func:`read_yolo_folder` reads (and labelling tools open):
    ``folder/images/`` (copies of the images), ``folder/labels/<stem>.txt`` and
    ``folder/classes.txt``. Each image comes with its objects, ``(class index, (x1, y1, x2, y2)
    in its pixels)``, and its ``(width, height)``; an image without objects gets an empty label
    file (looked at: nothing there). Images sharing a stem (``a/0.png``, ``b/0.png``) are
    numbered, ``0_0.png`` and ``1_0.png``; a video's frame (``clip.mp4#frame=12``) is written
    as ``clip_000012.png``. Returns the folder, how many images and boxes were
    written, and ``no_area``: boxes left out for having none."""
    from cnnlab.data.folder import copy_images_to, new_dataset_folder

    folder = new_dataset_folder(folder)
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    write_names(folder / "classes.txt", names)
    written = copy_images_to(folder / "images", [source for source, _, _ in images])
    boxes = no_area = 0
    for stem, (_, objects, frame) in zip((f.stem for f in written), images, strict=True):
        lines = [yolo_line(int(c), box, frame) for c, box in objects]
        kept = [line for line in lines if line is not None]
        boxes, no_area = boxes + len(kept), no_area + len(lines) - len(kept)
        (folder / "labels" / f"{stem}.txt").write_text("".join(f"{line}\n" for line in kept))
    return {"folder": str(folder), "images": len(images), "boxes": boxes, "no_area": no_area}
