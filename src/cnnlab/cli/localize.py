"""``cnnlab localize``: classification with localisation, y = [p_c, b_x, b_y, b_h, b_w, c_1..c_n]
(and landmarks). Training and metrics in :mod:`cnnlab.engine.localize`, the loss in
:mod:`cnnlab.losses.localization`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from cnnlab.cli.common import (
    Parser,
    add_backbone_weights,
    add_checkpoint_split,
    add_device,
    add_eval_data,
    add_image_files,
    add_precision,
    add_resume,
    add_schedule,
    split_changed,
)
from cnnlab.cli.predicting import (
    add_as_dataset,
    add_checkpoint_or_onnx,
    add_drawn_folder,
    add_every,
    add_source_column,
    dataset_folder,
    draw_found,
    drawn_folder,
    drawn_said,
    frame_stride,
    predict_network,
    write_boxes,
)
from cnnlab.cli.scene_tasks import (
    BACKBONE_HELP,
    BOX_DATA_HELP,
    SIZE_HELP,
    add_mirror,
    add_scenes,
    box_text,
    scene_or_file_inputs,
    train_command,
)
from cnnlab.cli.shown import (
    MAX_DRAWN,
    add_csv,
    compact_table,
    csv_file,
    drawn_note,
    first_shown,
    write_csv,
)
from cnnlab.cli.typed import refuse_beside_images
from cnnlab.cli.values import positive_int
from cnnlab.data.drafts import DRAFT_FORMATS
from cnnlab.words import counted


def cmd_localize_train(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.localize import LocalizeConfig, train_localizer

    def figures(result: dict[str, Any], split: str) -> str:
        return f"{split}: {_localization_line(result[split])} ({result['seconds']} s)"

    return train_command(args, console, LocalizeConfig, train_localizer, figures)


def _localization_line(m: dict[str, Any]) -> str:
    """``evaluate``'s figures in words: presence-and-class accuracy, boxes with IoU >= 0.5 (the
    slide's "correct"), mean IoU, and the landmark error as a share of the box diagonal."""
    line = (
        f"class accuracy {m['accuracy']:.1%}, IoU >= 0.5 for {m['iou_correct']:.1%} of the "
        f"objects, mean IoU {m['mean_iou']:.3f}"
    )
    if "landmark_error" in m:
        line += f", landmark error {m['landmark_error']:.3f} of the box diagonal"
    return line + f" on {counted(m['count'], 'image')}"


