"""Training on the real digits: a short run writes a complete run folder; eval/predict use it;
bad checkpoints and images fail cleanly; the model can overfit one batch."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import cnnlab
from cnnlab.cli import main
from cnnlab.config import ClassifyTrainConfig
from cnnlab.data.classification import load_digits, normalize
from cnnlab.engine.checkpoint import load_checkpoint, save_checkpoint
from cnnlab.engine.classify import train_classifier
from cnnlab.engine.performance import bf16_supported
from cnnlab.errors import CnnlabError


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "digits"
    assert main(["classify", "train", "--epochs", "3", "--out", str(out), "--json"]) == 0
    return out


def test_worst_mistakes_are_the_wrong_images_by_loss() -> None:
    from cnnlab.engine.classify_scores import EvalResult

    labels, predicted = torch.tensor([0, 1, 1, 0, 1]), torch.tensor([0, 0, 1, 1, 0])
    losses = torch.tensor([3.0, 0.9, 0.2, 2.0, 1.5])  # image 0 is right, though its loss is high
    confusion = torch.tensor([[1, 1], [2, 1]])
    ev = EvalResult(1.5, 0.4, confusion, 5, labels, predicted, torch.full((5,), 0.6), losses)
    assert ev.worst_mistakes() == [3, 4, 1] and ev.worst_mistakes(2) == [3, 4]
    assert EvalResult(None, None, confusion, 0).worst_mistakes() == []


def test_splits_are_stratified_and_fixed() -> None:
    a, b = load_digits(split_seed=0).splits, load_digits(split_seed=0).splits
    assert [len(a[k]) for k in ("train", "val", "test")] == [1257, 270, 270]
    assert torch.equal(a["test"].labels, b["test"].labels)
    counts = torch.bincount(a["test"].labels, minlength=10)
    assert counts.min() >= 26 and counts.max() <= 28
    assert a["train"].images.shape[1:] == (1, 32, 32)
    assert a["train"].images.dtype == torch.uint8


def test_run_folder(run_dir: Path) -> None:
    for name in (
        "config.json",
        "last.pt",
        "best.pt",
        "metrics.csv",
        "curves.png",
        "confusion_matrix.png",
        "results.json",
    ):
        assert (run_dir / name).is_file(), name
    lines = (run_dir / "metrics.csv").read_text().strip().splitlines()
    assert lines[0].startswith("epoch,train_loss") and len(lines) == 4
    results = json.loads((run_dir / "results.json").read_text())
    assert results["test_accuracy"] > 0.8  # 3 epochs already learn most digits
    assert not list(run_dir.glob("*.tmp"))


def test_eval_and_predict(
    run_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = str(run_dir / "best.pt")
    assert main(["classify", "eval", "--checkpoint", ckpt, "--json", "--out", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    saved = json.loads((run_dir / "results.json").read_text())
    assert result["accuracy"] == pytest.approx(saved["test_accuracy"])
    assert (tmp_path / "confusion_test.png").is_file()
    # the worst mistakes, drawn: the run's own test split gives the figure training drew
    assert result["accuracy"] < 1 and result["mistakes_figure"] == str(
        tmp_path / "mistakes_test.png"
    )
    assert (run_dir / "mistakes.png").is_file() and (tmp_path / "mistakes_test.png").is_file()
    from cnnlab.engine.classify_eval import evaluate_checkpoint

    ev, _, _, images = evaluate_checkpoint(ckpt)  # per image: labels, arg-max, p, loss
    k = len(ev.confusion)
    assert images.dtype == torch.uint8 and len(images) == ev.count == len(ev.losses)
    assert torch.equal(
        torch.bincount(ev.labels * k + ev.predicted, minlength=k * k), ev.confusion.flatten()
    )
    assert float(ev.losses.mean()) == pytest.approx(ev.loss, rel=1e-5)
    assert not ev.losses.requires_grad and not ev.confidence.requires_grad  # scored, no graph
    worst = ev.worst_mistakes()
    assert 0 < len(worst) <= 16 and all(ev.predicted[i] != ev.labels[i] for i in worst)
    assert ev.losses[worst].tolist() == sorted(ev.losses[worst].tolist(), reverse=True)

    assert main(["classify", "predict", "--checkpoint", ckpt, "--limit", "5", "--json"]) == 0
    preds = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["predictions"]
    assert len(preds) == 5 and all(0 <= p["probability"] <= 1 for p in preds)
    import cnnlab.engine.predict

    monkeypatch.setattr(cnnlab.engine.predict, "CHUNK", 2)  # scored two at a time: same answers
    assert main(["classify", "predict", "--checkpoint", ckpt, "--limit", "5", "--json"]) == 0
    chunked = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["predictions"]
    assert [p["prediction"] for p in chunked] == [p["prediction"] for p in preds]
    assert [p["probability"] for p in chunked] == pytest.approx([p["probability"] for p in preds])
    # without --json, the table shows the --top-k classes: the prediction and the runners-up
    assert main(["classify", "predict", "--checkpoint", ckpt, "--limit", "2", "--top-k", "3"]) == 0
    table = capsys.readouterr().out
    assert "next 2" in table
    name, prob = preds[0]["top_k"][2]
    assert f"{name} {prob:.3f}" in table

    # -o draws the predictions: green where right, red with the label where wrong
    import cnnlab.viz.plots as plots

    drawn: dict[str, list[str]] = {}
    real = plots.plot_captioned

    def captioned(images, captions, path, title="", colors=None, cols=4):
        drawn.update(captions=list(captions), colors=list(colors), shape=list(images.shape))
        return real(images, captions, path, title, colors, cols)

    monkeypatch.setattr(plots, "plot_captioned", captioned)
    figure = tmp_path / "seen.png"
    argv = ["classify", "predict", "--checkpoint", ckpt, "--limit", "30", "-o", str(figure)]
    assert main([*argv, "--json"]) == 0
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert said["figure"] == str(figure) and figure.stat().st_size > 10_000
    rows = said["predictions"][:24]  # the first 24 of 30
    assert drawn["shape"] == [24, 1, 32, 32]
    for r, caption, color in zip(rows, drawn["captions"], drawn["colors"], strict=True):
        right = r["prediction"] == r["label"]
        assert caption.startswith(f"{r['prediction']} {r['probability']:.2f}")
        assert color == ("forestgreen" if right else "firebrick")
        assert right or caption.endswith(f"(is {r['label']})")
    assert main([*argv[:-1], str(tmp_path / "seen.xyz")]) == 2  # before any image is read
    assert "cannot write .xyz figures" in capsys.readouterr().err

    # A user's image: a test digit written out as a PNG, dark ink on white paper.
    split = load_digits().splits["test"]
    png = tmp_path / "digit.png"
    Image.fromarray((255 - split.images[0, 0]).numpy()).save(png)
    assert main(["classify", "predict", "--checkpoint", ckpt, str(png), "--json"]) == 0
    pred = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["predictions"][0]
    assert pred["source"] == str(png) and pred["prediction"] in [str(d) for d in range(10)]
    # a long path in the (80-column) table wraps; it was cut at the end, file name and all
    deep = tmp_path / "a_folder_with_a_long_name" / "and_another_one_inside_it"
    deep.mkdir(parents=True)
    (deep / "the_digit_i_wrote.png").write_bytes(png.read_bytes())
    assert main(["classify", "predict", "--checkpoint", ckpt, str(deep)]) == 0
    assert "the_digit_i_wrote.png" in "".join(
        line.strip("│ ").split(" │")[0] for line in capsys.readouterr().out.splitlines()
    )
    # a folder stands for the images under it, in sorted order; one without any is an error
    folder = tmp_path / "photos"
    (folder / "more").mkdir(parents=True)
    for name in ("b.png", "more/a.png"):
        Image.fromarray((255 - split.images[1, 0]).numpy()).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    assert main(["classify", "predict", "--checkpoint", ckpt, str(folder), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["predictions"]
    assert [r["source"] for r in rows] == [str(folder / "b.png"), str(folder / "more" / "a.png")]
    assert not any("label" in r for r in rows)  # neither "photos" nor "more" is a class
    # files under folders named after classes (root/<class>/*.png) carry those labels
    for i in range(6):
        label = int(split.labels[i])
        (tmp_path / "sorted" / str(label)).mkdir(parents=True, exist_ok=True)
        png = tmp_path / "sorted" / str(label) / f"{i}.png"
        Image.fromarray((255 - split.images[i, 0]).numpy()).save(png)
    assert (
        main(["classify", "predict", "--checkpoint", ckpt, str(tmp_path / "sorted"), "--json"]) == 0
    )
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["label"] for r in out["predictions"]] == [
        Path(r["source"]).parent.name for r in out["predictions"]
    ]
    right = sum(r["prediction"] == r["label"] for r in out["predictions"])
    assert out["labelled"] == 6 and out["accuracy"] == right / 6
    # --as-dataset: each image copied into its predicted class's folder, as training reads them
    draft = tmp_path / "draft"
    argv = ["classify", "predict", "--checkpoint", ckpt, str(tmp_path / "sorted"), "--json"]
    assert main([*argv, "--as-dataset", str(draft)]) == 0
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    names = cnnlab.Classifier.load(ckpt).class_names
    assert sorted(p.name for p in draft.iterdir()) == sorted(names)  # an empty one too
    for r in said["predictions"]:
        copy = draft / r["prediction"] / Path(r["source"]).name
        assert copy.read_bytes() == Path(r["source"]).read_bytes()
    counts = {n: sum(r["prediction"] == n for r in said["predictions"]) for n in names}
    assert said["dataset"] == {"folder": str(draft), "images": 6, "per_class": counts}
    assert main([*argv, "--as-dataset", str(draft)]) == 2  # nothing overwritten
    assert f"{draft}: not empty; give a new or empty folder" in capsys.readouterr().err
    assert main(["classify", "predict", "--checkpoint", ckpt, "--as-dataset", str(draft)]) == 2
    assert "--as-dataset writes the images given" in capsys.readouterr().err
    assert main(["classify", "predict", "--checkpoint", ckpt, str(folder / "more")]) == 0
    capsys.readouterr()
    (tmp_path / "empty").mkdir()
    assert main(["classify", "predict", "--checkpoint", ckpt, str(tmp_path / "empty")]) == 2
    assert "empty: a folder with no image files" in capsys.readouterr().err


def test_bad_checkpoints_and_images(
    run_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((run_dir / "best.pt").read_bytes()[:2000])
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    listed = tmp_path / "listed.pt"
    torch.save([torch.zeros(2)], listed)
    cases = [
        (["classify", "eval", "--checkpoint", str(truncated)], "truncated or corrupt"),
        (  # a torchvision .pth is such a file: said what it is good for
            ["classify", "eval", "--checkpoint", str(foreign)],
            f"{foreign}: not a cnnlab checkpoint but bare weights (1 tensor by name, as "
            "torchvision's .pth files hold: no model, classes or input size); a run can start "
            f"from them: train --pretrained {foreign}",
        ),
        (
            ["classify", "eval", "--checkpoint", str(listed)],
            f"{listed}: not a cnnlab checkpoint (no 'cnnlab.checkpoint/1' format tag)",
        ),
        (
            ["classify", "predict", "--checkpoint", str(run_dir / "best.pt"), str(notes)],
            "not an image file",
        ),
        (
            ["classify", "predict", "--checkpoint", str(run_dir / "best.pt"), "missing.png"],
            "no such file",
        ),
        (  # not "http:/x.org/a.png: no such file", the address with a slash lost
            ["classify", "predict", "--checkpoint", str(run_dir / "best.pt"), "http://x.org/a.png"],
            "http://x.org/a.png: a web address; cnnlab reads files on this machine",
        ),
    ]
    # well-formed files with one field wrong: each names what is wrong instead of a traceback
    good = torch.load(run_dir / "best.pt", weights_only=True)
    for key, value, fragment in [
        ("state_dict", [1, 2], "malformed state_dict"),
        ("input_size", "abc", "malformed input_size"),
        ("normalization", {"mean": "x"}, "malformed normalization"),
        ("normalization", {"mean": [0.5], "std": [0.0]}, "malformed normalization"),
        ("normalization", {"mean": [0.5] * 3, "std": [0.2] * 3}, "malformed normalization"),
        ("class_names", [], "0 class names for a model of 10 classes"),
        (
            "state_dict",
            {**good["state_dict"], "features.conv1.weight": torch.zeros(3, 1, 5, 5)},
            "size mismatch for features.conv1.weight",
        ),
    ]:
        path = tmp_path / f"bad_{key}_{len(cases)}.pt"
        torch.save({**good, key: value}, path)
        cases.append((["classify", "predict", "--checkpoint", str(path)], fragment))
    for argv, fragment in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert fragment in err and len(err.splitlines()) == 1


def test_no_test_split_reports_no_test_accuracy(tmp_path, capsys) -> None:
    """``--test-fraction 0`` (every image for training and validation) leaves the test split
    empty: the run reports no test accuracy (null), not "0.00% on 0 images", and draws no
    confusion matrix of nothing."""
    out = tmp_path / "run"
    argv = ["classify", "train", "--epochs", "1", "--test-fraction", "0", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "no test split; validation accuracy" in printed
    assert "0.00%" not in printed
    results = json.loads((out / "results.json").read_text())
    assert results["test_accuracy"] is None and results["test_count"] == 0
    assert results["best_val_accuracy"] > 0.5
    assert not (out / "confusion_matrix.png").exists() and not (out / "mistakes.png").exists()
    assert "(figures: curves.png)" in " ".join(printed.split())  # what the run folder holds
    for command in ("eval", "predict"):
        assert main(["classify", command, "--checkpoint", str(out / "best.pt")]) == 2
        assert "digits has no test split (--test-fraction 0" in capsys.readouterr().err
    best = str(out / "best.pt")
    assert main(["visualize", "patches", "--checkpoint", best, "--split", "test"]) == 2
    assert "digits has no test split (--test-fraction 0" in capsys.readouterr().err


def test_checkpoint_round_trip_is_weights_only(tmp_path) -> None:
    path = save_checkpoint(
        tmp_path / "x.pt",
        {"model": "lenet5", "model_kwargs": {}, "state_dict": {"w": torch.ones(2)}},
    )
    assert load_checkpoint(path)["state_dict"]["w"].sum() == 2

    class Evil:
        def __reduce__(self):  # would run code under a plain pickle load
            return (print, ("pwned",))

    evil = tmp_path / "evil.pt"
    torch.save({"format": "cnnlab.checkpoint/1", "model": Evil()}, evil)
    with pytest.raises(CnnlabError, match="weights-only loader refused it: Unsupported global"):
        load_checkpoint(evil)


def test_failed_save_keeps_the_old_checkpoint(tmp_path, monkeypatch) -> None:
    path = save_checkpoint(
        tmp_path / "keep.pt", {"model": "a", "model_kwargs": {}, "state_dict": {}}
    )
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_checkpoint(path, {"model": "b", "model_kwargs": {}, "state_dict": {}})
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("*.tmp"))


def test_default_run_dir_never_overwrites(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    first = train_classifier(ClassifyTrainConfig(epochs=1))
    second = train_classifier(ClassifyTrainConfig(epochs=1))
    assert first.run_dir.name == "lenet5-digits" and second.run_dir.name == "lenet5-digits-2"


def test_an_out_that_holds_a_run_is_reused_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--out`` names a folder, reused as is; a run already there (its best.pt and last.pt) is
    said to be written over, and the figures the last line names are this run's, not a figure
    an earlier run left there."""
    out = tmp_path / "run"
    argv = ["classify", "train", "--epochs", "1", "--out", str(out)]
    assert main(argv) == 0
    assert "warning" not in capsys.readouterr().err
    stale = out / "pr_curve.png"  # a detector's, trained into the same folder before
    stale.write_bytes((out / "curves.png").read_bytes())
    os.utime(stale, (1e9, 1e9))
    assert main(argv) == 0
    said = capsys.readouterr()
    assert f"cnnlab: warning: {out} holds an earlier run (best.pt and last.pt of " in said.err
    assert said.err.splitlines()[0].endswith(
        "); this run writes over them (leave out --out, or name another folder, to keep them)"
    )
    figures = "confusion_matrix.png, curves.png, mistakes.png"
    assert f"run folder: {out} (figures: {figures})" in " ".join(said.out.split())


