"""``cnnlab explain iou``, ``explain nms`` and ``explain yolo-target``: the slides
"Intersection over Union (IoU)", "Non-max suppression algorithm" and "Specify the bounding
boxes" / "Anchor box algorithm", worked through on boxes the user types.

IoU = size of intersection / size of union, and a localisation is "correct" if IoU >= 0.5. The
non-max suppression algorithm, for one class (each prediction is ``[p_c, b_x, b_y, b_h, b_w]``,
here given as corners ``x1 y1 x2 y2`` and ``p_c``):

1. Discard all boxes with ``p_c <= 0.6``.
2. While there are any remaining boxes: pick the box with the largest ``p_c`` and output it as
   a prediction; discard any remaining box with ``IoU >= 0.5`` with the box output in the
   previous step.

:func:`explain_nms` records every step as a plain loop; the tests check that it keeps the
boxes :func:`cnnlab.ops.nms.slide_nms` (the vectorised implementation) keeps.

The YOLO target (:func:`explain_yolo_target`): each object is assigned to the grid cell that
contains its midpoint and to the anchor box with the highest IoU with its shape; that cell's
anchor slot holds ``[p_c = 1, b_x, b_y, b_h, b_w, c_1, ..., c_C]`` with ``b_x, b_y`` the
midpoint's place inside the cell (0 to 1) and ``b_h, b_w`` the size in cells (can exceed 1:
the slide's ``b_w = 1.1``); every other slot has ``p_c = 0`` and "don't care" entries. The
assignment itself is :func:`cnnlab.ops.anchors.assign_targets`, the one training uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from cnnlab.errors import CnnlabError
from cnnlab.explain import parse_matrix, plain_number
from cnnlab.ops.anchors import assign_targets, shape_iou
from cnnlab.ops.boxes import box_iou

# Two cars, each found by several overlapping boxes, and one faint box: the situation the
# slide's non-max suppression picture shows (its numbers are in the picture, not the text).
EXAMPLE_BOXES = (
    "10 20 40 45 0.9; 12 18 43 44 0.6; 8 22 38 48 0.7; 60 15 90 40 0.8; "
    "57 17 88 43 0.7; 64 12 92 38 0.75; 44 4 54 14 0.5"
)

# The slide's example: a 3 x 3 grid, anchor 1 tall (pedestrian), anchor 2 wide (car), and a car
# in the middle cell at b_x = 0.3, b_y = 0.4, b_h = 0.5, b_w = 1.1 (a 300 x 300 image).
EXAMPLE_OBJECTS = "75 115 185 165 2"
EXAMPLE_ANCHORS = "0.1 0.3; 0.3 0.1"
SLIDE_CLASSES = ("pedestrian", "car", "motorcycle")


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
        "a": [plain_number(v) for v in a.tolist()],
        "b": [plain_number(v) for v in b.tolist()],
        "intersection_box": (
            [plain_number(v) for v in (*lt.tolist(), *rb.tolist())] if inter else None
        ),
        "intersection": plain_number(inter),
        "area_a": plain_number(area_a),
        "area_b": plain_number(area_b),
        "union": plain_number(union),
        "iou": round(iou, 6),
        "correct": iou >= 0.5,
    }


def plot_iou(result: dict[str, Any], path: str | Path) -> Path:
    """The two boxes (image coordinates, y down) and their intersection shaded, the ratio in the
    title."""
    from matplotlib.patches import Rectangle

    from cnnlab.viz.plots import plt, save_figure

    fig, ax = plt.subplots(figsize=(5, 4.5))
    for box, colour, name in ((result["a"], "tab:blue", "a"), (result["b"], "tab:orange", "b")):
        x1, y1, x2, y2 = box
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=2, ec=colour))
        y, where = (y2, "top") if name == "a" else (y1, "bottom")  # a's label below, b's above
        ax.text(x1, y, f" {name}: area {result[f'area_{name}']:g}", color=colour, va=where)
    if result["intersection_box"] is not None:
        x1, y1, x2, y2 = result["intersection_box"]
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, color="tab:green", alpha=0.4))
    corners = [*result["a"], *result["b"]]
    lo, hi = min(corners), max(corners)
    pad = 0.1 * (hi - lo or 1)
    ax.set(xlim=(lo - pad, hi + pad), ylim=(hi + pad, lo - pad), aspect="equal")
    ax.set_title(
        f"IoU = {result['intersection']:g} / {result['union']:g} = {result['iou']:.4f}"
        f" ({'>=' if result['correct'] else '<'} 0.5)",
        fontsize=10,
    )
    return save_figure(fig, path)


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
            {
                "pick": pick,
                "p_c": plain_number(scores[pick]),
                "iou_with_rest": others,
                "discarded": gone,
            }
        )
    return {
        "kind": "nms",
        "boxes": [[plain_number(v) for v in b] for b in boxes.tolist()],
        "scores": [plain_number(s) for s in scores.tolist()],
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


def parse_objects(
    text: str, image_size: int, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``"x1 y1 x2 y2 class; ..."`` in pixels of an ``image_size`` square, classes numbered from 1
    as on the slide -> boxes ``(N, 4)`` relative to the image and labels ``(N,)`` from 0. An
    empty ``text`` is an image without objects (every cell's target is ``p_c = 0``)."""
    if not text.strip():
        return torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)
    rows = parse_matrix(text, "--objects")
    if rows.shape[1] != 5:
        raise CnnlabError(
            f"--objects: each object is 'x1 y1 x2 y2 class' (5 numbers), got {rows.shape[1]}"
        )
    _check_corners(rows[:, :4], "--objects")
    if (rows[:, :4] < 0).any() or (rows[:, :4] > image_size).any():
        raise CnnlabError(f"--objects: a box leaves the {image_size} x {image_size} image")
    labels = rows[:, 4]
    if (labels != labels.round()).any() or (labels < 1).any() or (labels > num_classes).any():
        raise CnnlabError(f"--objects: class must be a whole number from 1 to {num_classes}")
    return (rows[:, :4] / image_size).float(), labels.long() - 1


