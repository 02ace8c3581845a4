"""Video files: read a frame at a time, predicted on by detect and localize, written back with
the boxes drawn."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnlab.cli import main
from cnnlab.data.scenes import make_scenes
from cnnlab.errors import CnnlabError

av = pytest.importorskip("av")

from cnnlab.data.video import (  # noqa: E402
    Seconds,
    frame_step,
    read_frames,
    video_info,
    video_of,
    write_video,
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """36 scenes as a 10 fps video, 96 x 96."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    assert write_video(path, (s.image for s in make_scenes(36, seed=9, image_size=96)), 10) == 36
    return path


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("detector")
    argv = ["detect", "train", "--images", "60", "--epochs", "1", "--image-size", "32"]
    assert main([*argv, "--out", str(out)]) == 0
    return out / "best.pt"


def test_frames_come_back_as_written(clip: Path, tmp_path: Path) -> None:
    scenes = make_scenes(36, seed=9, image_size=96)
    frames = list(read_frames(clip))
    assert len(frames) == 36 and frames[0].shape == (96, 96, 3) and frames[0].dtype == np.uint8
    assert video_info(clip) == (36, 10.0)
    error = np.mean(
        [np.abs(f.astype(int) - s.image).mean() for f, s in zip(frames, scenes, strict=True)]
    )
    assert error < 12  # H.264 is lossy; another video's frames would be ~60 apart
    odd = tmp_path / "odd.mp4"  # 4:2:0 colour needs even sides: the last row and column go
    write_video(odd, [np.zeros((33, 45, 3), np.uint8)] * 3, 5)
    assert [f.shape for f in read_frames(odd)] == [(32, 44, 3)] * 3


