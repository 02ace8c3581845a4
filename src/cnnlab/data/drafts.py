"""Predictions written as the dataset a labelling tool opens: a first draft of labels for new
photos (or a video's frames), to correct there and train on (``--data FOLDER``).

Boxes (detect and localize predict ``--as-dataset FOLDER --dataset-format``,
:func:`write_draft`):

- ``yolo``: ``images/``, ``labels/<stem>.txt`` (``class cx cy w h``, relative), ``classes.txt``
  (:func:`~cnnlab.data.yolo.write_yolo_dataset`; CVAT, Label Studio, LabelImg in YOLO mode);
- ``voc``: each image with its Pascal VOC XML beside it and ``classes.txt``, LabelImg's own
  layout (its "save in the image's folder"; CVAT imports it too);
- ``labelme``: each image with its labelme JSON beside it (a ``rectangle`` per box) and
  ``labels.txt``, the file labelme's ``--labels`` takes.

A box is clipped to its image; one with no area left is dropped (every format would refuse it
on reading).

Class maps (segment predict, :func:`begin_map_draft` and :func:`add_map_draft`; its default,
a mask folder, is :mod:`cnnlab.engine.segment_maps`'): each connected region of a class
(4-connected) becomes one polygon along its pixels' edges (:func:`map_polygons`), for
``labelme`` (a JSON of ``polygon`` shapes beside each image) or ``yolo`` (YOLO's segmentation
labels, ``class x1 y1 x2 y2 ...`` relative). A polygon has no holes: a region's outline
encloses whatever lies inside it, which a smaller shape in front paints over when read (larger
shapes first). Specks under :data:`MIN_REGION` of the image are left out.

Each reads back through ``--data`` as it was written (:mod:`cnnlab.data.voc_folder`,
:mod:`cnnlab.data.labelme`, :mod:`cnnlab.data.yolo`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# each --dataset-format and what it writes, the default first
DRAFT_FORMATS = {
    "yolo": "images/, labels/, classes.txt",
    "voc": "each image's XML beside it: LabelImg",
    "labelme": "each image's JSON beside it",
}
MAP_FORMATS = {
    "masks": "images/, masks/ of class indices, classes.txt",
    "labelme": "a JSON of polygons beside each image",
    "yolo": "YOLO segmentation polygons: images/, labels/, classes.txt",
}
MIN_REGION = 1e-4  # of the image's pixels, and at least 4: a smaller region is a speck

# (image file or video frame, [(class index, (x1, y1, x2, y2) in its pixels)], (width, height))
Drafted = tuple[str | Path, Sequence[tuple[int, Sequence[float]]], tuple[int, int]]


def in_image(box: Sequence[float], size: tuple[int, int]) -> tuple[float, ...] | None:
    """``(x1, y1, x2, y2)`` clipped to a ``(width, height)`` image, to 2 decimals; ``None``
    where nothing of it is left."""
    w, h = size
    x1, y1, x2, y2 = (round(min(max(v, 0.0), (w, h)[i % 2]), 2) for i, v in enumerate(box))
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def write_draft(
    folder: str | Path, names: Sequence[str], images: Sequence[Drafted], kind: str = "yolo"
) -> dict[str, Any]:
    """``images`` and their boxes as a ``kind`` dataset (:data:`DRAFT_FORMATS`) in ``folder``
    (new or empty). Returns the folder, its format, how many images and boxes were written,
    and ``no_area``: boxes left out for having none in their image."""
    from cnnlab.data.yolo import write_yolo_dataset

    if kind == "yolo":
        return {**write_yolo_dataset(folder, names, images), "format": "yolo"}
    if kind not in DRAFT_FORMATS:
        raise ValueError(f"unknown draft format {kind!r}; one of {', '.join(DRAFT_FORMATS)}")
    from cnnlab.data.folder import copy_images_to, new_dataset_folder
    from cnnlab.data.labelme import labelme_json
    from cnnlab.data.textfiles import write_names
    from cnnlab.data.voc_folder import voc_xml

    folder = new_dataset_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "voc":  # the class order kept (else the names found, sorted)
        write_names(folder / "classes.txt", names)
    else:  # labelme --labels: its two reserved names, then the classes
        write_names(folder / "labels.txt", ("__ignore__", "_background_", *names))
    written = copy_images_to(folder, [source for source, _, _ in images])
    boxes = no_area = 0
    for path, (_, objects, size) in zip(written, images, strict=True):
        kept = [(names[int(c)], b) for c, box in objects if (b := in_image(box, size))]
        boxes, no_area = boxes + len(kept), no_area + len(objects) - len(kept)
        if kind == "voc":
            text = voc_xml(path.name, size, kept)
        else:
            corners = [(name, [[x1, y1], [x2, y2]]) for name, (x1, y1, x2, y2) in kept]
            text = labelme_json(path.name, size, corners, "rectangle")
        path.with_suffix(".xml" if kind == "voc" else ".json").write_text(text, encoding="utf-8")
    return {
        "folder": str(folder),
        "format": kind,
        "images": len(images),
        "boxes": boxes,
        "no_area": no_area,
    }


def map_polygons(mask: np.ndarray, min_pixels: int = 4) -> tuple[list[tuple[int, np.ndarray]], int]:
    """The regions of a class map ``(H, W)`` (class 0 the background): each 4-connected region
    of a class ``c >= 1`` as ``(c, (K, 2) x, y outline along its pixels' edges)``
    (:func:`~cnnlab.data.scenes.mask_outline`), larger regions first; regions of fewer than
    ``min_pixels`` pixels are left out, and counted."""
    from skimage.measure import label, regionprops

    from cnnlab.data.scenes import mask_outline

    found: list[tuple[int, int, np.ndarray]] = []
    specks = 0
    for c in np.unique(mask):
        if c == 0:
            continue
        for region in regionprops(label(mask == c, connectivity=1)):
            if region.area < min_pixels:
                specks += 1
                continue
            y0, x0, _, _ = region.bbox
            outline = mask_outline(region.image)  # the region alone, within its box
            if outline is not None:
                found.append((int(region.area), int(c), outline + np.array([x0, y0])))
    found.sort(key=lambda f: -f[0])
    return [(c, outline) for _, c, outline in found], specks


def begin_map_draft(folder: Path, names: Sequence[str], kind: str) -> None:
    """Lay out a new or empty ``folder`` for :func:`add_map_draft` (``names[0]``, the
    background, is no shape's class): ``labelme``'s ``labels.txt``, or YOLO's ``images/``,
    ``labels/`` and ``classes.txt``."""
    from cnnlab.data.textfiles import write_names

    if kind == "labelme":
        folder.mkdir(parents=True, exist_ok=True)
        write_names(folder / "labels.txt", ("__ignore__", "_background_", *names[1:]))
    elif kind == "yolo":
        (folder / "images").mkdir(parents=True, exist_ok=True)
        (folder / "labels").mkdir()
        write_names(folder / "classes.txt", names[1:])
    else:
        raise ValueError(f"unknown map draft format {kind!r}; one of labelme, yolo")


def add_map_draft(
    folder: Path,
    kind: str,
    names: Sequence[str],
    source: str | Path,
    stem: str,
    mask: np.ndarray,
    image: np.ndarray | None = None,
) -> tuple[int, int]:
    """Add an image and its class map ``(H, W)`` as polygons to a folder
    :func:`begin_map_draft` laid out: the image (a copy of ``source``; where it is no file, a
    video's frame, ``image`` ``(H, W, 3)`` uint8 as a PNG) and its shapes. Returns how many
    polygons were written and how many specks left out."""
    from cnnlab.data.folder import keep_image
    from cnnlab.data.labelme import labelme_json

    h, w = mask.shape
    polygons, specks = map_polygons(mask, max(4, round(MIN_REGION * h * w)))
    target = keep_image(source, folder if kind == "labelme" else folder / "images", stem, image)
    if kind == "labelme":
        shapes = [(names[c], outline) for c, outline in polygons]
        target.with_suffix(".json").write_text(
            labelme_json(target.name, (w, h), shapes), encoding="utf-8"
        )
    else:  # YOLO: classes from 0, coordinates relative
        lines = [
            " ".join([str(c - 1), *(f"{v:.6f}" for v in (outline / (w, h)).ravel())])
            for c, outline in polygons
        ]
        (folder / "labels" / f"{stem}.txt").write_text("".join(f"{x}\n" for x in lines))
    return len(polygons), specks
