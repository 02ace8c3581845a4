"""predict --onnx for the localiser, the detector and the segmenter: the exported graph run by
ONNX Runtime, then decoded in PyTorch as a checkpoint's output is, gives the checkpoint's rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnlab.cli import main
from cnnlab.data.scenes import make_scenes

pytest.importorskip("onnxruntime")


def _json_line(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict:
    return _json_line(capsys.readouterr().out)


def _photos(tmp_path: Path, size: int) -> list[str]:
    """Two scene photos, one stretched twice as wide: rows in each file's own pixels."""
    scene = make_scenes(1, seed=11, image_size=size, min_objects=2, max_objects=3)[0].image
    Image.fromarray(scene).save(tmp_path / "square.png")
    wide = Image.fromarray(scene).resize((2 * size, size), Image.Resampling.NEAREST)
    wide.save(tmp_path / "wide.png")
    return [str(tmp_path / "square.png"), str(tmp_path / "wide.png")]


def _frames(files: list[str]) -> list:
    """The photos as a program holds them: numpy ``uint8`` arrays ``(H, W, 3)``."""
    import numpy as np

    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


def _unnamed(rows: list[dict]) -> list[dict]:
    """Rows without their ``source`` (a file's path, or ``images[i]``)."""
    return [{k: v for k, v in r.items() if k != "source"} for r in rows]


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
    from cnnlab import Localizer  # from Python: loaded once, the CLI's rows

    frames = _frames(files)
    assert _unnamed(Localizer.load(ckpt, device="cpu").predict_images(frames)) == _unnamed(ours)
    rows = Localizer.load(onnx=onnx).predict_images(frames)
    assert [r["class"] for r in rows] == [r["class"] for r in theirs]
    assert [r["box_xyxy"] for r in rows] == [r["box_xyxy"] for r in theirs]


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
    from cnnlab import Detector  # from Python: loaded once, the CLI's rows, for many frames

    detector, frames = Detector.load(ckpt, device="cpu"), _frames(files)
    assert detector.class_names == ["pedestrian", "car", "motorcycle"]  # the slides' classes
    assert repr(detector) == "Detector(network=OnDevice(YoloDetector on cpu))"  # no weights
    assert _unnamed(detector.predict_images(frames, score_threshold=0.05)) == _unnamed(ours)
    assert _unnamed(detector.predict_images(frames[::-1], 0.05)) == _unnamed(ours[::-1])
    exported = Detector.load(onnx=onnx)
    assert repr(exported) == f"Detector(network=ExportedNetwork({onnx!r}, 'yolo'))"
    assert exported.predict_files(files, score_threshold=0.05) == theirs


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_predictors_on_a_gpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """On a GPU the network runs there and decoding on the CPU: the CPU's rows and maps."""
    from cnnlab import Detector, Segmenter

    files = _photos(tmp_path, 32)
    for command, predictor in (("detect", Detector), ("segment", Segmenter)):
        ckpt, _ = _trained(tmp_path, capsys, command, "--image-size", "32")
        cpu, gpu = (predictor.load(ckpt, device=d).predict_images(files) for d in ("cpu", "cuda"))
        for a, b in zip(cpu, gpu, strict=True):  # within what another kernel's rounding moves
            if command == "segment":
                total = sum(a["pixel_counts"].values())
                for name, n in a["pixel_counts"].items():
                    assert abs(b["pixel_counts"][name] - n) <= total * 0.002
                continue
            assert [d["label"] for d in b["detections"]] == [d["label"] for d in a["detections"]]
            for da, db in zip(a["detections"], b["detections"], strict=True):
                assert db["score"] == pytest.approx(da["score"], abs=1e-3)
                assert db["box_xyxy"] == pytest.approx(da["box_xyxy"], abs=0.1)


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
    from cnnlab import Segmenter  # from Python: loaded once, the CLI's maps

    for segmenter, rows in (
        (Segmenter.load(ckpt, device="cpu"), ours),
        (Segmenter.load(onnx=onnx), theirs),
    ):
        maps = segmenter.predict_images(_frames(files))
        assert [m["pixel_counts"] for m in maps] == [r["pixel_counts"] for r in rows]
        assert [tuple(m["mask"].shape) for m in maps] == [(32, 32), (32, 64)]


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
    assert "unknown device 'gpu'" in error(
        "detect", "predict", "--checkpoint", ckpt, "--device", "gpu"
    )
    from cnnlab import CnnlabError, Detector, Localizer, Segmenter

    with pytest.raises(
        CnnlabError, match=r"^Detector\.load takes a checkpoint or an ONNX file: one of them$"
    ):
        Detector.load()
    with pytest.raises(CnnlabError, match="not from a segmenter"):
        Segmenter.load(onnx=onnx_path)
    folder = str(Path(onnx_path).parent)  # was "no such ONNX file"
    assert error("detect", "predict", "--onnx", folder, *files).endswith(
        f"{folder}: a folder, not an ONNX file"
    )
    assert error("detect", "predict", "--onnx", onnx_path + "x", *files).endswith(
        "detect.onnxx: no such ONNX file"
    )
    with pytest.raises(CnnlabError, match=r"runs on the CPU here .* device 'cuda' is for a"):
        Detector.load(onnx=onnx_path, device="cuda")
    said = error("detect", "predict", "--onnx", onnx_path, *files, "--device", "cuda:1")
    assert said.endswith(
        "detect.onnx: an ONNX file runs on the CPU here (ONNX Runtime's CPU provider); "
        "device 'cuda:1' is for a checkpoint"
    )
    assert main(["detect", "predict", "--onnx", onnx_path, *files, "--device", "cpu"]) == 0
    capsys.readouterr()
    with pytest.raises(
        CnnlabError, match=r"a detection checkpoint \(model 'yolo'\), not a localization one"
    ):
        Localizer.load(ckpt)
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


