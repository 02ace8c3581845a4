"""Folders labelled in labelme: one JSON file of shapes per image."""

from __future__ import annotations

import base64
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from cnnlab.cli import main
from cnnlab.data.labelme import read_labelme_folder
from cnnlab.data.scenes import make_scenes, write_labelme, write_yolo_polygons
from cnnlab.engine.detection_data import labelme_data, yolo_folder_data
from cnnlab.engine.segment_data import folder_segmentation, yolo_segmentation
from cnnlab.errors import CnnlabError


def shape(label: str, points: list[list[float]], kind: str = "polygon") -> dict:
    return {"label": label, "points": points, "group_id": None, "shape_type": kind, "flags": {}}


def labelme_file(
    path: Path, shapes: list[dict], size: tuple[int, int] = (40, 30), **extra: object
) -> None:
    """An image ``path.png`` and its ``path.json`` as labelme saves them."""
    Image.fromarray(np.full((size[1], size[0], 3), 90, np.uint8)).save(path.with_suffix(".png"))
    spec = {
        "version": "5.4.1",
        "shapes": shapes,
        "imagePath": path.with_suffix(".png").name,
        "imageData": None,
        "imageHeight": size[1],
        "imageWidth": size[0],
    } | extra
    path.with_suffix(".json").write_text(json.dumps(spec))


def test_scenes_in_labelme_read_as_their_yolo_twins(tmp_path: Path) -> None:
    """The same outlines written as labelme (pixels) and as YOLO polygons (relative): the same
    boxes and images, and class maps painted alike (the YOLO reader is the oracle)."""
    scenes = make_scenes(16, seed=4, image_size=96)
    write_labelme(scenes, tmp_path / "lm")
    write_yolo_polygons(scenes, tmp_path / "yolo")
    a, b = labelme_data(str(tmp_path / "lm"), 64), yolo_folder_data(str(tmp_path / "yolo"), 64)
    assert a.class_names == b.class_names == list(scenes[0].class_names)  # labels.txt's order
    assert torch.equal(a.images, b.images)
    for x, y, lx, ly in zip(a.boxes, b.boxes, a.labels, b.labels, strict=True):
        assert torch.allclose(x, y, atol=1e-5) and torch.equal(lx, ly)
    seg = folder_segmentation(tmp_path / "lm", 64)
    twin = yolo_segmentation(tmp_path / "yolo", 64)
    assert seg.class_names == twin.class_names
    assert (seg.masks == twin.masks).float().mean() > 0.995  # labelme rounds to 0.01 px
    assert len(seg.masks.unique()) == 4


