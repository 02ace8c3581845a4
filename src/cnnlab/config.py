"""Configuration: one frozen dataclass per concern, validated on creation.

The CLI parses flags into these; engines receive them and pass plain values on. Model builders
never see them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from cnnlab.errors import CnnlabError

DATASETS = ("digits",)


@dataclass(frozen=True)
class ClassifyTrainConfig:
    """How to train a classifier (``cnnlab classify train``)."""

    model: str = "lenet5"  # registered model name (`cnnlab models`)
    data: str = "digits"  # dataset: "digits" (scikit-learn's 1,797 real handwritten digits)
    epochs: int = 30  # passes over the training split
    batch_size: int = 64  # images per optimisation step
    lr: float = 3e-3  # peak learning rate of AdamW (linear warm-up, then cosine decay)
    weight_decay: float = 5e-4  # AdamW's decoupled weight decay
    augment: bool = True  # random translations of up to `shift` pixels during training
    shift: int = 2  # largest translation in pixels when augmenting
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    seed: int = 0  # seeds weights, shuffling and augmentation
    split_seed: int = 0  # seeds the train/val/test split (kept apart so seeds share a test set)
    image_size: int = 32  # images are upsampled to image_size x image_size
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps
    out: str = ""  # run folder; empty means runs/classify/<model>-<data>[-N], never overwriting

    def __post_init__(self) -> None:
        positive = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "image_size": self.image_size,
        }
        for name, value in positive.items():
            if value < 1:
                raise CnnlabError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if not self.lr > 0:
            raise CnnlabError(f"--lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise CnnlabError(f"--weight-decay must be >= 0, got {self.weight_decay}")
        if self.shift < 0:
            raise CnnlabError(f"--shift must be >= 0, got {self.shift}")
        if not 0 <= self.label_smoothing < 1:
            raise CnnlabError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.data not in DATASETS:
            raise CnnlabError(f"unknown dataset {self.data!r}; available: {', '.join(DATASETS)}")

    def to_dict(self) -> dict:
        return asdict(self)
