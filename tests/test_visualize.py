"""Receptive fields against gradients, top-9 patches on a hand-made model, the CLI figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

import cnnlab
from cnnlab.cli import main
from cnnlab.engine.visualize import layer_geometry, top_patches


@pytest.mark.parametrize(
    "name, size",
    [
        ("lenet5", (1, 32, 32)),
        ("convnet_small", (3, 64, 64)),
        ("alexnet", (3, 227, 227)),
        ("vgg11", (3, 64, 64)),
    ],
)
def test_receptive_fields_match_gradients(name: str, size: tuple[int, ...]) -> None:
    """Away from padding, the input pixels with a non-zero gradient for one unit are exactly
    its computed field."""
    model = cnnlab.create_model(name).eval()
    for g in layer_geometry(model, size)[:6]:
        module = dict(model.named_modules())[g.name]
        store = {}
        handle = module.register_forward_hook(lambda m, a, o, s=store: s.setdefault("out", o))
        x = torch.rand(1, *size, requires_grad=True)
        model(x)
        handle.remove()
        out = store["out"]
        i = out.shape[-1] // 2  # a unit in the middle, away from the padding
        out[0, :, i, i].sum().backward()
        rows = (x.grad[0].abs().sum(0).sum(1) > 0).nonzero().flatten()
        lo, hi = g.field(i)
        assert (rows.min().item(), rows.max().item() + 1) == (lo, hi), g.name
        assert hi - lo == g.rf


def _positive(model: nn.Module) -> nn.Module:
    """``model`` in float64 with every weight positive (1/2 over its fan-in), no biases, and
    average pooling in place of max pooling (the same windows): every path from an input pixel
    to a unit carries a positive gradient, so the pixels with a non-zero gradient are exactly
    the unit's field (inside the image)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.constant_(m.weight, 0.5 / m.weight[0].numel())
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        for name, child in m.named_children():
            if isinstance(child, nn.MaxPool2d):
                pool = nn.AvgPool2d(child.kernel_size, child.stride, child.padding, child.ceil_mode)
                setattr(m, name, pool)
    return model.double().eval()


@pytest.mark.parametrize(
    "name, size",
    [
        ("resnet18", (3, 96, 96)),  # a strided 1x1 shortcut beside two 3x3 convolutions
        ("googlenet", (3, 96, 96)),  # Inception: 1x1, 3x3, 5x5 and pooling, concatenated
        ("mobilenet_v2", (3, 96, 96)),  # inverted residuals
        ("efficientnet_b0", (3, 64, 64)),  # squeeze-and-excitation: whole-image gates
        ("unet", (3, 64, 64)),  # bilinear upsampling, concatenated skips
        ("unet_small_paper", (1, 44, 44)),  # up-conv 2x2 and cropped skips (valid convs)
    ],
)
def test_fields_of_branching_networks_match_gradients(name: str, size: tuple[int, ...]) -> None:
    """Every convolution and pooling layer of a branching network: its middle unit's input
    pixels with a non-zero gradient are its computed field (clipped to the image), all of the
    image after a squeeze-and-excitation gate. In execution order, ResNet-18's fields came out
    wrong from its first shortcut on (its last jump was 256, not 32; its last field 2,395 px, not
    435). After an up-conv the field covers both output phases, so there it may be larger."""
    from cnnlab.models.unet import UNet

    if name == "unet_small_paper":  # the paper's U-Net, two levels deep and 8 channels wide
        model = UNet(
            num_classes=2,
            in_channels=1,
            depth=2,
            base_width=8,
            padding=0,
            batch_norm=False,
            upsample="transpose",
        )
    else:
        model = cnnlab.create_model(name)
    model = _positive(model)
    geometry = layer_geometry(model, size)
    outputs: list[torch.Tensor] = []
    modules = dict(model.named_modules())
    handles = [
        modules[n].register_forward_hook(lambda m, a, o: outputs.append(o))
        for n in {g.name for g in geometry}
    ]
    x = (torch.rand(1, *size, dtype=torch.float64) + 0.1).requires_grad_()
    model(x)
    for h in handles:
        h.remove()
    assert len(outputs) == len(geometry) > 10
    for g, out in zip(geometry, outputs, strict=True):
        i = out.shape[-1] // 2
        (grad,) = torch.autograd.grad(out[0, :, i, i].sum(), x, retain_graph=True)
        rows = (grad[0].abs().sum((0, 2)) > 0).nonzero().flatten()
        seen = (rows.min().item(), rows.max().item() + 1)
        lo, hi = (0, size[1]) if g.whole else g.field(i)
        want = (max(lo, 0), min(hi, size[1]))
        if name == "unet_small_paper" and g.name.startswith("decoders"):
            assert want[0] <= seen[0] and seen[1] <= want[1], g.name
        else:
            assert seen == want, (g.name, g.rf, g.jump, g.start)
    if name == "resnet18":
        assert (geometry[-1].rf, geometry[-1].jump) == (435, 32)
    if name == "efficientnet_b0":  # after the first gate, every unit sees the whole image
        assert not geometry[0].whole and geometry[-1].whole


