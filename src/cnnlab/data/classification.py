"""Classification datasets as in-memory uint8 tensors, split into train / val / test.

Every source (``digits``, ``faces`` or a folder of the user's images) is decoded once, resized to
``image_size`` and cached as ``uint8 (N, C, S, S)``: small, fast to slice into batches, and
augmented per batch on the device. Images become floats only inside the training step, where
:func:`normalize` standardises them with the training split's per-channel mean and standard
deviation (stored in checkpoints so predictions see the same numbers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.data.memory import require_memory
from cnnlab.errors import CnnlabError
from cnnlab.words import counted, nearest

BUNDLED = ("digits", "faces")
# downloaded once with `cnnlab data download`, then read offline
STANDARD = ("mnist", "fashion-mnist", "cifar10", "cifar100")


@dataclass(frozen=True)
class Split:
    """Images ``(N, C, S, S)`` uint8 and labels ``(N,)`` int64."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class ClassificationData:
    """A dataset ready for training: splits, class names and normalisation constants."""

    name: str
    splits: dict[str, Split]
    class_names: list[str]
    mean: tuple[float, ...]  # per channel, of the training split scaled to [0, 1]
    std: tuple[float, ...]
    invert_light: bool = (
        False  # invert user images whose background is light (digits: ink is light)
    )
    skipped: list[str] = field(default_factory=list)  # "path: reason" of files left out

    @property
    def channels(self) -> int:
        return int(self.splits["train"].images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.splits["train"].images.shape[-1])

    def normalization(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}


def normalize(
    images: torch.Tensor,
    mean: tuple[float, ...] | list[float],
    std: tuple[float, ...] | list[float],
) -> torch.Tensor:
    """uint8 ``(B, C, H, W)`` (or floats in [0, 1]) -> standardised float32."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def to_uint8(images01: torch.Tensor) -> torch.Tensor:
    """Floats in [0, 1] -> uint8 with rounding."""
    return (images01.clamp(0, 1) * 255).round().to(torch.uint8)


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images scaled to [0, 1] (std floored at 1e-3)."""
    x = images.float().div_(255).transpose(0, 1).reshape(images.shape[1], -1)
    return (tuple(x.mean(1).tolist()), tuple(x.std(1).clamp_min(1e-3).tolist()))


def require_splittable(n: int) -> None:
    """Train, validation and test need an image each."""
    if n < 3:
        raise CnnlabError(
            f"{counted(n, 'image')}: too few to split into train, validation and test (at least 3)"
        )


