"""Classification: train, eval, predict, export and augment."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from cnnlab.cli.common import (
    Parser,
    add_checkpoint_split,
    add_device,
    add_eval_data,
    add_image_files,
    add_patience,
    add_precision,
    add_resume,
    data_change_reported,
    resumed_config,
)
from cnnlab.cli.predicting import (
    add_as_dataset,
    add_checkpoint_or_onnx,
    add_drawn_folder,
    add_every,
    add_source_column,
    checkpoint_or_onnx,
    dataset_folder,
    draw_found,
    drawn_folder,
    drawn_said,
    frame_stride,
)
from cnnlab.cli.shown import (
    MAX_DRAWN,
    SHOWN,
    add_csv,
    compact_table,
    csv_file,
    drawn_note,
    figure_file,
    first_shown,
    run_folder_note,
    runner_up_columns,
    write_csv,
)
from cnnlab.cli.typed import refuse_beside_images
from cnnlab.cli.values import non_negative_float, positive_float, positive_int, random_seed
from cnnlab.config import DEFAULT_OPSET, RESIZE_MODES
from cnnlab.errors import CnnlabError
from cnnlab.words import counted


def cmd_classify_train(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.config import ClassifyTrainConfig
    from cnnlab.engine.classify import train_classifier

    config = resumed_config(ClassifyTrainConfig, args)
    with data_change_reported():  # a run resumed on changed data says so
        result = train_classifier(
            config, Console(stderr=True, quiet=args.json), resume=args.resume or ""
        )
    if not args.json:
        scored = (
            f"test accuracy {result.test.accuracy:.2%}{_balanced(result.test.per_class)} on "
            f"{counted(result.test.count, 'image')}"
            if result.test.accuracy is not None
            else f"no test split; validation accuracy {result.best_val_accuracy:.2%}"
        )
        console.print(f"{scored} (best epoch {result.best_epoch}, {result.seconds:.1f} s)")
        console.print(run_folder_note(result.run_dir, args.started))
    return result.to_dict()


def cmd_classify_eval(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.classify_eval import evaluate_checkpoint
    from cnnlab.engine.classify_scores import mistakes_figure
    from cnnlab.engine.eval_data import is_other_data

    with data_change_reported() as changes:
        result, ckpt, scored, images = evaluate_checkpoint(
            args.checkpoint, args.split, args.device, args.data
        )
    out: dict[str, Any] = {"checkpoint": args.checkpoint, "split": scored} | result.to_dict()
    out["data"] = args.data or ckpt.get("config", {}).get("data")
    own = not is_other_data(args.data, ckpt.get("config", {}).get("data", ""))
    out["data_changed"] = bool(changes) if "data_fingerprint" in ckpt and own else None
    if args.out:
        from cnnlab.viz.plots import plot_confusion_matrix

        out["figure"] = str(
            plot_confusion_matrix(
                result.confusion,
                ckpt["class_names"],
                Path(args.out) / f"confusion_{scored}.png",
                title=f"{ckpt['model']} on {scored} (accuracy {result.accuracy:.2%})",
            )
        )
        mistakes = mistakes_figure(
            result,
            images,
            ckpt["class_names"],
            Path(args.out) / f"mistakes_{scored}.png",
            f"{ckpt['model']} on {scored}: the worst mistakes",
        )
        out["mistakes_figure"] = str(mistakes) if mistakes else None
    if not args.json:
        console.print(
            f"{scored}: accuracy {result.accuracy:.2%}{_balanced(result.per_class)}, "
            f"loss {result.loss:.4f} on {counted(result.count, 'image')}"
        )
        console.print(per_class_table(result.per_class, ckpt["class_names"]))
        if args.out:
            drawn = [out["figure"], out["mistakes_figure"] or "no mistakes to draw"]
            console.print(f"figures: {', '.join(drawn)}")
    return out


def _draw(
    rows: list[dict[str, Any]],
    split_images: Any,
    args: argparse.Namespace,
    meta: dict[str, Any],
    path: Path,
    console: Console,
) -> Path:
    """``predict -o``: the first :data:`MAX_DRAWN` images with their predictions; files at
    96 px, cropped as for the model; a split's ``(N, C, S, S)`` uint8 images as the model saw
    them."""
    from cnnlab.data.video import with_frames
    from cnnlab.engine.predict import draw_predictions, thumbnails

    drawn = rows[:MAX_DRAWN]
    if split_images is None:
        channels, resize = meta["input_size"][0], meta.get("resize", "center-crop")
        images = thumbnails(with_frames([r["source"] for r in drawn]), channels, resize)
    else:
        images = split_images[: len(drawn)]
    written = draw_predictions(drawn, images, path, f"predictions of {meta['model']}")
    if not args.json:
        console.print(f"wrote {written}{drawn_note(rows)}")
    return written


def _balanced(figures: dict[str, Any]) -> str:
    """`` (balanced accuracy B)`` where the split's classes differ in size by half or more
    (elsewhere it is about the accuracy and would only add a number)."""
    support = [n for n in figures["support"] if n]
    if not support or max(support) < 1.5 * min(support):
        return ""
    return f" (balanced accuracy {figures['balanced_accuracy']:.2%})"


def per_class_table(figures: dict[str, Any], class_names: list[str], most: int = 30) -> Table:
    """Precision, recall, F1 and support of each class the images hold (those macro F1
    averages; a class without images has no recall to measure, and its F1 of 0 would crowd out
    the worst real ones); with more than ``most`` of them, the ``most`` of lowest F1 (the JSON
    has every class)."""
    rows = list(
        zip(
            class_names,
            figures["precision"],
            figures["recall"],
            figures["f1"],
            figures["support"],
            strict=True,
        )
    )
    absent = sum(1 for r in rows if not r[4])
    rows = [r for r in rows if r[4]]
    shown = sorted(rows, key=lambda r: r[3])[:most] if len(rows) > most else rows
    title = "per class" if len(rows) <= most else f"the {most} classes of lowest F1"
    caption = f"{counted(absent, 'class', 'classes')} without images left out" if absent else None
    table = Table(title=f"{title} (macro F1 {figures['macro_f1']:.3f})", caption=caption)
    for col in ("class", "precision", "recall", "F1", "images"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for name, precision, recall, f1, support in shown:
        table.add_row(name, f"{precision:.3f}", f"{recall:.3f}", f"{f1:.3f}", str(support))
    return table


def cmd_classify_predict(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine import predict as P

    refuse_beside_images(args, ("--split", "--limit"), "the run's own images to predict on")
    every = frame_stride(args)
    checkpoint_or_onnx(args, "classify")
    classifier = P.Classifier.load(args.checkpoint, args.onnx, args.device)
    meta = classifier.meta
    csv_path = csv_file(args.csv) if args.csv else None  # refused before any image is read
    figure = figure_file(args.output) if args.output else None  # as is a figure's
    dataset = dataset_folder(args, "the classes predicted")  # and the dataset's folder
    drawn_to = drawn_folder(args)  # and the drawn images'
    images = None  # a split's images (files are read again to be drawn)
    if args.images:  # the image files, then each video's frames
        from cnnlab.data.video import is_video

        stills = [p for p in args.images if not is_video(p)]
        rows = classifier.predict_files(stills, args.top_k) if stills else []
        for video in (p for p in args.images if is_video(p)):
            rows += classifier.predict_video(video, args.top_k, every)
    else:
        if classifier.checkpoint is None:
            raise CnnlabError("with --onnx, give image files to classify")
        from cnnlab.data.classification import normalize
        from cnnlab.engine.classify_eval import load_split

        split = load_split(classifier.checkpoint, args.split)
        norm = meta["normalization"]
        images = split.images[: args.limit]
        chunks = (
            normalize(images[i : i + P.CHUNK], norm["mean"], norm["std"])
            for i in range(0, len(images), P.CHUNK)
        )
        rows = P.topk_rows(
            classifier.probabilities(chunks),
            meta["class_names"],
            [f"{args.split}[{i}]" for i in range(len(images))],
            args.top_k,
            [meta["class_names"][int(t)] for t in split.labels[: args.limit]],
        )
    if not args.json:
        table = compact_table(
            f"predictions of {meta['model']}" + (" (ONNX Runtime)" if args.onnx else "")
        )
        runners_up = min(args.top_k, len(meta["class_names"])) - 1
        labelled = [r for r in rows if "label" in r]
        columns = ["prediction", "probability"] + (["label"] if labelled else [])
        shown, note = first_shown(rows, csv_path)
        names = add_source_column(table, [r["source"] for r in shown])
        for col in columns + ([f"next {runners_up}"] if runners_up else []):
            table.add_column(col, overflow="fold")
        for r, name in zip(shown, names, strict=True):
            others = ", ".join(f"{label} {p:.3f}" for label, p in r["top_k"][1:])
            table.add_row(
                name,
                r["prediction"],
                f"{r['probability']:.3f}",
                *([r.get("label", "")] if labelled else []),
                *([others] if runners_up else []),
            )
        console.print(table)
        if note:
            console.print(note)
    result: dict[str, Any] = {"checkpoint": args.checkpoint or args.onnx, "predictions": rows}
    if figure:
        result["figure"] = str(_draw(rows, images, args, meta, figure, console))
    labelled = [r for r in rows if "label" in r]
    if labelled:
        right = sum(r["prediction"] == r["label"] for r in labelled)
        result["labelled"], result["accuracy"] = len(labelled), right / len(labelled)
        if not args.json:
            console.print(
                f"{right} of {len(labelled)} labelled images right ({right / len(labelled):.2%})"
                + ("; a file's label: the class folder it lies in" if args.images else "")
            )
    if drawn_to:  # each image framed in its class's colour, the class and probability on it
        index = {n: i for i, n in enumerate(meta["class_names"])}
        found = [
            [(index[r["prediction"]], None, f"{r['prediction']} {r['probability']:.2f}")]
            for r in rows
        ]
        draw_found(drawn_to, rows, found, every=every, tag="labelled")
        if not args.json:
            console.print(drawn_said(rows, drawn_to, "the class"))
    if csv_path:
        result["csv"] = write_csv(csv_path, csv_rows(rows), console, args.json)
    if dataset:  # each image in its predicted class's folder: move the wrong ones, then train
        from cnnlab.data.folder import write_class_folders

        files = [(r["source"], r["prediction"]) for r in rows]
        result["dataset"] = write_class_folders(dataset, meta["class_names"], files)
        if not args.json:
            console.print(
                f"copied {counted(len(files), 'image')} to {dataset}/<predicted class>/ "
                "(move the misnamed ones, then train with --data there)"
            )
    return result


def csv_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per image for a spreadsheet: source, prediction, probability, the label
    where its folder gives one, then each runner-up class and its probability."""
    labelled = any("label" in r for r in rows)
    flat = []
    for r in rows:
        row = {k: r[k] for k in ("source", "prediction", "probability")}
        if labelled:
            row["label"] = r.get("label", "")
        flat.append(row | runner_up_columns(r["top_k"], "class", "probability"))
    return flat


