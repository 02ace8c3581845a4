"""Reading YOLO-format label folders: ``root/images/*.png`` with ``root/labels/*.txt``, one line
``class cx cy w h`` per object (relative to the image), and ``root/classes.txt``.

Bad annotations are reported with file and line: a malformed line, an unknown class id, a
negative or zero size, a box outside the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnlab.errors import CnnlabError

EPS = 1e-6


@dataclass(frozen=True)
class YoloImage:
    """One image's path, labels and boxes (``cxcywh`` relative to the image)."""

    image: Path
    labels: np.ndarray  # (N,) int64
    boxes_cxcywh: np.ndarray  # (N, 4) float32 in [0, 1]


def parse_label_file(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, boxes)`` of one label file; :class:`CnnlabError` names file and line."""
    labels, boxes = [], []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        where = f"{path}:{n}"
        if len(parts) != 5:
            raise CnnlabError(f"{where}: expected 'class cx cy w h', got {line.strip()!r}")
        try:
            cls = int(parts[0])
            cx, cy, w, h = (float(v) for v in parts[1:])
        except ValueError:
            raise CnnlabError(f"{where}: not numbers: {line.strip()!r}") from None
        if not np.isfinite([cx, cy, w, h]).all():  # nan passes every comparison below
            raise CnnlabError(f"{where}: not finite numbers: {line.strip()!r}")
        if not 0 <= cls < num_classes:
            raise CnnlabError(f"{where}: unknown class id {cls} (classes.txt has {num_classes})")
        if w <= 0 or h <= 0:
            raise CnnlabError(f"{where}: box has a negative or zero size ({w} x {h})")
        if cx - w / 2 < -EPS or cy - h / 2 < -EPS or cx + w / 2 > 1 + EPS or cy + h / 2 > 1 + EPS:
            raise CnnlabError(f"{where}: box lies outside the image")
        labels.append(cls)
        boxes.append([cx, cy, w, h])
    return np.array(labels, np.int64), np.array(boxes, np.float32).reshape(-1, 4)


def read_yolo_folder(root: str | Path) -> tuple[list[YoloImage], list[str]]:
    """Every image of ``root/images`` with its labels (an image without a label file has no
    objects), and the class names."""
    root = Path(root)
    classes_file = root / "classes.txt"
    if not classes_file.is_file():
        raise CnnlabError(f"{classes_file}: missing (one class name per line)")
    class_names = [c.strip() for c in classes_file.read_text().splitlines() if c.strip()]
    images = sorted(p for p in (root / "images").glob("*") if p.is_file())
    if not images:
        raise CnnlabError(f"{root / 'images'}: no images")
    items = []
    for image in images:
        label_file = root / "labels" / f"{image.stem}.txt"
        if label_file.is_file():
            labels, boxes = parse_label_file(label_file, len(class_names))
        else:
            labels, boxes = np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
        items.append(YoloImage(image, labels, boxes))
    return items, class_names