def stratified_split(
    labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """Indices of a stratified, seeded train / val / test split (sklearn's
    ``train_test_split``). A held-out split gets at least one image per class; a fraction of 0
    gives an empty split."""
    from sklearn.model_selection import train_test_split

    n, k = len(labels), len(np.unique(labels))
    sizes = {
        name: (max(k, round(frac * n)) if frac > 0 else 0)
        for name, frac in (("test", test_fraction), ("val", val_fraction))
    }
    if n - sizes["test"] - sizes["val"] < k:
        raise CnnlabError(
            f"{counted(n, 'image')}: too few for a stratified split into train/val/test "
            f"over {k} classes; add images or lower --val-fraction/--test-fraction"
        )
    idx = np.arange(n)
    out = {}
    for name in ("test", "val"):
        if sizes[name]:
            idx, out[name] = train_test_split(
                idx, test_size=sizes[name], stratify=labels[idx], random_state=seed
            )
        else:
            out[name] = np.array([], dtype=int)
    return {"train": idx, "val": out["val"], "test": out["test"]}


def resize_batch(images01: torch.Tensor, size: int, source: str = "") -> torch.Tensor:
    """``(N, C, h, w)`` floats -> ``(N, C, size, size)``: area averaging to shrink, bilinear to
    enlarge. A result (float32, then a uint8 copy) that cannot fit in memory is refused first,
    naming ``source``: ``--image-size 20000`` on the digits asked for 2.9 TB, a traceback."""
    if images01.shape[-2:] == (size, size):
        return images01
    n, c = images01.shape[:2]
    require_memory(
        n * c * size * size * 5,
        f"{source or 'the images'}: {n:,} images at {size} px",
        "use a smaller --image-size",
    )
    mode = "area" if min(images01.shape[-2:]) > size else "bilinear"
    kwargs = {} if mode == "area" else {"align_corners": False}
    return F.interpolate(images01, size=(size, size), mode=mode, **kwargs).clamp_(0, 1)


def _from_arrays(
    name: str,
    images01: torch.Tensor,
    labels: np.ndarray,
    class_names: list[str],
    split_seed: int,
    val_fraction: float,
    test_fraction: float,
    invert_light: bool = False,
) -> ClassificationData:
    x = to_uint8(images01)
    y = torch.from_numpy(labels.astype(np.int64))
    parts = stratified_split(labels, val_fraction, test_fraction, split_seed)
    splits = {k: Split(x[torch.from_numpy(i)], y[torch.from_numpy(i)]) for k, i in parts.items()}
    mean, std = channel_stats(splits["train"].images)
    return ClassificationData(name, splits, class_names, mean, std, invert_light)


def load_digits(
    image_size: int = 32,
    split_seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> ClassificationData:
    """scikit-learn's 1,797 real 8x8 handwritten digits, upsampled (1,257 / 270 / 270 images)."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]
    return _from_arrays(
        "digits",
        resize_batch(x, image_size, "digits"),
        bunch.target,
        [str(d) for d in range(10)],
        split_seed,
        val_fraction,
        test_fraction,
        invert_light=True,
    )


def load_faces(
    image_size: int = 32,
    split_seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> ClassificationData:
    """scikit-image's ``lfw_subset``: 100 real 25x25 face crops and 100 non-face crops, the
    slide's "Cat? (0/1)"-style binary problem (class 1 = face)."""
    import skimage.data

    arr = np.asarray(skimage.data.lfw_subset(), dtype=np.float32)
    labels = np.array([1] * 100 + [0] * 100)
    x = torch.from_numpy(arr)[:, None]
    return _from_arrays(
        "faces",
        resize_batch(x, image_size, "faces"),
        labels,
        ["not_face", "face"],
        split_seed,
        val_fraction,
        test_fraction,
    )


def load_classification(
    source: str,
    *,
    image_size: int = 32,
    channels: int | None = None,
    split_seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    strict: bool = False,
    resize: str = "center-crop",
    data_root: str = "",
) -> ClassificationData:
    """A bundled dataset by name (``digits``, ``faces``), a downloaded standard one (``mnist``,
    ``fashion-mnist``, ``cifar10``, ``cifar100``; see ``cnnlab data download``), an image
    folder by path, or a CSV file labelling images (:mod:`cnnlab.data.csv_labels`)."""
    if source == "digits":
        data = load_digits(image_size, split_seed, val_fraction, test_fraction)
    elif source == "faces":
        data = load_faces(image_size, split_seed, val_fraction, test_fraction)
    elif source in STANDARD:
        from cnnlab.data.standard import load_standard_classification

        data = load_standard_classification(
            source, data_root or None, image_size, split_seed, val_fraction or 0.1
        )
    elif source.lower().endswith(".csv") or Path(source).is_dir():
        from cnnlab.data.folder import load_image_folder, load_labelled_files

        settings: dict[str, object] = dict(
            image_size=image_size,
            channels=channels or 3,
            split_seed=split_seed,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            strict=strict,
            resize=resize,
        )
        if Path(source).is_dir():
            return load_image_folder(Path(source), **settings)
        from cnnlab.data.csv_labels import read_label_csv

        table = read_label_csv(source)
        return load_labelled_files(source, table.indexed(), table.class_names, **settings)
    else:
        raise CnnlabError(
            f"--data {source!r}: not a bundled dataset ({', '.join(BUNDLED)}) and not a folder"
            + nearest(source, (*BUNDLED, *STANDARD))
        )
    if channels not in (None, data.channels):
        raise CnnlabError(f"--channels {channels}: the {source} images have {data.channels}")
    return data
