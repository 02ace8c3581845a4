"""``cnnlab explain triplet``: the triplet loss and the choice of triplets on a batch the user
types (:mod:`cnnlab.explain_triplets`)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from cnnlab.cli.shown import figure_file
from cnnlab.cli.values import non_negative_float, non_negative_int


def cmd_explain_triplet(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab import explain_triplets as et

    emb, labels = et.parse_points(et.EXAMPLE_POINTS if args.points is None else args.points)
    figure = figure_file(args.out) if args.out else None  # refused before anything is drawn
    result = et.explain_triplets(emb, labels, args.alpha, args.anchor)
    if figure:
        result["figure"] = str(et.plot_triplets(result, figure))
    if not args.json:
        et.render_triplets(result, console)
        if figure:
            console.print(f"wrote {figure}")
    return result


def add_parser(what: Any, common: argparse.ArgumentParser) -> None:
    """``explain triplet``."""
    p = what.add_parser(
        "triplet", parents=[common], help="the triplet loss, and which triplets mining picks"
    )
    p.add_argument(
        "--points",
        help="embeddings and their person, 'x y person; ...' (any number of dimensions before "
        "the person; default: three people, three 2-D embeddings each)",
    )
    p.add_argument(
        "--alpha", type=non_negative_float, default=0.2, help="the margin (FaceNet's 0.2)"
    )
    p.add_argument(
        "--anchor", type=non_negative_int, default=0, help="the image whose triplets are listed"
    )
    p.add_argument("--out", help="also draw the batch and each strategy's picks into this PNG")
    p.set_defaults(handler=cmd_explain_triplet)
