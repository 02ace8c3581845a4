"""Object detection the YOLO way: data, training, decoding, evaluation and pictures.

Decoding is the slide "Outputting the non-max suppressed outputs": for each grid cell take the
A predicted boxes; score each by ``p_c x P(class)``; get rid of low-probability predictions
(``score_threshold``); for each class run non-max suppression; keep the ``top_k`` best.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from rich.console import Console

from cnnlab.config import DetectConfig
from cnnlab.data.coco import coco_files_in, is_number, read_coco
from cnnlab.data.folder import image_to_uint8
from cnnlab.data.images import image_list
from cnnlab.data.labelme import is_labelme_folder, read_labelme_folder
from cnnlab.data.memory import require_image_memory
from cnnlab.data.scenes import (
    MEAN,
    STD,
    check_scene_memory,
    check_scene_size,
    make_scenes,
    standardise,
)
from cnnlab.data.split_folders import (
    final_split,
    given_splits,
    own_or_seeded,
    require_split,
)
from cnnlab.data.voc_folder import is_voc_folder, read_voc_folder
from cnnlab.data.yolo import folder_splits, read_yolo_folder
from cnnlab.engine.checkpoint import model_from_checkpoint
from cnnlab.engine.detection_metrics import (
    coco_evaluate,
    plot_map_against_time,
    plot_pr_curve,
)
from cnnlab.engine.device import resolve_device
from cnnlab.engine.epochs import EpochRun, resumed, run_dir
from cnnlab.engine.performance import FP32, SpeedSettings, choose_settings
from cnnlab.engine.predict import (
    Predictor,
    in_chunks,
    in_frame,
    source_names,
    stretched_chunks,
)
from cnnlab.engine.runlog import (
    batch_slices,
    batches_per_epoch,
    describe_data,
    epoch_progress,
    fingerprint,
    one_cycle,
    optimizer_step,
)
from cnnlab.errors import CnnlabError
from cnnlab.losses.yolo import YoloLoss
from cnnlab.models.backbone import check_batch_of_one
from cnnlab.ops.anchors import assign_targets, decode_boxes, kmeans_anchors, mean_best_iou
from cnnlab.ops.boxes import box_convert
from cnnlab.ops.nms import batched_nms
from cnnlab.registry import create_model


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
    for k, a in enumerate(coco.annotations):
        where = f"{path}: annotation {k}"
        bbox = a.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(is_number(v) for v in bbox)):
            raise CnnlabError(f"{where}: bbox must be 4 finite numbers [x, y, w, h], got {bbox!r}")
        if a.get("iscrowd"):
            continue
        x, y, w, h = bbox
        if w <= 0 or h <= 0:
            raise CnnlabError(f"{where}: box has a negative or zero size")
        im = coco.images[a["image_id"]]
        w_img, h_img = im["width"], im["height"]
        if x < 0 or y < 0 or x + w > w_img + 1e-3 or y + h > h_img + 1e-3:
            raise CnnlabError(f"{where}: box outside image {im['file_name']} ({w_img}x{h_img})")
        box = [x / w_img, y / h_img, (x + w) / w_img, (y + h) / h_img]
        per_image[a["image_id"]].append((coco.cat_index[a["category_id"]], box))
    tensors, boxes, labels = [], [], []
    for image_id in coco.images:
        tensors.append(
            image_to_uint8(coco.image_file(image_id, image_dir), image_size, 3, "stretch")
        )
        objects = per_image[image_id]
        boxes.append(torch.tensor([b for _, b in objects], dtype=torch.float32).reshape(-1, 4))
        labels.append(torch.tensor([c for c, _ in objects], dtype=torch.int64))
    return DetectionData(torch.stack(tensors), boxes, labels, coco.names)


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


def make_batch(
    data: DetectionData, idx: torch.Tensor, mirror: bool, augment: torch.nn.Module | None = None
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Standardised images and their boxes. ``mirror`` flips half the images (``x -> 1 - x``
    boxes); ``augment`` is a kornia pipeline with data keys ``input`` and ``bbox_xyxy`` that moves
    the boxes with the image (boxes are padded per batch and the padding dropped afterwards;
    boxes squeezed below 4 square pixels, or pushed out of the image, are dropped too)."""
    x = data.images[idx].float().div_(255)
    pairs = [data.trained_on(i) for i in idx.tolist()]
    boxes = [b.clone() for b, _ in pairs]
    labels = [lab for _, lab in pairs]
    if mirror:
        flip = torch.rand(len(idx)) < 0.5
        x[flip] = x[flip].flip(-1)
        for k in flip.nonzero().flatten().tolist():
            b = boxes[k]
            boxes[k] = torch.stack([1 - b[:, 2], b[:, 1], 1 - b[:, 0], b[:, 3]], 1)
    if augment is not None:
        h, w = x.shape[-2:]
        scale = torch.tensor([w, h, w, h], dtype=torch.float32)
        n = max(1, max(len(b) for b in boxes))
        padded = torch.zeros(len(boxes), n, 4)
        for k, b in enumerate(boxes):
            padded[k, : len(b)] = b * scale
        x, moved = augment(x, padded)
        new_boxes, new_labels = [], []
        for k, (b, lab) in enumerate(zip(boxes, labels, strict=True)):
            m = moved[k, : len(b)].clone()
            m[:, 0::2] = m[:, 0::2].clamp(0, w)
            m[:, 1::2] = m[:, 1::2].clamp(0, h)
            keep = ((m[:, 2] - m[:, 0]) * (m[:, 3] - m[:, 1])) >= 4
            new_boxes.append(m[keep] / scale)
            new_labels.append(lab[keep])
        boxes, labels = new_boxes, new_labels
    return (x - MEAN) / STD, boxes, labels


