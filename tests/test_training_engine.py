"""The training engine: exact resume after SIGKILL, non-finite loss, transfer learning, speed
settings, two-process training and ONNX export."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import write_folder

import cnnlab
from cnnlab.cli import main
from cnnlab.config import ClassifyTrainConfig
from cnnlab.engine.checkpoint import load_checkpoint, save_checkpoint
from cnnlab.engine.classify import train_classifier
from cnnlab.engine.device import resolve_device
from cnnlab.engine.performance import SpeedSettings, bf16_supported, choose_settings
from cnnlab.engine.runlog import batch_slices, batches_per_epoch
from cnnlab.engine.transfer import (
    apply_freeze,
    backbone_groups,
    freeze_part,
    head_parameter_names,
    load_pretrained,
    train_mode,
)
from cnnlab.errors import CnnlabError

CLI = [sys.executable, "-m", "cnnlab"]


def wait_for_epochs(run: Path, epochs: int, proc: subprocess.Popen) -> None:
    """Until ``run``'s metrics.csv holds ``epochs`` rows (each saved with last.pt), or ``proc``
    has ended, or two minutes have passed."""
    metrics = run / "metrics.csv"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().strip().splitlines()) > epochs:
            return
        time.sleep(0.01)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["state_dict"]


def test_resume_after_sigkill_gives_the_same_weights(tmp_path: Path) -> None:
    """Kill a real training process mid-epoch, resume it, compare with an uninterrupted run."""
    args = [
        "classify",
        "train",
        "--model",
        "lenet5",
        "--epochs",
        "5",
        "--seed",
        "3",
        "--augment",
        "crop,rotate",
        "--json",
    ]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run([*CLI, *args, "--out", str(whole)], check=True, env=env, capture_output=True)
    proc = subprocess.Popen(
        [*CLI, *args, "--out", str(killed)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_epochs(killed, 2, proc)  # two epochs done: kill somewhere in the third
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    epoch = load_checkpoint(killed / "last.pt")["epoch"]
    assert 2 <= epoch < 5, "the process should die mid-run"
    subprocess.run(
        [*CLI, "classify", "train", "--resume", str(killed / "last.pt"), "--json"],
        check=True,
        env=env,
        capture_output=True,
    )
    a, b = weights(whole / "last.pt"), weights(killed / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len((killed / "metrics.csv").read_text().strip().splitlines()) == 6


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch
) -> None:
    calls = {"n": 0}
    real = F.cross_entropy

    def flaky(*args, **kwargs):
        calls["n"] += 1
        out = real(*args, **kwargs)
        return out * float("nan") if calls["n"] == 30 else out  # in epoch 2 (20 steps/epoch)

    monkeypatch.setattr(F, "cross_entropy", flaky)
    with pytest.raises(CnnlabError, match=r"loss became nan at epoch 2.*a lower --lr may hold"):
        train_classifier(ClassifyTrainConfig(epochs=3, out=str(tmp_path / "run")))
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    # the same folder again, diverging in its first epoch: the last.pt there is the earlier
    # run's, not "the last good checkpoint" of this one
    calls["n"] = 29
    with (
        pytest.warns(UserWarning, match=r"run holds an earlier run \(best.pt and last.pt of "),
        pytest.raises(CnnlabError, match=r"loss became nan at epoch 1.*--lr may hold\)$"),
    ):
        train_classifier(ClassifyTrainConfig(epochs=3, out=str(tmp_path / "run")))


def test_ctrl_c_says_how_to_continue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C in epoch 2: exit 130 and the command that resumes from epoch 1's last.pt; in the
    first epoch (no last.pt yet) only "interrupted"."""
    import cnnlab.engine.classify as engine

    out = tmp_path / "run"

    def ctrl_c_once_an_epoch_is_saved(model: torch.nn.Module) -> None:
        if (out / "last.pt").exists():
            raise KeyboardInterrupt

    monkeypatch.setattr(engine, "frozen_norms_to_eval", ctrl_c_once_an_epoch_is_saved)
    assert main(["classify", "train", "--epochs", "3", "--out", str(out)]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"cnnlab: interrupted; `cnnlab classify train --resume {out / 'last.pt'}` continues "
        "from the last finished epoch"
    )
    assert load_checkpoint(out / "last.pt")["epoch"] == 1

    def ctrl_c(model: torch.nn.Module) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "frozen_norms_to_eval", ctrl_c)
    first = tmp_path / "first"
    assert main(["classify", "train", "--epochs", "3", "--out", str(first)]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "cnnlab: interrupted"
    assert not (first / "last.pt").exists()


def test_resume_needs_a_last_checkpoint(tmp_path: Path) -> None:
    path = save_checkpoint(
        tmp_path / "best.pt", {"model": "lenet5", "model_kwargs": {}, "state_dict": {}}
    )
    with pytest.raises(CnnlabError, match="not a resumable checkpoint"):
        train_classifier(ClassifyTrainConfig(), resume=path)
    # a detector's last.pt names its task instead of "use a run's last.pt" (it is one)
    last = {"model": "yolo", "model_kwargs": {}, "state_dict": {}, "optimizer": {}, "rng": {}}
    path = save_checkpoint(tmp_path / "last.pt", last)
    with pytest.raises(CnnlabError, match=r"a detection checkpoint \(model 'yolo'\), not a class"):
        train_classifier(ClassifyTrainConfig(), resume=path)


def test_freeze_policies() -> None:
    model = cnnlab.create_model("resnet18", num_classes=3)
    head = head_parameter_names(model, (3, 32, 32))
    assert head == {"fc.weight", "fc.bias"}
    frozen = apply_freeze(model, "backbone", (3, 32, 32))
    assert len(frozen) == len(list(model.parameters())) - 2
    model = cnnlab.create_model("resnet18", num_classes=3)
    frozen = apply_freeze(model, "stages:2", (3, 32, 32))  # stem and layer1
    assert all(n.startswith(("conv1", "bn1", "layer1")) for n in frozen)
    assert model.layer2[0].conv1.weight.requires_grad
    for k in (9, -1):
        with pytest.raises(CnnlabError, match=rf"stages:{k}: K must be 0 to 5 \(the model has 5"):
            apply_freeze(cnnlab.create_model("resnet18"), f"stages:{k}", (3, 32, 32))
    lenet_head = head_parameter_names(cnnlab.create_model("lenet5"), (1, 32, 32))
    assert lenet_head == {f"head.fc{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias")}
    vgg = cnnlab.create_model("vgg11", num_classes=3)  # no freeze_groups(): its features' layers
    frozen = apply_freeze(vgg, "stages:3", (3, 32, 32))
    assert frozen == [f"features.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")]
    assert vgg.features[8].weight.requires_grad and vgg.classifier[0].weight.requires_grad
    with pytest.raises(CnnlabError, match="expected stages:K with an integer K"):
        apply_freeze(vgg, "stages:all", (3, 32, 32))


