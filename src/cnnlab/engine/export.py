"""Export a trained classifier to ONNX and check it against PyTorch with ONNX Runtime.

The exported graph takes the standardised ``(N, C, S, S)`` batch (dynamic N) and returns the
model's output: a classifier's logits, or a task model's raw output (a detector's
``(N, S, S, A, 5 + C)`` grid: decoding and NMS stay in PyTorch/NumPy after the graph);
the preprocessing constants, class names and input size are stored as ``cnnlab`` metadata in the
ONNX file so ``cnnlab classify predict --onnx`` needs nothing else.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnlab.engine.checkpoint import model_from_checkpoint
from cnnlab.engine.predict import model_meta, onnx_predict, onnx_session
from cnnlab.errors import CnnlabError


@dataclass(frozen=True)
class ExportResult:
    path: Path
    max_abs_diff: float  # ONNX Runtime vs PyTorch on a sample batch
    opset: int

    def to_dict(self) -> dict:
        return {"path": str(self.path), "max_abs_diff": self.max_abs_diff, "opset": self.opset}


def export_onnx(
    checkpoint: str | Path, out: str | Path, opset: int = 17, samples: int = 4
) -> ExportResult:
    """Write ``out`` from ``checkpoint`` and compare ONNX Runtime with PyTorch on random input."""
    try:
        import onnx
    except ImportError:
        raise CnnlabError("export needs the export extra: pip install 'cnnlab[export]'") from None
    model, ckpt = model_from_checkpoint(checkpoint)
    try:
        meta = model_meta(ckpt)  # a classifier: preprocessing constants for predict --onnx
    except CnnlabError:  # a task model (detector, segmenter...): its raw output is exported
        from cnnlab.registry import get_model_entry

        meta = {
            "model": ckpt["model"],
            "input_size": ckpt["input_size"],
            "class_names": ckpt.get("class_names", []),
            "task": get_model_entry(ckpt["model"]).task,
        }
    model.eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.randn(samples, *meta["input_size"])
    tmp = out.with_suffix(".onnx.tmp")
    with warnings.catch_warnings():  # the TorchScript exporter needs no extra package
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (example,),
            str(tmp),
            input_names=["images"],
            output_names=["outputs"],
            dynamic_axes={"images": {0: "batch"}, "outputs": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    graph = onnx.load(str(tmp))
    entry = graph.metadata_props.add()
    entry.key, entry.value = "cnnlab", json.dumps(meta)
    onnx.save(graph, str(tmp))
    tmp.replace(out)
    session, _ = onnx_session(out)
    with torch.no_grad():
        expected = model(example)
    diff = float((onnx_predict(session, example) - expected).abs().max())
    return ExportResult(out, diff, opset)
