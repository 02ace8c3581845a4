"""Segmentation data: the images and per-pixel class maps of each source ``--data`` names (the
generated scenes, a mask folder, VOC's layout, labelme, COCO and YOLO polygon files, the
downloaded sets), read into one :class:`SegmentationData`, each mask checked (its size, its
class indices, its colours) with an error naming the file. Training and metrics:
:mod:`cnnlab.engine.segment`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from cnnlab.config import SegmentConfig
from cnnlab.data.folder import (
    fit_image,
    image_tensor,
    image_to_uint8,
    images_under,
    refuse_class_folders,
)
from cnnlab.data.images import SIXTEEN_BIT, read_image
from cnnlab.data.memory import require_image_memory
from cnnlab.data.orientation import TURNED, pixels_as_shown, stored_and_orientation
from cnnlab.data.scenes import (
    check_scene_memory,
    check_scene_size,
    make_scenes,
)
from cnnlab.data.split_folders import (
    folder_pairs,
    given_splits,
    has_pair_folder,
    split_of,
)
from cnnlab.data.textfiles import read_names
from cnnlab.data.yolo import read_yolo_folder
from cnnlab.errors import CnnlabError, collected
from cnnlab.losses.segmentation import VOID
from cnnlab.words import counted


@dataclass(frozen=True)
class SegmentationData:
    """Images and their per-pixel class maps, with the class names and a folder's own splits."""

    images: torch.Tensor  # (N, 3, H, W) uint8
    masks: torch.Tensor  # (N, H, W) int64 class per pixel, 0 = background, VOID = not labelled
    class_names: list[str]  # background first
    splits: dict[str, torch.Tensor] | None = None  # a folder's own train/val(/test), if any


def scenes_segmentation(
    n: int, image_size: int = 128, num_classes: int = 3, seed: int = 0
) -> SegmentationData:
    """``n`` generated scenes with their semantic maps: images ``(n, 3, S, S)`` uint8, masks
    ``(n, S, S)`` (0 background, then each shape class)."""
    check_scene_size(image_size)
    check_scene_memory(n, image_size)
    scenes = make_scenes(n, seed=seed, image_size=image_size, num_classes=num_classes)
    images = torch.from_numpy(np.stack([s.image for s in scenes])).permute(0, 3, 1, 2)
    masks = torch.from_numpy(np.stack([s.semantic for s in scenes]).astype(np.int64))
    return SegmentationData(images.contiguous(), masks, ["background", *scenes[0].class_names])


def _colour_mask(
    rgb: np.ndarray, classes: int, path: Path, colours: np.ndarray | None = None
) -> Image.Image:
    """A mask saved in colour: the class map, when its colours are those ``segment predict``
    drew the classes in (its map re-saved as RGB by an image editor) or ``colours`` (a
    ``labelmap.txt``'s), else a :class:`CnnlabError` saying what a mask holds."""
    from cnnlab.data.palettes import indices_of_colours

    try:
        return Image.fromarray(indices_of_colours(rgb, classes, colours), "L")
    except ValueError as exc:
        where = (
            "labelmap.txt's colours"
            if colours is not None
            else f"the colours of these {classes} classes in VOC's or cnnlab's maps"
        )
        raise CnnlabError(
            f"{path}: a colour image, not in {where} ({exc}); a mask holds class indices "
            "(a palette or grayscale PNG, 0 = background)"
        ) from None


def _quarter_turn(image_path: Path | None) -> int:
    """The EXIF orientation of ``image_path`` where it turns the photo a quarter, else 1 (read
    only for a mask whose width and height are the photo's swapped)."""
    if image_path is None:
        return 1
    orientation = stored_and_orientation(image_path)[1]
    return orientation if orientation in TURNED else 1


