"""Transfer learning (slide "Transfer Learning"): start from trained weights and choose, by how
much data there is, what to train:

* little data: ``--freeze backbone``: keep every feature layer fixed and train a new head (with
  ``--cache-features`` the backbone runs once over the data and the head trains on its outputs);
* more data: ``--freeze stages:K``: fix the first K blocks, train the rest;
* a lot of data: ``--freeze none`` with ``--backbone-lr-mult 0.1``: fine-tune everything, the
  pretrained layers more gently than the new head.

Weights come from a cnnlab checkpoint or a torchvision weights file (see
:mod:`cnnlab.models.torchvision_weights`); the classifier is replaced when the class count differs.
The tasks built on a classifier's features (``detect``, ``localize``, ``faces train`` and
``segment train --model unet_resnet18``) take the same three options for that part, their
``backbone`` (the U-Net's ``encoder``): :func:`pretrained_backbone`, :func:`freeze_part` and
:func:`backbone_groups`, with :func:`train_mode` keeping frozen batch norms as loaded.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.backbone import head_parameter_names
from cnnlab.torchfile import load_torch_file


def freeze_groups(model: nn.Module, head: set[str]) -> list[list[str]]:
    """The backbone's parameterised blocks in forward order, as lists of parameter names: a model
    may define ``freeze_groups()`` (ResNet: stem, layer1..layer4); otherwise the children of
    ``features`` or the top-level children, without the head."""
    if hasattr(model, "freeze_groups"):
        return model.freeze_groups()
    container, prefix = (
        (model.features, "features.")
        if isinstance(getattr(model, "features", None), nn.Sequential)
        else (model, "")
    )
    groups = []
    for name, child in container.named_children():
        names = [f"{prefix}{name}.{n}" for n, _ in child.named_parameters()]
        names = [n for n in names if n not in head]
        if names:
            groups.append(names)
    return groups


def frozen_names(model: nn.Module, policy: str, head: set[str], what: str = "model") -> list[str]:
    """The parameter names ``policy`` fixes: none for ``none``; every one outside ``head`` for
    ``backbone``; the first K of :func:`freeze_groups` for ``stages:K`` (``what`` names the
    module in the error for a K out of range)."""
    if policy == "none":
        return []
    if policy == "backbone":
        return [n for n, _ in model.named_parameters() if n not in head]
    if not policy.startswith("stages:"):
        raise CnnlabError(f"--freeze must be none, backbone or stages:K, got {policy!r}")
    try:
        k = int(policy.split(":", 1)[1])
    except ValueError:
        raise CnnlabError(f"--freeze {policy!r}: expected stages:K with an integer K") from None
    groups = freeze_groups(model, head)
    if not 0 <= k <= len(groups):
        raise CnnlabError(
            f"--freeze {policy}: K must be 0 to {len(groups)} (the {what} has {len(groups)} stages)"
        )
    return [n for g in groups[:k] for n in g]


def apply_freeze(model: nn.Module, policy: str, input_size: tuple[int, ...]) -> list[str]:
    """Set ``requires_grad=False`` per ``policy`` (``none``, ``backbone``, ``stages:K``) on a
    classifier, whose head is its last layer; return the frozen parameter names."""
    if policy == "none":
        return []
    frozen = frozen_names(model, policy, head_parameter_names(model, input_size))
    params = dict(model.named_parameters())
    for name in frozen:
        params[name].requires_grad_(False)
    return frozen


def freeze_part(model: nn.Module, policy: str, part: str = "backbone") -> list[str]:
    """``--freeze`` of a model that reads a classifier's features from its ``part`` (a
    detector's, localizer's or face encoder's ``backbone``, a U-Net's ResNet ``encoder``):
    ``backbone`` fixes the whole part, ``stages:K`` its first K blocks (ResNet: the stem, then
    layer1 ...); what comes after it (neck, heads, decoder, embedding layer) trains. Sets
    ``requires_grad=False`` on them and returns their names in ``model``. With
    :func:`train_mode` their batch norms keep the statistics they came with."""
    if policy == "none":
        return []
    sub = model.get_submodule(part)
    names = frozen_names(sub, policy, head=set(), what=part)
    params = dict(sub.named_parameters())
    for name in names:
        params[name].requires_grad_(False)
    return [f"{part}.{n}" for n in names]


def start_backbone(
    model: nn.Module, config: Any, console: Console, resumed: bool, part: str = "backbone"
) -> None:
    """A new run's ``--pretrained`` and ``--freeze`` of ``model``'s ``part`` (``config`` has
    both): the weights loaded (:func:`pretrained_backbone`, its line printed), the part fixed
    (:func:`freeze_part`), and the warning of a frozen part left random. A ``resumed`` run
    freezes alike, but its weights come from its checkpoint and it was warned when it began."""
    if config.pretrained and not resumed:
        console.print(escape(pretrained_backbone(model, config.pretrained, part)))
    freeze_part(model, config.freeze, part)
    if not resumed:
        warn_frozen_at_random(config.freeze, config.pretrained)


def warn_frozen_at_random(policy: str, pretrained: str) -> None:
    """A warning when ``--freeze`` fixes layers that no ``--pretrained`` file filled: they keep
    their random initial weights (training then fits only what comes after them)."""
    if policy != "none" and not pretrained:
        warnings.warn(
            f"--freeze {policy} without --pretrained: the frozen layers keep their random "
            "initial weights (give --pretrained FILE to train on features learned elsewhere)",
            stacklevel=3,
        )


def train_mode(model: nn.Module) -> nn.Module:
    """``model.train()``, except the batch norms of frozen layers (:func:`frozen_norms_to_eval`):
    a frozen backbone neither learns nor drifts with the new data's batch statistics."""
    model.train()
    frozen_norms_to_eval(model)
    return model


