"""``cnnlab localize`` and ``cnnlab detect``: single objects and YOLO detection (their
shared helpers for scenes and image files are used by ``cli.segment`` too)."""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    data_change_reported,
    resumed_config,
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
from cnnlab.cli.shown import (
    MAX_DRAWN,
    add_csv,
    compact_table,
    csv_file,
    drawn_note,
    first_shown,
    run_folder_note,
    write_csv,
)
from cnnlab.cli.typed import refuse_beside_images, refuse_scene_options
from cnnlab.cli.values import positive_int, random_seed, unit_interval
from cnnlab.data.drafts import DRAFT_FORMATS
from cnnlab.words import counted

if TYPE_CHECKING:
    from cnnlab.data.video import Every


def cmd_localize_train(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.localize import LocalizeConfig, train_localizer

    config = resumed_config(LocalizeConfig, args)
    refuse_scene_options(args, config.data)
    with data_change_reported():  # a run resumed on changed data says so
        result = train_localizer(config, Console(stderr=True, quiet=args.json), args.resume or "")
    if not args.json:
        split = result["evaluated_on"]
        console.print(
            f"{split}: {_localization_line(result[split])} ({result['seconds']} s)"
            + final_note(split)
        )
        console.print(run_folder_note(result["run_dir"], args.started))
    return result


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


def _inputs(
    args: argparse.Namespace, size: int, scenes: Callable[[], Any], every: Every = 1
) -> tuple[Iterable[tuple[Any, list[tuple[int, int]]]], list[str]]:
    """A box predict command's images, a chunk at a time with each one's ``(width, height)``,
    and their sources: the files given, stretched to the model's ``size``
    (:func:`~cnnlab.engine.predict.stretched_chunks`: one chunk in memory however many), then
    each video's frames, every ``every``-th (:func:`~cnnlab.engine.predict.video_chunks`, named
    in ``sources`` as they are read); or ``scenes()`` drawn at that size, one chunk."""
    if args.images:
        from cnnlab.data.video import is_video
        from cnnlab.engine.predict import stretched_chunks, video_chunks

        stills = [p for p in args.images if not is_video(p)]
        sources = list(stills)  # each video's frames join as they are read
        videos = [video_chunks(v, size, sources, every) for v in args.images if is_video(v)]
        return itertools.chain(stretched_chunks(stills, size), *videos), sources
    images = scenes()
    return [(images, [(size, size)] * len(images))], [f"scene[{i}]" for i in range(len(images))]


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

    chunks, sources = _inputs(args, size, scenes, every)
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
                _box_text(r["box_xyxy"]),
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


def final_note(split: str) -> str:
    """What a train command adds when its final figures are on val (no test split)."""
    return "; no test split, val also chose the best epoch" if split == "val" else ""


def _box_text(box: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in box)


def cmd_detect_train(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.detect import DetectConfig, train_detector

    config = resumed_config(DetectConfig, args)
    refuse_scene_options(args, config.data)
    with data_change_reported():  # a run resumed on changed data says so
        result = train_detector(config, Console(stderr=True, quiet=args.json), args.resume or "")
    if not args.json:
        split = result["evaluated_on"]
        console.print(
            f"{split} mAP@0.5 {result[f'{split}_map_50']:.3f}, mAP@[.5:.95] "
            f"{result[f'{split}_map']:.3f} ({result['seconds']:.0f} s)" + final_note(split)
        )
        console.print(run_folder_note(result["run_dir"], args.started))
    return result


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

    chunks, sources = _inputs(args, size, scenes, every)
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
                score, box = f"{d['score']:.3f}", _box_text(d["box_xyxy"])
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


BACKBONE_HELP = "a registered classifier whose features the head reads (see cnnlab models)"
SIZE_HELP = "images are NxN"
BOX_DATA_HELP = (
    "scenes, a YOLO folder or its data.yaml (Ultralytics), a COCO .json, or a folder of "
    "Pascal VOC XML files (LabelImg, CVAT, Roboflow) or of labelme JSON files"
)


def _add_mirror(p: argparse.ArgumentParser, default: bool, what: str) -> None:
    """``--mirror / --no-mirror``: random horizontal flips of the training images."""
    p.add_argument(
        "--mirror",
        action=argparse.BooleanOptionalAction,
        default=default,
        help=f"mirror half the training images left to right, {what} alike; --no-mirror where "
        "left and right differ (arrows, text)",
    )


def _add_scenes(p: argparse.ArgumentParser, seed: int, output: str) -> None:
    """``--scenes --seed -o`` of a predict command that draws new scenes without images."""
    p.add_argument("--scenes", type=positive_int, default=8, help="new scenes, without images")
    p.add_argument("--seed", type=random_seed, default=seed, help="seeds the new scenes")
    p.add_argument("-o", "--output", default=output, help="the figure's PNG")


def _add_localize(sub: Any, common: argparse.ArgumentParser) -> None:
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
    _add_mirror(p, d.mirror, "boxes (and left/right landmarks swapped)")
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
    _add_scenes(p, 1234, "runs/localize/predictions.png")
    add_csv(p, "each image's object probability, class and box (in its own pixels)")
    add_as_dataset(p, "the box where p_c >= 0.5; landmarks are not written", DRAFT_FORMATS)
    add_drawn_folder(p, "its box (p_c >= 0.5) and landmarks")
    add_every(p)
    p.set_defaults(handler=cmd_localize_predict)


def _add_detect(sub: Any, common: argparse.ArgumentParser) -> None:
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
    _add_mirror(p, d.mirror, "boxes")
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
    _add_scenes(p, 4321, "runs/detect/predictions.png")
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


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """localize, detect."""
    _add_localize(sub, common)
    _add_detect(sub, common)
