"""Transfer learning for detection (slide "Transfer Learning"): a YOLO detector trained on few
scenes, from scratch against from the backbone of a localizer trained on other scenes
(``detect train --pretrained runs/localize/.../best.pt``), with that backbone fine-tuned at a
tenth of the rate (``--backbone-lr-mult 0.1``), and with it frozen (``--freeze backbone``: only
the neck and head train). The detector's test mAP@0.5 and mAP@[.5:.95],
median over seeds.

Run: `.venv/bin/python benchmarks/transfer_detection.py [--images 300] [--seeds 0 1 2]` (about
8 minutes on 2 cores). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console

from cnnlab.config import DetectConfig, LocalizeConfig
from cnnlab.engine.detect import train_detector
from cnnlab.engine.localize import train_localizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300, help="the detector's scenes")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--source-epochs", type=int, default=10, help="the localizer's epochs")
    args = parser.parse_args()
    quiet = Console(stderr=True, quiet=True)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "localizer"  # 3,000 other scenes (seed 100), 128 px like detect
        found = train_localizer(
            LocalizeConfig(image_size=128, epochs=args.source_epochs, seed=100, out=str(source)),
            quiet,
        )
        print(json.dumps({"localizer": found["test"]}))
        recipes = {
            "from scratch": {},
            "localizer's backbone": {"pretrained": str(source / "best.pt")},
            "localizer's backbone, lr x 0.1": {
                "pretrained": str(source / "best.pt"),
                "backbone_lr_mult": 0.1,
            },
            "localizer's backbone, frozen": {
                "pretrained": str(source / "best.pt"),
                "freeze": "backbone",
            },
        }
        summary = {}
        for name, settings in recipes.items():
            runs = []
            for seed in args.seeds:
                out = str(Path(tmp) / f"{name}-{seed}")
                config = DetectConfig(images=args.images, seed=seed, out=out, **settings)
                started = time.perf_counter()
                result = train_detector(config, quiet)
                seconds = time.perf_counter() - started
                runs.append(
                    {
                        "seed": seed,
                        "map_50": result["test_map_50"],
                        "map": result["test_map"],
                        "seconds": round(seconds, 1),
                    }
                )
                print(json.dumps({"recipe": name, **runs[-1]}))
            summary[name] = {
                "median_map_50": statistics.median(r["map_50"] for r in runs),
                "median_map": statistics.median(r["map"] for r in runs),
                "median_seconds": statistics.median(r["seconds"] for r in runs),
            }
        print(json.dumps({"images": args.images, "recipes": summary}))


if __name__ == "__main__":
    main()