def read_mask(
    mask_path: Path,
    image: Image.Image,
    names: list[str],
    image_size: int,
    colours: np.ndarray | None = None,
    listed_in: str = "classes.txt",
    image_path: Path | None = None,
) -> torch.Tensor:
    """One mask file as an ``(image_size, image_size)`` int64 class map (resized
    nearest-neighbour, so it keeps class indices): a palette or grey PNG of indices, 16-bit
    included; a 1-bit black-and-white one (0 and 1); an RGB picture in ``colours`` (a
    ``labelmap.txt``'s, where a palette PNG is read by its colours too) or else in VOC's or
    cnnlab's map colours. ``image`` is the photo as shown, turned as its EXIF orientation says;
    a mask of its size swapped, where the tag of its file (``image_path``) turns it a quarter,
    was drawn on the stored pixels and is turned alike (:mod:`cnnlab.data.orientation`). A
    :class:`CnnlabError` names the file when its size is not ``image``'s or it holds an index
    ``names`` lacks (other than :data:`VOID`)."""
    with Image.open(mask_path) as m:
        if colours is not None and m.mode in ("P", "RGB", "RGBA"):
            m = _colour_mask(np.asarray(m.convert("RGB")), len(names), mask_path, colours)
        elif m.mode in ("RGB", "RGBA") and np.ptp(np.asarray(m)[..., :3], axis=-1).any():
            m = _colour_mask(np.asarray(m), len(names), mask_path)
        if m.mode == "1":  # a 1-bit black-and-white mask: classes 0 and 1
            mask = Image.fromarray(np.asarray(m).astype(np.uint8))
        elif m.mode in (*SIXTEEN_BIT, "I"):  # Pillow's convert("L") clips 300 to 255 (void)
            mask = Image.fromarray(np.asarray(m).astype(np.int32), "I")
        else:
            mask = m if m.mode in ("P", "L") else m.convert("L")
        turn = _quarter_turn(image_path) if m.size == image.size[::-1] != image.size else 1
        if turn != 1:
            mask = Image.fromarray(pixels_as_shown(np.asarray(mask), turn))  # L or I
        elif m.size != image.size:
            raise CnnlabError(
                f"{mask_path}: mask is {m.size[0]}x{m.size[1]}, its image is "
                f"{image.size[0]}x{image.size[1]}"
            )
        resized = np.asarray(mask.resize((image_size, image_size), Image.Resampling.NEAREST))
    unknown = resized[(resized >= len(names)) & (resized != VOID)]
    if unknown.size:
        from cnnlab.data.palettes import grey_palette

        greyed = grey_palette(np.unique(resized), len(names))
        raise CnnlabError(
            f"{mask_path}: class index {int(unknown.max())} is not in "
            f"{listed_in} ({len(names)} classes; {VOID} marks pixels nobody labelled)"
            + (
                f"; its values are the grey levels of {greyed}: a colour mask saved as "
                "greyscale, which loses the classes (keep its palette, or save the class "
                "indices themselves)"
                if greyed
                else ""
            )
        )
    return torch.from_numpy(resized.astype(np.int64))


def _refuse_void_only(masks: torch.Tensor, names: list[str], folder: Path) -> None:
    """Masks of 0 and :data:`VOID` alone: black-and-white masks saved as 0/255, not 0/1."""
    if len(names) > 1 and not ((masks > 0) & (masks != VOID)).any() and (masks == VOID).any():
        raise CnnlabError(
            f"{folder}: the masks hold only 0 and {VOID}, and {VOID} means a pixel "
            "nobody labelled (VOC's void); black-and-white masks must store the class indices "
            "0 and 1"
        )


