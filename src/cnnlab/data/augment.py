"""Data augmentation: every method on the slide "Common augmentation method", and random erasing.

Mirroring, random cropping, rotation, shearing, local warping and colour shifting come from
kornia (batch-wise, on tensors, on any device). AlexNet's PCA colour augmentation ("fancy PCA",
Krizhevsky et al. 2012, section 4.1) is not in kornia and is implemented here in kornia's style.
All operate on float images in [0, 1], ``(B, C, H, W)``, before normalisation.

Names accepted by :func:`build_augmentation` (``--augment flip,crop,...``):

=========  ==================================================================================
flip       mirroring: horizontal flip, p = 0.5
crop       random cropping: pad by 1/8 of the size and crop back (translation, as for digits)
rcrop      random resized crop (scale 0.6-1, the ImageNet recipe), p = 1
rotate     rotation by up to +-15 degrees
shear      shearing by up to +-10 degrees
warp       local warping: an elastic deformation (Simard et al. 2003)
tps        local warping by a random thin-plate spline
color      colour shifting: per-channel RGB shifts of up to +-20/255 (the slide's +20,-20,+20)
           plus brightness/contrast/saturation jitter (brightness/contrast only for grayscale)
pca        PCA colour augmentation along the training set's RGB principal components
erase      random erasing (Zhong et al. 2017; Cutout, DeVries & Taylor 2017): one rectangle of
           2-33% of the image, aspect 0.3-3.3, set to 0 in every image (not on the slide; on
           the faces default it lifted unseen-digit verification 0.873 -> 0.889, one-shot
           0.876 -> 0.896, median of 3 seeds, where p = 0.5 gave 0.873 / 0.885)
=========  ==================================================================================

With ``data_keys`` including ``bbox_xyxy``, ``mask`` or ``keypoints`` the geometric transforms
move those with the image (kornia's ``AugmentationSequential``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch

with warnings.catch_warnings():  # kornia 0.7 decorates with torch.cuda.amp, which torch >= 2.4
    # deprecates: a FutureWarning at every import, about kornia's code, not the user's
    warnings.filterwarnings("ignore", "`torch.cuda.amp.custom_fwd", FutureWarning)
    import kornia.augmentation as K

from cnnlab.errors import CnnlabError
from cnnlab.words import nearest

AUGMENTATIONS = (
    "flip",
    "crop",
    "rcrop",
    "rotate",
    "shear",
    "warp",
    "tps",
    "color",
    "pca",
    "erase",
)


def pca_basis(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues ``(3,)`` and eigenvectors ``(3, 3)`` (columns) of the RGB covariance of every
    pixel in ``images`` (uint8 or [0, 1] floats, ``(N, 3, H, W)``), as in AlexNet section 4.1."""
    if images.shape[1] != 3:
        raise CnnlabError("PCA colour augmentation needs RGB images (3 channels)")
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    pixels = x.transpose(0, 1).reshape(3, -1)
    cov = torch.cov(pixels)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)
    return eigenvalues.clamp_min(0), eigenvectors


