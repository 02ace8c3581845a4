"""docs/course.md maps each part of the slides to a command, the code and a test: every name it
gives must still be there (a renamed function or test, or an option the CLI dropped, fails here)."""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "docs" / "course.md"


def _rows() -> list[str]:
    """The table rows of the page (neither headers nor separators)."""
    lines = [line for line in COURSE.read_text().splitlines() if line.startswith("| ")]
    return [line for line in lines if not line.startswith("| slide |")]


def _named(kind: str) -> list[str]:
    """Every backticked command (``cnnlab ...``), Python name (``cnnlab.x.y``) or test
    (``tests/f.py::name``) of the page."""
    spans = [s for row in _rows() for s in re.findall(r"`([^`]+)`", row)]
    patterns = {"command": r"cnnlab \S.*", "symbol": r"cnnlab(\.\w+)+", "test": r"tests/\S+::\w+"}
    return [s for s in spans if re.fullmatch(patterns[kind], s)]


def resolve(dotted: str) -> object:
    """The object a dotted name names: its longest importable module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


def test_every_row_shows_implements_and_checks() -> None:
    rows = _rows()
    assert len(rows) >= 40
    for row in rows:
        assert row.count("|") == 5, f"not four cells (a | inside a cell?): {row}"
        if "not implemented" in row:  # the slide's R-CNN family: compared in the docs only
            continue
        for kind in ("command", "symbol", "test"):
            spans = re.findall(r"`([^`]+)`", row)
            pattern = {"command": "cnnlab ", "symbol": "cnnlab.", "test": "tests/"}[kind]
            assert any(s.startswith(pattern) for s in spans), f"no {kind} in: {row}"


@pytest.mark.parametrize("name", sorted(set(_named("symbol"))))
def test_named_code_exists(name: str) -> None:
    assert resolve(name) is not None


@pytest.mark.parametrize("name", sorted(set(_named("test"))))
def test_named_tests_exist(name: str) -> None:
    path, function = name.split("::")
    assert re.search(rf"^def {function}\(", (ROOT / path).read_text(), re.M), name


def test_named_commands_parse() -> None:
    from cnnlab.cli import build_parser

    commands = _named("command")
    assert len(commands) >= 40
    for command in commands:
        build_parser().parse_args(shlex.split(command)[1:])  # a CnnlabError names the problem
