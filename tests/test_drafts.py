"""Predicted boxes written as a labelling tool's dataset (--as-dataset --dataset-format): each
format read back by its own reader gives the boxes written, clipped to the image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import main
from cnnlab.data.drafts import in_image, write_draft
from cnnlab.data.labelme import read_labelme_folder
from cnnlab.data.voc_folder import read_voc_folder
from cnnlab.data.yolo import read_yolo_folder

NAMES = ["cat", "café"]  # a name beyond ASCII survives every format


def _photos(tmp_path: Path) -> list[Path]:
    """Two photos both called a.png (in two folders) and a b.jpg of another size."""
    rng = np.random.default_rng(0)
    paths = [tmp_path / "x" / "a.png", tmp_path / "y" / "a.png", tmp_path / "b.jpg"]
    for path, (w, h) in zip(paths, [(40, 30), (40, 30), (64, 48)], strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return paths


def test_boxes_are_clipped_to_their_image() -> None:
    assert in_image((-3.0, 2.5, 50.0, 10.0), (40, 30)) == (0.0, 2.5, 40.0, 10.0)
    assert in_image((41.0, 2.0, 50.0, 10.0), (40, 30)) is None  # wholly outside: no area
    assert in_image((5.0, 7.0, 5.0, 9.0), (40, 30)) is None  # a line


@pytest.mark.parametrize("kind", ["yolo", "voc", "labelme"])
def test_each_format_reads_back_as_written(tmp_path: Path, kind: str) -> None:
    photos = _photos(tmp_path)
    objects = [
        [(0, (2.0, 3.0, 20.5, 25.0)), (1, (-5.0, 10.0, 45.0, 29.0))],  # the second clipped
        [],  # looked at: nothing there
        [(1, (10.0, 8.0, 30.0, 40.0)), (0, (70.0, 0.0, 80.0, 10.0))],  # the second outside
    ]
    sizes = [(40, 30), (40, 30), (64, 48)]
    folder = tmp_path / "draft"
    written = write_draft(folder, NAMES, list(zip(photos, objects, sizes, strict=True)), kind)
    assert written == {
        "folder": str(folder),
        "format": kind,
        "images": 3,
        "boxes": 3,
        "no_area": 1,
    }
    want = [  # (class, box in pixels), as clipped
        [(0, (2.0, 3.0, 20.5, 25.0)), (1, (0.0, 10.0, 40.0, 29.0))],
        [],
        [(1, (10.0, 8.0, 30.0, 40.0))],
    ]
    if kind == "yolo":
        items, names = read_yolo_folder(folder)
        files = [i.image for i in items]
        got = [
            [
                (int(c), (cx - w / 2) * sx, (cy - h / 2) * sy, (cx + w / 2) * sx, (cy + h / 2) * sy)
                for c, (cx, cy, w, h) in zip(i.labels, i.boxes_cxcywh, strict=True)
            ]
            for i, (sx, sy) in zip(items, [(40, 30), (40, 30), (64, 48)], strict=True)
        ]
    elif kind == "voc":
        items, names = read_voc_folder(folder)
        files = [i.image for i in items]
        got = [
            [
                (int(c), x1 * sx, y1 * sy, x2 * sx, y2 * sy)
                for c, (x1, y1, x2, y2) in zip(i.labels, i.boxes_xyxy, strict=True)
            ]
            for i, (sx, sy) in zip(items, sizes, strict=True)
        ]
    else:
        items, names = read_labelme_folder(folder)
        files = [i.image for i in items]
        got = [
            [(int(c), *p.min(0), *p.max(0)) for c, p in zip(i.labels, i.polygons, strict=True)]
            for i in items
        ]
    assert names == NAMES
    # where two share a stem, every name is numbered (distinct_stems); each a copy byte for byte
    assert sorted(f.name for f in files) == ["0_a.png", "1_a.png", "2_b.jpg"]
    by_name = dict(zip((f.name for f in files), got, strict=True))
    for name, photo, boxes in zip(["0_a.png", "1_a.png", "2_b.jpg"], photos, want, strict=True):
        copied = next(f for f in files if f.name == name)
        assert copied.read_bytes() == photo.read_bytes()
        flat = [(c, *b) for c, b in boxes]
        np.testing.assert_allclose(
            np.reshape(by_name[name], (-1, 5)), np.reshape(flat, (-1, 5)), atol=1e-4
        )  # YOLO: 6 decimals of the side


def test_detect_predict_writes_the_chosen_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """detect predict --dataset-format labelme: the rows' boxes, as labelme rectangles the
    detection loader trains on; without --as-dataset the option is refused."""
    run = tmp_path / "run"
    argv = ["detect", "train", "--images", "40", "--epochs", "1", "--image-size", "32"]
    assert main([*argv, "--out", str(run)]) == 0
    photos = [str(p) for p in _photos(tmp_path)]
    argv = ["detect", "predict", "--checkpoint", str(run / "best.pt"), *photos]
    draft = tmp_path / "draft"
    capsys.readouterr()
    more = ["--score-threshold", "0.01", "--as-dataset", str(draft), "--dataset-format", "labelme"]
    assert main([*argv, *more, "--json"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result["dataset"]["format"] == "labelme" and result["dataset"]["boxes"] > 0
    shapes = json.loads((draft / "2_b.json").read_text(encoding="utf-8"))["shapes"]
    (row,) = [r for r in result["predictions"] if r["source"].endswith("b.jpg")]
    want = [[[*d["box_xyxy"][:2]], [*d["box_xyxy"][2:]]] for d in row["detections"]]
    clipped = np.clip(np.asarray(want).reshape(-1, 2, 2), 0, [64, 48])
    np.testing.assert_allclose(
        np.asarray([s["points"] for s in shapes]).reshape(-1, 2, 2), clipped, atol=0.006
    )
    assert {s["shape_type"] for s in shapes} <= {"rectangle"}
    assert [s["label"] for s in shapes] == [d["label"] for d in row["detections"]]
    argv = ["detect", "train", "--data", str(draft), "--epochs", "1", "--image-size", "32"]
    assert main([*argv, "--out", str(tmp_path / "again"), "--json"]) == 0
    capsys.readouterr()
    # a threshold no box reaches: the images are written, and the line says why no box is
    empty = ["--score-threshold", "1", "--as-dataset", str(tmp_path / "empty")]
    assert main(["detect", "predict", "--checkpoint", str(run / "best.pt"), *photos, *empty]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "and 0 boxes as a yolo dataset" in said
    assert "none scored 1 or more (a lower --score-threshold keeps more)" in said
    assert (
        main(
            [
                "detect",
                "predict",
                "--checkpoint",
                str(run / "best.pt"),
                *photos[:1],
                "--dataset-format",
                "voc",
            ]
        )
        == 2
    )
    assert "--dataset-format is --as-dataset's layout" in capsys.readouterr().err


def _hand_made_map() -> np.ndarray:
    """A 40 x 40 map: two regions of class 1, an L of class 2, a 2-pixel speck of class 2."""
    mask = np.zeros((40, 40), np.uint8)
    mask[2:12, 3:20] = 1
    mask[25:38, 28:39] = 1
    mask[20:35, 2:8] = mask[30:35, 2:20] = 2
    mask[15, 30:32] = 2  # a speck
    return mask


def test_a_map_becomes_a_polygon_a_region() -> None:
    from cnnlab.data.drafts import map_polygons

    polygons, specks = map_polygons(_hand_made_map(), min_pixels=4)
    assert [c for c, _ in polygons] == [1, 2, 1] and specks == 1  # larger regions first
    # along the pixels' edges (marching squares cuts a corner by a quarter pixel)
    np.testing.assert_allclose(polygons[0][1].min(0), [3, 2], atol=0.25)
    np.testing.assert_allclose(polygons[0][1].max(0), [20, 12], atol=0.25)


@pytest.mark.parametrize("kind", ["labelme", "yolo"])
def test_map_drafts_read_back_as_the_map(tmp_path: Path, kind: str) -> None:
    """Written as polygons and read by the loader segment train uses, the map comes back pixel
    for pixel but for the speck; a hole is filled (a polygon has none)."""
    from cnnlab.data.drafts import add_map_draft, begin_map_draft
    from cnnlab.engine.segment_data import labelme_segmentation, yolo_segmentation

    mask = _hand_made_map()
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 40, 3), 99, np.uint8)).save(photo)
    frame = np.full((40, 40, 3), 7, np.uint8)  # a video's frame: no file, written as a PNG
    holed = mask.copy()
    holed[5:8, 8:12] = 0  # a hole in the first region
    names = ["background", "road", "café"]
    folder = tmp_path / "draft"
    begin_map_draft(folder, names, kind)
    assert add_map_draft(folder, kind, names, photo, "photo", mask) == (3, 1)
    assert add_map_draft(folder, kind, names, "clip.mp4#frame=3", "clip_3", holed, frame) == (3, 1)
    read = labelme_segmentation if kind == "labelme" else yolo_segmentation
    data = read(folder, 40)
    assert data.class_names == names
    without_speck = mask.copy()
    without_speck[15, 30:32] = 0
    for got in data.masks:  # both: the hole filled again
        assert np.array_equal(got.numpy(), without_speck)
    assert sorted(int(i.float().mean()) for i in data.images) == [7, 99]


def test_segment_predict_writes_polygons_for_a_labelling_tool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """segment predict --dataset-format labelme: a polygon a region of each map (as
    map_polygons finds them in the map PNG it wrote), read back by labelme's loader onto the
    map but for specks and holes; yolo alike."""
    from cnnlab.data.drafts import MIN_REGION, map_polygons
    from cnnlab.data.scenes import make_scenes
    from cnnlab.engine.segment_data import labelme_segmentation, yolo_segmentation

    run = tmp_path / "run"
    argv = ["segment", "train", "--images", "60", "--epochs", "2", "--image-size", "32"]
    assert main([*argv, "--out", str(run)]) == 0
    photos = []
    for i, scene in enumerate(make_scenes(3, seed=4, image_size=48)):
        photos.append(str(tmp_path / f"s{i}.png"))
        Image.fromarray(scene.image).save(photos[-1])
    for kind, read in (("labelme", labelme_segmentation), ("yolo", yolo_segmentation)):
        argv = ["segment", "predict", "--checkpoint", str(run / "best.pt"), *photos, "--out"]
        draft = tmp_path / kind
        more = ["--as-dataset", str(draft), "--dataset-format", kind, "--json"]
        capsys.readouterr()
        assert main([*argv, str(tmp_path / f"maps_{kind}"), *more]) == 0
        result = json.loads(capsys.readouterr().out.splitlines()[-1])
        maps = [np.asarray(Image.open(r["map"])) for r in result["predictions"]]
        found = [map_polygons(m, max(4, round(MIN_REGION * m.size))) for m in maps]
        assert result["dataset"] == {
            "folder": str(draft),
            "format": kind,
            "images": 3,
            "polygons": sum(len(p) for p, _ in found),
            "specks": sum(s for _, s in found),
        }
        assert result["dataset"]["polygons"] > 0
        data = read(draft, 48)
        agree = np.mean([np.mean(d.numpy() == m) for d, m in zip(data.masks, maps, strict=True)])
        assert agree > 0.9, agree
