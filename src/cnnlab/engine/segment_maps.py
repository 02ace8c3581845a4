"""A trained segmenter's maps: made on photos of any size and written where people and
programs read them.

A photo is segmented at the training size and its class scores are upsampled back to its own
pixels a strip of rows at a time (:func:`upsampled_argmax`: PyTorch's bilinear rule, in bounded
memory); the map is kept as ``uint8`` class indices. It is written as a palette PNG
(:func:`map_image`, the format of Pascal VOC's masks: each pixel its class index, shown in
:data:`~cnnlab.data.palettes.MAP_COLOURS`), beside an overlay on the photo, and with
``--as-dataset`` into the mask folder :func:`cnnlab.engine.segment_data.folder_segmentation` reads.
:class:`Segmenter` is the same from Python, loaded once for many images.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from cnnlab.data.folder import image_to_uint8, keep_image
from cnnlab.data.images import image_list, open_image, with_progress
from cnnlab.data.palettes import MAP_COLOURS, VOID
from cnnlab.data.scenes import standardise
from cnnlab.data.textfiles import write_names
from cnnlab.data.video import Every
from cnnlab.engine.predict import Predictor, source_names
from cnnlab.models.unet import at_input_size


def colorize(mask: np.ndarray) -> np.ndarray:
    """Class indices -> RGB segmentation map."""
    return MAP_COLOURS[mask % len(MAP_COLOURS)]


@torch.no_grad()
def predict_mask(
    model: torch.nn.Module, source: Any, size: int, name: str = "image"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Segment an image file as the model was trained: stretched to ``size x size``; the class
    scores are resized back to the file's own pixels (bilinear, then the arg-max), so the map
    lies on the photo (:func:`upsampled_argmax`). Returns the file's image ``(3, H, W)`` uint8
    and its map ``(H, W)`` of class indices, ``uint8`` up to 256 classes.
    An image a program holds (a Pillow image, a numpy ``uint8`` array) is segmented alike; an
    error calls it ``name``."""
    image = torch.from_numpy(np.asarray(open_image(source, "RGB", name)).copy()).permute(2, 0, 1)
    logits = at_input_size(
        model, standardise(image_to_uint8(source, size, 3, "stretch", name).float())[None]
    )
    return image, upsampled_argmax(logits[0], image.shape[-2:])


STRIP_FLOATS = 1 << 22  # class scores upsampled at a time: 16 MB of float32


