"""A network ``cnnlab export`` wrote, run by ONNX Runtime where its checkpoint's model would run.

The ONNX graph is the network alone: a standardised ``(N, C, S, S)`` float batch in, its raw
output out (a classifier's logits, the YOLO grid ``(N, S, S, A, 5 + C)``, the localiser's
``y = [p_c, box, classes, landmarks]``, a segmenter's scores at the input's size). What follows
it for a checkpoint follows it here, in PyTorch: a detector's decoding and non-max suppression
with the anchors export stored beside the graph, the localiser's split of ``y``, the
segmenter's arg-max.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from cnnlab.engine.predict import onnx_predict, onnx_session
from cnnlab.errors import CnnlabError

if TYPE_CHECKING:
    from cnnlab.models.heads import LocalizationOutput

NOUNS = {
    "classification": "a classifier",
    "localization": "a localiser",
    "detection": "a detector",
    "segmentation": "a segmenter",
    "embedding": "a face encoder",
}


class ExportedNetwork:
    """Called like the module it was exported from; ``meta`` holds what export stored
    (``model``, ``task``, ``input_size``, ``class_names``, and per task what decoding needs:
    a detector's ``anchors``, a localiser's ``num_classes`` and ``num_landmarks``)."""

    def __init__(self, path: str | Path, task: str) -> None:
        self.session, self.meta = onnx_session(path)
        self.path = Path(path)
        found = self.meta.get("task", "classification")
        if found != task:
            raise CnnlabError(
                f"{path}: exported from the {found} model {self.meta.get('model')!r}, not from "
                f"{NOUNS.get(task, task)}"
            )
        needs = {"detection": ("anchors",), "localization": ("num_classes", "num_landmarks")}
        missing = [key for key in needs.get(task, ()) if key not in self.meta]
        if missing:
            raise CnnlabError(
                f"{path}: exported without its {' and '.join(missing)}, which decoding needs "
                "(an earlier cnnlab wrote it): export the checkpoint again"
            )
        if task == "detection":
            self.anchors = torch.tensor(self.meta["anchors"], dtype=torch.float32)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return onnx_predict(self.session, batch)

    def __repr__(self) -> str:
        return f"ExportedNetwork({str(self.path)!r}, {self.meta.get('model')!r})"

    def eval(self) -> ExportedNetwork:
        """As a module's ``eval()``: the graph was exported in eval mode."""
        return self

    def split(self, out: torch.Tensor) -> LocalizationOutput:
        """A localiser's ``y`` split by meaning, as :meth:`LocalizationNet.split` does."""
        from cnnlab.models.heads import split_localization

        return split_localization(out, self.meta["num_classes"], self.meta["num_landmarks"])