def _digit_files(tmp_path: Path) -> dict[str, list[str]]:
    """Three PNGs each of the never-seen digits 6, 7 and 8 (light strokes on dark, as UCI's)."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    files: dict[str, list[str]] = {}
    for digit in (6, 7, 8):
        for j, i in enumerate(np.flatnonzero(digits.target == digit)[:3]):
            f = tmp_path / f"d{digit}_{j}.png"
            Image.fromarray((digits.images[i] * 255 / 16).astype(np.uint8)).save(f)
            files.setdefault(str(digit), []).append(str(f))
    return files


def test_face_encoder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """faces enroll/verify/identify/pairs --onnx: the export keeps the encoder's tau and model id,
    so a database enrolled with the checkpoint serves the ONNX file (and the other way round),
    with the checkpoint's verdicts and distances; an image enrolled by one is known to the other."""
    run = tmp_path / "run"
    assert main(["faces", "train", "--steps", "30", "--out", str(run), "--json"]) == 0
    ckpt, onnx_path = str(run / "best.pt"), str(tmp_path / "faces.onnx")
    assert main(["export", ckpt, "-o", onnx_path, "--json"]) == 0
    capsys.readouterr()
    files = _digit_files(tmp_path)
    db = str(tmp_path / "faces.db")
    enrol = ["faces", "enroll", "--db", db, "--name", "six", files["6"][0], "--json"]
    assert main([*enrol, "--checkpoint", ckpt]) == 0
    assert _last_json(capsys)["enrolled"] == 1
    assert main([*enrol, "--onnx", onnx_path]) == 0  # the same image: the same person's already
    assert _last_json(capsys)["enrolled"] == 0
    enrol = ["faces", "enroll", "--db", db, "--name", "seven", files["7"][0], "--json"]
    assert main([*enrol, "--onnx", onnx_path]) == 0
    assert _last_json(capsys)["enrolled"] == 1
    probes = [f for fs in files.values() for f in fs]

    def rows(*argv: str) -> list[dict]:
        assert main(["faces", *argv, "--db", db, *probes, "--json"]) == 0
        return _last_json(capsys)["results"]

    for what in (["identify"], ["verify", "--name", "seven"]):
        ours, theirs = rows(*what, "--checkpoint", ckpt), rows(*what, "--onnx", onnx_path)
        assert len(ours) == len(theirs) == 9
        for a, b in zip(ours, theirs, strict=True):
            assert b["distance"] == pytest.approx(a["distance"], abs=1e-4)
            assert {k: v for k, v in b.items() if k != "distance"} == {
                k: v for k, v in a.items() if k != "distance"
            }
        assert {r["distance"] for r in ours} != {ours[0]["distance"]}  # the probes differ
    # one photo filed under two people: enrolled, with a warning naming who has it already
    enrol = ["faces", "enroll", "--db", db, "--name", "eight", files["8"][0], files["6"][0]]
    assert main([*enrol, "--onnx", onnx_path, "--json"]) == 0
    said = capsys.readouterr()
    assert _json_line(said.out)["enrolled"] == 2
    assert _json_line(said.out)["enrolled_as_others"] == [
        {"source": files["6"][0], "enrolled_as": "six"}
    ]
    assert said.err.strip() == (
        "cnnlab: warning: 1 image of eight already enrolled as someone else, enrolled anyway: "
        f"{files['6'][0]} (six) (faces remove --name NAME IMAGE takes an image out of the "
        "wrong person)"
    )
    assert main([*enrol[:5], "nine", files["6"][0], "--checkpoint", ckpt]) == 0
    assert f"{files['6'][0]} (eight and six)" in capsys.readouterr().err
    assert main([*enrol[:5], "six", files["6"][1], "--checkpoint", ckpt]) == 0  # a new image
    assert capsys.readouterr().err == ""
    (tmp_path / "pairs.txt").write_text("2\nd6 0 1\nd6 0 2\nd6 0 d7 0\nd7 1 d8 2\n")
    root = tmp_path / "people"
    for digit, fs in files.items():
        (root / f"d{digit}").mkdir(parents=True)
        for j, f in enumerate(fs):
            Path(f).rename(root / f"d{digit}" / f"d{digit}_{j:04d}.png")
    gallery = ["faces", "enroll", "--db", db, "--people", str(root), "--onnx", onnx_path]
    assert main([*gallery, "--json"]) == 0  # a gallery's folders, someone's images among them
    rows = {r["name"]: r for r in _last_json(capsys)["people"]}
    assert rows["d6"]["enrolled_as_others"] == [
        {"source": str(root / "d6" / "d6_0000.png"), "enrolled_as": "eight, nine and six"},
        {"source": str(root / "d6" / "d6_0001.png"), "enrolled_as": "six"},
    ]
    for digit, name in (("7", "seven"), ("8", "eight")):
        assert rows[f"d{digit}"]["enrolled_as_others"] == [
            {"source": str(root / f"d{digit}" / f"d{digit}_0000.png"), "enrolled_as": name}
        ]
    pairs = ["faces", "pairs", "--data", str(root), "--pairs", str(tmp_path / "pairs.txt")]
    assert main([*pairs, "--checkpoint", ckpt, "--json"]) == 0
    ours = _last_json(capsys)
    assert main([*pairs, "--onnx", onnx_path, "--json"]) == 0
    theirs = _last_json(capsys)
    assert theirs["pairs"] == ours["pairs"] == 4
    worst = [result.pop("worst_pairs") for result in (theirs, ours)]  # the same pairs, as near
    assert [[(r["first"], r["second"]) for r in rows] for rows in worst[0].values()] == [
        [(r["first"], r["second"]) for r in rows] for rows in worst[1].values()
    ]
    assert theirs == pytest.approx(ours, abs=1e-6)


