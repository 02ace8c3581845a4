"""The ``cnnlab`` command line: thin argparse front-ends over the library.

Each handler parses flags into plain values or a config dataclass, calls the library and prints a
human view (rich) or, with ``--json``, one JSON object as the last stdout line. Bad input raises
:class:`CnnlabError` anywhere below; :func:`main` prints it as one line and returns 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table

from cnnlab.errors import CnnlabError

Handler = Callable[[argparse.Namespace, Console], dict[str, Any]]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise CnnlabError(f"{self.prog}: {message}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _padding(text: str) -> int | str:
    if text in ("same", "valid"):
        return text
    return _non_negative_int(text)


def _dims(text: str) -> tuple[int, ...]:
    """``"3x32x32"`` -> ``(3, 32, 32)``."""
    if not re.fullmatch(r"\d+([xX]\d+)*", text.strip()):
        raise argparse.ArgumentTypeError(f"expected sizes like 3x32x32, got {text!r}")
    dims = tuple(int(d) for d in re.split(r"[xX]", text.strip()))
    if min(dims) < 1:
        raise argparse.ArgumentTypeError(f"every size must be >= 1, got {text!r}")
    return dims


# --- models and summary ---------------------------------------------------------------------


def cmd_models(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    if args.ledger:
        return _ledger(args, console)
    import torch

    from cnnlab.registry import create_model, get_model_entry, list_models

    rows = []
    for name in list_models(args.pattern):
        entry = get_model_entry(name)
        with torch.device("meta"):  # shapes only: no memory, instant even for VGG
            model = create_model(name)
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        rows.append(
            {
                "name": name,
                "input_size": list(entry.input_size),
                "params": params,
                "paper": entry.paper,
            }
        )
    if not args.json:
        table = Table(title="registered models")
        for col in ("name", "input (C,H,W)", "trainable params", "paper"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                r["name"], "x".join(map(str, r["input_size"])), f"{r['params']:,}", r["paper"]
            )
        console.print(table)
    return {"models": rows}


def _ledger(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    import fnmatch

    from cnnlab.models.ledger import LEDGER, build_ledger

    entries = tuple(e for e in LEDGER if fnmatch.fnmatch(e.model, args.pattern))
    rows = [r.to_dict() for r in build_ledger(entries)]
    if not args.json:
        table = Table(
            title="parameters and MACs: ours vs published (G MACs = 10^9 "
            "multiply-accumulates; FLOPs = 2 x MACs)"
        )
        for col in ("model", "px", "source", "params", "published", "G MACs", "published", "note"):
            table.add_column(col, justify="right" if col in ("px", "params", "G MACs") else "left")
        for r in rows:
            name = r["model"] + "".join(f" {k}={v}" for k, v in r["overrides"].items())
            mark = {True: "", False: " *", None: ""}[r["params_match"]]
            pub_p = f"{r['published_params']:,}{mark}" if r["published_params"] else "-"
            pub_g = f"{r['published_gmacs']}" if r["published_gmacs"] is not None else "-"
            table.add_row(
                name,
                str(r["resolution"]),
                r["source"],
                f"{r['params']:,}",
                pub_p,
                f"{r['gmacs']:.3f}",
                pub_g,
                r["note"],
            )
        console.print(table)
        console.print("* differs by more than the source's rounding; the note says why")
    return {"ledger": rows}


def cmd_summary(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    import torch

    from cnnlab.registry import create_model, get_model_entry
    from cnnlab.viz.summary import summarize

    entry = get_model_entry(args.model)
    with torch.device("meta"):  # the summary needs shapes only
        model = create_model(args.model)
    shape = args.input or getattr(model, "default_input_size", entry.input_size)
    try:
        summary = summarize(model, shape, args.model, show_all=args.all)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0][:160]
        raise CnnlabError(
            f"input {'x'.join(map(str, shape))} does not fit {args.model} "
            f"(default {'x'.join(map(str, entry.input_size))}): {first}"
        ) from None
    if not args.json:
        c, *spatial = shape
        table = Table(
            title=f"{args.model}: input {'x'.join(map(str, shape))} "
            "(shapes channels last, as on the slides)"
        )
        table.add_column("layer", min_width=10)
        for col in ("type", "activation shape"):
            table.add_column(col, no_wrap=True)
        for col in ("size", "# params", "M MACs"):
            table.add_column(col, justify="right", no_wrap=True)
        table.add_row("input", "", str((*spatial, c)), f"{_numel(shape):,}", "0", "0")
        for r in summary.rows:
            table.add_row(
                r.name,
                r.kind,
                str(r.slide_shape),
                f"{r.size:,}",
                f"{r.params:,}",
                f"{r.macs / 1e6:,.3f}",
            )
        console.print(table)
        console.print(
            f"total parameters: {summary.total_params:,} "
            f"(trainable {summary.trainable_params:,}); "
            f"MACs: {summary.total_macs:,} ({2 * summary.total_macs:,} FLOPs)"
        )
    return summary.to_dict()


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


# --- explain --------------------------------------------------------------------------------


def cmd_explain(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab import explain

    matrix = explain.parse_matrix(args.input) if getattr(args, "input", None) else None
    if args.what == "conv":
        filt, fname = explain.resolve_filter(args.filter) if args.filter else (None, "custom")
        result = explain.explain_conv(
            matrix, filt, fname, args.n, args.f, args.p, args.s, args.channels, args.filters
        )
    elif args.what == "pool":
        result = explain.explain_pool(
            matrix, args.f, args.s, args.mode, args.p, args.n, args.channels
        )
    elif args.what == "transpose":
        filt = explain.resolve_filter(args.filter)[0] if args.filter else None
        result = explain.explain_transpose(matrix, filt, args.s, args.p, args.n, args.f)
    elif args.what == "scale":
        result = explain.explain_scale(args.phi)
    elif args.what == "sliding-windows":
        result = _explain_sliding(args, console)
    elif args.what == "receptive-field":
        result = _explain_receptive_field(args, console)
    else:
        result = explain.explain_cost(
            explain.parse_shape(args.shape),
            args.f,
            args.filters,
            separable=args.separable,
            bottleneck=args.bottleneck,
            expansion=args.expansion,
            p=args.p,
            s=args.s,
        )
    if not args.json and args.what not in ("sliding-windows", "receptive-field"):
        explain.render(result, console)
    return result


def _explain_sliding(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    import torch

    from cnnlab.engine.sliding import compare_sliding_windows
    from cnnlab.models.overfeat import WINDOW

    if args.image_size < WINDOW:
        raise CnnlabError(f"--image-size must be at least the {WINDOW}-pixel window")
    if args.checkpoint:
        from cnnlab.engine.checkpoint import model_from_checkpoint

        model, _ = model_from_checkpoint(args.checkpoint)
    else:
        from cnnlab.registry import create_model

        torch.manual_seed(0)
        model = create_model("window_classifier")
    result = compare_sliding_windows(model, args.image_size, args.repeats)
    if not args.json:
        table = Table(title="one 14x14 window, FC form  ->  whole image, convolutional form")
        for col in ("FC form (14x14 input)", "shape", "convolutional form", "shape"):
            table.add_column(col)
        for (a, sa), (b, sb) in zip(result["layers_fc"], result["layers_conv"], strict=True):
            table.add_row(a, str(sa), b, str(sb))
        console.print(table)
        console.print(
            f"{args.image_size}x{args.image_size} image: output grid "
            f"{result['grid'][0]}x{result['grid'][1]} ({result['windows']} windows); "
            f"max |naive - conv| = {result['max_abs_diff']:.1e}"
        )
        console.print(
            f"naive loop {result['seconds_naive'] * 1e3:.2f} ms, batched crops "
            f"{result['seconds_naive_batched'] * 1e3:.2f} ms, convolutional "
            f"{result['seconds_conv'] * 1e3:.2f} ms (x{result['speedup']:.1f})"
        )
    return {"kind": "sliding-windows"} | result


# --- edges ----------------------------------------------------------------------------------


def cmd_edges_apply(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.data.images import load_gray
    from cnnlab.engine.edges import apply_edge_filters
    from cnnlab.viz.plots import plot_image_grid

    names = [n.strip() for n in args.filters.split(",") if n.strip()]
    image = load_gray(args.image)
    maps = apply_edge_filters(image, names)
    out = Path(args.out)
    path = plot_image_grid(
        [image, *maps.values()],
        [f"input: {args.image}", *maps],
        out / "edges.png",
        cols=min(3, len(maps) + 1),
        symmetric=[False] + [True] * len(maps),
        suptitle="edge maps (red: positive, blue: negative response)",
    )
    stats = {
        n: {"min": float(m.min()), "max": float(m.max()), "mean_abs": float(m.abs().mean())}
        for n, m in maps.items()
    }
    if not args.json:
        console.print(f"wrote {path}")
    return {"image": args.image, "shape": list(image.shape), "figure": str(path), "maps": stats}


def cmd_edges_learn(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.edges import learn_edge_kernel

    images = [n.strip() for n in args.images.split(",") if n.strip()]
    result = learn_edge_kernel(
        args.target, images, args.steps, args.optimizer, args.lr, args.size, args.seed
    )
    if not args.json:
        from cnnlab.explain import _matrix_table

        console.print(_matrix_table(f"target ({args.target})", result.target.tolist()))
        console.print(
            _matrix_table(
                "learned w1..w9",
                [[round(v, 4) + 0.0 for v in row] for row in result.kernel.tolist()],
            )
        )
        console.print(
            f"max |learned - target| = {result.max_abs_error:.2e} after "
            f"{len(result.losses)} loss evaluations ({args.optimizer})"
        )
    return result.to_dict()


# --- classify ---------------------------------------------------------------------------


def cmd_classify_train(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.config import ClassifyTrainConfig
    from cnnlab.engine.classify import train_classifier

    config = ClassifyTrainConfig(
        model=args.model,
        data=args.data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        augment=args.augment,
        label_smoothing=args.label_smoothing,
        seed=args.seed,
        split_seed=args.split_seed,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        image_size=args.image_size,
        channels=args.channels,
        resize=args.resize,
        strict=args.strict,
        pretrained=args.pretrained or "",
        freeze=args.freeze,
        backbone_lr_mult=args.backbone_lr_mult,
        cache_features=args.cache_features,
        precision=args.precision,
        channels_last=args.channels_last,
        device=args.device,
        tensorboard=args.tensorboard,
        out=args.out or "",
    )
    result = train_classifier(
        config, Console(stderr=True, quiet=args.json), resume=args.resume or ""
    )
    if not args.json:
        console.print(
            f"test accuracy {result.test.accuracy:.2%} on {result.test.count} images "
            f"(best epoch {result.best_epoch}, {result.seconds:.1f} s)"
        )
        console.print(f"run folder: {result.run_dir}")
    return result.to_dict()


def cmd_classify_eval(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.classify import evaluate_checkpoint

    result, ckpt = evaluate_checkpoint(args.checkpoint, args.split, args.device)
    out: dict[str, Any] = {"checkpoint": args.checkpoint, "split": args.split} | result.to_dict()
    if args.out:
        from cnnlab.viz.plots import plot_confusion_matrix

        out["figure"] = str(
            plot_confusion_matrix(
                result.confusion,
                ckpt["class_names"],
                Path(args.out) / f"confusion_{args.split}.png",
                title=f"{ckpt['model']} on {args.split} (accuracy {result.accuracy:.2%})",
            )
        )
    if not args.json:
        console.print(
            f"{args.split}: accuracy {result.accuracy:.2%}, loss {result.loss:.4f} "
            f"on {result.count} images"
        )
    return out


def cmd_classify_predict(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    import torch

    from cnnlab.data.classification import normalize
    from cnnlab.engine import predict as P

    if bool(args.checkpoint) == bool(args.onnx):
        raise CnnlabError("give exactly one of --checkpoint and --onnx")
    if args.onnx:
        session, meta = P.onnx_session(args.onnx)
        run = lambda batch: P.onnx_predict(session, batch)  # noqa: E731
        ckpt = None
    else:
        from cnnlab.engine.checkpoint import model_from_checkpoint
        from cnnlab.engine.device import resolve_device

        device = resolve_device(args.device)
        model, ckpt = model_from_checkpoint(args.checkpoint)
        meta = P.model_meta(ckpt)
        model.to(device).eval()
        run = lambda batch: model(batch.to(device)).cpu()  # noqa: E731
    labels: list[str | None] | None = None
    if args.images:
        batch = P.preprocess_files(args.images, meta)
        sources = list(args.images)
    else:
        if ckpt is None:
            raise CnnlabError("with --onnx, give image files to classify")
        from cnnlab.engine.classify import load_split

        split = load_split(ckpt, args.split)
        norm = meta["normalization"]
        batch = normalize(split.images[: args.limit], norm["mean"], norm["std"])
        sources = [f"{args.split}[{i}]" for i in range(len(batch))]
        labels = [meta["class_names"][int(t)] for t in split.labels[: args.limit]]
    with torch.no_grad():
        probs = run(batch).softmax(1)
    rows = P.topk_rows(probs, meta["class_names"], sources, args.top_k, labels)
    if not args.json:
        table = Table(
            title=f"predictions of {meta['model']}" + (" (ONNX Runtime)" if args.onnx else "")
        )
        for col in ("source", "prediction", "probability", "label"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                r["source"], r["prediction"], f"{r['probability']:.3f}", r.get("label", "")
            )
        console.print(table)
    return {"checkpoint": args.checkpoint or args.onnx, "predictions": rows}


def cmd_export(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.export import export_onnx

    out = args.output or str(Path(args.checkpoint).with_suffix(".onnx"))
    result = export_onnx(args.checkpoint, out, opset=args.opset)
    if not args.json:
        console.print(
            f"wrote {result.path}; ONNX Runtime vs PyTorch max abs difference "
            f"{result.max_abs_diff:.2e}"
        )
    return result.to_dict()


def cmd_augment(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    import torch

    from cnnlab.data.augment import build_augmentation, parse_augment, pca_basis
    from cnnlab.data.classification import load_classification
    from cnnlab.viz.plots import plot_augmentation_grid

    data = load_classification(
        args.data, image_size=args.image_size, channels=args.channels or None, strict=args.strict
    )
    names = parse_augment(args.augment)
    if not names:
        raise CnnlabError("--augment names nothing to show")
    torch.manual_seed(args.seed)
    train = data.splits["train"]
    pca = pca_basis(train.images) if "pca" in names else None
    pipeline = build_augmentation(
        names, image_size=data.image_size, channels=data.channels, pca=pca
    )
    picks = torch.randperm(len(train))[: args.images]
    originals = train.images[picks].float() / 255
    rows = [originals] + [pipeline(originals) for _ in range(args.variants)]
    path = plot_augmentation_grid(rows, args.output, title=f"{args.data}: {', '.join(names)}")
    if not args.json:
        console.print(f"wrote {path} (first row: originals; then {args.variants} draws)")
    return {"figure": str(path), "augment": list(names), "images": len(picks)}


# --- localize -------------------------------------------------------------------------------


def cmd_localize_train(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.localize import LocalizeConfig, train_localizer

    config = LocalizeConfig(
        data=args.data,
        backbone=args.backbone,
        landmarks=args.landmarks,
        images=args.images,
        image_size=args.image_size,
        num_classes=args.num_classes,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        loss=args.loss,
        seed=args.seed,
        device=args.device,
        out=args.out,
    )
    result = train_localizer(config, Console(stderr=True, quiet=args.json))
    if not args.json:
        console.print(f"test: {result['test']}")
        console.print(f"run folder: {result['run_dir']}")
    return result


def cmd_localize_eval(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.checkpoint import model_from_checkpoint
    from cnnlab.engine.device import resolve_device
    from cnnlab.engine.localize import LocalizeConfig, evaluate, load_data

    model, ckpt = model_from_checkpoint(args.checkpoint)
    config = LocalizeConfig(**ckpt["config"])
    device = resolve_device(args.device)
    metrics = evaluate(model.to(device), load_data(config), args.split, device)
    if not args.json:
        console.print(f"{args.split}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    return {"checkpoint": args.checkpoint, "split": args.split, **metrics}


def cmd_localize_predict(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    import numpy as np
    import torch

    from cnnlab.data.folder import image_to_uint8
    from cnnlab.data.scenes import make_scenes
    from cnnlab.engine.checkpoint import load_checkpoint
    from cnnlab.engine.localize import draw_predictions, predict_images

    ckpt = load_checkpoint(args.checkpoint)
    size = ckpt["input_size"][-1]
    if args.images:
        images = torch.stack([image_to_uint8(p, size, 3, "stretch") for p in args.images])
        sources = list(args.images)
    else:
        cfg = ckpt["config"]
        scenes = make_scenes(
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
        images = torch.from_numpy(np.stack([x.image for x in scenes])).permute(0, 3, 1, 2)
        sources = [f"scene[{i}]" for i in range(len(scenes))]
    rows = predict_images(args.checkpoint, images)
    path = draw_predictions(images, rows, args.output)
    for src, row in zip(sources, rows, strict=True):
        row["source"] = src
    if not args.json:
        console.print(f"wrote {path}")
    return {"figure": str(path), "predictions": rows}


# --- detect ---------------------------------------------------------------------------------


def cmd_detect_train(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.detect import DetectConfig, train_detector

    config = DetectConfig(
        data=args.data,
        backbone=args.backbone,
        images=args.images,
        image_size=args.image_size,
        num_classes=args.num_classes,
        max_objects=args.max_objects,
        anchors=args.anchors,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        out=args.out,
    )
    result = train_detector(config, Console(stderr=True, quiet=args.json))
    if not args.json:
        console.print(
            f"test mAP@0.5 {result['test_map_50']:.3f}, mAP@[.5:.95] "
            f"{result['test_map']:.3f} ({result['seconds']:.0f} s); "
            f"run folder {result['run_dir']}"
        )
    return result


def _detect_eval_data(ckpt: dict[str, Any], split: str) -> Any:
    from cnnlab.engine.detect import DetectConfig, load_detection_data, split_indices

    config = DetectConfig(**ckpt["config"])
    data = load_detection_data(config)
    return data.subset(split_indices(len(data.images), config.seed)[split])


def cmd_detect_eval(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.checkpoint import model_from_checkpoint
    from cnnlab.engine.detect import evaluate_detector
    from cnnlab.engine.detection_metrics import plot_pr_curve
    from cnnlab.engine.device import resolve_device

    model, ckpt = model_from_checkpoint(args.checkpoint)
    device = resolve_device(args.device)
    ev = evaluate_detector(model.to(device), _detect_eval_data(ckpt, args.split), device)
    out = {
        "checkpoint": args.checkpoint,
        "split": args.split,
        "map_50": ev["map_50"],
        "map": ev["map"],
        "map_75": ev["map_75"],
    }
    if args.out:
        out["figure"] = str(plot_pr_curve(ev, Path(args.out) / f"pr_{args.split}.png"))
    if not args.json:
        console.print(f"{args.split}: mAP@0.5 {ev['map_50']:.3f}, mAP@[.5:.95] {ev['map']:.3f}")
    return out


def cmd_detect_predict(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    import torch

    from cnnlab.data.folder import image_to_uint8
    from cnnlab.engine.checkpoint import model_from_checkpoint
    from cnnlab.engine.detect import MEAN, STD, decode, draw_detections, scenes_data

    model, ckpt = model_from_checkpoint(args.checkpoint)
    model.eval()
    size = ckpt["input_size"][-1]
    if args.images:
        images = torch.stack([image_to_uint8(p, size, 3, "stretch") for p in args.images])
        sources = list(args.images)
    else:
        cfg = ckpt["config"]
        images = scenes_data(
            args.scenes, size, cfg["num_classes"], cfg["max_objects"], seed=args.seed
        ).images
        sources = [f"scene[{i}]" for i in range(len(images))]
    with torch.no_grad():
        raw = model((images.float() / 255 - MEAN) / STD)
    dets = decode(raw, model.anchors, args.score_threshold, args.iou_threshold)
    dets = [{k: (v * size if k == "boxes" else v) for k, v in d.items()} for d in dets]
    path = draw_detections(images, dets, ckpt["class_names"], args.output, args.score_threshold)
    names = ckpt["class_names"]
    rows = [
        {
            "source": src,
            "detections": [
                {
                    "label": names[int(c)],
                    "score": round(float(sc), 4),
                    "box_xyxy": [round(v, 2) for v in b.tolist()],
                }
                for b, sc, c in zip(d["boxes"], d["scores"], d["labels"], strict=True)
            ],
        }
        for src, d in zip(sources, dets, strict=True)
    ]
    if not args.json:
        console.print(f"wrote {path}")
    return {"figure": str(path), "predictions": rows}


def cmd_detect_anchors(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    import torch

    from cnnlab.engine.detect import DetectConfig, load_detection_data
    from cnnlab.ops.anchors import kmeans_anchors, mean_best_iou

    data = load_detection_data(
        DetectConfig(data=args.data, images=args.images, image_size=args.image_size)
    )
    wh = torch.cat([b[:, 2:] - b[:, :2] for b in data.boxes])
    anchors = kmeans_anchors(wh, args.k, seed=args.seed)
    result = {
        "anchors_wh": [[round(v, 4) for v in a] for a in anchors.tolist()],
        "mean_best_iou": mean_best_iou(wh, anchors),
        "boxes": len(wh),
    }
    if not args.json:
        console.print(
            f"{args.k} anchors (w, h relative to the image) from {len(wh)} boxes: "
            f"{result['anchors_wh']}; mean best IoU {result['mean_best_iou']:.3f}"
        )
    return result


# --- segment --------------------------------------------------------------------------------


def cmd_segment_train(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.segment import SegmentConfig, train_segmenter

    config = SegmentConfig(
        data=args.data,
        model=args.model,
        images=args.images,
        image_size=args.image_size,
        num_classes=args.num_classes,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        loss=args.loss,
        class_weights=args.class_weights or "",
        precision=args.precision,
        seed=args.seed,
        device=args.device,
        out=args.out,
    )
    result = train_segmenter(config, Console(stderr=True, quiet=args.json))
    if not args.json:
        console.print(
            f"test mean IoU {result['test']['mean_iou']:.3f}, pixel accuracy "
            f"{result['test']['pixel_accuracy']:.3f}; run folder {result['run_dir']}"
        )
    return result


def cmd_segment_eval(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.checkpoint import model_from_checkpoint
    from cnnlab.engine.detect import split_indices
    from cnnlab.engine.device import resolve_device
    from cnnlab.engine.segment import SegmentConfig, _load, evaluate_segmenter

    model, ckpt = model_from_checkpoint(args.checkpoint)
    config = SegmentConfig(**ckpt["config"])
    data = _load(config)
    idx = split_indices(len(data.images), config.seed)[args.split]
    device = resolve_device(args.device)
    metrics = evaluate_segmenter(model.to(device), data, idx, device)
    if not args.json:
        console.print(
            f"{args.split}: mean IoU {metrics['mean_iou']:.3f}, per class "
            + ", ".join(
                f"{n} {v:.3f}"
                for n, v in zip(ckpt["class_names"], metrics["per_class_iou"], strict=True)
            )
        )
    return {"checkpoint": args.checkpoint, "split": args.split, **metrics}


def cmd_segment_predict(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    import numpy as np
    import torch

    from cnnlab.data.images import read_image
    from cnnlab.engine.checkpoint import model_from_checkpoint
    from cnnlab.engine.segment import MEAN, STD, save_prediction, scenes_segmentation

    model, ckpt = model_from_checkpoint(args.checkpoint)
    model.eval()
    names = ckpt["class_names"]
    if args.images:
        images = [
            torch.from_numpy(np.asarray(read_image(p, "RGB")).copy()).permute(2, 0, 1)
            for p in args.images
        ]
        stems = [Path(p).stem for p in args.images]
    else:
        size = ckpt["input_size"][-1]
        data = scenes_segmentation(args.scenes, size, len(names) - 1, seed=args.seed)
        images, stems = list(data.images), [f"scene{i}" for i in range(args.scenes)]
    rows = []
    for image, stem in zip(images, stems, strict=True):
        with torch.no_grad():
            mask = model(((image.float() / 255 - MEAN) / STD)[None]).argmax(1)[0]
        paths = save_prediction(image, mask, Path(args.out), stem)
        counts = torch.bincount(mask.flatten(), minlength=len(names)).tolist()
        rows.append(
            {"source": stem, **paths, "pixel_counts": dict(zip(names, counts, strict=True))}
        )
    if not args.json:
        console.print(f"wrote {len(rows)} maps and overlays to {args.out}")
    return {"predictions": rows}


# --- style ----------------------------------------------------------------------------------


def cmd_style(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.style import load_rgb, save_strip, transfer_style

    content, style = load_rgb(args.content, args.size), load_rgb(args.style, args.size)
    result = transfer_style(
        content,
        style,
        steps=args.steps,
        alpha=args.alpha,
        beta=args.beta,
        tv_weight=args.tv,
        norm=args.norm,
        init=args.init,
        optimizer=args.optimizer,
        lr=args.lr,
        weights=args.weights,
        seed=args.seed,
        bf16=args.precision == "bf16",
        console=Console(stderr=True, quiet=args.json),
    )
    out = save_strip([result.image], args.output)
    strip = save_strip(
        [content[0], style[0], *result.snapshots],
        Path(args.output).with_name(Path(args.output).stem + "_strip.png"),
    )
    first, last = result.history[0], result.history[-1]
    if not args.json:
        console.print(
            f"wrote {out} and {strip}; J {first['total']:.3g} -> {last['total']:.3g} "
            f"in {result.seconds:.1f} s ({result.seconds_per_step:.2f} s/step)"
        )
    return {
        "output": str(out),
        "strip": str(strip),
        "first": first,
        "last": last,
        "seconds": result.seconds,
        "seconds_per_step": result.seconds_per_step,
        "features": "vgg19 (torchvision weights)"
        if args.weights
        else "vgg19 with random weights (see docs)",
    }


# --- visualize ------------------------------------------------------------------------------


def _vis_inputs(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    from cnnlab.config import ClassifyTrainConfig
    from cnnlab.data.classification import load_classification, normalize
    from cnnlab.engine.checkpoint import model_from_checkpoint

    model, ckpt = model_from_checkpoint(args.checkpoint)
    config = ClassifyTrainConfig.from_dict(ckpt.get("config", {}))
    data = load_classification(
        args.data or config.data,
        image_size=config.image_size,
        channels=config.channels or None,
        split_seed=config.split_seed,
    )
    norm = ckpt.get("normalization", data.normalization())
    images = normalize(data.splits[args.split].images[: args.limit], norm["mean"], norm["std"])
    return model.eval(), images, ckpt


def cmd_visualize(args: argparse.Namespace, console: Console) -> dict[str, Any]:

    from cnnlab.engine import visualize as V
    from cnnlab.viz.plots import plot_image_grid

    model, images, ckpt = _vis_inputs(args)
    out = Path(args.output)
    if args.what == "filters":
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
        result: dict[str, Any] = {"figure": str(path), "filters": list(w.shape)}
    elif args.what == "activations":
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
        for g in geometry:
            stacks = [
                V.top_patches(model, g.name, u, images, g)[0]
                for u in range(min(args.units, g.channels))
            ]
            rows.append((f"{g.name} (field {g.rf}px)", stacks))
            summary.append({"layer": g.name, "receptive_field": g.rf, "jump": g.jump})
        path = V.plot_patch_grid(rows, out, title=f"{ckpt['model']}: top-9 patches per unit")
        result = {"figure": str(path), "layers": summary}
    if not args.json:
        console.print(f"wrote {result['figure']}")
    return result


def _explain_receptive_field(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.visualize import layer_geometry
    from cnnlab.registry import create_model, get_model_entry

    size = args.input or get_model_entry(args.model).input_size
    rows = [
        {
            "layer": g.name,
            "type": g.kind,
            "kernel": g.kernel,
            "stride": g.stride,
            "padding": g.padding,
            "receptive_field": g.rf,
            "jump": g.jump,
            "start": g.start,
            "output_size": g.size,
        }
        for g in layer_geometry(create_model(args.model), size)
    ]
    if not args.json:
        table = Table(title=f"{args.model}: receptive fields (input {'x'.join(map(str, size))})")
        for col in ("layer", "type", "k", "s", "p", "field", "jump", "start"):
            table.add_column(col, justify="left" if col in ("layer", "type") else "right")
        for r in rows:
            table.add_row(
                r["layer"],
                r["type"],
                str(r["kernel"]),
                str(r["stride"]),
                str(r["padding"]),
                str(r["receptive_field"]),
                str(r["jump"]),
                f"{r['start']:g}",
            )
        console.print(table)
    return {"kind": "receptive-field", "model": args.model, "layers": rows}


# --- faces ----------------------------------------------------------------------------------


def _face_model(checkpoint: str) -> tuple[Any, dict[str, Any]]:
    from cnnlab.engine.checkpoint import model_from_checkpoint

    model, ckpt = model_from_checkpoint(checkpoint)
    if ckpt["model"] != "siamese" or "tau" not in ckpt:
        raise CnnlabError(f"{checkpoint}: not a face encoder (train one with cnnlab faces train)")
    return model.eval(), ckpt


def _face_embeddings(model: Any, ckpt: dict[str, Any], paths: list[str]) -> Any:
    from cnnlab.engine.predict import preprocess_files

    meta = {
        "input_size": ckpt["input_size"],
        "normalization": ckpt["normalization"],
        "invert_light": ckpt["config"]["data"] == "digits",
        "resize": "stretch",
    }
    import torch

    with torch.no_grad():
        return model(preprocess_files(paths, meta)).numpy()


def cmd_faces(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    import numpy as np

    from cnnlab.data.face_db import FaceDatabase

    if args.what == "train":
        from cnnlab.engine.faces import FacesConfig, train_faces

        config = FacesConfig(
            data=args.data,
            unseen=args.unseen,
            backbone=args.backbone,
            embedding_dim=args.embedding_dim,
            method=args.method,
            mining=args.mining,
            steps=args.steps,
            lr=args.lr,
            augment=args.augment,
            seed=args.seed,
            out=args.out,
        )
        result = train_faces(config, Console(stderr=True, quiet=args.json))
        if not args.json:
            console.print(
                ", ".join(f"{k} {v:.3f}" for k, v in result.items() if isinstance(v, float))
            )
        return result
    if args.what in ("list", "remove"):
        import sqlite3

        if not Path(args.db).is_file():
            raise CnnlabError(f"{args.db}: no such database")
        conn = sqlite3.connect(args.db)
        try:
            model_id = conn.execute("SELECT value FROM meta WHERE key='model'").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise CnnlabError(f"{args.db}: not a cnnlab face database ({exc})") from None
        finally:
            conn.close()
        db = FaceDatabase(args.db, model_id)
        if args.what == "remove":
            db.remove(args.name)
        people = [{"name": n, "images": c} for n, c in db.people()]
        if not args.json:
            for p in people:
                console.print(f"{p['name']}: {p['images']} image(s)")
        return {"people": people}
    model, ckpt = _face_model(args.checkpoint)
    db = FaceDatabase(args.db, ckpt["model_id"])
    emb = _face_embeddings(model, ckpt, args.images)
    tau = ckpt["tau"]
    if args.what == "enroll":
        n = db.enroll(args.name, emb)
        if not args.json:
            console.print(f"enrolled {n} image(s) of {args.name}")
        return {"name": args.name, "enrolled": n}
    names, gallery = db.gallery()
    if not names:
        raise CnnlabError(f"{args.db}: nobody is enrolled yet (cnnlab faces enroll)")
    d = ((emb[:, None, :] - gallery[None]) ** 2).sum(-1)  # (probes, gallery)
    rows = []
    for path, dist in zip(args.images, d, strict=True):
        if args.what == "verify":
            mine = [i for i, n in enumerate(names) if n == args.name]
            if not mine:
                raise CnnlabError(f"{args.db}: no person named {args.name!r}")
            best = float(dist[mine].min())
            rows.append(
                {"source": path, "claimed": args.name, "distance": best, "same": best <= tau}
            )
        else:
            i = int(np.argmin(dist))
            rows.append(
                {
                    "source": path,
                    "identity": names[i] if dist[i] <= tau else None,
                    "nearest": names[i],
                    "distance": float(dist[i]),
                }
            )
    if not args.json:
        for r in rows:
            verdict = (
                ("same person" if r["same"] else "different person")
                if args.what == "verify"
                else (r["identity"] or "not recognized")
            )
            console.print(f"{r['source']}: {verdict} (distance {r['distance']:.3f}, tau {tau:.3f})")
    return {"tau": tau, "results": rows}


# --- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object with the results as the last stdout line",
    )
    common.add_argument("--debug", action="store_true", help="show tracebacks of errors")

    parser = _Parser(prog="cnnlab", description=__doc__.splitlines()[0], parents=[common])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("models", parents=[common], help="list registered models")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'lenet*'")
    p.add_argument(
        "--ledger",
        action="store_true",
        help="our parameter and MAC counts beside the published figures",
    )
    p.set_defaults(handler=cmd_models)

    p = sub.add_parser("summary", parents=[common], help="per-layer shapes, parameters and MACs")
    p.add_argument("model")
    p.add_argument("--input", type=_dims, help="input size CxHxW (default: the model's own)")
    p.add_argument("--all", action="store_true", help="also list activations, flatten, dropout")
    p.set_defaults(handler=cmd_summary)

    _add_explain(sub, common)
    _add_edges(sub, common)
    _add_classify(sub, common)
    _add_localize(sub, common)
    _add_detect(sub, common)
    _add_segment(sub, common)
    vis = sub.add_parser("visualize", parents=[common], help="what a trained network learned")
    kinds = vis.add_subparsers(dest="what", required=True, parser_class=_Parser)
    for name, helptext in (
        ("patches", "top-9 patches per unit, layer by layer"),
        ("filters", "the first layer's filters as images"),
        ("activations", "one image's activation maps"),
    ):
        p = kinds.add_parser(name, parents=[common], help=helptext)
        p.add_argument("--checkpoint", required=True, help="a classifier trained by cnnlab")
        p.add_argument("--data", help="dataset (default: the checkpoint's)")
        p.add_argument("--split", choices=("train", "val", "test"), default="train")
        p.add_argument("--limit", type=_positive_int, default=2000, help="images searched")
        p.add_argument("--layers", type=_positive_int, default=5)
        p.add_argument("--units", type=_positive_int, default=4)
        p.add_argument("--channels", type=_positive_int, default=8)
        p.add_argument("--index", type=int, default=0, help="image for activations")
        p.add_argument("-o", "--output", default=f"runs/visualize/{name}.png")
        p.set_defaults(handler=cmd_visualize)
    faces = sub.add_parser("faces", parents=[common], help="face verification and recognition")
    kinds = faces.add_subparsers(dest="what", required=True, parser_class=_Parser)
    p = kinds.add_parser("train", parents=[common], help="Siamese encoder, triplet loss")
    p.add_argument("--data", default="digits", help="digits, or root/<person>/*.jpg")
    p.add_argument("--unseen", default="6,7,8,9", help="identities held out of training")
    p.add_argument("--backbone", default="convnet_small")
    p.add_argument("--embedding-dim", type=_positive_int, default=128)
    p.add_argument("--method", choices=("triplet", "similarity"), default="triplet")
    p.add_argument(
        "--mining", choices=("batch_hard", "batch_all", "semi_hard", "random"), default="batch_hard"
    )
    p.add_argument("--steps", type=_positive_int, default=600)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--augment", default="crop,rotate,shear")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/faces/run")
    p.set_defaults(handler=cmd_faces)
    for name, helptext in (
        ("enroll", "add images of a person"),
        ("verify", "is this the claimed person?"),
        ("identify", "who is this, or not recognized"),
    ):
        p = kinds.add_parser(name, parents=[common], help=helptext)
        p.add_argument("--checkpoint", required=True)
        p.add_argument("--db", default="runs/faces/faces.db")
        if name != "identify":
            p.add_argument("--name", required=True)
        p.add_argument("images", nargs="+")
        p.set_defaults(handler=cmd_faces)
    p = kinds.add_parser("list", parents=[common], help="enrolled people")
    p.add_argument("--db", default="runs/faces/faces.db")
    p.set_defaults(handler=cmd_faces)
    p = kinds.add_parser("remove", parents=[common], help="remove a person")
    p.add_argument("--db", default="runs/faces/faces.db")
    p.add_argument("--name", required=True)
    p.set_defaults(handler=cmd_faces)
    p = sub.add_parser("style", parents=[common], help="neural style transfer (Gatys et al.)")
    p.add_argument("content", help="image path or bundled photo (astronaut, chelsea, coffee, ...)")
    p.add_argument("style", help="image path or bundled photo/texture (brick, grass, gravel, ...)")
    p.add_argument("-o", "--output", default="runs/style/generated.png")
    p.add_argument("--size", type=_positive_int, default=256)
    p.add_argument("--steps", type=_positive_int, default=200)
    p.add_argument("--alpha", type=float, default=10.0, help="content weight")
    p.add_argument(
        "--beta",
        type=float,
        default=None,
        help="style weight (default 40 with --weights, 4000 with random features)",
    )
    p.add_argument("--tv", type=float, default=0.0, help="total-variation weight")
    p.add_argument("--norm", choices=("course", "gatys"), default="course")
    p.add_argument("--init", choices=("content", "random"), default="content")
    p.add_argument("--optimizer", choices=("adam", "lbfgs"), default="adam")
    p.add_argument("--lr", type=float, default=0.03)
    p.add_argument("--weights", help="a torchvision VGG-19 weights file (vgg19-dcbb9e9d.pth)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=cmd_style)
    return parser


def _add_explain(sub: Any, common: argparse.ArgumentParser) -> None:
    explain = sub.add_parser(
        "explain", parents=[common], help="the slides' worked examples, computed"
    )
    what = explain.add_subparsers(dest="what", required=True, parser_class=_Parser)
    matrix_help = "matrix, rows separated by ';', e.g. '3 0 1;1 5 8;2 7 2'"
    for name, helptext in (
        ("conv", "a convolution"),
        ("pool", "max or average pooling"),
        ("transpose", "a transposed convolution by both methods"),
    ):
        p = what.add_parser(name, parents=[common], help=helptext)
        p.add_argument("--input", help=matrix_help)
        p.add_argument("--n", type=_positive_int, help="input size, to explain shapes only")
        p.add_argument(
            "--s",
            type=_positive_int,
            default=None if name == "pool" else 1,
            help="stride" + (" (default: f)" if name == "pool" else ""),
        )
        if name != "pool":
            p.add_argument(
                "--filter", help="a matrix, or a name: vertical, horizontal, sobel, scharr, ..."
            )
            p.add_argument("--f", type=_positive_int, help="filter size, to explain shapes only")
        else:
            p.add_argument("--f", type=_positive_int, default=2, help="window size")
            p.add_argument("--mode", choices=("max", "avg"), default="max")
        if name == "conv":
            p.add_argument("--p", type=_padding, default=0, help="padding: int, valid or same")
            p.add_argument("--filters", type=_positive_int, default=1, help="number of filters")
        else:
            p.add_argument("--p", type=_non_negative_int, default=0, help="padding")
        if name != "transpose":
            p.add_argument("--channels", type=_positive_int, default=1, help="input channels")
        p.set_defaults(handler=cmd_explain)
    p = what.add_parser("cost", parents=[common], help="MACs of normal vs cheaper convolutions")
    p.add_argument("--input", dest="shape", required=True, help="input HxWxC, e.g. 28x28x192")
    p.add_argument("--f", type=_positive_int, required=True, help="filter size")
    p.add_argument("--filters", type=_positive_int, required=True, help="output channels")
    p.add_argument("--separable", action="store_true", help="vs depthwise-separable")
    p.add_argument("--bottleneck", type=_positive_int, help="vs a 1x1 bottleneck of N channels")
    p.add_argument(
        "--expansion", type=_positive_int, help="vs a MobileNet v2 block with this expansion factor"
    )
    p.add_argument(
        "--p",
        type=_padding,
        default=None,
        help="padding (default: valid, or same for --bottleneck/--expansion)",
    )
    p.add_argument("--s", type=_positive_int, default=1, help="stride")
    p.set_defaults(handler=cmd_explain)
    p = what.add_parser(
        "sliding-windows",
        parents=[common],
        help="FC layers as convolutions: naive vs convolutional windows",
    )
    p.add_argument("--image-size", type=_positive_int, default=28)
    p.add_argument("--checkpoint", help="a trained window classifier (default: seeded weights)")
    p.add_argument("--repeats", type=_positive_int, default=3)
    p.set_defaults(handler=cmd_explain)
    p = what.add_parser(
        "receptive-field", parents=[common], help="each layer's receptive field, jump and start"
    )
    p.add_argument("model")
    p.add_argument("--input", type=_dims, help="input size CxHxW (default: the model's)")
    p.set_defaults(handler=cmd_explain)
    p = what.add_parser("scale", parents=[common], help="EfficientNet compound scaling")
    p.add_argument("--phi", type=float, required=True, help="compound coefficient phi")
    p.set_defaults(handler=cmd_explain)


def _add_edges(sub: Any, common: argparse.ArgumentParser) -> None:
    edges = sub.add_parser("edges", parents=[common], help="edge filters on real photos")
    what = edges.add_subparsers(dest="what", required=True, parser_class=_Parser)
    p = what.add_parser("apply", parents=[common], help="filter a photo, write edges.png")
    p.add_argument(
        "--image",
        default="camera",
        help="a scikit-image sample (camera, coins, brick, ...) or an image file",
    )
    p.add_argument("--filters", default="vertical,horizontal,sobel,scharr")
    p.add_argument("--out", default="runs/edges")
    p.set_defaults(handler=cmd_edges_apply)
    p = what.add_parser("learn", parents=[common], help="learn a 3x3 kernel by gradient descent")
    p.add_argument("--target", default="sobel", help="the filter to recover")
    p.add_argument(
        "--images",
        default="camera,coins,moon,brick",
        help="comma-separated sample names or image files",
    )
    p.add_argument("--optimizer", choices=("lbfgs", "adam"), default="lbfgs")
    p.add_argument("--steps", type=_positive_int, default=100)
    p.add_argument("--lr", type=float, default=0.05, help="learning rate (adam)")
    p.add_argument("--size", type=_positive_int, default=128, help="images resized to this")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=cmd_edges_learn)


def _add_classify(sub: Any, common: argparse.ArgumentParser) -> None:
    classify = sub.add_parser("classify", parents=[common], help="train and use a classifier")
    what = classify.add_subparsers(dest="what", required=True, parser_class=_Parser)
    device = {"default": "auto", "help": "auto, cpu, cuda, cuda:N or mps"}

    p = what.add_parser("train", parents=[common], help="train on a dataset, write a run folder")
    p.add_argument("--model", default="lenet5")
    p.add_argument(
        "--data",
        default="digits",
        help="digits, faces, or a folder root/<class>/*.png (or root/train, root/val)",
    )
    p.add_argument("--epochs", type=_positive_int, default=30)
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument(
        "--augment",
        default="auto",
        help="comma list of flip, crop, rcrop, rotate, shear, warp, tps, color, pca; "
        "none; or auto (per dataset)",
    )
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--val-fraction", type=float, default=0.15)
    p.add_argument("--test-fraction", type=float, default=0.15)
    p.add_argument("--image-size", type=_positive_int, default=32)
    p.add_argument("--channels", type=int, default=0, help="1 or 3 (folders; default 3)")
    p.add_argument("--resize", choices=("center-crop", "stretch"), default="center-crop")
    p.add_argument("--strict", action="store_true", help="stop at the first unreadable image")
    p.add_argument("--pretrained", help="cnnlab checkpoint or torchvision weights file")
    p.add_argument("--freeze", default="none", help="none, backbone, or stages:K")
    p.add_argument("--backbone-lr-mult", type=float, default=1.0)
    p.add_argument(
        "--cache-features",
        action="store_true",
        help="with --freeze backbone: compute features once, train the head on them",
    )
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    p.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto")
    p.add_argument("--tensorboard", action="store_true")
    p.add_argument("--resume", help="a run's last.pt: continue exactly where it stopped")
    p.add_argument("--device", **device)
    p.add_argument("--out", help="run folder (default runs/classify/<model>-<data>[-N])")
    p.set_defaults(handler=cmd_classify_train)

    p = what.add_parser("eval", parents=[common], help="score a checkpoint on a split")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--device", **device)
    p.add_argument("--out", help="folder for a confusion-matrix PNG")
    p.set_defaults(handler=cmd_classify_eval)

    p = what.add_parser("predict", parents=[common], help="classify image files or a split")
    p.add_argument("--checkpoint")
    p.add_argument("--onnx", help="an exported model, run with ONNX Runtime")
    p.add_argument("images", nargs="*", help="image files (default: the test split)")
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--limit", type=_positive_int, default=10, help="images of the split to show")
    p.add_argument("--top-k", type=_positive_int, default=3)
    p.add_argument("--device", **device)
    p.set_defaults(handler=cmd_classify_predict)

    p = sub.add_parser("export", parents=[common], help="export a checkpoint to ONNX")
    p.add_argument("checkpoint")
    p.add_argument("--format", choices=("onnx",), default="onnx")
    p.add_argument("-o", "--output", help="output file (default: the checkpoint's name .onnx)")
    p.add_argument("--opset", type=_positive_int, default=17)
    p.set_defaults(handler=cmd_export)

    p = sub.add_parser("augment", parents=[common], help="write a grid of augmented samples")
    p.add_argument("--data", default="digits")
    p.add_argument("--augment", default="flip,crop,rotate,shear,warp,color")
    p.add_argument("-o", "--output", default="runs/augment/grid.png")
    p.add_argument("--images", type=_positive_int, default=8, help="images (columns)")
    p.add_argument("--variants", type=_positive_int, default=4, help="augmented rows")
    p.add_argument("--image-size", type=_positive_int, default=64)
    p.add_argument("--channels", type=int, default=0)
    p.add_argument("--strict", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=cmd_augment)


def _add_localize(sub: Any, common: argparse.ArgumentParser) -> None:
    loc = sub.add_parser(
        "localize", parents=[common], help="classification with localisation (and landmarks)"
    )
    what = loc.add_subparsers(dest="what", required=True, parser_class=_Parser)
    p = what.add_parser("train", parents=[common], help="train on scenes or a YOLO folder")
    p.add_argument("--data", default="scenes", help="scenes, or a YOLO label folder")
    p.add_argument("--backbone", default="convnet_small")
    p.add_argument("--landmarks", action="store_true", help="also regress 5 landmarks")
    p.add_argument("--images", type=_positive_int, default=3000, help="scenes to generate")
    p.add_argument("--image-size", type=_positive_int, default=64)
    p.add_argument("--num-classes", type=_positive_int, default=3)
    p.add_argument("--epochs", type=_positive_int, default=15)
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--loss", choices=("practical", "squared"), default="practical")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="runs/localize/run")
    p.set_defaults(handler=cmd_localize_train)
    p = what.add_parser("eval", parents=[common], help="metrics of a checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--device", default="auto")
    p.set_defaults(handler=cmd_localize_eval)
    p = what.add_parser("predict", parents=[common], help="draw predicted boxes and points")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("images", nargs="*", help="image files (default: new scenes)")
    p.add_argument("--scenes", type=_positive_int, default=8)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("-o", "--output", default="runs/localize/predictions.png")
    p.set_defaults(handler=cmd_localize_predict)


def _add_detect(sub: Any, common: argparse.ArgumentParser) -> None:
    det = sub.add_parser("detect", parents=[common], help="YOLO object detection")
    what = det.add_subparsers(dest="what", required=True, parser_class=_Parser)
    p = what.add_parser("train", parents=[common], help="train on scenes, YOLO or COCO data")
    p.add_argument("--data", default="scenes", help="scenes, a YOLO folder, or a COCO .json")
    p.add_argument("--backbone", default="convnet_small")
    p.add_argument("--images", type=_positive_int, default=4000, help="scenes to generate")
    p.add_argument("--image-size", type=_positive_int, default=128)
    p.add_argument("--num-classes", type=_positive_int, default=3)
    p.add_argument("--max-objects", type=int, default=6)
    p.add_argument("--anchors", type=_positive_int, default=3, help="k-means anchors")
    p.add_argument("--epochs", type=_positive_int, default=40)
    p.add_argument("--batch-size", type=_positive_int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="runs/detect/run")
    p.set_defaults(handler=cmd_detect_train)
    p = what.add_parser("eval", parents=[common], help="mAP of a checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", help="folder for the precision-recall PNG")
    p.set_defaults(handler=cmd_detect_eval)
    p = what.add_parser("predict", parents=[common], help="draw labelled boxes")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("images", nargs="*", help="image files (default: new scenes)")
    p.add_argument("--scenes", type=_positive_int, default=8)
    p.add_argument("--seed", type=int, default=4321)
    p.add_argument("--score-threshold", type=float, default=0.3)
    p.add_argument("--iou-threshold", type=float, default=0.5)
    p.add_argument("-o", "--output", default="runs/detect/predictions.png")
    p.set_defaults(handler=cmd_detect_predict)
    p = what.add_parser("anchors", parents=[common], help="k-means anchors (1 - IoU distance)")
    p.add_argument("--data", default="scenes")
    p.add_argument("--images", type=_positive_int, default=1000)
    p.add_argument("--image-size", type=_positive_int, default=128)
    p.add_argument("--k", type=_positive_int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=cmd_detect_anchors)


def _add_segment(sub: Any, common: argparse.ArgumentParser) -> None:
    seg = sub.add_parser("segment", parents=[common], help="semantic segmentation (U-Net)")
    what = seg.add_subparsers(dest="what", required=True, parser_class=_Parser)
    p = what.add_parser("train", parents=[common], help="train on scenes or a mask folder")
    p.add_argument("--data", default="scenes", help="scenes, or a folder images/, masks/")
    p.add_argument("--model", default="unet")
    p.add_argument("--images", type=_positive_int, default=2000)
    p.add_argument("--image-size", type=_positive_int, default=128)
    p.add_argument("--num-classes", type=_positive_int, default=3, help="object classes")
    p.add_argument("--epochs", type=_positive_int, default=20)
    p.add_argument("--batch-size", type=_positive_int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--loss", choices=("ce", "dice", "ce+dice"), default="ce+dice")
    p.add_argument("--class-weights", help="comma list, background first")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="runs/segment/run")
    p.set_defaults(handler=cmd_segment_train)
    p = what.add_parser("eval", parents=[common], help="IoU, Dice, pixel accuracy")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--device", default="auto")
    p.set_defaults(handler=cmd_segment_eval)
    p = what.add_parser("predict", parents=[common], help="colour maps and overlays")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("images", nargs="*", help="image files (default: new scenes)")
    p.add_argument("--scenes", type=_positive_int, default=4)
    p.add_argument("--seed", type=int, default=999)
    p.add_argument("--out", default="runs/segment/predictions")
    p.set_defaults(handler=cmd_segment_predict)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0, or 2 for bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    console = Console()
    try:
        args = build_parser().parse_args(argv)
        result = args.handler(args, console)
        if args.json:
            print(json.dumps(result, default=str))
        return 0
    except CnnlabError as exc:
        if debug:
            raise
        print(f"cnnlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
