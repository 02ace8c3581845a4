"""Readers for the standard datasets' on-disk formats, feeding the existing tasks.

* IDX (MNIST, Fashion-MNIST): big-endian header ``magic, dims...``, then raw uint8.
* CIFAR binary: records of ``label (1 byte; CIFAR-100: coarse, fine) + 3,072 bytes`` (1,024 red,
  then green, then blue, row-major 32x32). No pickle is read.
* Pascal VOC: ``Annotations/*.xml`` boxes (read by :mod:`cnnlab.data.voc_folder`, as any
  folder of VOC XML files) and ``SegmentationClass`` palette PNGs, with ``JPEGImages``.
* Oxford-IIIT Pet trimaps: ``annotations/trimaps/*.png`` with 1 = pet, 2 = background,
  3 = border.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.classification import (
    ClassificationData,
    Split,
    channel_stats,
    resize_batch,
    stratified_split,
)
from cnnlab.data.download import require
from cnnlab.data.textfiles import read_lines
from cnnlab.errors import CnnlabError

IDX_TYPES = {0x08: np.uint8}
VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
FASHION = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def read_idx(path: Path) -> np.ndarray:
    """An IDX file as an array (``(N, 28, 28)`` images or ``(N,)`` labels)."""
    data = path.read_bytes()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise CnnlabError(f"{path}: not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise CnnlabError(f"{path}: truncated ({body.size} values for shape {dims})")
    return body.reshape(dims)


def read_cifar_binary(path: Path, label_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 3, 32, 32)`` uint8 images and the last label byte of each record."""
    raw = np.frombuffer(path.read_bytes(), np.uint8)
    record = label_bytes + 3072
    if raw.size % record:
        raise CnnlabError(
            f"{path}: size {raw.size} is not a whole number of {record}-byte CIFAR records"
        )
    raw = raw.reshape(-1, record)
    return raw[:, label_bytes:].reshape(-1, 3, 32, 32), raw[:, label_bytes - 1].astype(np.int64)


def _finish(
    name: str,
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    classes: list[str],
    image_size: int,
    split_seed: int,
    val_fraction: float,
) -> ClassificationData:
    def prep(x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.array(x, copy=True))
        if t.dim() == 3:
            t = t[:, None]
        if t.shape[-1] != image_size:
            t = (resize_batch(t.float() / 255, image_size, name) * 255).round().to(torch.uint8)
        return t

    x, y = prep(train_x), torch.from_numpy(train_y.astype(np.int64))
    parts = stratified_split(train_y, val_fraction, 0.0, split_seed)
    splits = {
        "train": Split(x[parts["train"]], y[parts["train"]]),
        "val": Split(x[parts["val"]], y[parts["val"]]),
        "test": Split(prep(test_x), torch.from_numpy(test_y.astype(np.int64))),
    }
    mean, std = channel_stats(splits["train"].images)
    return ClassificationData(name, splits, classes, mean, std)


def load_standard_classification(
    name: str,
    root: str | Path | None = None,
    image_size: int = 32,
    split_seed: int = 0,
    val_fraction: float = 0.1,
) -> ClassificationData:
    """``mnist``, ``fashion-mnist``, ``cifar10`` or ``cifar100`` from its downloaded folder; the
    official test set is the test split, validation is held out of the official training set."""
    folder = require(name, root)
    if name in ("mnist", "fashion-mnist"):

        def idx(f: str) -> np.ndarray:
            return read_idx(folder / f)

        classes = [str(d) for d in range(10)] if name == "mnist" else list(FASHION)
        return _finish(
            name,
            idx("train-images-idx3-ubyte"),
            idx("train-labels-idx1-ubyte"),
            idx("t10k-images-idx3-ubyte"),
            idx("t10k-labels-idx1-ubyte"),
            classes,
            image_size,
            split_seed,
            val_fraction,
        )
    if name == "cifar10":
        base = folder / "cifar-10-batches-bin"
        parts = [read_cifar_binary(base / f"data_batch_{i}.bin", 1) for i in range(1, 6)]
        test = read_cifar_binary(base / "test_batch.bin", 1)
        names_file = base / "batches.meta.txt"
        classes = (
            [c for c in names_file.read_text().split() if c]
            if names_file.exists()
            else list(CIFAR10)
        )
        return _finish(
            name,
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            test[0],
            test[1],
            classes,
            image_size,
            split_seed,
            val_fraction,
        )
    if name == "cifar100":
        base = folder / "cifar-100-binary"
        train, test = (read_cifar_binary(base / f, 2) for f in ("train.bin", "test.bin"))
        names_file = base / "fine_label_names.txt"
        classes = (
            [c for c in names_file.read_text().split() if c]
            if names_file.exists()
            else [str(i) for i in range(100)]
        )
        return _finish(
            name,
            train[0],
            train[1],
            test[0],
            test[1],
            classes,
            image_size,
            split_seed,
            val_fraction,
        )
    raise CnnlabError(f"{name} is not a classification dataset")


