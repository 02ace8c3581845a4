"""Labels placed on a photo's stored pixels, moved to the photo as shown: Pillow's
exif_transpose, which turns the pixels, is the oracle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from cnnlab.data.orientation import boxes_as_shown, orientation_of, pixels_as_shown


@pytest.mark.parametrize("orientation", range(1, 9))
def test_boxes_move_as_the_pixels_turn(orientation: int) -> None:
    """A box painted on a 40 x 24 stored image lands where exif_transpose puts its pixels."""
    stored = np.zeros((24, 40), np.uint8)
    x1, y1, x2, y2 = 5, 3, 17, 10  # pixel edges: columns 5-16, rows 3-9
    stored[y1:y2, x1:x2] = 255
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = orientation
    image = Image.open(_saved(image, exif))
    assert orientation_of(image) == orientation
    shown = np.asarray(ImageOps.exif_transpose(image))
    rows, cols = np.nonzero(shown > 127)
    h, w = shown.shape
    painted = [cols.min() / w, rows.min() / h, (cols.max() + 1) / w, (rows.max() + 1) / h]
    box = np.array([[x1 / 40, y1 / 24, x2 / 40, y2 / 24]], np.float32)
    np.testing.assert_allclose(boxes_as_shown(box, orientation)[0], painted, atol=1e-6)
    noise = np.random.default_rng(orientation).integers(0, 255, (24, 40), dtype=np.uint8)
    as_photo = Image.fromarray(noise)  # every pixel lands where exif_transpose puts it
    turned = ImageOps.exif_transpose(Image.open(_saved(as_photo, exif)))
    assert np.array_equal(pixels_as_shown(noise, orientation), np.asarray(turned))


def _saved(image: Image.Image, exif: Image.Exif) -> object:
    import io

    buffer = io.BytesIO()
    image.save(buffer, "PNG", exif=exif)
    buffer.seek(0)
    return buffer


def test_no_tag_or_a_bad_one_is_upright() -> None:
    assert orientation_of(Image.new("L", (4, 4))) == 1
    image = Image.new("L", (4, 4))
    exif = image.getexif()
    exif[0x0112] = 9
    assert orientation_of(Image.open(_saved(image, exif))) == 1


def test_a_mask_drawn_on_a_turned_photo_as_stored_turns_with_it(tmp_path: Path) -> None:
    """A mask folder whose photo is stored 40 x 24 with a tag turning it a quarter, and whose
    mask has the stored size: the class map turns with the photo (the oracle: the same mask
    saved with the photo's tag, read as read_image shows it); a mask of the shown size is
    taken as it is."""
    from cnnlab.data.images import read_image
    from cnnlab.engine.segment_data import folder_segmentation

    root = tmp_path
    for folder in ("images", "masks"):
        (root / folder).mkdir()
    (root / "classes.txt").write_text("background\nroad\n")
    truth = np.zeros((24, 40), np.uint8)
    truth[2:9, 3:30] = 1
    truth[15:22, 30:36] = 1
    photo = Image.fromarray(np.where(truth == 1, 200, 40).astype(np.uint8))
    exif = photo.getexif()
    exif[0x0112] = 6
    photo.save(root / "images" / "a.png", exif=exif)
    Image.fromarray(truth).save(root / "masks" / "a.png")
    Image.fromarray(truth).save(root / "tagged.png", exif=exif)
    shown = read_image(root / "tagged.png", "L").resize((40, 40), Image.Resampling.NEAREST)
    seg = folder_segmentation(root, 40)
    assert np.array_equal(seg.masks[0].numpy(), np.asarray(shown))
    Image.fromarray(np.asarray(read_image(root / "tagged.png", "L"))).save(root / "masks" / "a.png")
    assert np.array_equal(folder_segmentation(root, 40).masks[0].numpy(), np.asarray(shown))
