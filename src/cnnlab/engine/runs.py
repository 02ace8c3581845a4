"""The run folders under a root, summarised side by side (``cnnlab runs``).

Every training command writes a run folder (:mod:`cnnlab.engine.runlog`): ``config.json`` when it
starts, ``metrics.csv`` and ``last.pt`` after each epoch, ``results.json`` when it ends (faces
writes its folder, ``config.json`` too, at the end). :func:`find_runs` reads those files, and
only those: which task made the run, its model and data, how far it got (finished, stopped
early by ``--patience``, or unfinished, with the ``--resume`` that continues it), its headline
figure, and (:func:`mark_differences`) the settings that set it apart from its task's other runs.
A folder whose files cannot be read is listed as such; nothing here fails on one bad run.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cnnlab.words import natural_key

# (task, a key of its config.json no earlier task's has), in the order they are tried
TASK_KEYS = (
    ("faces", "unseen"),
    ("detect", "max_objects"),
    ("localize", "landmarks"),
    ("classify", "label_smoothing"),
    ("segment", "loss"),
)


@dataclass
class RunSummary:
    """One run folder, as the table shows it."""

    run: str
    task: str = "?"
    model: str = "?"
    data: str = "?"
    pretrained: str = ""  # the weights file it started from (--pretrained), if any
    freeze: str = ""  # what of it stayed fixed (--freeze backbone or stages:K), if anything
    progress: str = ""  # "3/10 epochs" (or "1838/2000 steps"): done of those planned
    state: str = ""  # finished, stopped early at N, unfinished, or what could not be read
    result: str = ""  # the headline figure
    seconds: float | None = None
    figures: dict[str, float | None] | None = None  # the headline figures, as numbers
    settings: dict[str, Any] = field(default_factory=dict)  # its config.json's settings
    differs: dict[str, Any] = field(default_factory=dict)  # those unlike its task's other runs


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _rows(path: Path) -> int:
    try:
        with path.open(newline="") as f:
            return sum(1 for _ in csv.DictReader(f))
    except (OSError, csv.Error, UnicodeDecodeError):
        return 0


def _headline(task: str, results: dict[str, Any]) -> dict[str, float | None]:
    """The figures a run of ``task`` is judged by, from its ``results.json``."""
    final = results.get("evaluated_on", "test")
    scored = results.get(final) if isinstance(results.get(final), dict) else {}
    if task == "classify":
        if results.get("test_accuracy") is not None:
            return {"test acc": results["test_accuracy"]}
        return {"val acc": results.get("best_val_accuracy")}
    if task == "localize":
        return {f"{final} acc": scored.get("accuracy"), "IoU": scored.get("mean_iou")}
    if task == "detect":
        return {f"{final} mAP@.5": results.get(f"{final}_map_50")}
    if task == "segment":
        return {f"{final} mIoU": scored.get("mean_iou")}
    return {  # on the identities never seen in training
        "verif": results.get("verification_accuracy"),
        "1-shot": results.get("identification_1_shot"),
    }


def summarise(folder: Path) -> RunSummary:
    """What :func:`find_runs` says of one run folder."""
    row = RunSummary(str(folder))
    config = _read_json(folder / "config.json")
    results = _read_json(folder / "results.json")
    if config is None and results is not None and "verification_accuracy" in results:
        config = {"unseen": "", **_faces_config(folder)}  # a faces run before its config.json
    if config is None:
        row.state = "no readable config.json"
        return row
    row.task = next((task for task, key in TASK_KEYS if key in config), "?")
    row.settings = _settings_of(row.task, config)
    row.model = str(config.get("model") or config.get("backbone") or "?")
    if row.task == "faces" and config.get("method"):  # runs of one backbone differ by method
        row.model += f" ({_face_method(config)})"
    row.data = str(config.get("data", "?"))
    row.pretrained = str(config.get("pretrained") or "")
    row.freeze = "" if config.get("freeze", "none") == "none" else str(config["freeze"])
    unit, planned = ("steps", config.get("steps")) if row.task == "faces" else ("epochs", None)
    if unit == "epochs":
        planned = config.get("epochs")
        done = _rows(folder / "metrics.csv")
        row.progress = f"{done}/{planned} epoch{'' if planned == 1 else 's'}"
    else:  # a faces run: the steps its encoders trained (--patience may end them sooner)
        trained = (results or {}).get("steps_trained")
        ok = isinstance(trained, list) and trained and all(isinstance(n, int) for n in trained)
        done = f"{max(trained)}/" if ok else ""  # an unfinished run wrote no results.json
        row.progress = f"{done}{planned} step{'' if planned == 1 else 's'}" if planned else ""
    if (folder / "results.json").exists() and results is None:
        row.state = "unreadable results.json"
    elif results is None:
        last = folder / "last.pt"
        row.state = f"unfinished: --resume {last}" if last.is_file() else "no results.json"
    else:
        stopped = results.get("stopped_early_at")
        row.state = f"stopped early at {stopped}" if stopped else "finished"
        row.figures = _headline(row.task, results)
        row.result = ", ".join(
            f"{name} {value:.3f}"
            for name, value in row.figures.items()
            if isinstance(value, int | float)
        )
        seconds = results.get("seconds")
        row.seconds = float(seconds) if isinstance(seconds, int | float) else None
    return row


def _face_method(config: dict[str, Any]) -> str:
    """``triplet, semi_hard``, ``cosface``, ``similarity, chi2``: how a faces run trained."""
    method = str(config["method"])
    detail = {"triplet": config.get("mining"), "similarity": config.get("similarity", "l1")}
    members = config.get("members", 1)
    return ", ".join(
        str(x)
        for x in (method, detail.get(method), f"{members} members" if members > 1 else None)
        if x
    )


def _faces_config(folder: Path) -> dict[str, Any]:
    """A faces run's settings, from the checkpoint it wrote (read safely, weights-only)."""
    from cnnlab.engine.checkpoint import load_checkpoint
    from cnnlab.errors import CnnlabError

    try:
        config = load_checkpoint(folder / "best.pt").get("config")
    except CnnlabError:
        return {}
    return config if isinstance(config, dict) else {}


