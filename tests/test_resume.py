"""Run control: ``--resume`` for localize, detect and segment train (classify's, killed by
SIGKILL, is in test_training_engine): Ctrl-C after an epoch, resume, and end with the weights,
best epoch and metrics of a run never stopped; and ``--patience`` (early stopping), which a
resumed run keeps to."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import cnnlab.engine.detect as detect
import cnnlab.engine.localize as localize
import cnnlab.engine.segment as segment
from cnnlab.cli import main
from cnnlab.engine.checkpoint import load_checkpoint
from cnnlab.engine.performance import FP32

# each with an augmentation that draws from the random generators, which must be restored too
CASES = {
    "localize": (localize, "evaluate", ["--images", "64", "--image-size", "32"]),
    "detect": (detect, "evaluate_detector", ["--images", "48", "--augment", "color,rotate"]),
    "segment": (segment, "evaluate_segmenter", ["--images", "32", "--augment", "flip,rotate"]),
}


def rows(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("task", list(CASES))
def test_ctrl_c_then_resume_ends_as_an_unbroken_run(
    task: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    module, evaluate, extra = CASES[task]
    args = [task, "train", "--epochs", "3", "--batch-size", "8", "--image-size", "32", *extra]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main([*args, "--out", str(whole)]) == 0
    real, calls = getattr(module, evaluate), []

    def interrupted_in_epoch_2(*a: object, **k: object) -> object:
        calls.append(1)
        if len(calls) == 2:  # epoch 2 trained, not yet saved
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(module, evaluate, interrupted_in_epoch_2)
    assert main([*args, "--out", str(cut)]) == 130
    last = cut / "last.pt"
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"cnnlab: interrupted; `cnnlab {task} train --resume {last}` continues from the last "
        "finished epoch"
    )
    assert load_checkpoint(last)["epoch"] == 1
    monkeypatch.setattr(module, evaluate, real)

    assert main([task, "train", "--resume", str(last)]) == 0
    said = " ".join(capsys.readouterr().err.split())  # rich wraps lines at 80 columns
    assert "| cpu, " in said and said.split(" | resumed at epoch ")[1].startswith("2 ")
    for name in ("last.pt", "best.pt"):
        a, b = load_checkpoint(whole / name), load_checkpoint(cut / name)
        assert a["epoch"] == b["epoch"]
        assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    unbroken, resumed = rows(whole), rows(cut)
    assert [r["epoch"] for r in resumed] == ["1", "2", "3"]
    assert [r["train_loss"] for r in resumed] == [r["train_loss"] for r in unbroken]
    seconds = [float(r["seconds"]) for r in resumed]  # the clock goes on from epoch 1's
    assert seconds == sorted(seconds)


def test_resume_refuses_other_settings_and_other_checkpoints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = ["localize", "train", "--images", "32", "--image-size", "32", "--epochs", "1"]
    assert main([*args, "--out", str(out)]) == 0
    capsys.readouterr()
    last, best = out / "last.pt", out / "best.pt"

    assert main(["localize", "train", "--resume", str(last), "--epochs", "5"]) == 2
    err = " ".join(capsys.readouterr().err.split())  # a new run from the backbone it trained
    assert f"--resume continues {last} with its own settings; drop --epochs (its" in err
    assert (
        f"to train longer, start a new run, e.g. from its backbone's weights: --pretrained {best})"
        in err
    )
    assert main(["localize", "train", "--resume", str(best)]) == 2
    assert f"{best}: not a resumable checkpoint (use a run's last.pt)" in capsys.readouterr().err
    assert main(["detect", "train", "--resume", str(last)]) == 2
    err = capsys.readouterr().err
    assert f"{last}: a localization checkpoint (model 'localizer'), not a detection one" in err
    # a state that does not fit the model its settings rebuild (an older cnnlab's last.pt)
    from cnnlab.engine.checkpoint import save_checkpoint

    edited = load_checkpoint(last)
    edited["state_dict"].pop(sorted(edited["state_dict"])[0])
    edited["config"]["epochs"] = 2
    save_checkpoint(tmp_path / "old" / "last.pt", edited)
    assert main(["classify", "train", "--resume", str(tmp_path / "old" / "last.pt")]) == 2
    assert main(["localize", "train", "--resume", str(tmp_path / "old" / "last.pt")]) == 2
    err = capsys.readouterr().err
    assert "not a classification one" in err
    assert "last.pt: its saved state does not fit the run its settings describe (Missing key" in err
    # a finished run resumed has nothing left to train: it scores its best.pt again
    assert main(["localize", "train", "--resume", str(last)]) == 0
    assert len(rows(out)) == 1
    said = " ".join(capsys.readouterr().err.split())  # was "resumed at epoch 2" (of 1)
    assert "| resumed a finished run: nothing left to train, scored again" in said
    assert "resumed at epoch" not in said


def test_ctrl_c_in_the_first_epoch_offers_no_earlier_runs_last_pt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same --out again, stopped before its first epoch ended: the last.pt there is the
    earlier run's, and resuming it would continue that run, not this one."""
    out = tmp_path / "run"
    args = ["localize", "train", "--images", "32", "--image-size", "32", "--out", str(out)]
    assert main([*args, "--epochs", "1"]) == 0

    def ctrl_c(*a: object, **k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(localize, "evaluate", ctrl_c)
    capsys.readouterr()
    assert main([*args, "--epochs", "2"]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "cnnlab: interrupted"


def test_the_resumed_settings_are_the_runs_own_but_the_device() -> None:
    from cnnlab.engine.detect import DetectConfig
    from cnnlab.engine.resume import config_of

    saved = {"config": {"epochs": 7, "device": "cuda", "a_setting_of_a_later_version": 1}}
    # a run saved before --precision existed trained in fp32, whatever today's default is
    older = DetectConfig(epochs=7, device="cuda", precision="fp32")
    assert config_of(saved, DetectConfig) == older
    assert config_of(saved, DetectConfig, "cpu") == replace(older, device="cpu")
    saved["config"]["precision"] = "auto"
    assert config_of(saved, DetectConfig) == DetectConfig(epochs=7, device="cuda")


def test_patience_stops_training_and_a_stopped_run_stays_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--patience 2 with validation accuracies 0.5, 0.6, 0.55, 0.58 (then 0.9, never reached):
    epoch 2 stays the best for two epochs, so the run stops after epoch 4 and scores epoch 2's
    best.pt; resumed, it trains nothing more."""
    real = localize.evaluate
    script = iter([0.5, 0.6, 0.55, 0.58, 0.9])

    def scripted(model, data, split, device, settings=FP32):  # type: ignore[no-untyped-def]
        metrics = real(model, data, split, device, settings)
        return metrics | {"accuracy": next(script), "mean_iou": 0.0} if split == "val" else metrics

    monkeypatch.setattr(localize, "evaluate", scripted)
    out = tmp_path / "run"
    args = ["localize", "train", "--images", "32", "--image-size", "32", "--epochs", "6"]
    assert main([*args, "--patience", "2", "--out", str(out)]) == 0
    assert "stopped at epoch 4: no better validation accuracy + mean IoU since epoch 2" in (
        capsys.readouterr().err
    )
    assert json.loads((out / "results.json").read_text())["stopped_early_at"] == 4
    assert [r["epoch"] for r in rows(out)] == ["1", "2", "3", "4"]
    assert load_checkpoint(out / "best.pt")["epoch"] == 2
    assert main(["localize", "train", "--resume", str(out / "last.pt")]) == 0
    assert len(rows(out)) == 4 and load_checkpoint(out / "last.pt")["epoch"] == 4
    assert "resumed a finished run: nothing left" in " ".join(capsys.readouterr().err.split())
    assert main([*args, "--patience", "-1"]) == 2


def test_classify_patience_and_resume_mid_run_stop_where_an_unbroken_run_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validation accuracies 0.5, 0.7, 0.6, 0.65, 0.69 with --patience 3: stopped after epoch 5
    (epoch 2 the best). Cut after epoch 3 and resumed, the run still stops after epoch 5: the
    best epoch travels in last.pt."""
    import dataclasses

    import cnnlab.engine.classify as classify

    real = classify.evaluate

    def scripted(accuracies: list[float]):  # type: ignore[no-untyped-def]
        it = iter(accuracies)

        def evaluate(model, inputs, split, batch_size=256):  # type: ignore[no-untyped-def]
            result = real(model, inputs, split, batch_size)
            if split != "val":
                return result
            accuracy = next(it, None)
            if accuracy is None:  # the script is over: Ctrl-C
                raise KeyboardInterrupt
            return dataclasses.replace(result, accuracy=accuracy)

        return evaluate

    args = ["classify", "train", "--epochs", "8", "--patience", "3", "--json"]
    monkeypatch.setattr(classify, "evaluate", scripted([0.5, 0.7, 0.6, 0.65, 0.69, 0.9]))
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    result = json.loads((tmp_path / "whole" / "results.json").read_text())
    assert (result["stopped_early_at"], result["best_epoch"]) == (5, 2)
    assert len(rows(tmp_path / "whole")) == 5

    cut = tmp_path / "cut"
    monkeypatch.setattr(classify, "evaluate", scripted([0.5, 0.7, 0.6]))  # Ctrl-C in epoch 4
    assert main([*args, "--out", str(cut)]) == 130
    assert load_checkpoint(cut / "last.pt")["epoch"] == 3
    monkeypatch.setattr(classify, "evaluate", scripted([0.65, 0.69, 0.9]))
    assert main(["classify", "train", "--resume", str(cut / "last.pt"), "--json"]) == 0
    assert json.loads((cut / "results.json").read_text())["stopped_early_at"] == 5
    assert len(rows(cut)) == 5
