"""Configuration: one frozen dataclass per concern, validated on creation.

The CLI parses flags into these; engines receive them and pass plain values on. Model builders
never see them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from cnnlab.errors import CnnlabError

# numpy's and scikit-learn's generators take seeds in [0, 2**32 - 1]; torch takes more
MAX_SEED = 2**32 - 1


def check_settings(
    config: object,
    at_least_one: tuple[str, ...] = (),
    positive: tuple[str, ...] = (),
    non_negative: tuple[str, ...] = (),
) -> None:
    """Refuse a config's out-of-range numbers with the CLI option's name, so the Python API fails
    as clearly as the command line (NaN fails every test: ``not nan > 0``). Every ``seed`` and
    ``*_seed`` field is checked as well: an integer in [0, MAX_SEED]."""
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
        if self.channels not in (0, 1, 3):
            raise CnnlabError(f"--channels must be 1 or 3, got {self.channels}")
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
