"""How counts are said in messages (``1 image``, ``2 images``, ``1,797 images``), the files
passed over, and the order names are listed in (``frame_2`` before ``frame_10``)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from pathlib import PurePath


def counted(n: int, noun: str, plural: str = "") -> str:
    """``n`` with ``noun`` in the number it needs (``plural`` where adding "s" is wrong)."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def with_article(word: str) -> str:
    """``a detection``, ``an embedding``, ``a uint16``, ``an int64``, ``an 8x8x2``, ``an
    11x5``, ``a 110x5``: ``word`` with the article its sound takes, for messages."""
    number = re.match(r"\d+", word)
    vowel = number.group() in ("11", "18") if number else False
    return f"{'an' if vowel or word[0] in 'aeio8' else 'a'} {word}"  # uint: 'a'


def listed(words: Sequence[str]) -> str:
    """``"--a"``, ``"--a and --b"``, ``"--a, --b and --c"``: options named in a message."""
    return " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)


def comma_names(text: str) -> list[str]:
    """``"bo, ann,,bo"`` -> ``["bo", "ann"]``: the names a comma-separated option gives, in its
    order, each once, blanks left out."""
    return list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))


def skipped_lines(skipped: Sequence[str], shown: int = 20) -> list[str]:
    """``skipped <file>: <why>`` for the first ``shown`` unreadable files a folder held, then
    ``... and N more unreadable files``: what training and prediction say of them."""
    lines = [f"skipped {why}" for why in skipped[:shown]]
    if len(skipped) > shown:
        lines.append(f"... and {counted(len(skipped) - shown, 'more unreadable file')}")
    return lines


def nearest(name: str, known: Iterable[str], n: int = 1) -> str:
    """``"; did you mean mnist?"`` when ``name`` is close to up to ``n`` of ``known``, else
    ``""``: the end of an "unknown ..." message."""
    close = difflib.get_close_matches(name, list(known), n=n, cutoff=0.65)
    return f"; did you mean {', '.join(close)}?" if close else ""


def natural_key(name: str | PurePath) -> tuple[tuple[int, int, str], ...]:
    """Sort key reading each run of digits in a name or path as a number: ``frame_2.jpg``
    before ``frame_10.jpg``, as a file browser lists them (plain ``sorted`` puts ``10``
    first). Each piece is ``(0, number, text)`` for digits and ``(1, 0, text)`` otherwise, so
    any two keys compare without mixing ``int`` and ``str``; ties (``a01`` against ``a1``) fall
    to the text."""
    pieces = re.split(r"(\d+)", str(name))  # text, digits, text, digits, ..., text
    return tuple((0, int(t), t) if k % 2 else (1, 0, t) for k, t in enumerate(pieces) if t)