@torch.no_grad()
def decode(
    pred: torch.Tensor,
    anchors: torch.Tensor,
    score_threshold: float = 0.05,
    iou_threshold: float = 0.5,
    top_k: int = 100,
) -> list[dict[str, torch.Tensor]]:
    """Raw ``(B, S, S, A, 5 + C)`` -> per image ``boxes`` (xyxy relative), ``scores``,
    ``labels``: score = p_c x P(class), threshold, per-class NMS, top-k."""
    boxes = decode_boxes(pred[..., 1:3], pred[..., 3:5].flip(-1), anchors)
    scores = torch.sigmoid(pred[..., 0:1]) * pred[..., 5:].softmax(-1)  # (B, S, S, A, C)
    out = []
    for n in range(len(pred)):
        s, c = scores[n].reshape(-1, scores.shape[-1]).max(1)
        b = boxes[n].reshape(-1, 4).clamp(0, 1)
        keep = s >= score_threshold
        b, s, c = b[keep], s[keep], c[keep]
        kept = batched_nms(b, s, c, iou_threshold)[:top_k]
        out.append({"boxes": b[kept], "scores": s[kept], "labels": c[kept]})
    return out


@torch.no_grad()
def detect_images(
    model: torch.nn.Module,
    images: torch.Tensor,
    score_threshold: float = 0.3,
    iou_threshold: float = 0.5,
) -> list[dict[str, torch.Tensor]]:
    """``images (N, 3, S, S)`` uint8 -> per image :func:`decode`'s ``boxes`` (xyxy in the
    ``S x S`` input's pixels), ``scores`` and ``labels``, 64 images a forward pass."""
    size, dets = images.shape[-1], []
    for chunk in images.split(64):
        dets += decode(
            model(standardise(chunk.float())), model.anchors, score_threshold, iou_threshold
        )
    return [{k: (v * size if k == "boxes" else v) for k, v in d.items()} for d in dets]


def detection_rows(
    dets: list[dict[str, torch.Tensor]],
    class_names: Sequence[str],
    sources: Sequence[str],
    frames: Sequence[tuple[int, int]],
    size: int,
) -> list[dict[str, Any]]:
    """One row per image: ``source``, its ``image_size`` and each detection's ``label``,
    ``score`` and ``box_xyxy`` in the file's own ``(width, height)`` pixels."""
    return [
        {
            "source": src,
            "image_size": list(frame),
            "detections": [
                {
                    "label": class_names[int(c)],
                    "score": round(float(sc), 4),
                    "box_xyxy": in_frame(b.tolist(), size, frame),
                }
                for b, sc, c in zip(d["boxes"], d["scores"], d["labels"], strict=True)
            ],
        }
        for src, d, frame in zip(sources, dets, frames, strict=True)
    ]


class Detector(Predictor):
    """A trained detector loaded once for many images (a folder's photos, a video's frames): a
    run's ``best.pt`` on a device, or a file ``cnnlab export`` wrote, run by ONNX Runtime.
    ``network`` maps a standardised ``(N, 3, S, S)`` CPU batch to YOLO's raw output and has
    the ``anchors`` decoding needs; ``meta`` holds ``class_names`` and ``input_size``.

    >>> detector = Detector.load("runs/detect/yolo-scenes/best.pt")  # doctest: +SKIP
    >>> detector.predict_images([frame])[0]["detections"]  # doctest: +SKIP
    """

    TASK: ClassVar[str] = "detection"

    def predict_files(
        self, images: Sequence[Any], score_threshold: float = 0.3, iou_threshold: float = 0.5
    ) -> list[dict[str, Any]]:
        """Images -> :func:`detection_rows`: each stretched to the detector's input, as training
        saw its images, and the boxes brought back to the image's own pixels. Files, or images
        a program holds (Pillow images, numpy ``uint8`` arrays: a camera frame), named
        ``images[i]`` (:func:`~cnnlab.engine.predict.preprocess`)."""
        images = image_list(images)  # a generator too, or one image alone
        size = self.meta["input_size"][-1]
        dets, frames, _ = in_chunks(
            stretched_chunks(images, size),
            lambda x: detect_images(self.network, x, score_threshold, iou_threshold),
            size,
        )
        return detection_rows(dets, self.class_names, source_names(images), frames, size)


