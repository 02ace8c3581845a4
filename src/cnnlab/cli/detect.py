"""``cnnlab detect``: YOLO object detection (train, eval, predict) and k-means anchors.
Training in :mod:`cnnlab.engine.detect`, the network in :mod:`cnnlab.models.yolo`, the target and
loss in :mod:`cnnlab.losses.yolo`, the anchors in :mod:`cnnlab.ops.anchors`."""

from __future__ import annotations

import argparse
from dataclasses import replace
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
from cnnlab.cli.values import positive_int, random_seed, unit_interval
from cnnlab.data.drafts import DRAFT_FORMATS


def cmd_detect_train(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.detect import DetectConfig, train_detector

    def figures(result: dict[str, Any], split: str) -> str:
        return (
            f"{split} mAP@0.5 {result[f'{split}_map_50']:.3f}, mAP@[.5:.95] "
            f"{result[f'{split}_map']:.3f} ({result['seconds']:.0f} s)"
        )

    return train_command(args, console, DetectConfig, train_detector, figures)


def _detect_eval_data(ckpt: dict[str, Any], split: str, other: str | None) -> tuple[Any, str]:
    """The split of the run's own data, or (``--data``) other labelled data: every image, or
    ``split`` where it has split folders, its classes renumbered to the checkpoint's."""
    from cnnlab.engine.detect import DetectConfig
    from cnnlab.engine.detection_data import load_detection_data, relabelled, split_of
    from cnnlab.engine.eval_data import is_other_data, scored_indices

    config = DetectConfig(**ckpt["config"])
    if not is_other_data(other, config.data):  # the run's own data (scenes: the same scenes)
        return split_of(load_detection_data(config), config.seed, split, config.data), split
    data = relabelled(load_detection_data(replace(config, data=other)), ckpt["class_names"], other)
    idx, scored = scored_indices(data.splits, len(data.images), split, other)
    return data.subset(idx), scored


def cmd_detect_eval(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.checkpoint import model_from_checkpoint
    from cnnlab.engine.detect import detections, score_detections
    from cnnlab.engine.detection_metrics import plot_pr_curve
    from cnnlab.engine.detection_mistakes import draw_detection_mistakes
    from cnnlab.engine.device import resolve_device
    from cnnlab.engine.eval_data import is_other_data

    model, ckpt = model_from_checkpoint(args.checkpoint, "detection")
    device = resolve_device(args.device)
    data, scored = _detect_eval_data(ckpt, args.split, args.data)
    own = not is_other_data(args.data, ckpt["config"]["data"])
    changed = split_changed(ckpt, args.split, data.images) if own else None
    dets = detections(model.to(device), data, device)  # scored, and drawn with --out
    ev = score_detections(dets, data)
    out = {
        "checkpoint": args.checkpoint,
        "data": args.data or ckpt["config"]["data"],
        "split": scored,
        "images": len(data.images),
        "map_50": ev["map_50"],
        "map": ev["map"],
        "map_75": ev["map_75"],
        "per_class": dict(zip(data.class_names, ev["per_class"], strict=True)),
        "data_changed": changed,
    }
    if args.out:
        figure = Path(args.out) / f"pr_{scored}.png"
        out["figure"] = str(plot_pr_curve(ev, figure, class_names=data.class_names))
        title = f"{scored}: the images with the most misses and false alarms"
        path = Path(args.out) / f"mistakes_{scored}.png"
        mistakes = draw_detection_mistakes(data, dets, path, title)
        out["mistakes_figure"] = str(mistakes) if mistakes else None
    if not args.json:
        table = compact_table(f"{scored}: average precision of each class (pycocotools)")
        for col in ("class", "boxes", "AP@0.5", "AP@[.5:.95]"):
            table.add_column(col, justify="left" if col == "class" else "right")
        for name, row in out["per_class"].items():
            ap = [f"{row[k]:.3f}" if row[k] is not None else "-" for k in ("ap_50", "ap")]
            table.add_row(name, f"{row['boxes']:,}", *ap)
        console.print(table)
        console.print(f"{scored}: mAP@0.5 {ev['map_50']:.3f}, mAP@[.5:.95] {ev['map']:.3f}")
        if args.out:
            drawn = [out["figure"], out["mistakes_figure"] or "no mistakes to draw"]
            console.print(f"figures: {', '.join(drawn)}")
    return out


def cmd_detect_predict(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.detect import detect_images, detection_rows, draw_detections
    from cnnlab.engine.detection_data import scenes_data
    from cnnlab.engine.predict import in_chunks

    refuse_beside_images(args, ("--scenes", "--seed"), "the new scenes to predict on")
    every = frame_stride(args)
    model, ckpt = predict_network(args, "detect", "detection")
    csv_path = csv_file(args.csv) if args.csv else None  # refused before any image is read
    dataset = dataset_folder(args, "their boxes")  # as is the dataset's folder
    drawn_to = drawn_folder(args)  # and the drawn images'
    size = ckpt["input_size"][-1]

    def scenes() -> Any:  # a checkpoint's settings: with --onnx, image files are required
        cfg = ckpt["config"]
        return scenes_data(
            args.scenes, size, cfg["num_classes"], cfg["max_objects"], seed=args.seed
        ).images

    chunks, sources = scene_or_file_inputs(args, size, scenes, every)
    dets, frames, first = in_chunks(
        chunks,
        lambda images: detect_images(model, images, args.score_threshold, args.iou_threshold),
        size,
    )
    drawn = first[:MAX_DRAWN]  # MAX_DRAWN is less than a chunk
    path = draw_detections(
        drawn, dets[: len(drawn)], ckpt["class_names"], args.output, args.score_threshold
    )
    rows = detection_rows(dets, ckpt["class_names"], sources, frames, size)  # the file's pixels
    index = {n: i for i, n in enumerate(ckpt["class_names"])}
    found = [
        [
            (index[d["label"]], d["box_xyxy"], f"{d['label']} {d['score']:.2f}")
            for d in r["detections"]
        ]
        for r in rows
    ]
    draw_found(drawn_to, rows, found, every=every)
    if not args.json:
        table = compact_table(
            f"detections (score >= {args.score_threshold:g}, NMS at IoU {args.iou_threshold:g})"
        )
        shown, note = first_shown(rows, csv_path)  # an image's detections stay together
        names = add_source_column(table, [r["source"] for r in shown])
        for col in ("class", "score", "box x1, y1, x2, y2 (px)"):
            table.add_column(col, justify="right" if col == "score" else "left", overflow="fold")
        for r, name in zip(shown, names, strict=True):
            for d in r["detections"]:
                score, box = f"{d['score']:.3f}", box_text(d["box_xyxy"])
                table.add_row(name, d["label"], score, box)
            if not r["detections"]:
                table.add_row(name, "-", "-", "nothing above the score threshold")
        console.print(table)
        if note:
            console.print(note)
        console.print(f"wrote {path}{drawn_note(rows)}")
        if drawn_to:
            console.print(drawn_said(rows, drawn_to))
    result = {"figure": str(path), "predictions": rows}
    if csv_path:  # one row a detection; an image with none keeps a row with its source alone
        flat: list[dict[str, Any]] = []
        for r in rows:
            flat += [
                {"source": r["source"], "label": d["label"], "score": d["score"]}
                | dict(zip(("x1", "y1", "x2", "y2"), d["box_xyxy"], strict=True))
                for d in r["detections"]
            ] or [{"source": r["source"]}]
        header = ("source", "label", "score", "x1", "y1", "x2", "y2")
        result["csv"] = write_csv(csv_path, flat, console, args.json, header)
    if dataset:  # the predictions as labels to correct, and to train on
        names = ckpt["class_names"]
        result["dataset"] = write_boxes(dataset, names, rows, frames, found, console, args)
    return result


def cmd_detect_anchors(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    import torch

    from cnnlab.engine.detect import DetectConfig
    from cnnlab.engine.detection_data import load_detection_data
    from cnnlab.ops.anchors import kmeans_anchors, mean_best_iou

    data = load_detection_data(
        DetectConfig(data=args.data, images=args.images, image_size=args.image_size)
    )
    boxes = [data.trained_on(k)[0] for k in range(len(data.images))]  # not VOC's difficult
    wh = torch.cat([b[:, 2:] - b[:, :2] for b in boxes])
    anchors = kmeans_anchors(wh, args.k, seed=args.seed)
    result: dict[str, Any] = {
        "anchors_wh": [[round(v, 4) for v in a] for a in anchors.tolist()],
        "mean_best_iou": mean_best_iou(wh, anchors),
        "boxes": len(wh),
    }
    if args.output:
        from cnnlab.ops.anchors import iou_by_k
        from cnnlab.viz.plots import plot_anchors

        ks = range(1, min(max(9, args.k), len(wh)) + 1)
        ious = iou_by_k(wh, ks, seed=args.seed)
        result["mean_best_iou_by_k"] = {k: round(v, 4) for k, v in zip(ks, ious, strict=True)}
        result["figure"] = str(plot_anchors(wh, anchors, ks, ious, args.output))
    if not args.json:
        console.print(
            f"{args.k} anchors (w, h relative to the image) from {len(wh)} boxes: "
            f"{result['anchors_wh']}; mean best IoU {result['mean_best_iou']:.3f}"
        )
        if args.output:
            console.print(f"wrote {result['figure']}")
    return result


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    det = sub.add_parser("detect", parents=[common], help="YOLO object detection")
    what = det.add_subparsers(dest="what", required=True, parser_class=Parser)
    from cnnlab.config import DetectConfig

    d = DetectConfig()
    p = what.add_parser("train", parents=[common], help="train on scenes, YOLO or COCO data")
    p.add_argument("--data", default=d.data, help=BOX_DATA_HELP)
    p.add_argument("--data-root", "--root", help="where `cnnlab data download` put datasets")
    p.add_argument("--backbone", default=d.backbone, help=BACKBONE_HELP)
    add_backbone_weights(p, d)
    p.add_argument("--images", type=positive_int, default=d.images, help="scenes to generate")
    p.add_argument("--image-size", type=positive_int, default=d.image_size, help=SIZE_HELP)
    p.add_argument(
        "--num-classes", type=positive_int, default=d.num_classes, help="object classes (scenes)"
    )
    p.add_argument(
        "--max-objects", type=positive_int, default=d.max_objects, help="objects per scene, at most"
    )
    p.add_argument("--anchors", type=positive_int, default=d.anchors, help="k-means anchors")
    p.add_argument(
        "--augment",
        default=d.augment,
        help="extra augmentations moving the boxes with the image, e.g. "
        "color,rotate,shear (mirroring: --mirror)",
    )
    add_mirror(p, d.mirror, "boxes")
    add_precision(p, d.precision)
    add_schedule(p, d, "detect")
    add_resume(p)
    p.set_defaults(handler=cmd_detect_train)
    p = what.add_parser("eval", parents=[common], help="mAP of a checkpoint")
    add_checkpoint_split(p)
    add_eval_data(p, "a YOLO folder or data.yaml, a COCO .json, a VOC XML or labelme folder")
    add_device(p)
    p.add_argument(
        "--out", help="folder for the precision-recall PNG and the images with the most mistakes"
    )
    p.set_defaults(handler=cmd_detect_eval)
    p = what.add_parser("predict", parents=[common], help="draw labelled boxes")
    add_checkpoint_or_onnx(p)
    add_device(p)
    add_image_files(p, "image files, videos, or folders of them (default: new scenes)", videos=True)
    add_scenes(p, 4321, "runs/detect/predictions.png")
    add_csv(p, "every detection: source, label, score and box (in its own pixels)")
    p.add_argument(
        "--score-threshold",
        type=unit_interval,
        default=0.3,
        help="keep boxes whose objectness x class probability reaches this",
    )
    p.add_argument(
        "--iou-threshold",
        type=unit_interval,
        default=0.5,
        help="non-max suppression drops a box whose IoU with a better one reaches this",
    )
    add_as_dataset(p, "the boxes found, as --dataset-format lays them out", DRAFT_FORMATS)
    add_drawn_folder(p, "its labelled boxes")
    add_every(p)
    p.set_defaults(handler=cmd_detect_predict)
    p = what.add_parser("anchors", parents=[common], help="k-means anchors (1 - IoU distance)")
    p.add_argument("--data", default="scenes", help=BOX_DATA_HELP)
    p.add_argument("--images", type=positive_int, default=1000, help="scenes to generate")
    p.add_argument("--image-size", type=positive_int, default=128, help=SIZE_HELP)
    p.add_argument("--k", type=positive_int, default=3, help="anchors (clusters)")
    p.add_argument("--seed", type=random_seed, default=0, help="seeds the scenes and k-means")
    p.add_argument(
        "-o",
        "--output",
        help="a figure: the boxes by anchor, the anchors, mean IoU against k (YOLOv2's figure 2)",
    )
    p.set_defaults(handler=cmd_detect_anchors)
