"""A photo's segmentation map: the class scores upsampled from the network's size to the
photo's and their arg-max, all at once (``F.interpolate`` on the full ``(C, H, W)``) against a
strip of rows at a time (:func:`cnnlab.engine.segment_maps.upsampled_argmax`, what ``segment
predict`` and ``cnnlab.Segmenter`` use). Each way runs in a process of its own, so its peak
memory is its own (``ru_maxrss`` above what the process held before); also the time (median of
repeats) and the share of pixels whose class the two agree on (ties of random scores differ).

Run: `python benchmarks/segment_upsample.py [--classes 21] [--photo 3000x4000] [--repeats 3]`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def measure(way: str, classes: int, height: int, width: int, repeats: int) -> dict:
    """One way's time and extra peak memory, in this process."""
    import resource

    import torch
    import torch.nn.functional as F
    from timing import median_seconds  # benchmarks/timing.py

    from cnnlab.engine.segment_maps import upsampled_argmax

    scores = torch.randn(classes, 128, 128, generator=torch.Generator().manual_seed(0))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if way == "strips":
        run = lambda: upsampled_argmax(scores, (height, width))  # noqa: E731
    else:
        run = lambda: F.interpolate(  # noqa: E731
            scores[None], size=(height, width), mode="bilinear", align_corners=False
        )[0].argmax(0)
    seconds = median_seconds(run, repeats)
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    mask = run()
    return {"way": way, "seconds": seconds, "extra_peak_mb": round(peak), "mask": mask}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=21, help="Pascal VOC's 21")
    parser.add_argument("--photo", default="3000x4000", help="H x W: a 12-megapixel photo")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--way", choices=("strips", "at_once"), help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)  # the child's map goes there
    args = parser.parse_args()
    height, width = (int(v) for v in args.photo.split("x"))
    if args.way:  # the child: one way, its mask saved for the comparison
        import torch

        row = measure(args.way, args.classes, height, width, args.repeats)
        torch.save(row.pop("mask").to(torch.uint8), args.save)
        print(json.dumps(row))
        return
    import tempfile

    import torch

    rows, masks = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for way in ("at_once", "strips"):
            saved = f"{tmp}/{way}.pt"
            child = [sys.executable, __file__, "--way", way, "--classes", str(args.classes)]
            child += ["--photo", args.photo, "--repeats", str(args.repeats), "--save", saved]
            rows.append(json.loads(subprocess.check_output(child, text=True).splitlines()[-1]))
            masks.append(torch.load(saved))
    agree = float((masks[0] == masks[1]).float().mean())
    print(json.dumps({"classes": args.classes, "photo": args.photo, "rows": rows, "agree": agree}))


if __name__ == "__main__":
    main()
