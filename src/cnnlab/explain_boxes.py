"""``cnnlab explain iou`` and ``cnnlab explain nms``: the slides "Intersection over Union (IoU)"
and "Non-max suppression algorithm", worked through on boxes the user types.

IoU = size of intersection / size of union, and a localisation is "correct" if IoU >= 0.5. The
non-max suppression algorithm, for one class (each prediction is ``[p_c, b_x, b_y, b_h, b_w]``,
here given as corners ``x1 y1 x2 y2`` and ``p_c``):

1. Discard all boxes with ``p_c <= 0.6``.
2. While there are any remaining boxes: pick the box with the largest ``p_c`` and output it as
   a prediction; discard any remaining box with ``IoU >= 0.5`` with the box output in the
   previous step.

:func:`explain_nms` records every step as a plain loop; the tests check that it keeps the
boxes :func:`cnnlab.ops.nms.slide_nms` (the vectorised implementation) keeps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from cnnlab.errors import CnnlabError
from cnnlab.explain import _num, parse_matrix
from cnnlab.ops.boxes import box_iou

# Two cars, each found by several overlapping boxes, and one faint box: the situation the
# slide's non-max suppression picture shows (its numbers are in the picture, not the text).
EXAMPLE_BOXES = (
    "10 20 40 45 0.9; 12 18 43 44 0.6; 8 22 38 48 0.7; 60 15 90 40 0.8; "
    "57 17 88 43 0.7; 64 12 92 38 0.75; 44 4 54 14 0.5"
)


def parse_box(text: str, what: str) -> torch.Tensor:
    """``"x1 y1 x2 y2"`` -> a ``(4,)`` float64 tensor with ``x1 <= x2`` and ``y1 <= y2``."""
    box = parse_matrix(text, what)
    if box.shape != (1, 4):
        raise CnnlabError(f"{what}: expected one box 'x1 y1 x2 y2', got {text!r}")
    _check_corners(box, what)
    return box[0]


def _check_corners(boxes: torch.Tensor, what: str) -> None:
    bad = ((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])).nonzero().flatten()
    if len(bad):
        raise CnnlabError(
            f"{what}: box {int(bad[0]) + 1} has x2 < x1 or y2 < y1 (corners are x1 y1 x2 y2, "
            "top-left then bottom-right)"
        )


def explain_iou(a: torch.Tensor, b: torch.Tensor) -> dict[str, Any]:
    """The slide's ratio for two ``(4,)`` xyxy boxes, each term shown: the intersection box
    (empty when they do not overlap), the areas, union = area(a) + area(b) - intersection."""
    lt, rb = torch.maximum(a[:2], b[:2]), torch.minimum(a[2:], b[2:])
    wh = (rb - lt).clamp(min=0)
    inter = float(wh[0] * wh[1])
    area_a = float((a[2] - a[0]) * (a[3] - a[1]))
    area_b = float((b[2] - b[0]) * (b[3] - b[1]))
    union = area_a + area_b - inter
    iou = float(box_iou(a[None], b[None])[0, 0])
    return {
        "kind": "iou",
        "a": [_num(v) for v in a.tolist()],
        "b": [_num(v) for v in b.tolist()],
        "intersection_box": [_num(v) for v in (*lt.tolist(), *rb.tolist())] if inter else None,
        "intersection": _num(inter),
        "area_a": _num(area_a),
        "area_b": _num(area_b),
        "union": _num(union),
        "iou": round(iou, 6),
        "correct": iou >= 0.5,
    }


def parse_scored_boxes(text: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``"x1 y1 x2 y2 p_c; ..."`` -> boxes ``(N, 4)`` and scores ``(N,)``, float64."""
    rows = parse_matrix(text, "--boxes")
    if rows.shape[1] != 5:
        raise CnnlabError(
            f"--boxes: each box is 'x1 y1 x2 y2 p_c' (5 numbers), got {rows.shape[1]} per row"
        )
    _check_corners(rows[:, :4], "--boxes")
    if ((rows[:, 4] < 0) | (rows[:, 4] > 1)).any():
        raise CnnlabError("--boxes: p_c is a probability, between 0 and 1")
    return rows[:, :4], rows[:, 4]