def test_freeze_part_fixes_a_backbone_and_its_batch_norm_statistics() -> None:
    """``--freeze`` of a model that reads a classifier's features (a detector's backbone):
    ``stages:2`` fixes the ResNet's stem and layer1, the rest of the backbone, the neck and the
    head train; :func:`train_mode` keeps the fixed layers' batch norms in eval mode (their
    running statistics stay as loaded), the others in training mode; the optimizer gets only
    what trains."""
    kwargs = {"backbone": "resnet18", "num_classes": 3, "anchors": ((0.2, 0.3),)}
    model = cnnlab.create_model("yolo", **kwargs, input_size=64)
    frozen = freeze_part(model, "stages:2")
    assert frozen and all(
        n.startswith(("backbone.conv1", "backbone.bn1", "backbone.layer1")) for n in frozen
    )
    assert any(n.startswith("backbone.layer1.1.") for n in frozen)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable.isdisjoint(frozen) and len(trainable) + len(frozen) == len(
        list(model.parameters())
    )
    assert "backbone.layer2.0.conv1.weight" in trainable and "head.weight" in trainable
    train_mode(model)
    assert not model.backbone.bn1.training and not model.backbone.layer1[1].bn2.training
    assert model.backbone.layer2[0].bn1.training and model.training
    before = model.backbone.layer1[0].bn1.running_mean.clone()
    model(torch.randn(2, 3, 64, 64) * 5 + 3)  # a training-mode forward pass
    assert torch.equal(model.backbone.layer1[0].bn1.running_mean, before)
    groups = backbone_groups(model, 1e-3, 0.5)
    assert sum(len(g["params"]) for g in groups) == len(trainable)

    whole = cnnlab.create_model("yolo", **kwargs, input_size=64)
    frozen = freeze_part(whole, "backbone")
    assert set(frozen) == {n for n, _ in whole.named_parameters() if n.startswith("backbone.")}
    assert len(backbone_groups(whole, 1e-3, 1.0)) == 1  # the head's group alone
    assert freeze_part(whole, "none") == []
    with pytest.raises(CnnlabError, match=r"stages:6: K must be 0 to 5 \(the backbone has 5"):
        freeze_part(cnnlab.create_model("yolo", **kwargs, input_size=64), "stages:6")


