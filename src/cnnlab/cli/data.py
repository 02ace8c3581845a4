"""``cnnlab data download|list``: standard datasets fetched once and used offline; ``cnnlab data
scenes``: a synthetic dataset written in the formats the training commands read; ``cnnlab data
check``: a dataset counted per split and class as a task's training reads it
(:mod:`cnnlab.engine.data_check`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from cnnlab.cli.common import Parser
from cnnlab.cli.values import positive_int, random_seed
from cnnlab.errors import CnnlabError

LAYOUTS = {
    "yolo": "images/, labels/*.txt, classes.txt",
    "coco": "images/, annotations.json",
    "masks": "images/, masks/*.png, classes.txt",
    "yolo-seg": "images/, labels/*.txt (a polygon per object), classes.txt",
    "voc": "JPEGImages/, Annotations/*.xml, SegmentationClass/*.png, labelmap.txt",
    "labelme": "*.png, a labelme *.json (polygons) beside each, labels.txt",
}


def cmd_data_check(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """Read ``--data`` as ``TASK``'s training would and show each split's images per class
    (boxes, pixels), and the classes a split lacks."""
    from cnnlab.cli.shown import figure_file
    from cnnlab.engine.data_check import BadLabelFiles, check_data

    if args.task == "faces" and args.output:
        raise CnnlabError("data check -o draws classes by split; a faces identity is in one only")
    if args.task != "faces" and args.unseen:
        raise CnnlabError("--unseen names the identities faces train holds out; give faces")
    figure = figure_file(args.output) if args.output else None  # checked before reading
    # no spinner: reading a large folder draws its own progress bar, as training's does
    try:
        found = check_data(
            args.task, args.data, args.image_size, args.data_root or "", args.seed, args.unseen
        )
    except BadLabelFiles as bad:  # each file its line, then the count as the error
        for problem in bad.problems:
            print(f"cnnlab: error: {problem}", file=sys.stderr)
        raise
    if figure:
        from cnnlab.viz.plots import plot_class_balance

        found["figure"] = str(plot_class_balance(found, figure))
    if args.json:
        return found
    if args.task == "faces":
        return _identities_said(found, console)
    splits = list(found["splits"])
    sizes = ", ".join(f"{found['splits'][k]['images']:,} {k}" for k in splits)
    console.print(f"{found['data']}: {len(found['class_names'])} classes, {sizes} images")
    console.print(_class_table(found))
    unit = {
        "classify": "images",
        "detect": "boxes in images",
        "localize": "boxes (the first of each image) in images",
        "segment": "share of the labelled pixels in images",
    }
    notes = [f"each cell: {unit[args.task]}"]
    if args.task in ("detect", "localize"):
        notes.append(
            "; ".join(
                f"{k}: {found['splits'][k]['images_without_boxes']:,} images with no box"
                for k in splits
            )
        )
        notes.append(f"median w x h: of the {splits[0]} split's boxes, as fractions of the image")
    if args.task != "classify" and not found["own_splits"]:
        notes.append(
            f"no split folders: split 70/15/15 at random, as training does (--seed {args.seed})"
        )
    for note in notes:
        console.print(note)
    for problem in found["problems"]:
        console.print(f"problem: {problem}")
    if not found["problems"]:
        console.print("every class is in every split")
    if figure:
        console.print(f"wrote {figure}")
    return found


def _class_table(found: dict[str, Any]) -> Table:
    """A row a class, a column a split: images; boxes in images (and the first split's median
    box size); or the share of the labelled pixels in images."""
    from cnnlab.cli.shown import compact_table

    task, splits = found["task"], list(found["splits"])
    boxes = task in ("detect", "localize")
    table = compact_table("")
    table.add_column("class")
    for split in splits:
        table.add_column(split, justify="right")
    if boxes:
        table.add_column("median w x h", justify="right")
    for name in found["class_names"]:
        cells = []
        for split in splits:
            got = found["splits"][split]["per_class"][name]
            if task == "classify":
                cells.append(f"{got:,}")
            elif boxes:
                cells.append(f"{got['boxes']:,} in {got['images']:,}")
            else:
                cells.append(f"{got['pixels']:.1%} in {got['images']:,}")
        if boxes:
            first = found["splits"][splits[0]]["per_class"][name]
            has = first["median_width"] is not None
            cells.append(
                f"{first['median_width']:.2f} x {first['median_height']:.2f}" if has else ""
            )
        table.add_row(name, *cells)
    return table


def _identities_said(found: dict[str, Any], console: Console) -> dict[str, Any]:
    """``data check faces``: the seen and unseen identities, each one's images summed up."""
    import statistics

    from cnnlab.cli.shown import compact_table

    console.print(f"{found['data']}: identities trained on (seen) and held out (unseen)")
    table = compact_table("")
    for column in ("", "identities", "images", "fewest", "median", "most"):
        table.add_column(column, justify="left" if not column else "right")
    for split, figures in found["splits"].items():
        counts = list(figures["per_class"].values()) or [0]
        table.add_row(
            split,
            f"{figures['identities']:,}",
            f"{figures['images']:,}",
            f"{min(counts):,}",
            f"{statistics.median(counts):g}",
            f"{max(counts):,}",
        )
    console.print(table)
    console.print("fewest, median, most: images of one identity")
    for problem in found["problems"]:
        console.print(f"problem: {problem}")
    if not found["problems"]:
        console.print("every identity has at least two images")
    return found