def parse_anchors(text: str) -> torch.Tensor:
    """``"w h; w h"`` relative to the image -> ``(A, 2)``."""
    anchors = parse_matrix(text, "--anchors")
    if anchors.shape[1] != 2 or (anchors <= 0).any() or (anchors > 1).any():
        raise CnnlabError("--anchors: each anchor is 'w h', relative to the image (0 < w, h <= 1)")
    return anchors.float()


def explain_yolo_target(
    boxes: torch.Tensor,
    labels: torch.Tensor,
    grid: int,
    anchors: torch.Tensor,
    class_names: tuple[str, ...] = SLIDE_CLASSES,
) -> dict[str, Any]:
    """The target ``y`` (``grid x grid x A x (5 + C)``) of one image with ``boxes (N, 4)`` xyxy
    relative to the image and ``labels (N,)``, and for each object how it got there."""
    t = assign_targets([boxes], [labels], grid, anchors)
    wh = boxes[:, 2:] - boxes[:, :2]
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    ious = shape_iou(wh, anchors)
    objects = []
    for k in range(len(boxes)):
        cell = (centre[k] * grid).floor().clamp(0, grid - 1)
        col, row = cell.long().tolist()
        anchor = int(ious[k].argmax())
        b_x, b_y = (centre[k] * grid - cell).tolist()
        objects.append(
            {
                "class": class_names[int(labels[k])],
                "midpoint": [round(v, 4) for v in centre[k].tolist()],
                "cell": [row, col],
                "anchor_iou": [round(v, 4) for v in ious[k].tolist()],
                "anchor": anchor + 1,
                "b_x": round(b_x, 4),
                "b_y": round(b_y, 4),
                "b_h": round(float(wh[k, 1] * grid), 4),
                "b_w": round(float(wh[k, 0] * grid), 4),
                # two objects in one cell with one best anchor: the later one is kept
                "replaced": not torch.equal(t.boxes[0, row, col, anchor], boxes[k]),
            }
        )
    cells = []
    for row, col in sorted({tuple(o["cell"]) for o in objects}):
        slots = []
        for a in range(len(anchors)):
            if not t.responsible[0, row, col, a]:
                slots.append([0] + [None] * (4 + len(class_names)))  # "?": don't care
                continue
            bx, by = t.txy[0, row, col, a].tolist()
            x1, y1, x2, y2 = t.boxes[0, row, col, a].tolist()
            onehot = [int(c == int(t.labels[0, row, col, a])) for c in range(len(class_names))]
            size = [round((y2 - y1) * grid, 4), round((x2 - x1) * grid, 4)]
            slots.append([1, round(bx, 4), round(by, 4), *size, *onehot])
        cells.append({"cell": [row, col], "y": slots})
    return {
        "kind": "yolo-target",
        "grid": grid,
        "anchors": [[round(v, 4) for v in a] for a in anchors.tolist()],
        "classes": list(class_names),
        "shape": [grid, grid, len(anchors), 5 + len(class_names)],
        "objects": objects,
        "cells": cells,
        "responsible_slots": int(t.responsible.sum()),
    }