def test_transfer_from_a_checkpoint_with_frozen_backbone(tmp_path: Path) -> None:
    first = train_classifier(ClassifyTrainConfig(epochs=2, out=str(tmp_path / "a")))
    config = ClassifyTrainConfig(
        data="faces",
        epochs=2,
        pretrained=str(first.run_dir / "best.pt"),
        freeze="backbone",
        cache_features=True,
        out=str(tmp_path / "b"),
    )
    second = train_classifier(config)
    before, after = weights(first.run_dir / "best.pt"), weights(second.run_dir / "last.pt")
    for k in ("features.conv1.weight", "features.conv2.bias"):
        assert torch.equal(before[k], after[k])  # the frozen backbone is untouched
    assert after["head.fc3.weight"].shape == (2, 84)  # a new 2-class head
    assert not torch.equal(before["head.fc1.weight"], after["head.fc1.weight"])


def test_pretrained_torchvision_file_keeps_a_new_head(tmp_path: Path) -> None:
    path = tmp_path / "resnet18.pth"
    torch.save(cnnlab.create_model("resnet18").state_dict(), path)  # torchvision's key names
    model = cnnlab.create_model("resnet18", num_classes=4)
    fresh = load_pretrained(model, path)
    assert fresh == ["fc.weight", "fc.bias"]
    with pytest.raises(CnnlabError, match="torchvision has no weights for LeNet5"):
        load_pretrained(cnnlab.create_model("lenet5"), path)
    with pytest.raises(CnnlabError, match="most weights do not fit ResNet"):
        load_pretrained(cnnlab.create_model("resnet34"), path)


def test_speed_settings_policy() -> None:
    cpu = torch.device("cpu")
    lenet = choose_settings("lenet5", cpu)
    assert not lenet.bf16 and not lenet.channels_last
    assert choose_settings("mobilenet_v2", cpu).channels_last
    assert not choose_settings("mobilenet_v2", cpu).bf16
    assert not choose_settings("resnet18", cpu, precision="fp32").bf16
    # the localizer's and detector's default backbone: 3x (64 px) to 3.9x (128 px) in bf16 + CL
    small = choose_settings("convnet_small", cpu)
    assert small.channels_last and small.bf16 == bf16_supported(cpu)
    # ImageNet ResNets under 64 px: both measured slower (0.7x at 32 px); CIFAR ResNets faster
    assert choose_settings("resnet18", cpu, image_size=32) == SpeedSettings(False, False)
    assert choose_settings("resnet50", cpu, image_size=48) == SpeedSettings(False, False)
    assert choose_settings("resnet18", cpu, image_size=64).channels_last
    assert choose_settings("cifar_resnet20", cpu, image_size=32).channels_last
    assert choose_settings("unet_resnet18", cpu, image_size=32).channels_last
    assert not choose_settings("resnet18", cpu, channels_last="off").channels_last
    with pytest.raises(CnnlabError):
        choose_settings("resnet18", cpu, precision="fp8")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")


@pytest.mark.parametrize("task", ["localize", "detect"])
def test_localize_and_detect_train_in_the_precision_asked(task: str, tmp_path: Path) -> None:
    """``--precision`` reaches the training step: bf16 autocast changes the losses, and the
    run's config.json says what was used."""
    if not bf16_supported(torch.device("cpu")):
        pytest.skip("this CPU has no bf16")
    losses = {}
    for precision in ("auto", "fp32", "bf16"):
        out = tmp_path / precision
        args = ["--epochs", "1", "--images", "48", "--image-size", "32", "--batch-size", "8"]
        assert main([task, "train", *args, "--precision", precision, "--out", str(out)]) == 0
        settings = json.loads((out / "config.json").read_text())["settings"]
        # auto: bf16 for the detector (same mAP@0.5, 1.8x faster); not for the localizer's boxes
        bf16 = precision == "bf16" or (precision == "auto" and task == "detect")
        assert settings == {"bf16": bf16, "channels_last": True}
        with (out / "metrics.csv").open() as f:
            losses[precision] = float(next(csv.DictReader(f))["train_loss"])
    assert math.isfinite(losses["bf16"]) and losses["bf16"] != losses["fp32"]


