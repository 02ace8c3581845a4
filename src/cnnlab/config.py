"""Configuration: one frozen dataclass per concern, validated on creation.

The CLI parses flags into these; engines receive them and pass plain values on. Model builders
never see them. The module imports no torch: the command line builds its options (and their
defaults) from these classes, and answers ``--help`` or a mistyped value at once.
"""

from __future__ import annotations

import numbers
import os
import re
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from cnnlab.errors import CnnlabError

# numpy's and scikit-learn's generators take seeds in [0, 2**32 - 1]; torch takes more
MAX_SEED = 2**32 - 1

# ONNX operator set of `cnnlab export` (:mod:`cnnlab.engine.export`): ONNX Runtime runs it
# everywhere and every cnnlab model exports at it
DEFAULT_OPSET = 17

# how a folder's images become squares (cnnlab.data.folder.fit_image): the shorter side to the
# size, then the centre cut out; or both sides to the size
RESIZE_MODES = ("center-crop", "stretch")


def check_resize(resize: str) -> None:
    """Refuse a resize mode other than :data:`RESIZE_MODES`."""
    if resize not in RESIZE_MODES:
        raise CnnlabError(f"--resize must be {' or '.join(RESIZE_MODES)}, got {resize!r}")


def check_settings(
    config: object,
    at_least_one: tuple[str, ...] = (),
    positive: tuple[str, ...] = (),
    non_negative: tuple[str, ...] = (),
) -> None:
    """Refuse a config's out-of-range numbers with the CLI option's name, so the Python API fails
    as clearly as the command line (NaN fails every test: ``not nan > 0``). Every ``seed`` and
    ``*_seed`` field is checked as well: an integer in [0, MAX_SEED]; and every field holds
    the kind of value its annotation names (``epochs="5"`` is refused by name, not with a
    ``TypeError`` from a comparison deep inside)."""
    _check_kinds(config)
    names = [f.name for f in fields(config)]  # type: ignore[arg-type]
    seeds = [n for n in names if n == "seed" or n.endswith("_seed")]
    rules = [(n, f"an integer in [0, {MAX_SEED}]", is_seed) for n in seeds]
    rules += [(n, ">= 1", lambda v: v >= 1) for n in at_least_one]
    rules += [(n, "> 0", lambda v: v > 0) for n in positive]
    rules += [(n, ">= 0", lambda v: v >= 0) for n in non_negative]
    for name, bound, holds in rules:
        value = getattr(config, name)
        if not holds(value):
            raise CnnlabError(f"--{name.replace('_', '-')} must be {bound}, got {value}")


# a field's annotation -> the values it takes (int for a float; never a bool for a number)
_KINDS: dict[str, tuple[type, str]] = {
    "int": (numbers.Integral, "an integer"),
    "float": (numbers.Real, "a number"),
    "str": (str, "a string"),
    "bool": (bool, "True or False"),
}


def kind_mismatch(kind: str, value: object) -> str:
    """What ``value`` should have been ("an integer", "a number", "a string", "True or False")
    when it is not of the kind an annotation names (``"int"``, ``"float"``, ``"str"``,
    ``"bool"``; an int passes for a float, a bool for no number); ``""`` when it is, or when the
    annotation names another kind."""
    if kind not in _KINDS:
        return ""
    expected, words = _KINDS[kind]
    if not isinstance(value, expected) or (kind != "bool" and isinstance(value, bool)):
        return words
    return ""


def _check_kinds(config: object) -> None:
    """Each field's value of its annotation's kind (a path given for a ``str`` is made one, a
    NumPy number a Python one)."""
    for f in fields(config):  # type: ignore[arg-type]
        if f.name == "seed" or f.name.endswith("_seed"):
            continue  # checked with their range, below
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        if kind not in _KINDS:
            continue
        value = getattr(config, f.name)
        if kind == "str" and isinstance(value, os.PathLike):  # out=Path("runs/x"): a path is fine
            value = os.fspath(value)
            object.__setattr__(config, f.name, value)  # the dataclass is frozen
        if words := kind_mismatch(kind, value):
            raise CnnlabError(
                f"--{f.name.replace('_', '-')} must be {words}, got {value!r} "
                f"({type(value).__name__})"
            )
        if kind in ("int", "float") and type(value) not in (int, float):
            # numpy's numbers as Python's: config.json and a weights-only checkpoint take those
            object.__setattr__(config, f.name, int(value) if kind == "int" else float(value))


