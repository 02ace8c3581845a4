"""What a typed option value must be: argparse ``type=`` functions that turn the text into a
number, a seed or a shape, or refuse it in one line (``--lr: must be > 0, got -1``)."""

from __future__ import annotations

import argparse
import contextlib
import math
import re
from typing import TYPE_CHECKING

from cnnlab.config import MAX_SEED, is_seed

if TYPE_CHECKING:
    from cnnlab.data.video import Every


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive_int(text: str) -> int:
    value = _int(text)
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


def unit_interval(text: str) -> float:
    """A probability-like value: a score or IoU threshold, a share."""
    value = _float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value:g}")
    return value


def non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def random_seed(text: str) -> int:
    """A random seed: an integer numpy and scikit-learn accept too, in [0, 2**32 - 1]."""
    value = non_negative_int(text)
    if not is_seed(value):
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SEED}, got {value}")
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


def person_name(text: str) -> str:
    """``--name``: a person's name as enrolled, without the spaces a shell quote may keep
    around it (``"ann "`` is ``ann``, not a second person)."""
    name = text.strip()
    if not name:
        raise argparse.ArgumentTypeError("a person needs a non-empty name")
    return name


def frame_every(text: str) -> Every:
    """``--every``: ``5`` (every 5th frame of a video) or ``2s`` / ``0.5s`` (a frame every so
    many seconds of it, :class:`~cnnlab.data.video.Seconds`)."""
    from cnnlab.data.video import Seconds

    given = text.strip().lower()
    with contextlib.suppress(ValueError):
        if not given.endswith("s"):
            if (frames := int(given)) >= 1:
                return frames
        elif math.isfinite(seconds := float(given[:-1])) and seconds > 0:
            return Seconds(seconds)
    raise argparse.ArgumentTypeError(
        f"expected frames (5: every 5th) or seconds (2s: a frame every 2 s), above 0; got {text!r}"
    )
