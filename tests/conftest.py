"""Shared fixtures: deterministic seeds and a small single-threaded torch for fast tests."""

from __future__ import annotations

import pytest
import torch
from hypothesis import settings

settings.register_profile("cnnlab", max_examples=40, deadline=None, derandomize=True)
settings.load_profile("cnnlab")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
