"""Sliding windows: the FC network and its convolutional form agree on every window."""

from __future__ import annotations

import json

import pytest
import torch

import cnnlab
from cnnlab.cli import main
from cnnlab.engine.sliding import train_window_classifier, window_crops
from cnnlab.models.overfeat import naive_sliding_windows


@pytest.mark.parametrize("size, grid", [(14, 1), (16, 2), (28, 8), (33, 10), (64, 26)])
def test_convolutional_form_equals_naive_windows(size: int, grid: int) -> None:
    torch.manual_seed(size)
    model = cnnlab.create_model("window_classifier").eval()
    conv = model.to_convolutional().eval()
    image = torch.randn(2, 3, size, size)
    with torch.no_grad():
        fast = conv(image)
        slow = naive_sliding_windows(model, image)
        batched = naive_sliding_windows(model, image, batched=True)
    assert fast.shape == (2, 4, grid, grid)
    assert torch.allclose(fast, slow, atol=1e-5)
    assert torch.allclose(fast, batched, atol=1e-5)
    # the top-left window is exactly the model on the top-left crop
    assert torch.allclose(fast[:, :, 0, 0], model(image[:, :, :14, :14]), atol=1e-5)


def test_fc_becomes_conv_with_the_same_parameter_count() -> None:
    model = cnnlab.create_model("window_classifier")
    conv = model.to_convolutional()
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in conv.parameters())
    assert conv.fc1.weight.shape == (400, 16, 5, 5) and conv.fc2.kernel_size == (1, 1)


def test_window_classifier_learns_crops() -> None:
    x, y = window_crops(50, seed=3)
    assert x.shape == (50, 3, 14, 14) and set(y.tolist()) <= {0, 1, 2, 3}
    _, accuracy = train_window_classifier(n=1500, epochs=4, seed=0)
    assert accuracy > 0.5  # 4 classes: chance is 0.25


def test_explain_sliding_windows(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "sliding-windows", "--image-size", "16", "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["grid"] == [2, 2] and r["max_abs_diff"] < 1e-5
    assert r["layers_conv"][1][1] == [400, 2, 2]
    assert main(["explain", "sliding-windows", "--image-size", "10"]) == 2
    capsys.readouterr()  # 526 px: 257 x 257 windows, one more row and column than the limit
    assert main(["explain", "sliding-windows", "--image-size", "526"]) == 2
    assert "66,049 windows for the naive loop" in capsys.readouterr().err
