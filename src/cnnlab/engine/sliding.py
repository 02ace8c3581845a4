"""Training the 14x14 window classifier and comparing naive and convolutional sliding windows.

The classifier learns, as on the slide "Car detection example", from tightly cropped windows:
scene-generator crops of 14x14 pixels holding one object that fills most of the window (classes
pedestrian, car, motorcycle) or none (background, class 0).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.data.scenes import make_scenes, standardise
from cnnlab.models.overfeat import WINDOW, WindowClassifier, naive_sliding_windows
from cnnlab.registry import create_model

CLASSES = ("background", "pedestrian", "car", "motorcycle")


def window_crops(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` standardised 14x14 crops ``(n, 3, 14, 14)`` and labels (0 = background)."""
    scenes = make_scenes(
        n,
        seed=seed,
        image_size=WINDOW,
        min_objects=0,
        max_objects=1,
        min_scale=0.7,
        max_scale=0.95,
        max_occlusion=1.0,
    )
    x = torch.from_numpy(np.stack([s.image for s in scenes])).permute(0, 3, 1, 2).float()
    y = torch.tensor([int(s.labels[0]) + 1 if len(s.labels) else 0 for s in scenes])
    return standardise(x), y


def train_window_classifier(
    n: int = 4000, epochs: int = 10, seed: int = 0
) -> tuple[WindowClassifier, float]:
    """Train on ``n`` crops; return the model and its accuracy on 1,000 fresh crops."""
    torch.manual_seed(seed)
    x, y = window_crops(n, seed)
    model = create_model("window_classifier", num_classes=len(CLASSES))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    for _ in range(epochs):
        for idx in torch.randperm(n).split(64):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    xt, yt = window_crops(1000, seed + 1)
    model.eval()
    with torch.no_grad():
        accuracy = (model(xt).argmax(1) == yt).float().mean().item()
    return model, accuracy


def _median_time(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


@torch.no_grad()
def compare_sliding_windows(
    model: WindowClassifier, image_size: int, repeats: int = 3
) -> dict[str, Any]:
    """Run the naive loop, the batched crops and the convolutional form on one image."""
    model.eval()
    conv = model.to_convolutional().eval()
    image = torch.randn(1, 3, image_size, image_size)
    naive = naive_sliding_windows(model, image)
    fast = conv(image)
    shapes_fc, shapes_conv = [], []
    h = model.features(torch.zeros(1, 3, WINDOW, WINDOW))
    shapes_fc.append(("conv1 + pool1", list(h.shape[1:])))
    for name in ("fc1", "fc2", "fc3"):
        layer = getattr(model, name)
        shapes_fc.append(
            (f"{name}: Linear({layer.in_features}, {layer.out_features})", [layer.out_features])
        )
    h = conv.features(image)
    shapes_conv.append(("conv1 + pool1", list(h.shape[1:])))
    for name in ("fc1", "fc2", "fc3"):
        layer = getattr(conv, name)
        h = layer(h)
        k = "x".join(map(str, layer.kernel_size))
        shapes_conv.append(
            (f"{name}: Conv2d({layer.in_channels}, {layer.out_channels}, {k})", list(h.shape[1:]))
        )
    t_naive = _median_time(lambda: naive_sliding_windows(model, image), repeats)
    t_batched = _median_time(lambda: naive_sliding_windows(model, image, batched=True), repeats)
    t_conv = _median_time(lambda: conv(image), repeats)
    return {
        "image_size": image_size,
        "grid": list(fast.shape[-2:]),
        "windows": int(fast.shape[-1] * fast.shape[-2]),
        "max_abs_diff": float((naive - fast).abs().max()),
        "layers_fc": shapes_fc,
        "layers_conv": shapes_conv,
        "seconds_naive": t_naive,
        "seconds_naive_batched": t_batched,
        "seconds_conv": t_conv,
        "speedup": t_naive / t_conv,
        "speedup_vs_batched": t_batched / t_conv,
    }
