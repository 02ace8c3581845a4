"""Edge filters on real photos and learning a kernel that recovers Sobel."""

from __future__ import annotations

import pytest
import torch

from cnnlab.engine.edges import apply_edge_filters, learn_edge_kernel
from cnnlab.errors import CnnlabError
from cnnlab.ops import edge_filter


def test_named_filters() -> None:
    assert edge_filter("sobel").tolist() == [[1, 0, -1], [2, 0, -2], [1, 0, -1]]
    assert edge_filter("scharr").tolist() == [[3, 0, -3], [10, 0, -10], [3, 0, -3]]
    assert torch.equal(edge_filter("horizontal"), edge_filter("vertical").T)
    with pytest.raises(CnnlabError, match="unknown filter"):
        edge_filter("prewitt-ish")


def test_edge_maps_on_a_photo() -> None:
    from cnnlab.data.images import load_gray

    image = load_gray("camera")
    maps = apply_edge_filters(image, ["vertical", "horizontal"])
    assert maps["vertical"].shape == (510, 510)
    # The camera man's tripod legs are near-vertical: vertical edges carry more energy there.
    legs = (slice(330, 500), slice(200, 330))
    assert maps["vertical"][legs].abs().mean() > maps["horizontal"][legs].abs().mean()


@pytest.mark.parametrize("target", ["sobel", "scharr"])
def test_learned_kernel_recovers_target(target: str) -> None:
    result = learn_edge_kernel(target, images=("camera", "coins"), size=64, steps=60)
    assert result.max_abs_error < 1e-4
    assert result.losses[-1] < result.losses[0] * 1e-6


def test_adam_also_learns() -> None:
    result = learn_edge_kernel(
        "sobel", images=("camera", "coins"), size=64, steps=300, optimizer="adam", lr=0.05
    )
    assert result.max_abs_error < 0.2 and result.losses[-1] < result.losses[0] / 100