def voc_splits(base: Path, kind: str, stems: list[str]) -> dict[str, torch.Tensor] | None:
    """VOC's own splits, ``base/ImageSets/<kind>/{train,val,test}.txt`` (one image id per line),
    as indices into ``stems``; ``None`` when train and val lists are not both there (the data is
    then split at random like any other)."""
    index = {stem: i for i, stem in enumerate(stems)}
    parts = {}
    for split in ("train", "val", "test"):
        listed = base / "ImageSets" / kind / f"{split}.txt"
        if listed.is_file() and (idx := _listed(listed, index)):
            parts[split] = torch.tensor(idx, dtype=torch.int64)
    return parts if {"train", "val"} <= parts.keys() else None


def _listed(path: Path, index: dict[str, int]) -> list[int]:
    """The positions in ``index`` of the image ids a split list names (the first word of each
    line, as VOC's ImageSets and the Pet lists write them); ids not in ``index`` are skipped."""
    ids = [line.split()[0] for line in read_lines(path) if line.strip()]
    return [index[i] for i in ids if i in index]


def voc_detection(name: str, root: str | Path | None, image_size: int):
    """Pascal VOC detection as :class:`cnnlab.engine.detection_data.DetectionData` (trainval +
    test), read as any folder of VOC XML files is
    (:func:`cnnlab.engine.detection_data.voc_folder_data`: VOC's 1-based pixel corners,
    ``ImageSets/Main``'s train, val, and VOC 2007's test as the splits),
    its classes VOC's 20. Objects marked ``difficult`` are kept but flagged: not trained on, and
    neither found nor missed in the evaluation, as VOC's own protocol has it."""
    from cnnlab.engine.detection_data import voc_folder_data

    year = name.removeprefix("voc")
    base = require(name, root) / "VOCdevkit" / f"VOC{year}"
    if not (base / "Annotations").is_dir() or not any((base / "Annotations").glob("*.xml")):
        raise CnnlabError(f"{base / 'Annotations'}: no annotation files")
    return voc_folder_data(str(base), image_size, (VOC_CLASSES, "VOC's 20 classes"))


def pets_segmentation(root: str | Path | None, image_size: int = 128, seed: int = 0):
    """Oxford-IIIT Pet images with trimaps -> classes background, pet, border. The dataset's own
    test list (``annotations/test.txt``) is the test split; 15% of its ``trainval.txt``, drawn
    with ``seed``, is the validation split."""
    from PIL import Image

    from cnnlab.data.folder import image_to_uint8
    from cnnlab.engine.segment_data import SegmentationData

    folder = require("pets", root)
    trimaps = sorted((folder / "annotations" / "trimaps").glob("*.png"))
    trimaps = [t for t in trimaps if not t.name.startswith("._")]
    if not trimaps:
        raise CnnlabError(f"{folder}: no trimaps under annotations/trimaps")
    images, masks = [], []
    for t in trimaps:
        images.append(image_to_uint8(folder / "images" / f"{t.stem}.jpg", image_size, 3, "stretch"))
        with Image.open(t) as m:
            tri = np.asarray(
                m.convert("L").resize((image_size, image_size), Image.Resampling.NEAREST)
            )
        if tri.max() > 3:
            raise CnnlabError(f"{t}: trimap values must be 1, 2 or 3")
        masks.append(torch.from_numpy(np.select([tri == 1, tri == 3], [1, 2], 0).astype(np.int64)))
    splits = _pets_splits(folder / "annotations", [t.stem for t in trimaps], seed)
    return SegmentationData(
        torch.stack(images), torch.stack(masks), ["background", "pet", "border"], splits
    )


def _pets_splits(annotations: Path, stems: list[str], seed: int) -> dict[str, torch.Tensor] | None:
    """``test`` from ``test.txt``; ``train`` and ``val`` (15%, seeded) from ``trainval.txt``;
    ``None`` when the lists are missing or leave a split empty."""
    index = {stem: i for i, stem in enumerate(stems)}
    listed = {}
    for name in ("trainval", "test"):
        path = annotations / f"{name}.txt"
        if not path.is_file():
            return None
        listed[name] = _listed(path, index)
    trainval = torch.tensor(listed["trainval"], dtype=torch.int64)
    order = trainval[torch.randperm(len(trainval), generator=torch.Generator().manual_seed(seed))]
    n_val = max(1, round(0.15 * len(order)))
    splits = {
        "train": order[n_val:],
        "val": order[:n_val],
        "test": torch.tensor(listed["test"], dtype=torch.int64),
    }
    return splits if all(len(v) for v in splits.values()) else None


def voc_segmentation(name: str, root: str | Path | None, image_size: int = 128):
    """Pascal VOC semantic segmentation: ``SegmentationClass/*.png`` (palette indices 0 =
    background, 1-20 the classes, 255 = the "void" border, neither trained on nor scored) with
    their ``JPEGImages``, split as VOC splits it (``ImageSets/Segmentation``: train and val);
    read as any folder in VOC's layout is
    (:func:`cnnlab.engine.segment_data.voc_folder_segmentation`, its classes VOC's 21 where no
    ``labelmap.txt`` or ``classes.txt`` says otherwise)."""
    from cnnlab.engine.segment_data import voc_folder_segmentation

    year = name.removeprefix("voc")
    return voc_folder_segmentation(require(name, root) / "VOCdevkit" / f"VOC{year}", image_size)