def predict_files(
    checkpoint: str | Path,
    paths: Sequence[Any],
    score_threshold: float = 0.3,
    iou_threshold: float = 0.5,
) -> list[dict[str, Any]]:
    """:meth:`Detector.predict_files` of a checkpoint loaded for this one call, on the CPU."""
    detector = Detector.load(checkpoint, device="cpu")
    return detector.predict_files(paths, score_threshold, iou_threshold)


@torch.no_grad()
def evaluate_detector(
    model: torch.nn.Module,
    data: DetectionData,
    device: torch.device,
    batch_size: int = 64,
    settings: SpeedSettings = FP32,
) -> dict[str, Any]:
    """COCO mAP@[.5:.95], mAP@0.5 and mAP@0.75 (pycocotools) of the decoded, non-max-
    suppressed predictions on every image of ``data``, boxes in pixels; VOC's difficult boxes
    count neither way. ``settings``: run the network as training does (bf16 autocast,
    channels-last), for the per-epoch validation; by default float32 (the reported figures)."""
    model.eval()
    preds = []
    for idx in torch.arange(len(data.images)).split(batch_size):
        x, _, _ = make_batch(data, idx, mirror=False)
        preds += decode(settings.forward(model, x.to(device), device).cpu(), model.anchors.cpu())
    size = data.images.shape[-1]
    p = [{k: (v * size if k == "boxes" else v) for k, v in d.items()} for d in preds]
    t = [{"boxes": b * size, "labels": lab} for b, lab in zip(data.boxes, data.labels, strict=True)]
    if data.difficult is not None:  # neither found nor missed: pycocotools' ignore regions
        for target, difficult in zip(t, data.difficult, strict=True):
            target["ignore"] = difficult
    return coco_evaluate(p, t, len(data.class_names))


