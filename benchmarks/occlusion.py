"""Occlusion sensitivity (``cnnlab visualize occlusion``): the occluded copies classified as
batches against one forward pass a position (the plain loop over the square's positions), for
LeNet-5 on a 32 px digit and ResNet-18 on a 112 px photo, each with its default square (a
quarter of the side, moved by a quarter of that: 13 x 13 positions).

Run: `python benchmarks/occlusion.py [--repeats 5]`. Median of repeats; one JSON line a model.
"""

from __future__ import annotations

import argparse
import json

import torch
from timing import median_seconds  # benchmarks/timing.py

import cnnlab
from cnnlab.engine.occlusion import default_patch, occlusion_map


@torch.no_grad()
def loop_map(model: torch.nn.Module, image: torch.Tensor, patch: int, stride: int) -> torch.Tensor:
    """One occluded copy, one forward pass, position by position."""
    _, h, w = image.shape
    target = int(model(image[None]).argmax())
    rows = []
    for y in range(0, h - patch + 1, stride):
        row = []
        for x in range(0, w - patch + 1, stride):
            occluded = image.clone()
            occluded[:, y : y + patch, x : x + patch] = 0
            row.append(float(model(occluded[None]).softmax(-1)[0, target]))
        rows.append(row)
    return torch.tensor(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    for name, shape in (("lenet5", (1, 32, 32)), ("resnet18", (3, 112, 112))):
        model = cnnlab.create_model(name).eval()
        image = torch.randn(shape)
        patch, stride = default_patch(shape[-1])
        case = (model, image, patch, stride)
        batched = occlusion_map(*case).probability
        assert torch.allclose(batched, loop_map(*case), atol=1e-5)
        t_batch = median_seconds(lambda case=case: occlusion_map(*case), args.repeats)
        t_loop = median_seconds(lambda case=case: loop_map(*case), args.repeats)
        row = {
            "model": name,
            "image": list(shape),
            "positions": batched.numel(),
            "batched_ms": round(t_batch * 1e3, 1),
            "loop_ms": round(t_loop * 1e3, 1),
            "speedup": round(t_loop / t_batch, 1),
            "threads": torch.get_num_threads(),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
