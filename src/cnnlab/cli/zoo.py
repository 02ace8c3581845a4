"""The model zoo at a glance: ``cnnlab models`` (every registered model, or ``--ledger``: our
parameter and MAC counts beside the papers') and ``cnnlab summary`` (a model's layers: the
slides' table of activation shapes, sizes and parameters, plus MACs)."""

from __future__ import annotations

import argparse
import math
from typing import Any

from rich.console import Console

from cnnlab.cli.shown import compact_table
from cnnlab.cli.values import dims
from cnnlab.errors import CnnlabError

MODEL_HELP = "a registered model, see cnnlab models"


def cmd_models(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    if args.ledger:
        return _ledger(args, console)
    from cnnlab.models.shapes import shapes_only
    from cnnlab.registry import create_model, get_model_entry, list_models

    rows = []
    for name in list_models(args.pattern, args.task):
        entry = get_model_entry(name)
        with shapes_only():  # no memory, no weights drawn: instant even for VGG
            model = create_model(name)
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        rows.append(
            {
                "name": name,
                "task": entry.task,
                "input_size": list(entry.input_size),
                "params": params,
                "paper": entry.paper,
            }
        )
    if not args.json and not rows:
        console.print(_none_matches(args, "registered model", "cnnlab models lists them all"))
    elif not args.json:
        # short headers: at 80 columns the citation keeps room to wrap by words
        table = compact_table("registered models: input C x H x W, trainable parameters, paper")
        for col in ("name", "task", "input", "params", "paper"):
            # names stay whole; on a narrow terminal the citation wraps instead
            table.add_column(
                col,
                justify="right" if col == "params" else "left",
                no_wrap=col != "paper",
                overflow="fold",
            )
        for r in rows:
            table.add_row(
                r["name"],
                r["task"],
                "x".join(map(str, r["input_size"])),
                f"{r['params']:,}",
                r["paper"],
            )
        console.print(table)
    return {"models": rows}


def _none_matches(args: argparse.Namespace, what: str, hint: str) -> str:
    """The line a filter that matches nothing prints instead of an empty table."""
    task = f" of task {args.task}" if args.task else ""
    return f"no {what} matches {args.pattern!r}{task}; {hint}"


def _ledger(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.models.ledger import LEDGER, build_ledger
    from cnnlab.registry import list_models

    chosen = set(list_models(args.pattern, args.task))  # --task filters the ledger as well
    entries = tuple(e for e in LEDGER if e.model in chosen)
    rows = [r.to_dict() for r in build_ledger(entries)]
    if not args.json and not rows:
        console.print(_none_matches(args, "ledger entry", "its models are the papers' classifiers"))
    elif not args.json:
        table = compact_table(
            "parameters and MACs: ours vs published (G MACs = 10^9 multiply-accumulates; "
            "FLOPs = 2 x MACs)"
        )
        for col in ("model", "px", "source", "params", "published", "G MACs", "published"):
            right = col in ("px", "params", "G MACs")
            # the numbers stay whole; on a narrow terminal the model and the source fold
            table.add_column(
                col,
                justify="right" if right else "left",
                no_wrap=col not in ("model", "source"),
                overflow="fold",
            )
        notes: list[str] = []  # printed under the table: a column of them needed 200 characters
        for r in rows:
            name = r["model"] + "".join(f" {k}={v}" for k, v in r["overrides"].items())
            mark = {True: "", False: " *", None: ""}[r["params_match"]]
            pub_p = f"{r['published_params']:,}{mark}" if r["published_params"] else "-"
            pub_g = f"{r['published_gmacs']}" if r["published_gmacs"] is not None else "-"
            if r["note"] and r["note"] not in notes:
                notes.append(r["note"])
            note = f" [{notes.index(r['note']) + 1}]" if r["note"] else ""  # a footnote below
            table.add_row(
                name,
                str(r["resolution"]),
                r["source"] + note,
                f"{r['params']:,}",
                pub_p,
                f"{r['gmacs']:.3f}",
                pub_g,
            )
        console.print(table)
        for k, note in enumerate(notes, 1):
            console.print(f"[{k}] {note}")
        console.print("* differs by more than the source's rounding; the note says why")
    return {"ledger": rows}


def cmd_summary(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.models.backbone import input_must_fit
    from cnnlab.models.shapes import shapes_only
    from cnnlab.registry import create_model, get_model_entry
    from cnnlab.viz.summary import summarize

    entry = get_model_entry(args.model)
    made_for = "x".join(map(str, entry.input_size))
    if args.input and len(args.input) != len(entry.input_size):
        raise CnnlabError(
            f"--input {'x'.join(map(str, args.input))}: {args.model} takes "
            f"{len(entry.input_size)} sizes ({made_for}: channels first)"
        )
    # another number of channels builds the model for them, as training on RGB images does
    # (lenet5 is made for 1x32x32; `--input 3x32x32` shows the lenet5 an RGB folder trains)
    kwargs = {}
    if args.input and args.input[0] != entry.input_size[0] and "in_channels" in entry.parameters():
        kwargs["in_channels"] = args.input[0]
    with shapes_only():  # no memory, no weights drawn
        model = create_model(args.model, **kwargs)
    shape = args.input or getattr(model, "default_input_size", entry.input_size)
    with input_must_fit(args.model, shape, "--input"):
        summary = summarize(model, shape, args.model, show_all=args.all)
    if not args.json:
        c, *spatial = shape
        header = ("layer", "type", "activation", "size", "# params", "M MACs")
        rows = [("input", "", str((*spatial, c)), f"{math.prod(shape):,}", "0", "0")]
        rows += [
            (
                r.name,
                r.kind,
                str(r.slide_shape),
                f"{r.size:,}",
                f"{r.params:,}",
                f"{r.macs / 1e6:,.3f}",
            )
            for r in summary.rows
        ]
        # a narrow terminal folds the type (AdaptiveAvgPool2d) before the layer's name (ResNet's
        # downsample layers at 80 columns), down to BatchNorm2d's width; every number stays whole
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        room = console.width - (sum(widths) - widths[1]) - 2 * (len(header) - 1)
        table = compact_table(
            f"{args.model}: input {'x'.join(map(str, shape))} "
            "(activation shapes channels last, as on the slides)"
        )
        table.add_column("layer", min_width=8, overflow="fold")
        table.add_column("type", max_width=max(len("BatchNorm2d"), room), overflow="fold")
        table.add_column("activation", no_wrap=True)
        for col in header[3:]:
            table.add_column(col, justify="right", no_wrap=True)
        for row in rows:
            table.add_row(*row)
        console.print(table)
        console.print(
            f"total parameters: {summary.total_params:,} "
            f"(trainable {summary.trainable_params:,}); "
            f"MACs: {summary.total_macs:,} ({2 * summary.total_macs:,} FLOPs)"
        )
        for note in summary.notes:
            console.print(f"note: {note}")
    return summary.to_dict()


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """models, then summary."""
    from cnnlab.registry import TASKS

    p = sub.add_parser("models", parents=[common], help="list registered models")
    p.add_argument(
        "pattern",
        nargs="?",
        default="*",
        help="part of a name (resnet: every name containing it) or a shell-style filter ('lenet*')",
    )
    p.add_argument(
        "--ledger",
        action="store_true",
        help="our parameter and MAC counts beside the published figures",
    )
    p.add_argument(
        "--task",
        choices=TASKS,
        help="only the models of this task (backbones and --model of classify are classification)",
    )
    p.set_defaults(handler=cmd_models)

    p = sub.add_parser("summary", parents=[common], help="per-layer shapes, parameters and MACs")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument(
        "--input",
        type=dims,
        help="input size CxHxW (default: the model's own); another C builds the model for it",
    )
    p.add_argument("--all", action="store_true", help="also list activations, flatten, dropout")
    p.set_defaults(handler=cmd_summary)
