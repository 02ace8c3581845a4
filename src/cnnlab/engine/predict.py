"""Predictions from a checkpoint (PyTorch) or an exported ONNX model (ONNX Runtime).

A user's image goes through exactly what training saw: decode (gray or RGB as the model takes),
resize like the dataset, invert light backgrounds for models trained on light-on-dark digits,
and standardise with the training split's statistics stored in the checkpoint (or, for ONNX, in
the model's metadata).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from cnnlab.data.classification import normalize
from cnnlab.data.folder import image_to_uint8
from cnnlab.errors import CnnlabError


def preprocess_files(paths: Sequence[str | Path], meta: dict[str, Any]) -> torch.Tensor:
    """Image files -> the standardised ``(N, C, S, S)`` batch the model expects (no files: an
    empty ``(0, C, S, S)`` batch). ``meta`` holds ``input_size``, ``normalization``,
    ``invert_light`` and ``resize`` (see :func:`model_meta`)."""
    c, s = meta["input_size"][0], meta["input_size"][-1]
    batch = [torch.empty(0, c, s, s, dtype=torch.uint8)]
    for path in paths:
        x = image_to_uint8(path, s, c, meta.get("resize", "center-crop"))
        if meta.get("invert_light") and x.float().mean() > 127.5:
            x = 255 - x
        batch.append(x[None])
    norm = meta["normalization"]
    return normalize(torch.cat(batch), norm["mean"], norm["std"])


def model_meta(ckpt: dict[str, Any]) -> dict[str, Any]:
    """What prediction needs to know about a checkpoint's inputs and classes."""
    if "normalization" not in ckpt:
        raise CnnlabError("checkpoint has no normalisation statistics (made by an older cnnlab)")
    return {
        "input_size": ckpt["input_size"],
        "normalization": ckpt["normalization"],
        "invert_light": ckpt.get("invert_light", False),
        "resize": ckpt.get("config", {}).get("resize", "center-crop"),
        "class_names": ckpt["class_names"],
        "model": ckpt["model"],
    }


def topk_rows(
    probs: torch.Tensor,
    names: Sequence[str],
    sources: Sequence[str],
    k: int,
    labels: Sequence[str | None] | None = None,
) -> list[dict[str, Any]]:
    """One dict per image: prediction, its probability and the top-k classes."""
    k = min(k, probs.shape[1])
    top_p, top_i = probs.topk(k, dim=1)
    rows = []
    for n, (src, i, p) in enumerate(zip(sources, top_i, top_p, strict=True)):
        row = {
            "source": str(src),
            "prediction": names[int(i[0])],
            "probability": float(p[0]),
            "top_k": [[names[int(j)], float(q)] for j, q in zip(i, p, strict=True)],
        }
        if labels is not None and labels[n] is not None:
            row["label"] = labels[n]
        rows.append(row)
    return rows


def onnx_session(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """An ONNX Runtime session and the cnnlab metadata stored in the model."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise CnnlabError("ONNX needs the export extra: pip install 'cnnlab[export]'") from None
    path = Path(path)
    if not path.is_file():
        raise CnnlabError(f"{path}: no such ONNX file")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise CnnlabError(f"{path}: not a readable ONNX model ({str(exc)[:120]})") from None
    meta_json = session.get_modelmeta().custom_metadata_map.get("cnnlab")
    if not meta_json:
        raise CnnlabError(
            f"{path}: ONNX model without cnnlab metadata (export it with `cnnlab export`)"
        )
    return session, json.loads(meta_json)


def onnx_predict(session: Any, batch: torch.Tensor) -> torch.Tensor:
    """Logits from an ONNX Runtime session for a float batch."""
    name = session.get_inputs()[0].name
    return torch.from_numpy(session.run(None, {name: batch.numpy()})[0])
