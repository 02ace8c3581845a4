"""Style transfer costs against hand-computed values, and the optimisation lowering J(G)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cnnlab.cli import main
from cnnlab.engine.style import load_rgb, transfer_style, vgg19_layer_names
from cnnlab.errors import CnnlabError
from cnnlab.ops.style import (
    content_cost,
    gram_matrix,
    style_cost,
    style_layer_cost,
    total_variation,
)


def test_gram_matrix_by_hand() -> None:
    a = torch.tensor([[[[1.0, 2.0], [0.0, 1.0]], [[3.0, 0.0], [1.0, 1.0]]]])  # (1, 2, 2, 2)
    # channel vectors f0 = (1, 2, 0, 1), f1 = (3, 0, 1, 1)
    assert gram_matrix(a).tolist() == [[[6.0, 4.0], [4.0, 11.0]]]
    # one image's (n_C, n_H, n_W), the slide's notation: (n_C, n_C), not a batch of 2 maps
    assert gram_matrix(a[0]).tolist() == [[6.0, 4.0], [4.0, 11.0]]
    assert content_cost(a[0], 2 * a[0]).item() == pytest.approx(content_cost(a, 2 * a).item())
    assert style_layer_cost(a[0], 2 * a[0]).shape == ()
    with pytest.raises(CnnlabError, match=r"must be \(C, H, W\) or \(B, C, H, W\).*\(2, 2\)"):
        gram_matrix(a[0, 0])
    with pytest.raises(CnnlabError, match=r"content and generated activations do not match"):
        content_cost(a, torch.zeros(1, 2, 3, 3))
    with pytest.raises(CnnlabError, match=r"style and generated activations do not match"):
        style_layer_cost(a, torch.zeros(1, 3, 2, 2))
    # a style image larger than the generated one: Gram matrices are (C, C) either way
    assert style_layer_cost(torch.ones(1, 2, 4, 4), a).shape == (1,)


def test_costs_by_hand() -> None:
    a_c = torch.zeros(1, 2, 2, 2)
    a_g = torch.ones(1, 2, 2, 2)
    assert content_cost(a_c, a_g, "course").item() == pytest.approx(8 / (4 * 2 * 2 * 2))
    assert content_cost(a_c, a_g, "gatys").item() == pytest.approx(0.5 * 8)
    # G(a_g) is all 4s (each channel vector (1,1,1,1)), G(a_c) zeros: sum of squares 4 * 16
    expected = 4 * 16 / (2 * 2 * 2 * 2) ** 2
    assert style_layer_cost(a_c, a_g, "course").item() == pytest.approx(expected)
    assert style_layer_cost(a_c, a_g, "gatys").item() == pytest.approx(expected)  # 1/(4N^2M^2)
    both = style_cost({"a": a_c, "b": a_c}, {"a": a_g, "b": a_g}, {"a": 0.5, "b": 0.25})
    assert both.item() == pytest.approx(0.75 * expected)
    x = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])
    assert total_variation(x).item() == pytest.approx(0.0 + 1.0)
    assert total_variation(x[0]).item() == pytest.approx(1.0)  # one image (C, H, W): a scalar
    # one pixel high: no vertical neighbours, so only the horizontal term (it used to be nan)
    assert total_variation(x[..., :1, :]).item() == pytest.approx(1.0)
    assert total_variation(torch.ones(2, 3, 1, 1)).tolist() == [0.0, 0.0]
    with pytest.raises(CnnlabError):
        content_cost(a_c, a_g, "mine")


def test_layer_names_follow_vgg19() -> None:
    names = vgg19_layer_names()
    assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert len(names) == 37 and names[-1] == "pool5"


def test_cost_falls_in_a_few_steps() -> None:
    content, style = load_rgb("astronaut", 32), load_rgb("brick", 32)
    result = transfer_style(content, style, steps=8, snapshots=2, scales=1)
    assert result.history[-1]["total"] < result.history[0]["total"]
    assert result.image.shape == (3, 32, 32) and len(result.snapshots) == 2
    # from the photo itself at one scale: load_rgb's HWC-permuted layout made L-BFGS's view() fail
    for init, scales in (("random", 2), ("content", 1)):
        lbfgs = transfer_style(content, style, steps=4, optimizer="lbfgs", init=init, scales=scales)
        assert lbfgs.history[-1]["total"] < lbfgs.history[0]["total"]


def test_coarse_to_fine() -> None:
    content, style = load_rgb("chelsea", 64), load_rgb("gravel", 64)
    result = transfer_style(content, style, steps=9, scales=3, snapshots=3)
    assert len(result.history) == 9  # 3 at 16 px, 3 at 32 px, 3 at 64 px
    assert result.image.shape == (3, 64, 64)
    assert len(result.snapshots) == 3 and all(s.shape == (3, 64, 64) for s in result.snapshots)
    fine = result.history[-3:]
    assert fine[-1]["total"] < fine[0]["total"]
    with pytest.raises(CnnlabError, match="under 16 pixels"):
        transfer_style(content, style, steps=3, scales=4)
    # --steps is the total: 10 over three levels is 3 + 3 + 4, not 3 + 3 + 3
    assert len(transfer_style(content, style, steps=10, scales=3, snapshots=1).history) == 10
    with pytest.raises(CnnlabError, match="--steps 2: fewer than one per level of --scales 3"):
        transfer_style(content, style, steps=2, scales=3)


def test_style_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "g.png"
    assert (
        main(
            ["style", "chelsea", "gravel", "-o", str(out), "--size", "32", "--steps", "3", "--json"]
        )
        == 0
    )
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out.is_file() and Path(r["strip"]).is_file() and "random" in r["features"]
    from cnnlab.engine.device import resolve_device

    assert r["device"] == str(resolve_device("auto"))  # a GPU where there is one (--device)
    assert main(["style", "nowhere.png", "gravel"]) == 2
    assert main(["style", "--alpha", "0", "--beta", "0", "--size", "32", "--steps", "2"]) == 2
    assert "all 0: J(G) = 0, nothing to optimise" in capsys.readouterr().err
    default = tmp_path / "default.png"  # astronaut in the style of brick
    assert main(["style", "-o", str(default), "--size", "32", "--steps", "2"]) == 0
    said = capsys.readouterr()
    bars = [line.split(" ━")[0] for line in said.err.splitlines() if "━" in line]
    assert bars == ["16x16 px, step 1/1", "32x32 px, step 1/1"]  # each level its own bar
    # not the classic look: the run says why, and what gives it
    assert "features: VGG-19 with random (seeded) weights; --weights" in " ".join(said.out.split())

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("optimised although its result could not be saved")

    monkeypatch.setattr("cnnlab.engine.style.transfer_style", never)
    refused = [  # refused before the optimisation, whose result would be lost
        (tmp_path, "a folder; give the image's file name"),
        (tmp_path / "g.txt", "not an image file name Pillow can write"),
        (out / "sub" / "g.png", f"{out}: a file, where a folder is needed for g.png"),
    ]
    if Path("/proc/self").is_dir():  # nothing can be made there (Linux)
        refused.append((Path("/proc/self/g.png"), "/proc/self/g.png: cannot be written"))
    for output, message in refused:
        assert main(["style", "-o", str(output), "--size", "32", "--steps", "2"]) == 2
        assert message in capsys.readouterr().err


def test_weights_file_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With ``--weights`` the extractor loads the file, normalises with ImageNet statistics and
    taps Gatys' layers (content conv4_2, style conv1_1 .. conv5_1). The file here has
    torchvision's VGG-19 layout (test_torchvision_weights checks a real torchvision file)."""
    import cnnlab
    from cnnlab.engine.style import IMAGENET_MEAN, IMAGENET_STD, FeatureExtractor

    torch.manual_seed(3)
    vgg = cnnlab.create_model("vgg19").eval()
    path = tmp_path / "vgg19.pth"
    torch.save(vgg.state_dict(), path)
    net = FeatureExtractor(str(path), ["conv1_1", "conv2_1"])
    x = torch.rand(1, 3, 32, 32)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = vgg.features[:2]((x - mean) / std)
        torch.testing.assert_close(net(x)["conv1_1"], expected)
        pooled = torch.nn.functional.avg_pool2d(vgg.features[:4]((x - mean) / std), 2)
        torch.testing.assert_close(net(x)["conv2_1"], vgg.features[5:7](pooled))
    out = tmp_path / "g.png"
    argv = ["style", "coffee", "brick", "-o", str(out), "--size", "32", "--steps", "2"]
    assert main([*argv, "--weights", str(path), "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out.is_file() and "torchvision" in r["features"]
    assert main([*argv, "--weights", str(path)]) == 0
    assert "random" not in capsys.readouterr().out
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    assert main([*argv, "--weights", str(bad)]) == 2


def test_ctrl_c_keeps_the_image_so_far(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C during the optimisation (here: in the 5th step, at the coarse level) keeps G as
    far as it got, at the final size, and the CLI writes it before saying "interrupted" (it
    wrote nothing before)."""
    from cnnlab.engine import style

    real, calls = style.content_cost, []

    def cut_at_step_5(*args: object, **kwargs: object) -> torch.Tensor:
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(style, "content_cost", cut_at_step_5)
    content, style_image = load_rgb("chelsea", 64), load_rgb("gravel", 64)
    result = transfer_style(content, style_image, steps=12, scales=2)  # 8 steps at 32 px
    assert result.interrupted and len(result.history) == 4
    assert result.image.shape == (3, 64, 64) and 0 <= result.image.min() <= result.image.max() <= 1
    calls.clear()
    out = tmp_path / "g.png"
    assert main(["style", "-o", str(out), "--size", "32", "--steps", "12", "--scales", "1"]) == 130
    said = " ".join(capsys.readouterr().err.split())
    assert f"interrupted; wrote the image so far, after 4 of 12 steps: {out} and" in said
    assert out.is_file() and (tmp_path / "g_strip.png").is_file()