def test_detect_predict_on_a_video_is_predict_on_its_frames(
    clip: Path, detector: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each frame a row named clip.mp4#frame=i, with the detections the same frames get when a
    program passes them in memory (the Detector is the oracle); --out writes the video again
    with the boxes drawn, frame for frame."""
    from cnnlab import Detector

    argv = ["detect", "predict", "--checkpoint", str(detector), str(clip), "--score-threshold"]
    assert main([*argv, "0.05", "--out", str(tmp_path / "drawn"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.splitlines()[-1])["predictions"]
    assert [r["source"] for r in rows] == [f"{clip}#frame={i}" for i in range(36)]
    assert video_of(rows[7]["source"]) == (str(clip), 7)
    expected = Detector.load(detector).predict_images(list(read_frames(clip)), score_threshold=0.05)
    assert [r["detections"] for r in rows] == [e["detections"] for e in expected]
    assert sum(len(r["detections"]) for r in rows) > 0
    drawn = tmp_path / "drawn" / "clip_boxes.mp4"
    assert {r["drawn"] for r in rows} == {str(drawn)}
    assert video_info(drawn) == (36, 10.0)
    again = tmp_path / "again.mp4"  # the same frames encoded once more, nothing drawn
    write_video(again, read_frames(clip), 10)
    ones = [
        np.abs(a.astype(int) - b).mean()
        for a, b in zip(read_frames(drawn), read_frames(clip), strict=True)
    ]
    twice = [
        np.abs(a.astype(int) - b).mean()
        for a, b in zip(read_frames(again), read_frames(clip), strict=True)
    ]
    boxed = [i for i, r in enumerate(rows) if r["detections"]]
    assert np.mean([ones[i] for i in boxed]) > 2 * np.mean([twice[i] for i in boxed])
    assert main([*argv, "0.05", "-o", str(tmp_path / "boxes.png")]) == 0  # counts frames
    said = " ".join(capsys.readouterr().out.split())
    assert f"wrote {tmp_path / 'boxes.png'} (the first 24 of 36 frames)" in said


def test_the_lines_under_a_table_count_frames_as_frames() -> None:
    """A table or figure that leaves rows out says of what: images, a video's frames, or
    both."""
    from cnnlab.cli.shown import drawn_note, first_shown

    frames = [{"source": f"clip.mp4#frame={i}"} for i in range(60)]
    shown, note = first_shown(frames, None)
    assert len(shown) == 50 and note == "the first 50 of 60 frames shown; --csv FILE writes all"
    assert drawn_note(frames) == " (the first 24 of 60 frames)"
    both = [{"source": "a.png"}, *frames]
    assert first_shown(both, Path("all.csv"))[1] == (
        "the first 50 of 61 images and frames shown; all in all.csv"
    )
    assert drawn_note(frames[:24]) == "" and first_shown(frames[:50], None) == (frames[:50], "")


def test_localize_predict_reads_videos_and_images_together(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "loc"
    argv = ["localize", "train", "--images", "60", "--epochs", "1", "--image-size", "32"]
    assert main([*argv, "--out", str(out)]) == 0
    photo = tmp_path / "photo.png"
    from PIL import Image

    Image.fromarray(make_scenes(1, seed=3, image_size=64)[0].image).save(photo)
    argv = ["localize", "predict", "--checkpoint", str(out / "best.pt"), str(clip), str(photo)]
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.splitlines()[-1])["predictions"]
    assert [r["source"] for r in rows][:2] == [str(photo), f"{clip}#frame=0"] and len(rows) == 37
    from cnnlab import Localizer

    localizer = Localizer.load(out / "best.pt")
    assert json.loads(json.dumps(localizer.predict_video(clip, every=7))) == rows[1::7]


def test_what_video_cannot_do_is_said(
    clip: Path, detector: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(CnnlabError, match=r"broken\.mp4: not a video FFmpeg can read"):
        list(read_frames(broken))
    from cnnlab.data.images import read_image

    with pytest.raises(
        CnnlabError,
        match=r"clip\.mp4: a video, not an image \(classify, detect, localize and segment predict",
    ):
        read_image(clip)
    monkeypatch.setitem(sys.modules, "av", None)  # PyAV not installed
    with pytest.raises(CnnlabError, match=r"video files need PyAV .*pip install 'cnnlab\[video\]'"):
        video_info(clip)


def test_a_videos_frames_become_a_dataset_to_correct(
    clip: Path, detector: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--as-dataset writes each frame as clip_<i>.png (lossless, the frame as decoded) with its
    boxes as YOLO labels: read back, the same boxes as the rows, in the frame's pixels."""
    from cnnlab.data.yolo import read_yolo_folder

    argv = ["detect", "predict", "--checkpoint", str(detector), str(clip), "--score-threshold"]
    assert main([*argv, "0.05", "--as-dataset", str(tmp_path / "d"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.splitlines()[-1])["predictions"]
    items, _ = read_yolo_folder(tmp_path / "d")
    assert [i.image.name for i in items] == [f"clip_{i:06d}.png" for i in range(36)]
    frames = list(read_frames(clip))
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(items[5].image)), frames[5])
    for item, row in zip(items, rows, strict=True):
        cx, cy, w, h = item.boxes_cxcywh.T * 96 if len(item.labels) else np.zeros((4, 0))
        got = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
        want = np.asarray([d["box_xyxy"] for d in row["detections"]]).reshape(-1, 4)
        np.testing.assert_allclose(got, want, atol=0.01)


def test_segment_predict_on_a_video(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each frame's map as the Segmenter gives the same decoded frames (the oracle), a map and
    an overlay PNG a frame, the overlays again as a video, and --as-dataset a mask folder of
    the frames that segment train reads."""
    from PIL import Image

    from cnnlab import Segmenter
    from cnnlab.engine.segment_data import folder_segmentation

    run = tmp_path / "seg"
    argv = ["segment", "train", "--images", "40", "--epochs", "1", "--image-size", "32"]
    assert main([*argv, "--out", str(run)]) == 0
    capsys.readouterr()
    argv = ["segment", "predict", "--checkpoint", str(run / "best.pt"), str(clip), "--out"]
    assert main([*argv, str(tmp_path / "maps"), "--as-dataset", str(tmp_path / "d"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    rows = result["predictions"]
    assert [r["source"] for r in rows] == [f"{clip}#frame={i}" for i in range(36)]
    expected = Segmenter.load(run / "best.pt").predict_files(list(read_frames(clip)))
    streamed = Segmenter.load(run / "best.pt").predict_video(clip, every=9)
    assert next(streamed)["source"] == f"{clip}#frame=0"  # a generator: one map at a time
    for i, (got, want) in enumerate(zip(streamed, expected[9::9], strict=True), start=1):
        assert got["source"] == f"{clip}#frame={9 * i}"
        assert np.array_equal(got["mask"].numpy(), want["mask"].numpy())
        assert got["pixel_counts"] == want["pixel_counts"]
    every = [*argv, str(tmp_path / "tenth"), "--every", "10", "--json"]  # frames 0, 10, 20, 30
    assert main(every) == 0
    tenth = json.loads(capsys.readouterr().out.splitlines()[-1])["predictions"]
    assert [r["source"] for r in tenth] == [f"{clip}#frame={i}" for i in range(0, 36, 10)]
    for row, want in zip(tenth, expected[::10], strict=True):
        assert np.array_equal(np.asarray(Image.open(row["map"])), want["mask"].numpy())
    assert video_info(tmp_path / "tenth" / "clip_overlay.mp4") == (4, 1.0)
    for row, want in zip(rows, expected, strict=True):
        assert np.array_equal(np.asarray(Image.open(row["map"])), want["mask"].numpy())
    assert result["videos"] == [str(tmp_path / "maps" / "clip_overlay.mp4")]
    assert video_info(tmp_path / "maps" / "clip_overlay.mp4") == (36, 10.0)
    data = folder_segmentation(tmp_path / "d", 32)
    assert len(data.images) == 36


def test_every_nth_frame(
    clip: Path, detector: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--every 5 predicts on frames 0, 5, ..., 35 alone, each as the Detector finds it in those
    decoded frames (the oracle); --out's video holds those 8 frames at 10 / 5 fps (as long as
    the clip) and --as-dataset writes those frames, each the frame decoded."""
    from PIL import Image

    from cnnlab import Detector

    frames = list(read_frames(clip))
    assert all(np.array_equal(a, b) for a, b in zip(read_frames(clip, 5), frames[::5], strict=True))
    assert video_info(clip, 5) == (8, 2.0)
    argv = ["detect", "predict", "--checkpoint", str(detector), str(clip), "--every", "5"]
    out, data = tmp_path / "drawn", tmp_path / "d"
    argv += ["--score-threshold", "0.05", "--out", str(out), "--as-dataset", str(data), "--json"]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out.splitlines()[-1])["predictions"]
    assert [r["source"] for r in rows] == [f"{clip}#frame={i}" for i in range(0, 36, 5)]
    expected = Detector.load(detector).predict_images(frames[::5], score_threshold=0.05)
    assert [r["detections"] for r in rows] == [e["detections"] for e in expected]
    in_python = Detector.load(detector).predict_video(clip, score_threshold=0.05, every=5)
    assert in_python == [{k: v for k, v in r.items() if k != "drawn"} for r in rows]
    assert video_info(out / "clip_boxes.mp4") == (8, 2.0)
    written = sorted((data / "images").iterdir())
    assert [p.name for p in written] == [f"clip_{i:06d}.png" for i in range(0, 36, 5)]
    assert np.array_equal(np.asarray(Image.open(written[3])), frames[15])
    # in seconds: 0.5 s of the 10 fps clip is every 5th frame; the stride is the video's own
    half = Seconds(0.5)
    assert frame_step(clip, half) == 5 and video_info(clip, half) == (8, 2.0)
    assert frame_step(clip, Seconds(0.01)) == 1 and frame_step(clip, Seconds(60)) == 600
    assert len(list(read_frames(clip, Seconds(60)))) == 1  # frame 0 alone
    argv[argv.index(str(out))] = str(tmp_path / "seconds")
    argv[argv.index(str(data))] = str(tmp_path / "d2")
    assert main([*argv[:6], "0.5s", *argv[7:]]) == 0
    again = json.loads(capsys.readouterr().out.splitlines()[-1])["predictions"]
    assert [{**r, "drawn": ""} for r in again] == [{**r, "drawn": ""} for r in rows]
    assert video_info(tmp_path / "seconds" / "clip_boxes.mp4") == (8, 2.0)


def test_every_is_checked(
    clip: Path, detector: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = tmp_path / "photo.png"
    from PIL import Image

    Image.fromarray(make_scenes(1, seed=3, image_size=64)[0].image).save(photo)
    for command in ("detect", "localize", "segment"):
        for every in ("3", "2s"):
            argv = [command, "predict", "--checkpoint", str(detector), str(photo), "--every"]
            assert main([*argv, every]) == 2
            said = capsys.readouterr().err
            assert f"--every {every} keeps some frames of a video; give a video" in said
    argv = ["detect", "predict", "--checkpoint", str(detector), str(clip), "--every"]
    for bad in ("0", "0s", "2x", "s", "nans", "infs", "1.5"):
        assert main([*argv, bad]) == 2
        said = capsys.readouterr().err.strip()
        assert said.endswith(
            "argument --every: expected frames (5: every 5th) or seconds (2s: a frame every "
            f"2 s), above 0; got {bad!r}"
        ), bad


def test_classify_predict_on_a_video(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each frame a row, classified as the Classifier classifies the same decoded frames (the
    oracle), after the image files given; --every 2 keeps frames 0, 2, 4...; -o draws frames
    and --as-dataset writes each kept frame, as decoded, into its predicted class's folder."""
    from conftest import COLOURS, make_image, write_folder
    from PIL import Image

    from cnnlab import Classifier

    data, run = write_folder(tmp_path / "colours", per_class=8), tmp_path / "run"
    argv = ["classify", "train", "--data", str(data), "--model", "lenet5", "--epochs", "2"]
    assert main([*argv, "--image-size", "32", "--out", str(run), "--json"]) == 0
    rng = np.random.default_rng(5)
    shots = [np.asarray(make_image(c, rng, 48)) for c in list(COLOURS.values()) * 3]
    video = tmp_path / "shots.mp4"
    write_video(video, shots, 4)
    photo = data / "red" / "000.png"
    argv = ["classify", "predict", "--checkpoint", str(run / "best.pt"), str(photo), str(video)]
    capsys.readouterr()
    assert main([*argv, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.splitlines()[-1])["predictions"]
    assert [r["source"] for r in rows] == [str(photo)] + [f"{video}#frame={i}" for i in range(9)]
    frames = list(read_frames(video))
    expected = Classifier.load(run / "best.pt").predict_images(frames)
    assert [r["top_k"] for r in rows[1:]] == [e["top_k"] for e in expected]
    assert rows[0]["label"] == "red" and all("label" not in r for r in rows[1:])
    figure, dataset = tmp_path / "drawn.png", tmp_path / "sorted"
    more = ["--every", "2", "-o", str(figure), "--as-dataset", str(dataset), "--json"]
    assert main([*argv[:-2], str(video), *more]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    kept = result["predictions"]
    assert [r["source"] for r in kept] == [f"{video}#frame={i}" for i in range(0, 9, 2)]
    assert [r["top_k"] for r in kept] == [e["top_k"] for e in expected[::2]]
    assert Image.open(figure).size[0] > 100
    for r in kept:  # shots_000004.png in the folder of its predicted class, the frame as decoded
        i = int(r["source"].rpartition("=")[2])
        written = dataset / r["prediction"] / f"shots_{i:06d}.png"
        assert np.array_equal(np.asarray(Image.open(written)), frames[i])
    assert sum(result["dataset"]["per_class"].values()) == 5
    # --out: the photo framed in its class's colour, the video again with each frame's class
    drawn = tmp_path / "drawn"
    assert main([*argv, "--every", "3", "--out", str(drawn), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.splitlines()[-1])["predictions"]
    assert [Path(r["drawn"]).name for r in rows] == ["000_labelled.png"] + [
        "shots_labelled.mp4"
    ] * 3
    assert video_info(drawn / "shots_labelled.mp4") == (3, 4 / 3)
    from PIL import ImageColor

    from cnnlab.viz.plots import BOX_COLOURS

    names = Classifier.load(run / "best.pt").class_names
    colour = BOX_COLOURS[names.index(rows[0]["prediction"]) % len(BOX_COLOURS)]
    with Image.open(drawn / "000_labelled.png") as framed:
        assert framed.size == Image.open(photo).size
        assert framed.getpixel((0, framed.height - 1)) == ImageColor.getrgb(colour)


def test_a_folder_stands_for_its_videos_too(
    clip: Path, detector: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a folder, the commands that read videos take the videos under it as well as its
    images (images first, as when both are named); an empty folder names what it looked for."""
    import shutil

    from PIL import Image

    folder = tmp_path / "footage"
    (folder / "day1").mkdir(parents=True)
    shutil.copyfile(clip, folder / "day1" / "clip.mp4")
    Image.fromarray(make_scenes(1, seed=3, image_size=64)[0].image).save(folder / "still.png")
    argv = ["detect", "predict", "--checkpoint", str(detector), str(folder), "--every", "9"]
    assert main([*argv, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.splitlines()[-1])["predictions"]
    video = folder / "day1" / "clip.mp4"
    assert [r["source"] for r in rows] == [str(folder / "still.png")] + [
        f"{video}#frame={i}" for i in (0, 9, 18, 27)
    ]
    (tmp_path / "empty").mkdir()
    assert main(["detect", "predict", "--checkpoint", str(detector), str(tmp_path / "empty")]) == 2
    said = capsys.readouterr().err
    assert "empty: a folder with no image files (.bmp, " in said and "or videos (.avi, " in said


def test_what_out_drew_is_said_in_a_line(tmp_path: Path) -> None:
    from cnnlab.cli.predicting import drawn_said

    rows = [{"source": "p.png", "drawn": "o/p_boxes.png"}] + [
        {"source": f"{v}.mp4#frame={i}", "drawn": f"o/{v}_boxes.mp4"} for v in "ab" for i in (0, 3)
    ]
    assert drawn_said(rows, Path("o")) == (
        "drew the boxes on 1 image and 4 frames of 2 videos in o (a_boxes.mp4, b_boxes.mp4)"
    )
    assert drawn_said(rows[:1], Path("o")) == "drew the boxes on 1 image in o"


def test_faces_read_a_videos_frames(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """faces enroll, verify, identify and remove take videos among the images, a row (an
    enrolled image) a frame, every N-th with --every: the distances of the frames decoded and
    given as images, in the order given; an enrolment of the same frames again adds none, and
    their removal takes them out."""
    from conftest import COLOURS, make_image, write_folder

    from cnnlab.engine.recognition import FaceEncoder

    data, run = write_folder(tmp_path / "people", per_class=6), tmp_path / "run"
    rng = np.random.default_rng(5)
    (data / "yellow").mkdir()
    for i in range(6):
        make_image((220, 200, 40), rng).save(data / "yellow" / f"{i:03d}.png")
    argv = ["faces", "train", "--data", str(data), "--unseen", "blue,yellow", "--steps", "3"]
    assert main([*argv, "--out", str(run), "--json"]) == 0
    video = tmp_path / "shots.mp4"
    write_video(video, [np.asarray(make_image(c, rng, 48)) for c in list(COLOURS.values()) * 3], 4)
    frames = list(read_frames(video))
    db = str(tmp_path / "f.db")
    enrol = ["faces", "enroll", "--checkpoint", str(run / "best.pt"), "--db", db]
    assert main([*enrol, "--name", "shots", str(video), "--every", "3", "--json"]) == 0
    said = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (said["enrolled"], said["skipped"]) == (3, 0)  # frames 0, 3, 6
    assert main([*enrol, "--name", "shots", str(video), "--every", "3", "--json"]) == 0
    said = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (said["enrolled"], said["skipped"]) == (0, 3)
    photos = [str(data / "red" / "000.png"), str(data / "green" / "001.png")]
    assert main([*enrol, "--name", "red", photos[0]]) == 0
    probe = ["--db", db, photos[0], str(video), photos[1], "--every", "4", "--json"]
    capsys.readouterr()
    assert main(["faces", "identify", *probe, "-o", str(tmp_path / "who.png")]) == 0
    rows = json.loads(capsys.readouterr().out.splitlines()[-1])["results"]
    kept = [f"{video}#frame={i}" for i in (0, 4, 8)]
    assert [r["source"] for r in rows] == [photos[0], *kept, photos[1]]
    encoder = FaceEncoder.load(run / "best.pt")
    alike = encoder.identify(encoder.database(db), [photos[0], *frames[::4], photos[1]])
    assert np.allclose([r["distance"] for r in rows], [r["distance"] for r in alike], atol=1e-6)
    assert [r["nearest"] for r in rows] == [r["nearest"] for r in alike]
    assert (tmp_path / "who.png").is_file()
    assert main(["faces", "verify", "--name", "shots", *probe]) == 0
    rows = json.loads(capsys.readouterr().out.splitlines()[-1])["results"]
    assert [r["source"] for r in rows][1:4] == kept and rows[1]["distance"] < 1e-6  # frame 0
    assert main(["faces", "identify", "--db", db, str(video), "--every", "4"]) == 0
    assert " of 3 frames (" in capsys.readouterr().out  # frames 0, 4, 8: called frames
    assert main(["faces", "verify", "--db", db, "--name", "red", photos[0], str(video)]) == 0
    assert " of 10 images and frames are red " in capsys.readouterr().out
    remove = ["faces", "remove", "--db", db, "--name", "shots", str(video), "--every", "3"]
    assert main([*remove, "--json"]) == 0
    said = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert said["removed_images"] == 3 and said["people"] == [{"name": "red", "images": 1}]
    # a gallery whose person folders hold videos: each person gets their own frames only
    gallery = tmp_path / "gallery"
    (gallery / "ann").mkdir(parents=True)
    (gallery / "bo").mkdir()
    (gallery / "ann" / "clip.mp4").write_bytes(video.read_bytes())
    (gallery / "ann" / "photo.png").write_bytes(Path(photos[0]).read_bytes())
    (gallery / "bo" / "photo.png").write_bytes(Path(photos[1]).read_bytes())
    enrol = ["faces", "enroll", "--db", str(tmp_path / "g.db"), "--people", str(gallery)]
    assert main([*enrol, "--checkpoint", str(run / "best.pt"), "--every", "4", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.splitlines()[-1])["people"]
    assert [(r["name"], r["enrolled"]) for r in rows] == [("ann", 4), ("bo", 1)]  # 0, 4, 8
    (gallery / "loose.mp4").write_bytes(video.read_bytes())
    assert main(enrol) == 2
    assert "loose.mp4: a video beside the person folders" in capsys.readouterr().err
