"""A folder of the user's images: ``root/<class>/*.jpg`` (then a seeded stratified split), or
``root/train/<class>/...`` with ``root/val/...`` (``valid/`` or ``validation/`` as exports name
it) and optionally ``root/test/...`` (without it there is no test split: the val images choose
the best epoch, so they are no test).

Every file is decoded with Pillow, converted to RGB or grayscale, resized (shorter side to
``image_size`` then a centre crop, or stretched), and cached as uint8. Unreadable files (corrupt,
truncated, empty, not an image, or a decompression bomb) are reported by path and skipped; with
``strict`` the first one stops the load. A dataset with no usable image, or a class with none, is
an error before any training starts.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from cnnlab.config import check_resize
from cnnlab.data.classification import (
    ClassificationData,
    Split,
    channel_stats,
    stratified_split,
)
from cnnlab.data.images import open_image, unreadable, with_progress
from cnnlab.data.memory import require_image_memory
from cnnlab.data.split_folders import has_pair_folder, split_dir_of_each, split_dirs
from cnnlab.data.video import VIDEO_SUFFIXES, is_video
from cnnlab.errors import CnnlabError
from cnnlab.words import counted, natural_key

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def images_under(folder: Path, suffixes: Collection[str] = IMAGE_SUFFIXES) -> list[Path]:
    """Every image file (every file of ``suffixes``) under ``folder``, subfolders included, in
    sorted order; hidden files and folders (a leading dot) are left out: macOS writes a
    ``._photo.jpg`` of metadata beside each ``photo.jpg`` copied to a foreign disk, and
    ``.git``, ``.ipynb_checkpoints`` hold copies."""
    return [
        p
        for p in sorted(folder.rglob("*"))
        if p.is_file()
        and p.suffix.lower() in suffixes
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]


def image_files(
    paths: list[str], skipped: list[str] | None = None, videos: bool = False
) -> list[str]:
    """The image paths given, with each folder replaced by the image files under it in natural
    order (:func:`natural_key`: ``frame_2.jpg`` before ``frame_10.jpg``), and its video files
    too with ``videos`` (for the commands that read a video's frames); a folder without any is
    an error naming it.

    With a ``skipped`` list, a folder's files that :func:`~cnnlab.data.images.unreadable` finds
    unreadable are left out and noted there as ``"<file>: <why>"`` (as training skips them): one
    corrupt photo among thousands does not stop a prediction. A file named itself is kept, and
    reading it is an error."""
    files: list[str] = []
    for given in paths:
        if not Path(given).is_dir():
            files.append(given)  # a file, or a missing path: reading it says which
            continue
        suffixes = IMAGE_SUFFIXES | VIDEO_SUFFIXES if videos else IMAGE_SUFFIXES
        found = [str(p) for p in sorted(images_under(Path(given), suffixes), key=natural_key)]
        if not found:
            raise CnnlabError(
                f"{given}: a folder with no image files ({', '.join(sorted(IMAGE_SUFFIXES))})"
                + (f" or videos ({', '.join(sorted(VIDEO_SUFFIXES))})" if videos else "")
            )
        if skipped is not None:  # an image that cannot be read; a video says so as it is read
            why = {f: None if is_video(f) else unreadable(f) for f in found}
            bad = [f"{f}: {reason}" for f, reason in why.items() if reason]
            if len(bad) == len(found):
                raise CnnlabError(
                    f"{given}: none of its {counted(len(found), 'image file')} can be read "
                    f"({bad[0]})"
                )
            skipped += bad
            found = [f for f in found if not why[f]]
        files += found
    return files


def fit_image(img: Image.Image, size: int, resize: str = "center-crop") -> Image.Image:
    """Resize to ``size x size``: shorter side, then centre crop (``center-crop``); or
    ``stretch``."""
    check_resize(resize)
    if resize == "stretch":
        return img.resize((size, size), Image.Resampling.BILINEAR)
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def image_to_uint8(
    source: object, size: int, channels: int, resize: str = "center-crop", name: str = "image"
) -> torch.Tensor:
    """Decode one file to ``(C, size, size)`` uint8; a :class:`CnnlabError` names it if it is
    unreadable. An image a program holds (a Pillow image or numpy array, see
    :func:`~cnnlab.data.images.image_in_memory`) instead of a path is made ready alike, and an
    error calls it ``name``."""
    image = open_image(source, "L" if channels == 1 else "RGB", name, at_least=2 * size)
    return image_tensor(fit_image(image, size, resize))


def image_tensor(img: Image.Image) -> torch.Tensor:
    """A Pillow image as ``(C, H, W)`` uint8 (``C`` = 1 for grey)."""
    arr = np.asarray(img, dtype=np.uint8)
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return torch.from_numpy(arr.copy())


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _scan(root: Path, class_names: list[str]) -> list[tuple[Path, int]]:
    files = []
    for label, name in enumerate(class_names):
        folder = root / name
        if not folder.is_dir():
            continue
        files += [(path, label) for path in images_under(folder)]
    return files


def _decode(
    files: list[tuple[Path, int]],
    size: int,
    channels: int,
    resize: str,
    strict: bool,
    skipped: list[str],
) -> tuple[list[torch.Tensor], list[int]]:
    check_resize(resize)  # not once per file, where it would read as each file's fault
    images, labels = [], []
    for path, label in with_progress(files, "decoding images"):
        try:
            images.append(image_to_uint8(path, size, channels, resize))
            labels.append(label)
        except CnnlabError as exc:
            if strict:
                raise
            skipped.append(str(exc))
    return images, labels


def _refuse_pair_layout(folder: Path, root: Path, names: list[str], verb: str) -> None:
    """``images/`` beside ``labels/`` or ``masks/`` is a detection or segmentation dataset, not
    two classes to tell apart: a :class:`CnnlabError` naming the command that reads it."""
    lower = {n.lower() for n in names}
    if "images" in lower and lower & {"labels", "masks"}:
        other = sorted(lower & {"labels", "masks"})[0]
        task, kind = ("detect", "detection") if other == "labels" else ("segment", "segmentation")
        given = "--checkpoint <its best.pt> " if verb == "eval" else ""
        raise CnnlabError(
            f"{folder}: images/ and {other}/ make a {kind} dataset, not class folders "
            f"(cnnlab {task} {verb} {given}--data {root})"
        )


def refuse_class_folders(root: Path, second: str) -> None:
    """The mirror of :func:`_refuse_pair_layout`: ``root/<class>/<images>`` (or under split
    folders) given where images with their ``second`` (labels, masks) go is a
    :class:`CnnlabError` naming ``cnnlab classify train``, not a missing ``classes.txt``; so
    is one of a dataset's own ``images/`` or ``second/`` folders given for the dataset."""
    name, inside = root.resolve().name, root.resolve().parent
    if (
        name in ("images", second)
        and not has_pair_folder(root, "images")  # a dataset that happens to be named images
        and all(has_pair_folder(inside, n) for n in ("images", second))
    ):
        parent = root.parent if root.name else Path("..")  # `--data .` inside images/
        raise CnnlabError(
            f"{root}: the {name}/ folder of a dataset; give the folder that holds images/ and "
            f"{second}/: --data {parent}"
        )
    if has_pair_folder(root, "images"):
        return
    parents = [root, *(d for d, _ in split_dirs(root))]
    classes = sorted(
        {
            d.name
            for parent in parents
            for d in parent.iterdir()
            if d.is_dir()
            and not d.name.startswith(".")
            and any(f.suffix.lower() in IMAGE_SUFFIXES and f.is_file() for f in d.iterdir())
        }
    )
    if len(classes) >= 2:
        shown = ", ".join(f"{c}/" for c in classes[:3]) + (", ..." if len(classes) > 3 else "")
        raise CnnlabError(
            f"{root}: {len(classes)} folders of images ({shown}) make a classification dataset "
            f"(cnnlab classify train --data {root}); this command reads images/ with {second}/ "
            "beside it"
        )


def load_image_folder(
    root: Path,
    *,
    image_size: int,
    channels: int = 3,
    split_seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    strict: bool = False,
    resize: str = "center-crop",
) -> ClassificationData:
    """Load ``root`` as described in the module docstring."""
    split_dirs = split_dir_of_each(root)
    presplit = "train" in split_dirs
    base = split_dirs["train"] if presplit else root
    class_names = [p.name for p in _class_dirs(base)]
    _refuse_pair_layout(base, root, class_names, "train")
    if not class_names:
        raise CnnlabError(f"{base}: no class folders (expected {base}/<class>/<images>)")
    if len(class_names) == 1:  # every prediction would be right: nothing to learn or measure
        raise CnnlabError(
            f"{base}: one class folder ({class_names[0]}); classes need a folder each, two or more"
        )
    if not presplit:
        return load_labelled_files(
            str(root),
            _scan(root, class_names),
            class_names,
            image_size=image_size,
            channels=channels,
            split_seed=split_seed,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            strict=strict,
            resize=resize,
            unit="class folder",
        )
    skipped: list[str] = []
    parts: dict[str, tuple[list[torch.Tensor], list[int]]] = {}
    sources = {"train": base} | {k: v for k, v in split_dirs.items() if k != "train"}
    scanned = {}
    for split, folder in sources.items():
        extra = sorted({p.name for p in _class_dirs(folder)} - set(class_names))
        if extra:  # its images would be dropped without a word
            raise CnnlabError(
                f"{folder / extra[0]}: a class that {base} does not have "
                "(the classes are train/'s folders)"
            )
        scanned[split] = _scan(folder, class_names)
    n_files = sum(len(files) for files in scanned.values())
    require_image_memory(n_files, image_size, root, channels)
    for split, files in scanned.items():
        parts[split] = _decode(files, image_size, channels, resize, strict, skipped)
    _require_each_class(base, *parts["train"], class_names, skipped, "class folder")
    splits = {
        k: _stack(*parts.get(k, ([], [])), channels, image_size) for k in ("train", "val", "test")
    }
    if not len(splits["val"]):
        raise CnnlabError(
            f"{root}/val: no usable image; add val/<class>/ images or put all "
            "classes directly under the root for an automatic split"
        )
    mean, std = channel_stats(splits["train"].images)
    return ClassificationData(str(root), splits, class_names, mean, std, skipped=skipped)


def _stack(images: list[torch.Tensor], labels: list[int], channels: int, size: int) -> Split:
    if not images:
        return Split(
            torch.zeros(0, channels, size, size, dtype=torch.uint8),
            torch.zeros(0, dtype=torch.int64),
        )
    return Split(torch.stack(images), torch.tensor(labels, dtype=torch.int64))


def _require_each_class(
    where: object,
    images: list[torch.Tensor],
    labels: list[int],
    class_names: list[str],
    skipped: list[str],
    unit: str,
) -> np.ndarray:
    """The images per class, or a :class:`CnnlabError` when there is no usable image at all or
    a class has none."""
    if not images:
        raise CnnlabError(
            f"{where}: no usable image in any {unit}"
            + (f" ({len(skipped)} unreadable)" if skipped else "")
        )
    counts = np.bincount(labels, minlength=len(class_names))
    empty = [n for n, c in zip(class_names, counts, strict=True) if c == 0]
    if empty:
        raise CnnlabError(f"{where}: {unit}(s) with no usable image: {', '.join(empty)}")
    return counts


def load_labelled_files(
    source: str,
    files: list[tuple[Path, int]],
    class_names: list[str],
    *,
    image_size: int,
    channels: int = 3,
    split_seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    strict: bool = False,
    resize: str = "center-crop",
    unit: str = "class",
) -> ClassificationData:
    """Image files with their class indices (a flat class-folder tree's, a CSV file's) decoded
    and split 70/15/15 (by default), stratified by class with ``split_seed``; ``unit``: what
    holds a class, for the errors ("class folder")."""
    if len(class_names) == 1:  # every prediction would be right: nothing to learn or measure
        raise CnnlabError(f"{source}: one class ({class_names[0]}); two or more are needed")
    require_image_memory(len(files), image_size, source, channels)
    skipped: list[str] = []
    images, labels = _decode(files, image_size, channels, resize, strict, skipped)
    counts = _require_each_class(source, images, labels, class_names, skipped, unit)
    small = int(counts.min())
    if small < 3 and (val_fraction > 0 or test_fraction > 0):
        raise CnnlabError(
            f"{source}: class {class_names[int(counts.argmin())]!r} has "
            f"{counted(small, 'image')}; a stratified split needs at least 3 per class"
        )
    full = _stack(images, labels, channels, image_size)
    idx = stratified_split(np.asarray(labels), val_fraction, test_fraction, split_seed)
    splits = {
        k: Split(full.images[torch.from_numpy(i)], full.labels[torch.from_numpy(i)])
        for k, i in idx.items()
    }
    mean, std = channel_stats(splits["train"].images)
    return ClassificationData(source, splits, class_names, mean, std, skipped=skipped)


def load_labelled_folder(
    root: Path,
    class_names: list[str],
    split: str,
    *,
    image_size: int,
    channels: int,
    resize: str = "center-crop",
    strict: bool = False,
) -> tuple[Split, str, list[str]]:
    """A checkpoint's scoring set from a folder of class folders, labelled with ``class_names``'
    indices (:mod:`cnnlab.engine.eval_data`): every image under ``root/<class>/``, or, where
    ``root`` has split folders (``train/``, ``val/`` or ``valid/``, ``test/``), those under
    ``split``'s. A folder may hold fewer classes than ``class_names``, not others. Returns the
    images, what was scored (``all`` or ``split``) and the files skipped as unreadable."""
    if not root.is_dir():
        raise CnnlabError(f"{root}: not a folder of class folders")
    splits = split_dir_of_each(root)
    folder, scored = (root, "all") if not splits else (splits.get(split), split)
    if folder is None:
        raise CnnlabError(
            f"{root} has no {split} folder (its folders name {', '.join(sorted(splits))})"
        )
    _refuse_pair_layout(folder, root, [p.name for p in _class_dirs(folder)], "eval")
    unknown = [p for p in _class_dirs(folder) if p.name not in class_names]
    if unknown:
        shown = ", ".join(class_names[:12]) + (", ..." if len(class_names) > 12 else "")
        raise CnnlabError(f"{unknown[0]}: a class unknown to the checkpoint (its classes: {shown})")
    files = _scan(folder, class_names)
    part, skipped = decode_files(
        files,
        image_size,
        channels,
        resize,
        strict,
        folder,
        "in class folders named after the checkpoint's classes",
    )
    return part, scored, skipped


def decode_files(
    files: list[tuple[Path, int]],
    image_size: int,
    channels: int,
    resize: str,
    strict: bool,
    source: object,
    where: str = "",
) -> tuple[Split, list[str]]:
    """Image files with their class indices as one :class:`Split` to score, and the files
    skipped as unreadable; too many for memory, or none usable, is a :class:`CnnlabError`
    naming ``source``."""
    require_image_memory(len(files), image_size, source, channels)
    skipped: list[str] = []
    images, labels = _decode(files, image_size, channels, resize, strict, skipped)
    if not images:
        raise CnnlabError(
            f"{source}: no usable image"
            + (f" {where}" if where else "")
            + (f" ({len(skipped)} unreadable)" if skipped else "")
        )
    return Split(torch.stack(images), torch.tensor(labels, dtype=torch.int64)), skipped


def distinct_stems(paths: Sequence[str | Path]) -> list[str]:
    """A file name stem for each of ``paths`` under which files written for them cannot
    overwrite each other: their own stems, or, where two share one (``a/0.png`` and ``b/0.png``,
    ``0.png`` and ``0.jpg``), every stem numbered by its position, ``0_0`` and ``1_0``."""
    stems = [Path(p).stem for p in paths]
    if len(set(stems)) < len(stems):
        stems = [f"{i}_{stem}" for i, stem in enumerate(stems)]
    return stems


def keep_image(
    source: str | Path, folder: Path, stem: str, image: np.ndarray | None = None
) -> Path:
    """``source`` copied as ``folder/<stem><its suffix>``; where it is no file (a video's
    frame), ``image`` ``(H, W, 3)`` uint8, the frame already decoded, saved as
    ``folder/<stem>.png``. Returns the file written."""
    import shutil

    path = Path(source)
    if path.is_file() or image is None:
        target = folder / f"{stem}{path.suffix}"
        shutil.copyfile(path, target)
    else:
        target = folder / f"{stem}.png"
        Image.fromarray(image).save(target)
    return target


def copy_images_to(folder: Path, sources: Sequence[str | Path]) -> list[Path]:
    """Each of ``sources`` (an image file, or a video's frame: ``clip.mp4#frame=12`` becomes
    ``clip_000012.png``) copied into ``folder`` under a name no other takes
    (:func:`distinct_stems`); returns the files written, in order."""
    from cnnlab.data.video import frame_file, save_images

    files = [frame_file(s) for s in sources]
    targets = [
        folder / f"{stem}{f.suffix}" for f, stem in zip(files, distinct_stems(files), strict=True)
    ]
    save_images(list(zip(sources, targets, strict=True)))
    return targets


def new_dataset_folder(folder: str | Path) -> Path:
    """``folder`` when a predict command's ``--as-dataset`` can write a dataset there: absent
    or empty (nothing is overwritten, nothing mixed with what is there), and writable; checked
    before any image is predicted."""
    from cnnlab.errors import refuse_unwritable

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CnnlabError(f"{folder}: a file; give a folder for the dataset")
    if folder.is_dir() and any(folder.iterdir()):
        raise CnnlabError(
            f"{folder}: not empty; give a new or empty folder (nothing is overwritten)"
        )
    refuse_unwritable(folder / "dataset")
    return folder


def class_folder_names(names: Sequence[str]) -> list[str]:
    """A folder name for each class: its name, with path separators made ``_``, an empty or
    dot name (``.``, ``..``) prefixed ``class_``, and names that then coincide numbered
    (ImageNet has two classes called "crane")."""
    safe = [n.replace("/", "_").replace("\\", "_") for n in names]
    safe = [f"class_{n}" if n.strip(".") == "" else n for n in safe]
    return [n if safe.count(n) == 1 else f"{n}_{i}" for i, n in enumerate(safe)]


def write_class_folders(
    folder: str | Path, names: Sequence[str], files: Sequence[tuple[str | Path, str]]
) -> dict[str, Any]:
    """Copy each ``(image file, class name)`` to ``folder/<class>/``, the layout
    :func:`load_image_folder` reads (:func:`class_folder_names`; a folder for every class, an
    empty one where no image went, to move misnamed images to); a video's frame
    (``clip.mp4#frame=12``) is written as ``clip_000012.png``. Files sharing a stem are
    numbered (:func:`distinct_stems`). Returns the folder and how many images each class got."""
    from cnnlab.data.video import frame_file, save_images

    folder = new_dataset_folder(folder)
    where = dict(zip(names, class_folder_names(names), strict=True))
    for name in where.values():
        (folder / name).mkdir(parents=True)
    sources = [frame_file(f) for f, _ in files]
    targets = [
        folder / where[label] / f"{stem}{path.suffix}"
        for path, stem, (_, label) in zip(sources, distinct_stems(sources), files, strict=True)
    ]
    save_images([(f, t) for (f, _), t in zip(files, targets, strict=True)])
    counts = {n: sum(label == n for _, label in files) for n in names}
    return {"folder": str(folder), "images": len(files), "per_class": counts}
