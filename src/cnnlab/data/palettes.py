"""The colours class maps are drawn in, and reading a map saved in colour back as class indices.

A mask is a PNG of class indices; shown, each index has a colour. Two sets of colours are used:
Pascal VOC's colour map (Everingham et al., 2010: index ``i``'s bits spread over the high bits
of red, green and blue, so all 256 indices differ and 255, "nobody labelled this", is a pale
(224, 224, 192)), in which ``cnnlab data scenes --format masks`` writes its masks, as VOC's own
``SegmentationClass`` files are; and cnnlab's brighter :data:`MAP_COLOURS` for up to 9 classes,
in which ``segment predict`` draws its maps. An image editor may save either as an RGB picture
instead of keeping its palette: :func:`indices_of_colours` reads it back.
"""

from __future__ import annotations

import numpy as np

from cnnlab.words import counted

MAP_COLOURS = np.array(
    [
        [0, 0, 0],
        [230, 60, 60],
        [60, 200, 90],
        [70, 110, 240],
        [240, 200, 40],
        [200, 80, 220],
        [60, 210, 220],
        [250, 140, 40],
        [150, 150, 150],
    ],
    np.uint8,
)
VOID = 255  # a pixel nobody labelled (VOC's object borders): neither trained on nor scored


def voc_colormap(n: int = 256) -> np.ndarray:
    """``(n, 3)`` uint8: Pascal VOC's colour of each class index (its devkit's ``labelcolormap``:
    bit ``k`` of the index's bits 0, 1, 2 goes to bit ``7 - k`` of red, green, blue)."""
    index = np.arange(n)
    colours = np.zeros((n, 3), np.int64)
    for k in range(8):
        for channel in range(3):
            bit = (index >> (3 * k + channel)) & 1
            colours[:, channel] |= bit << (7 - k)
    return colours.astype(np.uint8)


def _code(rgb: np.ndarray) -> np.ndarray:
    """One integer a colour: ``(..., 3)`` -> ``(...)``."""
    c = rgb.astype(np.int64)
    return (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]


def indices_of_colours(
    rgb: np.ndarray, classes: int, colours: np.ndarray | None = None
) -> np.ndarray:
    """The ``(H, W)`` uint8 class indices of an ``(H, W, 3 or 4)`` map drawn in VOC's colours
    (void included) or in :data:`MAP_COLOURS` (up to 9 classes), whichever has every pixel's
    colour among its first ``classes``; or, given ``colours`` ``(classes, 3)`` (a labelling
    tool's, e.g. CVAT's ``labelmap.txt``), in those, VOC's void colour still void. A
    :class:`ValueError` names the most common colour that is no class's (a softened brush edge,
    another tool's colours) otherwise."""
    pixels = _code(rgb[..., :3])
    voc = voc_colormap()
    if colours is not None:
        palettes = [(np.r_[np.arange(classes), VOID], np.r_[colours[:classes], voc[VOID:]])]
    else:
        palettes = [(np.r_[np.arange(classes), VOID], voc[np.r_[np.arange(classes), VOID]])]
    if colours is None and classes <= len(MAP_COLOURS):
        palettes.append((np.arange(classes), MAP_COLOURS[:classes]))
    fewest = None  # the other colours of the palette that comes nearest
    for indices, colours in palettes:
        known = _code(colours)
        order = np.argsort(known)
        at = np.searchsorted(known[order], pixels).clip(0, len(known) - 1)
        found = known[order][at] == pixels
        if found.all():
            return indices[order][at].astype(np.uint8)
        if fewest is None or (~found).sum() < fewest.sum():
            fewest = ~found
    unknown = fewest
    values, counts = np.unique(pixels[unknown], return_counts=True)
    v = int(values[counts.argmax()])
    n = int(unknown.sum())
    raise ValueError(
        f"{counted(n, 'pixel')} {'is' if n == 1 else 'are'} no class's colour, most often "
        f"({v >> 16}, {(v >> 8) & 255}, {v & 255})"
    )


def grey_palette(values: np.ndarray, classes: int) -> str | None:
    """Which map colours a mask's grey ``values`` are the greyscale of (Pillow's ``L``:
    ``(299 R + 587 G + 114 B) / 1000``), when all of them are, beyond 0: "VOC's colours" or
    "cnnlab's map colours" (a colour mask an editor saved as greyscale); else ``None``."""
    from PIL import Image

    voc = voc_colormap()
    for what, colours in (
        ("VOC's colours", np.r_[voc[:classes], voc[VOID:]]),
        ("cnnlab's map colours", MAP_COLOURS[:classes]),
    ):
        greys = np.asarray(Image.fromarray(colours[None]).convert("L"))[0]
        if values.size and (values > 0).any() and np.isin(values, greys).all():
            return what
    return None