def check_freeze(config: Any) -> None:
    """``--freeze`` of a training config: ``none``, ``backbone`` or ``stages:K`` (K >= 0; its
    upper bound is the model's, checked once it is built), and not beside a
    ``--backbone-lr-mult`` it would make meaningless."""
    policy = config.freeze
    if policy not in ("none", "backbone") and not re.fullmatch(r"stages:\d+", policy):
        raise CnnlabError(
            f"--freeze must be none, backbone or stages:K (K a whole number), got {policy!r}"
        )
    if config.backbone_lr_mult != 1.0 and policy == "backbone":
        raise CnnlabError(
            "--backbone-lr-mult scales the backbone's learning rate, and --freeze backbone "
            "trains none of it (--freeze stages:K or none trains some)"
        )


def is_seed(value: object) -> bool:
    """A seed every generator here accepts: an int (not a bool) in [0, MAX_SEED]."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SEED


@dataclass(frozen=True)
class ClassifyTrainConfig:
    """How to train a classifier (``cnnlab classify train``)."""

    model: str = "lenet5"  # registered model name (`cnnlab models`)
    data: str = "digits"  # digits, faces, mnist, fashion-mnist, cifar10, cifar100, or a folder
    data_root: str = ""  # where `cnnlab data download` put the standard datasets (default cache)
    epochs: int = 30  # passes over the training split
    patience: int = 0  # stop after this many epochs without a better val accuracy; 0: never
    batch_size: int = 64  # images per optimisation step (over all processes when distributed)
    lr: float = 3e-3  # peak learning rate of AdamW (linear warm-up, then cosine decay)
    weight_decay: float = 5e-4  # AdamW's decoupled weight decay
    augment: str = "auto"  # comma list from cnnlab.data.augment, "none", or auto (per dataset)
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    class_weights: str = "none"  # none, balanced (class c's loss times n / (k n_c)), or 1,2,...
    seed: int = 0  # seeds weights, shuffling and augmentation
    split_seed: int = 0  # seeds the train/val/test split (kept apart so seeds share a test set)
    val_fraction: float = 0.15  # share of a folder (or bundled set) held out for validation
    test_fraction: float = 0.15  # share held out for the final test
    image_size: int = 32  # images are resized to image_size x image_size
    channels: int = 0  # 1 (gray) or 3 (RGB) for folders; 0 = the dataset's own (folders: 3)
    resize: str = "center-crop"  # center-crop or stretch (folders)
    strict: bool = False  # stop at the first unreadable image instead of skipping it
    pretrained: str = ""  # a cnnlab checkpoint or torchvision weights file to start from
    freeze: str = "none"  # none, backbone, or stages:K (the first K backbone blocks)
    backbone_lr_mult: float = 1.0  # learning-rate factor for pretrained (non-head) layers
    cache_features: bool = False  # with --freeze backbone: run the backbone once, train the head
    precision: str = "auto"  # auto, fp32 or bf16 (autocast)
    channels_last: str = "auto"  # auto, on or off (memory layout)
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps
    tensorboard: bool = False  # also log to TensorBoard (needs the tensorboard extra)
    out: str = ""  # run folder; empty means runs/classify/<model>-<data>[-N], never overwriting

    def __post_init__(self) -> None:
        check_settings(
            self,
            at_least_one=("epochs", "batch_size", "image_size"),
            positive=("lr",),
            non_negative=("weight_decay", "backbone_lr_mult", "patience"),
        )
        if not 0 <= self.label_smoothing < 1:
            raise CnnlabError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if not (
            0 <= self.val_fraction < 1
            and 0 <= self.test_fraction < 1
            and self.val_fraction + self.test_fraction < 1
        ):
            raise CnnlabError(
                "--val-fraction and --test-fraction must be in [0, 1) and sum below 1"
            )
        check_resize(self.resize)
        if self.channels not in (0, 1, 3):
            raise CnnlabError(f"--channels must be 1 or 3, got {self.channels}")
        check_freeze(self)
        if self.cache_features and self.freeze != "backbone":
            raise CnnlabError(
                "--cache-features needs --freeze backbone (the features must not "
                "change while the head trains)"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ClassifyTrainConfig:
        """Rebuild from ``to_dict`` output, ignoring keys this version does not know."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


# objects drawn per scene (cnnlab.data.scenes), at most: 18-45% of the image wide and each at
# most half hidden, no more than about 25 show at once (measured: 50 drawn, 19 visible on
# average, 24 at most; 100 drawn, the same); --max-objects 100000 drew for minutes to no end
MAX_OBJECTS = 50


