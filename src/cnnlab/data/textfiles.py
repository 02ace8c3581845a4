"""Small text files users write by hand or export from tools (class lists, YOLO labels, split
lists): UTF-8 with or without the byte-order mark Windows editors add, and a file that is not
text is a one-line error naming it rather than a traceback."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from cnnlab.errors import CnnlabError


def read_lines(path: Path) -> list[str]:
    """The lines of ``path``, a leading UTF-8 byte-order mark dropped."""
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise CnnlabError(f"{path}: not a UTF-8 text file") from None


def read_names(path: Path) -> list[str]:
    """A class list (``classes.txt``, labelme's ``labels.txt``): one name a line, spaces at
    either end and blank lines dropped."""
    return [line.strip() for line in read_lines(path) if line.strip()]


def sorted_names(names: set[str] | list[str]) -> list[str]:
    """Class names found in labels, in a fixed order: as numbers where all are whole numbers
    (``2`` before ``10``), else alphabetically."""
    if names and all(re.fullmatch(r"-?[0-9]+", n) for n in names):  # "²" is a digit, no int
        return sorted(names, key=int)
    return sorted(names)


def write_names(path: Path, names: Sequence[str]) -> None:
    """Write a class list :func:`read_names` reads back: one name a line, in UTF-8 whatever the
    system's locale (a name such as ``café`` survives on Windows too)."""
    path.write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
