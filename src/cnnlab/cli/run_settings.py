"""``--config``: a train command started from another run's settings, changed by the options
typed beside it (``cnnlab classify train --config runs/classify/lenet5-digits --epochs 60``).

The settings come from a run folder's ``config.json`` (every training command writes one), that
file itself, or a checkpoint (``best.pt``: the settings it was trained with, read weights-only).
Only the fields of the command's settings dataclass are taken, and never ``out`` or ``device``:
a new run goes to a new folder, on this machine's device. Keys a run writes beside its settings
(``anchors_resolved``, ``settings``, ...) are passed over; any other key, a value out of range,
or another task's settings is a one-line error naming the file.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.words import nearest

# what training writes into config.json beside the settings it was given (resolved values,
# the precision chosen, the grid...): not settings, so passed over
WRITTEN_BESIDE = frozenset(
    {
        "anchor_mean_iou",
        "anchors_resolved",
        "augment_resolved",
        "device_resolved",
        "frozen_parameters",
        "grid",
        "model_kwargs",
        "settings",
        "world_size",
    }
)
NEVER_TAKEN = ("out", "device")  # a new run folder; this machine's device


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="RUN",
        help="start from a run's settings: its folder, its config.json or a checkpoint; the "
        "options typed here change them (its --out and --device are never taken)",
    )


def typed_fields(args: argparse.Namespace, names: set[str]) -> set[str]:
    """The settings of ``names`` whose option was typed on the command line, in any of its
    spellings (``args.typed_settings``, as :func:`cnnlab.cli.main` records them)."""
    return set(getattr(args, "typed_settings", ())) & names


def settings_from_run(path: str, cls: type, task: str) -> dict[str, Any]:
    """The fields of ``cls`` (a settings dataclass of ``task``) that the run at ``path`` was
    trained with, checked by building ``cls`` from them (its messages name the file)."""
    source = Path(path)
    if source.is_dir():
        source = source / "config.json"
        if not source.is_file() and (Path(path) / "best.pt").is_file():
            source = Path(path) / "best.pt"  # a faces run from before it wrote config.json
        elif not source.is_file():
            raise CnnlabError(f"{path}: a folder with no config.json or best.pt (--config)")
    if not source.exists():
        raise CnnlabError(f"{source}: no such file (--config)")
    values = _read_settings(source)
    names = {f.name for f in fields(cls)}
    _refuse_other_task(values, names, task, source)
    unknown = [k for k in values if k not in names and k not in WRITTEN_BESIDE]
    if unknown:
        raise CnnlabError(
            f"{source}: {unknown[0]!r} is not a setting of {task} train"
            + nearest(unknown[0], sorted(names))
        )
    taken = {k: v for k, v in values.items() if k in names and k not in NEVER_TAKEN}
    try:
        cls(**taken)
    except CnnlabError as exc:
        raise CnnlabError(f"{source}: {exc}") from None
    return taken


def _read_settings(source: Path) -> dict[str, Any]:
    """A JSON object of settings, or a checkpoint's ``config``."""
    if source.suffix in (".pt", ".pth"):
        from cnnlab.engine.checkpoint import load_checkpoint

        values = load_checkpoint(source).get("config")
        if not isinstance(values, dict):
            raise CnnlabError(f"{source}: a checkpoint that records no settings (--config)")
        return values
    try:
        values = json.loads(source.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CnnlabError(f"{source}: not a text file of settings (--config)") from None
    except json.JSONDecodeError as exc:
        raise CnnlabError(
            f"{source}: not readable JSON (line {exc.lineno}: {exc.msg}) (--config)"
        ) from None
    if not isinstance(values, dict):
        raise CnnlabError(f"{source}: settings must be a JSON object of names and values")
    return values


def _refuse_other_task(values: dict[str, Any], names: set[str], task: str, source: Path) -> None:
    """Another task's run (a detect run's settings given to classify train): said so, rather
    than as the first setting this task lacks."""
    from cnnlab.engine.runs import TASK_KEYS

    made_by = next((t for t, key in TASK_KEYS if key in values), None)
    if made_by and made_by != task:
        raise CnnlabError(
            f"{source}: the settings of a {made_by} run; {task} train starts from a {task} run's"
        )