def folder_segmentation(root: str | Path, image_size: int = 128) -> SegmentationData:
    """``root/images/*``, ``root/masks/*`` (same stem, PNG of class indices, palette or gray;
    255 = not labelled, as in VOC) and ``root/classes.txt`` (background first); or split into
    ``images/train/``, ``masks/train/``, ... or ``train/images/``, ``train/masks/``, ...
    (:mod:`cnnlab.data.split_folders`), whose folders are then the splits; or, without
    ``masks/``, another tool's layout: VOC's (:func:`voc_folder_segmentation`), labelme's
    (:func:`labelme_segmentation`), COCO files (one per split folder, as Roboflow exports them)
    or YOLO polygons (:func:`yolo_segmentation`). Each mask must have its image's size and
    known indices;
    both are resized to ``image_size x image_size`` (the image bilinear, the mask
    nearest-neighbour, so it keeps class indices), as the detection folders are."""
    from cnnlab.data.coco import coco_files_in
    from cnnlab.data.labelme import is_labelme_folder
    from cnnlab.data.voc_folder import is_voc_segmentation_folder

    root = Path(root)
    if not root.is_dir():
        raise CnnlabError(
            f"{root}: not a folder (expected scenes, pets, voc2007, voc2012, a COCO .json, "
            "a YOLO segmentation data.yaml, or a folder with images/, masks/ and classes.txt; "
            "docs/data.md lists every layout)"
        )
    if not has_pair_folder(root, "masks"):  # another tool's layout, if any
        if is_voc_segmentation_folder(root):
            return voc_folder_segmentation(root, image_size)
        if is_labelme_folder(root):
            return labelme_segmentation(root, image_size)
        if coco_files := coco_files_in(root):
            return _coco_files_segmentation(coco_files, image_size, root)
        if has_pair_folder(root, "labels"):
            return yolo_segmentation(root, image_size)
    refuse_class_folders(root, "masks")
    classes_file = root / "classes.txt"
    if not classes_file.is_file():
        raise CnnlabError(f"{classes_file}: missing (one class per line, background first)")
    names = read_names(classes_file)
    files = [
        (
            path,
            masks_dir / path.relative_to(images_dir).with_suffix(".png"),
            split_of(path.relative_to(images_dir), split),
        )
        for images_dir, masks_dir, split in folder_pairs(root, "images", "masks")
        for path in images_under(images_dir)
    ]
    if not files:
        raise CnnlabError(f"{root}: no images under its images/ folder(s)")
    require_image_memory(len(files), image_size, root, 11)  # uint8 RGB + an int64 map
    images, masks, kept = [], [], []
    for path, mask_path, split in files:
        try:  # data check names every bad mask; training stops at the first
            if not mask_path.is_file():
                lossy = sorted(mask_path.parent.glob(f"{mask_path.stem}.*"))
                raise CnnlabError(
                    f"{mask_path}: missing mask for {path.name}"
                    + (  # a JPEG's compression blurs class indices at every edge
                        f"; {lossy[0].name} is there, but masks must be PNG (lossless)"
                        if lossy
                        else ""
                    )
                )
            img = read_image(path, "RGB")
            masks.append(read_mask(mask_path, img, names, image_size, image_path=path))
        except CnnlabError as exc:
            if collected(exc):
                continue
            raise
        images.append(image_tensor(fit_image(img, image_size, "stretch")))
        kept.append(split)
    stacked = _stacked(masks, root / "masks")
    _refuse_void_only(stacked, names, root / "masks")
    return SegmentationData(torch.stack(images), stacked, names, given_splits(kept))


def _stacked(masks: list[torch.Tensor], folder: Path) -> torch.Tensor:
    """The ``(N, H, W)`` maps of a folder's masks; none (every one refused, as data check
    reads them) is an error naming the folder."""
    if not masks:
        raise CnnlabError(f"{folder}: no mask could be read")
    return torch.stack(masks)