def check_max_objects(max_objects: int) -> None:
    """Refuse ``--max-objects`` above :data:`MAX_OBJECTS` before any scene is drawn."""
    if max_objects > MAX_OBJECTS:
        raise CnnlabError(
            f"--max-objects {max_objects}: at most {MAX_OBJECTS} (objects are 18-45% of the "
            "image wide and at most half hidden: no more than about 25 ever show at once)"
        )


@dataclass(frozen=True)
class LocalizeConfig:
    """``cnnlab localize train`` settings."""

    data: str = "scenes"  # scenes, a YOLO label folder or a COCO .json (first object per image)
    backbone: str = "convnet_small"  # any registered classifier
    landmarks: bool = False  # also regress the scenes' five landmarks
    images: int = 3000  # scenes to generate
    image_size: int = 64
    num_classes: int = 3
    epochs: int = 15  # the measured recipe: 96.2-96.9% class accuracy, mean IoU 0.67-0.69 in ~65 s
    patience: int = 0  # stop after this many epochs without a better val score; 0: never
    batch_size: int = 64
    lr: float = 3e-3
    pretrained: str = ""  # weights for the backbone: torchvision's, or a cnnlab checkpoint
    freeze: str = "none"  # none, backbone, or stages:K (the backbone's first K blocks)
    backbone_lr_mult: float = 1.0  # learning-rate factor for the backbone
    loss: str = "practical"  # practical (BCE + squared error + CE) or squared (the slide)
    mirror: bool = True  # random horizontal mirroring (swaps left/right landmarks)
    # auto: fp32 with channels-last. bf16 (--precision bf16) trains the default recipe in 53 s
    # instead of 76 s but its boxes were worse on 3 seeds of 3 (test mean IoU 0.612 / 0.628 /
    # 0.646 against 0.629 / 0.636 / 0.664; also with the head kept in fp32)
    precision: str = "auto"
    seed: int = 0
    device: str = "auto"
    out: str = ""  # run folder; empty: runs/localize/run, or run-2, run-3... (never overwriting)
    # runs saved before a setting existed trained this way (so --resume continues them exactly)
    ADDED_LATER: ClassVar[dict[str, Any]] = {"precision": "fp32"}

    def __post_init__(self) -> None:
        check_settings(
            self,
            at_least_one=("images", "image_size", "num_classes", "epochs", "batch_size"),
            positive=("lr",),
            non_negative=("patience", "backbone_lr_mult"),
        )
        check_freeze(self)
        if self.loss not in ("practical", "squared"):
            raise CnnlabError(f"--loss must be practical or squared, got {self.loss!r}")


@dataclass(frozen=True)
class DetectConfig:
    """``cnnlab detect train`` settings."""

    data: str = "scenes"  # scenes, a YOLO label folder, a COCO .json file, voc2007 or voc2012
    data_root: str = ""  # where `cnnlab data download` put VOC (default cache)
    backbone: str = "convnet_small"
    images: int = 4000  # scenes to generate (train + val + test)
    image_size: int = 128
    num_classes: int = 3
    max_objects: int = 6
    anchors: int = 3  # k-means anchors from the training boxes
    epochs: int = 20
    patience: int = 0  # stop after this many epochs without a better val score; 0: never
    batch_size: int = 32
    lr: float = 2e-3
    pretrained: str = ""  # weights for the backbone: torchvision's, or a cnnlab checkpoint
    freeze: str = "none"  # none, backbone, or stages:K (the backbone's first K blocks)
    backbone_lr_mult: float = 1.0  # learning-rate factor for the backbone
    mirror: bool = True
    augment: str = ""  # extra kornia augmentations that move the boxes: color, rotate, shear...
    # auto: bf16 autocast + channels-last where they were measured faster (the default
    # convnet_small backbone: 3.9x the images per second at 128 px; the default recipe in 5.6
    # instead of 9.9 minutes, test mAP@0.5 0.907 / 0.918 against 0.902 / 0.916 on seeds 0 / 1)
    precision: str = "auto"
    seed: int = 0
    device: str = "auto"
    out: str = ""  # run folder; empty: runs/detect/run, or run-2, run-3... (never overwriting)
    # runs saved before a setting existed trained this way (so --resume continues them exactly)
    ADDED_LATER: ClassVar[dict[str, Any]] = {"precision": "fp32"}

    def __post_init__(self) -> None:
        check_settings(
            self,
            at_least_one=("images", "image_size", "num_classes", "anchors", "epochs", "batch_size"),
            positive=("lr",),
            non_negative=("patience", "backbone_lr_mult"),
        )
        check_freeze(self)
        check_max_objects(self.max_objects)  # before any scene is drawn