def test_localize_and_detect_start_their_backbone_from_pretrained_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--pretrained`` of detect and localize train loads a torchvision weights file into the
    backbone, or the backbone of another task's best.pt; ``--backbone-lr-mult 0`` keeps it as
    loaded while the heads train; a backbone torchvision has no weights for is one line."""
    weights = tmp_path / "resnet18.pth"
    torch.manual_seed(7)  # not what the runs' seed 0 draws
    given = cnnlab.create_model("resnet18").state_dict()
    torch.save(given, weights)
    args = ["--backbone", "resnet18", "--image-size", "64", "--images", "40", "--epochs", "1"]
    args += ["--batch-size", "8", "--backbone-lr-mult", "0"]
    names = ("conv1.weight", "layer3.1.conv2.weight", "layer4.0.bn1.bias")
    detector = tmp_path / "detect"
    assert (
        main(["detect", "train", *args, "--pretrained", str(weights), "--out", str(detector)]) == 0
    )
    assert f"loaded {weights} (every tensor)" in " ".join(capsys.readouterr().err.split())
    saved = load_checkpoint(detector / "best.pt")
    state = saved["state_dict"]
    for name in names:
        assert torch.equal(state[f"backbone.{name}"], given[name])
    torch.manual_seed(0)  # the detector as the run drew it: its head trained at the full rate
    drawn = cnnlab.create_model("yolo", **saved["model_kwargs"])
    assert not torch.equal(state["head.weight"], drawn.head.weight)
    assert not torch.equal(drawn.backbone.conv1.weight, given["conv1.weight"])
    localizer = tmp_path / "localize"  # from the detector's run: its backbone
    argv = ["localize", "train", *args, "--pretrained", str(detector / "best.pt")]
    assert main([*argv, "--out", str(localizer)]) == 0
    state = load_checkpoint(localizer / "best.pt")["state_dict"]
    for name in names:
        assert torch.equal(state[f"backbone.{name}"], given[name])
    # --freeze: the stem and layer1-2 (stages:3), batch-norm statistics too, as the detector's
    frozen = tmp_path / "frozen"
    argv = ["localize", "train", *args[:-2], "--pretrained", str(detector / "best.pt")]
    assert main([*argv, "--freeze", "stages:3", "--out", str(frozen)]) == 0
    before = load_checkpoint(detector / "best.pt")["state_dict"]
    after = load_checkpoint(frozen / "best.pt")["state_dict"]
    fixed = [
        k
        for k in after
        if k.startswith(("backbone.conv1", "backbone.bn1", "backbone.layer1", "backbone.layer2"))
    ]
    assert any(k.endswith("running_var") for k in fixed)
    assert all(torch.equal(after[k], before[k]) for k in fixed)
    assert not torch.equal(
        after["backbone.layer3.0.conv1.weight"], before["backbone.layer3.0.conv1.weight"]
    )
    still = tmp_path / "still"  # and the detector's whole backbone
    argv = ["detect", "train", *args[:-2], "--pretrained", str(weights), "--freeze", "backbone"]
    assert main([*argv, "--out", str(still)]) == 0
    after = load_checkpoint(still / "best.pt")["state_dict"]
    assert all(torch.equal(after[f"backbone.{k}"], v) for k, v in given.items() if k[:3] != "fc.")
    # a frozen ResNet's batch norms meet no batch: one image a step trains where it is refused
    one = ["localize", "train", "--backbone", "resnet18", "--image-size", "32", "--images", "20"]
    one += ["--epochs", "1", "--batch-size", "1", "--pretrained", str(weights)]
    assert main(one) == 2
    assert "batch norm meets 1x1 maps" in capsys.readouterr().err
    assert main([*one, "--freeze", "backbone", "--out", str(tmp_path / "one")]) == 0
    assert main(["detect", "train", "--images", "20", "--pretrained", str(weights)]) == 2
    assert "torchvision has no weights for ConvNetSmall" in capsys.readouterr().err


def test_device_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every refusal names the device; a CUDA index past the machine's GPUs is refused here, not
    deep in the first tensor copy. CUDA is faked as present with one device."""
    assert resolve_device("cpu") == torch.device("cpu")
    for bad in ("tpu", "meta", "cuda:x"):
        with pytest.raises(CnnlabError, match=f"unknown device '{bad}'"):
            resolve_device(bad)
    for other, said in (
        ("gpu", "cuda:N for GPU N"),
        ("1", "cuda:1 for GPU 1"),
        ("GPU:2", "cuda:2"),
    ):
        with pytest.raises(CnnlabError, match=f"a GPU is cuda, or {said}"):  # other tools' names
            resolve_device(other)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    assert resolve_device("auto") == torch.device("cuda")
    with pytest.raises(CnnlabError, match="'cuda:1' asked for, but this machine has 1 CUDA"):
        resolve_device("cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(CnnlabError, match="CUDA is not available here"):
        resolve_device("cuda")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args: str) -> list[str]:
    """``cnnlab *args`` on 2 CPU processes (gloo) under torchrun, on a free local port."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        "-m",
        "cnnlab",
        *args,
    ]


def test_two_processes_equal_one(tmp_path: Path) -> None:
    """torchrun with 2 CPU processes (gloo) ends with the weights of 1 process, same batch."""
    args = [
        "classify",
        "train",
        "--model",
        "lenet5",
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--augment",
        "none",
        "--seed",
        "1",
        "--json",
    ]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    subprocess.run(
        [*CLI, *args, "--out", str(tmp_path / "one")], check=True, env=env, capture_output=True
    )
    run = subprocess.run(
        torchrun(*args),  # no --out: rank 0 claims runs/classify/lenet5-digits for both ranks
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    two = tmp_path / "runs" / "classify" / "lenet5-digits"
    assert list(two.parent.iterdir()) == [two]
    config = json.loads((two / "config.json").read_text())
    assert config["world_size"] == 2
    a, b = weights(tmp_path / "one" / "last.pt"), weights(two / "last.pt")
    # the all-reduce sums gradients in another order than one process: measured up to 3e-5 apart
    # after 2 epochs (conv2, weights ~0.1); one process at batch 32 instead of 64 ends 0.08 apart
    for k in a:
        assert torch.allclose(a[k], b[k], atol=2e-4), k


def test_export_onnx_and_predict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnxruntime")
    run = tmp_path / "run"
    assert main(["classify", "train", "--epochs", "2", "--out", str(run), "--json"]) == 0
    capsys.readouterr()
    onnx_path = tmp_path / "lenet.onnx"
    assert (
        main(["export", str(run / "best.pt"), "--format", "onnx", "-o", str(onnx_path), "--json"])
        == 0
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["max_abs_diff"] < 1e-4 and onnx_path.is_file()
    from PIL import Image

    from cnnlab.data.classification import load_digits

    png = tmp_path / "seven.png"
    Image.fromarray(load_digits().splits["test"].images[3, 0].numpy()).save(png)
    answers = []
    for flag, source in (("--onnx", onnx_path), ("--checkpoint", run / "best.pt")):
        assert main(["classify", "predict", flag, str(source), str(png), "--json"]) == 0
        answers.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    onnx_pred, torch_pred = (a["predictions"][0] for a in answers)
    assert onnx_pred["prediction"] == torch_pred["prediction"]
    assert onnx_pred["probability"] == pytest.approx(torch_pred["probability"], abs=1e-4)
    assert main(["classify", "predict", "--onnx", str(png), str(png)]) == 2
    capsys.readouterr()
    # from Python: the same rows as the command line, from either file
    from cnnlab.engine.predict import Classifier

    for kind, source, cli in (
        ("onnx", onnx_path, onnx_pred),
        ("checkpoint", run / "best.pt", torch_pred),
    ):
        row = Classifier.load(**{kind: source}).predict_files([png])[0]
        assert row["prediction"] == cli["prediction"] and row["top_k"][0][0] == cli["prediction"]
        assert row["probability"] == pytest.approx(cli["probability"], abs=1e-6)
    with pytest.raises(CnnlabError, match="a checkpoint or an ONNX file: one of them"):
        Classifier.load(run / "best.pt", onnx_path)
    with pytest.raises(CnnlabError, match="a checkpoint or an ONNX file: one of them"):
        Classifier.load()
    assert Classifier.load(run / "best.pt").predict_files([]) == []  # nothing in, nothing out
    # a folder as the output: one line, nothing half-written beside it
    assert main(["export", str(run / "best.pt"), "-o", str(tmp_path)]) == 2
    assert "a folder" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.tmp"))
    assert main(["export", str(run / "best.pt"), "-o", str(tmp_path / "lenet.txt")]) == 2
    assert f"lenet.txt: an ONNX file is named *.onnx; give e.g. {tmp_path / 'lenet.onnx'}" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "lenet.txt").exists()
    # an opset the exporter lacks: one line (it was a traceback), the earlier file kept whole
    before = onnx_path.read_bytes()
    assert main(["export", str(run / "best.pt"), "-o", str(onnx_path), "--opset", "99"]) == 2
    assert "--opset 99: torch 2." in capsys.readouterr().err
    assert onnx_path.read_bytes() == before and not list(tmp_path.glob("*.tmp"))
    # --checkpoint, as every other command takes it, works too; none, or two, is one line
    again = tmp_path / "again.onnx"
    assert main(["export", "--checkpoint", str(run / "best.pt"), "-o", str(again)]) == 0
    assert again.is_file()
    assert main(["export"]) == 2 and main(["export", "a.pt", "--checkpoint", "b.pt"]) == 2
    assert capsys.readouterr().err.count("export needs one checkpoint") == 2


def test_tensorboard_logging(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train_classifier(ClassifyTrainConfig(epochs=2, tensorboard=True, out=str(tmp_path / "r")))
    events = EventAccumulator(str(tmp_path / "r" / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("val_accuracy")] == [1, 2]


@pytest.mark.parametrize(("size", "out"), [((5, 5), 4), ((7, 6), (3, 4)), ((8, 8), 4)])
def test_matrix_adaptive_pooling_matches_pytorch(size: tuple[int, int], out: object) -> None:
    """The ONNX-friendly pooling gives adaptive_avg_pool2d's windows (5 -> 4: overlapping)."""
    from cnnlab.engine.export import MatrixAdaptiveAvgPool

    x = torch.randn(2, 3, *size)
    expected = torch.nn.functional.adaptive_avg_pool2d(x, out)
    pool = MatrixAdaptiveAvgPool(size, expected.shape[-2:])
    assert torch.allclose(pool(x), expected, atol=1e-6)