def voc_folder_segmentation(root: str | Path, image_size: int = 128) -> SegmentationData:
    """A folder in VOC's layout (:mod:`cnnlab.data.voc_folder`): ``SegmentationClass/<stem>.png``
    with ``JPEGImages/<stem>.*``, the class names (background first) and colours from
    ``labelmap.txt`` (CVAT's export: masks drawn in those colours), else ``classes.txt``, else
    VOC's 21; split by ``ImageSets/Segmentation``'s train and val lists where there are both.
    A mask without its image is left out with a warning; images without a mask are not
    segmentation data (VOC's JPEGImages holds the detection images too)."""
    from cnnlab.data.standard import VOC_CLASSES, voc_splits
    from cnnlab.data.voc_folder import IMAGE_DIRS, image_files_in, read_labelmap

    root = Path(root)
    image_dir = next((root / d for d in IMAGE_DIRS if (root / d).is_dir()), None)
    if image_dir is None:
        raise CnnlabError(f"{root}: SegmentationClass/ but no JPEGImages/ folder beside it")
    colours = None
    if (root / "labelmap.txt").is_file():
        labels = read_labelmap(root / "labelmap.txt")
        names, listed_in = [n for n, _ in labels], "labelmap.txt"
        if all(c is not None for _, c in labels):
            colours = np.asarray([c for _, c in labels], np.uint8)
    elif (root / "classes.txt").is_file():
        names = read_names(root / "classes.txt")
        listed_in = "classes.txt"
    else:
        names, listed_in = ["background", *VOC_CLASSES], "VOC's classes (no labelmap.txt)"
    images_by_stem = image_files_in(image_dir)
    pairs, lonely = [], []
    for mask_path in sorted((root / "SegmentationClass").glob("*.png")):
        image = images_by_stem.get(mask_path.stem)
        (pairs if image is not None else lonely).append((image, mask_path))
    if not pairs:
        raise CnnlabError(
            f"{root / 'SegmentationClass'}: no PNG mask with an image of its name in "
            f"{image_dir.name}/"
        )
    if lonely:
        warnings.warn(
            f"{root}: {counted(len(lonely), 'mask')} with no image in {image_dir.name}/, "
            f"left out, e.g. {lonely[0][1].relative_to(root)}",
            stacklevel=2,
        )
    require_image_memory(len(pairs), image_size, root, 11)
    images, masks, kept = [], [], []
    for image_path, mask_path in pairs:
        try:  # data check names every bad mask; training stops at the first
            img = read_image(image_path, "RGB")
            mask = read_mask(mask_path, img, names, image_size, colours, listed_in, image_path)
        except CnnlabError as exc:
            if collected(exc):
                continue
            raise
        masks.append(mask)
        images.append(image_tensor(fit_image(img, image_size, "stretch")))
        kept.append(mask_path.stem)
    stacked = _stacked(masks, root / "SegmentationClass")
    _refuse_void_only(stacked, names, root / "SegmentationClass")
    splits = voc_splits(root, "Segmentation", kept)
    return SegmentationData(torch.stack(images), stacked, names, splits)


def _coco_files_segmentation(
    files: list[tuple[Path, str | None]], size: int, root: Path
) -> SegmentationData:
    """COCO files read a split at a time (:func:`cnnlab.data.coco.coco_files_in`) as one
    dataset, each file's images in the split its folder names."""
    parts = [coco_segmentation(f, size) for f, _ in files]
    for part in parts[1:]:
        if part.class_names != parts[0].class_names:
            raise CnnlabError(f"{root}: its splits' COCO files list different categories")
    splits = [s for p, (_, s) in zip(parts, files, strict=True) for _ in p.images]
    return SegmentationData(
        torch.cat([p.images for p in parts]),
        torch.cat([p.masks for p in parts]),
        parts[0].class_names,
        given_splits(splits),
    )


def labelme_segmentation(root: str | Path, size: int = 128) -> SegmentationData:
    """A folder labelled in labelme (:mod:`cnnlab.data.labelme`): each image's shapes painted into
    a ``size x size`` class map (background 0, class ``c`` as ``c + 1``, larger shapes first),
    each image stretched to ``size``; its split folders, if any, are the splits."""
    from cnnlab.data.labelme import paint, read_labelme_folder

    items, names = read_labelme_folder(root)
    require_image_memory(len(items), size, root, 11)
    images = [image_to_uint8(i.image, size, 3, "stretch", str(i.source)) for i in items]
    masks = [torch.from_numpy(paint(i, size)) for i in items]
    splits = given_splits([i.split for i in items])
    return SegmentationData(torch.stack(images), torch.stack(masks), ["background", *names], splits)


def yolo_segmentation(root: str | Path, size: int = 128) -> SegmentationData:
    """Ultralytics' segmentation format, a YOLO folder or its ``data.yaml``
    (:func:`cnnlab.data.yolo.read_yolo_folder`) whose label lines are polygons
    ``class x1 y1 x2 y2 x3 y3 ...`` (relative to the image): each image's polygons painted into
    a ``size x size`` class map by pycocotools, as COCO's polygons are (background 0, class ``c``
    as ``c + 1``, larger objects first so a small one in front keeps its pixels)."""
    from cnnlab.data.coco import annotation_mask

    items, names = read_yolo_folder(root)
    require_image_memory(len(items), size, root, 11)
    images, masks = [], []
    for item in items:
        if any(polygon is None for polygon in item.polygons):
            raise CnnlabError(
                f"{item.image}: its label file has boxes; segmentation needs polygons "
                "('class x1 y1 x2 y2 x3 y3 ...', Ultralytics' segmentation labels)"
            )
        shapes = [
            (annotation_mask({"segmentation": [(p * size).ravel().tolist()]}, size, size, ""), c)
            for p, c in zip(item.polygons, item.labels.tolist(), strict=True)
        ]
        semantic = np.zeros((size, size), np.int64)
        for mask, label in sorted(shapes, key=lambda s: -int(s[0].sum())):
            semantic[mask] = label + 1
        masks.append(torch.from_numpy(semantic))
        images.append(image_to_uint8(item.image, size, 3, "stretch"))
    splits = given_splits([item.split for item in items])
    return SegmentationData(torch.stack(images), torch.stack(masks), ["background", *names], splits)


