"""A photo's EXIF orientation, and labels placed on its pixels as stored.

A camera stores the pixels as the sensor read them and writes how it was held in the EXIF
``Orientation`` tag (1-8; 6 and 8 turn the photo a quarter, so a portrait photo is stored
landscape). cnnlab shows and trains on a photo turned as the tag says, as viewers and labelme
do (:func:`~cnnlab.data.images.read_image`); LabelImg shows it as stored, so its boxes and its
``<size>`` are in the stored pixels (labelImg issues #198, #376). Where an annotation's size is
the stored one and the tag turns the photo, :func:`as_shown` moves its points to the photo as
shown; the same turn Pillow's ``ImageOps.exif_transpose`` applies to the pixels.
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import CnnlabError

TURNED = frozenset({5, 6, 7, 8})  # a quarter turn: width and height swap


def orientation_of(image: object) -> int:
    """The EXIF orientation (1-8) of a Pillow image, 1 where there is none or it is not one of
    the eight."""
    value = image.getexif().get(0x0112, 1)  # type: ignore[attr-defined]
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def shown_size(stored: tuple[int, int], orientation: int) -> tuple[int, int]:
    """``(width, height)`` of a photo as shown: its stored size, swapped where ``orientation``
    turns it a quarter."""
    return (stored[1], stored[0]) if orientation in TURNED else stored


def stored_and_orientation(image: object) -> tuple[tuple[int, int], int]:
    """``((width, height) as stored, EXIF orientation)`` of an image file (from its header)
    or of a Pillow image; a file that cannot be read is a :class:`CnnlabError` naming it."""
    from PIL import Image

    from cnnlab.data.images import UNREADABLE, why_unreadable

    if isinstance(image, Image.Image):
        return image.size, orientation_of(image)
    try:
        with Image.open(image) as img:  # type: ignore[arg-type]
            return img.size, orientation_of(img)
    except UNREADABLE as exc:
        raise CnnlabError(f"{image}: {why_unreadable(exc)}") from None


def as_shown(points: np.ndarray, orientation: int) -> np.ndarray:
    """Points ``(..., 2)`` as fractions ``(u, v)`` of the stored image's width and height -> the
    same points as fractions of the image shown (turned as ``orientation`` says)."""
    u, v = points[..., 0], points[..., 1]
    moved = {
        1: (u, v),
        2: (1 - u, v),  # mirrored
        3: (1 - u, 1 - v),  # upside down
        4: (u, 1 - v),
        5: (v, u),  # mirrored across the diagonal
        6: (1 - v, u),  # stored a quarter turn anticlockwise: shown turned clockwise
        7: (1 - v, 1 - u),
        8: (v, 1 - u),
    }[orientation]
    return np.stack(moved, axis=-1)


def boxes_as_shown(boxes: np.ndarray, orientation: int) -> np.ndarray:
    """Boxes ``(N, 4)`` ``x1, y1, x2, y2`` as fractions of the stored image -> as fractions of
    the image shown: the corners moved (:func:`as_shown`), then ordered again."""
    corners = as_shown(boxes.reshape(-1, 2, 2), orientation)
    return np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=-1).astype(boxes.dtype)


def pixels_as_shown(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """An ``(H, W, ...)`` array of the stored image (a mask's bitmap) turned as
    ``orientation`` says, as ``exif_transpose`` turns the photo."""
    turned = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: a.swapaxes(0, 1)[:, ::-1],
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: a.swapaxes(0, 1)[::-1],
    }[orientation](pixels)
    return np.ascontiguousarray(turned)