def test_every_task_warns_of_the_run_it_writes_over(tmp_path: Path) -> None:
    """localize, detect, segment and faces find their ``--out`` through ``run_folder``: the
    same warning, and none for a folder without a checkpoint or a new ``runs/<task>/run``."""
    from cnnlab.engine.run_folders import run_folder

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run_folder(str(tmp_path), "detect") == tmp_path  # empty: nothing to say
    (tmp_path / "last.pt").write_bytes(b"")
    with pytest.warns(UserWarning, match=r"holds an earlier run \(last.pt of \d{4}-.*over it "):
        assert run_folder(str(tmp_path), "segment") == tmp_path
    with warnings.catch_warnings():  # faces checks its identities first, then warns
        warnings.simplefilter("error")
        assert run_folder(str(tmp_path), "faces", warn=False) == tmp_path


@pytest.mark.parametrize("name", ["lenet5", "lenet5_classic"])
def test_overfit_one_batch(name: str) -> None:
    """Loss on one fixed batch of 32 digits must fall by 90% within 150 steps."""
    data = load_digits()
    split = data.splits["train"]
    x = normalize(split.images[:32], data.mean, data.std)
    y = split.labels[:32]
    model = cnnlab.create_model(name)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = F.cross_entropy(model(x), y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"epochs": 0}, "--epochs must be >= 1"),
        ({"image_size": 0}, "--image-size must be >= 1"),
        ({"lr": float("nan")}, "--lr must be > 0"),
        ({"weight_decay": -0.1}, "--weight-decay must be >= 0"),
        ({"weight_decay": float("nan")}, "--weight-decay must be >= 0"),
        ({"label_smoothing": 1.0}, r"--label-smoothing must be in \[0, 1\)"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, "sum below 1"),
        ({"channels": 2}, "--channels must be 1 or 3"),
        ({"resize": "crop"}, "--resize must be center-crop or stretch, got 'crop'"),
        ({"backbone_lr_mult": -1.0}, "--backbone-lr-mult must be >= 0"),
        ({"cache_features": True}, "--cache-features needs --freeze backbone"),
        ({"split_seed": -1}, r"--split-seed must be an integer in \[0, 4294967295\]"),
        ({"seed": 2**32}, "--seed must be an integer in"),
        ({"seed": 1.5}, "--seed must be an integer in"),
        # a value of the wrong kind is refused by name (it was a TypeError from a comparison)
        ({"lr": "0.1"}, r"--lr must be a number, got '0.1' \(str\)"),
        ({"epochs": 2.5}, r"--epochs must be an integer, got 2.5 \(float\)"),
        ({"strict": "yes"}, r"--strict must be True or False, got 'yes'"),
    ],
)
def test_config_from_python_is_checked_like_the_cli(bad: dict, message: str) -> None:
    """The Python API refuses the same values the CLI does, with the CLI's option names."""
    with pytest.raises(CnnlabError, match=message):
        ClassifyTrainConfig(**bad)


