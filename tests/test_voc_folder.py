"""Pascal VOC-style folders of one's own: LabelImg's XML beside the images, CVAT's and Roboflow's
VOC exports, and CVAT's segmentation masks in the colours of its labelmap.txt."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from cnnlab.cli import main
from cnnlab.data.scenes import make_scenes, write_masks, write_voc, write_yolo
from cnnlab.data.voc_folder import read_labelmap, read_voc_folder, voc_xml
from cnnlab.engine.detection_data import voc_folder_data, yolo_folder_data
from cnnlab.engine.segment_data import folder_segmentation
from cnnlab.errors import CnnlabError


def xml(
    filename: str,
    size: tuple[int, int] | None,
    objects: list[tuple[str, tuple[float, float, float, float], int]],
) -> str:
    """An XML file as labelling tools write it: objects ``(name, (xmin, ymin, xmax, ymax),
    difficult)``."""
    size_xml = (
        f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"
        if size
        else ""
    )
    objs = "".join(
        f"<object><name>{n}</name><pose>Unspecified</pose><truncated>0</truncated>"
        f"<difficult>{d}</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, b, d in objects
    )
    return (
        f"<annotation><folder>photos</folder><filename>{filename}</filename>"
        f"<path>C:\\Users\\me\\photos\\{filename}</path>{size_xml}{objs}</annotation>"
    )


def photo(path: Path, w: int = 80, h: int = 60, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)


def test_scenes_as_voc_read_as_their_yolo_and_mask_twins(tmp_path: Path) -> None:
    """The same scenes written as VOC and as YOLO / a mask folder load to the same tensors: the
    YOLO and mask readers are the oracle for the VOC one's boxes, labels and maps."""
    scenes = make_scenes(24, seed=3, image_size=96)
    write_voc(scenes, tmp_path / "voc")
    write_yolo(scenes, tmp_path / "yolo")
    write_masks(scenes, tmp_path / "masks")
    voc, yolo = voc_folder_data(str(tmp_path / "voc"), 64), yolo_folder_data(tmp_path / "yolo", 64)
    assert voc.class_names == yolo.class_names == list(scenes[0].class_names)  # labelmap order
    assert torch.equal(voc.images, yolo.images)
    for a, b, la, lb in zip(voc.boxes, yolo.boxes, voc.labels, yolo.labels, strict=True):
        assert torch.allclose(a, b, atol=1e-5) and torch.equal(la, lb)
    assert sum(len(b) for b in voc.boxes) == sum(len(s.labels) for s in scenes) > 0
    seg, twin = (
        folder_segmentation(tmp_path / "voc", 48),
        folder_segmentation(tmp_path / "masks", 48),
    )
    assert seg.class_names == twin.class_names and torch.equal(seg.masks, twin.masks)
    assert len(seg.masks.unique()) == 4


def test_labelimg_folder_xml_beside_the_images(tmp_path: Path) -> None:
    """LabelImg's own folder: 1-based corners, a tool's 0-based box at the edge clipped, the
    difficult flag, <filename> with the labelling machine's folder, names sorted."""
    root = tmp_path / "photos"
    photo(root / "a.jpg")
    photo(root / "b.png", seed=1)
    photo(root / "c.jpg", seed=2)  # not labelled yet: left out, said so
    (root / "a.xml").write_text(
        xml("a.jpg", (80, 60), [("dog", (11, 21, 50, 60), 0), ("cat", (0, 0, 8, 6), 1)])
    )
    (root / "b.xml").write_text(xml("C:\\photos\\b.png", (80, 60), [("cat", (41, 1, 80, 30), 0)]))
    (root / "orphan.xml").write_text(xml("gone.jpg", (80, 60), [("cat", (1, 1, 5, 5), 0)]))
    with pytest.warns(UserWarning) as caught:
        items, names = read_voc_folder(root)
    said = [str(w.message) for w in caught]
    assert any("1 XML file with no image" in m and "orphan.xml" in m for m in said)
    assert any("1 image with no XML file" in m and "c.jpg" in m for m in said)
    assert names == ["cat", "dog"]
    assert [i.image.name for i in items] == ["a.jpg", "b.png"]
    a = items[0]
    assert a.labels.tolist() == [1, 0] and a.difficult.tolist() == [False, True]
    np.testing.assert_allclose(
        a.boxes_xyxy, [[10 / 80, 20 / 60, 50 / 80, 1.0], [0, 0, 8 / 80, 6 / 60]], atol=1e-6
    )
    with pytest.warns(UserWarning, match="left out"):
        data = voc_folder_data(str(root), 32)
    assert data.difficult[0].tolist() == [False, True]
    assert [t.tolist() for t in data.trained_on(0)[1:]] == [[1]]  # the difficult cat: not taught


