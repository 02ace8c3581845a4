"""Boxes and points drawn on a photo at its own size (Pillow), for ``detect predict --out`` and
``localize predict --out`` (and ``classify predict --out``: the whole image framed, its class
on it): the figures of ``-o`` show 24 images shrunk into a grid; these are the photos
themselves, one file each, as a detector's users look at them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from cnnlab.viz.plots import BOX_COLOURS


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's own font at ``size`` pixels (Pillow 10.1 and later); its small bitmap font on
    Pillow 10.0."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow 10.0: no size
        return ImageFont.load_default()


def draw_boxes(
    image: Image.Image,
    boxes: Sequence[Sequence[float] | None],
    captions: Sequence[str],
    classes: Sequence[int],
    points: Sequence[Sequence[Sequence[float]]] = (),
) -> Image.Image:
    """A copy of ``image`` with each box ``(x1, y1, x2, y2)`` in its pixels outlined in its
    class's colour (:data:`~cnnlab.viz.plots.BOX_COLOURS`), ``captions[i]`` on a label above it
    (inside, when the box touches the top), and ``points[i]`` (landmarks, ``(x, y)`` in pixels)
    as dots; a box ``None`` frames the whole image. Lines and letters grow with the image, so a
    12-megapixel photo's are legible."""
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    side = min(out.size)
    width = max(2, round(side / 300))
    font = _font(max(12, side // 40))
    for i, (box, caption, cls) in enumerate(zip(boxes, captions, classes, strict=True)):
        colour = BOX_COLOURS[cls % len(BOX_COLOURS)]
        x1, y1, x2, y2 = (0, 0, out.width - 1, out.height - 1) if box is None else box
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=width)
        left, top, right, bottom = draw.textbbox((0, 0), caption, font=font)
        tw, th = right - left + 2 * width, bottom - top + 2 * width
        ty = y1 - th if y1 - th >= 0 else y1
        draw.rectangle((x1, ty, x1 + tw, ty + th), fill=colour)
        draw.text((x1 + width - left, ty + width - top), caption, fill="black", font=font)
        for x, y in points[i] if i < len(points) else ():
            r = 2 * width
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour, outline="black")
    return out


def drawn_path(folder: Path, stem: str, source: str | Path, tag: str = "boxes") -> Path:
    """Where a photo drawn on goes: ``folder/<stem>_<tag>.jpg`` for a JPEG (a photo's own
    format, a tenth of a PNG's size), ``.png`` otherwise."""
    suffix = ".jpg" if Path(str(source)).suffix.lower() in (".jpg", ".jpeg") else ".png"
    return folder / f"{stem}_{tag}{suffix}"
