"""Speed of the convolutional sliding-window implementation over the naive loop of crops
(OverFeat), for the slide's 16x16 and 28x28 images and larger ones. Median of repeats; the
outputs are checked to agree.

Run: `.venv/bin/python benchmarks/sliding_windows.py`.
"""

from __future__ import annotations

import json

import torch

import cnnlab
from cnnlab.engine.sliding import compare_sliding_windows


def main() -> None:
    torch.manual_seed(0)
    model = cnnlab.create_model("window_classifier")
    for size in (16, 28, 64, 128):
        r = compare_sliding_windows(model, size, repeats=5)
        print(
            json.dumps(
                {
                    k: r[k]
                    for k in (
                        "image_size",
                        "grid",
                        "windows",
                        "max_abs_diff",
                        "seconds_naive",
                        "seconds_naive_batched",
                        "seconds_conv",
                        "speedup",
                        "speedup_vs_batched",
                    )
                }
            )
        )


if __name__ == "__main__":
    main()
