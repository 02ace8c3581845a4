"""Registry behaviour and the LeNet family's paper and slide numbers (registry-wide model tests
live in test_zoo.py)."""

from __future__ import annotations

import re

import pytest
import torch

import cnnlab
from cnnlab.errors import CnnlabError
from cnnlab.models.lenet import C3_TABLE
from cnnlab.registry import register_model

ALL = cnnlab.list_models()


def test_registry_lists_the_lenets() -> None:
    assert {"lenet5", "lenet5_classic", "lenet_course"} <= set(ALL)
    assert cnnlab.list_models("lenet5*") == ["lenet5", "lenet5_classic"]
    # a name part without wildcards: every name containing it, as a search box finds them
    assert cnnlab.list_models("plain") == [f"cifar_plain{d}" for d in (110, 20, 32, 44, 56)]
    assert cnnlab.list_models("vgg16") == ["vgg16", "vgg16_bn"]
    assert cnnlab.list_models("lenet5?") == []  # a shell pattern stays one


def test_unknown_override_is_an_error() -> None:
    with pytest.raises(CnnlabError, match="does not accept dropout"):
        cnnlab.create_model("lenet5", dropout=0.5)


def test_unknown_model_suggests() -> None:
    with pytest.raises(CnnlabError, match="did you mean lenet5"):
        cnnlab.create_model("lenet")


def test_builders_must_be_keyword_only() -> None:
    with pytest.raises(TypeError):
        register_model("bad_builder_for_test", input_size=(1, 8, 8))(lambda n: None)


def test_tasks_are_known_and_each_has_a_training_command() -> None:
    from cnnlab.engine.checkpoint import TRAINED_BY
    from cnnlab.registry import TASKS, get_model_entry, list_models, require_task

    assert set(TRAINED_BY) == set(TASKS)
    assert {get_model_entry(n).task for n in list_models()} == set(TASKS)
    with pytest.raises(ValueError, match="task 'poetry'"):
        register_model("bad_task_for_test", input_size=(1, 8, 8), task="poetry")(
            lambda: torch.nn.Identity()
        )
    assert require_task("unet", "segmentation").name == "unet"
    with pytest.raises(CnnlabError, match="--backbone unet: a segmentation model"):
        require_task("unet", "classification", "--backbone")


def test_every_classifier_takes_its_own_input_size_and_not_a_tiny_one() -> None:
    """The shape check that guards --image-size passes each registered classifier at its
    registered input size (a meta forward pass), and refuses 2x2 inputs to LeNet-5."""
    from cnnlab.models.backbone import check_input_fits
    from cnnlab.registry import get_model_entry, list_models

    for name in list_models(task="classification"):
        with torch.device("meta"):
            model = cnnlab.create_model(name)
        check_input_fits(model, get_model_entry(name).input_size, name)
    with pytest.raises(CnnlabError, match="1x2x2 inputs do not fit lenet5"):
        check_input_fits(cnnlab.create_model("lenet5"), (1, 2, 2), "lenet5")


def trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_lenet5_classic_has_60000_parameters() -> None:
    """LeCun et al. 1998: 'LeNet-5 ... contains 340,908 connections, but only 60,000 trainable
    free parameters'."""
    model = cnnlab.create_model("lenet5_classic")
    assert trainable(model) == 60_000
    assert trainable(model.features.c3) == 1_516  # the paper's C3 count


def test_c3_table_is_the_papers() -> None:
    """Table I: 6 maps from 3 contiguous inputs, 6 from 4 contiguous, 3 from 4 discontinuous,
    one from all six; 60 connections in all."""
    sizes = [len(t) for t in C3_TABLE]
    assert sizes == [3] * 6 + [4] * 9 + [6]
    assert sum(sizes) == 60
    assert all(len(set(t)) == len(t) for t in C3_TABLE)


def test_c3_starts_from_the_papers_uniform_init() -> None:
    """Each C3 map's kernels are drawn from U(-2.4/F, 2.4/F), F its fan-in (25 x its inputs):
    inside the bound, and spread over it (the bound differs by map: 0.032, 0.024, 0.016)."""
    torch.manual_seed(0)
    c3 = cnnlab.create_model("lenet5_classic").features.c3
    start = 0
    for inputs in C3_TABLE:
        kernels = c3.weight.detach()[start : start + len(inputs)]
        bound = 2.4 / (25 * len(inputs))
        assert kernels.abs().max() <= bound
        assert kernels.abs().max() > 0.9 * bound and kernels.mean().abs() < 0.25 * bound
        start += len(inputs)
    assert torch.equal(c3.bias, torch.zeros(16))


def test_c3_respects_the_table() -> None:
    """A C3 output map must not depend on an input map it is not connected to."""
    c3 = cnnlab.create_model("lenet5_classic").features.c3
    x = torch.randn(1, 6, 14, 14, requires_grad=True)
    for j, inputs in enumerate(C3_TABLE):
        (grad,) = torch.autograd.grad(c3(x)[0, j].sum(), x)
        used = {i for i in range(6) if grad[0, i].abs().sum() > 0}
        assert used == set(inputs), f"map {j}"


