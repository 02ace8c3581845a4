"""What a command shows and writes besides its result: the terminal's tables (the first
:data:`SHOWN` rows), ``--csv`` spreadsheets, ``-o`` figures, and the lines that say where
they went."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table

from cnnlab.errors import CnnlabError, refuse_unwritable


def csv_file(path: str) -> Path:
    """``path`` when a CSV file can be written there (its folders are made); a folder, a file
    where a folder is needed, or a place nothing can be written is an error before the images
    are read."""
    out = Path(path)
    if out.is_dir():
        raise CnnlabError(f"{out}: a folder; give the CSV's file name, e.g. {out / 'pred.csv'}")
    refuse_unwritable(out)  # found now, not after every image was predicted
    return out


def write_csv(
    path: Path,
    rows: list[dict[str, Any]],
    console: Any,
    quiet: bool,
    header: Sequence[str] = (),
) -> str:
    """Write ``rows`` (one flat dict each) to the CSV ``path`` with
    :func:`cnnlab.engine.runlog.write_rows` (``header``, else their keys), say so unless
    ``quiet``, and return the path for ``--json``."""
    from cnnlab.engine.runlog import write_rows

    write_rows(path, rows, header)
    if not quiet:
        console.print(f"wrote {path}")
    return str(path)


def figure_file(output: str) -> Path:
    """Where a ``-o`` figure goes: a file matplotlib can write, at a place that takes one
    (checked before any image is read, not after the work)."""
    from cnnlab.viz.plots import figure_path

    path = figure_path(output)
    refuse_unwritable(path)
    return path


MTIME_SLACK = 2.0  # seconds: coarse file-system clocks (FAT keeps even seconds) round mtimes down


def run_folder_note(run_dir: str | Path, since: float) -> str:
    """``run folder: runs/x (figures: curves.png, ...)``: where a training run went, and the
    figures it drew there: those written since ``since`` (the command's ``args.started``, taken
    as it began), not an earlier run's left in an ``--out`` it reused."""
    drawn = (f for f in Path(run_dir).glob("*.png") if f.stat().st_mtime >= since - MTIME_SLACK)
    figures = ", ".join(sorted(f.name for f in drawn))
    return f"run folder: {run_dir}" + (f" (figures: {figures})" if figures else "")


MAX_DRAWN = 24  # images in a predict figure; --json and --csv have every one


def sources_word(sources: Sequence[str]) -> str:
    """What a count of rows calls them: ``images``, ``frames`` (every one a video's), or
    ``images and frames``."""
    from cnnlab.data.video import video_of

    frames = sum(video_of(str(s)) is not None for s in sources)
    return "images" if not frames else "frames" if frames == len(sources) else "images and frames"


def drawn_note(rows: Sequence[dict[str, Any]]) -> str:
    """What a predict figure leaves out: it draws the first :data:`MAX_DRAWN` of the ``rows``
    (one an image or a video's frame, its ``"source"`` naming which)."""
    if len(rows) <= MAX_DRAWN:
        return ""
    what = sources_word([r["source"] for r in rows])
    return f" (the first {MAX_DRAWN} of {len(rows):,} {what})"


# rows of a predict command's table on the terminal (--csv and --json hold them all): a folder
# of thousands of images would otherwise scroll its table, and the line saying where the
# figure went, out of sight
SHOWN = 50


def first_shown(
    rows: Sequence[dict[str, Any]], csv_path: Path | None
) -> tuple[Sequence[dict[str, Any]], str]:
    """The first :data:`SHOWN` of ``rows`` (one an image or a video's frame, its ``"source"``
    naming which) for a terminal table, and the line to print under it naming where the rest
    are ("" when none were left out)."""
    if len(rows) <= SHOWN:
        return rows, ""
    where = f"all in {csv_path}" if csv_path else "--csv FILE writes all"
    what = sources_word([r["source"] for r in rows])
    return rows[:SHOWN], f"the first {SHOWN} of {len(rows):,} {what} shown; {where}"


def add_csv(parser: argparse.ArgumentParser, what: str) -> None:
    """``--csv FILE``: every prediction also as a spreadsheet."""
    parser.add_argument("--csv", help=f"also write {what} to this CSV file")


def runner_up_columns(top_k: Sequence[Sequence[Any]], what: str, score: str) -> dict[str, Any]:
    """A ranking's entries after the first (``[name, score]`` each, best first) as spreadsheet
    columns ``{what}_2, {score}_2, {what}_3...``: the runners-up of a row's ``top_k``."""
    columns: dict[str, Any] = {}
    for n, (name, value) in enumerate(top_k[1:], start=2):
        columns[f"{what}_{n}"], columns[f"{score}_{n}"] = name, value
    return columns


def compact_table(title: str) -> Table:
    """A table whose columns are two spaces apart, with no lines between them (rich's boxes
    spend three characters a column): names and numbers stay whole at 80 columns."""
    return Table(
        title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 0, 0, 1)
    )