def explain_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    score_threshold: float = 0.6,
    iou_threshold: float = 0.5,
) -> dict[str, Any]:
    """Run the algorithm of the module docstring on ``boxes (N, 4)`` and ``scores (N,)``,
    recording each step: which box was picked and the IoU of every remaining box with it."""
    dropped = [i for i, s in enumerate(scores.tolist()) if s <= score_threshold]
    remaining = [
        i for i in scores.argsort(descending=True, stable=True).tolist() if i not in dropped
    ]
    iou = box_iou(boxes, boxes)
    steps, kept = [], []
    while remaining:
        pick = remaining.pop(0)
        kept.append(pick)
        others = {j: round(float(iou[pick, j]), 4) for j in remaining}
        gone = [j for j in remaining if iou[pick, j] >= iou_threshold]
        remaining = [j for j in remaining if j not in gone]
        steps.append(
            {"pick": pick, "p_c": _num(scores[pick]), "iou_with_rest": others, "discarded": gone}
        )
    return {
        "kind": "nms",
        "boxes": [[_num(v) for v in b] for b in boxes.tolist()],
        "scores": [_num(s) for s in scores.tolist()],
        "score_threshold": score_threshold,
        "iou_threshold": iou_threshold,
        "dropped_low_p_c": dropped,
        "steps": steps,
        "kept": kept,
    }


def render_iou(result: dict[str, Any], console: Console) -> None:
    """The ratio with its terms, as on the slide."""
    inter_box = result["intersection_box"]
    console.print(f"box a {result['a']}: area {result['area_a']}")
    console.print(f"box b {result['b']}: area {result['area_b']}")
    console.print(
        f"intersection: {inter_box}, area {result['intersection']}"
        if inter_box
        else "intersection: none (the boxes do not overlap), area 0"
    )
    console.print(
        f"union = {result['area_a']} + {result['area_b']} - {result['intersection']} = "
        f"{result['union']}"
    )
    verdict = '>= 0.5: "correct"' if result["correct"] else '< 0.5: not "correct"'
    console.print(
        f"IoU = {result['intersection']} / {result['union']} = {result['iou']:.4f} {verdict}"
    )


def render_nms(result: dict[str, Any], console: Console) -> None:
    """Each step of the algorithm as a table row."""
    thr, iou_thr = result["score_threshold"], result["iou_threshold"]
    dropped = ", ".join(f"{i} ({result['scores'][i]})" for i in result["dropped_low_p_c"])
    console.print(f"discard all boxes with p_c <= {thr:g}: {dropped or 'none'}")
    table = Table(title=f"non-max suppression (discard IoU >= {iou_thr:g} with the pick)")
    for col in ("step", "pick (largest p_c)", "IoU of each remaining box with it", "discarded"):
        table.add_column(col, justify="right" if col == "step" else "left")
    for k, step in enumerate(result["steps"], start=1):
        ious = ", ".join(f"{j}: {v:.2f}" for j, v in step["iou_with_rest"].items())
        table.add_row(
            str(k),
            f"box {step['pick']} (p_c {step['p_c']}) -> output",
            ious or "none left",
            ", ".join(map(str, step["discarded"])) or "-",
        )
    console.print(table)
    console.print(f"predictions: boxes {', '.join(map(str, result['kept']))}")


def plot_nms(result: dict[str, Any], path: str | Path) -> Path:
    """Left: every box, kept ones solid green, suppressed ones dashed red, low ``p_c`` dotted
    grey. Right: the predictions that remain."""
    from matplotlib.patches import Rectangle

    from cnnlab.viz.plots import plt, save_figure

    boxes, kept = result["boxes"], result["kept"]
    suppressed = {j for s in result["steps"] for j in s["discarded"]}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    limits = (0, max(b[2] for b in boxes) * 1.05), (max(b[3] for b in boxes) * 1.1, 0)
    for ax, shown, title in (
        (axes[0], range(len(boxes)), "all predictions"),
        (axes[1], kept, "after non-max suppression"),
    ):
        for i in shown:
            x1, y1, x2, y2 = boxes[i]
            colour, ls = (
                ("green", "-") if i in kept else ("red", "--") if i in suppressed else ("grey", ":")
            )
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=colour, ls=ls))
            ax.text(x1, y1, f"{i}: {result['scores'][i]}", fontsize=7, color=colour, va="bottom")
        ax.set(xlim=limits[0], ylim=limits[1], title=title, aspect="equal")
    fig.suptitle(
        f"green: output; red dashed: IoU >= {result['iou_threshold']:g} with an output; "
        f"grey dotted: p_c <= {result['score_threshold']:g}",
        fontsize=9,
    )
    return save_figure(fig, path)