def train_detector(
    config: DetectConfig, console: Console | None = None, resume: str | Path = ""
) -> dict[str, Any]:
    """Train a YOLO detector; write ``out/`` with checkpoints, ``metrics.csv`` (mAP per epoch
    against elapsed time), ``map_time.png`` (the same as a figure), ``pr_curve.png`` and
    ``results.json``. The best epoch's checkpoint is measured on the test split, or on val when
    the data's folders have train and val only (``evaluated_on`` says which). ``resume``: a
    run's ``last.pt`` to continue with its own settings, in its folder
    (:mod:`cnnlab.engine.resume`)."""
    console = console or Console(stderr=True)
    started = time.perf_counter()
    config, ckpt = resumed(config, DetectConfig, "detection", resume)
    device = resolve_device(config.device)
    settings = choose_settings(
        config.backbone, device, config.precision, image_size=config.image_size
    )
    data = load_detection_data(config)
    parts = own_or_seeded(data.splits, len(data.images), config.seed)
    final = final_split(parts)
    train, val, test = (data.subset(parts[k]) for k in ("train", "val", final))
    trained = [train.trained_on(k)[0] for k in range(len(train.images))]
    wh = torch.cat([b[:, 2:] - b[:, :2] for b in trained])
    if not len(wh):  # the anchors are fitted to these boxes, and the loss needs objects
        raise CnnlabError(f"{config.data}: no boxes in the training images; nothing to detect")
    anchors = kmeans_anchors(wh, config.anchors, seed=config.seed)
    torch.manual_seed(config.seed)
    kwargs = {
        "backbone": config.backbone,
        "num_classes": len(data.class_names),
        "anchors": tuple(tuple(round(v, 4) for v in a) for a in anchors.tolist()),
        "input_size": config.image_size,
    }
    model = create_model("yolo", **kwargs).to(device)
    size = (3, config.image_size, config.image_size)
    check_batch_of_one(model, size, config.batch_size, f"yolo ({config.backbone})")
    with torch.no_grad():  # the grid, from one image: in eval mode (batch norm)
        grid = model.eval()(torch.zeros(1, *size, device=device)).shape[1]
    model.train()
    model = settings.layout(model)
    loss_fn = YoloLoss()
    from cnnlab.data.augment import build_augmentation, parse_augment

    augment = build_augmentation(
        parse_augment(config.augment),
        image_size=config.image_size,
        channels=3,
        data_keys=("input", "bbox_xyxy"),
    )
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=5e-4)
    steps = batches_per_epoch(len(train.images), config.batch_size) * config.epochs
    sched = one_cycle(opt, config.lr, steps)
    anchor_iou = mean_best_iou(wh, anchors)
    out = run_dir(config.out, "detect", resume)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(
        json.dumps(
            asdict(config)
            | {
                "anchors_resolved": kwargs["anchors"],
                "grid": grid,
                "anchor_mean_iou": anchor_iou,
                "settings": settings.to_dict(),
            },
            indent=2,
        )
        + "\n"
    )
    base = {
        "model": "yolo",
        "model_kwargs": kwargs,
        "config": asdict(config),
        "class_names": data.class_names,
        "input_size": [3, config.image_size, config.image_size],
        "data_fingerprint": {k: fingerprint(data.images[v]) for k, v in parts.items()},
    }
    run = EpochRun.begin("cnnlab detect train", out, base, config.patience, ckpt)
    run.restore(resume, model, opt, sched, train.images)
    started -= run.seconds_before
    about = describe_data(config.data, len(data.class_names), parts)
    about += f", {len(wh):,} training boxes, {len(anchors)} anchors (mean IoU {anchor_iou:.2f})"
    name = f"yolo ({config.backbone}, {grid}x{grid} grid)"
    run.announce(
        console, name, model, size, about, device, settings.describe(), epochs=config.epochs
    )
    with run.hint(), epoch_progress(console) as progress:
        task = progress.add_task("train", total=config.epochs, completed=run.start - 1, stats="")
        for epoch in run.epochs(config.epochs):
            model.train()
            total = 0.0
            for idx in batch_slices(torch.randperm(len(train.images)), config.batch_size):
                x, boxes, labels = make_batch(train, idx, config.mirror, augment)
                targets = assign_targets(boxes, labels, grid, anchors)
                pred = settings.forward(model, x.to(device), device)
                loss, _ = loss_fn(pred, targets, model.anchors, boxes)
                value = optimizer_step(loss, opt, sched, f"epoch {epoch}", settings.bf16, run.saved)
                total += value * len(idx)
            ev = evaluate_detector(model, val, device, settings=settings)  # as it trains
            row = {
                "epoch": epoch,
                "seconds": round(time.perf_counter() - started, 1),
                "train_loss": total / len(train.images),
                "val_map_50": ev["map_50"],
                "val_map": ev["map"],
            }
            halt = run.end_epoch(model, row, ev["map_50"], opt, sched)
            progress.update(
                task,
                advance=1,
                stats=(f"loss {row['train_loss']:.3f}  mAP@0.5 {ev['map_50']:.3f}"),
            )
            if halt:
                break
    run.finish(console, "mAP@0.5")
    model, _ = model_from_checkpoint(out / "best.pt")
    ev = evaluate_detector(model.to(device), test, device)
    plot_pr_curve(ev, out / "pr_curve.png", class_names=test.class_names)
    plot_map_against_time(run.rows, out / "map_time.png")
    result = {
        "run_dir": str(out),
        "evaluated_on": final,
        f"{final}_map_50": ev["map_50"],
        f"{final}_map": ev["map"],
        f"{final}_map_75": ev["map_75"],
        f"{final}_per_class": dict(zip(test.class_names, ev["per_class"], strict=True)),
        "seconds": round(time.perf_counter() - started, 1),
        "grid": grid,
        "stopped_early_at": run.stop.stopped_at,
        "anchors": kwargs["anchors"],
    }
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def draw_detections(
    images: torch.Tensor,
    detections: list[dict[str, torch.Tensor]],
    class_names: list[str],
    path: str | Path,
    min_score: float = 0.3,
) -> Path:
    """A grid of images with labelled boxes (pixels) drawn."""
    from matplotlib.patches import Rectangle

    from cnnlab.viz.plots import BOX_COLOURS as colours
    from cnnlab.viz.plots import plt, save_figure

    cols = min(4, len(images))
    rows = math.ceil(len(images) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, det in zip(axes.flat, images, detections, strict=False):
        ax.imshow(img.permute(1, 2, 0).numpy())
        for box, score, label in zip(
            det["boxes"].tolist(), det["scores"].tolist(), det["labels"].tolist(), strict=True
        ):
            if score < min_score:
                continue
            x1, y1, x2, y2 = box
            colour = colours[label % len(colours)]
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=colour, lw=1.5))
            ax.text(
                x1,
                y1,
                f"{class_names[label]} {score:.2f}",
                color="black",
                fontsize=6,
                bbox={"facecolor": colour, "pad": 1, "lw": 0},
            )
    return save_figure(fig, path, dpi=100)