def cmd_data_scenes(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """Generate scenes and write them as ``--format`` into a new or empty ``--out`` folder."""
    from pathlib import Path

    from cnnlab.data.scenes import (
        check_scene_memory,
        check_scene_size,
        make_scenes,
        write_coco,
        write_labelme,
        write_masks,
        write_voc,
        write_yolo,
        write_yolo_polygons,
    )

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CnnlabError(f"{out}: exists and is not an empty folder (nothing was written)")
    check_scene_size(args.image_size)
    check_scene_memory(args.images, args.image_size)  # every scene is held until written
    writer = {
        "yolo": write_yolo,
        "yolo-seg": write_yolo_polygons,
        "coco": write_coco,
        "masks": write_masks,
        "voc": write_voc,
        "labelme": write_labelme,
    }[args.format]
    with console.status(f"drawing and writing {args.images} scenes", spinner="dots"):
        scenes = make_scenes(
            args.images, seed=args.seed, image_size=args.image_size, num_classes=args.num_classes
        )
        writer(scenes, out)
    objects = sum(len(s.labels) for s in scenes)
    if not args.json:
        console.print(
            f"wrote {len(scenes)} scenes ({objects} objects) as {args.format} to {out}: "
            f"{LAYOUTS[args.format]}"
        )
    return {"format": args.format, "path": str(out), "images": len(scenes), "objects": objects}


def cmd_data(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.data import download as D

    if args.what == "download":
        spec = D.DATASETS.get(args.name)
        if spec is not None and any(f.md5 is None for f in spec.files) and not args.json:
            console.print(
                f"note: {args.name}'s publisher gives no checksums; files are "
                "checked for completeness only"
            )
        folder = D.download(args.name, args.root, args.mirror, progress=not args.json)
        if not args.json:
            console.print(f"{args.name} is ready in {folder}")
        return {"name": args.name, "path": str(folder)}
    rows = [
        {
            "name": n,
            "present": D.is_present(n, args.root),
            "size": s.size,
            "licence": s.licence,
            "task": s.task,
        }
        for n, s in D.DATASETS.items()
    ]
    if not args.json:
        table = Table(title=f"datasets (root {args.root or D.DEFAULT_ROOT})")
        for col in ("name", "present", "download", "task", "licence"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                r["name"], "yes" if r["present"] else "no", r["size"], r["task"], r["licence"]
            )
        console.print(table)
    return {"datasets": rows}


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    data = sub.add_parser(
        "data", parents=[common], help="download and list standard datasets; write scenes"
    )
    what = data.add_subparsers(dest="what", required=True, parser_class=Parser)
    p = what.add_parser("download", parents=[common], help="fetch, verify and unpack a dataset")
    p.add_argument(
        "name",
        help="one of mnist, fashion-mnist, cifar10, cifar100, pets, voc2007, voc2012, coco, "
        "coco-train2017",
    )
    root_help = "where datasets live (default ~/.cache/cnnlab/datasets)"
    p.add_argument("--root", help=root_help)
    p.add_argument(
        "--mirror", help="a base URL (http, https, file) or a local folder with the same file names"
    )
    p.set_defaults(handler=cmd_data)
    p = what.add_parser(
        "check",
        parents=[common],
        help="count a dataset per split and class as a task's training reads it",
    )
    p.add_argument(
        "task",
        choices=("classify", "detect", "localize", "segment", "faces"),
        help="whose training reads it",
    )
    p.add_argument(
        "--data", required=True, help="what train's --data takes: a folder, a file, a name"
    )
    p.add_argument("--data-root", "--root", help="where `cnnlab data download` put datasets")
    p.add_argument(
        "--image-size", type=positive_int, default=64, help="images are decoded at NxN (checked)"
    )
    p.add_argument(
        "--seed", type=random_seed, default=0, help="the split of data without split folders"
    )
    p.add_argument("-o", "--output", help="also draw each class's share of each split here")
    p.add_argument("--unseen", default="", help="faces: the identities held out, as faces train")
    p.set_defaults(handler=cmd_data_check)
    p = what.add_parser("list", parents=[common], help="which datasets are present")
    p.add_argument("--root", help=root_help)
    p.set_defaults(handler=cmd_data)
    p = what.add_parser(
        "scenes",
        parents=[common],
        help="write synthetic scenes as YOLO (boxes or polygons), COCO, mask, Pascal VOC or "
        "labelme files",
    )
    p.add_argument(
        "--format",
        choices=sorted(LAYOUTS),
        required=True,
        help="the files to write: " + "; ".join(f"{k}: {v}" for k, v in LAYOUTS.items()),
    )
    p.add_argument("--out", required=True, help="a new or empty folder")
    p.add_argument("--images", type=positive_int, default=200, help="scenes to write")
    p.add_argument("--image-size", type=positive_int, default=128, help="images are NxN")
    p.add_argument("--num-classes", type=positive_int, default=3, help="object classes (1-8)")
    p.add_argument("--seed", type=random_seed, default=0, help="the same seed, the same scenes")
    p.set_defaults(handler=cmd_data_scenes)
