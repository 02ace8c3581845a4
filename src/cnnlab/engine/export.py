"""Export a trained model to ONNX and check it against PyTorch with ONNX Runtime.

The exported graph takes the standardised ``(N, C, S, S)`` batch (dynamic N) and returns the
model's output: a classifier's logits, or a task model's raw output (a detector's
``(N, S, S, A, 5 + C)`` grid: decoding and NMS stay in PyTorch/NumPy after the graph; a face
encoder's embedding; a segmenter's ``(N, K, S, S)`` class scores, the paper's U-Net's through
its overlap-tile input);
the preprocessing constants, class names and input size are stored as ``cnnlab`` metadata in the
ONNX file so ``cnnlab classify predict --onnx`` needs nothing else (and per task what follows the
graph: a detector's anchors, a face encoder's tau and model id, :mod:`cnnlab.engine.exported`).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cnnlab.config import DEFAULT_OPSET
from cnnlab.engine.checkpoint import model_from_checkpoint
from cnnlab.engine.predict import model_meta, onnx_predict, onnx_session
from cnnlab.errors import CnnlabError


def _pool_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """``(n_out, n_in)``: row ``i`` averages inputs ``floor(i n_in / n_out)`` to
    ``ceil((i + 1) n_in / n_out) - 1``, PyTorch's adaptive-pooling windows."""
    m = torch.zeros(n_out, n_in)
    for i in range(n_out):
        a, b = (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)
        m[i, a:b] = 1 / (b - a)
    return m