def coco_segmentation(
    path: str | Path, image_size: int = 128, image_dir: Path | None = None
) -> SegmentationData:
    """A COCO file's ``segmentation`` annotations (polygons or RLE) painted into one class map
    per image: background 0, then the categories in id order. Larger objects are painted first,
    so a small object in front of a large one keeps its pixels; crowd regions stay background.
    Maps and images are resized to ``image_size`` (nearest / bilinear)."""
    from cnnlab.data.coco import annotation_mask, read_coco

    coco = read_coco(path)
    require_image_memory(len(coco.images), image_size, path, 11)
    per_image: dict[Any, list[tuple[int, dict[str, Any]]]] = {i: [] for i in coco.images}
    for k, a in coco.annotations:
        per_image[a["image_id"]].append((k, a))
    images, masks = [], []
    for image_id, im in coco.images.items():
        h, w = int(im["height"]), int(im["width"])
        try:  # data check names every bad entry and image; training the first
            file = coco.image_file(image_id, image_dir)
            image = image_to_uint8(file, image_size, 3, "stretch")
        except CnnlabError as exc:
            if collected(exc):
                continue
            raise
        shapes = []
        for k, a in per_image[image_id]:
            if a.get("iscrowd"):
                continue
            try:
                mask = annotation_mask(a, h, w, f"{path}: annotation {k}")
            except CnnlabError as exc:
                if collected(exc):
                    continue
                raise
            shapes.append((mask, coco.cat_index[a["category_id"]]))
        semantic = np.zeros((h, w), np.uint8)
        for mask, cls in sorted(shapes, key=lambda s: -int(s[0].sum())):
            semantic[mask] = cls + 1
        small = Image.fromarray(semantic).resize((image_size, image_size), Image.Resampling.NEAREST)
        masks.append(torch.from_numpy(np.asarray(small).astype(np.int64)))
        images.append(image)
    if not images:  # each image's problem collected: nothing is left to count
        raise CnnlabError(f"{path}: no image could be read")
    return SegmentationData(torch.stack(images), torch.stack(masks), ["background", *coco.names])


def relabelled(data: SegmentationData, known: list[str], source: str) -> SegmentationData:
    """``data`` with its masks' class indices renumbered to a checkpoint's classes ``known``
    (matched by name, :func:`cnnlab.engine.eval_data.class_lookup`); void stays void."""
    from cnnlab.engine.eval_data import class_lookup

    lookup = class_lookup(data.class_names, known, source)
    void = data.masks == VOID
    masks = lookup[data.masks.masked_fill(void, 0)].masked_fill_(void, VOID)
    return SegmentationData(data.images, masks, list(known), data.splits)


def load_segmentation_data(config: SegmentConfig) -> SegmentationData:
    """``config.data``'s images and masks: the scenes, the pets, VOC, a COCO file, a YOLO
    polygon dataset (.yaml) or a mask folder (what ``segment train``, ``eval`` and ``augment``
    read)."""
    if config.data == "scenes":
        return scenes_segmentation(
            config.images, config.image_size, config.num_classes, config.seed
        )
    if config.data == "pets":
        from cnnlab.data.standard import pets_segmentation

        return pets_segmentation(config.data_root or None, config.image_size, config.seed)
    if config.data in ("voc2007", "voc2012"):
        from cnnlab.data.standard import voc_segmentation

        return voc_segmentation(config.data, config.data_root or None, config.image_size)
    if config.data.endswith(".json"):
        return coco_segmentation(config.data, config.image_size)
    if config.data.lower().endswith((".yaml", ".yml")):
        return yolo_segmentation(config.data, config.image_size)
    return folder_segmentation(config.data, config.image_size)
