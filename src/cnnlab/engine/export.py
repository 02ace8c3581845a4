"""Export a trained classifier to ONNX and check it against PyTorch with ONNX Runtime.

The exported graph takes the standardised ``(N, C, S, S)`` batch (dynamic N) and returns logits;
the preprocessing constants, class names and input size are stored as ``cnnlab`` metadata in the
ONNX file so ``cnnlab classify predict --onnx`` needs nothing else.
"""

from __future__ import annotations

import json
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
    meta = model_meta(ckpt)
    model.eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.randn(samples, *meta["input_size"])
    tmp = out.with_suffix(".onnx.tmp")
    torch.onnx.export(
        model,
        (example,),
        str(tmp),
        input_names=["images"],
        output_names=["logits"],
        dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
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
