"""R-CNN, Fast R-CNN and Faster R-CNN trained and compared on the same scenes (slide "Faster
algorithms"; the network: :mod:`cnnlab.models.rcnn`).

Each method is trained from the same seed on the same synthetic scenes and scored on the same
test scenes (COCO mAP by pycocotools). What changes is only what the slide names:

- R-CNN and Fast R-CNN classify selective-search proposals (:mod:`cnnlab.ops.proposals`);
  R-CNN runs the CNN once per region on a warped crop, Fast R-CNN once per image and RoI-pools
  each region from the shared map.
- Faster R-CNN proposes its own regions from that map (its region proposal network, trained
  with the head: "approximate joint training", as torchvision does, not the paper's four
  alternating steps).

Training samples regions as Fast R-CNN does (section 2.3): each image's proposals plus its
ground-truth boxes, labelled with the class of the object they overlap by IoU >= 0.5 and as
background below; ``regions`` of them an image, at most a quarter objects. The loss is
cross-entropy over the ``K + 1`` classes plus the smooth-L1 loss of the object regions' box
deltas for their class. The RPN's anchors (at every cell, ``A`` shapes by k-means over the
training boxes, YOLOv2's choice, or with ``anchor_shapes="paper"`` the paper's 3 scales x 3
aspect ratios scaled to the image) are objects at IoU >= 0.7 (and each object's best anchor),
background below 0.3, 64 sampled an image, at most half objects.

At test time every method outputs, per class, each region's box moved by its deltas, scored by
the class probability; boxes under 0.05 are dropped and per-class non-max suppression at IoU
0.3 (R-CNN's) keeps the rest.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.config import RegionsConfig
from cnnlab.data.memory import require_memory
from cnnlab.data.scenes import make_scenes, standardise
from cnnlab.models.rcnn import STRIDE, RegionNet
from cnnlab.ops.anchors import kmeans_anchors, paper_anchors
from cnnlab.ops.boxes import box_iou
from cnnlab.ops.nms import batched_nms, nms
from cnnlab.ops.proposals import selective_search
from cnnlab.ops.roi import decode_deltas, encode_deltas

SCENE_CLASSES = 3  # pedestrian, car, motorcycle: the slides' classes
SCORE_THRESHOLD, NMS_IOU, MAX_DETECTIONS = 0.05, 0.3, 100
RPN_POSITIVE, RPN_NEGATIVE, RPN_SAMPLES = 0.7, 0.3, 64
RPN_PRE_NMS, RPN_NMS_IOU, RPN_POST_NMS = 600, 0.7, 100  # proposals kept a test image


@dataclass
class RegionData:
    """Scenes with their objects and selective-search proposals (all boxes xyxy pixels)."""

    images: torch.Tensor  # (N, 3, S, S) float, standardised
    raw: np.ndarray  # (N, S, S, 3) uint8, for drawing
    boxes: list[torch.Tensor]  # (G_i, 4) each
    labels: list[torch.Tensor]  # (G_i,) each, 0-based classes
    proposals: list[torch.Tensor]  # (P_i, 4) each
    seconds_per_proposal_image: float  # selective search's time an image


def scene_regions(
    n: int,
    config: RegionsConfig,
    seed: int,
    tick: Callable[[], None] = lambda: None,
    propose: bool = True,
) -> RegionData:
    """``n`` scenes of ``config.image_size`` pixels (3 classes) and, when ``propose``, their
    selective-search proposals (otherwise none: Faster R-CNN proposes its own); ``tick`` is
    called after each image's selective search (a progress bar)."""
    scenes = make_scenes(
        n,
        seed=seed,
        image_size=config.image_size,
        num_classes=SCENE_CLASSES,
        max_objects=config.max_objects,
    )
    raw = np.stack([s.image for s in scenes])
    proposals, started = [], time.perf_counter()
    for s in scenes:
        if propose:
            proposals.append(torch.from_numpy(selective_search(s.image)))
            tick()
        else:
            proposals.append(torch.zeros(0, 4))
    seconds = (time.perf_counter() - started) / max(n, 1)
    return RegionData(
        images=standardise(torch.from_numpy(raw).permute(0, 3, 1, 2).float()),
        raw=raw,
        boxes=[torch.from_numpy(s.boxes_xyxy) for s in scenes],
        labels=[torch.from_numpy(s.labels) for s in scenes],
        proposals=proposals,
        seconds_per_proposal_image=seconds,
    )


