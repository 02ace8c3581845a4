"""``cnnlab visualize``: seeing what a trained network learned (patches, filters, activation
maps, occlusion)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from cnnlab.cli.common import ImageFiles, Parser, add_device
from cnnlab.cli.typed import refuse_beside_images
from cnnlab.cli.values import non_negative_int, positive_int
from cnnlab.errors import CnnlabError
from cnnlab.words import counted


def _vis_model(args: argparse.Namespace, task: str | None = None) -> tuple[Any, dict[str, Any]]:
    """The model in eval mode and its checkpoint: ``--checkpoint`` (refused unless it does
    ``task``, when given), or a registered ``--model`` with torchvision ``--weights`` (its
    "checkpoint" then names the model only)."""
    from cnnlab.engine.checkpoint import model_from_checkpoint
    from cnnlab.engine.device import resolve_device

    device = resolve_device(getattr(args, "device", "cpu"))  # filters run nothing: no --device
    if args.checkpoint is not None and args.weights is not None:
        raise CnnlabError("give --checkpoint or --model with --weights, not both")
    if args.checkpoint is None and args.weights is None:
        from cnnlab.engine.run_folders import checkpoint_hint

        raise CnnlabError(
            f"give --checkpoint ({checkpoint_hint('classify', 'classifier')}) or --model with "
            "--weights (a torchvision file)"
        )
    if args.weights is not None:
        from cnnlab.models.torchvision_weights import load_torchvision_weights
        from cnnlab.registry import create_model

        model = load_torchvision_weights(create_model(args.model), args.weights)
        return model.eval().to(device), {"model": args.model}
    model, ckpt = model_from_checkpoint(args.checkpoint, task)
    return model.eval().to(device), ckpt


def _vis_inputs(
    args: argparse.Namespace, task: str | None = None
) -> tuple[Any, Any, dict[str, Any], Any]:
    """The model (a cnnlab checkpoint, refused unless it does ``task`` when given, or a
    registered model with torchvision weights), the standardised images to search, the
    checkpoint, and the images' class labels (a classifier's own data; ``None`` otherwise)."""
    from dataclasses import replace

    from cnnlab.config import ClassifyTrainConfig
    from cnnlab.data.classification import load_classification, normalize
    from cnnlab.engine.classify import data_from_config, require_split

    model, ckpt = _vis_model(args, task)  # before any data is read
    if args.weights is not None:
        from cnnlab.engine.style import IMAGENET_MEAN, IMAGENET_STD

        data = load_classification(args.data or "faces", image_size=args.image_size)
        split = require_split(data.splits[args.split], args.split, data.name).images[: args.limit]
        split = split.expand(-1, 3, -1, -1) if split.shape[1] == 1 else split  # grey -> RGB
        images = normalize(split, IMAGENET_MEAN, IMAGENET_STD)
        return model, images, ckpt, None
    if (args.data or ckpt.get("config", {}).get("data")) == "scenes":
        # a localiser, detector or segmenter trained on the scene generator: fresh scenes of
        # the same size, standardised as those tasks do
        from cnnlab.data.localization import from_scenes
        from cnnlab.data.scenes import standardise

        cfg = ckpt.get("config", {})
        size = ckpt["input_size"][-1]
        scenes = from_scenes(args.limit, size, cfg.get("num_classes", 3), cfg.get("seed", 0) + 1)
        return model, standardise(scenes.images.float()), ckpt, None
    from cnnlab.registry import get_model_entry

    task = get_model_entry(ckpt["model"]).task
    if task in ("localization", "detection", "segmentation"):  # trained on files, not scenes
        from cnnlab.data.scenes import standardise

        images = _task_images(task, ckpt["config"], args.data, args.split)
        return model, standardise(images[: args.limit].float()), ckpt, None
    config = ClassifyTrainConfig.from_dict(ckpt.get("config", {}))
    # the run's own splits (its test split is the one it never trained or selected on), read
    # with the model's own channels (a --data folder of colour photos for a grey model)
    channels = ckpt["input_size"][0] if "input_size" in ckpt else config.channels
    data = data_from_config(replace(config, data=args.data or config.data, channels=channels))
    norm = ckpt.get("normalization", data.normalization())
    split = require_split(data.splits[args.split], args.split, data.name)
    images = normalize(split.images[: args.limit], norm["mean"], norm["std"])
    return model, images, ckpt, split.labels[: args.limit]


def _task_images(task: str, config: dict[str, Any], data: str | None, split: str) -> Any:
    """The uint8 images of ``split`` of a localiser's, detector's or segmenter's own data (a
    YOLO folder, COCO file, mask folder, VOC...), or of ``data`` read the same way, at the
    checkpoint's size: its own splits, else the run's seeded ones."""
    from dataclasses import replace

    from cnnlab.data.split_folders import own_or_seeded, require_split

    source = data or config["data"]
    if task == "localization":
        from cnnlab.engine.localize import LocalizeConfig, load_data

        loc = load_data(replace(LocalizeConfig(**config), data=source))
        return loc.images[require_split(loc.splits, split, source)]
    if task == "detection":
        from cnnlab.engine.detect import DetectConfig
        from cnnlab.engine.detection_data import load_detection_data

        found = load_detection_data(replace(DetectConfig(**config), data=source))
    else:
        from cnnlab.engine.segment import SegmentConfig
        from cnnlab.engine.segment_data import load_segmentation_data

        found = load_segmentation_data(replace(SegmentConfig(**config), data=source))
    parts = own_or_seeded(found.splits, len(found.images), config.get("seed", 0))
    return found.images[require_split(parts, split, source)]


def cmd_visualize(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine import visualize as V
    from cnnlab.models.unet import network_input
    from cnnlab.viz.plots import plot_image_grid

    _merge_own_images(args)
    if args.what == "occlusion":
        return _occlusion(args, console)
    out = Path(args.output)
    if args.what == "filters":
        return _printed(_filter_grid(args, out), args, console)
    if getattr(args, "image", None):  # activations of the user's own file
        model, images, ckpt = _image_input(args)
    else:
        model, images, ckpt, _ = _vis_inputs(args)
    # the paper's U-Net sees its images mirrored at the borders: patches and maps show that
    images = network_input(model, images)
    if args.what == "activations":
        if args.index >= len(images):
            raise CnnlabError(
                f"--index {args.index}: {counted(len(images), 'image')} to choose from "
                f"(0 to {len(images) - 1}; --limit {args.limit})"
            )
        maps = V.activation_maps(model, images[args.index], args.channels)
        tiles = [m for _, ms in maps for m in ms]
        titles = [f"{n}[{i}]" for n, ms in maps for i in range(len(ms))]
        path = plot_image_grid(tiles, titles, out, cols=args.channels)
        result = {"figure": str(path), "layers": [n for n, _ in maps]}
    else:
        geometry = [
            g for g in V.layer_geometry(model, tuple(images.shape[1:])) if g.kind == "Conv2d"
        ][: args.layers]
        rows, summary = [], []
        strongest = V.strongest_units(model, [g.name for g in geometry], images)  # one pass
        for g in geometry:
            stacks = [
                V.top_patches(model, g.name, u, images, g, strongest=strongest[g.name])[0]
                for u in range(min(args.units, g.channels))
            ]
            rows.append((f"{g.name} (field {g.rf}px)", stacks))
            summary.append({"layer": g.name, "receptive_field": g.rf, "jump": g.jump})
        path = V.plot_patch_grid(rows, out, title=f"{ckpt['model']}: top-9 patches per unit")
        result = {"figure": str(path), "layers": summary}
    return _printed(result, args, console)


def _filter_grid(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """The first convolution's filters as a grid of images: weights only, no image is read."""
    from cnnlab.engine import visualize as V
    from cnnlab.viz.plots import plot_image_grid

    model, ckpt = _vis_model(args)
    w = V.first_layer_filters(model)
    tiles = [f.mean(0) if f.shape[0] != 3 else f.permute(1, 2, 0).mean(-1) for f in w]
    path = plot_image_grid(
        tiles,
        [f"filter {i}" for i in range(len(tiles))],
        out,
        cols=min(8, len(tiles)),
        symmetric=True,
        suptitle=f"{ckpt['model']}: first-layer filters",
    )
    return {"figure": str(path), "filters": list(w.shape)}


