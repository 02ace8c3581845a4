"""The README's and docs' relative links lead somewhere: every linked file exists, every
``#anchor`` names a heading of its file (as GitHub makes anchors from headings), and every
figure in ``docs/figures`` is shown by one of them (a figure nobody links goes stale unseen)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation other than ``-`` and ``_``
    dropped, each space a hyphen (``## Faces: verification, one-shot`` ->
    ``faces-verification-one-shot``)."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of ``page``'s headings (outside code blocks, where ``#`` is a comment)."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {github_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def links(page: Path) -> list[str]:
    """The relative link targets on ``page`` (web addresses left out)."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


def test_the_anchor_rule_on_known_headings() -> None:
    assert github_anchor("Faces: verification, recognition, one-shot learning") == (
        "faces-verification-recognition-one-shot-learning"
    )
    assert github_anchor("Faster algorithms: R-CNN, Fast R-CNN, Faster R-CNN") == (
        "faster-algorithms-r-cnn-fast-r-cnn-faster-r-cnn"
    )
    assert github_anchor("Model zoo") == "model-zoo"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_lead_to_files_and_headings(page: Path) -> None:
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_every_figure_is_shown_somewhere() -> None:
    shown = {(page.parent / t.partition("#")[0]).resolve() for page in PAGES for t in links(page)}
    figures = sorted((ROOT / "docs" / "figures").glob("*.png"))
    assert figures
    unshown = [f.name for f in figures if f.resolve() not in shown]
    assert not unshown, f"figures no page links: {', '.join(unshown)}"
