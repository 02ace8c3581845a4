"""``cnnlab segment train|eval|predict``: semantic segmentation (U-Net) on scenes, mask folders,
COCO or YOLO polygon files (:mod:`cnnlab.engine.segment`)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
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
    split_changed,
)
from cnnlab.cli.predicting import (
    add_as_dataset,
    add_checkpoint_or_onnx,
    add_every,
    add_source_column,
    dataset_folder,
    frame_stride,
    predict_network,
)
from cnnlab.cli.scene_tasks import SIZE_HELP, train_command
from cnnlab.cli.shown import (
    MAX_DRAWN,
    add_csv,
    compact_table,
    csv_file,
    drawn_note,
    figure_file,
    first_shown,
    write_csv,
)
from cnnlab.cli.typed import refuse_beside_images
from cnnlab.cli.values import positive_int, random_seed
from cnnlab.data.drafts import MAP_FORMATS
from cnnlab.words import counted

if TYPE_CHECKING:
    from cnnlab.data.video import Every


def cmd_segment_train(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.segment import SegmentConfig, train_segmenter

    def figures(result: dict[str, Any], split: str) -> str:
        return (
            f"{split} mean IoU {result[split]['mean_iou']:.3f}, pixel accuracy "
            f"{result[split]['pixel_accuracy']:.3f}"
        )

    return train_command(args, console, SegmentConfig, train_segmenter, figures)


def cmd_segment_eval(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.data.split_folders import own_or_seeded, require_split
    from cnnlab.engine.checkpoint import model_from_checkpoint
    from cnnlab.engine.device import resolve_device
    from cnnlab.engine.eval_data import is_other_data, scored_indices
    from cnnlab.engine.segment import (
        SegmentConfig,
        draw_worst_maps,
        score_maps,
        segmentation_metrics,
    )
    from cnnlab.engine.segment_data import load_segmentation_data, relabelled

    model, ckpt = model_from_checkpoint(args.checkpoint, "segmentation")
    config = SegmentConfig(**ckpt["config"])
    device = resolve_device(args.device)
    if is_other_data(args.data, config.data):  # classes by name, every image or --split's
        data = relabelled(
            load_segmentation_data(replace(config, data=args.data)), ckpt["class_names"], args.data
        )
        idx, scored = scored_indices(data.splits, len(data.images), args.split, args.data)
        changed = None
    else:
        data = load_segmentation_data(config)
        parts = own_or_seeded(data.splits, len(data.images), config.seed)
        idx, scored = require_split(parts, args.split, config.data), args.split
        changed = split_changed(ckpt, args.split, data.images[idx])
    conf, shares = score_maps(model.to(device), data, idx, device)  # scored, and drawn
    metrics = segmentation_metrics(conf)
    figure = None
    if args.out:  # its least-right images beside their true and predicted maps
        title = f"{ckpt['model']} on {scored}: the images it gets least right"
        path = Path(args.out) / f"worst_maps_{scored}.png"
        figure = draw_worst_maps(model, data, idx, shares, device, path, title)
    if not args.json:
        table = compact_table(f"{scored}: each class's pixels, IoU and Dice")
        for col in ("class", "pixels", "IoU", "Dice"):
            table.add_column(col, justify="left" if col == "class" else "right")
        for name, pixels, iou, dice in zip(
            ckpt["class_names"],
            metrics["per_class_pixels"],
            metrics["per_class_iou"],
            metrics["per_class_dice"],
            strict=True,
        ):  # a class with no pixels here has no IoU to speak of (left out of the means)
            table.add_row(
                name, f"{pixels:,}", *((f"{iou:.3f}", f"{dice:.3f}") if pixels else ("-", "-"))
            )
        console.print(table)
        console.print(
            f"{scored}: mean IoU {metrics['mean_iou']:.3f}, mean Dice {metrics['mean_dice']:.3f}, "
            f"pixel accuracy {metrics['pixel_accuracy']:.3f} on {counted(len(idx), 'image')}"
        )
        if args.out:
            console.print(f"figure: {figure or 'no labelled pixel to draw'}")
    return {
        "checkpoint": args.checkpoint,
        "data": args.data or config.data,
        "split": scored,
        "images": len(idx),
        **metrics,
        "data_changed": changed,
        "figure": str(figure) if figure else None,
    }


def cmd_segment_predict(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    import torch

    from cnnlab.data.drafts import add_map_draft, begin_map_draft
    from cnnlab.data.scenes import standardise
    from cnnlab.engine.segment_data import scenes_segmentation
    from cnnlab.engine.segment_maps import (
        add_mask_pair,
        mask_counts,
        new_mask_dataset,
        plot_predictions,
        predict_mask,
        save_prediction,
        upsampled_argmax,
    )
    from cnnlab.models.unet import at_input_size

    refuse_beside_images(args, ("--scenes", "--seed"), "the new scenes to predict on")
    every = frame_stride(args)
    model, ckpt = predict_network(args, "segment", "segmentation")
    csv_path = csv_file(args.csv) if args.csv else None  # refused before any image is read
    figure = figure_file(args.output) if args.output else None  # as is a figure's
    dataset = dataset_folder(args, "their maps")  # and the dataset's folder
    names = ckpt["class_names"]
    kind = args.dataset_format
    if dataset and kind == "masks":  # images/ and masks/ of class indices: corrected, they train
        new_mask_dataset(dataset, names)
    elif dataset:  # each region a polygon, for a labelling tool
        begin_map_draft(dataset, names, kind)
    polygons = specks = 0
    size = ckpt["input_size"][-1]
    if args.images:
        inputs, total, videos = _files_and_frames(args.images, every)
    else:
        data = scenes_segmentation(args.scenes, size, len(names) - 1, seed=args.seed)
        stems = [f"scene{i}" for i in range(args.scenes)]
        inputs, total, videos = zip(stems, stems, data.images, strict=True), args.scenes, {}
    from cnnlab.data.images import with_progress

    rows, drawn = [], []
    for k, (stem, source, given) in enumerate(with_progress(inputs, "segmenting", total)):
        if args.images:  # at the training size, the map brought back to the photo's pixels
            image, mask = predict_mask(model, given, size, source)
        else:
            image = given
            with torch.no_grad():
                scores = at_input_size(model, standardise(image.float())[None])[0]
            mask = upsampled_argmax(scores, scores.shape[-2:])  # the arg-max, as a photo's
        paths = save_prediction(image, mask, Path(args.out), stem)
        if dataset and kind == "masks":
            add_mask_pair(dataset, source, stem, mask, image)
        elif dataset:
            array = image.permute(1, 2, 0).numpy()
            added = add_map_draft(dataset, kind, names, source, stem, mask.numpy(), array)
            polygons, specks = polygons + added[0], specks + added[1]
        if figure and k < MAX_DRAWN:
            drawn.append((source, image, mask))
        rows.append({"source": source, **paths, "pixel_counts": mask_counts(mask, names)})
    if not args.json:
        table = compact_table("share of the pixels given to each class")
        shown, note = first_shown(rows, csv_path)
        shown_as = add_source_column(table, [r["source"] for r in shown])
        for n in names:
            table.add_column(n, justify="right")
        for r, name in zip(shown, shown_as, strict=True):
            total = max(1, sum(r["pixel_counts"].values()))
            table.add_row(name, *(f"{r['pixel_counts'][n] / total:.1%}" for n in names))
        console.print(table)
        if note:
            console.print(note)
        theirs = "its overlay" if len(rows) == 1 else "their overlays"
        console.print(f"wrote {counted(len(rows), 'map')} and {theirs} to {args.out}")
    result: dict[str, Any] = {"predictions": rows}
    if videos:  # each video's overlays, as a video again
        result["videos"] = _overlay_videos(rows, videos, Path(args.out), every)
        if not args.json:
            for path in result["videos"]:
                console.print(f"wrote {path}")
    if dataset:
        result["dataset"] = {"folder": str(dataset), "format": kind, "images": len(rows)}
        if kind != "masks":
            result["dataset"] |= {"polygons": polygons, "specks": specks}
        if not args.json:
            console.print(_draft_said(result["dataset"]))
    if figure:
        result["figure"] = str(plot_predictions(drawn, names, figure))
        if not args.json:
            console.print(f"wrote {figure}{drawn_note(rows)}")
    if csv_path:  # one row an image: its two PNGs, then each class's pixels in the map
        flat = [
            {"source": r["source"], "map": r["map"], "overlay": r["overlay"]}
            | {f"{n}_pixels": r["pixel_counts"][n] for n in names}
            for r in rows
        ]
        header = ("source", "map", "overlay", *(f"{n}_pixels" for n in names))
        result["csv"] = write_csv(csv_path, flat, console, args.json, header)
    return result


def _draft_said(dataset: dict[str, Any]) -> str:
    """What ``--as-dataset`` wrote, in a line."""
    kind, images = dataset["format"], counted(dataset["images"], "image")
    if kind == "masks":
        maps = "its map" if dataset["images"] == 1 else "their maps"
    else:
        maps = f"{counted(dataset['polygons'], 'polygon')} (a region each)"
    specks = dataset.get("specks", 0)
    left = f"; {counted(specks, 'speck')} left out" if specks else ""
    return (
        f"wrote {images} and {maps} as a {kind} dataset to {dataset['folder']} "
        f"({MAP_FORMATS[kind]}{left})"
    )


def _files_and_frames(
    given: list[str], every: Every = 1
) -> tuple[Iterator[tuple[str, str, Any]], int, dict]:
    """``(stem, source, image)`` for each image file given, then each video's frames, every
    ``every``-th (read one at a time: ``clip_000012``, ``clip.mp4#frame=12``, the frame), how
    many in all (as the videos state their length) and each video's stem."""
    from cnnlab.data.folder import distinct_stems
    from cnnlab.data.video import is_video, numbered_frames, video_info, video_of

    stills = [p for p in given if not is_video(p)]
    videos = dict(zip((v := [p for p in given if is_video(p)]), distinct_stems(v), strict=True))
    total = len(stills) + sum(video_info(path, every)[0] for path in videos)

    def inputs() -> Iterator[tuple[str, str, Any]]:
        yield from zip(distinct_stems(stills), stills, stills, strict=True)  # a/0.png, b/0.png
        for path, stem in videos.items():
            for source, frame in numbered_frames(path, every):
                yield f"{stem}_{video_of(source)[1]:06d}", source, frame  # type: ignore[index]

    return inputs(), total, videos


def _overlay_videos(
    rows: list[dict[str, Any]], videos: dict, out: Path, every: Every = 1
) -> list[str]:
    """``out/<stem>_overlay.mp4`` for each video: its frames' overlays in order, at its frame
    rate (divided by ``every``: as long as the video); each of its rows gets the video's path,
    ``overlay_video``."""
    import numpy as np
    from PIL import Image

    from cnnlab.data.video import video_info, video_of, write_video

    written = []
    for path, stem in videos.items():
        mine = [r for r in rows if (of := video_of(r["source"])) is not None and of[0] == path]
        target = out / f"{stem}_overlay.mp4"
        frames = (np.asarray(Image.open(r["overlay"]).convert("RGB")) for r in mine)
        write_video(target, frames, video_info(path, every)[1])
        for r in mine:
            r["overlay_video"] = str(target)
        written.append(str(target))
    return written


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """segment train, eval, predict."""
    seg = sub.add_parser("segment", parents=[common], help="semantic segmentation (U-Net)")
    what = seg.add_subparsers(dest="what", required=True, parser_class=Parser)
    from cnnlab.config import SegmentConfig

    d = SegmentConfig()
    p = what.add_parser("train", parents=[common], help="train on scenes or a mask folder")
    p.add_argument(
        "--data",
        default=d.data,
        help="scenes, pets, voc2007, voc2012, a folder images/ + masks/, a COCO .json, a "
        "YOLO segmentation folder or data.yaml (polygon labels), a folder in VOC's layout "
        "(JPEGImages/, SegmentationClass/, labelmap.txt: CVAT's export), or a folder of "
        "images with labelme JSON files",
    )
    p.add_argument("--data-root", "--root", help="where `cnnlab data download` put datasets")
    p.add_argument("--model", default=d.model, help="unet, unet_resnet18 or unet_paper")
    add_backbone_weights(p, d)
    p.add_argument("--images", type=positive_int, default=d.images, help="scenes to generate")
    p.add_argument("--image-size", type=positive_int, default=d.image_size, help=SIZE_HELP)
    p.add_argument("--num-classes", type=positive_int, default=d.num_classes, help="object classes")
    p.add_argument(
        "--augment",
        default=d.augment,
        help="geometric augmentations applied to image and mask alike, e.g. flip,rotate,shear "
        "(the scenes already vary rotation; in the 12-epoch recipe flip alone scores 0.877 "
        "test mIoU, flip,rotate,shear 0.854)",
    )
    p.add_argument(
        "--loss",
        choices=("ce", "dice", "ce+dice"),
        default=d.loss,
        help="pixel cross-entropy, soft Dice, or their sum",
    )
    p.add_argument(
        "--class-weights",
        help="the cross-entropy's: balanced (class c weighted n / (k n_c), by pixels) or a comma "
        "list, background first",
    )
    add_precision(p, d.precision)
    add_schedule(p, d, "segment")
    add_resume(p)
    p.set_defaults(handler=cmd_segment_train)
    p = what.add_parser("eval", parents=[common], help="IoU, Dice, pixel accuracy")
    add_checkpoint_split(p)
    add_eval_data(
        p,
        "a mask folder, a VOC-layout or labelme folder, a COCO .json or a YOLO segmentation folder",
    )
    add_device(p)
    p.add_argument("--out", help="folder for the PNG of the images it gets least right")
    p.set_defaults(handler=cmd_segment_eval)
    p = what.add_parser("predict", parents=[common], help="colour maps and overlays")
    add_checkpoint_or_onnx(p)
    add_device(p)
    add_image_files(p, "image files, videos, or folders of them (default: new scenes)", videos=True)
    p.add_argument("--scenes", type=positive_int, default=4, help="new scenes, without images")
    p.add_argument("--seed", type=random_seed, default=999, help="seeds the new scenes")
    p.add_argument(
        "--out", default="runs/segment/predictions", help="folder for each image's map and overlay"
    )
    p.add_argument(
        "-o",
        "--output",
        help="also draw the first 24 images beside their predicted maps in one figure here, each "
        "map with its classes' shares",
    )
    add_csv(p, "each image's map and overlay files and its pixels of each class")
    add_as_dataset(p, "the maps, as --dataset-format lays them out", MAP_FORMATS)
    add_every(p)
    p.set_defaults(handler=cmd_segment_predict)
