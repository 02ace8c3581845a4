"""How counts are said in messages: ``1 image``, ``2 images``, ``1,797 images``."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str = "") -> str:
    """``n`` with ``noun`` in the number it needs (``plural`` where adding "s" is wrong)."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
