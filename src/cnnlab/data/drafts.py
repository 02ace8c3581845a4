"""Predicted boxes written as the dataset a labelling tool opens: a first draft of labels for
new photos (or a video's frames), to correct there and train on (``--data FOLDER``).

``--as-dataset FOLDER --dataset-format``:

- ``yolo``: ``images/``, ``labels/<stem>.txt`` (``class cx cy w h``, relative), ``classes.txt``
  (:func:`~cnnlab.data.yolo.write_yolo_dataset`; CVAT, Label Studio, LabelImg in YOLO mode);
- ``voc``: each image with its Pascal VOC XML beside it and ``classes.txt``, LabelImg's own
  layout (its "save in the image's folder"; CVAT imports it too);
- ``labelme``: each image with its labelme JSON beside it (a ``rectangle`` per box) and
  ``labels.txt``, the file labelme's ``--labels`` takes.

Each reads back through ``--data`` as it was written (:mod:`cnnlab.data.voc_folder`,
:mod:`cnnlab.data.labelme`). A box is clipped to its image; one with no area left is dropped
(every format would refuse it on reading).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

DRAFT_FORMATS = ("yolo", "voc", "labelme")

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