@dataclass(frozen=True)
class SegmentConfig:
    """``cnnlab segment train`` settings."""

    data: str = "scenes"  # scenes, pets, voc2007/2012, a folder with images/ + masks/, COCO .json
    data_root: str = ""  # where `cnnlab data download` put pets (default cache)
    model: str = "unet"
    images: int = 2000
    image_size: int = 128
    num_classes: int = 3
    epochs: int = 12
    patience: int = 0  # stop after this many epochs without a better val score; 0: never
    batch_size: int = 16
    lr: float = 3e-3
    # weights for unet_resnet18's ResNet encoder: torchvision's resnet18, or a cnnlab checkpoint
    pretrained: str = ""
    freeze: str = "none"  # none, backbone, or stages:K (that encoder's first K blocks)
    backbone_lr_mult: float = 1.0  # learning-rate factor for that encoder
    loss: str = "ce+dice"
    augment: str = "flip"  # geometric (flip, rotate, shear, crop): image and mask alike
    class_weights: str = ""  # balanced (by pixels), a comma list (background first), or none
    precision: str = "auto"
    seed: int = 0
    device: str = "auto"
    out: str = ""  # run folder; empty: runs/segment/run, or run-2, run-3... (never overwriting)

    def __post_init__(self) -> None:
        check_settings(
            self,
            at_least_one=("images", "image_size", "num_classes", "epochs", "batch_size"),
            positive=("lr",),
            non_negative=("patience", "backbone_lr_mult"),
        )
        check_freeze(self)


FACE_METHODS = ("cosface", "triplet", "similarity")  # what `faces train --method` takes
# what `faces train --mining` takes: cnnlab.losses.triplet.MINING, or random triplets
FACE_MINING = ("batch_hard", "batch_all", "semi_hard", "random")
# images a faces batch holds at most (P x K, plus twice as many glyphs): triplets grow as P x K^2
FACE_MAX_BATCH = 2048


