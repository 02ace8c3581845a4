"""Labels placed on a photo's stored pixels, moved to the photo as shown: Pillow's
exif_transpose, which turns the pixels, is the oracle."""

from __future__ import annotations

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
