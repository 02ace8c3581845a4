"""Occlusion sensitivity (Zeiler & Fergus 2014, section 4.2): the vectorised map against a loop
over the square's positions, the grid against the slides' output-size formula, a hand-made
model whose evidence lies in one known region, and the command."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

import cnnlab
from cnnlab.cli import main
from cnnlab.engine.occlusion import occlusion_map, occlusion_masks
from cnnlab.errors import CnnlabError


def small_net(classes: int = 5) -> nn.Module:
    """A convolutional classifier that takes any image size."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, classes),
    )


def test_map_equals_a_loop_over_positions() -> None:
    """Every position's probability and top class equal those of the image occluded by hand,
    on a non-square image whose sides the stride does not divide."""
    model, image = small_net().eval(), torch.randn(3, 20, 27)
    patch, stride, fill, target = 6, 4, 0.3, 2
    m = occlusion_map(model, image, patch, stride, target=target, fill=fill, batch_size=7)
    assert m.probability.shape == m.top_class.shape == (4, 6)  # floor((20-6)/4)+1, (27-6)/4+1
    with torch.no_grad():
        for i in range(4):
            for j in range(6):
                x = image.clone()
                x[:, i * stride : i * stride + patch, j * stride : j * stride + patch] = fill
                p = model(x[None]).softmax(-1)[0]
                assert m.probability[i, j] == pytest.approx(float(p[target]), abs=1e-6)
                assert m.top_class[i, j] == int(p.argmax())
        whole = model(image[None]).softmax(-1)[0]
    assert m.base_probability == pytest.approx(float(whole[target]), abs=1e-6)
    assert m.base_class == int(whole.argmax()) and m.target == target


@pytest.mark.parametrize(
    "h, w, f, s", [(8, 8, 2, 2), (32, 32, 8, 2), (20, 27, 6, 4), (9, 5, 5, 1), (7, 7, 7, 3)]
)
def test_grid_follows_the_slides_formula(h: int, w: int, f: int, s: int) -> None:
    """``floor((n - f)/s) + 1`` positions a side (the slides' summary with p = 0); each mask
    hides exactly the f x f square whose corner is at ``(i s, j s)``."""
    masks = occlusion_masks(h, w, f, s)
    ny, nx = (h - f) // s + 1, (w - f) // s + 1
    assert masks.shape == (ny * nx, h, w)
    for k, mask in enumerate(masks):
        i, j = divmod(k, nx)
        expected = torch.zeros(h, w, dtype=torch.bool)
        expected[i * s : i * s + f, j * s : j * s + f] = True
        assert torch.equal(mask, expected)
    some = torch.tensor([ny * nx - 1, 0])  # a chunk of the positions: those masks, in that order
    assert torch.equal(occlusion_masks(h, w, f, s, some), masks[some])


def test_a_square_larger_than_the_image_is_refused() -> None:
    with pytest.raises(CnnlabError, match="9 px is larger than the 8x12 image"):
        occlusion_masks(8, 12, 9, 1)