def cmd_localize_eval(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.data.split_folders import require_split
    from cnnlab.engine.checkpoint import model_from_checkpoint
    from cnnlab.engine.device import resolve_device
    from cnnlab.engine.eval_data import is_other_data
    from cnnlab.engine.localize import (
        LocalizeConfig,
        answers,
        draw_mistakes,
        load_data,
        other_localization_data,
        score_answers,
    )

    model, ckpt = model_from_checkpoint(args.checkpoint, "localization")
    config = LocalizeConfig(**ckpt["config"])
    device = resolve_device(args.device)
    if is_other_data(args.data, config.data):  # classes by name, every image or --split's
        data, scored = other_localization_data(args.data, ckpt, args.split)
        changed = None
    else:
        data, scored = load_data(config), args.split
        idx = require_split(data.splits, args.split, config.data)
        changed = split_changed(ckpt, args.split, data.images[idx])
    said = answers(model.to(device), data, data.splits[scored], device)  # scored and drawn
    metrics = score_answers(data, scored, said, per_class=True)
    figure = None
    if args.out:  # the images answered worst, each with its true and predicted box
        figure = draw_mistakes(data, scored, said, Path(args.out) / f"mistakes_{scored}.png")
    if not args.json:
        table = compact_table(f"{scored}: each class (p_c and class right; boxes)")
        for col in ("class", "images", "accuracy", "IoU >= 0.5", "mean IoU"):
            table.add_column(col, justify="left" if col == "class" else "right")
        for name, row in metrics["per_class"].items():
            shown = [
                "-" if row[k] is None else f"{row[k]:.1%}" if k != "mean_iou" else f"{row[k]:.3f}"
                for k in ("accuracy", "iou_correct", "mean_iou")
            ]
            table.add_row(name, f"{row['images']:,}", *shown)
        console.print(table)
        console.print(f"{scored}: {_localization_line(metrics)}")
        if args.out:
            console.print(f"figure: {figure or 'no mistakes to draw'}")
    return {
        "checkpoint": args.checkpoint,
        "data": args.data or config.data,
        "split": scored,
        **metrics,
        "data_changed": changed,
        "figure": str(figure) if figure else None,
    }


def cmd_localize_predict(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    import numpy as np
    import torch

    from cnnlab.data.scenes import make_scenes
    from cnnlab.engine.localize import draw_predictions, in_file_pixels, predict_images
    from cnnlab.engine.predict import in_chunks

    refuse_beside_images(args, ("--scenes", "--seed"), "the new scenes to predict on")
    every = frame_stride(args)
    model, ckpt = predict_network(args, "localize", "localization")
    csv_path = csv_file(args.csv) if args.csv else None  # refused before any image is read
    dataset = dataset_folder(args, "their boxes")  # as is the dataset's folder
    drawn_to = drawn_folder(args)  # and the drawn images'
    size = ckpt["input_size"][-1]

    def scenes() -> torch.Tensor:
        cfg = ckpt["config"]
        drawn = make_scenes(
            args.scenes,
            seed=args.seed,
            image_size=size,
            num_classes=cfg["num_classes"],
            min_objects=0,
            max_objects=1,
            min_scale=0.35,
            max_scale=0.7,
            max_occlusion=1.0,
        )
        return torch.from_numpy(np.stack([x.image for x in drawn])).permute(0, 3, 1, 2)

    chunks, sources = scene_or_file_inputs(args, size, scenes, every)
    rows, frames, first = in_chunks(
        chunks, lambda images: predict_images(model, ckpt["class_names"], images), size
    )
    drawn = first[:MAX_DRAWN]  # MAX_DRAWN is less than a chunk
    path = draw_predictions(drawn, rows[: len(drawn)], args.output)
    rows = in_file_pixels(rows, sources, frames, size)  # coordinates in the file's pixels
    index = {n: i for i, n in enumerate(ckpt["class_names"])}
    found = [  # the box where p_c >= 0.5, as the figure draws it
        [(index[r["class"]], r["box_xyxy"], f"{r['class']} {r['object_probability']:.2f}")]
        if r["object_probability"] >= 0.5
        else []
        for r in rows
    ]
    # the landmarks of each found box
    points = [[r["landmarks"]] if f else [] for r, f in zip(rows, found, strict=True)]
    draw_found(drawn_to, rows, found, points, every)
    if not args.json:
        table = compact_table("classification with localisation: y = [p_c, box, class]")
        shown, note = first_shown(rows, csv_path)
        names = add_source_column(table, [r["source"] for r in shown])
        for col in ("p_c (object)", "class", "p(class)", "box x1, y1, x2, y2 (px)"):
            table.add_column(col, justify="left" if col == "class" else "right", overflow="fold")
        for r, name in zip(shown, names, strict=True):
            table.add_row(
                name,
                f"{r['object_probability']:.3f}",
                r["class"],
                f"{r['class_probability']:.3f}",
                box_text(r["box_xyxy"]),
            )
        console.print(table)
        if note:
            console.print(note)
        console.print(f"wrote {path}{drawn_note(rows)}")
        if drawn_to:
            console.print(drawn_said(rows, drawn_to))
    result = {"figure": str(path), "predictions": rows}
    if csv_path:  # one row an image: y = [p_c, class, box]
        flat = [
            {
                "source": r["source"],
                "object_probability": r["object_probability"],
                "class": r["class"],
                "class_probability": r["class_probability"],
                **dict(zip(("x1", "y1", "x2", "y2"), r["box_xyxy"], strict=True)),
            }
            for r in rows
        ]
        result["csv"] = write_csv(csv_path, flat, console, args.json)
    if dataset:  # the boxes as labels to correct; landmarks are not written
        names = ckpt["class_names"]
        result["dataset"] = write_boxes(dataset, names, rows, frames, found, console, args)
    return result


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    loc = sub.add_parser(
        "localize", parents=[common], help="classification with localisation (and landmarks)"
    )
    what = loc.add_subparsers(dest="what", required=True, parser_class=Parser)
    from cnnlab.config import LocalizeConfig

    d = LocalizeConfig()
    p = what.add_parser("train", parents=[common], help="train on scenes or a YOLO folder")
    p.add_argument("--data", default=d.data, help=BOX_DATA_HELP)
    p.add_argument("--backbone", default=d.backbone, help=BACKBONE_HELP)
    add_backbone_weights(p, d)
    p.add_argument("--landmarks", action="store_true", help="also regress 5 landmarks")
    p.add_argument("--images", type=positive_int, default=d.images, help="scenes to generate")
    p.add_argument("--image-size", type=positive_int, default=d.image_size, help=SIZE_HELP)
    p.add_argument(
        "--num-classes", type=positive_int, default=d.num_classes, help="object classes (scenes)"
    )
    p.add_argument(
        "--loss",
        choices=("practical", "squared"),
        default=d.loss,
        help="practical: BCE + squared error + cross-entropy; squared: the slide's, all squared",
    )
    add_mirror(p, d.mirror, "boxes (and left/right landmarks swapped)")
    add_precision(p, d.precision, "fp32 with channels-last (bf16 cost box accuracy here)")
    add_schedule(p, d, "localize")
    add_resume(p)
    p.set_defaults(handler=cmd_localize_train)
    p = what.add_parser("eval", parents=[common], help="metrics of a checkpoint")
    add_checkpoint_split(p)
    add_eval_data(p, "a YOLO folder or data.yaml, a COCO .json, a VOC XML or labelme folder")
    add_device(p)
    p.add_argument("--out", help="folder for the PNG of the images answered worst")
    p.set_defaults(handler=cmd_localize_eval)
    p = what.add_parser("predict", parents=[common], help="draw predicted boxes and points")
    add_checkpoint_or_onnx(p)
    add_device(p)
    add_image_files(p, "image files, videos, or folders of them (default: new scenes)", videos=True)
    add_scenes(p, 1234, "runs/localize/predictions.png")
    add_csv(p, "each image's object probability, class and box (in its own pixels)")
    add_as_dataset(p, "the box where p_c >= 0.5; landmarks are not written", DRAFT_FORMATS)
    add_drawn_folder(p, "its box (p_c >= 0.5) and landmarks")
    add_every(p)
    p.set_defaults(handler=cmd_localize_predict)