def cmd_export(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.export import export_onnx

    given = {c for c in (args.checkpoint, args.checkpoint_option) if c is not None}
    if len(given) != 1:
        raise CnnlabError(
            "export needs one checkpoint: cnnlab export run/best.pt (or --checkpoint run/best.pt)"
        )
    checkpoint = given.pop()
    out = args.output or str(Path(checkpoint).with_suffix(".onnx"))
    result = export_onnx(checkpoint, out, opset=args.opset)
    if not args.json:
        console.print(
            f"wrote {result.path}; ONNX Runtime vs PyTorch max abs difference "
            f"{result.max_abs_diff:.2e}"
        )
    return result.to_dict()


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    classify = sub.add_parser("classify", parents=[common], help="train and use a classifier")
    what = classify.add_subparsers(dest="what", required=True, parser_class=Parser)

    from cnnlab.config import ClassifyTrainConfig

    d = ClassifyTrainConfig()
    p = what.add_parser("train", parents=[common], help="train on a dataset, write a run folder")
    p.add_argument("--model", default=d.model, help="a registered model (see cnnlab models)")
    p.add_argument(
        "--data",
        default=d.data,
        help="digits, faces; mnist, fashion-mnist, cifar10, cifar100 once downloaded; a "
        "folder root/<class>/*.png (or root/train, root/val); or a CSV file labelling images "
        "(image,label rows, Kaggle's train.csv)",
    )
    p.add_argument("--data-root", "--root", help="where `cnnlab data download` put datasets")
    p.add_argument("--epochs", type=positive_int, default=d.epochs, help="passes over the data")
    add_patience(p, d.patience)
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size, help="images per step")
    p.add_argument(
        "--lr",
        type=positive_float,
        default=d.lr,
        help="peak learning rate of AdamW (warm-up, then cosine decay)",
    )
    p.add_argument(
        "--weight-decay",
        type=non_negative_float,
        default=d.weight_decay,
        help="AdamW's weight decay",
    )
    p.add_argument(
        "--augment",
        default=d.augment,
        help="comma list of flip, crop, rcrop, rotate, shear, warp, tps, color, pca, erase; "
        "none; or auto (per dataset)",
    )
    p.add_argument(
        "--label-smoothing",
        type=float,
        default=d.label_smoothing,
        help="cross-entropy label smoothing, in [0, 1)",
    )
    p.add_argument(
        "--class-weights",
        default=d.class_weights,
        help="for classes of unequal size: balanced (class c's loss weighted n / (k n_c)), or "
        "a comma list, one per class",
    )
    p.add_argument(
        "--seed", type=random_seed, default=d.seed, help="seeds weights, shuffling and augmentation"
    )
    p.add_argument(
        "--split-seed",
        type=random_seed,
        default=d.split_seed,
        help="seeds the train/val/test split, so runs with other seeds share a test set",
    )
    p.add_argument(
        "--val-fraction", type=float, default=d.val_fraction, help="share held out for validation"
    )
    p.add_argument(
        "--test-fraction", type=float, default=d.test_fraction, help="share held out for the test"
    )
    p.add_argument(
        "--image-size", type=positive_int, default=d.image_size, help="images are resized to NxN"
    )
    p.add_argument("--channels", type=int, default=d.channels, help="1 or 3 (folders; default 3)")
    p.add_argument(
        "--resize",
        choices=RESIZE_MODES,
        default=d.resize,
        help="how folder images reach the square size",
    )
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable image")
    p.add_argument("--pretrained", help="cnnlab checkpoint or torchvision weights file")
    p.add_argument(
        "--freeze",
        default=d.freeze,
        help="none; backbone (train only the head, the frozen batch norms' statistics kept); or "
        "stages:K (the first K blocks: for a ResNet the stem, then layer1, ...)",
    )
    p.add_argument(
        "--backbone-lr-mult",
        type=float,
        default=d.backbone_lr_mult,
        help="learning-rate factor for the pretrained (non-head) layers",
    )
    p.add_argument(
        "--cache-features",
        action="store_true",
        help="with --freeze backbone: compute features once, train the head on them",
    )
    add_precision(p, d.precision)
    p.add_argument(
        "--channels-last",
        choices=("auto", "on", "off"),
        default=d.channels_last,
        help="NHWC memory layout; auto: on for the large and depthwise models",
    )
    p.add_argument(
        "--tensorboard", action="store_true", help="also log to TensorBoard (its extra installed)"
    )
    add_resume(p)
    add_device(p)
    p.add_argument("--out", help="run folder (default runs/classify/<model>-<data>[-N])")
    p.set_defaults(handler=cmd_classify_train)

    p = what.add_parser("eval", parents=[common], help="score a checkpoint on a split")
    add_checkpoint_split(p)
    add_eval_data(
        p, "a folder of class folders, a CSV file labelling images, or digits, mnist, ..."
    )
    add_device(p)
    p.add_argument("--out", help="folder for the confusion-matrix and worst-mistakes PNGs")
    p.set_defaults(handler=cmd_classify_eval)

    p = what.add_parser("predict", parents=[common], help="classify image files or a split")
    add_checkpoint_or_onnx(p)
    add_image_files(
        p, "image files, videos, or folders of them (default: the test split)", videos=True
    )
    p.add_argument(
        "--split",
        choices=("train", "val", "test"),
        default="test",
        help="the run's split to classify when no images are given",
    )
    p.add_argument("--limit", type=positive_int, default=10, help="images of the split to show")
    p.add_argument("--top-k", type=positive_int, default=3, help="classes shown per image")
    p.add_argument(
        "-o",
        "--output",
        help="also draw the first 24 images with their predictions to this figure (green: "
        "right, red: wrong, where a class folder gives the label)",
    )
    add_csv(
        p,
        "every prediction (source, prediction, probability, label, runners-up); the terminal "
        f"shows the first {SHOWN}",
    )
    add_device(p)
    add_as_dataset(p, "FOLDER/<predicted class>/, a class folder each")
    add_drawn_folder(p, "its class and probability, framed in the class's colour", "labelled")
    add_every(p)
    p.set_defaults(handler=cmd_classify_predict)

    p = sub.add_parser("export", parents=[common], help="export a checkpoint to ONNX")
    p.add_argument(
        "checkpoint", nargs="?", help="a cnnlab checkpoint (classifier, detector, encoder, ...)"
    )
    # as every other command takes it: `cnnlab export --checkpoint run/best.pt` works as well
    p.add_argument("--checkpoint", dest="checkpoint_option", help="the checkpoint, as an option")
    p.add_argument("--format", choices=("onnx",), default="onnx", help="the file format")
    p.add_argument("-o", "--output", help="output file (default: the checkpoint's name .onnx)")
    p.add_argument(
        "--opset", type=positive_int, default=DEFAULT_OPSET, help="ONNX operator set version"
    )
    p.set_defaults(handler=cmd_export)
