"""Every command that takes ``--device``, run small on one device: does it finish there, how
long does it take, what does it report. Made for the GPU machine a session is sometimes lent
(nothing else here exercises a GPU): one short script, then the GPU tests.

Run: `python benchmarks/device_check.py --device cuda [--only "detect train,detect eval"]
[--json]`, then `python -m pytest -q -k gpu tests` (skipped without CUDA). With ``--device
cpu`` the same commands give the figures and times to compare with (about 40 s on 2 cores).
Each command runs in this process as ``cnnlab ... --json`` would; a failure is reported with its
error's tail and the other checks still run. Exit 1 if any failed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
import traceback
from typing import Any

import torch

from cnnlab.cli import main as cnnlab_main

# (name, argv with {dir} for the scratch folder, JSON keys reported): small settings, each
# command's own defaults otherwise (the precision and memory layout chosen for the device)
CHECKS: tuple[tuple[str, list[str], tuple[str, ...]], ...] = (
    (
        "classify train",
        ["classify", "train", "--epochs", "2", "--out", "{dir}/cls"],
        ("test_accuracy", "settings"),
    ),
    ("classify eval", ["classify", "eval", "--checkpoint", "{dir}/cls/best.pt"], ("accuracy",)),
    (
        "classify predict",
        ["classify", "predict", "--checkpoint", "{dir}/cls/best.pt", "-o", "{dir}/pred.png"],
        ("figure",),
    ),
    (
        "visualize patches",
        ["visualize", "patches", "--checkpoint", "{dir}/cls/best.pt", "-o", "{dir}/p.png"],
        ("figure",),
    ),
    (
        "visualize activations",
        ["visualize", "activations", "--checkpoint", "{dir}/cls/best.pt", "-o", "{dir}/a.png"],
        ("layers",),
    ),
    (
        "visualize occlusion",
        ["visualize", "occlusion", "--checkpoint", "{dir}/cls/best.pt", "-o", "{dir}/o.png"],
        ("patch", "stride"),
    ),
    (
        "localize train",
        ["localize", "train", "--images", "300", "--epochs", "2", "--out", "{dir}/loc"],
        ("test.accuracy", "test.mean_iou"),
    ),
    ("localize eval", ["localize", "eval", "--checkpoint", "{dir}/loc/best.pt"], ("accuracy",)),
    (
        "localize predict",
        ["localize", "predict", "--checkpoint", "{dir}/loc/best.pt", "-o", "{dir}/loc.png"],
        ("predictions.class",),
    ),
    (
        "detect train",
        ["detect", "train", "--images", "300", "--epochs", "2", "--out", "{dir}/det"],
        ("test_map_50",),
    ),
    ("detect eval", ["detect", "eval", "--checkpoint", "{dir}/det/best.pt"], ("map_50",)),
    (
        "detect predict",
        ["detect", "predict", "--checkpoint", "{dir}/det/best.pt", "-o", "{dir}/det.png"],
        ("predictions.detections.label",),
    ),
    (
        "segment train",
        ["segment", "train", "--images", "100", "--epochs", "2", "--out", "{dir}/seg"],
        ("test.mean_iou",),
    ),
    ("segment eval", ["segment", "eval", "--checkpoint", "{dir}/seg/best.pt"], ("mean_iou",)),
    (
        "segment predict",
        ["segment", "predict", "--checkpoint", "{dir}/seg/best.pt", "--out", "{dir}/maps"],
        ("predictions.pixel_counts",),
    ),
    (
        "faces train",
        ["faces", "train", "--steps", "200", "--out", "{dir}/faces"],
        ("verification_accuracy", "identification_1_shot", "device"),
    ),
    (
        "explain rcnn",
        ["explain", "rcnn", "--images", "60", "--test-images", "20", "--epochs", "1"],
        ("rows.map_50",),
    ),
    (
        "style",
        ["style", "--size", "64", "--steps", "20", "-o", "{dir}/style.png"],
        ("last.total", "seconds_per_step", "device"),
    ),
)


def run(argv: list[str]) -> tuple[int, dict[str, Any], str]:
    """``cnnlab argv --json`` in this process: exit code, its JSON object, its stderr's tail."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cnnlab_main([*argv, "--json"])
        except Exception:  # reported with its traceback; the other checks still run
            code, err = 1, io.StringIO(traceback.format_exc())
    lines = out.getvalue().strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        result = {}
    return code, result, err.getvalue().strip()[-600:]


def brief(result: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The figures worth a glance: each key a dotted path into the result (``test.mean_iou``);
    through a list of rows, the value in each (``rows.map_50``: one per method)."""

    def get(value: Any, path: list[str]) -> Any:
        if not path:
            return round(value, 4) if isinstance(value, float) else value
        if isinstance(value, list):
            return [get(v, path) for v in value]
        return get(value.get(path[0]), path[1:]) if isinstance(value, dict) else None

    return {key: get(result, key.split(".")) for key in keys}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--only", help="comma list of check names (default: all)")
    parser.add_argument("--json", action="store_true", help="one JSON line at the end")
    args = parser.parse_args()
    wanted = {w.strip() for w in args.only.split(",")} if args.only else None
    unknown = sorted((wanted or set()) - {name for name, _, _ in CHECKS})
    if unknown:
        parser.error(
            f"--only: no check {', '.join(unknown)}; the checks: "
            + ", ".join(name for name, _, _ in CHECKS)
        )
    about = {
        "torch": torch.__version__,
        "device": args.device,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    print(json.dumps(about), file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, argv, keys in CHECKS:
            if wanted is not None and name not in wanted:
                continue
            argv = [a.replace("{dir}", scratch) for a in argv] + ["--device", args.device]
            started = time.perf_counter()
            code, result, err = run(argv)
            row = {
                "check": name,
                "ok": code == 0,
                "seconds": round(time.perf_counter() - started, 1),
                **brief(result, keys),
            }
            if code != 0:
                row["error"] = err
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    failed = [r["check"] for r in rows if not r["ok"]]
    if args.json:
        print(json.dumps({**about, "checks": rows, "failed": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