def test_rectangles_circles_points_and_embedded_images(tmp_path: Path) -> None:
    labelme_file(
        tmp_path / "a",
        [
            shape("sign", [[10, 8], [2, 3]], "rectangle"),  # corners in either order
            shape("ball", [[30, 15], [30, 20]], "circle"),  # centre, a point on the rim
            shape("ball", [[5, 5]], "point"),  # no area: left out, said so
        ],
    )
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(tmp_path / "unlabelled.png")
    buffer = io.BytesIO()
    Image.fromarray(np.full((30, 40, 3), 200, np.uint8)).save(buffer, "PNG")
    (tmp_path / "b.json").write_text(  # the image only inside the JSON file
        json.dumps(
            {
                "shapes": [shape("sign", [[0, 0], [40, 0], [40, 30]])],
                "imagePath": "../elsewhere/b.png",
                "imageData": base64.b64encode(buffer.getvalue()).decode(),
                "imageHeight": 30,
                "imageWidth": 40,
            }
        )
    )
    with pytest.warns(UserWarning) as caught:
        items, names = read_labelme_folder(tmp_path)
    said = " | ".join(str(w.message) for w in caught)
    assert "1 shape with no area (a point or a line), left out, e.g. a.json: point 'ball'" in said
    assert "1 image with no JSON file, left out" in said and "unlabelled.png" in said
    assert names == ["ball", "sign"]
    a, b = items
    assert a.labels.tolist() == [1, 0]
    np.testing.assert_allclose(
        a.boxes_xyxy(), [[2 / 40, 3 / 30, 10 / 40, 8 / 30], [25 / 40, 10 / 30, 35 / 40, 20 / 30]]
    )
    assert isinstance(b.image, Image.Image) and np.asarray(b.image).mean() == 200
    with pytest.warns(UserWarning, match="left out"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pycocotools' own, under numpy 2
        seg = folder_segmentation(tmp_path, 40)
    rows, cols = np.nonzero(seg.masks[0].numpy() == 2)  # the sign, stretched 30 -> 40 rows
    assert (cols.min(), cols.max()) == (2, 9) and (rows.min(), rows.max()) == (4, 10)
    assert seg.masks[0, 20, 30] == 1 and seg.masks[0, 0, 0] == 0  # the ball's centre
    assert seg.images[1].float().mean() == 200


@pytest.mark.parametrize(
    ("shapes", "extra", "message"),
    [
        ([shape("", [[1, 1], [5, 5]], "rectangle")], {}, r"a\.json: shape 0: no label"),
        ([shape("x", [[1, "a"], [5, 5]], "rectangle")], {}, r"shape 0: 'points' must be a list"),
        ([shape("x", [[1, 1], [5, 5]])], {}, r"shape 0: a polygon needs 3 points, it has 2"),
        ([], {"imageWidth": 80}, r"a\.json: imageWidth x imageHeight is 80x30, but its image"),
        ([shape("cat", [[1, 1], [5, 5]], "rectangle")], {}, r"label 'cat' is not in labels\.txt"),
    ],
)
def test_bad_files_are_named(tmp_path: Path, shapes: list, extra: dict, message: str) -> None:
    labelme_file(tmp_path / "a", shapes, **extra)
    (tmp_path / "labels.txt").write_text("__ignore__\n_background_\ndog\nx\n")
    with pytest.raises(CnnlabError, match=message):
        read_labelme_folder(tmp_path)


def test_commands_take_a_labelme_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "lm"
    assert main(["data", "scenes", "--format", "labelme", "--out", str(out), "--images", "30",
                 "--image-size", "64"]) == 0  # fmt: skip
    for task in ("detect", "localize", "segment"):
        argv = [task, "train", "--data", str(out), "--epochs", "1", "--image-size", "32"]
        assert main([*argv, "--out", str(tmp_path / task), "--json"]) == 0
        run = Path(json.loads(capsys.readouterr().out.splitlines()[-1])["run_dir"])
        names = torch.load(run / "best.pt", weights_only=True)["class_names"]
        assert names[-3:] == ["pedestrian", "car", "motorcycle"], task
    assert main(["augment", "--data", str(out), "-o", str(tmp_path / "a.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["task"] == "detect"


def test_a_small_shape_in_front_of_a_large_one_keeps_its_pixels(tmp_path: Path) -> None:
    """Listed first or last, the car on the road stays a car (larger shapes painted first)."""
    car, road = (
        shape("car", [[10, 10], [20, 16]], "rectangle"),
        shape("road", [[0, 5], [40, 30]], "rectangle"),
    )
    for order in ([car, road], [road, car]):
        labelme_file(tmp_path / "a", order)
        seg = folder_segmentation(tmp_path, 40)
        assert seg.class_names == ["background", "car", "road"]
        assert (seg.masks[0] == 1).sum() == 10 * 8  # 10 wide, 6 rows stretched 30 -> 40: 8


def test_ai_mask_shapes_are_their_bitmaps(tmp_path: Path) -> None:
    """labelme's "mask" shapes: a bitmap (base64 PNG) over the pixels from the first point to
    the second, both included; a ring keeps its hole, its box is the pixels' edges."""
    ring = np.ones((6, 8), np.uint8)
    ring[2:4, 3:5] = 0
    buffer = io.BytesIO()
    Image.fromarray(ring * 255).save(buffer, "PNG")
    mask = shape("blob", [[4, 5], [11, 10]], "mask") | {
        "mask": base64.b64encode(buffer.getvalue()).decode()
    }
    labelme_file(tmp_path / "a", [mask], size=(40, 40))
    (items, _) = read_labelme_folder(tmp_path)
    np.testing.assert_allclose(items[0].boxes_xyxy(), [[4 / 40, 5 / 40, 12 / 40, 11 / 40]])
    seg = folder_segmentation(tmp_path, 40)
    expected = np.zeros((40, 40), np.int64)
    expected[5:11, 4:12] = ring
    assert np.array_equal(seg.masks[0].numpy(), expected)
    mask["points"] = [[4, 5], [12, 10]]  # one column more than the bitmap has
    labelme_file(tmp_path / "a", [mask], size=(40, 40))
    with pytest.raises(CnnlabError, match=r"shape 0: its mask is 8x6, its points span 9x6"):
        read_labelme_folder(tmp_path)


@given(
    w=st.integers(4, 200),
    h=st.integers(4, 200),
    polygons=st.lists(
        st.lists(st.tuples(st.floats(-5, 205), st.floats(-5, 205)), min_size=3, max_size=8),
        min_size=1,
        max_size=4,
    ),
)
def test_labelme_polygons_round_trip_as_their_bounds(w: int, h: int, polygons: list) -> None:
    """Any polygons, even ones that stray off the image: written by labelme_json, read back as
    the same outlines (to labelme's 0.01 px), each box its outline's bounds clipped to the
    image, and every painted pixel inside some shape's box."""
    import tempfile

    from cnnlab.data.labelme import labelme_json, paint

    shapes = [("thing", np.asarray(p, np.float64)) for p in polygons]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        Image.new("RGB", (w, h)).save(root / "a.png")
        (root / "a.json").write_text(labelme_json("a.png", (w, h), shapes))
        (items, _) = read_labelme_folder(root)
    item = items[0]
    for read, (_, written) in zip(item.polygons, shapes, strict=True):
        np.testing.assert_allclose(read, written, atol=0.006)
    bounds = np.stack([np.r_[p.min(0), p.max(0)] / [w, h, w, h] for _, p in shapes]).clip(0, 1)
    np.testing.assert_allclose(item.boxes_xyxy(), bounds, atol=0.006 / 4)  # 0.01 px of >= 4
    painted = paint(item, 32) > 0
    rows, cols = np.nonzero(painted)
    boxes = item.boxes_xyxy() * 32
    assert all(
        any(b[0] - 1 <= c < b[2] + 1 and b[1] - 1 <= r < b[3] + 1 for b in boxes)
        for r, c in zip(rows, cols, strict=True)
    )


@pytest.mark.parametrize("orientation", [6, 8, 5])
def test_shapes_placed_on_a_turned_photo_as_stored_turn_with_it(
    tmp_path: Path, orientation: int
) -> None:
    """A phone photo (stored 40 x 24, its EXIF tag turning it a quarter) labelled by a tool
    that showed it as stored, so the file gives the stored size: a rectangle and an L-shaped
    mask shape turn with the photo, onto the pixels painted under them as read_image shows the
    photo (the oracle). The shown size is taken as it is."""
    from cnnlab.data.images import read_image

    stored = np.full((24, 40), 60, np.uint8)
    stored[3:10, 4:16] = 130  # under the rectangle
    ell = np.zeros((8, 6), bool)
    ell[:, :2] = ell[-2:, :] = True
    stored[12:20, 30:36][ell] = 250  # under the mask shape
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(tmp_path / "a.png", exif=exif)
    buffer = io.BytesIO()
    Image.fromarray(ell.astype(np.uint8) * 255).save(buffer, "PNG")
    shapes = [
        shape("sign", [[4, 3], [16, 10]], "rectangle"),
        shape("blob", [[30, 12], [35, 19]], "mask")
        | {"mask": base64.b64encode(buffer.getvalue()).decode()},
    ]
    spec = {"shapes": shapes, "imagePath": "a.png", "imageHeight": 24, "imageWidth": 40}
    (tmp_path / "a.json").write_text(json.dumps(spec))
    (item,), names = read_labelme_folder(tmp_path)
    shown = np.asarray(read_image(tmp_path / "a.png", "L"))
    assert item.size == (24, 40) == shown.shape[::-1]
    for k, value in ((names.index("sign"), 130), (names.index("blob"), 250)):
        rows, cols = np.nonzero(shown == value)
        under = [cols.min() / 24, rows.min() / 40, (cols.max() + 1) / 24, (rows.max() + 1) / 40]
        np.testing.assert_allclose(item.boxes_xyxy()[item.labels.tolist().index(k)], under)
    (bitmap,) = [b for b in item.bitmaps if b is not None]
    blob = item.boxes_xyxy()[item.labels.tolist().index(names.index("blob"))]
    x1, y1, x2, y2 = np.rint(blob * [24, 40, 24, 40]).astype(int)
    assert np.array_equal(bitmap, shown[y1:y2, x1:x2] == 250)
    spec |= {"imageHeight": 40, "imageWidth": 24}  # a tool that showed it turned: as it is
    spec["shapes"] = [shape("sign", [[1.0, 2.0], [5.0, 9.0]], "rectangle")]
    (tmp_path / "a.json").write_text(json.dumps(spec))
    (item,), _ = read_labelme_folder(tmp_path)
    np.testing.assert_allclose(item.boxes_xyxy(), [[1 / 24, 2 / 40, 5 / 24, 9 / 40]])