def test_class_lists_and_splits(tmp_path: Path) -> None:
    """classes.txt fixes the order and refuses other names; Roboflow's split folders and VOC's
    ImageSets/Main lists are the splits."""
    rob = tmp_path / "roboflow"
    for split, n in (("train", 3), ("valid", 2), ("test", 1)):
        for i in range(n):
            photo(rob / split / f"{split}{i}.jpg", seed=i)
            (rob / split / f"{split}{i}.xml").write_text(
                xml(f"{split}{i}.jpg", (80, 60), [("cat", (1, 1, 20, 20), 0)])
            )
    (rob / "classes.txt").write_text("dog\ncat\n")
    data = voc_folder_data(str(rob), 32)
    assert data.class_names == ["dog", "cat"] and data.labels[0].tolist() == [1]
    assert {k: v.tolist() for k, v in data.splits.items()} == {
        "train": [1, 2, 3],  # the folders in name order: test, train, valid
        "val": [4, 5],
        "test": [0],
    }
    (rob / "classes.txt").write_text("dog\n")
    with pytest.raises(
        CnnlabError, match=r"test0\.xml: class 'cat' is not in classes\.txt \(dog\)"
    ):
        read_voc_folder(rob)

    cvat = tmp_path / "cvat"
    for i in range(4):
        photo(cvat / "JPEGImages" / f"{i:04d}.jpg", seed=i)
        (cvat / "Annotations").mkdir(exist_ok=True)
        (cvat / "Annotations" / f"{i:04d}.xml").write_text(
            xml(f"{i:04d}.jpg", (80, 60), [("car", (1, 1, 30.5, 20.5), 0)])
        )
    (cvat / "labelmap.txt").write_text(
        "# label:color_rgb:parts:actions\nbackground:0,0,0::\ncar:250,50,83::\n"
    )
    (cvat / "ImageSets" / "Main").mkdir(parents=True)
    (cvat / "ImageSets" / "Main" / "train.txt").write_text("0000\n0001\n0003\n")
    (cvat / "ImageSets" / "Main" / "val.txt").write_text("0002\n")
    data = voc_folder_data(str(cvat), 32)
    assert data.class_names == ["car"]  # labelmap's background is the maps' class, not a box's
    assert {k: v.tolist() for k, v in data.splits.items()} == {"train": [0, 1, 3], "val": [2]}
    np.testing.assert_allclose(data.boxes[0].numpy(), [[0, 0, 30.5 / 80, 20.5 / 60]], atol=1e-6)


@pytest.mark.parametrize(
    ("size", "box", "message"),
    [
        (
            (80, 60),
            (10, 10, 90, 30),
            r"a\.xml: box \[10\.0, 10\.0, 90\.0, 30\.0\] of 'cat' lies outside the 80x60",
        ),
        ((80, 60), (10, 10, 5, 30), r"a\.xml: box .* has no area"),
        (
            (160, 120),
            (10, 10, 20, 30),
            r"a\.xml: <size> says 160x120, but a\.jpg is 80x60 \(resized",
        ),
        ((80, 60), ("ten", 10, 20, 30), r"a\.xml: object 'cat' has a malformed <bndbox>"),
    ],
)
def test_bad_xml_is_named(tmp_path: Path, size, box, message: str) -> None:
    photo(tmp_path / "a.jpg")
    (tmp_path / "a.xml").write_text(xml("a.jpg", size, [("cat", box, 0)]))
    with pytest.raises(CnnlabError, match=message):
        read_voc_folder(tmp_path)


def test_missing_or_turned_size_and_broken_xml(tmp_path: Path) -> None:
    photo(tmp_path / "a.jpg")
    (tmp_path / "a.xml").write_text(xml("a.jpg", None, [("cat", (1, 1, 40, 30), 0)]))
    (items, _) = read_voc_folder(tmp_path)  # no <size>: the image file's own 80x60
    np.testing.assert_allclose(items[0].boxes_xyxy, [[0, 0, 0.5, 0.5]], atol=1e-6)
    (tmp_path / "a.xml").write_text(xml("a.jpg", (60, 80), [("cat", (1, 1, 30, 40), 0)]))
    with pytest.raises(CnnlabError, match=r"a\.xml: <size> says 60x80, but a\.jpg is 80x60 \("):
        read_voc_folder(tmp_path)  # turned, with no EXIF tag to say so
    (tmp_path / "a.xml").write_text("<annotation><filename>a.jpg</filename>")
    with pytest.raises(CnnlabError, match=r"a\.xml: malformed XML"):
        read_voc_folder(tmp_path)