def _printed(result: dict[str, Any], args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """``result``, its figure's path printed first unless the command prints JSON."""
    if not args.json:
        console.print(f"wrote {result['figure']}")
    return result


def _merge_own_images(args: argparse.Namespace) -> None:
    """The user's images typed after the options, as ``predict`` takes them, joined to
    ``--image`` (occlusion: files and folders, both ways at once; activations: one file)."""
    typed_after = getattr(args, "files", None)
    if not typed_after:
        return
    if args.what == "occlusion":
        args.image = [*(args.image or []), *typed_after]
    elif args.image is not None:
        raise CnnlabError(
            f"two images to show, --image {args.image} and {typed_after}: activations are "
            "drawn for one"
        )
    else:
        args.image = typed_after


def _image_input(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    """``visualize activations --image FILE``: the model, that file as a ``(1, C, S, S)``
    standardised batch read as the model's predictions read it (a classifier's or a face
    encoder's size, channels and statistics, ImageNet's at ``--image-size`` for ``--weights``; a
    localiser's, detector's or segmenter's stretch to its square and the scenes'
    standardisation), and the checkpoint."""
    from cnnlab.engine.predict import model_meta, preprocess
    from cnnlab.registry import get_model_entry

    shown = "the data's image to show"
    refuse_beside_images(args, ("--data", "--split", "--limit", "--index"), shown, "image")
    model, ckpt = _vis_model(args)
    if args.weights is not None:
        return model, preprocess([args.image], _imagenet_meta(args.image_size)), ckpt
    task = get_model_entry(ckpt["model"]).task
    if task == "classification":
        return model, preprocess([args.image], model_meta(ckpt)), ckpt
    if task == "embedding":  # a face encoder: as enrolment reads a photo
        from cnnlab.engine.recognition import face_meta

        return model, preprocess([args.image], face_meta(ckpt)), ckpt
    from cnnlab.data.folder import image_to_uint8
    from cnnlab.data.scenes import standardise

    image = image_to_uint8(args.image, ckpt["input_size"][-1], 3, "stretch")  # as predict does
    return model, standardise(image[None].float()), ckpt


def _imagenet_meta(size: int) -> dict[str, Any]:
    """How a file meets a torchvision ``--weights`` model: RGB at ``size``, ImageNet's mean and
    std."""
    from cnnlab.engine.style import IMAGENET_MEAN, IMAGENET_STD

    return {
        "input_size": (3, size, size),
        "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
    }


def _occlusion_inputs(args: argparse.Namespace) -> tuple[Any, Any, list[int | None], list[str]]:
    """The classifier, the standardised images to occlude (``--image`` files, read as its
    predictions read them, or ``--count`` of its data's from ``--index`` on), their labels where
    known (the data's; for files, a folder named after a class) and the class names (ImageNet's
    class indices for torchvision ``--weights``)."""
    import torch

    why = "the data's images to occlude"
    refuse_beside_images(args, ("--data", "--split", "--limit", "--index"), why, "image")
    if args.onnx is not None:
        return _exported_inputs(args)
    if args.image:
        from cnnlab.engine.predict import model_meta, preprocess

        model, ckpt = _vis_model(args, "classification")
        meta = _imagenet_meta(args.image_size) if args.weights is not None else model_meta(ckpt)
        files = _first_images(args)
        images = preprocess(files, meta)
        labels = [None] * len(images)
        if args.weights is None:
            labels = _folder_classes(files, list(meta["class_names"]))
    else:
        model, images, ckpt, known = _vis_inputs(args, "classification")
        if args.index >= len(images):
            raise CnnlabError(
                f"--index {args.index}: {counted(len(images), 'image')} to choose from "
                f"(0 to {len(images) - 1}; --limit {args.limit})"
            )
        images = images[args.index : args.index + args.count]
        labels = [None] * len(images) if known is None else [int(k) for k in known[args.index :]]
        labels = labels[: len(images)]
    if args.weights is not None:
        from cnnlab.engine.device import model_device

        with torch.no_grad():
            names = [str(k) for k in range(model(images[:1].to(model_device(model))).shape[-1])]
    else:
        names = list(ckpt["class_names"])
    return model, images, labels, names


def _exported_inputs(args: argparse.Namespace) -> tuple[Any, Any, list[int | None], list[str]]:
    """``_occlusion_inputs`` for ``--onnx``: a classifier ``cnnlab export`` wrote, run by ONNX
    Runtime (occlusion needs only its answers), on ``--image`` files read as ``classify predict
    --onnx`` reads them."""
    from cnnlab.engine.predict import load_network, preprocess

    if args.checkpoint is not None or args.weights is not None:
        raise CnnlabError("give --checkpoint, --weights or --onnx, one of them")
    if not args.image:
        raise CnnlabError(
            "with --onnx, give image files to occlude (the data's splits need a checkpoint)"
        )
    network, meta = load_network(None, args.onnx, "classification", args.device)
    files = _first_images(args)
    names = list(meta["class_names"])
    return network, preprocess(files, meta), _folder_classes(files, names), names


def _folder_classes(files: list[str], names: list[str]) -> list[int | None]:
    """Each file's class index where its folder is named after a class, else ``None``."""
    from cnnlab.engine.predict import folder_labels

    return [None if f is None else names.index(f) for f in folder_labels(files, names)]


def _first_images(args: argparse.Namespace) -> list[str]:
    """The first ``--count`` of the ``--image`` files, saying so when there are more."""
    if len(args.image) > args.count:
        Console(stderr=True).print(
            f"occluding the first {args.count} of {counted(len(args.image), 'image')} (--count)"
        )
    return list(args.image[: args.count])


def _occlusion(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.occlusion import (
        default_patch,
        occlusion_grid,
        occlusion_map,
        plot_occlusion,
    )
    from cnnlab.progress import ProgressBar
    from cnnlab.viz.plots import figure_path

    figure_path(args.output)  # a name that cannot be written: said before the work
    model, images, labels, names = _occlusion_inputs(args)
    height, width = images.shape[-2:]
    patch, stride = default_patch(min(height, width), args.patch)
    stride = args.stride or stride
    ny, nx = occlusion_grid(height, width, patch, stride)
    target = None
    if args.target is not None:
        if args.target not in names:
            raise CnnlabError(f"--target {args.target}: not a class of this model ({_few(names)})")
        target = names.index(args.target)
    maps, captions, rows = [], [], []
    total = ny * nx * len(images)  # occluded copies to classify: a bar when that takes a while
    bar = ProgressBar(console=Console(stderr=True), transient=True, disable=total < 2000)
    with bar:
        task = bar.add_task("occluding", total=total)
        found = [
            occlusion_map(
                model,
                image,
                patch,
                stride,
                target=target if target is not None else label,
                on_batch=lambda n: bar.advance(task, n),
            )
            for image, label in zip(images, labels, strict=True)
        ]
    for m, label in zip(found, labels, strict=True):
        i, j = m.most_sensitive()
        seen = f"label {names[label]}, " if label is not None else ""
        captions.append(
            f"{seen}model: {names[m.base_class]}\np({names[m.target]}) "
            f"{m.base_probability:.2f}, {float(m.probability[i, j]):.2f} under the red square"
        )
        maps.append(m)
        rows.append(
            {
                "label": None if label is None else names[label],
                "predicted": names[m.base_class],
                "target": names[m.target],
                "probability": round(m.base_probability, 4),
                "lowest_probability": round(float(m.probability[i, j]), 4),
                "lowest_at": list(m.window(i, j)),
                "map": [[round(v, 4) for v in line] for line in m.probability.tolist()],
            }
        )
    path = plot_occlusion(list(images), maps, captions, names, args.output)
    if not args.json:
        for caption in captions:
            console.print(caption.replace("\n", "; "))
        console.print(f"wrote {path}")
    return {"figure": path, "patch": patch, "stride": stride, "images": rows}


def _few(names: list[str]) -> str:
    """Up to ten class names, for a message."""
    return ", ".join(names[:10]) + (f", ... ({len(names)} classes)" if len(names) > 10 else "")


def _occlusion_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--onnx",
        help="instead of --checkpoint: a classifier cnnlab export wrote, run by ONNX Runtime "
        "(with --image: occlusion needs only the model's answers)",
    )
    p.add_argument(
        "--image",
        nargs="+",
        action=ImageFiles,
        help="image files (or folders of them) to occlude instead of the data's (--index)",
    )
    p.add_argument(
        "files",
        metavar="IMAGE",
        nargs="*",
        action=ImageFiles,
        help="the same as --image, typed after the options",
    )
    p.add_argument(
        "--count",
        type=positive_int,
        default=3,
        help="images occluded: the data's from --index on, or the first of --image's",
    )
    p.add_argument(
        "--patch", type=positive_int, help="side of the grey square (default: a quarter image)"
    )
    p.add_argument(
        "--stride", type=positive_int, help="pixels between positions (default: patch / 4)"
    )
    p.add_argument(
        "--target",
        help="the class whose probability is mapped (default: the label, else the predicted class)",
    )


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """visualize."""
    vis = sub.add_parser("visualize", parents=[common], help="what a trained network learned")
    kinds = vis.add_subparsers(dest="what", required=True, parser_class=Parser)
    for name, helptext in (
        ("patches", "top-9 patches per unit, layer by layer"),
        ("filters", "the first layer's filters as images"),
        ("activations", "one image's activation maps"),
        ("occlusion", "where a classifier looks: a grey square slid over the image"),
    ):
        p = kinds.add_parser(name, parents=[common], help=helptext)
        p.add_argument("--checkpoint", help="a classifier trained by cnnlab")
        p.add_argument(
            "--weights", help="instead of --checkpoint: a torchvision weights file for --model"
        )
        p.add_argument("--model", default="alexnet_tv", help="the architecture of --weights")
        if name != "filters":  # the filters are weights: no images to read
            p.add_argument(
                "--image-size", type=positive_int, default=112, help="input size with --weights"
            )
            p.add_argument("--data", help="dataset (default: the checkpoint's)")
            p.add_argument(
                "--split",
                choices=("train", "val", "test"),
                default="test" if name == "occlusion" else "train",  # occlusion: unseen images
                help="the split whose images are searched",
            )
            p.add_argument("--limit", type=positive_int, default=2000, help="images searched")
        if name == "patches":
            p.add_argument("--layers", type=positive_int, default=5, help="conv layers")
            p.add_argument("--units", type=positive_int, default=4, help="units per layer")
        if name == "activations":
            p.add_argument("--channels", type=positive_int, default=8, help="maps per layer")
            p.add_argument(
                "--image",
                help="an image file to show the maps of, read as the model's predictions read "
                "it, instead of the data's (--index)",
            )
            p.add_argument(
                "files", metavar="IMAGE", nargs="?", help="the same as --image, typed last"
            )
        if name in ("activations", "occlusion"):
            p.add_argument("--index", type=non_negative_int, default=0, help="which image")
        if name != "filters":  # the others run the model
            add_device(p)
        p.add_argument("-o", "--output", default=f"runs/visualize/{name}.png", help="the PNG")
        p.set_defaults(handler=cmd_visualize)
        if name == "occlusion":
            _occlusion_options(p)