class RandomPCAColor(K.IntensityAugmentationBase2D):
    """AlexNet's colour augmentation: add ``[p1 p2 p3] [a1 l1, a2 l2, a3 l3]^T`` to every pixel,
    ``a_i ~ N(0, sigma)`` drawn once per image (sigma = 0.1 in the paper), ``l_i, p_i`` the
    eigenvalues and eigenvectors of the training set's RGB covariance."""

    def __init__(
        self,
        eigenvalues: torch.Tensor,
        eigenvectors: torch.Tensor,
        sigma: float = 0.1,
        p: float = 1.0,
    ) -> None:
        super().__init__(p=p)
        self.register_buffer("eigenvalues", eigenvalues.float())
        self.register_buffer("eigenvectors", eigenvectors.float())
        self.sigma = sigma

    def generate_parameters(self, batch_shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
        return {"alpha": torch.randn(batch_shape[0], 3) * self.sigma}

    def apply_transform(
        self,
        input: torch.Tensor,
        params: dict[str, torch.Tensor],
        flags: dict[str, Any],
        transform: torch.Tensor | None = None,
    ) -> torch.Tensor:
        alpha = params["alpha"].to(input)
        shift = (alpha * self.eigenvalues.to(input)) @ self.eigenvectors.to(input).T  # (B, 3)
        return (input + shift[:, :, None, None]).clamp(0, 1)


def _one(
    name: str,
    image_size: int,
    channels: int,
    pca: tuple[torch.Tensor, torch.Tensor] | None,
    targets: bool = False,
) -> K.AugmentationBase2D:
    if name == "flip":
        return K.RandomHorizontalFlip()
    if name == "crop":
        return K.RandomCrop((image_size, image_size), padding=max(1, image_size // 8))
    if name == "rcrop":
        # with masks or boxes: one sampling grid for the image and its targets (kornia's default
        # "slice" resizes masks by F.interpolate's nearest, which before kornia 0.9 put them 0.4
        # px up and left of their image); 4x slower at 128 px, so images alone keep "slice"
        mode = "resample" if targets else "slice"
        return K.RandomResizedCrop((image_size, image_size), scale=(0.6, 1.0), cropping_mode=mode)
    if name == "rotate":
        return K.RandomRotation(15.0, p=0.5)
    if name == "shear":
        return K.RandomAffine(degrees=0.0, shear=10.0, p=0.5)
    if name == "warp":
        return K.RandomElasticTransform(sigma=(8.0, 8.0), alpha=(1.0, 1.0), p=0.5)
    if name == "tps":
        return K.RandomThinPlateSpline(scale=0.1, p=0.5)
    if name == "color":
        if channels == 3:
            return K.AugmentationSequential(
                K.RandomRGBShift(20 / 255, 20 / 255, 20 / 255, p=0.5),
                K.ColorJiggle(0.2, 0.2, 0.2, p=0.5),
            )
        return K.ColorJiggle(0.2, 0.2, p=0.5)
    if name == "erase":  # kornia's defaults for the rectangle; every image gets one (p = 1)
        return K.RandomErasing(scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0.0, p=1.0)
    if name == "pca":
        if pca is None:
            raise CnnlabError(
                "the pca augmentation needs RGB images (eigenvectors of the "
                "training set's colour covariance)"
            )
        return RandomPCAColor(*pca)
    raise CnnlabError(
        f"unknown augmentation {name!r}{nearest(name, AUGMENTATIONS)}; choose from "
        + ", ".join(AUGMENTATIONS)
    )


def parse_augment(text: str) -> tuple[str, ...]:
    """``"flip,crop"`` -> ``("flip", "crop")``; ``""`` or ``"none"`` -> ``()``."""
    names = tuple(n.strip() for n in text.split(",") if n.strip() and n.strip() != "none")
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise CnnlabError(
            f"unknown augmentation {unknown[0]!r}{nearest(unknown[0], AUGMENTATIONS)}; choose "
            f"from {', '.join(AUGMENTATIONS)}"
        )
    return names


def build_augmentation(
    names: Sequence[str],
    *,
    image_size: int,
    channels: int,
    pca: tuple[torch.Tensor, torch.Tensor] | None = None,
    data_keys: Sequence[str] = ("input",),
) -> K.AugmentationSequential | None:
    """A kornia pipeline applying ``names`` in order, or ``None`` for no augmentation."""
    if not names:
        return None
    if set(data_keys) - {"input"} and {"warp", "tps"} & set(names):
        words = {"bbox_xyxy": "boxes", "keypoints": "landmarks", "mask": "masks"}
        moved = " and ".join(words.get(k, k) for k in data_keys if k != "input")
        raise CnnlabError(f"warp/tps cannot move the {moved} with the image; leave them out here")
    if set(data_keys) - {"input"} and "erase" in names:
        raise CnnlabError(
            "erase would hide objects that their boxes, masks or landmarks still mark; leave it "
            "out here"
        )
    targets = bool(set(data_keys) - {"input"})
    augs = [_one(n, image_size, channels, pca, targets) for n in names]
    return K.AugmentationSequential(*augs, data_keys=list(data_keys))


def mirror_keypoint_pairs(
    keypoints: torch.Tensor, flipped: torch.Tensor, pairs: Sequence[tuple[int, int]]
) -> torch.Tensor:
    """After a horizontal mirror a left eye sits where the right one was: swap the indices of each
    ``(left, right)`` pair in the mirrored samples.
    ``keypoints (B, K, 2)``, ``flipped (B,)`` bool."""
    out = keypoints.clone()
    for left, right in pairs:
        out[flipped, left], out[flipped, right] = (
            keypoints[flipped, right],
            keypoints[flipped, left],
        )
    return out
