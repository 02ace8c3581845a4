"""The model zoo: every registered model runs, trains and takes overrides; parameter counts and
MACs equal the published figures; the course's tables walk through; counts agree with PyTorch's
own FLOP counter."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import cnnlab
from cnnlab.cli import main
from cnnlab.layers import DropPath, make_divisible
from cnnlab.models.efficientnet import EFFICIENTNET_VARIANTS, compound_scaling
from cnnlab.models.ledger import build_ledger
from cnnlab.models.resnet import CifarBlock
from cnnlab.registry import get_model_entry
from cnnlab.viz.summary import summarize

ALL = cnnlab.list_models(task="classification")


def small_input(name: str) -> tuple[int, ...]:
    """A small input each model accepts (the published AlexNet's FC needs its 227 px)."""
    size = get_model_entry(name).input_size
    if name == "alexnet" or len(size) != 3 or size[1] <= 32:
        return size
    return (size[0], 96, 96) if name == "nin" else (size[0], 64, 64)


def meta_model(name: str, **overrides: object) -> nn.Module:
    with torch.device("meta"):
        return cnnlab.create_model(name, **overrides)


@pytest.mark.parametrize("name", ALL)
def test_forward_backward_every_parameter_learns(name: str) -> None:
    model = cnnlab.create_model(name, num_classes=7)
    for m in model.modules():
        if isinstance(m, DropPath):
            m.p = 0.0  # a dropped branch would legitimately get no gradient this step
    x = torch.randn(2, *small_input(name))
    y = model(x)
    assert y.shape == (2, 7) and torch.isfinite(y).all()
    y.square().mean().backward()
    silent = [k for k, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not silent, f"no gradient: {silent[:3]}"
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model.forward_head(model.forward_features(x)), model(x))


@pytest.mark.parametrize("name", ALL)
def test_in_channels_override(name: str) -> None:
    model = meta_model(name, in_channels=5, num_classes=3)
    size = small_input(name)
    out = model(torch.zeros(1, 5, *size[1:], device="meta"))
    assert out.shape == (1, 3)


PUBLISHED_PARAMS = {
    "alexnet": 60_965_224,
    "alexnet_tv": 61_100_840,
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840,
    "vgg16_bn": 138_365_992,
    "vgg19_bn": 143_678_248,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "googlenet": 6_624_904,
    "mobilenet_v1": 4_231_976,
    "mobilenet_v2": 3_504_872,
    "efficientnet_b0": 5_288_548,
    "efficientnet_b1": 7_794_184,
    "efficientnet_b2": 9_109_994,
    "efficientnet_b3": 12_233_232,
    "efficientnet_b4": 19_341_616,
    "efficientnet_b5": 30_389_784,
    "efficientnet_b6": 43_040_704,
    "efficientnet_b7": 66_347_960,
    "cifar_resnet20": 269_722,
    "cifar_resnet56": 853_018,
    "cifar_resnet110": 1_727_962,
    "lenet5_classic": 60_000,
}


@pytest.mark.parametrize("name, expected", sorted(PUBLISHED_PARAMS.items()))
def test_exact_parameter_counts(name: str, expected: int) -> None:
    model = meta_model(name)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected


@pytest.mark.parametrize(
    "name, size, gmacs",
    [
        ("resnet50", 224, 4.089),
        ("mobilenet_v1", 224, 0.569),
        ("mobilenet_v2", 224, 0.301),
        ("efficientnet_b0", 224, 0.386),
        ("vgg16", 224, 15.470),
        ("googlenet", 224, 1.498),
    ],
)
def test_published_macs(name: str, size: int, gmacs: float) -> None:
    s = summarize(meta_model(name), (3, size, size))
    assert s.total_macs / 1e9 == pytest.approx(gmacs, abs=0.0015)


def test_resnet_v1_strides_in_the_first_1x1() -> None:
    v15 = summarize(meta_model("resnet50"), (3, 224, 224)).total_macs
    v1 = summarize(meta_model("resnet50", stride_in_1x1=True), (3, 224, 224)).total_macs
    assert round(v15 / 1e9, 2) == 4.09 and round(v1 / 1e9, 2) == 3.86
    block = cnnlab.create_model("resnet50", stride_in_1x1=True).layer2[0]
    assert block.conv1.stride == (2, 2) and block.conv2.stride == (1, 1)


def test_cifar_plain_is_the_resnet_without_shortcuts() -> None:
    res, plain = cnnlab.create_model("cifar_resnet20"), cnnlab.create_model("cifar_plain20")
    plain.load_state_dict(res.state_dict())  # same parameters: option A adds none
    res.eval(), plain.eval()
    x = torch.randn(2, 3, 32, 32)
    assert not torch.allclose(res(x), plain(x))
    for block in res.modules():
        if isinstance(block, CifarBlock):
            block.residual = False
    assert torch.allclose(res(x), plain(x))
    depth = sum(isinstance(m, nn.Conv2d) for m in res.modules()) + 1  # + the FC layer
    assert depth == 20


def test_mobilenet_v1_walks_table_1() -> None:
    """Input sizes of the slide's Table 1, row by row (channels last)."""
    rows = summarize(cnnlab.create_model("mobilenet_v1"), (3, 224, 224), show_all=False).rows
    convs = [r for r in rows if r.kind == "Conv2d"]
    shapes = [r.slide_shape for r in convs]
    assert shapes[:5] == [
        (112, 112, 32),
        (112, 112, 32),
        (112, 112, 64),
        (56, 56, 64),
        (56, 56, 128),
    ]
    assert shapes[-4:] == [(7, 7, 512), (7, 7, 1024), (7, 7, 1024), (7, 7, 1024)]
    assert len(convs) == 1 + 13 * 2  # stem + 13 depthwise-separable blocks
    assert rows[-1].params == 1024 * 1000 + 1000  # FC 1024 x 1000


def test_mobilenet_v1_multipliers() -> None:
    half = meta_model("mobilenet_v1", width_mult=0.5)
    assert half.classifier[1].in_features == 512
    small = cnnlab.create_model("mobilenet_v1", resolution_mult=128 / 224)
    assert small.default_input_size == (3, 128, 128)
    ratio = (
        summarize(meta_model("mobilenet_v1"), (3, 128, 128)).total_macs
        / summarize(meta_model("mobilenet_v1"), (3, 224, 224)).total_macs
    )
    assert ratio == pytest.approx((128 / 224) ** 2, rel=0.02)  # cost scales with rho^2


def test_googlenet_branches_and_aux_heads() -> None:
    tv, paper = cnnlab.create_model("googlenet"), cnnlab.create_model("googlenet_paper")
    assert tv.inception3a.branch3[1].conv.kernel_size == (3, 3)  # torchvision's known slip
    assert paper.inception3a.branch3[1].conv.kernel_size == (5, 5)
    aux = cnnlab.create_model("googlenet", aux_logits=True, num_classes=4)
    logits, a1, a2 = aux.forward_with_aux(torch.randn(2, 3, 224, 224))
    assert logits.shape == a1.shape == a2.shape == (2, 4)
    assert aux.forward(torch.randn(1, 3, 224, 224)).shape == (1, 4)


def test_efficientnet_scaling_rule() -> None:
    rule = compound_scaling(1)
    assert (rule.depth, rule.width, rule.resolution) == (1.2, 1.1, 258)
    assert pytest.approx(1.92, abs=0.01) == 1.2 * 1.1**2 * 1.15**2
    # The released B1 is not the rule: width 1.0 (rule 1.1), depth 1.1 (rule 1.2), 240 px.
    b1 = EFFICIENTNET_VARIANTS["b1"]
    assert (b1.width, b1.depth, b1.resolution) != (rule.width, rule.depth, rule.resolution)


def test_explain_scale_cli(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["explain", "scale", "--phi", "2", "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["depth"] == pytest.approx(1.44) and r["resolution"] == round(224 * 1.15**2)
    assert r["released"]["b2"]["resolution"] == 260


def test_make_divisible_and_drop_path() -> None:
    assert make_divisible(32 * 1.1) == 32 and make_divisible(24 * 1.4) == 32
    assert make_divisible(10) == 16  # never more than 10% below (8 would be)
    drop = DropPath(0.5).train()
    x = torch.ones(1000, 3)
    y = drop(x)
    assert set(y[:, 0].tolist()) <= {0.0, 2.0} and abs(y.mean().item() - 1) < 0.1
    assert torch.equal(drop.eval()(x), x)


@pytest.mark.parametrize(
    "name",
    [
        "resnet18",
        "mobilenet_v2",
        "efficientnet_b0",
        "googlenet",
        "alexnet",
        "conv1d_net",
        "conv3d_net",
        "lenet_course",
    ],
)
def test_macs_agree_with_torch_flop_counter(name: str) -> None:
    """Convolution and linear MACs against torch.utils.flop_counter (FLOPs = 2 x MACs).

    (Not lenet5_classic: its C3 runs as a dense masked convolution, so the counter sees 96
    kernel connections where the network has 60, the number we count.)"""
    model = cnnlab.create_model(name).eval()
    size = small_input(name)
    summary = summarize(model, size)
    ours = sum(r.macs for r in summary.rows if r.kind.startswith(("Conv", "Linear", "PartialConv")))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, *size))
    counts = counter.get_flop_counts()["Global"]
    theirs = sum(
        v for k, v in counts.items() if any(s in str(k) for s in ("convolution", "mm", "addmm"))
    )
    assert 2 * ours == theirs


def test_ledger_matches_published_figures() -> None:
    rows = build_ledger()
    assert len(rows) >= 40
    for row in rows:
        if row.params_match is False:
            assert row.entry.note, f"{row.entry.model}: a difference needs a reason"
        if row.entry.gmacs is not None and row.entry.source == "torchvision docs":
            assert row.gmacs == pytest.approx(row.entry.gmacs, abs=0.0015), row.entry.model


def test_models_cli(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["models", "--ledger", "resnet*", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["ledger"]
    assert {r["model"] for r in rows} == {
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
    }
    # notes go under the table, each once (a note column needed 200 characters)
    assert main(["models", "--ledger", "vgg16*"]) == 0
    out = capsys.readouterr().out
    assert "[1] paper rounds to 138 M" in out and out.count("paper rounds to 138 M") == 1
    assert main(["models", "--json"]) == 0
    names = {
        m["name"] for m in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["models"]
    }
    assert names == set(cnnlab.list_models())
    assert main(["summary", "conv1d_net", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"]
    assert rows[0]["slide_shape"] == [256, 32]


@pytest.mark.parametrize("name", cnnlab.list_models())
def test_summary_cli_for_every_model(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["summary", name, "--json"]) == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s["total_params"] == sum(r["params"] for r in s["rows"])
    assert s["total_macs"] > 0


@pytest.mark.parametrize(
    "name", ["lenet5_classic", "googlenet", "efficientnet_b0", "unet", "yolo", "siamese"]
)
def test_shapes_only_builds_the_same_model_without_drawing_weights(name: str) -> None:
    """``cnnlab models``, the ledger and segment's early size check build models for their
    shapes only (meta device, in-place initialisation skipped: `cnnlab models` 6.2 -> 5.1 s):
    every parameter and buffer has the shape and dtype of a real build."""
    from cnnlab.models.shapes import shapes_only

    with shapes_only():
        ghost = cnnlab.create_model(name)
    real = cnnlab.create_model(name)
    assert all(t.is_meta for t in ghost.state_dict().values())
    shapes = {k: (tuple(v.shape), v.dtype) for k, v in ghost.state_dict().items()}
    assert shapes == {k: (tuple(v.shape), v.dtype) for k, v in real.state_dict().items()}
    # outside the context tensors are real and filled again
    assert not torch.zeros(1).is_meta and torch.nn.Linear(4, 4).weight.abs().sum() > 0


@pytest.mark.parametrize(
    "error, amount",
    [
        (
            RuntimeError(
                "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't "
                "allocate memory: you tried to allocate 120000000000 bytes. Error code 12"
            ),
            "(torch asked for 111.8 GiB at once)",
        ),
        (
            torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0"),
            "(torch asked for 2.0 GiB at once)",
        ),
    ],
    ids=["cpu", "cuda"],
)
def test_an_input_too_big_for_memory_is_not_called_a_misfit(error: Exception, amount: str) -> None:
    """An allocator's failure says the input ran out of memory, with what torch asked for, not
    that the input does not fit the model's layers (it did)."""
    from cnnlab.errors import CnnlabError
    from cnnlab.models.backbone import input_must_fit

    big = input_must_fit("vgg16", (3, 9000, 9000), "--input")
    with (
        pytest.raises(CnnlabError, match=r"^3x9000x9000 inputs to vgg16: out of memory") as e,
        big,
    ):
        raise error
    assert amount in str(e.value) and str(e.value).endswith("; a smaller --input")
    small = input_must_fit("vgg16", (3, 9, 9), "--input")
    with pytest.raises(CnnlabError, match=r"do not fit vgg16 \(made for 3x224x224"), small:
        raise RuntimeError("Given input size: (512x1x1). Calculated output size: (512x0x0)")


def test_explain_degradation_trains_plain_and_residual_networks_alike(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cnnlab explain degradation`: each depth's plain net and ResNet, trained with one recipe
    and seed, with the same parameters (the slide's "no extra parameter"), an error per epoch,
    the figure, and the verdict in words; depths other than the registered ones refused."""
    import json

    figure = tmp_path / "fig4.png"
    argv = ["explain", "degradation", "--depths", "32,20", "--epochs", "2", "--out", str(figure)]
    assert main([*argv, "--json"]) == 0
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = said["rows"]
    names = ["cifar_plain20", "cifar_plain32", "cifar_resnet20", "cifar_resnet32"]
    assert [r["model"] for r in rows] == names
    assert rows[0]["params"] == rows[2]["params"] < rows[1]["params"] == rows[3]["params"]
    assert all(len(r["train_error"]) == len(r["val_error"]) == 2 for r in rows)
    assert all(0 <= e <= 1 for r in rows for e in (*r["train_error"], r["test_error"]))
    assert said["figure"] == str(figure) and figure.stat().st_size > 20_000
    from cnnlab.cli.degradation import _verdict

    line = _verdict(rows)
    plain = f"{rows[1]['train_error'][-1]:.1%} against {rows[0]['train_error'][-1]:.1%}"
    assert line.startswith("plain-32 ends with ") and plain in line and "ResNet-32" in line
    assert main(["explain", "degradation", "--depths", "20,26"]) == 2
    assert "26: the CIFAR networks (6n + 2 layers) have 20, 32, 44" in capsys.readouterr().err
