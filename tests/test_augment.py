"""Augmentation: every slide method runs, geometry moves boxes/masks/keypoints with the image,
PCA colour follows the data's principal components."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from cnnlab.cli import main
from cnnlab.config import DetectConfig
from cnnlab.data.augment import (
    AUGMENTATIONS,
    RandomPCAColor,
    build_augmentation,
    mirror_keypoint_pairs,
    parse_augment,
    pca_basis,
)
from cnnlab.engine.detection_data import load_detection_data
from cnnlab.engine.segment_data import folder_segmentation
from cnnlab.errors import CnnlabError


@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_each_augmentation_changes_images_and_keeps_range(name: str) -> None:
    x = torch.rand(16, 3, 32, 32)
    aug = build_augmentation([name], image_size=32, channels=3, pca=pca_basis(x))
    y = aug(x)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    assert not torch.allclose(y, x)


def test_grayscale_colour_shift() -> None:
    x = torch.rand(8, 1, 16, 16)
    y = build_augmentation(["color"], image_size=16, channels=1)(x)
    assert y.shape == x.shape


def test_geometry_moves_boxes_masks_and_keypoints_with_the_image() -> None:
    """A bright square: after flip+rotate, the mask still covers the bright pixels, the box
    still bounds the mask and the keypoint still sits on the square's corner region."""
    torch.manual_seed(3)
    img = torch.zeros(6, 1, 48, 48)
    img[:, :, 10:22, 8:20] = 1.0
    mask = img.clone()
    boxes = torch.tensor([[[8.0, 10.0, 20.0, 22.0]]]).repeat(6, 1, 1)
    kps = torch.tensor([[[14.0, 16.0]]]).repeat(6, 1, 1)  # the square's centre
    aug = build_augmentation(
        ["flip", "rotate", "shear"],
        image_size=48,
        channels=1,
        data_keys=["input", "bbox_xyxy", "mask", "keypoints"],
    )
    out_img, out_boxes, out_mask, out_kps = aug(img, boxes, mask, kps)
    for i in range(6):
        bright = out_img[i, 0] > 0.5
        on = out_mask[i, 0] > 0.5
        assert (bright & on).sum() >= 0.9 * bright.sum()
        ys, xs = on.nonzero(as_tuple=True)
        x1, y1, x2, y2 = out_boxes[i, 0].tolist()
        assert x1 - 1.5 <= xs.min() and xs.max() <= x2 + 1.5
        assert y1 - 1.5 <= ys.min() and ys.max() <= y2 + 1.5
        kx, ky = out_kps[i, 0].round().long().tolist()
        assert out_mask[i, 0, ky, kx] > 0.5


def test_mirror_swaps_left_and_right_landmarks() -> None:
    kps = torch.tensor([[[10.0, 5.0], [20.0, 5.0], [15.0, 9.0]]] * 2)
    flipped = torch.tensor([True, False])
    out = mirror_keypoint_pairs(kps, flipped, [(0, 1)])
    assert out[0].tolist() == [[20.0, 5.0], [10.0, 5.0], [15.0, 9.0]]
    assert torch.equal(out[1], kps[1])


def test_pca_colour_follows_the_principal_component() -> None:
    """On data whose colour varies only along (1, 1, 1)/sqrt(3), the shift does too."""
    torch.manual_seed(0)
    level = torch.rand(64, 1, 8, 8)
    x = (0.2 + 0.5 * level).repeat(1, 3, 1, 1)
    values, vectors = pca_basis(x)
    top = vectors[:, values.argmax()]
    assert torch.allclose(top.abs(), torch.full((3,), 3**-0.5), atol=1e-4)
    y = RandomPCAColor(values, vectors, sigma=1.0)(x)
    shift = (y - x).mean((2, 3))
    assert torch.allclose(shift[:, 0], shift[:, 1], atol=1e-4)
    assert shift.abs().max() > 0


def test_bad_names_and_combinations() -> None:
    assert parse_augment("none") == ()
    with pytest.raises(CnnlabError, match="unknown augmentation"):
        parse_augment("flip,sparkle")
    with pytest.raises(CnnlabError, match="needs RGB"):
        pca_basis(torch.rand(2, 1, 4, 4))
    with pytest.raises(CnnlabError, match="warp/tps cannot move"):
        build_augmentation(["warp"], image_size=8, channels=1, data_keys=["input", "keypoints"])
    with pytest.raises(CnnlabError, match="erase would hide objects"):
        build_augmentation(["erase"], image_size=8, channels=3, data_keys=["input", "mask"])


