"""Detection data: the images and boxes of each source ``--data`` names (the generated scenes,
YOLO folders, Pascal VOC XML, labelme, COCO files and folders of them, the downloaded sets),
read into one :class:`DetectionData` (boxes ``xyxy`` relative to the image), every box checked
with an error naming its file. Training, decoding and mAP: :mod:`cnnlab.engine.detect`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.config import DetectConfig
from cnnlab.data.coco import coco_files_in, is_number, read_coco
from cnnlab.data.folder import image_to_uint8
from cnnlab.data.labelme import is_labelme_folder, read_labelme_folder
from cnnlab.data.memory import require_image_memory
from cnnlab.data.scenes import (
    check_scene_memory,
    check_scene_size,
    make_scenes,
)
from cnnlab.data.split_folders import (
    given_splits,
    own_or_seeded,
    require_split,
)
from cnnlab.data.voc_folder import is_voc_folder, read_voc_folder
from cnnlab.data.yolo import folder_splits, read_yolo_folder
from cnnlab.errors import CnnlabError, collected
from cnnlab.ops.boxes import box_convert


@dataclass(frozen=True)
class DetectionData:
    """Images ``(N, 3, S, S)`` uint8 with per-image boxes (xyxy relative) and labels;
    ``splits`` when the source names them (a YOLO folder's train/val/test folders);
    ``difficult`` per image, a bool per box, where the source marks boxes that are neither
    trained on nor counted in the evaluation (VOC's ``difficult`` objects)."""

    images: torch.Tensor
    boxes: list[torch.Tensor]
    labels: list[torch.Tensor]
    class_names: list[str]
    splits: dict[str, torch.Tensor] | None = None
    difficult: list[torch.Tensor] | None = None

    def subset(self, idx: torch.Tensor) -> DetectionData:
        i = idx.tolist()
        return DetectionData(
            self.images[idx],
            [self.boxes[k] for k in i],
            [self.labels[k] for k in i],
            self.class_names,
            difficult=[self.difficult[k] for k in i] if self.difficult is not None else None,
        )

    def trained_on(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Image ``k``'s boxes and labels to learn from: all but the difficult ones."""
        if self.difficult is None:
            return self.boxes[k], self.labels[k]
        keep = ~self.difficult[k]
        return self.boxes[k][keep], self.labels[k][keep]


def relabelled(data: DetectionData, known: list[str], source: str) -> DetectionData:
    """``data`` with its box labels renumbered to a checkpoint's classes ``known`` (matched by
    name, :func:`cnnlab.engine.eval_data.class_lookup`)."""
    from cnnlab.engine.eval_data import class_lookup

    lookup = class_lookup(data.class_names, known, source)
    labels = [lookup[lab] for lab in data.labels]
    return DetectionData(data.images, data.boxes, labels, list(known), data.splits, data.difficult)


def scenes_data(
    n: int, image_size: int = 128, num_classes: int = 3, max_objects: int = 6, seed: int = 0
) -> DetectionData:
    """``n`` generated scenes as detection data: images ``(n, 3, S, S)`` uint8, each scene's
    boxes ``(k, 4)`` xyxy in [0, 1] and labels ``(k,)``."""
    check_scene_size(image_size)
    check_scene_memory(n, image_size, max_objects)
    scenes = make_scenes(
        n, seed=seed, image_size=image_size, num_classes=num_classes, max_objects=max_objects
    )
    images = torch.from_numpy(np.stack([s.image for s in scenes])).permute(0, 3, 1, 2)
    return DetectionData(
        images.contiguous(),
        [torch.from_numpy(s.boxes_xyxy) / image_size for s in scenes],
        [torch.from_numpy(s.labels) for s in scenes],
        list(scenes[0].class_names),
    )


def yolo_folder_data(root: str, image_size: int) -> DetectionData:
    """A YOLO label folder (images/ + labels/, one ``class cx cy w h`` line a box) as
    detection data, each image stretched to ``image_size``; its train/val/test folders, if
    any, are the splits."""
    items, names = read_yolo_folder(root)
    require_image_memory(len(items), image_size, root)
    images = torch.stack([image_to_uint8(i.image, image_size, 3, "stretch") for i in items])
    boxes = [box_convert(torch.from_numpy(i.boxes_cxcywh), "cxcywh", "xyxy") for i in items]
    labels = [torch.from_numpy(i.labels) for i in items]
    return DetectionData(images, boxes, labels, names, folder_splits(items))


def voc_folder_data(
    root: str, image_size: int, classes: tuple[Sequence[str], str] | None = None
) -> DetectionData:
    """A folder of VOC XML files (LabelImg's, CVAT's or Roboflow's Pascal VOC;
    :mod:`cnnlab.data.voc_folder`; ``classes``: the names and what lists them, where the folder
    does not) as detection data, each image stretched to ``image_size``, its ``difficult``
    objects flagged as VOC's own are; its split folders or ``ImageSets/Main`` lists, if any,
    are the splits."""
    from cnnlab.data.standard import voc_splits

    items, names = read_voc_folder(root, classes)
    require_image_memory(len(items), image_size, root)
    images = torch.stack([image_to_uint8(i.image, image_size, 3, "stretch") for i in items])
    splits = given_splits([i.split for i in items]) or voc_splits(
        Path(root), "Main", [i.image.stem for i in items]
    )
    return DetectionData(
        images,
        [torch.from_numpy(i.boxes_xyxy) for i in items],
        [torch.from_numpy(i.labels) for i in items],
        names,
        splits,
        [torch.from_numpy(i.difficult) for i in items],
    )


def labelme_data(root: str, image_size: int) -> DetectionData:
    """A folder labelled in labelme (:mod:`cnnlab.data.labelme`) as detection data: each shape's
    bounding box, each image stretched to ``image_size``; its split folders, if any, are the
    splits."""
    items, names = read_labelme_folder(root)
    require_image_memory(len(items), image_size, root)
    images = [image_to_uint8(i.image, image_size, 3, "stretch", str(i.source)) for i in items]
    return DetectionData(
        torch.stack(images),
        [torch.from_numpy(i.boxes_xyxy()) for i in items],
        [torch.from_numpy(i.labels) for i in items],
        names,
        given_splits([i.split for i in items]),
    )


def coco_data(path: str, image_size: int, image_dir: Path | None = None) -> DetectionData:
    """A COCO JSON file; images are looked up in ``image_dir``, or next to it (``images/`` or
    the JSON's folder). Every image, category and box is checked first
    (:func:`cnnlab.data.coco.read_coco`): a bad one is a :class:`CnnlabError` naming the file
    and the entry. Crowd annotations (``iscrowd: 1``, one box around many objects) are left out,
    as detectors trained on COCO do."""
    coco = read_coco(path)
    require_image_memory(len(coco.images), image_size, path)
    per_image: dict[Any, list[tuple[int, list[float]]]] = {i: [] for i in coco.images}
    for k, a in coco.annotations:
        try:
            box = _coco_box(a, coco.images[a["image_id"]], f"{path}: annotation {k}")
        except CnnlabError as exc:  # data check names every bad entry; training the first
            if collected(exc):
                continue
            raise
        if box is not None:
            per_image[a["image_id"]].append((coco.cat_index[a["category_id"]], box))
    tensors, boxes, labels = [], [], []
    for image_id in coco.images:
        try:
            file = coco.image_file(image_id, image_dir)
            tensors.append(image_to_uint8(file, image_size, 3, "stretch"))
        except CnnlabError as exc:
            if collected(exc):
                continue
            raise
        objects = per_image[image_id]
        boxes.append(torch.tensor([b for _, b in objects], dtype=torch.float32).reshape(-1, 4))
        labels.append(torch.tensor([c for c, _ in objects], dtype=torch.int64))
    if not tensors:  # each image's problem collected: nothing is left to count
        raise CnnlabError(f"{path}: no image could be read")
    return DetectionData(torch.stack(tensors), boxes, labels, coco.names)


def _coco_box(a: dict[str, Any], im: dict[str, Any], where: str) -> list[float] | None:
    """Annotation ``a``'s ``bbox`` ``[x, y, w, h]`` in pixels as ``[x1, y1, x2, y2]`` in
    fractions of image ``im``; ``None`` for a crowd annotation (``iscrowd: 1``)."""
    bbox = a.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(is_number(v) for v in bbox)):
        raise CnnlabError(f"{where}: bbox must be 4 finite numbers [x, y, w, h], got {bbox!r}")
    if a.get("iscrowd"):
        return None
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        raise CnnlabError(f"{where}: box has a negative or zero size")
    w_img, h_img = im["width"], im["height"]
    if x < 0 or y < 0 or x + w > w_img + 1e-3 or y + h > h_img + 1e-3:
        raise CnnlabError(f"{where}: box outside image {im['file_name']} ({w_img}x{h_img})")
    return [x / w_img, y / h_img, (x + w) / w_img, (y + h) / h_img]


def joined(parts: list[DetectionData], splits: list[str | None], source: str) -> DetectionData:
    """Detection data read a split at a time (a COCO file per split folder) as one, each part
    the split ``splits`` names; their classes must be the same, in the same order."""
    if len(parts) == 1 and splits[0] is None:
        return parts[0]
    for part in parts[1:]:
        if part.class_names != parts[0].class_names:
            raise CnnlabError(
                f"{source}: its splits' files list different categories "
                f"({', '.join(parts[0].class_names)} against {', '.join(part.class_names)})"
            )
    return DetectionData(
        torch.cat([p.images for p in parts]),
        [b for p in parts for b in p.boxes],
        [label for p in parts for label in p.labels],
        parts[0].class_names,
        given_splits([s for p, s in zip(parts, splits, strict=True) for _ in range(len(p.images))]),
    )


def load_detection_data(config: DetectConfig) -> DetectionData:
    """The images and boxes ``--data`` names: generated scenes, a downloaded COCO or VOC, a
    YOLO folder, a folder of VOC XML files or of labelme JSON files, a COCO .json file or a
    folder of them (one per split folder, as Roboflow exports COCO)."""
    if config.data == "scenes":
        return scenes_data(
            config.images, config.image_size, config.num_classes, config.max_objects, config.seed
        )
    if config.data in ("coco", "coco-train2017"):
        from cnnlab.data.download import require

        folder = require(config.data, config.data_root or None)
        split = "train2017" if config.data == "coco-train2017" else "val2017"
        return coco_data(
            str(folder / "annotations" / f"instances_{split}.json"),
            config.image_size,
            image_dir=folder / split,
        )
    if config.data in ("voc2007", "voc2012"):
        from cnnlab.data.standard import voc_detection

        return voc_detection(config.data, config.data_root or None, config.image_size)
    if config.data.endswith(".json"):
        return coco_data(config.data, config.image_size)
    if coco_files := coco_files_in(config.data):
        return joined(
            [coco_data(str(f), config.image_size) for f, _ in coco_files],
            [split for _, split in coco_files],
            config.data,
        )
    if is_voc_folder(config.data):
        return voc_folder_data(config.data, config.image_size)
    if is_labelme_folder(config.data):
        return labelme_data(config.data, config.image_size)
    return yolo_folder_data(config.data, config.image_size)


def split_of(data: DetectionData, seed: int, split: str, source: str) -> DetectionData:
    """The images of one split, or the error that ``source`` has no such split."""
    parts = own_or_seeded(data.splits, len(data.images), seed)
    return data.subset(require_split(parts, split, source))