class RegionEvidence(nn.Module):
    """Class 0's logit is 8 times the mean of rows 4-7, columns 10-13; class 1's is 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        evidence = 8 * x[:, :, 4:8, 10:14].mean((1, 2, 3))
        return torch.stack([evidence, torch.zeros_like(evidence)], 1)


def test_only_the_positions_over_the_evidence_lower_the_probability() -> None:
    """Hand-computed: on an all-ones image p(0) = sigmoid(8); a grey (0) square over k of the
    region's 16 pixels makes it sigmoid(8 (16 - k) / 16). Squares elsewhere change nothing, and
    the worst position is the square that covers the region exactly."""
    m = occlusion_map(RegionEvidence(), torch.ones(1, 16, 16), patch=4, stride=2)
    assert m.target == m.base_class == 0
    assert m.base_probability == pytest.approx(torch.sigmoid(torch.tensor(8.0)).item())
    for i in range(7):
        for j in range(7):
            top, left, bottom, right = m.window(i, j)
            rows = max(0, min(bottom, 8) - max(top, 4))
            cols = max(0, min(right, 14) - max(left, 10))
            hidden = rows * cols
            expected = torch.sigmoid(torch.tensor(8.0 * (16 - hidden) / 16)).item()
            assert m.probability[i, j] == pytest.approx(expected, abs=1e-6)
    assert m.window(*m.most_sensitive()) == (4, 10, 8, 14)
    assert m.probability.min() == pytest.approx(0.5)  # the evidence gone: a coin toss
    assert int(m.top_class[2, 5]) == 0  # a tie goes to the first class, as argmax does


def test_target_defaults_to_the_predicted_class_and_is_checked() -> None:
    model, image = small_net(3).eval(), torch.randn(3, 12, 12)
    m = occlusion_map(model, image, 4, 4)
    assert m.target == m.base_class
    with pytest.raises(CnnlabError, match="classes 0 to 2"):
        occlusion_map(model, image, 4, 4, target=3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_the_map_is_the_cpus() -> None:
    """The model on the GPU, the image on the CPU: the same map, returned on the CPU."""
    model = small_net().double()
    image = torch.randn(3, 20, 27, dtype=torch.float64)
    cpu = occlusion_map(model, image, patch=6, stride=4)
    gpu = occlusion_map(model.cuda(), image, patch=6, stride=4)
    assert gpu.probability.device.type == "cpu"
    torch.testing.assert_close(gpu.probability, cpu.probability)
    assert torch.equal(gpu.top_class, cpu.top_class) and gpu.base_class == cpu.base_class


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["classify", "train", "--epochs", "1", "--out", str(run), "--json"]) == 0
    capsys.readouterr()
    base = ["visualize", "occlusion", "--checkpoint", str(run / "best.pt"), "--split", "test"]
    out = tmp_path / "occ.png"
    assert main([*base, "--index", "5", "--count", "2", "-o", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out.stat().st_size > 5000 and result["figure"] == str(out)
    assert (result["patch"], result["stride"]) == (8, 2)  # a quarter of 32 px, a quarter of that
    rows = result["images"]
    assert len(rows) == 2 and all(len(r["map"]) == 13 and len(r["map"][0]) == 13 for r in rows)
    assert all(r["target"] == r["label"] for r in rows)  # the label's probability, by default
    assert all(min(map(min, r["map"])) == r["lowest_probability"] for r in rows)

    # files of one's own, in a folder named after a class: that class is their label
    from cnnlab.data.classification import load_digits

    seven = load_digits().splits["test"].images[3, 0].numpy()
    (tmp_path / "7").mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(255 - seven).save(tmp_path / "7" / name)
    argv = [*base[:-2], "--image", str(tmp_path / "7"), "--count", "1", "--target", "1"]
    assert main([*argv, "--patch", "4", "-o", str(tmp_path / "mine.png"), "--json"]) == 0
    out, err = capsys.readouterr()
    rows = json.loads(out.strip().splitlines()[-1])["images"]
    assert "the first 1 of 2 images" in err
    assert len(rows) == 1  # --count of the folder's two
    assert (rows[0]["label"], rows[0]["target"], len(rows[0]["map"])) == ("7", "1", 29)
    # the folder typed after the options, as predict takes it: the same image, the same map
    typed_last = [*base[:-2], "--count", "1", "--target", "1", str(tmp_path / "7")]
    assert main([*typed_last, "--patch", "4", "-o", str(tmp_path / "last.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["images"] == rows

    # the same classifier exported: ONNX Runtime's answers give the checkpoint's map
    if importlib.util.find_spec("onnxruntime") is not None:
        onnx_path = str(tmp_path / "model.onnx")
        assert main(["export", str(run / "best.pt"), "-o", onnx_path]) == 0
        capsys.readouterr()
        exported = ["visualize", "occlusion", "--onnx", onnx_path, *argv[4:]]
        assert main([*exported, "--patch", "4", "-o", str(tmp_path / "onnx.png"), "--json"]) == 0
        (theirs,) = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["images"]
        assert (theirs["label"], theirs["target"]) == ("7", "1")
        assert theirs["map"] == [pytest.approx(line, abs=1e-4) for line in rows[0]["map"]]
        both = [*exported, *base[2:4]]  # --checkpoint as well
        assert main(both) == 2
        assert "give --checkpoint, --weights or --onnx, one of them" in capsys.readouterr().err
        assert main(["visualize", "occlusion", "--onnx", onnx_path]) == 2
        assert "with --onnx, give image files to occlude" in capsys.readouterr().err
        assert main([*exported, "--device", "cuda"]) == 2  # ONNX Runtime's CPU provider
        assert "an ONNX file runs on the CPU here" in capsys.readouterr().err

    for bad, words in (
        (["--target", "cat"], "--target cat: not a class of this model"),
        (["--patch", "33"], "33 px is larger than the 32x32 image"),
        (["--index", "999", "--limit", "10"], "0 to 9"),
        (["--device", "cuda:7"], "'cuda:7' asked for"),
    ):
        assert main([*base, *bad, "-o", str(tmp_path / "x.png")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err

    # a checkpoint of another task (here relabelled a face encoder's): refused before any work
    ckpt = torch.load(run / "best.pt", weights_only=True)
    torch.save({**ckpt, "model": "siamese"}, tmp_path / "encoder.pt")
    for extra in ([], ["--image", str(tmp_path / "7" / "a.png")]):
        argv = ["visualize", "occlusion", "--checkpoint", str(tmp_path / "encoder.pt"), *extra]
        assert main(argv) == 2
        assert "an embedding checkpoint" in capsys.readouterr().err


def test_cli_with_torchvision_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A torchvision weights file and a photo: ImageNet's class indices, no label."""
    torch.manual_seed(0)
    path = tmp_path / "alexnet.pth"
    torch.save(cnnlab.create_model("alexnet_tv").state_dict(), path)
    photo = tmp_path / "photo.jpg"
    Image.fromarray((torch.rand(90, 120, 3) * 255).to(torch.uint8).numpy()).save(photo)
    argv = ["visualize", "occlusion", "--model", "alexnet_tv", "--weights", str(path)]
    argv += ["--image", str(photo), "--patch", "56", "--stride", "28", "-o", str(tmp_path / "o")]
    assert main([*argv, "--json"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["images"][0]
    assert row["label"] is None and 0 <= int(row["predicted"]) < 1000
    assert len(row["map"]) == 3  # (112 - 56) / 28 + 1
    assert (tmp_path / "o.png").is_file()


def test_the_colour_scale_spans_the_maps_own_probabilities() -> None:
    """A map whose probabilities move a little is drawn over its own range (the colour bar
    gives the values), never narrower than MIN_SPAN, and always within [0, 1]."""
    from cnnlab.engine.occlusion import MIN_SPAN, OcclusionMap, colour_range

    def span(values: list[float], base: float) -> tuple[float, float]:
        p = torch.tensor([values])
        return colour_range(OcclusionMap(p, torch.zeros_like(p).long(), base, 0, 0, 4, 2))

    assert span([0.2, 0.9], 0.95) == pytest.approx((0.2, 0.95))  # the whole image's, higher
    assert span([0.57, 0.61], 0.61) == pytest.approx((0.54, 0.64))  # widened about its middle
    assert span([0.99, 1.0], 1.0) == pytest.approx((1 - MIN_SPAN, 1.0))  # kept below 1
    assert span([0.0, 0.01], 0.0) == pytest.approx((0.0, MIN_SPAN))  # and above 0
