"""Datasets here are decoded once and held in memory (uint8); one that cannot fit is refused
before any work, with the estimate, instead of being killed by the OS half-way without a word."""

from __future__ import annotations

import os

from cnnlab.errors import CnnlabError


def physical_memory() -> int | None:
    """This machine's memory in bytes, or ``None`` where the OS does not say (not POSIX)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def require_memory(need: int, what: str, advice: str) -> None:
    """Refuse ``need`` bytes for ``what`` when they exceed half of the machine's memory."""
    total = physical_memory()
    if total is not None and need > total / 2:
        raise CnnlabError(
            f"{what} needs about {need / 2**30:.1f} GiB in memory, more than half of this "
            f"machine's {total / 2**30:.0f} GiB; {advice}"
        )


def require_image_memory(n: int, size: int, source: object, bytes_per_pixel: int = 3) -> None:
    """:func:`require_memory` for ``n`` images of ``size x size`` pixels from ``source``."""
    require_memory(
        n * bytes_per_pixel * size * size,
        f"{source}: {n:,} images at {size} px",
        "use a smaller --image-size or fewer images",
    )