class MatrixAdaptiveAvgPool(nn.Module):
    """``adaptive_avg_pool2d`` for one input size as two matrix products, ``R x C^T``:
    ONNX has no adaptive pooling whose output does not divide its input (LeNet-5's 5x5 maps
    pooled to the face encoder's 4x4 grid), but it has MatMul. Exact, not an approximation."""

    def __init__(self, in_hw: tuple[int, int], out_hw: tuple[int, int]) -> None:
        super().__init__()
        self.register_buffer("rows", _pool_matrix(in_hw[0], out_hw[0]))
        self.register_buffer("cols", _pool_matrix(in_hw[1], out_hw[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, C, h, w)
        return self.rows @ x @ self.cols.T


def exportable(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """``model`` with each adaptive average pooling whose output size does not divide the size
    it meets on ``example`` replaced by :class:`MatrixAdaptiveAvgPool` (in place)."""
    seen: dict[str, tuple[int, int]] = {}
    hooks = [
        m.register_forward_hook(lambda m, args, out, n=n: seen.__setitem__(n, args[0].shape[-2:]))
        for n, m in model.named_modules()
        if isinstance(m, nn.AdaptiveAvgPool2d)
    ]
    with torch.no_grad():
        model(example)
    for h in hooks:
        h.remove()
    for name, (h_in, w_in) in seen.items():
        pool = model.get_submodule(name)
        size = pool.output_size
        h_out, w_out = (size, size) if isinstance(size, int) else size
        h_out, w_out = h_out or h_in, w_out or w_in
        if h_in % h_out or w_in % w_out:
            parent, _, leaf = name.rpartition(".")
            swap = MatrixAdaptiveAvgPool((h_in, w_in), (h_out, w_out))
            setattr(model.get_submodule(parent) if parent else model, leaf, swap)
    return model


@dataclass(frozen=True)
class ExportResult:
    """An exported ONNX file, checked: the largest difference of its outputs from PyTorch's."""

    path: Path
    max_abs_diff: float  # ONNX Runtime vs PyTorch on a sample batch
    opset: int

    def to_dict(self) -> dict:
        return {"path": str(self.path), "max_abs_diff": self.max_abs_diff, "opset": self.opset}


def opset_range() -> tuple[int, int]:
    """The ONNX opsets torch's TorchScript exporter (the one used here) can write."""
    from torch.onnx import _constants  # private; the fallback is torch 2.x's range

    return (
        getattr(_constants, "ONNX_MIN_OPSET", 7),
        getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", 20),
    )


def export_onnx(
    checkpoint: str | Path, out: str | Path, opset: int = DEFAULT_OPSET, samples: int = 4
) -> ExportResult:
    """Write ``out`` from ``checkpoint`` and compare ONNX Runtime with PyTorch on random input."""
    try:
        import onnx
    except ImportError:
        raise CnnlabError("export needs the export extra: pip install 'cnnlab[export]'") from None
    from cnnlab.registry import get_model_entry

    lo, hi = opset_range()
    if not lo <= opset <= hi:
        raise CnnlabError(
            f"--opset {opset}: torch {torch.__version__}'s ONNX exporter writes opsets {lo} to "
            f"{hi} (default {DEFAULT_OPSET})"
        )
    out = Path(out)
    if out.is_dir():
        raise CnnlabError(f"{out}: a folder; give the file to write, e.g. {out / 'model.onnx'}")
    if out.suffix.lower() != ".onnx":  # what --onnx, Netron and ONNX Runtime's tools look for
        raise CnnlabError(
            f"{out}: an ONNX file is named *.onnx; give e.g. {out.with_suffix('.onnx')}"
        )
    model, ckpt = model_from_checkpoint(checkpoint)
    task = get_model_entry(ckpt["model"]).task
    # a classifier with its preprocessing constants (older ones lack them) is ready for
    # classify predict --onnx; any other model's raw output is exported (detector, face encoder)
    if task == "classification" and "normalization" in ckpt:
        meta = model_meta(ckpt)
    else:
        if "input_size" not in ckpt:
            raise CnnlabError(f"{checkpoint}: checkpoint lacks input_size")
        meta = {
            "model": ckpt["model"],
            "input_size": ckpt["input_size"],
            "class_names": ckpt.get("class_names", []),
            "task": task,
        }
        if "normalization" in ckpt:
            meta["normalization"] = ckpt["normalization"]
        if task == "detection":  # what decoding after the graph needs (cnnlab.engine.exported)
            meta["anchors"] = model.anchors.tolist()
        if task == "localization":
            meta["num_classes"], meta["num_landmarks"] = model.num_classes, model.num_landmarks
        if task == "embedding" and "tau" in ckpt:  # what faces enroll/verify/identify decide by
            from cnnlab.engine.recognition import face_meta

            meta["tau"], meta["model_id"] = ckpt["tau"], ckpt["model_id"]
            meta["invert_light"] = face_meta(ckpt)["invert_light"]
            trained = ckpt.get("config", {})  # what faces eval scores by default, and its seed
            meta["trained_on"] = {k: trained[k] for k in ("data", "unseen", "seed") if k in trained}
            if "similarity" in ckpt:  # the learned similarity verification decides by
                meta["similarity"] = ckpt["similarity"]
    if task == "segmentation":  # maps at the image's size (the paper's U-Net: overlap-tile)
        from cnnlab.models.unet import SameSizeScores

        model = SameSizeScores(model)
    model.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.randn(samples, *meta["input_size"])
    with torch.no_grad():
        expected = model(example)  # before any pooling is swapped: the ONNX graph must match it
    model = exportable(model, example)
    tmp = out.with_suffix(".onnx.tmp")
    try:
        with warnings.catch_warnings():  # the TorchScript exporter needs no extra package
            warnings.simplefilter("ignore", DeprecationWarning)
            # shape arithmetic traced as constants (U-Net's padding to a multiple of 2^depth) is
            # what a graph of fixed H x W wants; the graph is checked against PyTorch below
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            try:
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
            except RuntimeError as exc:  # an opset the exporter lacks, or an operator too new
                first = str(exc).strip().splitlines()[0][:160]
                raise CnnlabError(
                    f"--opset {opset}: the ONNX exporter failed ({first}); the default, "
                    f"{DEFAULT_OPSET}, works for every cnnlab model"
                ) from exc
        graph = onnx.load(str(tmp))
        entry = graph.metadata_props.add()
        entry.key, entry.value = "cnnlab", json.dumps(meta)
        onnx.save(graph, str(tmp))
        tmp.replace(out)  # an earlier file at out stays whole until the new one is complete
    finally:
        tmp.unlink(missing_ok=True)
    session, _ = onnx_session(out)
    diff = float((onnx_predict(session, example) - expected).abs().max())
    return ExportResult(out, diff, opset)
