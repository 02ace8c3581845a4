"""scikit-learn's handwritten digits (1,797 real 8x8 scans, 10 classes), ready for LeNet.

The 8x8 images (intensities 0-16) are scaled to [0, 1], upsampled to ``image_size`` square with
bilinear interpolation and standardised with the constants below. The split is stratified and
seeded by ``split_seed`` alone, so runs with different training seeds are scored on the same test
images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# Mean and standard deviation of the upsampled digits in [0, 1] (all 1,797 images at 32x32).
MEAN, STD = 0.305, 0.324
CLASS_NAMES = [str(d) for d in range(10)]


@dataclass(frozen=True)
class Split:
    """Images ``(N, 1, S, S)`` float32, standardised, and labels ``(N,)`` int64."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


def normalize(images01: torch.Tensor) -> torch.Tensor:
    """Standardise images in [0, 1] the way the digits model was trained."""
    return (images01 - MEAN) / STD


def upsample(images01: torch.Tensor, image_size: int) -> torch.Tensor:
    """``(N, 1, h, w)`` in [0, 1] -> ``(N, 1, S, S)`` by bilinear interpolation."""
    return F.interpolate(
        images01, size=(image_size, image_size), mode="bilinear", align_corners=False
    ).clamp_(0, 1)


def load_digits_splits(
    image_size: int = 32,
    split_seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> dict[str, Split]:
    """Train / val / test splits of the digits, stratified by class.

    With the defaults: 1,257 / 270 / 270 images.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]
    y = torch.from_numpy(bunch.target.astype(np.int64))
    x = normalize(upsample(x, image_size))
    idx = np.arange(len(y))
    rest, test = train_test_split(
        idx, test_size=test_fraction, stratify=y.numpy(), random_state=split_seed
    )
    train, val = train_test_split(
        rest,
        test_size=val_fraction / (1 - test_fraction),
        stratify=y.numpy()[rest],
        random_state=split_seed,
    )
    return {name: Split(x[i], y[i]) for name, i in (("train", train), ("val", val), ("test", test))}


def preprocess_image(path: str, image_size: int = 32) -> torch.Tensor:
    """A user's image file -> ``(1, S, S)`` standardised like the digits.

    The digits are light strokes on a dark background; an image whose mean is above one half
    (dark ink on white paper) is inverted to match.
    """
    from cnnlab.data.images import read_image

    arr = np.asarray(read_image(path, "L"), dtype=np.float32) / 255.0
    x = torch.from_numpy(arr)[None, None]
    if x.mean() > 0.5:
        x = 1.0 - x
    x = F.interpolate(x, size=(image_size, image_size), mode="area").clamp_(0, 1)
    return normalize(x)[0]
