"""Choosing the device: ``auto`` picks CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import torch

from cnnlab.errors import CnnlabError

CPU = torch.device("cpu")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` -> a usable ``torch.device``."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        index = name.split(":")[-1] if ":" in name or name.isdigit() else "N"
        gpu = name.lower().split(":")[0] == "gpu" or name.isdigit()  # other tools' spellings
        hint = f" (a GPU is cuda, or cuda:{index} for GPU {index})" if gpu else ""
        raise CnnlabError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps{hint}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CnnlabError(f"device {name!r} asked for, but CUDA is not available here")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise CnnlabError(
            f"device {name!r} asked for, but this machine has {torch.cuda.device_count()} "
            "CUDA device(s), numbered from 0"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise CnnlabError(f"device {name!r} asked for, but MPS is not available here")
    return device


def model_device(model: torch.nn.Module) -> torch.device:
    """Where ``model``'s parameters are (the CPU for a model without any, or for an ONNX
    Runtime network called like a module): its inputs go there."""
    parameters = getattr(model, "parameters", None)
    return next((p.device for p in parameters()), CPU) if parameters else CPU


class OnDevice:
    """A trained module kept on ``device`` in eval mode, called with CPU batches and answering
    on the CPU, as an exported network is (:class:`~cnnlab.engine.exported.ExportedNetwork`):
    the predictors decode on the CPU whatever ran the network. Other attributes are the
    module's (a localiser's ``split``), tensors among them brought to the CPU (a detector's
    ``anchors`` buffer)."""

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        self.module, self.device = model.to(device).eval(), device

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return self.module(batch.to(self.device)).cpu()

    def eval(self) -> OnDevice:
        """As a module's ``eval()``: it is in eval mode already."""
        return self

    def __repr__(self) -> str:
        return f"OnDevice({type(self.module).__name__} on {self.device})"

    def __getattr__(self, name: str) -> object:
        if name == "module":  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        value = getattr(self.module, name)
        return value.cpu() if isinstance(value, torch.Tensor) else value
