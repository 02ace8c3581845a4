"""Shared pieces of the command line: a one-line-error parser and typed value parsers."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Sequence
from dataclasses import fields
from typing import Any, NoReturn, TypeVar

from cnnlab.errors import CnnlabError


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise CnnlabError(f"{self.prog}: {message}")


C = TypeVar("C")


def config_from_args(cls: type[C], args: argparse.Namespace, **overrides: Any) -> C:
    """The settings dataclass ``cls`` filled from the parsed options of the same names
    (``--image-size`` -> ``image_size``); an option left unset (``None``) keeps the dataclass
    default. Parsers take their defaults from the dataclass, so there is one source of each."""
    values = {
        f.name: getattr(args, f.name)
        for f in fields(cls)  # type: ignore[arg-type]
        if getattr(args, f.name, None) is not None
    }
    return cls(**{**values, **overrides})


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value:g}")
    return value


def non_negative_float(text: str) -> float:
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value:g}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def padding(text: str) -> int | str:
    if text in ("same", "valid"):
        return text
    return non_negative_int(text)


def dims(text: str) -> tuple[int, ...]:
    """``"3x32x32"`` -> ``(3, 32, 32)``."""
    if not re.fullmatch(r"\d+([xX]\d+)*", text.strip()):
        raise argparse.ArgumentTypeError(f"expected sizes like 3x32x32, got {text!r}")
    dims = tuple(int(d) for d in re.split(r"[xX]", text.strip()))
    if min(dims) < 1:
        raise argparse.ArgumentTypeError(f"every size must be >= 1, got {text!r}")
    return dims


def numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