def test_what_an_exported_face_encoder_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A face command's file of another task, both or neither of --checkpoint and --onnx, and an
    encoder exported before its tau was stored beside the graph."""
    import onnx

    from cnnlab.engine.checkpoint import save_checkpoint
    from cnnlab.registry import create_model

    kwargs = {"backbone": "lenet5", "pool_size": 4}
    model = create_model("siamese", **kwargs)
    payload = {
        "model": "siamese",
        "model_kwargs": kwargs,
        "state_dict": model.state_dict(),
        "input_size": [1, 32, 32],
        "normalization": {"mean": [0.0], "std": [1.0]},
        "config": {"data": "digits"},
        "tau": 0.5,
        "model_id": "0123456789abcdef",
        # a --method similarity encoder's logistic unit, which verification decides by
        "similarity": {"form": "chi2", "weight": [0.5] * 128, "bias": -1.0, "threshold": 0.25},
    }
    ckpt = str(save_checkpoint(tmp_path / "faces.pt", payload))
    onnx_path = str(tmp_path / "faces.onnx")
    assert main(["export", ckpt, "-o", onnx_path, "--json"]) == 0
    capsys.readouterr()
    Image.new("L", (8, 8)).save(tmp_path / "a.png")
    image = str(tmp_path / "a.png")
    db = ["--db", str(tmp_path / "faces.db")]

    def error(*argv: str) -> str:
        assert main(["faces", *argv, *db]) == 2
        return capsys.readouterr().err.strip()

    assert error("enroll", "--name", "a", image).endswith(
        "give --checkpoint (a run's best.pt) or --onnx (a file cnnlab export wrote)"
    )
    assert error(
        "enroll", "--checkpoint", ckpt, "--onnx", onnx_path, "--name", "a", image
    ).endswith("give --checkpoint or --onnx, not both")
    graph = onnx.load(onnx_path)  # as cnnlab before this wrote it: no tau beside the graph
    (entry,) = [e for e in graph.metadata_props if e.key == "cnnlab"]
    meta = json.loads(entry.value)
    assert meta["tau"] == 0.5 and meta["model_id"] == payload["model_id"] and meta["invert_light"]
    assert meta["similarity"] == payload["similarity"]
    from cnnlab.engine.recognition import FaceEncoder

    similarity, threshold = FaceEncoder.load(onnx=onnx_path).learned
    assert (similarity.form, threshold) == ("chi2", 0.25)
    for key in ("tau", "model_id", "invert_light"):
        del meta[key]
    entry.value = json.dumps(meta)
    onnx.save(graph, str(tmp_path / "old.onnx"))
    assert error("enroll", "--onnx", str(tmp_path / "old.onnx"), "--name", "a", image).endswith(
        "old.onnx: exported without the tau to decide by: export the best.pt of cnnlab faces "
        "train (again, if an earlier cnnlab wrote this file)"
    )
    assert not (tmp_path / "faces.db").exists()  # nothing was enrolled, nothing created
    edited = tmp_path / "edited.onnx"  # metadata edited by hand: one line, no traceback
    for broken, why in [
        ("{not json", "is not the JSON object export writes"),
        ("[1, 2]", "is not the JSON object export writes"),
        ('{"task": "embedding"}', "lacks model, input_size, class_names; export the checkpoint"),
    ]:
        entry.value = broken
        onnx.save(graph, str(edited))
        said = error("enroll", "--onnx", str(edited), "--name", "a", image)
        assert said.startswith(f"cnnlab: error: {edited}: its cnnlab metadata {why}"), said
    scenes = tmp_path / "detect"
    assert main(["detect", "train", "--images", "40", "--epochs", "1", "--out", str(scenes)]) == 0
    assert main(["export", str(scenes / "best.pt"), "-o", str(tmp_path / "d.onnx")]) == 0
    capsys.readouterr()
    assert error("enroll", "--onnx", str(tmp_path / "d.onnx"), "--name", "a", image).endswith(
        "d.onnx: exported from the detection model 'yolo', not from a face encoder"
    )