def frozen_norms_to_eval(model: nn.Module) -> None:
    """Batch-norm layers whose parameters are frozen keep their running statistics too."""
    for m in model.modules():
        if (
            isinstance(m, nn.modules.batchnorm._BatchNorm)
            and m.weight is not None
            and not m.weight.requires_grad
        ):
            m.eval()


def parameter_groups(
    model: nn.Module, head: set[str], lr: float, backbone_lr_mult: float
) -> list[dict]:
    """Optimizer groups: the head at ``lr``, the rest at ``lr * backbone_lr_mult``."""
    head_params, body = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (head_params if name in head else body).append(p)
    groups = [{"params": head_params, "lr": lr}]
    if body:
        groups.append({"params": body, "lr": lr * backbone_lr_mult})
    return groups


def load_pretrained(model: nn.Module, path: str | Path, within: str = "") -> list[str]:
    """Load a cnnlab checkpoint or a torchvision weights file into ``model``; a classifier of a
    different size is left freshly initialised. Returns the names of parameters not loaded.

    ``within``: ``model`` is the part of a larger model under this prefix (a face encoder's
    backbone, ``"backbone."``), so a cnnlab checkpoint of such a larger model gives the part's
    weights (a classifier's checkpoint, or a torchvision file, gives them as they are)."""
    from cnnlab.engine.checkpoint import load_checkpoint

    state = load_torch_file(path, "weights file")
    if isinstance(state, dict) and "format" in state:
        weights = load_checkpoint(path)["state_dict"]
        if within and any(k.startswith(within) for k in weights):
            weights = {k[len(within) :]: v for k, v in weights.items() if k.startswith(within)}
    else:
        from cnnlab.models.torchvision_weights import convert_state_dict

        weights = convert_state_dict(model, state)
    own = model.state_dict()
    usable = {k: v for k, v in weights.items() if k in own and v.shape == own[k].shape}
    if not usable:
        raise CnnlabError(f"{path}: no weights fit {type(model).__name__}")
    skipped = [k for k in own if k not in usable]
    body_missing = [k for k in skipped if k.split(".")[0] not in ("fc", "classifier", "head")]
    if len(body_missing) > len(own) // 4:
        raise CnnlabError(
            f"{path}: most weights do not fit {type(model).__name__} "
            f"(e.g. {', '.join(body_missing[:3])})"
        )
    model.load_state_dict(usable, strict=False)
    return skipped


def loaded_note(path: str | Path, missing: list[str]) -> str:
    """``loaded resnet18.pth (2 tensors kept fresh: fc.weight, fc.bias)``: what
    :func:`load_pretrained` did, in a line."""
    fresh = (
        f"{len(missing)} tensors kept fresh: {', '.join(missing[:4])}"
        f"{' ...' if len(missing) > 4 else ''}"
        if missing
        else "every tensor"  # the same model and classes: the head too
    )
    return f"loaded {path} ({fresh})"


def pretrained_backbone(model: nn.Module, path: str | Path, part: str = "backbone") -> str:
    """Load ``path`` into ``model.backbone``, the classifier features a face encoder, localizer
    or detector reads (``part``: another name for it, a U-Net's ResNet ``encoder``), with
    :func:`load_pretrained`: a torchvision weights file, a classifier's checkpoint, or a
    checkpoint of a model with such a part; its other layers start fresh. Returns
    :func:`loaded_note`'s line."""
    backbone = model.get_submodule(part)
    return loaded_note(path, load_pretrained(backbone, path, within=f"{part}."))


def backbone_groups(
    model: nn.Module,
    lr: float,
    backbone_lr_mult: float,
    more: list[nn.Parameter] | None = None,
    part: str = "backbone",
) -> list[dict]:
    """:func:`parameter_groups` of a model with a ``backbone`` (or another ``part``): its
    parameters at ``lr * backbone_lr_mult``, the others (and ``more``, a loss's own) at
    ``lr``, each group's the peak :func:`~cnnlab.engine.runlog.one_cycle` rises to."""
    head = {n for n, _ in model.named_parameters() if not n.startswith(f"{part}.")}
    groups = parameter_groups(model, head, lr, backbone_lr_mult)
    groups[0]["params"] += more or []
    return groups
