"""Registry behaviour and the LeNet family's paper and slide numbers (registry-wide model tests
live in test_zoo.py)."""

from __future__ import annotations

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


def test_unknown_override_is_an_error() -> None:
    with pytest.raises(CnnlabError, match="does not accept dropout"):
        cnnlab.create_model("lenet5", dropout=0.5)


def test_unknown_model_suggests() -> None:
    with pytest.raises(CnnlabError, match="did you mean lenet5"):
        cnnlab.create_model("lenet")


def test_builders_must_be_keyword_only() -> None:
    with pytest.raises(TypeError):
        register_model("bad_builder_for_test", input_size=(1, 8, 8))(lambda n: None)


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