def test_lenet_course_parameters_per_layer() -> None:
    m = cnnlab.create_model("lenet_course")
    counts = [
        trainable(m.features.conv1),
        trainable(m.features.conv2),
        trainable(m.head.fc1),
        trainable(m.head.fc2),
        trainable(m.head.fc3),
    ]
    assert counts == [
        (5 * 5 * 3 + 1) * 8,
        (5 * 5 * 8 + 1) * 16,
        5 * 5 * 16 * 120 + 120,
        120 * 84 + 84,
        84 * 10 + 10,
    ]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_class_and_channel_counts_must_be_positive_integers(bad: object) -> None:
    """num_classes=0 used to build a model with an empty head; -1 failed deep inside torch."""
    with pytest.raises(CnnlabError, match=f"num_classes must be an integer >= 1, got {bad!r}"):
        cnnlab.create_model("lenet5", num_classes=bad)
    with pytest.raises(CnnlabError, match="in_channels must be an integer >= 1"):
        cnnlab.create_model("resnet18", in_channels=bad)


@pytest.mark.parametrize(
    ("name", "override", "message"),
    [
        ("unet", {"base_width": 0}, "base_width must be an integer >= 1, got 0"),
        ("unet", {"depth": 0}, "depth must be an integer >= 1"),
        ("unet", {"upsample": "nearest"}, "upsample must be transpose or bilinear"),
        ("yolo", {"anchors": ()}, "anchors must be a non-empty sequence of (width, height)"),
        (
            "yolo",
            {"anchors": ((0.1, -0.2),)},
            "anchors must be a non-empty sequence of (width, height) pairs > 0, got ((0.1, -0.2),)",
        ),
        ("yolo", {"anchors": 3}, "anchors must be a non-empty sequence"),
        ("alexnet", {"dropout": -0.1}, "dropout must be a number in [0, 1), got -0.1"),
        ("efficientnet_b0", {"drop_path_rate": 1.0}, "drop_path_rate must be a number in [0, 1)"),
        ("mobilenet_v2", {"width_mult": 0}, "width_mult must be a number > 0, got 0"),
        ("mobilenet_v1", {"resolution_mult": float("nan")}, "resolution_mult must be a number > 0"),
        ("conv3d_net", {"widths": (0, 4)}, "widths must be a non-empty sequence of integers >= 1"),
        ("conv1d_net", {"kernel_size": 0}, "kernel_size must be an integer >= 1"),
        ("siamese", {"pool_size": 0}, "pool_size must be an integer >= 1"),
        ("siamese_ensemble", {"members": 1}, "members must be an integer >= 2, got 1"),
        ("localizer", {"num_landmarks": -1}, "num_landmarks must be an integer >= 0"),
        ("googlenet", {"aux_logits": "yes"}, "aux_logits must be True or False, got 'yes'"),
        ("resnet18", {"zero_init_residual": 1}, "zero_init_residual must be True or False"),
    ],
)
def test_overrides_are_checked_before_building(name: str, override: dict, message: str) -> None:
    """An override the builder would build wrong (``base_width=0``: a 4-parameter U-Net;
    ``anchors=()``: a YOLO head predicting nothing; ``width_mult=0``: a MobileNet of minimum
    widths) or fail on deep inside (a TypeError, torch's ValueError) is one error naming it."""
    with pytest.raises(CnnlabError, match=re.escape(f"model {name!r}: {message}")):
        cnnlab.create_model(name, **override)


def test_overrides_as_a_checkpoint_stores_them_still_build() -> None:
    """Lists where the builder's defaults are tuples (a checkpoint's kwargs), ``None`` where
    that is the default, NumPy integers: all accepted."""
    import numpy as np

    assert cnnlab.create_model("yolo", anchors=[[0.1, 0.2], [0.3, 0.3]]).anchors.shape == (2, 2)
    cnnlab.create_model("conv3d_net", widths=[4, 8], num_classes=np.int64(3))
    cnnlab.create_model("efficientnet_b0", dropout=None, num_classes=2)


def test_listing_an_unknown_task_is_an_error() -> None:
    """A misspelt task used to list nothing, as if the zoo had no such models."""
    assert "yolo" in cnnlab.list_models(task="detection")
    with pytest.raises(CnnlabError, match="unknown task 'detector'; tasks are classification"):
        cnnlab.list_models(task="detector")


def test_top_level_names_are_the_modules_own_and_load_on_first_use() -> None:
    """``cnnlab.Classifier``, ``cnnlab.train_classifier`` ... are the objects their modules
    define; ``import cnnlab`` alone does not import torch (the names load on first use)."""
    import importlib
    import subprocess
    import sys

    for name, module in cnnlab._LAZY.items():
        assert getattr(cnnlab, name) is getattr(importlib.import_module(module), name)
    assert set(cnnlab._LAZY) <= set(dir(cnnlab)) & set(cnnlab.__all__)
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        cnnlab.nope  # noqa: B018
    code = "import sys, cnnlab\nassert 'torch' not in sys.modules\nprint(cnnlab.FacesConfig())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and "FacesConfig(data='digits'" in done.stdout, done.stderr