def test_paths_and_numpy_numbers_are_taken_as_python_values(tmp_path: Path) -> None:
    """A Path where a string goes, NumPy numbers where numbers go: stored as Python values, so
    config.json is written and the checkpoint loads weights-only (NumPy scalars would not)."""
    import numpy as np

    config = ClassifyTrainConfig(
        data=tmp_path / "photos", out=tmp_path / "run", epochs=np.int64(3), lr=np.float32(0.5)
    )
    assert config.data == str(tmp_path / "photos") and config.out == str(tmp_path / "run")
    assert type(config.epochs) is int and type(config.lr) is float and config.lr == 0.5
    json.dumps(config.to_dict())


@pytest.mark.parametrize(
    "config, bad, message",
    [
        ("cnnlab.engine.faces:FacesConfig", {"lr": float("nan")}, "--lr must be > 0"),
        ("cnnlab.engine.faces:FacesConfig", {"steps": 0}, "--steps must be >= 1"),
        ("cnnlab.engine.faces:FacesConfig", {"alpha": -0.2}, "--alpha must be >= 0"),
        ("cnnlab.engine.segment:SegmentConfig", {"epochs": 0}, "--epochs must be >= 1"),
        ("cnnlab.engine.segment:SegmentConfig", {"lr": -1.0}, "--lr must be > 0"),
        ("cnnlab.engine.detect:DetectConfig", {"num_classes": 0}, "--num-classes must be >= 1"),
        ("cnnlab.engine.detect:DetectConfig", {"lr": 0.0}, "--lr must be > 0"),
        ("cnnlab.engine.localize:LocalizeConfig", {"batch_size": 0}, "--batch-size must be >= 1"),
        ("cnnlab.engine.localize:LocalizeConfig", {"lr": float("nan")}, "--lr must be > 0"),
        ("cnnlab.engine.faces:FacesConfig", {"seed": -1}, "--seed must be an integer in"),
        ("cnnlab.engine.detect:DetectConfig", {"seed": -1}, "--seed must be an integer in"),
        ("cnnlab.config:DetectConfig", {"max_objects": "5"}, "--max-objects must be an integer"),
        ("cnnlab.config:SegmentConfig", {"images": None}, "--images must be an integer"),
        ("cnnlab.config:LocalizeConfig", {"batch_size": True}, "--batch-size must be an integer"),
        ("cnnlab.config:FacesConfig", {"steps": 10.5}, "--steps must be an integer, got 10.5"),
    ],
)
def test_every_task_config_is_checked_on_creation(config: str, bad: dict, message: str) -> None:
    """Each task's settings refuse out-of-range numbers when made from Python, not mid-training."""
    import importlib

    module, name = config.split(":")
    with pytest.raises(CnnlabError, match=message):
        getattr(importlib.import_module(module), name)(**bad)