def render_yolo_target(result: dict[str, Any], console: Console) -> None:
    """Each object's cell, anchor and numbers, then the ``y`` vectors of the cells that hold
    objects, one row per anchor as the slide stacks them (``?`` for don't care)."""
    g, anchors = result["grid"], result["anchors"]
    table = Table(title=f"{g} x {g} grid; anchors (w, h): {anchors}")
    for col in ("object", "midpoint", "cell", "IoU w/ anchors", "anchor", "b_x, b_y, b_h, b_w"):
        table.add_column(col)
    for o in result["objects"]:
        table.add_row(
            o["class"],
            ", ".join(f"{v:.3g}" for v in o["midpoint"]),
            f"{o['cell'][0]}, {o['cell'][1]}",
            ", ".join(f"{v:.2f}" for v in o["anchor_iou"]),
            f"{o['anchor']}" + (" (taken by a later object)" if o["replaced"] else ""),
            ", ".join(f"{o[k]:g}" for k in ("b_x", "b_y", "b_h", "b_w")),
        )
    console.print(table)
    classes = [f"c_{k + 1}" for k in range(len(result["classes"]))]
    console.print("anchor slots: [" + " ".join(["p_c", "b_x", "b_y", "b_h", "b_w", *classes]) + "]")
    for cell in result["cells"]:
        row, col = cell["cell"]
        for a, slot in enumerate(cell["y"], start=1):
            values = " ".join("?" if v is None else f"{v:g}" for v in slot)
            console.print(f"y[{row}, {col}], anchor {a}: [{values}]")
    shape = " x ".join(map(str, result["shape"]))
    console.print(
        f"y is {shape}: every {'other ' if result['cells'] else ''}cell has p_c = 0 for each "
        "anchor. For the size the network "
        "regresses log(w / anchor w) and log(h / anchor h)."
    )


def plot_yolo_target(result: dict[str, Any], path: str | Path, image_size: int) -> Path:
    """The slide's picture: the ``S x S`` grid over the image, each object's box and midpoint,
    the cell that holds the midpoint shaded, and the anchors drawn around the midpoint (the one
    of highest IoU solid), with that slot's ``y`` in the title."""
    from matplotlib.patches import Rectangle

    from cnnlab.viz.plots import plt, save_figure

    g, s = result["grid"], image_size
    fig, ax = plt.subplots(figsize=(5.5, 6))
    for k in range(1, g):
        ax.axhline(k * s / g, color="grey", lw=1)
        ax.axvline(k * s / g, color="grey", lw=1)
    colours = plt.get_cmap("tab10")
    for i, o in enumerate(result["objects"]):
        colour = colours(i % 10)
        (cx, cy), w, h = o["midpoint"], o["b_w"] / g, o["b_h"] / g
        row, col = o["cell"]
        ax.add_patch(Rectangle((col * s / g, row * s / g), s / g, s / g, color=colour, alpha=0.15))
        corner = ((cx - w / 2) * s, (cy - h / 2) * s)
        ax.add_patch(Rectangle(corner, w * s, h * s, fill=False, lw=2, ec=colour))
        ax.plot([cx * s], [cy * s], "o", color=colour)
        for a, (aw, ah) in enumerate(result["anchors"], start=1):
            best = a == o["anchor"]
            ax.add_patch(
                Rectangle(
                    ((cx - aw / 2) * s, (cy - ah / 2) * s),
                    aw * s,
                    ah * s,
                    fill=False,
                    lw=1.5 if best else 1,
                    ls="-" if best else ":",
                    ec="black",
                )
            )
            ax.text(
                (cx + aw / 2) * s,
                (cy - ah / 2) * s,
                f"anchor {a}: IoU {o['anchor_iou'][a - 1]:.2f}",
                fontsize=7,
                va="bottom",
            )
        ax.text((cx - w / 2) * s, (cy + h / 2) * s, o["class"], color=colour, va="top")
    ax.set(xlim=(0, s), ylim=(s, 0), aspect="equal")
    title = [f"{g} x {g} grid, {len(result['anchors'])} anchors"]
    for cell in result["cells"]:
        row, col = cell["cell"]
        for a, slot in enumerate(cell["y"], start=1):
            if slot[0]:
                title.append(f"y[{row}, {col}], anchor {a} = [{' '.join(f'{v:g}' for v in slot)}]")
    ax.set_title("\n".join(title), fontsize=9)
    return save_figure(fig, path)
