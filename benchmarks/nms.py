"""Non-max suppression speed: cnnlab's vectorised NMS against the slide's algorithm written as a
plain Python loop and, when torchvision is importable (run this in the side virtualenv of
`make test-torchvision`), against torchvision's C++ ``nms`` / ``batched_nms``, checking the kept
indices are identical.

Run: `python benchmarks/nms.py` (either virtualenv). Median of repeats, milliseconds.
"""

from __future__ import annotations

import json
import statistics
import time

import torch

from cnnlab.ops.boxes import box_iou
from cnnlab.ops.nms import batched_nms, nms


def python_loop_nms(boxes: torch.Tensor, scores: torch.Tensor, thr: float) -> list[int]:
    order = scores.argsort(descending=True).tolist()
    keep = []
    while order:
        best = order.pop(0)
        keep.append(best)
        if order:
            ious = box_iou(boxes[best][None], boxes[order])[0].tolist()
            order = [j for j, v in zip(order, ious, strict=True) if v <= thr]
    return keep


def timed(fn, repeats: int) -> tuple[float, object]:
    out = fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3, out


def detector_like_boxes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Boxes clustered around 50 objects in a 640x640 image, as a detector emits them."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(50, 2, generator=g) * 600 + 20
    sizes = torch.rand(50, 2, generator=g) * 120 + 20
    k = torch.randint(0, 50, (n,), generator=g)
    c = centres[k] + torch.randn(n, 2, generator=g) * 8
    wh = sizes[k] * (1 + 0.1 * torch.randn(n, 2, generator=g)).clamp(0.5, 1.5)
    boxes = torch.cat([c - wh / 2, c + wh / 2], 1)
    scores = torch.randperm(n, generator=g).float() / n  # distinct: no tie-order ambiguity
    return boxes, scores, torch.randint(0, 3, (n,), generator=g)


def measure(n: int, tvops: object) -> dict[str, object]:
    boxes, scores, classes = detector_like_boxes(n, 0)
    row: dict[str, object] = {"boxes": n}
    row["cnnlab_nms_ms"], ours = timed(lambda: nms(boxes, scores, 0.5), 7)
    row["cnnlab_batched_ms"], ours_b = timed(lambda: batched_nms(boxes, scores, classes, 0.5), 7)
    row["kept"] = len(ours)
    if n <= 1000:
        row["python_loop_ms"], loop = timed(lambda: python_loop_nms(boxes, scores, 0.5), 3)
        row["same_as_loop"] = loop == ours.tolist()
        row["speedup_vs_loop"] = round(row["python_loop_ms"] / row["cnnlab_nms_ms"], 1)
    if tvops is not None:
        row["torchvision_nms_ms"], theirs = timed(lambda: tvops.nms(boxes, scores, 0.5), 7)
        row["torchvision_batched_ms"], theirs_b = timed(
            lambda: tvops.batched_nms(boxes, scores, classes, 0.5), 7
        )
        row["same_as_torchvision"] = torch.equal(ours, theirs) and torch.equal(ours_b, theirs_b)
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}


def main() -> None:
    try:
        import torchvision.ops as tvops
    except ImportError:
        tvops = None
    torch.set_num_threads(1)
    for n in (1000, 10000):
        print(json.dumps(measure(n, tvops)))


if __name__ == "__main__":
    main()
