"""``cnnlab runs``: the run folders under ``runs/`` (or ``--root``) side by side: task, model,
data, how far each got, the settings that set it apart from its task's other runs, and its
headline figure (:mod:`cnnlab.engine.runs`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from cnnlab.cli.shown import compact_table
from cnnlab.errors import CnnlabError

TASKS = ("classify", "localize", "detect", "segment", "faces")
SHOWN_SETTINGS = 6  # of a run's differing settings, in the table (all of them with --json)


def cmd_runs(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.runs import as_dicts, find_runs, mark_differences

    if args.folder is not None and args.root not in (None, args.folder):
        raise CnnlabError(f"give the folder once: {args.folder} or --root {args.root}")
    root = Path(args.folder or args.root or "runs")
    if not root.is_dir():
        what = "not a folder" if root.exists() else "no such folder"
        raise CnnlabError(f"{root}: {what} (training commands write their runs there)")
    runs = [r for r in find_runs(root) if args.task in (None, r.task)]
    mark_differences(runs)  # among the runs listed
    if not args.json:
        table = compact_table("runs" + (f" of {args.task}" if args.task else ""))
        table.add_column(f"run (in {root})", overflow="fold")
        table.add_column("trained", overflow="fold")
        table.add_column("outcome", overflow="fold")
        for r in runs:
            start = f" from {_weights_name(r.pretrained)}" if r.pretrained else ""
            start += f" ({r.freeze} frozen)" if r.freeze else ""
            trained = f"{r.task}: {r.model}{start} on {r.data}"
            if r.progress:
                trained += f", {r.progress}"
            if r.differs:  # what sets it apart from its task's other runs, as typed
                said = [_as_option(k, v) for k, v in r.differs.items()]
                if len(said) > SHOWN_SETTINGS + 1:  # "and 1 more" is no shorter than the one
                    said = [
                        *said[:SHOWN_SETTINGS],
                        f"and {len(said) - SHOWN_SETTINGS} more (--json)",
                    ]
                trained += "; " + ", ".join(said)
            outcome = "; ".join(part for part in (r.state, r.result) if part)
            if r.seconds is not None:
                outcome += f" ({r.seconds:.0f} s)"
            table.add_row(_within(Path(r.run), root), trained, outcome)
        console.print(table if runs else f"no run folders under {root}")
    return {"root": str(root), "runs": as_dicts(runs)}


def _as_option(name: str, value: Any) -> str:
    """``--lr 0.004``; a switch ``--mirror on`` / ``off``; an empty value ``--augment ''``."""
    if isinstance(value, bool):
        value = "on" if value else "off"
    return f"--{name.replace('_', '-')} {value if value != '' else repr('')}"


def _weights_name(path: str) -> str:
    """A weights file by its name (``resnet18-f37072fd.pth``), or, for a run's ``best.pt`` or
    ``last.pt``, with its run folder's (``detect/run-2/best.pt`` says more than ``best.pt``)."""
    p = Path(path)
    return str(Path(p.parent.name, p.name)) if p.name in ("best.pt", "last.pt") else p.name


def _within(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "runs", parents=[common], help="the run folders side by side: how far, how good"
    )
    p.add_argument(
        "folder", nargs="?", help="where to look, at any depth (default: runs); or --root"
    )
    p.add_argument("--root", help="the same as the folder")
    p.add_argument("--task", choices=TASKS, help="only the runs of this task")
    p.set_defaults(handler=cmd_runs)
