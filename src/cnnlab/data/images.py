"""Reading images from disk or from scikit-image's bundled photos, with clear errors.

Decompression bombs are refused (Pillow's limit is kept and its warning becomes an error), and
any unreadable file raises :class:`CnnlabError` naming the file.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sized
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from cnnlab.data.video import VIDEO_SUFFIXES
from cnnlab.errors import CnnlabError, refuse_web_address
from cnnlab.words import nearest, with_article

# Grayscale or colour photos shipped inside scikit-image (no download needed).
SAMPLE_IMAGES = (
    "camera",
    "astronaut",
    "coins",
    "moon",
    "page",
    "text",
    "coffee",
    "chelsea",
    "rocket",
    "brick",
    "grass",
    "gravel",
    "cell",
    "horse",
    "checkerboard",
)


# files from which a read shows a progress bar (fewer take a second or two: no bar)
MANY_FILES = 200

T = TypeVar("T")


def with_progress(items: Iterable[T], what: str, files: int | None = None) -> Iterable[T]:
    """``items`` one by one, with a progress bar on stderr (gone when done) when they stand for
    :data:`MANY_FILES` image files or more (``files``; else one file an item, and ``items`` a
    sequence): a folder of thousands of photos shows how far its reading got. Nothing is drawn
    where stderr is no terminal, so logs and ``--json`` output stay clean."""
    from rich.console import Console
    from rich.progress import track

    console = Console(stderr=True)
    steps = len(items) if isinstance(items, Sized) else files  # a generator: files is its length
    if ((steps if files is None else files) or 0) < MANY_FILES or not console.is_terminal:
        return items  # no bar at all: rich before 15 printed an empty line for a disabled one
    length = {} if isinstance(items, Sized) else {"total": steps}  # a generator's, given
    return track(items, description=what, transient=True, console=console, **length)


# grey 16-bit images (scientific and medical PNGs/TIFFs)
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


def grey_to_8bit(img: Image.Image) -> Image.Image:
    """Deep grey (16-bit, 32-bit integer ``I``, float ``F``) as 8-bit ``L``, scaled instead of
    clipped at 255 as Pillow's ``convert`` does. 16-bit: ``v / 257`` (65535 -> 255). ``I`` and
    ``F`` do not say their depth, so the smallest of 1 (float only), 255 and 65535 that holds the
    largest value is taken as white (an 8-bit picture saved as ``I`` stays as it was); negative
    values are black."""
    v = np.asarray(img, dtype=np.float64)
    if img.mode in SIXTEEN_BIT:
        white = 65535.0
    else:
        top = float(v.max()) if v.size else 0.0
        tops = (1.0, 255.0, 65535.0) if img.mode == "F" else (255.0, 65535.0)
        white = next((t for t in tops if top <= t), top)
    return Image.fromarray((v * (255 / white)).clip(0, 255).round().astype(np.uint8), "L")


def read_image(path: str | Path, mode: str = "L", at_least: int | None = None) -> Image.Image:
    """Open and fully decode ``path`` as a Pillow image in ``mode`` ("L" gray, "RGB" colour);
    16-bit grey is scaled to 8 bits (65535 -> 255) instead of clipped, and an EXIF orientation
    (how a camera was held) is applied, as a photo viewer shows it.

    ``at_least``: the caller only needs both sides at least this long, so a JPEG may be decoded
    at 1/2, 1/4 or 1/8 of its size (libjpeg's DCT scaling, Pillow's ``draft``): a 4000x3000
    photo for a 128 px input decodes about 10x faster (``benchmarks/decode_photos.py``)."""
    refuse_web_address(path)  # from Python; the command line refuses one for every option
    path = Path(path)
    if path.is_dir():
        raise CnnlabError(f"{path}: a folder, not an image file")
    if not path.is_file():
        raise CnnlabError(f"{path}: no such file")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        raise CnnlabError(
            f"{path}: a video, not an image (classify, detect, localize and segment predict read a "
            "video's frames)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if at_least is not None and img.format == "JPEG":
                    img.draft(mode, (at_least, at_least))  # never below at_least on either side
                img.load()
                img = ImageOps.exif_transpose(img)  # a phone photo's "rotate 90" tag applied
                if img.mode in (*SIXTEEN_BIT, "I", "F"):  # Pillow's convert clips at 255
                    img = grey_to_8bit(img)
                return img.convert(mode)
    except UNREADABLE as exc:
        raise CnnlabError(f"{path}: {why_unreadable(exc)}") from None


def open_image(
    image: object, mode: str = "L", name: str = "image", at_least: int | None = None
) -> Image.Image:
    """A file's path (:func:`read_image`, errors naming the file) or an image a program holds
    (:func:`image_in_memory`, errors naming it ``name``), decoded alike in ``mode``."""
    if isinstance(image, str | Path):
        return read_image(image, mode, at_least)
    return image_in_memory(image, mode, name)


def image_list(images: Any) -> list[Any]:
    """What a predictor was given, as a list of images: a list, tuple or generator of files and
    images in memory as it is; one image alone (a path, a Pillow image, a numpy ``(H, W)``,
    ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` array) as a list of one, where iterating
    would split it (a path into letters, ``"my.png"``: "m: no such file"; a frame into rows).
    Other arrays are batches: ``(N, H, W, C)`` or ``(N, H, W)``, their ``N`` images."""
    if isinstance(images, str | Path | Image.Image):
        return [images]
    if isinstance(images, np.ndarray) and (
        images.ndim == 2 or (images.ndim == 3 and images.shape[2] in (1, 3, 4))
    ):
        return [images]
    return list(images)


def image_in_memory(image: object, mode: str = "L", name: str = "image") -> Image.Image:
    """An image a program already holds, as :func:`read_image` would give its file in ``mode``:
    a Pillow image (its EXIF orientation applied; 16-bit and float grey scaled to 8 bits, not
    clipped), or a numpy ``uint8`` array ``(H, W)`` grey, ``(H, W, 1)``, ``(H, W, 3)`` RGB or
    ``(H, W, 4)`` RGBA (alpha dropped, as ``convert`` does for a PNG with one; channels in RGB
    order: an OpenCV frame is BGR, ``frame[..., ::-1]`` turns it); a ``bool`` array
    ``(H, W)`` is black and white. Anything else raises a :class:`CnnlabError` naming ``name``
    and what it is; a float array is refused rather than guessed at (in [0, 1] or [0, 255]?)."""
    if isinstance(image, Image.Image):
        try:
            image = ImageOps.exif_transpose(image)  # Image.open(photo) as read_image shows it
            if image.mode in (*SIXTEEN_BIT, "I", "F"):
                image = grey_to_8bit(image)
            return image.convert(mode)
        except UNREADABLE as exc:  # a lazily opened file that turns out cut short
            raise CnnlabError(f"{name}: {why_unreadable(exc)}") from None
    if not isinstance(image, np.ndarray):
        tensor = type(image).__name__ == "Tensor"  # (C, H, W), as torchvision's transforms give
        what = "None" if image is None else with_article(type(image).__name__)
        raise CnnlabError(
            f"{name}: {what}, not a Pillow image or a numpy uint8 array"
            + (" (for a (C, H, W) tensor: x.permute(1, 2, 0).numpy())" if tensor else "")
        )
    shape = "x".join(map(str, image.shape)) or "scalar"
    if image.dtype == bool and image.ndim == 2:
        image = image.astype(np.uint8) * 255
    if image.dtype != np.uint8:
        how = (
            "x.astype(np.uint8) if its values are 0-255"
            if np.issubdtype(image.dtype, np.integer)
            else "(x * 255).round().astype(np.uint8) for values in [0, 1]"
        )
        raise CnnlabError(
            f"{name}: {with_article(str(image.dtype))} array; give uint8 pixels 0-255 ({how})"
        )
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    known = image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))
    if not known or 0 in image.shape:
        first = image.ndim == 3 and image.shape[0] in (1, 3, 4) and 0 not in image.shape
        raise CnnlabError(
            f"{name}: {with_article(shape)} array; give (H, W), (H, W, 3) or (H, W, 4) pixels"
            + ("; channels first? x.transpose(1, 2, 0)" if first else "")
        )
    # uint8 (H, W), (H, W, 3), (H, W, 4) -> Pillow's L, RGB, RGBA
    return Image.fromarray(np.ascontiguousarray(image)).convert(mode)


# what Pillow raises for a file it cannot read: not an image, corrupt, truncated, a bomb
UNREADABLE = (
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
    UnidentifiedImageError,
    OSError,
    ValueError,
    SyntaxError,
)


def why_unreadable(exc: BaseException) -> str:
    """What :data:`UNREADABLE`'s ``exc`` means for the file, in words."""
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        # Pillow: "Image size (182250000 pixels) exceeds limit of ..."; we refuse from
        # Image.MAX_IMAGE_PIXELS on (Pillow warns there and raises only from twice that)
        found = re.search(r"\((\d+) pixels\)", str(exc))
        if found and Image.MAX_IMAGE_PIXELS:
            return (
                f"an image of {int(found.group(1)):,} pixels, over the "
                f"{Image.MAX_IMAGE_PIXELS:,} read here (Pillow's guard against decompression "
                "bombs): scale it down first"
            )
        return "image is too large (decompression bomb refused)"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image file Pillow can read"
    return f"corrupt or truncated image ({exc})"


def unreadable(path: str | Path) -> str | None:
    """Why :func:`read_image` would refuse the file ``path`` (not an image, empty, a
    decompression bomb, corrupt or cut short), or ``None``, from a quick look that decodes no
    pixels of a sound file: the header; a PNG's chunks and checksums (0.4 ms for a 512x512 PNG
    whose decoding takes 15 ms); and whether a JPEG, GIF, BMP or WebP ends as its format says
    (JPEG's end-of-image marker, GIF's trailer byte, the size BMP and WebP headers declare),
    0.01 ms. Only a file that does not end so is decoded to decide: a copy cut short fails, one
    with bytes after its end (a camera's trailer) reads. A TIFF or a file damaged midway passes;
    reading it is then the one-line error naming it. (Decoding every JPEG even at 1/8 scale took
    1.4 of the 3.1 ms a full read of a 512x512 one does, nearly doubling a folder's prediction
    time.)"""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.format == "PNG":
                    img.verify()
                elif _ends_early(Path(path), img.format):
                    img.load()  # decide by decoding: cut short, or only unusually ended
    except UNREADABLE as exc:
        return why_unreadable(exc)
    return None


def _ends_early(path: Path, image_format: str | None) -> bool:
    """Whether ``path`` does not end where its format says a whole file ends."""
    size = path.stat().st_size
    with path.open("rb") as f:
        if image_format == "JPEG":  # the EOI marker
            f.seek(max(size - 2, 0))
            return f.read(2) != b"\xff\xd9"
        if image_format == "GIF":  # the trailer byte ";"
            f.seek(max(size - 1, 0))
            return f.read(1) != b";"
        if image_format == "BMP":  # bfSize, bytes 2-5 of the file header
            f.seek(2)
            return int.from_bytes(f.read(4), "little") > size
        if image_format == "WEBP":  # the RIFF chunk's size, bytes 4-7, after 8 bytes
            f.seek(4)
            return int.from_bytes(f.read(4), "little") + 8 > size
    return False


def displayed_size(source: object) -> tuple[int, int]:
    """``(width, height)`` of an image file as a viewer shows it (EXIF orientations 5-8 turn it
    a quarter), from its header alone: the frame to report positions in when the pixels were
    decoded at a reduced scale (``read_image(..., at_least=...)``). An image a program holds
    (:func:`image_in_memory`) gives its own: a Pillow image's turned alike, an array's
    ``(W, H)``."""
    if isinstance(source, np.ndarray):
        return source.shape[1], source.shape[0]
    from cnnlab.data.orientation import shown_size, stored_and_orientation

    return shown_size(*stored_and_orientation(source))


def load_gray(source: str) -> torch.Tensor:
    """A grayscale image in [0, 1] as ``(H, W)`` float32: a scikit-image sample name or a path."""
    if source in SAMPLE_IMAGES:
        import skimage.data
        from skimage.color import rgb2gray, rgba2rgb

        arr = np.asarray(getattr(skimage.data, source)())
        if arr.ndim == 3:
            arr = rgb2gray(rgba2rgb(arr) if arr.shape[-1] == 4 else arr)
        elif arr.dtype == bool:
            arr = arr.astype(np.float32)
        else:
            arr = arr / (np.iinfo(arr.dtype).max if arr.dtype.kind in "ui" else 1.0)
        return torch.from_numpy(np.asarray(arr, dtype=np.float32))
    if not Path(source).exists():
        names = ", ".join(SAMPLE_IMAGES)
        raise CnnlabError(
            f"{source}: no such file, and not a sample image ({names})"
            + nearest(source, SAMPLE_IMAGES)  # `edges apply camra`: "; did you mean camera?"
        )
    arr = np.asarray(read_image(source, "L"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr)
