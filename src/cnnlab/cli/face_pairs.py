"""``cnnlab faces pairs``: verification scored on an LFW-style pairs file at the encoder's tau,
with the ROC and the pairs it decided most wrongly (slide "Face verification vs. face
recognition": the same or not, by ``d(img1, img2) <= tau``)."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

from rich.console import Console

from cnnlab.cli.faces import add_encoder, load_encoder
from cnnlab.words import counted


def cmd_faces_pairs(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """``faces pairs``: verification on an LFW-style pairs file at the checkpoint's tau (a
    ``--method similarity`` encoder's: at its learned similarity's threshold), with the ROC."""
    import numpy as np

    from cnnlab.data.identities import read_pairs
    from cnnlab.engine.face_scores import choose_threshold, plot_roc

    encoder = load_encoder(args)
    pairs = read_pairs(args.pairs, args.data)
    files = sorted({str(p.first) for p in pairs} | {str(p.second) for p in pairs})
    emb = dict(zip(files, encoder.embed(files), strict=True))
    first = np.stack([emb[str(p.first)] for p in pairs])
    scores, threshold = encoder.pair_scores(first, np.stack([emb[str(p.second)] for p in pairs]))
    same = np.array([p.same for p in pairs])
    tau = encoder.tau
    result: dict[str, Any] = {
        "pairs": len(pairs),
        "same_pairs": int(same.sum()),
        "tau": tau,
        "decided_by": "distance" if encoder.learned is None else "learned similarity",
        "accuracy_at_tau": float(((scores >= threshold) == same).mean()),
        "false_accepts": int(((scores >= threshold) & ~same).sum()),
        "false_rejects": int(((scores < threshold) & same).sum()),
    }
    result["worst_pairs"] = _worst_pairs(args, encoder, files, pairs, scores, threshold)
    if 0 < same.sum() < len(same):
        _, roc = choose_threshold(scores, same)
        result.update(auc=roc["auc"], eer=roc["eer"], best_accuracy=roc["val_accuracy"])
        if args.roc:
            result["roc"] = str(plot_roc({Path(args.pairs).name: roc}, Path(args.roc)))
    elif args.roc:  # a curve needs both kinds of pair: say so rather than write nothing quietly
        kind = "same-person" if same.all() else "different-person"
        message = f"{args.pairs}: only {kind} pairs, so no ROC curve; {args.roc} not written"
        warnings.warn(message, stacklevel=2)
    if not args.json:
        figures = ", ".join(f"{k} {v:.3f}" for k, v in result.items() if isinstance(v, float))
        if encoder.learned is not None:  # accuracy_at_tau is then at the unit's threshold
            figures = "decided by the learned similarity (tau is for identify): " + figures
        console.print(figures)
        console.print(
            f"wrong at tau: {counted(result['false_accepts'], 'different-person pair')} said "
            f"same, {counted(result['false_rejects'], 'same-person pair')} said different"
        )
    return result


def _worst_pairs(
    args: argparse.Namespace,
    encoder: Any,
    files: list[str],
    pairs: list[Any],
    scores: Any,
    threshold: float,
) -> dict[str, list[dict[str, Any]]]:
    """``faces pairs``: the pairs decided most wrongly at tau (8 of each kind, worst first) as
    rows of the two files and their distance (or learned similarity), drawn to ``--mistakes``."""
    import numpy as np
    import torch

    from cnnlab.data.folder import image_to_uint8
    from cnnlab.engine.face_scores import plot_worst_pairs, worst_pairs
    from cnnlab.engine.recognition import face_meta
    from cnnlab.models.siamese import same_probability

    where = {f: k for k, f in enumerate(files)}
    first, second = (
        torch.tensor([where[str(getattr(p, side))] for p in pairs]) for side in ("first", "second")
    )
    same = np.array([p.same for p in pairs])
    worst = worst_pairs(first, second, scores, same, threshold)
    learned = encoder.learned is not None

    def row(a: float, b: float, score: float) -> dict[str, Any]:
        value = {"similarity": same_probability(score)} if learned else {"distance": -score}
        return {"first": files[int(a)], "second": files[int(b)], **value}

    if args.mistakes:
        channels = face_meta(encoder.checkpoint)["input_size"][0]
        drawn = plot_worst_pairs(
            worst,
            lambda k: image_to_uint8(files[k], 96, channels, "center-crop"),
            lambda k: Path(files[k]).stem,
            threshold,
            Path(args.mistakes),
            learned,
        )
        if drawn is None:  # say so rather than write nothing quietly
            message = f"{args.pairs}: every pair decided right, so {args.mistakes} not written"
            warnings.warn(message, stacklevel=2)
    return {kind: [row(*r) for r in rows] for kind, rows in worst.items()}


def add_pairs_parser(kinds: Any, common: argparse.ArgumentParser) -> None:
    """``faces pairs`` under ``kinds``, the ``faces`` command's subparsers."""
    p = kinds.add_parser("pairs", parents=[common], help="verification on an LFW pairs file")
    add_encoder(p)
    p.add_argument("--data", required=True, help="identity folder root/<person>/*.jpg")
    p.add_argument("--pairs", required=True, help="LFW-style pairs.txt")
    p.add_argument("--roc", help="write the ROC curve to this PNG")
    p.add_argument(
        "--mistakes",
        help="draw the pairs decided most wrongly at tau here (8 of each kind), side by side",
    )
    p.set_defaults(handler=cmd_faces_pairs)
