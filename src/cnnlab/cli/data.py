"""``cnnlab data download|list``: standard datasets fetched once and used offline."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from cnnlab.cli.common import Parser


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
    data = sub.add_parser("data", parents=[common], help="download and list standard datasets")
    what = data.add_subparsers(dest="what", required=True, parser_class=Parser)
    p = what.add_parser("download", parents=[common], help="fetch, verify and unpack a dataset")
    p.add_argument(
        "name",
        help="mnist, fashion-mnist, cifar10, cifar100, pets, voc2007, voc2012, coco, "
        "coco-train2017",
    )
    root_help = "where datasets live (default ~/.cache/cnnlab/datasets)"
    p.add_argument("--root", help=root_help)
    p.add_argument("--mirror", help="a base URL serving the same file names")
    p.set_defaults(handler=cmd_data)
    p = what.add_parser("list", parents=[common], help="which datasets are present")
    p.add_argument("--root", help=root_help)
    p.set_defaults(handler=cmd_data)