def test_top_patches_find_the_known_maximisers() -> None:
    """A 3x3 conv that sums its window: the brightest 3x3 blocks win, cropped exactly."""
    model = nn.Sequential(nn.Conv2d(1, 1, 3, bias=False))
    nn.init.ones_(model[0].weight)
    images = torch.zeros(12, 1, 10, 10)
    for n in range(12):
        r, c = n % 7, (2 * n) % 7
        images[n, 0, r : r + 3, c : c + 3] = n + 1  # image n has a block of brightness n + 1
    geometry = layer_geometry(model, (1, 10, 10))[0]
    patches, where = top_patches(model, "0", 0, images, geometry, k=9)
    assert [n for n, _, _ in where] == list(range(11, 2, -1))  # the nine brightest images
    for patch, (n, row, col) in zip(patches, where, strict=True):
        assert (row, col) == (n % 7, (2 * n) % 7)
        assert torch.equal(patch, torch.full((1, 3, 3), float(n + 1)))


def test_one_pass_finds_every_units_patches() -> None:
    """The patches from one shared pass over the images equal each unit's own search."""
    from cnnlab.engine.visualize import strongest_units

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3, stride=2))
    images = torch.randn(20, 3, 16, 16)
    geometry = {g.name: g for g in layer_geometry(model, (3, 16, 16)) if g.kind == "Conv2d"}
    shared = strongest_units(model, list(geometry), images, batch_size=7)
    for name, g in geometry.items():
        for unit in range(g.channels):
            alone = top_patches(model, name, unit, images, g, k=5)
            together = top_patches(model, name, unit, images, g, k=5, strongest=shared[name])
            assert alone[1] == together[1] and torch.equal(alone[0], together[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_the_patches_and_maps_are_the_cpus() -> None:
    """The model on the GPU, the images on the CPU: the same units, patches and maps."""
    from cnnlab.engine.visualize import activation_maps, strongest_units

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3, stride=2)).double()
    images = torch.randn(20, 3, 16, 16, dtype=torch.float64)
    cpu = strongest_units(model, ["0", "2"], images, batch_size=7)
    maps = activation_maps(model, images[0])
    fields = layer_geometry(model, (3, 16, 16))
    patches = top_patches(model, "2", 3, images, fields[1], k=5)
    model.cuda()
    assert layer_geometry(model, (3, 16, 16)) == fields
    again = top_patches(model, "2", 3, images, fields[1], k=5)
    assert again[1] == patches[1] and torch.equal(again[0], patches[0])
    gpu = strongest_units(model, ["0", "2"], images, batch_size=7)
    for name in ("0", "2"):
        assert gpu[name].value.device.type == "cpu"
        torch.testing.assert_close(gpu[name].value, cpu[name].value)
        assert torch.equal(gpu[name].row, cpu[name].row) and torch.equal(
            gpu[name].col, cpu[name].col
        )
    for (name, a), (same, b) in zip(maps, activation_maps(model, images[0]), strict=True):
        assert name == same and b.device.type == "cpu"
        torch.testing.assert_close(a, b)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["classify", "train", "--epochs", "1", "--out", str(run), "--json"]) == 0
    capsys.readouterr()
    for what in ("patches", "filters", "activations"):
        out = tmp_path / f"{what}.png"
        search = [] if what == "filters" else ["--limit", "200"]  # filters read no images
        argv = ["visualize", what, "--checkpoint", str(run / "best.pt"), *search]
        assert main([*argv, "-o", str(out), "--json"]) == 0
        assert out.stat().st_size > 3000
        capsys.readouterr()
    # the filters are weights: drawn with no data to read, and the search options are refused
    gone = "cnnlab.cli.visualize._vis_inputs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gone, lambda *a, **k: pytest.fail("filters read images"))
        argv = ["visualize", "filters", "--checkpoint", str(run / "best.pt")]
        assert main([*argv, "-o", str(tmp_path / "f.png"), "--json"]) == 0
    capsys.readouterr()
    assert main([*argv, "--limit", "5"]) == 2
    assert "--limit" in capsys.readouterr().err
    # an image past the searched ones: one line naming the range, not an IndexError
    argv = ["visualize", "activations", "--checkpoint", str(run / "best.pt"), "--limit", "200"]
    assert main([*argv, "--index", "200"]) == 2
    assert "0 to 199" in capsys.readouterr().err
    # a device this machine lacks: one line, before the checkpoint is read
    assert main([*argv, "--device", "cuda:7"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'cuda:7' asked for" in err[0], err
    # a folder of colour photos for this grey digits model: read in grey, as it was trained
    for cls in ("x", "y"):
        (tmp_path / "photos" / cls).mkdir(parents=True)
        for i in range(4):
            rgb = (torch.rand(20, 20, 3) * 255).to(torch.uint8).numpy()
            Image.fromarray(rgb).save(tmp_path / "photos" / cls / f"{i}.png")
    photos = ["--data", str(tmp_path / "photos"), "-o", str(tmp_path / "act.png")]
    assert main([*argv, *photos, "--json"]) == 0
    # --image: one's own file, read as predictions read it; a test digit saved as a PNG is the
    # very tensor --split test --index gives
    from cnnlab.data.classification import load_digits
    from cnnlab.engine import visualize as V

    digit = load_digits().splits["test"].images[5, 0].numpy()
    Image.fromarray(digit).save(tmp_path / "five.png")
    Image.fromarray(255 - digit).save(tmp_path / "on_paper.png")  # dark ink: inverted as well
    seen, real = [], V.activation_maps
    base = ["visualize", "activations", "--checkpoint", str(run / "best.pt")]
    base += ["-o", str(tmp_path / "own.png")]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(V, "activation_maps", lambda m, x, c: seen.append(x) or real(m, x, c))
        assert main([*base, "--split", "test", "--index", "5"]) == 0
        assert main([*base, "--image", str(tmp_path / "five.png"), "--json"]) == 0
        assert main([*base, str(tmp_path / "on_paper.png"), "--json"]) == 0  # as predict takes it
    assert len(seen) == 3 and torch.equal(seen[0], seen[1]) and torch.equal(seen[0], seen[2])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["figure"].endswith(
        "own.png"
    )
    assert main([*base, "--image", str(tmp_path / "five.png"), "--index", "2"]) == 2
    assert "--index chooses the data's image to show" in capsys.readouterr().err
    assert main([*base, "--image", str(tmp_path / "none.png")]) == 2
    assert "none.png: no such file" in capsys.readouterr().err
    assert main([*base, str(tmp_path / "five.png"), "--image", str(tmp_path / "five.png")]) == 2
    assert "activations are drawn for one" in capsys.readouterr().err
    assert main([*base, str(tmp_path / "none.png")]) == 2
    assert "none.png: no such file" in capsys.readouterr().err
    figure = tmp_path / "fields.png"
    assert main(["explain", "receptive-field", "vgg16", "--out", str(figure), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["layers"][-1]["receptive_field"] == 212  # VGG-16's last pool sees 212 pixels
    assert result["figure"] == str(figure) and figure.stat().st_size > 20_000


def test_cli_with_torchvision_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--model --weights`` instead of a cnnlab checkpoint: a file in torchvision's AlexNet
    layout (test_torchvision_weights loads real torchvision files), images from --data with
    ImageNet normalisation."""
    import torch

    import cnnlab

    torch.manual_seed(0)
    path = tmp_path / "alexnet.pth"
    torch.save(cnnlab.create_model("alexnet_tv").state_dict(), path)
    base = ["--model", "alexnet_tv", "--weights", str(path)]
    search = ["--data", "faces", "--limit", "24", "--layers", "2", "--units", "2"]
    for what, options in (("patches", search), ("filters", [])):
        out = tmp_path / f"{what}.png"
        argv = ["visualize", what, *base, *options, "-o", str(out)]
        assert main([*argv, "--json"]) == 0
        assert out.stat().st_size > 3000
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["filters"] == [64, 3, 11, 11]
    assert main(["visualize", "filters"]) == 2  # neither checkpoint nor weights
    torch.save(cnnlab.create_model("vgg11").state_dict(), path)
    assert main(["visualize", "filters", *base]) == 2  # weights of another architecture


def test_cli_with_a_scene_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "loc"
    argv = ["localize", "train", "--images", "60", "--epochs", "1", "--out", str(run)]
    assert main([*argv, "--json"]) == 0
    capsys.readouterr()
    out = tmp_path / "patches.png"
    argv = ["visualize", "patches", "--checkpoint", str(run / "best.pt"), "--limit", "40"]
    assert main([*argv, "--layers", "2", "-o", str(out), "--json"]) == 0
    layers = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["layers"]
    assert len(layers) == 2 and layers[0]["receptive_field"] < layers[1]["receptive_field"]
    assert out.stat().st_size > 3000
    # a photo of one's own, stretched to the localiser's square as its predictions are
    photo = tmp_path / "wide.png"
    Image.fromarray((torch.rand(48, 80, 3) * 255).to(torch.uint8).numpy()).save(photo)
    out = tmp_path / "own.png"
    argv = ["visualize", "activations", "--checkpoint", str(run / "best.pt"), "--image"]
    from cnnlab.engine import visualize as V
    from cnnlab.engine.checkpoint import model_from_checkpoint
    from cnnlab.engine.localize import predict_files

    seen, real = [], V.activation_maps
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(V, "activation_maps", lambda m, x, c: seen.append(x) or real(m, x, c))
        assert main([*argv, str(photo), "-o", str(out), "--json"]) == 0
    assert out.stat().st_size > 3000
    # the maps' input is what `localize predict` scores: the same object probability from it
    model, _ = model_from_checkpoint(run / "best.pt", "localization")
    with torch.no_grad():
        p_c = torch.sigmoid(model.eval()(seen[0][None])[0, 0]).item()
    assert p_c == pytest.approx(predict_files(run / "best.pt", [photo])[0]["object_probability"])


def test_patches_of_a_model_that_pads_its_input() -> None:
    """The padded U-Net pads a 36 px image to 48 (a multiple of 2^depth) before its encoder, so
    a unit's strongest position can lie past the image plus one receptive field: its patch is
    cropped with zeros there, at full size (it was an empty crop and a stack error)."""
    from cnnlab.engine.visualize import strongest_units

    torch.manual_seed(0)
    model = cnnlab.create_model("unet", num_classes=2, in_channels=3).eval()
    images = torch.randn(6, 3, 36, 36)
    geometry = [g for g in layer_geometry(model, (3, 36, 36)) if g.kind == "Conv2d"]
    strongest = strongest_units(model, [g.name for g in geometry], images)
    beyond = 0
    for g in geometry:
        for unit in range(g.channels):
            patches, where = top_patches(
                model, g.name, unit, images, g, k=4, strongest=strongest[g.name]
            )
            assert patches.shape == (4, 3, g.rf, g.rf)
            for patch, (n, row, col) in zip(patches, where, strict=True):
                (y0, y1), (x0, x1) = g.field(row), g.field(col)
                inside = images[n, :, max(y0, 0) : y1, max(x0, 0) : x1]  # the part in the image
                top, left = max(0, -y0), max(0, -x0)
                got = patch[:, top : top + inside.shape[1], left : left + inside.shape[2]]
                assert torch.equal(got, inside)
                beyond += y1 > 36 + g.rf or x1 > 36 + g.rf
    assert beyond  # the case the fix is for did occur


def test_cli_with_a_detector_trained_on_a_yolo_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A detector (or localiser, segmenter) trained on files: its images are read the way the
    task reads them (it was "class folder(s) with no usable image: labels")."""
    from cnnlab.data.scenes import make_scenes, write_yolo

    root = write_yolo(make_scenes(16, seed=3, image_size=64, min_objects=1), tmp_path / "y")
    run = tmp_path / "run"
    argv = ["detect", "train", "--data", str(root), "--image-size", "64", "--epochs", "1"]
    assert main([*argv, "--out", str(run), "--json"]) == 0
    capsys.readouterr()
    out = tmp_path / "patches.png"
    argv = ["visualize", "patches", "--checkpoint", str(run / "best.pt"), "--layers", "2"]
    assert main([*argv, "-o", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(result["layers"]) == 2 and out.stat().st_size > 3000


def test_visualize_without_a_model_names_the_newest_classifier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --checkpoint and no --weights: the error shows the newest classifier run's best.pt
    (none in a folder without runs), and both at once is its own error."""
    import os

    monkeypatch.chdir(tmp_path)
    assert main(["visualize", "filters"]) == 2
    assert capsys.readouterr().err.strip() == (
        "cnnlab: error: give --checkpoint (a run's best.pt) or --model with --weights "
        "(a torchvision file)"
    )
    for age, name in ((100, "old"), (10, "new")):
        best = tmp_path / "runs" / "classify" / name / "best.pt"
        best.parent.mkdir(parents=True)
        best.write_bytes(b"")
        os.utime(best, (1e9 - age, 1e9 - age))
    (tmp_path / "runs" / "faces" / "run").mkdir(parents=True)  # newer, but not a classifier
    (tmp_path / "runs" / "faces" / "run" / "best.pt").write_bytes(b"")
    assert main(["visualize", "patches"]) == 2
    said = " ".join(capsys.readouterr().err.split())
    assert f"e.g. {Path('runs/classify/new/best.pt')}, the newest classifier here" in said
    argv = ["visualize", "filters", "--checkpoint", "a.pt", "--weights", "b.pth"]
    assert main(argv) == 2
    assert "not both" in capsys.readouterr().err


def test_the_centre_unit_is_found_along_each_side() -> None:
    """On a 64x128 input each layer's drawn field is centred on the image within half a jump,
    down and across (the figure once used the row's unit for both axes, drawing every field
    left of centre)."""
    geometry = layer_geometry(cnnlab.create_model("vgg11").eval(), (3, 64, 128))
    for g in geometry:
        top, left, bottom, right = g.centre_field(64, 128)
        assert (bottom - top, right - left) == (g.rf, g.rf)
        assert abs((top + bottom - 1) / 2 - 31.5) <= g.jump / 2
        assert abs((left + right - 1) / 2 - 63.5) <= g.jump / 2


@pytest.mark.parametrize(
    "name, published", [("alexnet", 195), ("vgg16", 212), ("mobilenet_v1", 315)]
)
def test_last_fields_match_the_published_figures(name: str, published: int) -> None:
    """The last layer's receptive field as Araujo, Norris & Sim list it ("Computing receptive
    fields of convolutional neural networks", Distill 2019: alexnet_v2 195, vgg_16 212,
    mobilenet_v1 315 px)."""
    model = cnnlab.create_model(name).eval()
    size = cnnlab.registry.get_model_entry(name).input_size
    assert layer_geometry(model, size)[-1].rf == published
