"""Digits benchmark for the foundation issue: LeNet-5 test accuracy over three seeds (target:
median >= 98%) and the wall time of one training run (target: `make demo` under 60 s).

Run: `make bench` or `.venv/bin/python benchmarks/bench_digits.py [--seeds 0 1 2]`.
Not part of the test suite: timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch
from rich.console import Console

from cnnlab.config import ClassifyTrainConfig
from cnnlab.engine.classify import train_classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    quiet = Console(stderr=True, quiet=True)
    rows = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            config = ClassifyTrainConfig(model=args.model, seed=seed, epochs=args.epochs, out=out)
            result = train_classifier(config, quiet)
            rows.append(
                {
                    "seed": seed,
                    "test_accuracy": result.test.accuracy,
                    "best_epoch": result.best_epoch,
                    "seconds": round(time.perf_counter() - start, 2),
                }
            )
            print(json.dumps(rows[-1]))
    summary = {
        "model": args.model,
        "epochs": args.epochs,
        "threads": torch.get_num_threads(),
        "median_test_accuracy": statistics.median(r["test_accuracy"] for r in rows),
        "median_seconds": statistics.median(r["seconds"] for r in rows),
        "runs": rows,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
