"""The torchvision-weights loader's error handling (no torchvision needed)."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.errors import CnnlabError
from cnnlab.models import load_torchvision_weights


@pytest.fixture
def resnet18_file(tmp_path: Path) -> Path:
    """resnet18's names equal torchvision's, so its own state_dict is a torchvision file."""
    path = tmp_path / "resnet18.pth"
    torch.save(cnnlab.create_model("resnet18").state_dict(), path)
    return path


def test_round_trip(resnet18_file: Path) -> None:
    source = torch.load(resnet18_file, weights_only=True)
    model = load_torchvision_weights(cnnlab.create_model("resnet18"), resnet18_file)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in source.items())


def test_wrong_architecture(resnet18_file: Path) -> None:
    with pytest.raises(CnnlabError, match=r"resnet18.pth: does not fit ResNet \(missing"):
        load_torchvision_weights(cnnlab.create_model("resnet34"), resnet18_file)


def test_head_size_and_ignore_head(resnet18_file: Path) -> None:
    with pytest.raises(CnnlabError, match=r"wrong shape: fc\.weight"):
        load_torchvision_weights(cnnlab.create_model("resnet18", num_classes=5), resnet18_file)
    model = load_torchvision_weights(
        cnnlab.create_model("resnet18", num_classes=5), resnet18_file, ignore_head=True
    )
    source = torch.load(resnet18_file, weights_only=True)
    assert torch.equal(model.conv1.weight, source["conv1.weight"])
    assert model.fc.out_features == 5


def test_unreadable_and_unsupported(resnet18_file: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pth"
    broken.write_bytes(resnet18_file.read_bytes()[:1000])
    with pytest.raises(CnnlabError, match="not a readable weights file"):
        load_torchvision_weights(cnnlab.create_model("resnet18"), broken)
    with pytest.raises(CnnlabError, match="no such weights file"):
        load_torchvision_weights(cnnlab.create_model("resnet18"), tmp_path / "missing.pth")
    # any file at all: a run's metrics.csv made torch's weights-only unpickler raise IndexError
    # (a traceback), and random bytes warned of a "pickle protocol 220" before failing
    from cnnlab.torchfile import load_torch_file

    rng = np.random.default_rng(0)
    junk = [b"epoch,seconds,train_loss\n1,0.2,2.38\n", b"", b"\x80\x02]q\x00(e."[:-1]]
    sizes = rng.integers(1, 400, 60)
    junk += [rng.integers(0, 256, int(n), dtype=np.uint8).tobytes() for n in sizes]
    for k, data in enumerate(junk):
        (tmp_path / f"junk{k}.pt").write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # and no warning on the way
            with pytest.raises(CnnlabError, match=rf"junk{k}.pt: not a readable checkpoint file"):
                load_torch_file(tmp_path / f"junk{k}.pt")
    # what the bytes are, where they say it: a text file's bare "KeyError: 101" was the reason
    reasons = {
        b"epoch,seconds,train_loss\n": "(not a PyTorch file: it begins b'epoch,se')",
        b"": "(an empty file)",
        b"\x80\x02]q\x00(e": "(truncated or corrupt: EOFError)",  # a pickle, cut short
    }
    for data, reason in reasons.items():
        (tmp_path / "notes.pt").write_bytes(data)
        with pytest.raises(CnnlabError) as caught:
            load_torch_file(tmp_path / "notes.pt")
        assert str(caught.value).endswith(f"notes.pt: not a readable checkpoint file {reason}")
    # a zip archive without PyTorch's records: the C++ reader's "Could this error message be
    # improved? If so, please report an enhancement request to PyTorch" stays out of the line
    with zipfile.ZipFile(tmp_path / "zip.pt", "w") as archive:
        archive.writestr("x/data.pkl", b"\x80\x02}q\x00.")
    with pytest.raises(CnnlabError, match=r"zip.pt: .*truncated or corrupt: .*version") as caught:
        load_torch_file(tmp_path / "zip.pt")
    assert "report" not in str(caught.value) and str(caught.value).endswith("false.)")
    # a real checkpoint cut short: was "... central directory. This is an internal miniz
    # error. If yo)", cut mid-word at 120 characters
    torch.save({"w": torch.zeros(1000)}, tmp_path / "whole.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "whole.pt").read_bytes()[:1000])
    with pytest.raises(CnnlabError) as caught:
        load_torch_file(tmp_path / "cut.pt")
    assert str(caught.value).endswith(
        "cut.pt: not a readable checkpoint file (truncated or corrupt: PytorchStreamReader "
        "failed reading zip archive: failed finding central directory (its end is missing: a "
        "save or copy that did not finish))"
    )
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.pt").write_bytes(b"")
    with pytest.raises(CnnlabError, match=r"run: a folder, not a checkpoint file; it holds best"):
        load_torch_file(run)
    with pytest.raises(CnnlabError, match="torchvision has no weights for MobileNetV1"):
        load_torchvision_weights(cnnlab.create_model("mobilenet_v1"), resnet18_file)
    with pytest.raises(CnnlabError, match="googlenet_paper has no torchvision weights"):
        load_torchvision_weights(cnnlab.create_model("googlenet_paper"), resnet18_file)


def test_a_cnnlab_checkpoint_given_as_weights_says_so(tmp_path: Path) -> None:
    """A run's best.pt passed where a torchvision file goes (--weights) names what it is
    instead of listing its keys as 'unexpected'."""
    from cnnlab.engine.checkpoint import save_checkpoint

    model = cnnlab.create_model("resnet18")
    path = tmp_path / "best.pt"
    payload = {"model": "resnet18", "model_kwargs": {}, "state_dict": model.state_dict()}
    save_checkpoint(path, payload)
    with pytest.raises(CnnlabError, match=r"best.pt: a cnnlab checkpoint \(resnet18\), not a"):
        load_torchvision_weights(cnnlab.create_model("resnet18"), path)
