"""Shared fixtures: deterministic seeds, a small image folder made on the fly, and images
opened as a program opens them."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings
from PIL import Image

settings.register_profile("cnnlab", max_examples=40, deadline=None, derandomize=True)
settings.load_profile("cnnlab")

COLOURS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200)}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def opened() -> Iterator[Callable[[Path | str], Image.Image]]:
    """``Image.open`` as a program calls it (lazily; EXIF orientation not applied), each file
    closed when the test ends."""
    with contextlib.ExitStack() as stack:
        yield lambda path: stack.enter_context(Image.open(path))


def make_image(
    colour: tuple[int, int, int], rng: np.random.Generator, size: int = 40
) -> Image.Image:
    """A noisy background with a coloured square somewhere on it."""
    arr = rng.integers(60, 120, (size, size + 8, 3), dtype=np.uint8)
    s = int(rng.integers(12, 20))
    y, x = (int(v) for v in rng.integers(0, size - s, 2))
    arr[y : y + s, x : x + s] = np.clip(np.array(colour) + rng.integers(-20, 20, 3), 0, 255)
    return Image.fromarray(arr)


def write_folder(root: Path, per_class: int = 12, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            make_image(colour, rng).save(root / name / f"{i:03d}.png")
    return root


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """``root/<class>/*.png`` with three colour classes, plus four bad files."""
    root = write_folder(tmp_path / "shapes")
    good = (root / "red" / "000.png").read_bytes()
    (root / "red" / "truncated.png").write_bytes(good[: len(good) // 3])
    (root / "green" / "empty.jpg").write_bytes(b"")
    (root / "blue" / "notes.png").write_text("not an image")
    return root
