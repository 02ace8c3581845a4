"""torchvision checkpoint files load into cnnlab models and give the same outputs.

Needs torchvision, which does not pair with this project's CPU torch build: the tests skip in
the main suite and run in a side virtualenv (`pip install torch==2.14.1 torchvision==0.29.1`,
then `pip install --no-deps -e .` and `python -m pytest tests/test_torchvision_weights.py`).
No weights are downloaded: torchvision models are built with random weights and random batch-norm
statistics, saved as the plain state_dict files torchvision publishes, and loaded from disk.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import cnnlab
from cnnlab.models import load_torchvision_weights

tvm = pytest.importorskip("torchvision.models")

ARCHS = [
    "alexnet",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "vgg11_bn",
    "vgg13_bn",
    "vgg16_bn",
    "vgg19_bn",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "googlenet",
    "mobilenet_v2",
    *(f"efficientnet_b{i}" for i in range(8)),
]


def torchvision_file(name: str, path: Path, **kwargs: object) -> torch.nn.Module:
    if name == "googlenet":
        kwargs = {"aux_logits": False, "init_weights": False} | kwargs
    torch.manual_seed(0)
    model = tvm.get_model(name, weights=None, **kwargs).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):  # make eval-mode batch norm non-trivial
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    torch.save(model.state_dict(), path)
    return model


@pytest.mark.parametrize("name", ARCHS)
def test_outputs_match_torchvision(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.pth"
    theirs = torchvision_file(name, path)
    ours = cnnlab.create_model("alexnet_tv" if name == "alexnet" else name).eval()
    load_torchvision_weights(ours, path)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert (ours(x) - theirs(x)).abs().max().item() <= 1e-4


def test_googlenet_aux_and_transform_input(tmp_path: Path) -> None:
    path = tmp_path / "googlenet.pth"
    theirs = torchvision_file("googlenet", path, aux_logits=True, transform_input=True)
    plain = load_torchvision_weights(
        cnnlab.create_model("googlenet", transform_input=True).eval(), path
    )  # aux dropped
    with_aux = load_torchvision_weights(
        cnnlab.create_model("googlenet", aux_logits=True, transform_input=True).eval(), path
    )
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = theirs(x)
        assert (plain(x) - expected).abs().max() <= 1e-4
        assert (with_aux(x) - expected).abs().max() <= 1e-4
    assert torch.equal(with_aux.aux1.fc2.weight, theirs.aux1.fc2.weight)


def test_new_head_for_transfer_learning(tmp_path: Path) -> None:
    path = tmp_path / "mnv2.pth"
    theirs = torchvision_file("mobilenet_v2", path)
    ours = load_torchvision_weights(
        cnnlab.create_model("mobilenet_v2", num_classes=5), path, ignore_head=True
    ).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours.forward_features(x), theirs.features(x), atol=1e-5)
    assert ours(x).shape == (1, 5)


def test_style_features_from_a_torchvision_vgg19_file(tmp_path: Path) -> None:
    """Style transfer's extractor on a real torchvision VGG-19 file equals torchvision's own
    ``features`` (max pools swapped for average pools, as Gatys et al. do) on normalised input."""
    from cnnlab.engine.style import IMAGENET_MEAN, IMAGENET_STD, FeatureExtractor

    path = tmp_path / "vgg19.pth"
    theirs = torchvision_file("vgg19", path)
    layers = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv4_2", "conv5_1"]
    ours = FeatureExtractor(str(path), layers)
    x = torch.rand(1, 3, 64, 64)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    taps = {1: "conv1_1", 6: "conv2_1", 11: "conv3_1", 20: "conv4_1", 22: "conv4_2", 29: "conv5_1"}
    h = (x - mean) / std
    with torch.no_grad():
        got = ours(x)
        for i, m in enumerate(theirs.features[:30]):
            h = torch.nn.functional.avg_pool2d(h, 2) if isinstance(m, torch.nn.MaxPool2d) else m(h)
            if i in taps:
                assert (got[taps[i]] - h).abs().max().item() <= 1e-4, taps[i]