def find_runs(root: str | Path = "runs") -> list[RunSummary]:
    """Every run folder under ``root`` (any depth: ``runs/<task>/<name>`` or an ``--out``
    folder), in natural path order (``run-2`` before ``run-10``): a folder holding
    ``config.json`` or ``results.json`` that a training command wrote (its settings name a
    task, or it holds a checkpoint or ``metrics.csv``; another program's ``config.json`` is not
    a run)."""
    root = Path(root)
    folders = sorted(
        {p.parent for name in ("config.json", "results.json") for p in root.rglob(name)},
        key=natural_key,  # run-2 before run-10
    )
    runs = [summarise(folder) for folder in folders]
    return [
        run
        for run in runs
        if run.task != "?"
        or any((Path(run.run) / name).is_file() for name in ("last.pt", "best.pt", "metrics.csv"))
    ]


# settings the table shows already (model, data, weights, frozen, epochs or steps done, and a
# faces run's method beside its model: _face_method), or that say where and on what it ran
# rather than how it trained
SHOWN_APART = frozenset(
    {"model", "backbone", "data", "pretrained", "freeze", "epochs", "steps", "out", "device"}
    | {"method", "mining", "similarity", "members"}
)


def _settings_of(task: str, config: dict[str, Any]) -> dict[str, Any]:
    """The settings of ``task``'s dataclass in a run's ``config``, each missing one (a run of an
    older cnnlab) at its default; ``{}`` for a run of no known task."""
    from cnnlab import config as settings

    cls = {
        "classify": settings.ClassifyTrainConfig,
        "localize": settings.LocalizeConfig,
        "detect": settings.DetectConfig,
        "segment": settings.SegmentConfig,
        "faces": settings.FacesConfig,
    }.get(task)
    if cls is None:
        return {}
    return {name: config.get(name, default) for name, default in asdict(cls()).items()}


def mark_differences(runs: list[RunSummary]) -> None:
    """Each run's ``differs``: its settings whose values are not the same in every listed run
    of its task (``lr``, ``seed``...: what sets it apart from the runs beside it), less those
    the table shows apart (:data:`SHOWN_APART`). A task with one run listed has none."""
    by_task: dict[str, list[RunSummary]] = {}
    for run in runs:
        if run.settings:
            by_task.setdefault(run.task, []).append(run)
    for group in by_task.values():
        names = [n for n in group[0].settings if n not in SHOWN_APART]
        varied = [n for n in names if len({json.dumps(r.settings[n]) for r in group}) > 1]
        for run in group:
            run.differs = {n: run.settings[n] for n in varied}


def as_dicts(runs: list[RunSummary]) -> list[dict[str, Any]]:
    """The runs as plain dicts, for ``--json``."""
    return [asdict(run) for run in runs]
