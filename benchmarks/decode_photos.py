"""Decoding photos for training: a full JPEG decode against libjpeg's DCT-scaled decode
(Pillow's ``draft``, used by ``read_image(..., at_least=2 * size)``), for camera-sized photos
reduced to a small network input. Also the mean absolute difference of the two results (grey
levels, 0-255), which should stay well under one.

Run: `python benchmarks/decode_photos.py [--size 128] [--repeats 7]`. Median of repeats.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from PIL import Image
from skimage import data
from timing import median_seconds  # benchmarks/timing.py

from cnnlab.data.folder import fit_image, image_tensor, image_to_uint8
from cnnlab.data.images import read_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="network input (pixels)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for width, height in ((1600, 1200), (4000, 3000)):
            path = Path(tmp) / f"photo_{width}.jpg"
            Image.fromarray(data.astronaut()).resize((width, height)).save(path, quality=90)

            def full(path: Path = path) -> object:
                return image_tensor(fit_image(read_image(path, "RGB"), args.size))

            def scaled(path: Path = path) -> object:
                return image_to_uint8(path, args.size, 3)

            t_full = median_seconds(full, args.repeats)
            t_scaled = median_seconds(scaled, args.repeats)
            diff = (full().float() - scaled().float()).abs().mean().item()
            rows.append(
                {
                    "photo": f"{width}x{height}",
                    "full_ms": round(t_full * 1e3, 1),
                    "scaled_ms": round(t_scaled * 1e3, 1),
                    "speedup": round(t_full / t_scaled, 1),
                    "mean_abs_diff": round(diff, 3),
                }
            )
            print(rows[-1], flush=True)
    print(json.dumps({"size": args.size, "rows": rows}))


if __name__ == "__main__":
    main()
