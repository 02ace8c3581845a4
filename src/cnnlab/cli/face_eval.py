"""A trained encoder scored (slide "Face verification vs. face recognition": the same or not,
by ``d(img1, img2) <= tau``; "One-shot learning"): ``cnnlab faces eval`` on identities (a folder
of people, a dataset's classes, or the ones its training held out), ``cnnlab faces pairs`` on an
LFW-style pairs file; each with the ROC and the pairs it decided most wrongly."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

from rich.console import Console

from cnnlab.cli.face_gallery import add_encoder, load_encoder
from cnnlab.cli.faces import most_confused
from cnnlab.cli.shown import figure_file
from cnnlab.cli.values import random_seed
from cnnlab.errors import CnnlabError
from cnnlab.words import comma_names, counted, skipped_lines

EVAL_ROWS = (  # (key in evaluate_unseen's figures, what it measures)
    ("verification_accuracy", "verification accuracy at tau"),
    ("identification_1_shot", "one-shot identification (1 image enrolled)"),
    ("identification_5_shot", "5-shot identification"),
    ("open_set_rejection", "open set: strangers turned away"),
    ("open_set_identification", "open set: enrolled people named right"),
    ("unseen_auc", "ROC AUC"),
    ("unseen_eer", "equal-error rate"),
    ("tau", "tau (the encoder's)"),
)


def cmd_faces_eval(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """``faces eval``: :func:`~cnnlab.engine.face_eval.evaluate_encoder` on ``--data``'s
    identities, as a table (or JSON) with the figures asked for."""
    from rich.table import Table

    from cnnlab.engine.face_eval import evaluate_encoder

    figures = {
        k: figure_file(v) for k in ("roc", "mistakes", "confusion") if (v := getattr(args, k))
    }
    encoder = load_encoder(args)
    identities = None
    if args.identities is not None:
        identities = comma_names(args.identities)
        if not identities:
            raise CnnlabError(f"--identities {args.identities!r} names no identity")
    skipped: list[str] = vars(args).setdefault("skipped_files", [])  # in --json as well
    scored = evaluate_encoder(encoder, args.data, identities, args.seed, skipped)
    for line in skipped_lines(skipped):
        console.print(line)
    learned = encoder.learned is not None
    threshold = encoder.learned[1] if encoder.learned is not None else -encoder.tau
    result: dict[str, Any] = {
        "data": scored.data,
        "identities": scored.identities,
        "images": len(scored.sources),
        "seed": scored.seed,
        "tau": encoder.tau,
        "decided_by": "learned similarity" if learned else "distance",
        **scored.metrics,
        "worst_pairs": {
            kind: [_pair_row(scored.sources, row, learned) for row in rows]
            for kind, rows in scored.roc["worst_pairs"].items()
        },
    }
    _eval_figures(figures, scored, threshold, learned)
    if not args.json:
        n = len(scored.identities)
        table = Table(
            title=f"faces: the encoder on {counted(n, 'identity', 'identities')} of "
            f"{scored.data} ({counted(len(scored.sources), 'image')})"
        )
        table.add_column("measure")
        table.add_column("value", justify="right")
        for key, what in EVAL_ROWS:
            value = result.get(key)
            table.add_row(what, "-" if value is None else f"{value:.3f}")
        console.print(table)
        if confused := most_confused(scored.metrics):
            console.print(confused)
    return result


def _eval_figures(figures: dict[str, Path], scored: Any, threshold: float, learned: bool) -> None:
    """``faces eval``'s ``--roc``, ``--mistakes`` and ``--confusion``, each drawn or, where there
    is nothing to draw, a warning saying why it was not written."""
    from cnnlab.engine.face_scores import CONFUSION_MAX, plot_roc

    name = Path(scored.data).name
    if "roc" in figures and scored.metrics["unseen_auc"] is None:
        message = f"no pairs of both kinds, so no ROC curve: {figures['roc']} not written"
        warnings.warn(message, stacklevel=2)
    elif "roc" in figures:
        plot_roc({scored.data: scored.roc}, figures["roc"])
    if "mistakes" in figures:
        drawing = (scored.picture, scored.who, threshold, figures["mistakes"], learned)
        _draw_worst(scored.roc["worst_pairs"], *drawing, f"pairs of {name}")
    if "confusion" in figures and "confusion_1_shot" not in scored.metrics:
        n = len(scored.identities)
        message = f"{n} identities, too many to draw (at most {CONFUSION_MAX}): "
        warnings.warn(message + f"{figures['confusion']} not written", stacklevel=2)
    elif "confusion" in figures:
        import torch

        from cnnlab.viz.plots import plot_confusion_matrix

        confusion = scored.metrics["confusion_1_shot"]
        title = f"{name}: identities named after one image each"
        counts = torch.tensor(confusion["counts"])
        plot_confusion_matrix(counts, confusion["names"], figures["confusion"], title, True)


def _pair_row(sources: list[str], row: Any, learned: bool) -> dict[str, Any]:
    """A worst pair ``(a, b, score)`` as its two sources and distance (or similarity)."""
    from cnnlab.models.siamese import same_probability

    a, b, score = row
    value = {"similarity": same_probability(score)} if learned else {"distance": -float(score)}
    return {"first": sources[int(a)], "second": sources[int(b)], **value}


def _draw_worst(
    worst: dict[str, Any],
    picture: Any,
    who: Any,
    threshold: float,
    path: Path,
    learned: bool,
    which: str,
) -> None:
    """:func:`~cnnlab.engine.face_scores.plot_worst_pairs` at ``path``, or a warning that
    there was nothing to draw (rather than no file and no word)."""
    from cnnlab.engine.face_scores import plot_worst_pairs

    if plot_worst_pairs(worst, picture, who, threshold, path, learned, which) is None:
        warnings.warn(f"every pair decided right, so {path} not written", stacklevel=2)


def cmd_faces_pairs(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """``faces pairs``: verification on an LFW-style pairs file at the checkpoint's tau (a
    ``--method similarity`` encoder's: at its learned similarity's threshold), with the ROC."""
    import numpy as np

    from cnnlab.data.identities import read_pairs
    from cnnlab.engine.face_scores import choose_threshold, plot_roc

    figures = {k: figure_file(v) for k in ("roc", "mistakes") if (v := getattr(args, k))}
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
    result["worst_pairs"] = _worst_pairs(figures, encoder, files, pairs, scores, threshold)
    if 0 < same.sum() < len(same):
        _, roc = choose_threshold(scores, same)
        result.update(auc=roc["auc"], eer=roc["eer"], best_accuracy=roc["val_accuracy"])
        if "roc" in figures:
            result["roc"] = str(plot_roc({Path(args.pairs).name: roc}, figures["roc"]))
    elif (
        "roc" in figures
    ):  # a curve needs both kinds of pair: say so rather than write nothing quietly
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
    figures: dict[str, Path],
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

    from cnnlab.engine.face_eval import file_picture
    from cnnlab.engine.face_scores import worst_pairs
    from cnnlab.engine.recognition import face_meta

    where = {f: k for k, f in enumerate(files)}
    first, second = (
        torch.tensor([where[str(getattr(p, side))] for p in pairs]) for side in ("first", "second")
    )
    same = np.array([p.same for p in pairs])
    worst = worst_pairs(first, second, scores, same, threshold)
    learned = encoder.learned is not None
    if "mistakes" in figures:
        channels = face_meta(encoder.checkpoint)["input_size"][0]
        _draw_worst(
            worst,
            file_picture(files, channels),
            lambda k: Path(files[k]).stem,
            threshold,
            figures["mistakes"],
            learned,
            "pairs",
        )
    return {kind: [_pair_row(files, r, learned) for r in rows] for kind, rows in worst.items()}


def add_eval_parsers(kinds: Any, common: argparse.ArgumentParser) -> None:
    """``faces eval`` and ``faces pairs`` under ``kinds``, the ``faces`` command's subparsers."""
    p = kinds.add_parser("eval", parents=[common], help="an encoder scored on identities")
    add_encoder(p)
    p.add_argument(
        "--data",
        help="digits (or another dataset's name), or root/<person>/*.jpg (default: the data it "
        "trained on, scored on the identities its training held out)",
    )
    p.add_argument(
        "--identities",
        help="comma-separated identities to score on (default: every one; on the training "
        "data, the held-out ones)",
    )
    p.add_argument(
        "--seed",
        type=random_seed,
        help="draws the pairs and galleries (default: the training's, to match its figures)",
    )
    p.add_argument("--roc", help="write the ROC curve here")
    p.add_argument("--mistakes", help="draw the pairs decided most wrongly at tau here")
    p.add_argument("--confusion", help="draw who was named as whom, one-shot, here")
    p.set_defaults(handler=cmd_faces_eval)
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
