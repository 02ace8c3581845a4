"""Style transfer speed at 256 x 256: seconds per optimisation step at full size and the total for
the default run (300 steps over two scales: 200 at 128 px, 100 at 256 px), with cnnlab's
automatic CPU settings (bf16 autocast where the CPU supports it) against plain fp32 of the same
algorithm, measured in the same run, alternating, median of repeats.

Run: `python benchmarks/style_speed.py [--size 256] [--steps 10] [--repeats 3]`.
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
from rich.console import Console

from cnnlab.engine.performance import bf16_supported
from cnnlab.engine.style import load_rgb, transfer_style


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--weights", help="a torchvision VGG-19 file (default: random features)")
    args = parser.parse_args()
    content, style = load_rgb("astronaut", args.size), load_rgb("brick", args.size)
    auto_bf16 = bf16_supported(torch.device("cpu"))
    quiet = Console(stderr=True, quiet=True)
    per_step: dict[str, list[float]] = {"auto": [], "fp32": []}
    total: dict[str, list[float]] = {"auto": [], "fp32": []}
    for repeat in range(args.repeats):
        for name, bf16 in (("auto", auto_bf16), ("fp32", False)):
            options = {"weights": args.weights, "bf16": bf16, "console": quiet}
            r = transfer_style(content, style, steps=args.steps, scales=1, **options)
            per_step[name].append(r.seconds_per_step)
            if repeat == 0:  # one whole default run each
                total[name].append(transfer_style(content, style, **options).seconds)
    row = {
        "size": args.size,
        "threads": torch.get_num_threads(),
        "auto_is_bf16": auto_bf16,
        "features": "torchvision VGG-19" if args.weights else "random VGG-19",
    }
    for name, times in per_step.items():
        row[f"{name}_s_per_step_at_full_size"] = round(statistics.median(times), 3)
        row[f"{name}_default_run_s"] = round(statistics.median(total[name]), 1)
    row["speedup"] = round(
        row["fp32_s_per_step_at_full_size"] / row["auto_s_per_step_at_full_size"], 2
    )
    print(json.dumps(row))


if __name__ == "__main__":
    main()
