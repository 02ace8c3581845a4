"""``--config RUN``: a train command starts from another run's settings (its folder, its
config.json or its checkpoint), the options typed changing them; bad files are one line."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from cnnlab.cli import build_parser, main
from cnnlab.config import (
    ClassifyTrainConfig,
    DetectConfig,
    FacesConfig,
    LocalizeConfig,
    SegmentConfig,
)

TRAIN = {
    "classify": ClassifyTrainConfig,
    "localize": LocalizeConfig,
    "detect": DetectConfig,
    "segment": SegmentConfig,
    "faces": FacesConfig,
}


def settings(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())


def error_line(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return " ".join(err.split())


def test_a_run_started_from_another_keeps_its_settings_but_the_typed_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The new run's config.json is the old one's but for the options typed (the seed typed at
    its default value too) and its own folder; the folder, its config.json and its best.pt
    give the same settings."""
    first = tmp_path / "first"
    argv = ["classify", "train", "--epochs", "1", "--seed", "5", "--lr", "0.004"]
    assert main([*argv, "--batch-size", "32", "--augment", "crop", "--out", str(first)]) == 0
    before = settings(first)
    for k, source in enumerate((first, first / "config.json", first / "best.pt")):
        again = tmp_path / f"again{k}"
        typed = ["--seed", "0", "--weight-decay", "0.001"]  # 0: the default seed, typed
        assert (
            main(["classify", "train", "--config", str(source), *typed, "--out", str(again)]) == 0
        )
        after = settings(again)
        changed = {key for key in before if before[key] != after[key]}
        assert changed == {"seed", "weight_decay", "out"}, (source, changed)
        assert (after["seed"], after["weight_decay"], after["lr"]) == (0, 0.001, 0.004)
        assert (after["batch_size"], after["augment"]) == (32, "crop")
    capsys.readouterr()
    # never its folder: without --out, a new run folder of its own
    assert main(["classify", "train", "--config", str(first), "--json"]) == 0
    new = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run_dir"]
    assert Path(new).resolve() != first.resolve()


def test_a_faces_run_from_before_its_config_json_starts_one_from_its_checkpoint(
    tmp_path: Path,
) -> None:
    first, again = tmp_path / "faces", tmp_path / "again"
    argv = ["faces", "train", "--steps", "2", "--embedding-dim", "16", "--out", str(first)]
    assert main(argv) == 0
    before = settings(first)
    (first / "config.json").unlink()  # as faces runs were written before they kept one
    assert (
        main(["faces", "train", "--config", str(first), "--steps", "3", "--out", str(again)]) == 0
    )
    after = settings(again)
    assert {k for k in before if before[k] != after[k]} == {"steps", "out"}
    assert after["embedding_dim"] == 16


@pytest.mark.parametrize("task", sorted(TRAIN))
def test_every_spelling_of_a_setting_counts_as_typed(task: str) -> None:
    """Each spelling of each setting's option (``--no-mirror``, ``--root``,
    ``--identities-per-batch``) is found typed, by the parser of the command that ran, so the
    run's value never overrides what was typed."""
    from dataclasses import fields

    from cnnlab.cli.common import typed_dests

    parser = build_parser()
    names = {f.name for f in fields(TRAIN[task])}
    train = parser.parse_args([task, "train"])
    leaf = parser._subparsers._group_actions[0].choices[task]
    leaf = leaf._subparsers._group_actions[0].choices["train"]
    actions = [a for a in leaf._actions if a.dest in names]
    assert {a.dest for a in actions} == names  # every setting has its option
    for action in actions:
        for option in action.option_strings:
            train.typed = {option, "--json"}
            assert typed_dests(parser, train) & names == {action.dest}, option


def test_bad_run_settings_are_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = {"model": "lenet5", "epochs": 2, "label_smoothing": 0.0}
    cases = {
        "other_task.json": (
            json.dumps({"max_objects": 3, "epochs": 2}),
            "the settings of a detect run; classify train starts from a classify run's",
        ),
        "typo.json": (
            json.dumps(good | {"epoch": 3}),
            "'epoch' is not a setting of classify train; did you mean epochs?",
        ),
        "range.json": (json.dumps(good | {"epochs": 0}), "--epochs must be >= 1, got 0"),
        "kind.json": (json.dumps(good | {"lr": "fast"}), "--lr must be a number, got 'fast'"),
        "broken.json": ('{"epochs": 2,', "not readable JSON (line 1"),
        "list.json": ("[1, 2]", "settings must be a JSON object of names and values"),
    }
    for name, (text, said) in cases.items():
        (tmp_path / name).write_text(text)
        err = error_line(capsys, "classify", "train", "--config", str(tmp_path / name))
        assert err == f"cnnlab: error: {tmp_path / name}: {said}" or (
            err.startswith(f"cnnlab: error: {tmp_path / name}: ") and said in err
        ), (name, err)
    (tmp_path / "empty").mkdir()
    err = error_line(capsys, "classify", "train", "--config", str(tmp_path / "empty"))
    assert err.endswith("empty: a folder with no config.json or best.pt (--config)")
    err = error_line(capsys, "detect", "train", "--config", str(tmp_path / "nothere"))
    assert err.endswith("nothere: no such file (--config)")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps(good))
    argv = ["--config", str(tmp_path / "run"), "--resume", str(tmp_path / "run" / "last.pt")]
    err = error_line(capsys, "classify", "train", *argv)
    assert err.endswith(f"with its own settings; drop --config {tmp_path / 'run'}")


@pytest.mark.parametrize("task", ["localize", "detect", "segment"])
def test_each_scene_tasks_own_config_json_is_read_back(task: str, tmp_path: Path) -> None:
    """What a run of each task writes beside its settings (resolved anchors, the grid, the
    precision chosen) is passed over, never refused: its settings come back whole."""
    from cnnlab.cli.run_settings import settings_from_run

    run = tmp_path / task
    argv = [task, "train", "--epochs", "1", "--images", "16", "--image-size", "32"]
    assert main([*argv, "--out", str(run)]) == 0
    written = settings(run)
    back = settings_from_run(str(run), TRAIN[task], task)
    fields_taken = {f.name for f in dataclasses.fields(TRAIN[task])} - {"out", "device"}
    assert back == {k: written[k] for k in fields_taken}
    assert set(written) - fields_taken - {"out", "device"}  # more in the file than settings