def label_regions(
    regions: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, fg_iou: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fast R-CNN's region labels: ``regions (P, 4)`` against the objects ``boxes (G, 4)``,
    ``labels (G,)`` -> each region's class ``(P,)`` (``label + 1`` of the object it overlaps
    most when IoU >= ``fg_iou``; 0, background, otherwise) and that object's box ``(P, 4)``."""
    classes = torch.zeros(len(regions), dtype=torch.int64, device=regions.device)
    matched = torch.zeros_like(regions)
    if len(boxes) and len(regions):
        best, index = box_iou(regions, boxes).max(1)
        matched = boxes[index]
        classes = torch.where(best >= fg_iou, labels[index] + 1, classes)
    return classes, matched


def sample(
    positive: torch.Tensor,
    negative: torch.Tensor,
    count: int,
    fraction: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Indices of up to ``count`` examples: up to ``fraction`` of them drawn from the
    ``positive`` mask ``(P,)``, the rest from the ``negative`` one, without replacement."""
    pos, neg = positive.nonzero().flatten(), negative.nonzero().flatten()
    pos = pos[torch.randperm(len(pos), generator=generator)[: int(count * fraction)]]
    neg = neg[torch.randperm(len(neg), generator=generator)[: count - len(pos)]]
    return torch.cat([pos, neg])


def anchor_boxes(shapes: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
    """Faster R-CNN's anchors: every shape ``(A, 2)`` (w, h pixels) centred on every cell of an
    ``grid_h x grid_w`` map at :data:`STRIDE` -> ``(grid_h, grid_w, A, 4)`` xyxy pixels."""
    ys = (torch.arange(grid_h, dtype=shapes.dtype, device=shapes.device) + 0.5) * STRIDE
    xs = (torch.arange(grid_w, dtype=shapes.dtype, device=shapes.device) + 0.5) * STRIDE
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")
    centre = torch.stack([cx, cy], -1)[:, :, None, :]  # (S_h, S_w, 1, 2)
    half = shapes[None, None] / 2
    return torch.cat([centre - half, centre + half], -1)


def label_anchors(anchors: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The RPN's targets: ``anchors (M, 4)`` against objects ``boxes (G, 4)`` -> ``(M,)`` of 1
    (object: IoU >= 0.7, or the best anchor of some object), 0 (background: IoU < 0.3) and -1
    (neither: not trained on), and each anchor's best object ``(M, 4)``."""
    if not len(boxes):
        return anchors.new_zeros(len(anchors), dtype=torch.int64), torch.zeros_like(anchors)
    iou = box_iou(anchors, boxes)  # (M, G)
    best, index = iou.max(1)
    target = torch.full((len(anchors),), -1, dtype=torch.int64, device=anchors.device)
    target[best < RPN_NEGATIVE] = 0
    target[best >= RPN_POSITIVE] = 1
    top = iou.max(0).values  # each object's best IoU: its anchors are objects however low
    target[((iou == top[None]) & (top[None] > 0)).any(1)] = 1
    return target, boxes[index]


def rpn_regions(
    objectness: torch.Tensor, deltas: torch.Tensor, anchors: torch.Tensor, image_size: int
) -> torch.Tensor:
    """One image's proposals from its RPN outputs (``(S_h, S_w, A)``, ``(S_h, S_w, A, 4)``) and
    ``anchors (S_h, S_w, A, 4)``: every anchor moved by its deltas and clipped to the image,
    the :data:`RPN_PRE_NMS` most object-like, NMS at IoU 0.7, the best :data:`RPN_POST_NMS`."""
    boxes = decode_deltas(anchors.reshape(-1, 4), deltas.reshape(-1, 4)).clamp(0, image_size)
    scores = objectness.reshape(-1)
    wide = ((boxes[:, 2:] - boxes[:, :2]) >= 1).all(1)
    boxes, scores = boxes[wide], scores[wide]
    top = scores.topk(min(RPN_PRE_NMS, len(scores))).indices
    keep = nms(boxes[top], scores[top], RPN_NMS_IOU)[:RPN_POST_NMS]
    return boxes[top][keep]


def _box_loss(deltas: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fast R-CNN's smooth L1 (eq. 3), summed over the 4 deltas of each row."""
    return F.smooth_l1_loss(deltas, targets, reduction="sum", beta=1.0)


class RegionTrainer:
    """Trains one :class:`RegionNet` by one method on :class:`RegionData` (module docstring)."""

    def __init__(self, method: str, config: RegionsConfig, data: RegionData, device: torch.device):
        self.method, self.config, self.data, self.device = method, config, data, device
        torch.manual_seed(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.model = RegionNet(
            num_classes=SCENE_CLASSES, anchors=config.anchor_count(), crop_size=config.crop_size
        ).to(device)
        self.boxes = [b.to(device) for b in data.boxes]
        self.labels = [lab.to(device) for lab in data.labels]
        if method == "faster-rcnn":  # its anchors: k-means or the paper's shapes at every cell
            if config.anchor_shapes == "paper":
                found = paper_anchors(config.image_size).to(device)
            else:
                shapes = torch.cat([b[:, 2:] - b[:, :2] for b in data.boxes])
                found = kmeans_anchors(shapes, config.anchors, seed=config.seed).to(device)
            grid = config.image_size // STRIDE
            self.anchors = anchor_boxes(found, grid, grid)  # (S, S, A, 4)
            flat = self.anchors.reshape(-1, 4)  # each image's anchor labels, once
            self.anchor_targets = [label_anchors(flat, b) for b in self.boxes]
        else:  # selective search's regions and the objects themselves, labelled once
            self.region_targets = []
            for proposals, b, lab in zip(data.proposals, self.boxes, self.labels, strict=True):
                regions = torch.cat([proposals.to(device), b])
                self.region_targets.append((regions, *label_regions(regions, b, lab)))

    def rpn_loss(
        self, objectness: torch.Tensor, deltas: torch.Tensor, batch: torch.Tensor
    ) -> torch.Tensor:
        """Binary cross-entropy of the sampled anchors' objectness plus the smooth L1 of the
        object anchors' deltas, over the batch's images; averaged over the sampled anchors."""
        flat = self.anchors.reshape(-1, 4)
        total, count = objectness.new_zeros(()), 0
        for b, i in enumerate(batch.tolist()):
            target, matched = self.anchor_targets[i]
            chosen = sample(target == 1, target == 0, RPN_SAMPLES, 0.5, self.generator)
            logits = objectness[b].reshape(-1)[chosen]
            total = total + F.binary_cross_entropy_with_logits(
                logits, target[chosen].float(), reduction="sum"
            )
            pos = chosen[target[chosen] == 1]
            if len(pos):
                wanted = encode_deltas(flat[pos], matched[pos])
                total = total + _box_loss(deltas[b].reshape(-1, 4)[pos], wanted)
            count += len(chosen)
        return total / max(count, 1)

    def classify(
        self, images: torch.Tensor, features: torch.Tensor | None, rois: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores and deltas of ``rois (R, 5)``: R-CNN from the warped regions of ``images``,
        the others from the shared ``features`` of the whole images."""
        if self.method == "rcnn":
            return self.model.classify_crops(images, rois)
        return self.model.classify_regions(features, rois)

    def step(self, batch: torch.Tensor) -> torch.Tensor:
        """One mini-batch of images: the detection loss (plus the RPN's for Faster R-CNN)."""
        x = self.data.images[batch].to(self.device)
        model, loss = self.model, torch.zeros((), device=self.device)
        features = model.backbone(x) if self.method != "rcnn" else None
        if self.method == "faster-rcnn":  # this step's proposals, labelled afresh
            objectness, deltas = model.propose(features)
            loss = loss + self.rpn_loss(objectness, deltas, batch)
            targets = []
            for o, d, i in zip(objectness.detach(), deltas.detach(), batch.tolist(), strict=True):
                regions = rpn_regions(o, d, self.anchors, self.config.image_size)
                regions = torch.cat([regions, self.boxes[i]])
                targets.append((regions, *label_regions(regions, self.boxes[i], self.labels[i])))
        else:
            targets = [self.region_targets[i] for i in batch.tolist()]
        rois, classes, matched = [], [], []
        for b, (regions, cls, box) in enumerate(targets):
            chosen = sample(cls > 0, cls == 0, self.config.regions, 0.25, self.generator)
            rois.append(
                torch.cat([torch.full((len(chosen), 1), b).to(regions), regions[chosen]], 1)
            )
            classes.append(cls[chosen])
            matched.append(box[chosen])
        roi, cls, box = torch.cat(rois), torch.cat(classes), torch.cat(matched)
        scores, deltas = self.classify(x, features, roi)
        loss = loss + F.cross_entropy(scores, cls)
        fg = cls > 0
        if fg.any():
            own = deltas[fg, cls[fg] - 1]  # each object region's deltas for its class
            loss = loss + _box_loss(own, encode_deltas(roi[fg, 1:], box[fg])) / len(cls)
        return loss

    def train(self, tick: Callable[[float], None] = lambda loss: None) -> float:
        """``config.epochs`` passes over the scenes (AdamW, cosine learning rate); ``tick`` gets
        each epoch's mean loss. Returns the seconds taken."""
        started = time.perf_counter()
        n, size = len(self.data.images), self.config.batch_size
        steps = self.config.epochs * math.ceil(n / size)
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.config.lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
        self.model.train()
        for _ in range(self.config.epochs):
            total = 0.0
            for batch in torch.randperm(n, generator=self.generator).split(size):
                loss = self.step(batch)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                total += loss.item() * len(batch)
            tick(total / n)
        return time.perf_counter() - started

    @torch.no_grad()
    def detect(
        self, data: RegionData, chunk: int = 16
    ) -> tuple[list[dict[str, torch.Tensor]], list[int]]:
        """Each image's detections: ``boxes (D, 4)`` xyxy pixels, ``scores (D,)``, ``labels
        (D,)`` 0-based (module docstring), ``chunk`` images at a time; and how many regions
        each image's were picked from."""
        self.model.eval()
        out, counts = [], []
        for batch in torch.arange(len(data.images)).split(chunk):
            x = data.images[batch].to(self.device)
            features = self.model.backbone(x) if self.method != "rcnn" else None
            regions = [data.proposals[i].to(self.device) for i in batch.tolist()]
            if self.method == "faster-rcnn":
                objectness, deltas = self.model.propose(features)
                regions = [
                    rpn_regions(o, d, self.anchors, self.config.image_size)
                    for o, d in zip(objectness, deltas, strict=True)
                ]
            counts += [len(r) for r in regions]
            index = torch.cat([torch.full((len(r), 1), b) for b, r in enumerate(regions)])
            roi = torch.cat([index.to(x), torch.cat(regions)], 1)
            scores, deltas = self.classify(x, features, roi)
            probs = scores.softmax(1)[:, 1:]
            for b in range(len(batch)):
                mine = roi[:, 0] == b
                out.append(_detections(roi[mine, 1:], probs[mine], deltas[mine], x.shape[-1]))
        return out, counts


def _detections(
    regions: torch.Tensor, probs: torch.Tensor, deltas: torch.Tensor, image_size: int
) -> dict[str, torch.Tensor]:
    """One image's regions ``(R, 4)``, class probabilities ``(R, K)`` and deltas ``(R, K, 4)``
    -> its detections: a box a region and class, thresholded, per-class NMS."""
    r, k = probs.shape
    boxes = decode_deltas(regions.repeat_interleave(k, 0), deltas.reshape(-1, 4))
    boxes = boxes.clamp(0, image_size)
    scores, labels = probs.reshape(-1), torch.arange(k, device=probs.device).repeat(r)
    keep = scores >= SCORE_THRESHOLD
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    kept = batched_nms(boxes, scores, labels, NMS_IOU)[:MAX_DETECTIONS]
    return {"boxes": boxes[kept].cpu(), "scores": scores[kept].cpu(), "labels": labels[kept].cpu()}


def compare_methods(
    config: RegionsConfig,
    device: torch.device,
    progress: Any = None,
) -> dict[str, Any]:
    """Train each of ``config.methods`` on the same training scenes, detect on the same test
    scenes; one row a method: regions and CNN passes an image, seconds an image to propose
    and to run the network, COCO mAP and mAP@0.5, training seconds. ``progress``: a rich
    progress bar (or ``None``)."""
    from cnnlab.engine.detection_metrics import coco_evaluate

    def bar(label: str, total: int) -> Callable[..., None]:
        if progress is None:
            return lambda *_: None
        task = progress.add_task(label, total=total, stats="")  # description: what is counted
        return lambda *stats: progress.update(
            task, advance=1, stats=f"loss {stats[0]:.3f}" if stats else ""
        )

    methods = config.method_list()
    n, size = config.images + config.test_images, config.image_size
    require_memory(  # uint8 pixels and masks while drawn, then the float images
        n * size * size * (3 + config.max_objects + 12),
        f"--images {config.images} and --test-images {config.test_images} at {size} px",
        "use fewer scenes",
    )
    propose = any(m != "faster-rcnn" for m in methods)  # selective search, once a scene
    scenes = {}
    for part, count, seed in (
        ("training", config.images, config.seed),
        ("test", config.test_images, config.seed + 1),
    ):
        tick = bar(f"selective search, {part} scenes", count) if propose else (lambda: None)
        scenes[part] = scene_regions(count, config, seed, tick, propose)
    train, test = scenes["training"], scenes["test"]
    targets = [{"boxes": b, "labels": lab} for b, lab in zip(test.boxes, test.labels, strict=True)]
    rows, detected = [], {}
    for method in methods:
        trainer = RegionTrainer(method, config, train, device)
        seconds = trainer.train(bar(f"{method}, epoch", config.epochs))
        started = time.perf_counter()
        detections, counts = trainer.detect(test)
        network = (time.perf_counter() - started) / len(test.images)
        scores = coco_evaluate(detections, targets, SCENE_CLASSES)
        selective = method != "faster-rcnn"
        regions = float(np.mean(counts))
        rows.append(
            {
                "method": method,
                "proposals": "selective search" if selective else "region proposal network",
                "regions_per_image": regions,
                "cnn_passes_per_image": regions if method == "rcnn" else 1.0,
                "ms_proposals_per_image": 1e3 * test.seconds_per_proposal_image
                if selective
                else 0.0,
                "ms_network_per_image": 1e3 * network,
                "map": float(scores["map"]),
                "map_50": float(scores["map_50"]),
                "train_seconds": seconds,
            }
        )
        detected[method] = detections
    return {"rows": rows, "test": test, "detections": detected}


def draw_comparison(
    result: dict[str, Any], path: Any, scenes: int = 4, min_score: float = 0.5
) -> Any:
    """A figure of the first ``scenes`` test scenes (rows): their selective-search proposals,
    then each method's detections scoring at least ``min_score`` (columns); the objects' true
    boxes dashed white."""
    from matplotlib.patches import Rectangle

    from cnnlab.viz.plots import plt, save_figure

    test: RegionData = result["test"]
    methods = list(result["detections"])
    n = min(scenes, len(test.images))
    cols = 1 + len(methods)
    fig, axes = plt.subplots(n, cols, figsize=(2.6 * cols, 2.6 * n), squeeze=False)
    colours = ("yellow", "cyan", "magenta")

    def box(ax: Any, b: list[float], **style: Any) -> None:
        ax.add_patch(Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, **style))

    for i in range(n):
        for ax in axes[i]:
            ax.imshow(test.raw[i])
            ax.axis("off")
            for b in test.boxes[i].tolist():
                box(ax, b, color="white", ls="--", lw=1)
        for b in test.proposals[i].tolist():
            box(axes[i, 0], b, color="orange", lw=0.4, alpha=0.6)
        shown = f"{len(test.proposals[i])} proposals" if len(test.proposals[i]) else "the scene"
        axes[i, 0].set_title(shown, fontsize=8)
        for j, method in enumerate(methods, 1):
            det = result["detections"][method][i]
            for b, s, lab in zip(
                det["boxes"].tolist(), det["scores"].tolist(), det["labels"].tolist(), strict=True
            ):
                if s >= min_score:
                    box(axes[i, j], b, color=colours[lab % 3], lw=1.5)
                    axes[i, j].text(
                        b[0],
                        b[1],
                        f"{s:.2f}",
                        fontsize=6,
                        color="black",
                        bbox={"facecolor": colours[lab % 3], "pad": 1, "lw": 0},
                    )
            axes[i, j].set_title(method, fontsize=8)
    fig.suptitle(
        "selective search's proposals, then each method's detections (true boxes dashed)",
        fontsize=9,
    )
    return save_figure(fig, path, dpi=100)
