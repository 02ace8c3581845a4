"""The slides' cost comparisons, and MAC counts against an independent count."""

from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from cnnlab.errors import CnnlabError
from cnnlab.ops import bottleneck_cost, conv_cost, inverted_residual_cost, separable_cost


def test_separable_slide() -> None:
    c = separable_cost(6, 3, 3, 5)
    assert c.baseline_macs == 2160 == 4 * 4 * 5 * 3 * 3 * 3
    assert [t.macs for t in c.alternative] == [432, 240]
    assert c.alternative_macs == 672
    assert round(c.ratio, 2) == 0.31
    assert c.ratio == pytest.approx(1 / 5 + 1 / 9)  # 1/n_c' + 1/f^2, exact for valid padding


@given(n=st.integers(3, 30), f=st.integers(1, 5), c=st.integers(1, 64), k=st.integers(1, 512))
def test_separable_general_ratio(n: int, f: int, c: int, k: int) -> None:
    assume(f <= n)
    assert separable_cost(n, f, c, k).ratio == pytest.approx(1 / k + 1 / f**2)


def test_inception_bottleneck_slide() -> None:
    c = bottleneck_cost(28, 5, 192, 32, 16)
    assert c.baseline_macs == 28 * 28 * 32 * 5 * 5 * 192 == 120_422_400  # "120m"
    squeeze, conv = c.alternative
    assert squeeze.macs == 28 * 28 * 16 * 192 == 2_408_448  # "2.4m"
    assert conv.macs == 28 * 28 * 32 * 5 * 5 * 16 == 10_035_200  # "10m"
    assert round(c.alternative_macs / 1e6, 1) == 12.4


def test_mobilenet_v2_slide() -> None:
    c = inverted_residual_cost(6, 3, 64, 128, 6)
    assert c.baseline_macs == 6 * 6 * 128 * 9 * 64  # "2.6M"
    assert round(c.baseline_macs / 1e6, 1) == 2.7  # 2,654,208; the slide truncates to 2.6M
    expected = 6 * 6 * 384 * 64 + 6 * 6 * 384 * 9 + 6 * 6 * 128 * 384
    assert c.alternative_macs == expected  # "2.7M" (2,778,624)
    assert int(c.alternative_macs / 1e5) / 10 == 2.7


@given(
    n=st.integers(4, 16),
    f=st.sampled_from([1, 3, 5]),
    cin=st.integers(1, 8),
    cout=st.integers(1, 8),
    s=st.integers(1, 2),
)
def test_conv_cost_counts_every_multiply(n: int, f: int, cin: int, cout: int, s: int) -> None:
    """Independent count: one MAC per (output pixel, filter, weight) with the window inside."""
    term = conv_cost("c", n, f, cin, cout, "same", s)
    out = term.output_shape[0]
    assert term.macs == out * out * cout * f * f * cin


def test_channel_counts_below_one_are_refused() -> None:
    """A 0-channel bottleneck used to cost 0 MACs and make any comparison look free."""
    with pytest.raises(CnnlabError, match="1x1 conv to 0: filters must be an integer >= 1"):
        bottleneck_cost(28, 5, 192, 32, 0)
    with pytest.raises(CnnlabError, match="input channels must be an integer >= 1, got 0"):
        separable_cost(6, 3, 0, 5)


def test_dense_layer_on_large_images_slide() -> None:
    """Slide "Deep learning on large images": 64x64x3 = 12288 inputs; 1000x1000x3 = 3m, and a
    first layer of 1000 units has W^[1] of shape (1000, 3m). Counted against torch's own layers
    (on the meta device: three billion weights take no memory)."""
    from cnnlab.ops.cost import DenseLayer, conv_parameters

    small, large = DenseLayer((64, 64, 3), 1000), DenseLayer((1000, 1000, 3), 1000)
    assert (small.inputs, large.inputs) == (12288, 3_000_000)
    assert large.weights == 3_000_000_000
    linear = torch.nn.Linear(3_000_000, 1000, device="meta")
    assert tuple(linear.weight.shape) == (1000, 3_000_000)
    assert large.parameters == sum(p.numel() for p in linear.parameters())
    conv = torch.nn.Conv2d(3, 1000, 3, device="meta")
    assert conv_parameters(3, 3, 1000) == sum(p.numel() for p in conv.parameters()) == 28_000


def test_explain_dense_cli(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from cnnlab.cli import main

    assert main(["explain", "dense", "--json"]) == 0  # the slide's two images by default
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert said["example"].startswith('the slide "Deep learning on large images"')
    rows = said["rows"]
    assert [r["weight_shape"] for r in rows] == [[1000, 12288], [1000, 3_000_000]]
    assert rows[1]["dense_megabytes_fp32"] == pytest.approx(12_000.004)
    assert main(["explain", "dense", "--input", "480x640x1", "--units", "10"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "(10, 307200)" in shown and "3,072,010" in shown
    assert "10 * (3*3*1 + 1) = 100 parameters, whatever the image's size" in shown
    assert main(["explain", "dense", "--input", "64x64"]) == 2
    assert "expected HxWxC" in capsys.readouterr().err
