"""``cnnlab style``: neural style transfer (Gatys et al.), the math in
:mod:`cnnlab.engine.style`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from cnnlab.cli.common import add_device
from cnnlab.cli.typed import refuse_lr_without_adam
from cnnlab.cli.values import non_negative_float, positive_float, positive_int, random_seed
from cnnlab.errors import CnnlabError


def _style_bf16(precision: str, device: Any) -> bool:
    from cnnlab.engine.performance import bf16_supported

    if precision == "bf16" and not bf16_supported(device):
        raise CnnlabError(f"--precision bf16: this {device.type} device has no bf16 support")
    return precision == "bf16" or (precision == "auto" and bf16_supported(device))


def cmd_style(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.device import resolve_device
    from cnnlab.engine.style import (
        check_style_memory,
        image_path,
        load_rgb,
        save_strip,
        transfer_style,
    )

    refuse_lr_without_adam(args, "--optimizer lbfgs finds its steps by a line search")
    image_path(args.output)  # before the optimisation: a bad name would lose its result
    device = resolve_device(args.device)
    if device.type == "cpu":  # a GPU's own memory says so itself (see cnnlab.cli.main)
        check_style_memory(args.size)
    content, style = load_rgb(args.content, args.size), load_rgb(args.style, args.size)
    result = transfer_style(
        content,
        style,
        steps=args.steps,
        scales=args.scales,
        alpha=args.alpha,
        beta=args.beta,
        tv_weight=args.tv,
        norm=args.norm,
        init=args.init,
        optimizer=args.optimizer,
        lr=args.lr,
        weights=args.weights,
        seed=args.seed,
        bf16=_style_bf16(args.precision, device),
        device=device,
        console=Console(stderr=True, quiet=args.json),
    )
    out = save_strip([result.image], args.output)
    strip = save_strip(
        [content[0], style[0], *result.snapshots],
        Path(args.output).with_name(Path(args.output).stem + "_strip.png"),
    )
    if result.interrupted:  # Ctrl-C: the image so far is written, then said as interrupted
        raise KeyboardInterrupt(
            f"wrote the image so far, after {len(result.history):,} of {args.steps:,} steps: "
            f"{out} and {strip}"
        )
    first, last = result.history[0], result.history[-1]
    if not args.json:
        console.print(
            f"wrote {out} and {strip}; J {first['total']:.3g} -> {last['total']:.3g} "
            f"in {result.seconds:.1f} s ({result.seconds_per_step:.2f} s/step)"
        )
        if not args.weights:  # the classic look needs trained features, which nothing downloads
            console.print(
                "features: VGG-19 with random (seeded) weights; --weights vgg19-dcbb9e9d.pth, "
                "torchvision's file, gives Gatys et al.'s trained ones"
            )
    return {
        "output": str(out),
        "strip": str(strip),
        "first": first,
        "last": last,
        "seconds": result.seconds,
        "seconds_per_step": result.seconds_per_step,
        "device": str(device),
        "features": "vgg19 (torchvision weights)"
        if args.weights
        else "vgg19 with random weights (see docs)",
    }


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """style."""
    p = sub.add_parser("style", parents=[common], help="neural style transfer (Gatys et al.)")
    p.add_argument(
        "content",
        nargs="?",
        default="astronaut",
        help="image path or bundled photo (astronaut, chelsea, coffee, china, flower, ...)",
    )
    p.add_argument(
        "style",
        nargs="?",
        default="brick",
        help="image path or bundled photo/texture (brick, grass, gravel, coffee, ...)",
    )
    p.add_argument(
        "-o",
        "--output",
        default="runs/style/generated.png",
        help="the generated image (and a _strip.png beside it)",
    )
    p.add_argument(
        "--size", type=positive_int, default=256, help="images are cropped and resized to NxN"
    )
    p.add_argument("--steps", type=positive_int, default=300, help="in total, over all scales")
    p.add_argument(
        "--scales",
        type=positive_int,
        default=2,
        help="coarse-to-fine levels (1: plain Gatys at full size)",
    )
    p.add_argument("--alpha", type=non_negative_float, default=10.0, help="content weight")
    p.add_argument(
        "--beta",
        type=non_negative_float,
        default=None,
        help="style weight (default 40 with --weights, 4000 with random features)",
    )
    p.add_argument("--tv", type=non_negative_float, default=0.0, help="total-variation weight")
    p.add_argument(
        "--norm",
        choices=("course", "gatys"),
        default="course",
        help="the costs' normalisers: the course's exercise or Gatys et al.'s paper",
    )
    p.add_argument(
        "--init",
        choices=("content", "random"),
        default="content",
        help="start G from the content image or from noise",
    )
    p.add_argument(
        "--optimizer", choices=("adam", "lbfgs"), default="adam", help="optimiser of G's pixels"
    )
    p.add_argument("--lr", type=positive_float, default=0.03, help="learning rate (adam)")
    p.add_argument("--weights", help="a torchvision VGG-19 weights file (vgg19-dcbb9e9d.pth)")
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="auto: bf16 where the device supports it (1.5x faster at 256 px on this CPU)",
    )
    p.add_argument(
        "--seed", type=random_seed, default=0, help="seeds the random features and noise"
    )
    add_device(p)
    p.set_defaults(handler=cmd_style)
