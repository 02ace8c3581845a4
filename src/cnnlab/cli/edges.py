"""``cnnlab edges apply|learn``: the slides' edge detection on real photos (vertical,
horizontal, Sobel and Scharr filters, :mod:`cnnlab.engine.edges`), and learning the nine
weights of a 3x3 kernel by gradient descent until it is the filter (slide "Learning to detect
edges")."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from cnnlab.cli.common import Parser
from cnnlab.cli.typed import refuse_lr_without_adam
from cnnlab.cli.values import positive_float, positive_int, random_seed
from cnnlab.errors import CnnlabError


def cmd_edges_apply(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.data.images import load_gray
    from cnnlab.engine.edges import apply_edge_filters
    from cnnlab.viz.plots import plot_image_grid

    names = [n.strip() for n in args.filters.split(",") if n.strip()]
    if args.image and args.photo and args.image != args.photo:
        raise CnnlabError(f"two photos to filter, --image {args.image} and {args.photo}: give one")
    args.image = args.photo or args.image or "camera"
    image = load_gray(args.image)
    maps = apply_edge_filters(image, names)
    out = Path(args.out)
    path = plot_image_grid(
        [image, *maps.values()],
        [f"input: {args.image}", *maps],
        out / "edges.png",
        cols=min(3, len(maps) + 1),
        symmetric=[False] + [True] * len(maps),
        suptitle="edge maps (red: positive, blue: negative response)",
    )
    stats = {
        n: {"min": float(m.min()), "max": float(m.max()), "mean_abs": float(m.abs().mean())}
        for n, m in maps.items()
    }
    if not args.json:
        console.print(f"wrote {path}")
    return {"image": args.image, "shape": list(image.shape), "figure": str(path), "maps": stats}


def cmd_edges_learn(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.edges import learn_edge_kernel

    refuse_lr_without_adam(args, "L-BFGS, the default, takes its steps by a line search")
    images = [n.strip() for n in args.images.split(",") if n.strip()]
    result = learn_edge_kernel(
        args.target, images, args.steps, args.optimizer, args.lr, args.size, args.seed
    )
    if not args.json:
        from cnnlab.explain_render import matrix_table

        console.print(matrix_table(f"target ({args.target})", result.target.tolist()))
        console.print(
            matrix_table(
                "learned w1..w9",
                [[round(v, 4) + 0.0 for v in row] for row in result.kernel.tolist()],
            )
        )
        console.print(
            f"max |learned - target| = {result.max_abs_error:.2e} after "
            f"{len(result.losses)} loss evaluations ({args.optimizer})"
        )
    return result.to_dict()


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """edges apply, learn."""
    edges = sub.add_parser("edges", parents=[common], help="edge filters on real photos")
    what = edges.add_subparsers(dest="what", required=True, parser_class=Parser)
    p = what.add_parser("apply", parents=[common], help="filter a photo, write edges.png")
    p.add_argument(
        "photo",
        nargs="?",
        help="a scikit-image sample (camera, the default; coins, brick, ...) or an image file",
    )
    p.add_argument("--image", help="the same as the photo typed last")
    p.add_argument(
        "--filters",
        default="vertical,horizontal,sobel,scharr",
        help="comma list of named 3x3 filters: vertical, horizontal, sobel, scharr, ...",
    )
    p.add_argument("--out", default="runs/edges", help="folder for edges.png")
    p.set_defaults(handler=cmd_edges_apply)
    p = what.add_parser("learn", parents=[common], help="learn a 3x3 kernel by gradient descent")
    p.add_argument("--target", default="sobel", help="the filter to recover")
    p.add_argument(
        "--images",
        default="camera,coins,moon,brick",
        help="comma-separated sample names or image files",
    )
    p.add_argument(
        "--optimizer", choices=("lbfgs", "adam"), default="lbfgs", help="fits the 9 weights"
    )
    p.add_argument("--steps", type=positive_int, default=100, help="optimisation steps")
    p.add_argument("--lr", type=positive_float, default=0.05, help="learning rate (adam)")
    p.add_argument("--size", type=positive_int, default=128, help="images resized to this")
    p.add_argument("--seed", type=random_seed, default=0, help="seeds the starting kernel")
    p.set_defaults(handler=cmd_edges_learn)
