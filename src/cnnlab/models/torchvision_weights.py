"""Loading torchvision checkpoint files into cnnlab models, with no download.

A torchvision weights file (``resnet50-0676ba61.pth`` and the like) is a plain ``state_dict``.
Where our module names equal torchvision's (AlexNet single-tower, VGG, ResNet, GoogLeNet, the
MobileNet/EfficientNet stems, heads and squeeze-excite layers) keys pass through unchanged; inside
MobileNet v2 and EfficientNet blocks torchvision numbers the layers (``conv.0``, ``block.2``) where
we name them (``expand``, ``depthwise``, ``se``, ``project``), and :func:`convert_state_dict`
renames them. The file is read with ``weights_only=True``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.alexnet import AlexNetTV
from cnnlab.models.efficientnet import EfficientNet
from cnnlab.models.googlenet import GoogLeNet
from cnnlab.models.mobilenet import MobileNetV2
from cnnlab.models.resnet import ResNet
from cnnlab.models.vgg import VGG
from cnnlab.torchfile import load_torch_file

KeyMap = Callable[[str, set[str]], str]


def _identity(key: str, ours: set[str]) -> str:
    return key


def _mobilenet_v2_key(key: str, ours: set[str]) -> str:
    """``features.i.conv.{0.0,0.1,1.0,1.1,2,3}.p`` -> ``features.i.{expand,depthwise,project}.N.p``
    (without expansion: ``conv.{0.0,0.1,1,2}``)."""
    m = re.fullmatch(r"features\.(\d+)\.conv\.(.+)\.([a-z_]+)", key)
    if not m:
        return key
    i, layer, param = m.groups()
    if f"features.{i}.expand.0.weight" in ours:
        table = {
            "0.0": "expand.0",
            "0.1": "expand.1",
            "1.0": "depthwise.0",
            "1.1": "depthwise.1",
            "2": "project.0",
            "3": "project.1",
        }
    else:
        table = {"0.0": "depthwise.0", "0.1": "depthwise.1", "1": "project.0", "2": "project.1"}
    return f"features.{i}.{table[layer]}.{param}" if layer in table else key


def _efficientnet_key(key: str, ours: set[str]) -> str:
    """``features.s.b.block.j.rest`` -> ``features.s.b.{expand,depthwise,se,project}.rest``."""
    m = re.fullmatch(r"(features\.\d+\.\d+)\.block\.(\d+)\.(.+)", key)
    if not m:
        return key
    base, j, rest = m.groups()
    order = (["expand"] if f"{base}.expand.0.weight" in ours else []) + [
        "depthwise",
        "se",
        "project",
    ]
    return f"{base}.{order[int(j)]}.{rest}" if int(j) < len(order) else key


def _key_map(model: nn.Module) -> KeyMap:
    if isinstance(model, GoogLeNet):
        if not isinstance(model.conv1.bn, nn.BatchNorm2d):
            raise CnnlabError("googlenet_paper has no torchvision weights; use 'googlenet'")
        return _identity
    if isinstance(model, MobileNetV2):
        return _mobilenet_v2_key
    if isinstance(model, EfficientNet):
        return _efficientnet_key
    if isinstance(model, AlexNetTV | VGG | ResNet):
        return _identity
    raise CnnlabError(
        f"torchvision has no weights for {type(model).__name__}; weights load into "
        "alexnet_tv, vgg*, resnet18-152, googlenet, mobilenet_v2, efficientnet_b*"
    )


def convert_state_dict(
    model: nn.Module, state: Mapping[str, torch.Tensor], ignore_head: bool = False
) -> dict[str, torch.Tensor]:
    """Rename torchvision keys to ``model``'s. Auxiliary GoogLeNet heads are dropped when the model
    has none; with ``ignore_head`` the final classifier is dropped too (for transfer learning)."""
    ours = set(model.state_dict())
    rename = _key_map(model)
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = rename(key, ours)
        if new.split(".")[0] in ("aux1", "aux2") and new not in ours:
            continue
        out[new] = value
    if ignore_head:
        head = _head_prefix(model)
        out = {k: v for k, v in out.items() if not k.startswith(head)}
    return out


def _head_prefix(model: nn.Module) -> str:
    if isinstance(model, ResNet | GoogLeNet):
        return "fc."
    last = list(model.classifier)[-1]  # type: ignore[union-attr]
    index = len(model.classifier) - 1  # type: ignore[union-attr, arg-type]
    assert isinstance(last, nn.Linear)
    return f"classifier.{index}."


def load_torchvision_weights(
    model: nn.Module, path: str | Path, ignore_head: bool = False
) -> nn.Module:
    """Load a torchvision weights file into ``model`` (in place) and return it.

    Raises :class:`CnnlabError` naming the file when it cannot be read, belongs to another
    architecture or variant, or has a classifier of a different size (pass ``ignore_head=True``
    to keep the model's own, freshly initialised head).
    """
    state = load_torch_file(path, "weights file")
    if isinstance(state, dict) and "format" in state and "model_kwargs" in state:
        raise CnnlabError(
            f"{path}: a cnnlab checkpoint ({state.get('model')}), not a torchvision weights "
            "file (cnnlab's commands take it as --checkpoint, or --pretrained to train from it)"
        )
    if isinstance(state, dict) and "state_dict" in state and "format" not in state:
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise CnnlabError(f"{path}: expected a state_dict, found {type(state).__name__}")
    converted = convert_state_dict(model, state, ignore_head)
    expected = model.state_dict()
    missing = [k for k in expected if k not in converted]
    if ignore_head:
        head = _head_prefix(model)
        missing = [k for k in missing if not k.startswith(head)]
    unexpected = [k for k in converted if k not in expected]
    wrong = [k for k, v in converted.items() if k in expected and v.shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
            for label, keys in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("wrong shape", wrong),
            )
            if keys
        )
        raise CnnlabError(f"{path}: does not fit {type(model).__name__} ({detail})")
    model.load_state_dict(converted, strict=not ignore_head)
    return model
