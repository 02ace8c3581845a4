"""`cnnlab runs`: every run folder under a root, read from the files the training commands
write, with how far it got and its headline figure; a bad folder is listed, never a crash."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import cnnlab.engine.localize as localize
from cnnlab.cli import main
from cnnlab.config import FacesConfig
from cnnlab.engine.checkpoint import load_checkpoint


def last_json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_runs_lists_finished_stopped_cut_and_broken_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    small = ["--images", "32", "--image-size", "32"]
    assert main(["classify", "train", "--epochs", "1"]) == 0  # runs/classify/lenet5-digits
    assert main(["localize", "train", *small, "--epochs", "2"]) == 0  # runs/localize/run
    assert main(["faces", "train", "--steps", "2", "--out", "mine/faces"]) == 0

    def ctrl_c_in_epoch_2(*a: object, **k: object) -> object:
        if Path("runs/localize/run-2/last.pt").exists():
            raise KeyboardInterrupt
        return real(*a, **k)

    real = localize.evaluate
    monkeypatch.setattr(localize, "evaluate", ctrl_c_in_epoch_2)
    assert main(["localize", "train", *small, "--epochs", "3"]) == 130  # runs/localize/run-2
    monkeypatch.setattr(localize, "evaluate", real)
    broken = tmp_path / "runs" / "segment" / "run"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text('{"model": "unet", "loss": "ce", "epochs": 3}')
    (broken / "results.json").write_text("{ not json")
    other = tmp_path / "runs" / "notes"  # another program's config.json is not a run
    other.mkdir()
    (other / "config.json").write_text('{"theme": "dark"}')
    capsys.readouterr()

    assert main(["runs", "--json"]) == 0
    rows = {Path(r["run"]).relative_to("runs").as_posix(): r for r in last_json(capsys)["runs"]}
    assert sorted(rows) == [
        "classify/lenet5-digits",
        "localize/run",
        "localize/run-2",
        "segment/run",
    ]
    classify = rows["classify/lenet5-digits"]
    results = json.loads(Path("runs/classify/lenet5-digits/results.json").read_text())
    assert (classify["task"], classify["model"], classify["data"]) == (
        "classify",
        "lenet5",
        "digits",
    )
    assert classify["progress"] == "1/1 epoch" and classify["state"] == "finished"
    assert classify["pretrained"] == ""  # started from its own random weights
    assert classify["figures"] == {"test acc": results["test_accuracy"]}
    done = rows["localize/run"]
    assert done["task"] == "localize" and done["progress"] == "2/2 epochs"
    assert set(done["figures"]) == {"test acc", "IoU"}
    cut = rows["localize/run-2"]
    assert cut["progress"] == "1/3 epochs"
    assert cut["state"] == f"unfinished: --resume {Path('runs/localize/run-2/last.pt')}"
    assert rows["segment/run"]["state"] == "unreadable results.json"
    shutil.copytree("runs/localize/run", "runs/localize/run-10")  # listed after run-2
    assert main(["runs", "--task", "localize", "--json"]) == 0
    listed = [Path(r["run"]).name for r in last_json(capsys)["runs"]]
    assert listed == ["run", "run-2", "run-10"]

    assert main(["runs", "--root", "mine", "--json"]) == 0  # an --out folder, faces' own files
    (faces,) = last_json(capsys)["runs"]
    assert main(["runs", "mine", "--json"]) == 0  # the folder named as `ls` would take it
    assert last_json(capsys)["runs"] == [faces]
    assert main(["runs", "mine", "--root", "runs"]) == 2
    assert "give the folder once: mine or --root runs" in capsys.readouterr().err
    assert (faces["task"], faces["model"], faces["progress"]) == (
        "faces",
        "lenet5 (triplet, semi_hard)",
        "2/2 steps",
    )
    assert set(faces["figures"]) == {"verif", "1-shot"}
    # its settings as config.json, as the other tasks' folders hold them: the checkpoint's
    settings = json.loads(Path("mine/faces/config.json").read_text())
    assert settings == load_checkpoint("mine/faces/best.pt")["config"]
    assert FacesConfig(**settings).steps == 2
    Path("mine/faces/config.json").unlink()  # a faces run from before: read from best.pt
    assert main(["runs", "mine", "--json"]) == 0
    assert last_json(capsys)["runs"] == [faces]
    monkeypatch.setenv("COLUMNS", "200")  # a row a line: no cell wraps
    assert main(["runs", "mine"]) == 0
    assert "on digits, 2/2 steps  " in capsys.readouterr().out  # steps, not "2/2 steps epochs"
    assert main(["runs", "--task", "localize"]) == 0
    out = capsys.readouterr().out
    assert "localize/run-2" in out and "classify/" not in out and "--resume" in out
    assert main(["runs", "--root", "nowhere"]) == 2
    assert "nowhere: no such folder" in capsys.readouterr().err
    assert main(["runs", "--root", "runs/classify/lenet5-digits/results.json"]) == 2
    assert "results.json: not a folder" in capsys.readouterr().err
    tuned = tmp_path / "runs" / "classify" / "tuned"  # a run started from a weights file
    tuned.mkdir()
    settings = {"model": "resnet18", "label_smoothing": 0.0, "data": "pets", "epochs": 4}
    settings["pretrained"] = "weights/resnet18-f37072fd.pth"
    (tuned / "config.json").write_text(json.dumps(settings))
    assert main(["runs", "--task", "classify"]) == 0
    assert "classify: resnet18 from resnet18-f37072fd.pth on pets, 0/4 epochs" in (
        capsys.readouterr().out
    )
    (tuned / "config.json").write_text(json.dumps(settings | {"freeze": "stages:3"}))
    assert main(["runs", "--task", "classify"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "resnet18 from resnet18-f37072fd.pth (stages:3 frozen) on pets" in out
    (tuned / "config.json").write_text(json.dumps(settings | {"pretrained": "runs/x/a/best.pt"}))
    assert main(["runs", "--task", "classify"]) == 0  # a run's best.pt: which run's
    assert f"resnet18 from {Path('a/best.pt')} on pets" in " ".join(capsys.readouterr().out.split())


def test_a_faces_run_names_how_it_trained() -> None:
    """Faces runs of one backbone differ by method: the table says which (and the mining, the
    similarity's form, the members)."""
    from cnnlab.engine.runs import _face_method

    assert _face_method({"method": "triplet", "mining": "batch_hard"}) == "triplet, batch_hard"
    assert _face_method({"method": "cosface", "mining": "semi_hard"}) == "cosface"
    assert _face_method({"method": "similarity", "similarity": "chi2"}) == "similarity, chi2"
    assert _face_method({"method": "similarity"}) == "similarity, l1"  # before --similarity
    assert _face_method({"method": "triplet", "mining": "semi_hard", "members": 5}) == (
        "triplet, semi_hard, 5 members"
    )


def test_runs_say_what_sets_each_apart_from_its_tasks_other_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Among the runs listed of one task, the settings whose values are not all the same, each
    run with its own value, as the option is typed; a setting an older run lacks counts at its
    default; a task with one run, and what the table shows apart (model, data, epochs, out),
    say none."""
    from dataclasses import asdict

    from cnnlab.config import ClassifyTrainConfig, DetectConfig, LocalizeConfig, SegmentConfig

    def run(name: str, settings: dict) -> None:
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "config.json").write_text(json.dumps(settings))
        (tmp_path / name / "results.json").write_text(json.dumps({"test_accuracy": 0.5}))

    base = asdict(ClassifyTrainConfig())
    run("a", base | {"lr": 0.004, "out": "a", "epochs": 3})
    run("b", base | {"seed": 7, "out": "b"})
    older = {k: v for k, v in base.items() if k != "class_weights"}  # before --class-weights
    run("c", older | {"model": "resnet18", "device": "cpu"})
    loc = asdict(LocalizeConfig())
    run("l1", loc | {"mirror": False, "landmarks": True})
    run("l2", loc)
    run("d1", asdict(DetectConfig()) | {"augment": "color"})
    run("d2", asdict(DetectConfig()))
    run("s", asdict(SegmentConfig()) | {"lr": 0.1})
    run("f1", asdict(FacesConfig()) | {"method": "cosface"})  # said beside the model already
    run("f2", asdict(FacesConfig()))
    assert main(["runs", str(tmp_path), "--json"]) == 0
    differs = {Path(r["run"]).name: r["differs"] for r in last_json(capsys)["runs"]}
    default = ClassifyTrainConfig()
    assert differs["a"] == {"lr": 0.004, "seed": default.seed}
    assert differs["b"] == {"lr": default.lr, "seed": 7}
    assert differs["c"] == {"lr": default.lr, "seed": default.seed}
    assert differs["l1"] == {"mirror": False, "landmarks": True} and differs["s"] == {}
    assert differs["f1"] == differs["f2"] == {}
    monkeypatch.setenv("COLUMNS", "200")  # a row a line
    assert main(["runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"on digits, 0/3 epochs; --lr 0.004, --seed {default.seed} " in out
    assert "--landmarks on, --mirror off" in out and "--augment color" in out
    assert "--augment ''" in out  # d2: empty, said so
    # many settings apart: the first six in the table, all of them in --json
    many = {"lr": 0.01, "batch_size": 16, "weight_decay": 0.1, "label_smoothing": 0.1}
    many |= {"seed": 3, "split_seed": 4, "patience": 2, "image_size": 16}
    run("more/x", base | many)
    run("more/y", base)
    assert main(["runs", str(tmp_path / "more")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "and 2 more (--json)" in out and "--image-size 16" not in out
    assert main(["runs", str(tmp_path / "more"), "--json"]) == 0
    assert last_json(capsys)["runs"][0]["differs"] == many