def test_random_erasing_blanks_one_rectangle_of_every_image() -> None:
    """Each image loses one axis-aligned rectangle of 2-33% of its area to 0; the rest stays."""
    x = torch.rand(32, 3, 40, 40) * 0.9 + 0.1  # no pixel is 0 before
    y = build_augmentation(["erase"], image_size=40, channels=3)(x)
    for before, after in zip(x, y, strict=True):
        erased = (after == 0).all(0)  # (H, W): every channel blanked together
        rows, cols = erased.any(1).nonzero().flatten(), erased.any(0).nonzero().flatten()
        assert len(rows) and len(cols)
        box = erased[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.all()  # one filled rectangle
        assert 0.02 * 1600 * 0.9 <= erased.sum() <= 0.33 * 1600 * 1.1
        assert torch.equal(after[:, ~erased], before[:, ~erased])


def test_augment_grid_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "grid.png"
    assert (
        main(
            [
                "augment",
                "--data",
                "faces",
                "--augment",
                "flip,rotate,warp",
                "-o",
                str(out),
                "--images",
                "4",
                "--variants",
                "2",
                "--json",
            ]
        )
        == 0
    )
    assert out.stat().st_size > 5000
    # a folder read as 2 channels has no picture to show: refused before anything is written
    argv = ["augment", "--data", "faces", "--channels", "2", "-o", str(tmp_path / "two.png")]
    assert main(argv) == 2 and not (tmp_path / "two.png").exists()
    assert "--channels: invalid choice: 2" in capsys.readouterr().err


def test_points_move_exactly_as_their_images() -> None:
    """An image whose channels are each pixel's own x and y: sampled (bilinearly) where a
    landmark went, it must give back where the landmark was, for every geometric
    augmentation that moves landmarks and boxes (boxes move as their corners do). A third
    channel of ones marks the samples that drew on nothing from outside the image."""
    n, size = 8, 64
    ramp = torch.arange(size, dtype=torch.float32)
    yy, xx = torch.meshgrid(ramp, ramp, indexing="ij")
    image = torch.stack([xx, yy, torch.ones_like(xx)])[None].repeat(n, 1, 1, 1)
    torch.manual_seed(1)
    points = torch.rand(n, 20, 2) * 40 + 12
    for name in ("flip", "crop", "rcrop", "rotate", "shear"):
        aug = build_augmentation(
            [name], image_size=size, channels=1, data_keys=["input", "keypoints"]
        )
        aug[0].p = 1.0
        torch.manual_seed(0)
        x, moved = aug(image, points.clone())
        assert not torch.allclose(moved, points), name
        grid = moved / (size - 1) * 2 - 1  # pixel centres 0 .. size - 1 -> -1 .. 1
        seen = F.grid_sample(x, grid[:, :, None], align_corners=True)[..., 0]  # (n, 3, 20)
        inside = seen[:, 2] > 1 - 1e-4
        assert inside.float().mean() > 0.8, name
        error = (seen[:, :2].transpose(1, 2) - points)[inside].abs().max()
        assert error < 1e-3, f"{name}: landmarks {error:.3f} px from their image"


def test_importing_kornia_warns_of_nothing() -> None:
    """kornia 0.7 decorates with torch.cuda.amp, which torch deprecates: its FutureWarning,
    about kornia's code, would open every command's output (make test-oldest has kornia 0.7)."""
    import subprocess
    import sys

    code = "import cnnlab.data.augment"
    run = subprocess.run(
        [sys.executable, "-W", "error::FutureWarning", "-c", code], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-500:]


def test_augment_shows_boxes_and_masks_moved_as_training_moves_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Detection data (scenes, a YOLO folder) and mask folders are drawn with their boxes and
    masks: the originals row holds the data's own, each draw what the train commands' batch
    functions make of them; what training cannot move with the boxes is refused as it is."""
    import cnnlab.viz.plots as plots
    from cnnlab.cli.augment import task_of
    from cnnlab.data.scenes import make_scenes, write_masks, write_yolo

    drawn: dict = {}

    def capture(rows, path, title="", row_labels=None, boxes=None, masks=None):
        drawn.update(rows=rows, boxes=boxes, masks=masks, title=title)
        return Path(path)

    monkeypatch.setattr(plots, "plot_augmentation_grid", capture)
    scenes = make_scenes(6, seed=3, image_size=48)
    write_yolo(scenes, tmp_path / "boxes")
    write_masks(scenes, tmp_path / "masks")
    assert [task_of(str(tmp_path / d)) for d in ("boxes", "masks")] == ["detect", "segment"]
    assert [
        task_of(d) for d in ("scenes", "digits", "x.json", "pets", "coco-train2017", "mnist")
    ] == [
        "detect",
        "classify",
        "detect",
        "segment",
        "detect",
        "classify",
    ]
    argv = ["augment", "--images", "6", "--variants", "2", "--image-size", "48", "--json"]
    assert main([*argv, "--data", str(tmp_path / "boxes"), "--augment", "rotate"]) == 0
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert said["task"] == "detect" and drawn["title"].endswith("mirror, rotate")
    data = load_detection_data(DetectConfig(data=str(tmp_path / "boxes"), image_size=48))
    originals = {tuple(b.flatten().tolist()) for b, _ in drawn["boxes"][0]}
    assert originals == {tuple(data.trained_on(i)[0].flatten().tolist()) for i in range(6)}
    assert len(drawn["rows"]) == 3 and drawn["masks"] is None
    assert main([*argv, "--data", str(tmp_path / "masks"), "--augment", "flip"]) == 0
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert said["task"] == "segment" and drawn["boxes"] is None
    masks = {tuple(m.flatten().tolist()) for m in drawn["masks"][0]}
    assert masks == {
        tuple(m.flatten().tolist()) for m in folder_segmentation(tmp_path / "masks", 48).masks
    }
    flipped = {tuple(m.flip(-1).flatten().tolist()) for m in drawn["masks"][1]}
    assert flipped & masks  # some of the first draw's masks are their images' mirrored
    assert main([*argv, "--data", "scenes", "--augment", "warp"]) == 2
    assert "warp/tps cannot move the boxes with the image" in capsys.readouterr().err
    assert main([*argv, "--data", "scenes", "--no-mirror", "--augment", "none"]) == 2
    assert "--augment names nothing to show" in capsys.readouterr().err
