"""``cnnlab explain rcnn``: the slide "Faster algorithms" measured. R-CNN, Fast R-CNN and
Faster R-CNN are trained on the same scenes and scored on the same test scenes
(:mod:`cnnlab.engine.rcnn`); the table shows where each spends its time and what it finds."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cnnlab.cli.common import add_device
from cnnlab.cli.shown import figure_file
from cnnlab.cli.typed import typed
from cnnlab.cli.values import positive_float, positive_int, random_seed
from cnnlab.config import REGION_METHODS, RegionsConfig
from cnnlab.errors import CnnlabError
from cnnlab.progress import ProgressBar


def cmd_explain_rcnn(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.cli.common import config_from_args
    from cnnlab.engine.device import resolve_device
    from cnnlab.engine.rcnn import compare_methods, draw_comparison
    from cnnlab.words import counted

    if args.anchor_shapes == "paper" and typed(args, "--anchors"):
        raise CnnlabError(
            "--anchors counts the shapes k-means finds (--anchor-shapes kmeans); the paper's "
            "anchors are nine"
        )
    config = config_from_args(RegionsConfig, args)
    figure = figure_file(args.out) if args.out else None
    device = resolve_device(config.device)
    if not args.json:  # minutes, unlike the other explain commands: say what runs first
        names = {"rcnn": "R-CNN", "fast-rcnn": "Fast R-CNN", "faster-rcnn": "Faster R-CNN"}
        console.print(
            f"training {', '.join(names[m] for m in config.method_list())} on "
            f"{counted(config.images, 'scene')} of {config.image_size} px, "
            f"{counted(config.epochs, 'epoch')} each, then scoring them on "
            f"{config.test_images:,} more | {device} (the defaults take "
            "3 to 5 minutes on 2 CPU cores; fewer --images or --epochs take less)"
        )
    columns = (
        TextColumn("[bold]{task.description} {task.completed}/{task.total}"),
        BarColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
    )
    with ProgressBar(*columns, console=console, disable=args.json) as progress:
        result = compare_methods(config, device, progress)
    rows = result["rows"]
    if figure is not None:
        draw_comparison(result, figure)
    if not args.json:
        table = Table(
            title=f"{config.test_images} test scenes of {config.image_size} px; each method "
            f"trained {config.epochs} epochs on {config.images} scenes",
            caption="regions: selective search's (R-CNN, Fast R-CNN) or the region proposal "
            "network's (Faster R-CNN); ms an image; mAP over IoU .5:.95 (COCO)",
        )
        for col in (
            "method",
            "regions",
            "CNN\npasses",
            "ms to\npropose",
            "ms\nCNN",
            "mAP\n@.5",
            "mAP",
            "train\ns",
        ):
            table.add_column(col, justify="left" if col == "method" else "right", no_wrap=True)
        for r in rows:
            table.add_row(
                r["method"],
                f"{r['regions_per_image']:.0f}",
                f"{r['cnn_passes_per_image']:.0f}",
                f"{r['ms_proposals_per_image']:.1f}" if r["ms_proposals_per_image"] else "(RPN)",
                f"{r['ms_network_per_image']:.1f}",
                f"{r['map_50']:.3f}",
                f"{r['map']:.3f}",
                f"{r['train_seconds']:.0f}",
            )
        console.print(table)
        console.print(
            "an image's time = proposals + network: R-CNN runs the CNN once a region, Fast R-CNN "
            "once an image (RoI pooling), Faster R-CNN also proposes from that one map"
        )
        if figure is not None:
            console.print(f"wrote {figure}")
    return {
        "kind": "rcnn",
        "config": config.to_dict(),
        "rows": rows,
        "figure": str(figure) if figure else None,
    }


def add_parser(what: Any, common: argparse.ArgumentParser) -> None:
    """The ``rcnn`` subcommand of ``explain``; its defaults are :class:`RegionsConfig`'s."""
    d = RegionsConfig()
    p = what.add_parser(
        "rcnn",
        parents=[common],
        help="R-CNN vs Fast R-CNN vs Faster R-CNN, trained and timed on the same scenes",
    )
    p.add_argument(
        "--methods",
        default=d.methods,
        help=f"comma list of {', '.join(REGION_METHODS)}",
    )
    p.add_argument("--images", type=positive_int, default=d.images, help="training scenes")
    p.add_argument("--test-images", type=positive_int, default=d.test_images, help="test scenes")
    p.add_argument("--image-size", type=positive_int, default=d.image_size, help="scene side, px")
    p.add_argument(
        "--max-objects", type=positive_int, default=d.max_objects, help="objects a scene, at most"
    )
    p.add_argument(
        "--epochs", type=positive_int, default=d.epochs, help="passes over the training scenes"
    )
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size, help="images a step")
    p.add_argument(
        "--regions", type=positive_int, default=d.regions, help="regions sampled an image a step"
    )
    p.add_argument("--lr", type=positive_float, default=d.lr, help="AdamW's peak learning rate")
    p.add_argument(
        "--crop-size", type=positive_int, default=d.crop_size, help="R-CNN's warped region side"
    )
    p.add_argument(
        "--anchors",
        type=positive_int,
        default=d.anchors,
        help="with --anchor-shapes kmeans: how many shapes k-means finds in the training boxes",
    )
    p.add_argument(
        "--anchor-shapes",
        choices=("paper", "kmeans"),
        default=d.anchor_shapes,
        help="Faster R-CNN's anchors: the paper's 3 scales x 3 aspect ratios, scaled from its "
        "600 px images, or --anchors shapes fitted by k-means (YOLOv2's choice)",
    )
    p.add_argument(
        "--seed", type=random_seed, default=d.seed, help="seeds the scenes, weights and sampling"
    )
    add_device(p, d.device)
    p.add_argument("-o", "--out", help="a figure: test scenes with each method's detections")
    p.set_defaults(handler=cmd_explain_rcnn)