@dataclass(frozen=True)
class FacesConfig:
    """``cnnlab faces train`` settings."""

    data: str = "digits"  # digits, or an identity folder root/<person>/*.jpg
    # identities held out of training (names); "": digits 6-9, other data a fifth of its
    # identities, the same ones every run (engine.faces.held_out_names)
    unseen: str = ""
    backbone: str = "lenet5"
    embedding_dim: int = 128
    pool_size: int = 4  # spatial grid kept before the embedding layer (1 = global pooling);
    # measured on the digits default: 4x4 lifts one-shot identification from 0.53 to 0.67
    # cosface (large-margin softmax over the training identities), triplet (with mining), or
    # similarity (a learned similarity on pairs); measured on the digits default, one-shot
    # identification of unseen digits (benchmarks/faces_methods.py): semi-hard triplets 0.88,
    # cosface 0.88, random triplets 0.86, batch-hard triplets 0.72, learned similarity 0.75.
    # With random erasing (median of seeds 0-4): cosface 0.902, triplets 0.888, at the same
    # verification (0.884 / 0.888); the default stays the slides' triplet loss
    method: str = "triplet"
    mining: str = "semi_hard"  # batch_hard, batch_all, semi_hard (FaceNet), or random
    alpha: float = 0.2  # triplet margin
    margin: float = 0.2  # cosface margin m
    scale: float = 16.0  # cosface scale s
    # the learned similarity's features (slide "Learning the similarity function"): l1,
    # |f1[i] - f2[i]|, or chi2, (f1[i] - f2[i])^2 / (f1[i] + f2[i]) (magnitudes, guarded).
    # Measured on the digits default, seeds 0/1/2, medians: chi2 verification 0.828, one-shot
    # 0.825; l1 0.817 / 0.801 (chi2 better one-shot on every seed); l1 stays, the slide's first
    similarity: str = "l1"
    # dihedral: rotations and mirror images of the training identities become new identities
    # (Omniglot practice; right for glyphs, wrong for faces); auto = dihedral for digits only
    identities: str = "auto"
    # glyphs: every batch also holds random pen-stroke glyphs, each an identity
    # (cnnlab.data.glyphs); auto = glyphs for digits only. Measured on the digits default,
    # one-shot identification of unseen digits (cosface): 0.78 without, 0.85 with
    synthetic: str = "auto"
    synthetic_identities: int = 2000
    # whiten the embedding on drawings of new synthetic identities after training (triplet and
    # cosface runs that use them). Measured on the digits default, median of 3 seeds:
    # verification 0.865 -> 0.877, one-shot 0.859 -> 0.884, open-set rejection 0.81 -> 0.94
    whiten: bool = True
    p: int = 16  # identities per batch (and twice as many glyph identities)
    k: int = 4  # images per identity per batch
    # measured on the digits default, median of seeds 0/1/2, one-shot identification of unseen
    # digits: 0.80 untrained (1 step), 0.85 at 50, 0.86 at 800, 0.88 at 2,000; no gain at 4,000.
    # With random erasing, seeds 0-9: 600 steps give 2,000's figures, but CosFace's one-shot and
    # the learned similarity's rejection drop at 1,000, and photos may need more (docs/faces.md)
    steps: int = 2000
    # stop once this many steps in a row had a zero loss (every mined triplet of those fresh
    # batches met the margin: no gradient); 0: never. Measured: 8 photo identities (5 seen)
    # stopped at step 1,838 of 2,000 with the same figures; the digits default, with its
    # thousands of glyph identities, never stops. Fewer steps stop sooner (50: step 1,168) and
    # lose the later batches that still broke the margin
    patience: int = 200
    # applied to each training batch. Random erasing measured on the digits default, paired
    # seeds 0-4 (median): verification 0.873 -> 0.888, one-shot 0.876 -> 0.888, unseen EER
    # 0.131 -> 0.112, 4 seeds of 5 better; with p = 0.5 instead of 1 no gain. The figures in
    # the comments above were measured with "crop" alone, before erasing was added (except
    # the cosface one); the ensemble's below with it
    augment: str = "crop,erase"
    lr: float = 2e-3
    # a cnnlab checkpoint (a classifier's, or a face encoder's) or a torchvision weights file
    # for the backbone to start from (transfer learning: features learned on many images)
    pretrained: str = ""
    freeze: str = "none"  # none, backbone, or stages:K (the backbone's first K blocks)
    backbone_lr_mult: float = 1.0  # learning-rate factor for the backbone (pretrained: < 1)
    image_size: int = 32
    # encoders trained apart (seeds seed, seed + 1, ...) and joined into one embedding. Measured
    # on the digits default (with random erasing) with 5, median of seeds 0/1/2: one-shot 0.895
    # (one encoder 0.896), verification 0.887 (0.889), open-set rejection 0.929 (0.895), at 5x
    # the time
    members: int = 1
    seed: int = 0
    device: str = "auto"  # trains here (auto, cpu, cuda, cuda:N or mps); scored on the CPU
    out: str = ""  # run folder; empty: runs/faces/run, or run-2, run-3... (never overwriting)

    def __post_init__(self) -> None:
        check_settings(
            self,
            at_least_one=("embedding_dim", "pool_size", "steps", "image_size"),
            positive=("lr", "scale"),
            non_negative=("alpha", "margin", "patience", "backbone_lr_mult"),
        )
        check_freeze(self)
        if self.embedding_dim < 2:  # a unit vector in 1-D is +1 or -1: two "identities" at most
            raise CnnlabError(
                f"--embedding-dim {self.embedding_dim}: at least 2 (f(x) is L2-normalised)"
            )
        for option, choices in (
            ("method", FACE_METHODS),
            ("mining", FACE_MINING),
            ("similarity", ("l1", "chi2")),
        ):
            if getattr(self, option) not in choices:
                raise CnnlabError(
                    f"--{option} must be one of {', '.join(choices)}, got {getattr(self, option)!r}"
                )
        for option, on in (("identities", "dihedral"), ("synthetic", "glyphs")):
            if getattr(self, option) not in ("auto", on, "none"):
                raise CnnlabError(
                    f"--{option} must be auto, {on} or none, not {getattr(self, option)!r}"
                )
        if self.synthetic != "none" and self.synthetic_identities < 2:
            raise CnnlabError(
                f"--synthetic-identities must be at least 2, got {self.synthetic_identities}"
            )
        if self.p < 2:
            raise CnnlabError(
                f"--p must be at least 2: a negative is another identity (got {self.p})"
            )
        if self.k < 2 and self.method != "cosface":
            raise CnnlabError(
                f"--k must be at least 2 for --method {self.method}: a positive is another image "
                f"of the same identity (got {self.k})"
            )
        if self.p * self.k > FACE_MAX_BATCH:
            raise CnnlabError(
                f"--p {self.p} x --k {self.k} = {self.p * self.k} images a batch (plus twice as "
                f"many glyphs); at most {FACE_MAX_BATCH}: the triplets grow as P x K^2"
            )
        if self.members < 1 or (self.members > 1 and self.method == "similarity"):
            raise CnnlabError(
                f"--members must be at least 1, and 1 for --method similarity (got {self.members})"
            )
        if self.seed + self.members - 1 > MAX_SEED:  # member i trains with seed + i
            raise CnnlabError(
                f"--seed {self.seed} with --members {self.members}: the members' seeds "
                f"(seed to seed + {self.members - 1}) must stay <= {MAX_SEED}"
            )


