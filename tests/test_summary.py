"""`summary`: the slide's table for the course network, and MACs against an independent count."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.viz.summary import summarize


def test_lenet_course_reproduces_the_slide() -> None:
    s = summarize(cnnlab.create_model("lenet_course"), (3, 32, 32))
    rows = [(r.slide_shape, r.size, r.params) for r in s.rows]
    assert rows == [
        ((28, 28, 8), 6272, 608),
        ((14, 14, 8), 1568, 0),
        ((10, 10, 16), 1600, 3216),
        ((5, 5, 16), 400, 0),
        ((120,), 120, 48120),
        ((84,), 84, 10164),
        ((10,), 10, 850),
    ]
    assert s.total_params == 62_958


def test_macs_match_an_independent_count() -> None:
    s = summarize(cnnlab.create_model("lenet5"), (1, 32, 32))
    expected = (28 * 28 * 6 * 25 * 1) + (10 * 10 * 16 * 25 * 6) + 400 * 120 + 120 * 84 + 84 * 10
    assert s.total_macs == expected


def test_classic_summary_counts_partial_c3() -> None:
    s = summarize(cnnlab.create_model("lenet5_classic"), (1, 32, 32))
    c3 = next(r for r in s.rows if r.name.endswith("c3"))
    assert c3.params == 1516 and c3.macs == 10 * 10 * 60 * 25
    assert s.trainable_params == 60_000


def test_show_all_lists_activations() -> None:
    folded = summarize(cnnlab.create_model("lenet5"), (1, 32, 32))
    every = summarize(cnnlab.create_model("lenet5"), (1, 32, 32), show_all=True)
    assert len(every.rows) > len(folded.rows)
    assert any(r.kind == "ReLU" for r in every.rows)


def test_transposed_and_grouped_macs() -> None:
    model = nn.Sequential(nn.Conv2d(4, 8, 3, groups=2), nn.ConvTranspose2d(8, 2, 2, stride=2))
    s = summarize(model, (4, 6, 6))
    assert s.rows[0].macs == 4 * 4 * 8 * 9 * 2
    assert s.rows[1].macs == 4 * 4 * 8 * 2 * 4  # every input pixel scatters a 2x2x2 block


def test_bad_input_raises() -> None:
    with pytest.raises(RuntimeError):
        summarize(cnnlab.create_model("lenet5"), (1, 8, 8))
    assert torch.is_grad_enabled()


def test_what_forward_does_between_the_layers_is_said() -> None:
    """The padded U-Net pads 100x100 to 112x112 before its first layer and cuts its scores
    back after the last: the table's rows alone would show 112x112 from a 100x100 input
    unexplained. An ensemble joins its members' embeddings. A plain chain has nothing to say."""
    from cnnlab.models.shapes import shapes_only

    with shapes_only():
        unet = cnnlab.create_model("unet")
        ensemble = cnnlab.create_model("siamese_ensemble")
        lenet = cnnlab.create_model("lenet5")
    padded = summarize(unet, (3, 100, 100))
    assert padded.rows[0].shape[1:] == (112, 112)
    first, last = padded.notes
    assert "the first layer receives 112x112x3, not the 100x100x3 input" in first
    assert "the model returns 100x100x4, not its last layer's 112x112x4" in last
    assert summarize(unet, (3, 96, 96)).notes == ()  # a multiple of 16: nothing padded
    (joined,) = summarize(ensemble, (1, 32, 32)).notes
    assert "returns 256, not its last layer's 128" in joined
    assert summarize(lenet, (1, 32, 32)).notes == ()
    assert summarize(lenet, (1, 32, 32)).to_dict()["notes"] == []