def test_cvat_masks_in_labelmap_colours(tmp_path: Path) -> None:
    """CVAT's segmentation export: RGB masks in labelmap.txt's colours (not VOC's), VOC's pale
    border colour as "nobody labelled", a colour no label has named with its file."""
    root = tmp_path / "cvat"
    colours = {"background": (0, 0, 0), "car": (250, 50, 83), "road": (61, 61, 245)}
    (root / "SegmentationClass").mkdir(parents=True)
    (root / "labelmap.txt").write_text(
        "# label:color_rgb:parts:actions\n"
        + "".join(f"{n}:{','.join(map(str, c))}::\n" for n, c in colours.items())
    )
    truth = np.zeros((30, 40), np.int64)
    truth[15:, :] = 2
    truth[5:12, 10:30] = 1
    truth[12, 10:30] = 255
    rgb = np.zeros((30, 40, 3), np.uint8)
    for index, colour in enumerate(colours.values()):
        rgb[truth == index] = colour
    rgb[truth == 255] = (224, 224, 192)
    for stem in ("x", "y"):
        photo(root / "JPEGImages" / f"{stem}.jpg", 40, 30)
        Image.fromarray(rgb).save(root / "SegmentationClass" / f"{stem}.png")
    photo(root / "JPEGImages" / "only_boxes.jpg", 40, 30)  # VOC's JPEGImages holds these too
    seg = folder_segmentation(root, 40)
    assert seg.class_names == ["background", "car", "road"]
    assert seg.masks.shape == (2, 40, 40)
    resized = np.asarray(Image.fromarray(truth.astype(np.uint8)).resize((40, 40), Image.NEAREST))
    assert np.array_equal(seg.masks[0].numpy(), resized)
    rgb[0, 0] = (250, 50, 84)  # a softened brush edge
    Image.fromarray(rgb).save(root / "SegmentationClass" / "y.png")
    with pytest.raises(
        CnnlabError,
        match=r"y\.png: a colour image, not in labelmap\.txt's colours .*\(250, 50, 84\)",
    ):
        folder_segmentation(root, 40)


def test_labelmap_lines_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "labelmap.txt"
    path.write_text("# label:color_rgb:parts:actions\nbackground:0,0,0::\ncar:::\n")
    assert read_labelmap(path) == [("background", (0, 0, 0)), ("car", None)]
    path.write_text("background:0,0,0::\ncar:250,50::\n")
    with pytest.raises(CnnlabError, match=r"labelmap\.txt:2: colour '250,50' is not 'r,g,b'"):
        read_labelmap(path)
    path.write_text("background:0,0,0::\ncar:250,50,83::\ntruck:250,50,83::\n")
    with pytest.raises(CnnlabError, match=r"'car' and 'truck' share the colour \(250, 50, 83\)"):
        read_labelmap(path)