REGION_METHODS = ("rcnn", "fast-rcnn", "faster-rcnn")  # what cnnlab.engine.rcnn compares


@dataclass(frozen=True)
class RegionsConfig:
    """``cnnlab explain rcnn`` settings: the slide "Faster algorithms" measured."""

    methods: str = "rcnn,fast-rcnn,faster-rcnn"  # comma list of the methods compared
    images: int = 600  # training scenes (selective search runs on each once)
    test_images: int = 200  # test scenes, the same for every method
    image_size: int = 64  # scene side in pixels
    max_objects: int = 4  # objects drawn per scene, at most
    epochs: int = 10
    # Fast R-CNN's sampling: few images a step, 64 regions each (the paper: 2 x 64). Measured
    # against 8 images x 32 regions at lr 2e-3 (seed 0, test mAP@0.5): R-CNN 0.835 vs 0.797,
    # Fast R-CNN 0.791 vs 0.680, Faster R-CNN 0.698 vs 0.579 (5 k-means anchors then), for about
    # 1.3x the time
    batch_size: int = 4  # images a step
    regions: int = 64  # regions sampled an image a step (at most a quarter objects)
    lr: float = 1e-3  # AdamW, cosine decay
    # R-CNN's warped region side: objects are 12-29 px in 64 px scenes. 32 (upsampling them)
    # costs R-CNN 4x the time a step (measured 0.30 s against 0.11 s)
    crop_size: int = 16
    # Faster R-CNN's anchors: "paper", its 3 scales x 3 aspect ratios scaled from its 600 px
    # images; or "kmeans", `anchors` shapes fitted to the training boxes (YOLOv2's choice).
    # Seeds 0/1/2, test mAP@0.5: paper 0.692 / 0.666 / 0.612, k-means (5) 0.686 / 0.570 / 0.613
    anchor_shapes: str = "paper"
    anchors: int = 5
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        check_settings(
            self,
            at_least_one=(
                "images",
                "test_images",
                "epochs",
                "batch_size",
                "regions",
                "anchors",
                "max_objects",
            ),
            positive=("lr",),
        )
        self.method_list()
        check_max_objects(self.max_objects)
        if not 32 <= self.image_size <= 256 or self.image_size % 4:
            raise CnnlabError(  # 32: the scenes' smallest (cnnlab.data.scenes.MIN_SIZE)
                f"--image-size must be a multiple of 4 in [32, 256], got {self.image_size} "
                "(selective search takes about 0.14 s a 128 px scene, and grows with the area)"
            )
        if self.crop_size < 8 or self.crop_size % 4:
            raise CnnlabError(
                f"--crop-size must be a multiple of 4 and at least 8, got {self.crop_size}"
            )
        if self.anchor_shapes not in ("kmeans", "paper"):
            raise CnnlabError(f"--anchor-shapes is kmeans or paper, got {self.anchor_shapes!r}")

    def anchor_count(self) -> int:
        """The RPN's anchors a cell: ``anchors`` for k-means, the paper's nine otherwise."""
        if self.anchor_shapes == "kmeans":
            return self.anchors
        from cnnlab.ops.anchors import PAPER_RATIOS, PAPER_SCALES

        return len(PAPER_SCALES) * len(PAPER_RATIOS)

    def method_list(self) -> tuple[str, ...]:
        """``methods`` as a tuple, each checked against :data:`REGION_METHODS`."""
        chosen = tuple(m.strip() for m in self.methods.split(",") if m.strip())
        unknown = [m for m in chosen if m not in REGION_METHODS]
        if unknown or not chosen:
            raise CnnlabError(
                f"--methods takes a comma list of {', '.join(REGION_METHODS)}, got {self.methods!r}"
            )
        return tuple(dict.fromkeys(chosen))

    def to_dict(self) -> dict:
        return asdict(self)
