"""Selective search's time on real photos, split into its two steps: Felzenszwalb's segmentation
(scikit-image) and cnnlab's merge hierarchy (`cnnlab.ops.proposals.merge_hierarchy`: a heap of
neighbouring pairs' similarities), at the three default scales, with the segments and the
proposals each photo gives.

Run: `python benchmarks/proposals.py [--repeats 3] [--json]`. Median of repeats, seconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from rich.console import Console
from rich.table import Table
from skimage import data
from skimage.segmentation import felzenszwalb

from cnnlab.ops.proposals import merge_hierarchy, selective_search

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
SCALES = (50.0, 100.0, 200.0)  # selective_search's defaults


def measure(image: np.ndarray, repeats: int) -> dict:
    """Median seconds of the segmentations and of the merges over the default scales."""
    segment, merge, segments = [], [], 0
    for _ in range(repeats):
        s = m = 0.0
        for scale in SCALES:
            t = time.perf_counter()
            labels = felzenszwalb(image, scale=scale, sigma=0.8, min_size=20)
            s += time.perf_counter() - t
            t = time.perf_counter()
            merge_hierarchy(image, labels)
            m += time.perf_counter() - t
            segments = max(segments, int(labels.max()) + 1)
        segment.append(s)
        merge.append(m)
    return {
        "size": f"{image.shape[1]}x{image.shape[0]}",
        "segments_at_scale_50": segments,
        "proposals": len(selective_search(image)),
        "segment_s": round(statistics.median(segment), 3),
        "merge_s": round(statistics.median(merge), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = {name: measure(getattr(data, name)(), args.repeats) for name in PHOTOS}
    if args.json:
        print(json.dumps(rows))
        return
    table = Table(title="selective search at scales 50, 100, 200 (median seconds)")
    for col in ("photo", "size", "segments (scale 50)", "proposals", "segmenting s", "merging s"):
        table.add_column(col, justify="left" if col == "photo" else "right")
    for name, r in rows.items():
        table.add_row(name, *(str(v) for v in r.values()))
    Console().print(table)


if __name__ == "__main__":
    main()