def test_commands_take_a_voc_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``data scenes --format voc`` writes one; detect, localize and segment train on it, and
    ``augment`` takes it for boxes."""
    out = tmp_path / "voc"
    assert main(["data", "scenes", "--format", "voc", "--out", str(out), "--images", "30",
                 "--image-size", "64", "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["format"] == "voc"
    for task in ("detect", "localize", "segment"):
        argv = [task, "train", "--data", str(out), "--epochs", "1", "--image-size", "32"]
        assert main([*argv, "--out", str(tmp_path / task), "--json"]) == 0
        run = Path(json.loads(capsys.readouterr().out.splitlines()[-1])["run_dir"])
        names = torch.load(run / "best.pt", weights_only=True)["class_names"]
        assert names[-3:] == ["pedestrian", "car", "motorcycle"], task  # segment: background too
    assert main(["augment", "--data", str(out), "-o", str(tmp_path / "a.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["task"] == "detect"


def test_a_yolo_folder_with_a_stray_xml_stays_yolo(tmp_path: Path) -> None:
    from cnnlab.data.voc_folder import is_voc_folder

    write_yolo(make_scenes(4, seed=1, image_size=64), tmp_path)
    (tmp_path / "export_info.xml").write_text("<export/>")
    assert not is_voc_folder(tmp_path)
    (tmp_path / "labels").rename(tmp_path / "yolo_labels")
    assert is_voc_folder(tmp_path)


@given(
    w=st.integers(4, 300),
    h=st.integers(4, 300),
    boxes=st.lists(
        st.tuples(*[st.floats(0, 1)] * 4, st.sampled_from(["car", "a&b", "<x>", "ü"])), max_size=5
    ),
)
def test_voc_xml_round_trips_any_boxes(w: int, h: int, boxes: list) -> None:
    """Any integer pixel boxes (VOC's own) and any class names, XML's special characters
    included: written by voc_xml, read back by read_voc_folder as the same relative boxes."""
    import tempfile

    objects = []
    for a, b, c, d, name in boxes:
        x1, x2 = sorted((round(a * (w - 1)), round(c * (w - 1)) + 1))
        y1, y2 = sorted((round(b * (h - 1)), round(d * (h - 1)) + 1))
        objects.append((name, (x1, y1, max(x2, x1 + 1), max(y2, y1 + 1))))
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        Image.new("RGB", (w, h)).save(root / "p.png")
        (root / "p.xml").write_text(voc_xml("p.png", (w, h), objects), encoding="utf-8")
        (items, names) = read_voc_folder(root)
    assert [names[i] for i in items[0].labels] == [n for n, _ in objects]
    expected = np.asarray([b for _, b in objects], np.float64).reshape(-1, 4) / [w, h, w, h]
    np.testing.assert_allclose(items[0].boxes_xyxy, expected, atol=1e-6)


def turned_photo(path: Path, orientation: int, box: tuple[int, int, int, int]) -> None:
    """A 80 x 60 JPEG as a phone stores it, a white box painted on its stored pixels, with
    the EXIF tag saying how to turn it."""
    stored = np.full((60, 80, 3), 40, np.uint8)
    x1, y1, x2, y2 = box
    stored[y1:y2, x1:x2] = 255
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(path, quality=95, exif=exif)


def test_a_phone_photo_labelled_as_stored_is_turned_with_its_boxes(tmp_path: Path) -> None:
    """LabelImg shows a photo as stored and writes the stored size: the boxes are turned with
    the photo, onto the white box as training sees it (read_image turns it; the oracle). A tool
    that turned the photo (the shown size) is taken as it is; a flip <size> cannot tell apart
    is warned of."""
    from cnnlab.data.images import read_image

    turned_photo(tmp_path / "a.jpg", 6, (10, 5, 30, 25))
    as_stored = xml("a.jpg", (80, 60), [("cat", (11, 6, 30, 25), 0)])  # LabelImg's corners
    (tmp_path / "a.xml").write_text(as_stored)
    (item,), _ = read_voc_folder(tmp_path)
    shown = np.asarray(read_image(tmp_path / "a.jpg", "L"))
    assert shown.shape == (80, 60)  # a portrait photo
    rows, cols = np.nonzero(shown > 150)
    white = [cols.min() / 60, rows.min() / 80, (cols.max() + 1) / 60, (rows.max() + 1) / 80]
    np.testing.assert_allclose(item.boxes_xyxy[0], white, atol=0.02)  # JPEG blurs a pixel
    x1, y1, x2, y2 = (float(v) for v in item.boxes_xyxy[0] * [60, 80, 60, 80])
    as_seen = xml("a.jpg", (60, 80), [("cat", (x1 + 1, y1 + 1, x2, y2), 0)])
    (tmp_path / "a.xml").write_text(as_seen)  # a tool that showed it turned: as it is
    (again,), _ = read_voc_folder(tmp_path)
    np.testing.assert_allclose(again.boxes_xyxy, item.boxes_xyxy, atol=1e-6)
    turned_photo(tmp_path / "a.jpg", 3, (10, 5, 30, 25))  # upside down: the size cannot tell
    (tmp_path / "a.xml").write_text(as_stored)
    with pytest.warns(UserWarning, match=r"1 photo with an EXIF orientation .* e\.g\. a\.jpg"):
        (flipped,), _ = read_voc_folder(tmp_path)
    np.testing.assert_allclose(flipped.boxes_xyxy, [[10 / 80, 5 / 60, 30 / 80, 25 / 60]])