@pytest.mark.skipif(
    not bf16_supported(torch.device("cpu")), reason="this CPU has no native bfloat16"
)
def test_a_bf16_run_reports_the_test_figures_classify_eval_gives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Trained and validated in bf16 autocast, the run scores its test split in float32, as
    `classify eval` scores the checkpoint: the same loss and accuracy (scored in bf16, the loss
    differed in the fourth digit)."""
    run = tmp_path / "run"
    argv = ["classify", "train", "--precision", "bf16", "--epochs", "1", "--out", str(run)]
    assert main([*argv, "--json"]) == 0
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert trained["settings"]["bf16"]
    assert main(["classify", "eval", "--checkpoint", str(run / "best.pt"), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert trained["test_loss"] == pytest.approx(scored["loss"], rel=1e-9)
    assert trained["test_accuracy"] == scored["accuracy"]


def test_eval_on_other_labelled_data(
    run_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`classify eval --data`: the digits' test split written out as a user's folder (dark ink
    on white, class folders, one class left out and the rest renamed in no order) scores
    exactly as the run's own test split, image for image."""
    ckpt = str(run_dir / "best.pt")
    assert main(["classify", "eval", "--checkpoint", ckpt, "--json"]) == 0
    own = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    test = load_digits().splits["test"]
    root = tmp_path / "new_scans"
    for i, (image, label) in enumerate(zip(test.images, test.labels, strict=True)):
        (root / str(int(label))).mkdir(parents=True, exist_ok=True)
        Image.fromarray(255 - image[0].numpy()).save(root / str(int(label)) / f"{i}.png")
    assert main(["classify", "eval", "--checkpoint", ckpt, "--data", str(root), "--json"]) == 0
    other = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert other["split"] == "all" and other["count"] == own["count"]
    assert other["data_changed"] is None  # not the run's data: nothing to compare
    assert other["confusion"] == own["confusion"] and other["accuracy"] == own["accuracy"]
    # a folder with fewer classes is fine; the named dataset itself too (its --split)
    import shutil

    shutil.rmtree(root / "3")
    assert main(["classify", "eval", "--checkpoint", ckpt, "--data", str(root), "--json"]) == 0
    fewer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert fewer["count"] == own["count"] - int((test.labels == 3).sum())
    argv = ["classify", "eval", "--checkpoint", ckpt, "--data", "digits", "--json"]
    assert main(argv) == 0
    named = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert named["confusion"] == own["confusion"]
    # another named dataset: its classes matched by name too (face / not_face are not digits)
    assert main(["classify", "eval", "--checkpoint", ckpt, "--data", "faces"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "faces: class(es) not_face, face unknown to the checkpoint" in err[0]
    # a class the checkpoint does not know, and split folders without the asked split
    (root / "cat").mkdir()
    assert main(["classify", "eval", "--checkpoint", ckpt, "--data", str(root)]) == 2
    assert "cat: a class unknown to the checkpoint (its classes: 0, 1" in capsys.readouterr().err
    (root / "cat").rmdir()
    (tmp_path / "split" / "val").mkdir(parents=True)
    shutil.move(str(root / "5"), tmp_path / "split" / "val" / "5")
    argv = ["classify", "eval", "--checkpoint", ckpt, "--data", str(tmp_path / "split")]
    assert main(argv) == 2
    assert "has no test folder (its folders name val)" in capsys.readouterr().err
    assert main([*argv, "--split", "val", "--json"]) == 0
    val = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert val["split"] == "val" and val["count"] == int((test.labels == 5).sum())


def test_predict_labels_files_by_their_class_folder() -> None:
    """Training reads root/<class>/**: a file's label is the nearest folder above it named
    after a class; none when no folder is."""
    from cnnlab.engine.predict import folder_labels

    paths = ["scans/cat/2024/a.png", "scans/b.png", "dog/cat/c.png", "cat"]
    assert folder_labels(paths, ["cat", "dog"]) == ["cat", None, "cat", None]


def test_preprocessing_no_files_gives_an_empty_batch(run_dir: Path) -> None:
    """An empty list of files (a filter that matched nothing) used to fail in torch.stack."""
    from cnnlab.engine.checkpoint import model_from_checkpoint
    from cnnlab.engine.predict import model_meta, preprocess

    model, ckpt = model_from_checkpoint(run_dir / "best.pt", "classification")
    batch = preprocess([], model_meta(ckpt))
    assert batch.shape == (0, 1, 32, 32) and batch.dtype == torch.float32
    assert model.eval()(batch).shape == (0, 10)


def test_training_prints_no_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`make demo`'s run says what it trains and where it went, and nothing PyTorch warns of
    (scoring once ran with autograd on: "Converting a tensor with requires_grad=True")."""
    out = tmp_path / "run"
    argv = ["classify", "train", "--epochs", "1", "--out", str(out), "--test-fraction", "0.5"]
    assert main(argv) == 0
    assert "warning" not in capsys.readouterr().err.lower()


def test_images_in_memory_are_predicted_as_their_files(
    run_dir: Path, tmp_path: Path, opened: Callable[[Path], Image.Image]
) -> None:
    """``Classifier.predict_images`` (Pillow images, numpy arrays: a camera frame) gives the
    rows ``predict_files`` gives their files: a phone photo's EXIF rotation, 16-bit grey scaled
    not clipped, an RGBA PNG's alpha dropped, a dark digit on light paper inverted; what is not
    an image is one error naming it."""
    import numpy as np

    from cnnlab.data.images import read_image
    from cnnlab.engine.predict import Classifier

    digit = load_digits().splits["test"].images[3, 0].numpy()  # (32, 32) uint8, light on dark
    tall = np.pad(digit, ((0, 16), (0, 0)))  # 48x32: a quarter turn changes what is cropped
    files = [tmp_path / n for n in ("phone.jpg", "deep.png", "rgba.png", "paper.png")]
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was held on its side
    Image.fromarray(np.stack([tall] * 3, -1)).save(files[0], exif=exif, quality=95)
    Image.fromarray(digit.astype(np.uint16) * 257).save(files[1])  # 16-bit: 255 -> 65535
    alpha = np.full_like(digit, 128)
    Image.fromarray(np.stack([digit, digit, digit, alpha], -1)).save(files[2])
    Image.fromarray(255 - digit).save(files[3])
    assert opened(files[1]).mode.startswith("I")  # Pillow keeps it 16-bit

    clf = Classifier.load(run_dir / "best.pt")
    assert clf.class_names == [str(d) for d in range(10)]
    want = clf.predict_files(files, top_k=10)
    held = [opened(f) for f in files]  # as a program opens them, orientation not applied
    arrays = [np.asarray(read_image(f, "RGB")) for f in files]  # (H, W, 3) as shown
    arrays[3] = np.asarray(read_image(files[3], "L"))[..., None]  # (H, W, 1)
    bgr = np.ascontiguousarray(arrays[2][..., ::-1])  # as OpenCV holds a frame
    arrays[2] = bgr[..., ::-1]  # back to RGB: a view with a negative stride
    assert arrays[2].strides[-1] < 0
    for given in (held, arrays):
        got = clf.predict_images(given, top_k=10)
        assert [r["source"] for r in got] == [f"images[{i}]" for i in range(len(files))]
        for g, w in zip(got, want, strict=True):
            assert g["prediction"] == w["prediction"]
            assert dict(g["top_k"]) == pytest.approx(dict(w["top_k"]), abs=1e-6)
    mixed = clf.predict_files([files[3], arrays[0]], top_k=10)  # either method takes both
    assert [r["source"] for r in mixed] == [str(files[3]), "images[1]"]
    for r, w in zip(mixed, (want[3], got[0]), strict=True):  # batched otherwise: within 1e-6
        assert dict(r["top_k"]) == pytest.approx(dict(w["top_k"]), abs=1e-6)
    # the rotation, depth and inversion mattered: without them the scores differ
    plain = clf.predict_images([np.asarray(opened(f).convert("L")) for f in files[:2]])
    for p, w in zip(plain, want, strict=False):
        assert p["probability"] != pytest.approx(w["probability"], abs=1e-3)
    assert clf.predict_images([]) == []
    bad = [
        (np.zeros((8, 8), np.float32), r"images\[1\]: a float32 array; give uint8 pixels"),
        (np.zeros((8, 8, 2), np.uint8), r"images\[1\]: an 8x8x2 array; give \(H, W\), .* pixels$"),
        (np.zeros((0, 8), np.uint8), r"images\[1\]: a 0x8 array"),
        (np.zeros((8, 8), np.int64), r"an int64 array; .* \(x\.astype\(np\.uint8\) if its values"),
        (np.zeros((3, 9, 9), np.uint8), r"a 3x9x9 array; .*; channels first\? x\.transpose\(1, 2"),
        (torch.zeros(1, 8, 8), r"images\[1\]: a Tensor, not a Pillow image or a numpy uint8"),
        (torch.zeros(1, 8, 8), r"uint8 array \(for a \(C, H, W\) tensor: x\.permute\(1, 2, 0\)"),
        (None, r"images\[1\]: None, not a Pillow image"),  # was "a NoneType"
        (7, r"images\[1\]: an int, not a Pillow image"),
        ("digit.png", r"digit.png: no such file"),  # a path is a file's
    ]
    for thing, message in bad:
        with pytest.raises(CnnlabError, match=message):
            clf.predict_images([digit, thing])
    # one image alone is a list of one (a lone path was read letter by letter: "p: no such
    # file"); a batch array (N, H, W, C) or (N, H, W) its N images
    (alone,) = clf.predict_files(str(files[3]), top_k=10)
    assert alone["source"] == str(files[3])
    assert dict(alone["top_k"]) == pytest.approx(dict(want[3]["top_k"]), abs=1e-6)
    for one in (files[3], held[3], arrays[3], arrays[3][..., 0], arrays[0]):
        assert len(clf.predict_images(one)) == 1
    same = [np.asarray(read_image(files[3], "RGB"))] * 3
    for batch in (np.stack(same), np.stack(same)[..., 0]):
        rows = clf.predict_images(batch, top_k=10)
        assert [r["source"] for r in rows] == ["images[0]", "images[1]", "images[2]"]
        for r in rows:
            assert dict(r["top_k"]) == pytest.approx(dict(want[3]["top_k"]), abs=1e-6)
    cut = tmp_path / "cut.png"
    cut.write_bytes(files[3].read_bytes()[:200])
    with pytest.raises(CnnlabError, match=r"images\[0\]: corrupt or truncated"):
        clf.predict_images([opened(cut)])