def _source_index(size_in: int, size_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bilinear upsampling's source for each of ``size_out`` positions (``align_corners=False``,
    PyTorch's own rule): ``i0 = floor(y)``, ``i1 = i0 + 1`` (clamped to the input) and the
    weight ``y - i0`` of ``i1``, at ``y = max((r + 0.5) size_in / size_out - 0.5, 0)``."""
    y = (torch.arange(size_out, dtype=torch.float64) + 0.5) * (size_in / size_out) - 0.5
    y = y.clamp_min(0)
    i0 = y.floor().long().clamp(max=size_in - 1)
    return i0, (i0 + 1).clamp(max=size_in - 1), (y - i0).float()


def upsampled_strips(
    scores: torch.Tensor, size: Sequence[int], strip_floats: int = STRIP_FLOATS
) -> Iterator[tuple[slice, torch.Tensor]]:
    """``scores (C, h, w)`` upsampled bilinearly to ``size = (H, W)`` (what ``F.interpolate``
    with ``align_corners=False`` gives), a strip of output rows at a time: ``(rows, (C, R, W))``
    with at most ``strip_floats`` numbers a strip. The full ``(C, H, W)`` scores of a
    12-megapixel photo and 21 classes would take 1 GB; a strip takes 16 MB."""
    c, h, w = scores.shape
    height, width = int(size[0]), int(size[1])
    r0, r1, rw = _source_index(h, height)
    c0, c1, cw = _source_index(w, width)
    rw, cw = rw.to(scores.dtype)[:, None], cw.to(scores.dtype)
    rows = max(1, strip_floats // max(1, c * width))
    for r in range(0, height, rows):
        sl = slice(r, min(r + rows, height))
        strip = torch.lerp(scores[:, r0[sl]], scores[:, r1[sl]], rw[sl])  # (C, R, w)
        yield sl, torch.lerp(strip[..., c0], strip[..., c1], cw)  # (C, R, W)


def upsampled_argmax(
    scores: torch.Tensor, size: Sequence[int], strip_floats: int = STRIP_FLOATS
) -> torch.Tensor:
    """``scores (C, h, w)`` -> the ``(H, W)`` arg-max of their bilinear upsampling to ``size``
    (:func:`upsampled_strips`), as class indices: ``uint8`` up to 256 classes (a photo's map
    then takes an eighth of ``int64``'s memory), ``int64`` past that."""
    dtype = torch.uint8 if len(scores) <= 256 else torch.int64
    if tuple(scores.shape[-2:]) == (int(size[0]), int(size[1])):
        return scores.argmax(0).to(dtype)
    out = torch.empty(int(size[0]), int(size[1]), dtype=dtype)
    for rows, strip in upsampled_strips(scores, size, strip_floats):
        out[rows] = strip.argmax(0).to(dtype)
    return out


class Segmenter(Predictor):
    """A trained segmenter loaded once for many images: a run's ``best.pt`` on a device, or a
    file ``cnnlab export`` wrote, run by ONNX Runtime; either gives class scores at the input's
    own size (:func:`~cnnlab.engine.predict.load_network`). ``meta`` holds ``class_names`` and
    ``input_size``."""

    TASK: ClassVar[str] = "segmentation"

    def predict_files(self, images: Sequence[Any]) -> list[dict[str, Any]]:
        """Images -> per image its ``source``, ``mask`` (``(H, W)`` ``uint8`` class indices on the
        image's own pixels, :func:`predict_mask`) and ``pixel_counts`` (pixels per class
        name). Files, or images a program holds (Pillow images, numpy ``uint8`` arrays),
        named ``images[i]`` (:func:`~cnnlab.engine.predict.preprocess`)."""
        images = image_list(images)  # a generator too, or one image alone
        size, rows = self.meta["input_size"][-1], []
        for image, source in with_progress(
            list(zip(images, source_names(images), strict=True)), "segmenting"
        ):
            _, mask = predict_mask(self.network, image, size, source)
            rows.append(
                {
                    "source": source,
                    "mask": mask,
                    "pixel_counts": mask_counts(mask, self.class_names),
                }
            )
        return rows

    def predict_video(self, video: str | Path, every: Every = 1) -> Iterator[dict[str, Any]]:
        """:meth:`predict_files`' rows of a video's frames (every ``every``-th from the first),
        named ``clip.mp4#frame=i``, *yielded* one at a time as the frames are read: a map is
        the frame's size, so a long video's maps are never held at once (``list(...)`` holds
        them)."""
        from cnnlab.data.video import numbered_frames, video_info

        size = self.meta["input_size"][-1]
        stated, _ = video_info(video, every)
        named = numbered_frames(video, every)
        for source, frame in with_progress(named, f"reading {Path(video).name}", stated):
            _, mask = predict_mask(self.network, frame, size, source)
            yield {
                "source": source,
                "mask": mask,
                "pixel_counts": mask_counts(mask, self.class_names),
            }


def predict_files(checkpoint: str | Path, paths: Sequence[Any]) -> list[dict[str, Any]]:
    """:meth:`Segmenter.predict_files` of a checkpoint loaded for this one call, on the CPU."""
    return Segmenter.load(checkpoint, device="cpu").predict_files(paths)


def mask_counts(mask: torch.Tensor, names: Sequence[str]) -> dict[str, int]:
    """Pixels of a ``(H, W)`` class map given to each class, by name."""
    counts = torch.bincount(mask.flatten(), minlength=len(names)).tolist()
    return dict(zip(names, counts, strict=True))


def plot_predictions(
    drawn: Sequence[tuple[str, torch.Tensor, torch.Tensor]], names: Sequence[str], path: Path
) -> Path:
    """``segment predict -o``: for each ``(source, image (3, H, W) uint8, map (H, W))`` the image
    and its colour map side by side, stretched to a square as the model saw them, the map
    captioned with the shares of its two largest classes other than the background; the
    palette's colours by class name below."""
    import torch.nn.functional as F

    from cnnlab.viz.plots import plot_captioned

    panels, captions, size = [], [], (128, 128)
    for source, image, mask in drawn:
        rgb = torch.from_numpy(colorize(mask.numpy())).permute(2, 0, 1)
        panels.append(F.interpolate(image[None].float(), size, mode="bilinear", antialias=True))
        panels.append(F.interpolate(rgb[None].float(), size, mode="nearest"))
        counts = mask_counts(mask, names)
        total = max(1, sum(counts.values()))
        found = sorted((c, n) for n, c in counts.items() if c and n != names[0])[::-1][:2]
        shares = ", ".join(f"{n} {c / total:.0%}" for c, n in found) or f"all {names[0]}"
        captions += [Path(source).name, shares]
    images = torch.cat(panels).round().clamp(0, 255).to(torch.uint8)
    legend = [(n, MAP_COLOURS[i % len(MAP_COLOURS)].tolist()) for i, n in enumerate(names) if i]
    title = "each image and its predicted classes, stretched square as the model saw them"
    return plot_captioned(images, captions, path, title, cols=6, legend=legend)


def plot_worst_maps(
    images: torch.Tensor,
    truth: torch.Tensor,
    predicted: torch.Tensor,
    shares: torch.Tensor,
    names: Sequence[str],
    path: Path,
    title: str,
) -> Path:
    """``worst_maps.png`` (``segment train``, ``segment eval --out``): each image ``(3, H, W)``
    uint8 beside its true map and the predicted one ``(H, W)``, captioned with the share of
    its labelled pixels right; pixels nobody labelled (:data:`VOID`) white; the palette's
    colours by class name below (the background black, as in :func:`plot_predictions`)."""
    panels, captions = [], []
    for image, true, pred, share in zip(images, truth, predicted, shares, strict=True):
        true_rgb = colorize(true.numpy())
        true_rgb[true.numpy() == VOID] = 255
        panels += [image, torch.from_numpy(true_rgb).permute(2, 0, 1)]
        panels.append(torch.from_numpy(colorize(pred.numpy())).permute(2, 0, 1))
        captions += [f"{share:.0%} of its pixels right", "true", "predicted"]
    legend = [(n, MAP_COLOURS[i % len(MAP_COLOURS)].tolist()) for i, n in enumerate(names) if i]
    if bool((truth == VOID).any()):
        title += "; white: not labelled"
    from cnnlab.viz.plots import plot_captioned

    stacked = torch.stack(panels).to(torch.uint8)
    return plot_captioned(stacked, captions, path, title, cols=6, legend=legend)


def map_image(mask: np.ndarray) -> Image.Image:
    """A ``(H, W)`` class map as the PNG ``segment predict`` writes: up to 256 classes a palette
    image, as VOC's ``SegmentationClass`` masks are (each pixel *is* its class index, shown in
    :data:`MAP_COLOURS`'s colour), so it reads back as a mask (``segment train``'s ``masks/``, or
    ``np.asarray(Image.open(...))``); past 256 classes the colours alone (RGB)."""
    if mask.size and int(mask.max()) > 255:
        return Image.fromarray(colorize(mask))
    indexed = Image.fromarray(mask.astype(np.uint8), "P")
    indexed.putpalette(colorize(np.arange(256)).astype(np.uint8).tobytes())
    return indexed


def new_mask_dataset(folder: Path, names: Sequence[str]) -> None:
    """Begin the mask folder :func:`~cnnlab.engine.segment_data.folder_segmentation` reads in a new
    or empty ``folder``: ``images/``, ``masks/`` and ``classes.txt`` (:func:`add_mask_pair`
    fills it)."""
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    write_names(folder / "classes.txt", names)


def add_mask_pair(
    folder: Path,
    source: str | Path,
    stem: str,
    mask: torch.Tensor,
    image: torch.Tensor | None = None,
) -> None:
    """Add an image and its map to a mask folder :func:`new_mask_dataset` began:
    ``images/<stem>.<ext>`` (a copy of ``source``; where it is no file, a video's frame,
    ``image`` ``(3, H, W)`` as a PNG) and ``masks/<stem>.png`` (:func:`map_image`: class
    indices)."""
    frame = None if image is None else image.permute(1, 2, 0).numpy()
    keep_image(source, folder / "images", stem, frame)
    map_image(mask.numpy()).save(folder / "masks" / f"{stem}.png")


def save_prediction(
    image: torch.Tensor, mask: torch.Tensor, out_dir: Path, stem: str
) -> dict[str, str]:
    """Write the segmentation map (:func:`map_image`) and an overlay on the input image."""
    out_dir.mkdir(parents=True, exist_ok=True)
    photo = Image.fromarray(image.permute(1, 2, 0).numpy())
    classes = mask.numpy()
    tinted = Image.blend(photo, Image.fromarray(colorize(classes)), 0.55)  # 0.45 photo + 0.55 map
    objects = Image.fromarray(((classes > 0) * 255).astype(np.uint8))  # the background untinted
    paths = {"map": out_dir / f"{stem}_map.png", "overlay": out_dir / f"{stem}_overlay.png"}
    map_image(classes).save(paths["map"])
    Image.composite(tinted, photo, objects).save(paths["overlay"])
    return {k: str(v) for k, v in paths.items()}
