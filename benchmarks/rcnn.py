"""The R-CNN family's costs, without training: RoI pooling against a region-by-region loop, and
the CNN's time an image for R-CNN (a pass per warped region, batched at both crop sizes and one
region at a time as the slide says it) against Fast R-CNN (one pass, RoI pooling). When
torchvision is importable (the side virtualenv of `make test-torchvision`)
``torchvision.ops.roi_pool`` is timed too (its corners are rounded, cnnlab's floored and ceiled,
so its values differ slightly; see ``cnnlab.ops.roi``).

Run: `python benchmarks/rcnn.py`. Median of repeats, milliseconds; one JSON line at the end.
"""

from __future__ import annotations

import json

import torch
import torch.nn.functional as F
from timing import median_seconds  # benchmarks/timing.py

from cnnlab.models.rcnn import STRIDE, RegionNet
from cnnlab.ops.roi import roi_pool


def timed(fn, repeats: int = 7) -> float:
    """Median milliseconds of ``repeats`` calls."""
    return median_seconds(fn, repeats) * 1e3


def loop_roi_pool(features: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """One region at a time: its cells cut out of the map and adaptive-max-pooled."""
    out = []
    for i, x1, y1, x2, y2 in boxes.tolist():
        c1, r1 = int(x1 / STRIDE), int(y1 / STRIDE)
        c2, r2 = max(-(-int(x2) // STRIDE), c1 + 1), max(-(-int(y2) // STRIDE), r1 + 1)
        out.append(F.adaptive_max_pool2d(features[int(i), :, r1:r2, c1:c2], size))
    return torch.stack(out)


def regions(n_images: int, per_image: int, image_size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n_images * per_image, 2, generator=g) * image_size * 0.7
    wh = torch.rand(n_images * per_image, 2, generator=g) * image_size * 0.3 + 4
    index = torch.arange(n_images).repeat_interleave(per_image)[:, None].float()
    return torch.cat([index, xy, (xy + wh).clamp(max=image_size)], 1)


def main() -> None:
    torch.manual_seed(0)
    result: dict[str, float] = {}
    features = torch.randn(16, 64, 16, 16)  # 16 images of 64 px at stride 4
    boxes = regions(16, 114, 64)
    result["roi_pool_ms"] = timed(lambda: roi_pool(features, boxes, 4, 1 / STRIDE))
    result["loop_ms"] = timed(lambda: loop_roi_pool(features, boxes, 4), 3)
    try:
        from torchvision.ops import roi_pool as tv_roi_pool

        result["torchvision_ms"] = timed(lambda: tv_roi_pool(features, boxes, 4, 1 / STRIDE))
    except ImportError:
        pass
    print(
        f"RoI pooling, {len(boxes)} regions on 16 maps 64x16x16: cnnlab {result['roi_pool_ms']:.2f}"
        f" ms, a loop of adaptive_max_pool2d {result['loop_ms']:.1f} ms"
        + (f", torchvision {result['torchvision_ms']:.2f} ms" if "torchvision_ms" in result else "")
    )
    images = torch.randn(16, 3, 64, 64)
    with torch.no_grad():
        for crop in (16, 32):
            model = RegionNet(crop_size=crop).eval()
            ms = timed(lambda m=model: m.classify_crops(images, boxes), 3) / 16
            result[f"rcnn_crop{crop}_ms_per_image"] = ms
            print(f"R-CNN, 114 regions warped to {crop}x{crop}: {ms:.1f} ms an image")
        model = RegionNet(crop_size=16).eval()
        one = boxes[boxes[:, 0] == 0]  # the first image's 114 regions, one CNN pass each
        ms = timed(lambda: [model.classify_crops(images, r[None]) for r in one], 3)
        result["rcnn_one_at_a_time_ms_per_image"] = ms
        print(f"R-CNN as the slide says it, one region at a time (16x16): {ms:.1f} ms an image")
        ms = timed(lambda: model.classify_regions(model.backbone(images), boxes)) / 16
        result["fast_rcnn_ms_per_image"] = ms
        print(f"Fast R-CNN, the same regions RoI-pooled from one map: {ms:.1f} ms an image")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
