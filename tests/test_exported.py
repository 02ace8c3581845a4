"""predict --onnx for the localiser, the detector and the segmenter: the exported graph run by
ONNX Runtime, then decoded in PyTorch as a checkpoint's output is, gives the checkpoint's rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from cnnlab.cli import main
from cnnlab.data.scenes import make_scenes

pytest.importorskip("onnxruntime")


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _photos(tmp_path: Path, size: int) -> list[str]:
    """Two scene photos, one stretched twice as wide: rows in each file's own pixels."""
    scene = make_scenes(1, seed=11, image_size=size, min_objects=2, max_objects=3)[0].image
    Image.fromarray(scene).save(tmp_path / "square.png")
    wide = Image.fromarray(scene).resize((2 * size, size), Image.Resampling.NEAREST)
    wide.save(tmp_path / "wide.png")
    return [str(tmp_path / "square.png"), str(tmp_path / "wide.png")]


def _trained(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, *extra: str):
    """A checkpoint trained briefly on scenes and its ONNX export."""
    out = tmp_path / command
    argv = [command, "train", "--images", "200", "--epochs", "2", "--out", str(out), *extra]
    assert main([*argv, "--json"]) == 0
    onnx_path = tmp_path / f"{command}.onnx"
    assert main(["export", str(out / "best.pt"), "-o", str(onnx_path), "--json"]) == 0
    capsys.readouterr()
    return str(out / "best.pt"), str(onnx_path)


def _both(capsys: pytest.CaptureFixture[str], argv: list[str], ckpt: str, onnx: str) -> tuple:
    assert main([argv[0], argv[1], "--checkpoint", ckpt, *argv[2:], "--json"]) == 0
    torch_rows = _last_json(capsys)["predictions"]
    assert main([argv[0], argv[1], "--onnx", onnx, *argv[2:], "--json"]) == 0
    return torch_rows, _last_json(capsys)["predictions"]


def test_localiser_with_landmarks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt, onnx = _trained(tmp_path, capsys, "localize", "--image-size", "32", "--landmarks")
    files = _photos(tmp_path, 32)
    ours, theirs = _both(
        capsys, ["localize", "predict", *files, "-o", str(tmp_path / "l.png")], ckpt, onnx
    )
    assert len(ours) == len(theirs) == 2
    for a, b in zip(ours, theirs, strict=True):
        assert a["source"] == b["source"] and a["class"] == b["class"]
        assert b["object_probability"] == pytest.approx(a["object_probability"], abs=1e-4)
        assert b["box_xyxy"] == pytest.approx(a["box_xyxy"], abs=0.02)
        assert len(b["landmarks"]) == 5
        flat = [v for point in a["landmarks"] for v in point]
        assert [v for point in b["landmarks"] for v in point] == pytest.approx(flat, abs=0.02)


def test_detector(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt, onnx = _trained(tmp_path, capsys, "detect", "--image-size", "64")
    files = _photos(tmp_path, 64)
    argv = ["detect", "predict", *files, "--score-threshold", "0.05", "-o", str(tmp_path / "d.png")]
    ours, theirs = _both(capsys, argv, ckpt, onnx)
    for a, b in zip(ours, theirs, strict=True):  # decoding and NMS in PyTorch after the graph
        assert a["source"] == b["source"] and a["image_size"] == b["image_size"]
        assert len(a["detections"]) == len(b["detections"]) > 0
        for da, db in zip(a["detections"], b["detections"], strict=True):
            assert da["label"] == db["label"]
            assert db["score"] == pytest.approx(da["score"], abs=1e-4)
            assert db["box_xyxy"] == pytest.approx(da["box_xyxy"], abs=0.05)


def test_segmenter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt, onnx = _trained(tmp_path, capsys, "segment", "--image-size", "32")
    files = _photos(tmp_path, 32)
    ours, theirs = _both(
        capsys, ["segment", "predict", *files, "--out", str(tmp_path / "m")], ckpt, onnx
    )
    for a, b in zip(ours, theirs, strict=True):  # the arg-max at the file's size
        assert a["source"] == b["source"]
        total = sum(a["pixel_counts"].values())
        assert sum(b["pixel_counts"].values()) == total
        for name, n in a["pixel_counts"].items():
            assert abs(b["pixel_counts"][name] - n) <= total * 0.002, (name, n, b["pixel_counts"])


def test_what_an_onnx_file_cannot_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The wrong task, no image files (new scenes need the run's settings), both or neither of
    --checkpoint and --onnx, and a file exported before the metadata decoding needs."""
    import onnx

    ckpt, onnx_path = _trained(tmp_path, capsys, "detect", "--image-size", "64")
    files = _photos(tmp_path, 64)

    def error(*argv: str) -> str:
        assert main(list(argv)) == 2
        return capsys.readouterr().err.strip()

    assert error("segment", "predict", "--onnx", onnx_path, *files).endswith(
        "detect.onnx: exported from the detection model 'yolo', not from a segmenter"
    )
    assert error("classify", "predict", "--onnx", onnx_path, *files).endswith(
        "not from a classifier"
    )
    assert error("detect", "predict", "--onnx", onnx_path).endswith(
        "with --onnx, give image files (new scenes need the run's settings)"
    )
    assert error("detect", "predict", "--onnx", onnx_path, "--checkpoint", ckpt, *files).endswith(
        "give --checkpoint or --onnx, not both"
    )
    assert "give --checkpoint (a run's best.pt" in error("localize", "predict", *files)
    graph = onnx.load(onnx_path)  # as cnnlab before this wrote it: no anchors beside the graph
    (entry,) = [e for e in graph.metadata_props if e.key == "cnnlab"]
    meta = json.loads(entry.value)
    del meta["anchors"]
    entry.value = json.dumps(meta)
    onnx.save(graph, str(tmp_path / "old.onnx"))
    assert error("detect", "predict", "--onnx", str(tmp_path / "old.onnx"), *files).endswith(
        "exported without its anchors, which decoding needs (an earlier cnnlab wrote it): "
        "export the checkpoint again"
    )