def test_export_a_face_encoder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """LeNet-5's 5x5 maps pooled to a 4x4 grid have no ONNX operator of their own; the export
    swaps in matrix pooling and still matches PyTorch. The file is not a classifier's."""
    pytest.importorskip("onnxruntime")
    from cnnlab.engine.checkpoint import save_checkpoint
    from cnnlab.registry import create_model

    kwargs = {"backbone": "lenet5", "pool_size": 4, "whiten": True}
    model = create_model("siamese", **kwargs)
    ckpt = save_checkpoint(
        tmp_path / "faces.pt",
        {
            "model": "siamese",
            "model_kwargs": kwargs,
            "state_dict": model.state_dict(),
            "input_size": [1, 32, 32],
            "normalization": {"mean": [0.0], "std": [1.0]},
        },
    )
    onnx_path = tmp_path / "faces.onnx"
    assert main(["export", str(ckpt), "-o", str(onnx_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["max_abs_diff"] < 1e-5
    assert main(["classify", "predict", "--onnx", str(onnx_path), str(onnx_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"cnnlab: error: {onnx_path}: exported from the embedding model 'siamese', "
        "not from a classifier"
    )
    # an encoder saved without a threshold cannot decide who is who
    assert main(["faces", "enroll", "--checkpoint", str(ckpt), "--name", "a", "a.png"]) == 2
    assert "not a face encoder" in capsys.readouterr().err


def test_runs_without_out_never_overwrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """localize/detect/segment/faces used to write runs/<task>/run every time, replacing the
    last run's checkpoints; now, like classify, a second run goes beside the first."""
    from cnnlab.engine.run_folders import run_folder

    monkeypatch.chdir(tmp_path)
    assert run_folder("", "detect") == Path("runs/detect/run")
    # each is claimed as it is named: a second run started before the first wrote anything
    # (two shells, or one script) used to be given the same folder
    assert Path("runs/detect/run").is_dir()
    assert run_folder("", "detect") == Path("runs/detect/run-2")
    assert run_folder("", "detect") == Path("runs/detect/run-3")
    assert run_folder("mine", "detect") == Path("mine")  # an --out given is the user's choice


def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--tensorboard`` without the package (or Ctrl-C in the first epoch) used to leave a
    ``runs/classify/<name>`` holding only ``config.json``: a folder that looks like a run. The
    folder it claimed goes; one a finished run wrote, and an ``--out`` the user named, stay."""
    import cnnlab.engine.classify as engine

    monkeypatch.chdir(tmp_path)
    argv = ["classify", "train", "--data", "digits", "--epochs", "1"]
    assert main(argv) == 0
    assert sorted(p.name for p in Path("runs/classify").iterdir()) == ["lenet5-digits"]

    def missing(run_dir: Path) -> None:
        assert (run_dir / "config.json").is_file()  # the folder was claimed and written
        raise CnnlabError("--tensorboard needs the tensorboard package")

    monkeypatch.setattr(engine, "_tensorboard", missing)
    assert main([*argv, "--tensorboard"]) == 2
    assert "tensorboard package" in capsys.readouterr().err
    # the failed run's lenet5-digits-2 is gone; the finished one keeps its checkpoints
    assert sorted(p.name for p in Path("runs/classify").iterdir()) == ["lenet5-digits"]
    assert (Path("runs/classify/lenet5-digits") / "best.pt").is_file()

    def interrupted(run_dir: Path) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "_tensorboard", interrupted)
    assert main([*argv, "--tensorboard"]) == 130
    assert sorted(p.name for p in Path("runs/classify").iterdir()) == ["lenet5-digits"]
    assert main([*argv, "--tensorboard", "--out", "mine"]) == 130
    assert (Path("mine") / "config.json").is_file()  # the user's own folder is not removed


def test_a_last_batch_of_one_image_joins_the_one_before(tmp_path: Path) -> None:
    """Batch norm cannot train on one image with 1x1 maps (ResNet-18's last stage at 32 px):
    33 training images in batches of 32 used to end in a traceback."""
    order = torch.randperm(70)
    for n, size, smallest, sizes in [
        (70, 32, 2, [32, 32, 6]),
        (65, 32, 2, [32, 33]),
        (64, 32, 2, [32, 32]),
        (35, 32, 4, [35]),  # two processes: each share of the last batch needs 2
        (1, 32, 2, [1]),
    ]:
        chunks = batch_slices(order[:n], size, smallest)
        assert [len(c) for c in chunks] == sizes
        assert torch.equal(torch.cat(chunks), order[:n])  # every image once, in order
        assert batches_per_epoch(n, size, smallest) == len(sizes)
    write_folder(tmp_path / "data" / "train", per_class=11)  # 3 classes: 33 images
    write_folder(tmp_path / "data" / "val", per_class=2, seed=1)
    args = ["classify", "train", "--data", str(tmp_path / "data"), "--model", "resnet18"]
    args += ["--image-size", "32", "--batch-size", "32", "--epochs", "1"]
    assert main([*args, "--out", str(tmp_path / "run")]) == 0


def test_a_batch_larger_than_the_training_split_is_said() -> None:
    """More images a batch than the split holds: each epoch one step of all of them, warned
    for a new run (a resumed one was warned when it began)."""
    with pytest.warns(UserWarning, match=r"^--batch-size 5,000 is more than the 1,257 training "):
        assert batches_per_epoch(1_257, 5_000, warn=True) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert batches_per_epoch(1_257, 5_000) == 1  # resumed: nothing said
        assert batches_per_epoch(1_257, 1_257, warn=True) == 1  # exactly one batch: as asked


def test_one_image_per_batch_is_refused_where_batch_norm_needs_more() -> None:
    """ResNet-18 at 32 px ends in 1x1 maps: one image per batch (or per process) cannot train
    its batch norm; at 64 px (2x2 maps), or with two images per process, it can."""
    from cnnlab.models.backbone import check_batch_of_one

    model = cnnlab.create_model("resnet18", num_classes=3).train()
    with pytest.raises(CnnlabError, match=r"--batch-size 1: resnet18's batch norm meets 1x1"):
        check_batch_of_one(model, (3, 32, 32), 1, "resnet18")
    with pytest.raises(CnnlabError, match=r"--batch-size 3 over 2 processes: .* use 4 or more"):
        check_batch_of_one(model, (3, 32, 32), 3, "resnet18", processes=2)
    check_batch_of_one(model, (3, 32, 32), 4, "resnet18", processes=2)
    check_batch_of_one(model, (3, 64, 64), 1, "resnet18")
    check_batch_of_one(model.eval(), (3, 32, 32), 1, "resnet18")  # frozen norms: fine


def test_the_one_cycle_schedule_takes_any_number_of_steps() -> None:
    """torch's OneCycleLR divided by zero when its warm-up ended at step 0 (10 steps in all at
    10%: `detect train --images 200 --epochs 2`); elsewhere the schedule is torch's own."""
    from cnnlab.engine.runlog import one_cycle

    def lrs(schedule: torch.optim.lr_scheduler.LRScheduler, n: int) -> list[float]:
        out = []
        for _ in range(n):
            out.append(schedule.get_last_lr()[0])
            schedule.optimizer.step()
            schedule.step()
        return out

    def sgd() -> torch.optim.Optimizer:
        return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)

    with pytest.raises(ZeroDivisionError):
        torch.optim.lr_scheduler.OneCycleLR(sgd(), 0.1, total_steps=10, pct_start=0.1)
    for warmup in (0.1, 0.3):
        for n in range(1, 61):
            got = lrs(one_cycle(sgd(), n, warmup), n)
            assert all(math.isfinite(v) and 0 < v <= 0.1 + 1e-12 for v in got), (warmup, n)
    for warmup in (0.1, 0.3, 0.5):  # a single step: not at the end (0.1 / 25e4), where it
        first = lrs(one_cycle(sgd(), 1, warmup), 1)[0]  # trained nothing
        assert first > 0.05 if warmup < 0.5 else first >= 0.1 / 25 - 1e-12  # (0.5: warm-up's start)
    ten = lrs(one_cycle(sgd(), 10), 10)
    assert ten[0] < max(ten) > 0.09 and ten[-1] < ten[0]  # up near the peak, then down
    torch_20 = torch.optim.lr_scheduler.OneCycleLR(sgd(), 0.1, total_steps=20, pct_start=0.1)
    assert lrs(one_cycle(sgd(), 20), 20) == lrs(torch_20, 20)
    # each parameter group rises to its own lr (a backbone's lower): the optimizer's, kept
    groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in (0.1, 0.01)]
    two = one_cycle(torch.optim.SGD(groups, lr=0.1), 20)
    seen = []
    for _ in range(20):
        seen.append(two.get_last_lr())
        two.optimizer.step()
        two.step()
    assert [max(s[i] for s in seen) for i in (0, 1)] == pytest.approx([0.1, 0.01], rel=0.02)


def test_sigterm_stops_like_ctrl_c_and_says_how_to_continue(tmp_path: Path) -> None:
    """A batch scheduler's SIGTERM (or `kill`, `timeout`) used to end a run without a word; it
    stops as Ctrl-C does, exit 143, with the --resume that continues from the last epoch."""
    out = tmp_path / "run"
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [*CLI, "classify", "train", "--epochs", "30", "--out", str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_epochs(out, 1, proc)  # an epoch is saved
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-2000:]
    assert err.strip().splitlines()[-1] == (
        f"cnnlab: terminated; `cnnlab classify train --resume {out / 'last.pt'}` continues "
        "from the last finished epoch"
    )
    assert 1 <= load_checkpoint(out / "last.pt")["epoch"] < 30


def test_two_processes_resumed_end_as_an_unbroken_run(tmp_path: Path) -> None:
    """torchrun with 2 processes and random crops, stopped by SIGTERM after an epoch and resumed
    on 2 processes: the weights of a run never stopped. Each rank draws its own crops; last.pt
    used to hold rank 0's generator only, which every rank then took on resume."""

    args = ["classify", "train", "--epochs", "4", "--batch-size", "64", "--augment", "crop"]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    run = subprocess.run(
        torchrun(*args, "--out", str(whole)), env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    proc = subprocess.Popen(
        torchrun(*args, "--out", str(cut)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_epochs(cut, 1, proc)  # epoch 1 is saved
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    epoch = load_checkpoint(cut / "last.pt")["epoch"]
    assert 1 <= epoch < 4, "the run should stop part-way"
    run = subprocess.run(
        torchrun("classify", "train", "--resume", str(cut / "last.pt")),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    a, b = weights(whole / "last.pt"), weights(cut / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_of_the_same_model_and_classes_loads_every_tensor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Starting from a run of the same model on the same classes keeps nothing fresh, and the
    line says so (it read "0 tensors kept fresh: ")."""
    first = train_classifier(ClassifyTrainConfig(epochs=1, out=str(tmp_path / "a")))
    argv = ["classify", "train", "--epochs", "1", "--out", str(tmp_path / "b")]
    assert main([*argv, "--pretrained", str(first.run_dir / "best.pt")]) == 0
    said = " ".join(capsys.readouterr().err.split())  # rich wraps the line at 80 columns
    assert "best.pt (every tensor)" in said and "kept fresh" not in said


def test_a_run_first_says_what_it_trains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before its first step a run names the model, its parameters (and how many train, when
    some are frozen) and input, the data's classes and split sizes, the device and precision."""
    from cnnlab.engine.classify import data_from_config
    from cnnlab.engine.runlog import describe_data

    argv = ["classify", "train", "--epochs", "1", "--out", str(tmp_path / "run")]
    assert main([*argv, "--freeze", "backbone", "--precision", "fp32"]) == 0
    said = " ".join(capsys.readouterr().err.split())  # rich wraps the line at 80 columns
    warned = (  # a frozen backbone that was never trained: said first
        "cnnlab: warning: --freeze backbone without --pretrained: the frozen layers keep their "
        "random initial weights (give --pretrained FILE to train on features learned elsewhere) "
    )
    assert said.startswith(warned)
    said = said.removeprefix(warned)
    model = cnnlab.create_model("lenet5")
    head = sum(p.numel() for n, p in model.named_parameters() if n.startswith("head."))
    total = sum(p.numel() for p in model.parameters())
    n = {k: len(v) for k, v in data_from_config(ClassifyTrainConfig()).splits.items()}
    assert said.startswith(
        f"lenet5: {total:,} parameters ({head:,} trained), 1x32x32 inputs | digits: 10 classes, "
        f"{n['train']:,} train / {n['val']} val / {n['test']} test images | cpu, fp32 "
    )
    # splits in the order they are used, whatever the dict's; empty ones left out
    assert describe_data("s", 1, {"test": range(3), "val": [], "train": range(1_200)}) == (
        "s: 1 class, 1,200 train / 3 test images"
    )


@pytest.mark.parametrize(
    "task, evaluator, argv",
    [
        ("localize", "answers", ["--images", "32"]),
        ("detect", "detections", ["--images", "12"]),
        ("segment", "score_maps", ["--images", "12"]),
    ],
)
def test_each_epoch_validates_as_it_trains_and_the_test_is_scored_in_fp32(
    task: str, evaluator: str, argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """localize, detect and segment train: every epoch's validation runs the network with the
    training's settings (bf16 autocast and/or channels-last, as config.json records them), the
    reported test figures in plain float32 (PyTorch's default, as `eval` scores them), in one
    pass over the test split, which its figure of mistakes reuses."""
    import importlib
    import inspect

    from cnnlab.engine.performance import FP32

    engine = importlib.import_module(f"cnnlab.engine.{task}")
    real = getattr(engine, evaluator)
    seen: list[SpeedSettings] = []

    def recorded(*args, **kwargs):  # type: ignore[no-untyped-def]
        bound = inspect.signature(real).bind(*args, **kwargs)
        seen.append(bound.arguments.get("settings", FP32))
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, evaluator, recorded)
    out = tmp_path / "run"
    common = ["--image-size", "32", "--epochs", "2", "--out", str(out)]
    assert main([task, "train", *argv, *common]) == 0
    trained = SpeedSettings(**json.loads((out / "config.json").read_text())["settings"])
    assert trained != FP32  # auto chose a layout or bf16 here: the two paths differ
    assert seen == [trained, trained, FP32]
