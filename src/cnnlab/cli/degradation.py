"""``cnnlab explain degradation``: the slides' ResNet figures measured. Plain CIFAR networks of
20 and 56 layers and the ResNets of the same depths and parameters are trained alike; the table
and figure show the deeper plain network's higher *training* error, and the ResNets' without it
(:mod:`cnnlab.engine.degradation`)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from cnnlab.cli.common import add_device
from cnnlab.cli.shown import figure_file
from cnnlab.cli.values import positive_int, random_seed


def _depths(text: str) -> tuple[int, ...]:
    """``--depths 20,56``: depths of the registered CIFAR networks (``cifar_plainD`` and
    ``cifar_resnetD``; torch is imported only when the option is given)."""
    from cnnlab.models.resnet import CIFAR_DEPTHS

    try:
        depths = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not whole numbers: {text!r}") from None
    bad = [d for d in depths if d not in CIFAR_DEPTHS]
    if not depths or bad:
        raise argparse.ArgumentTypeError(
            f"{', '.join(map(str, bad)) or repr(text)}: the CIFAR networks (6n + 2 layers) have "
            f"{', '.join(map(str, CIFAR_DEPTHS))} layers"
        )
    return tuple(sorted(set(depths)))


def cmd_explain_degradation(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from dataclasses import replace

    from cnnlab.config import ClassifyTrainConfig
    from cnnlab.engine.degradation import compare_depths, plot_degradation
    from cnnlab.words import counted

    figure = figure_file(args.out) if args.out else None  # refused before the training
    config = replace(
        ClassifyTrainConfig(),
        data=args.data,
        epochs=args.epochs,
        augment="none",
        seed=args.seed,
        device=args.device,
    )
    if not args.json:  # minutes, unlike most explain commands: say what runs first
        console.print(
            f"training plain networks and ResNets of {' and '.join(map(str, args.depths))} "
            f"layers on {args.data}, {counted(args.epochs, 'epoch')} each, the same recipe and "
            "seed (the defaults take about 2 minutes on 2 CPU cores)"
        )
    rows = compare_depths(config, args.depths, Console(stderr=True, quiet=args.json))
    result: dict[str, Any] = {"data": args.data, "epochs": args.epochs, "rows": rows}
    if figure is not None:
        result["figure"] = plot_degradation(rows, str(figure), args.data)
    if not args.json:
        from cnnlab.cli.shown import compact_table

        table = compact_table(
            f"{args.data}, {counted(args.epochs, 'epoch')}: error at the last epoch (training "
            "error measured during it) and on the test split"
        )
        for col in ("network", "layers", "parameters", "train error", "val error", "test error"):
            table.add_column(col, justify="left" if col == "network" else "right")
        for r in rows:
            table.add_row(
                "ResNet" if r["residual"] else "plain",
                str(r["layers"]),
                f"{r['params']:,}",
                f"{r['train_error'][-1]:.1%}",
                f"{r['val_error'][-1]:.1%}",
                f"{r['test_error']:.1%}",
            )
        console.print(table)
        console.print(_verdict(rows))
        if figure is not None:
            console.print(f"wrote {result['figure']}")
    return result


def _verdict(rows: list[dict[str, Any]]) -> str:
    """What the table shows, in words: the deepest plain network's final training error against
    the shallowest's, and the same for the ResNets."""
    words = []
    for residual in (False, True):
        mine = sorted((r for r in rows if r["residual"] == residual), key=lambda r: r["layers"])
        if len(mine) < 2:
            continue
        low, high = mine[0], mine[-1]
        kind = "ResNet" if residual else "plain"
        a, b = high["train_error"][-1], low["train_error"][-1]
        trend = (
            "a higher training error than"
            if a > b + 0.005
            else "a lower training error than"
            if a < b - 0.005
            else "about the same training error as"
        )
        losses = ""
        if trend.startswith("about"):  # both trained to the same error: the loss tells them apart
            losses = (
                f"; training loss {high['train_loss'][-1]:.4f} against {low['train_loss'][-1]:.4f}"
            )
        words.append(
            f"{kind}-{high['layers']} ends with {trend} {kind}-{low['layers']} "
            f"({a:.1%} against {b:.1%}{losses})"
        )
    return "; ".join(words) + "." if words else ""


def add_parser(what: Any, common: argparse.ArgumentParser) -> None:
    """``explain degradation``."""
    from cnnlab.engine.degradation import DEPTHS  # no torch: --help stays quick

    p = what.add_parser(
        "degradation",
        parents=[common],
        help="plain nets vs ResNets: deeper plain nets train worse (trained and compared)",
    )
    p.add_argument(
        "--depths",
        type=_depths,
        default=DEPTHS,
        help="comma list of CIFAR depths: 20, 32, 44, 56, 110",
    )
    p.add_argument("--data", default="digits", help="digits, cifar10 once downloaded, a folder")
    p.add_argument("--epochs", type=positive_int, default=10, help="epochs each network trains")
    p.add_argument("--seed", type=random_seed, default=0, help="seeds every network alike")
    add_device(p)
    p.add_argument("--out", help="also draw the error curves into this PNG (the paper's Fig. 4)")
    p.set_defaults(handler=cmd_explain_degradation)
