"""The course's explainers: ``cnnlab explain`` (models and summary: :mod:`cnnlab.cli.zoo`;
edges: :mod:`cnnlab.cli.edges`)."""

from __future__ import annotations

import argparse
import math
from typing import Any

from rich.console import Console
from rich.table import Table

from cnnlab.cli.common import Parser
from cnnlab.cli.typed import refuse_other_mode
from cnnlab.cli.values import dims, non_negative_int, padding, positive_int, unit_interval
from cnnlab.cli.zoo import MODEL_HELP
from cnnlab.errors import CnnlabError


def cmd_explain(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab import explain

    example = _slide_example(args)
    if example and not args.json:
        console.print(f"{example} (give your own numbers: cnnlab explain {args.what} --help)")
    matrix = explain.parse_matrix(args.input) if getattr(args, "input", None) else None
    if args.what in ("conv", "pool", "transpose"):
        refuse_other_mode(args, matrix is not None)
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
    elif args.what == "dense":
        shapes = [explain.parse_shape(t, square=False) for t in args.shape.split(",") if t.strip()]
        if not shapes:
            raise CnnlabError("--input: give at least one HxWxC, e.g. 1000x1000x3")
        result = explain.explain_dense(shapes, args.units, args.f)
    elif args.what == "sliding-windows":
        result = _explain_sliding(args, console)
    elif args.what == "receptive-field":
        result = _explain_receptive_field(args, console)
    elif args.what in ("iou", "nms", "yolo-target"):
        result = _explain_boxes(args, console)
    else:
        if None in (args.shape, args.f, args.filters):
            raise CnnlabError("explain cost: give --input, --f and --filters together")
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
    if getattr(args, "out", None) and args.what in ("conv", "pool", "transpose"):
        result["figure"] = _draw_matrices(result, args.out)
    if not args.json and args.what in ("conv", "pool", "transpose", "cost", "scale", "dense"):
        from cnnlab.explain_render import render

        render(result, console)
        if result.get("figure"):
            console.print(f"wrote {result['figure']}")
    return result | ({"example": example} if example else {})


def _draw_matrices(result: dict[str, Any], out: str) -> str:
    """``--out`` of explain conv, pool and transpose: the input (padded, when it is), the
    filter and the output as shaded, numbered grids."""
    from cnnlab.viz.plots import plot_matrices

    if not isinstance(result.get("output"), list):
        raise CnnlabError("--out draws the numbers of a worked example: give --input, not --n")
    # conv's padded input as the filter sees it; pool and transpose keep their input as given
    shown = "padded_input" if result.get("p") and "padded_input" in result else "input"
    panels = [(shown.replace("_", " "), result[shown])]
    if "filter" in result:
        panels.append(("filter", result["filter"]))
    panels.append(("output", result["output"]))
    kind = {"conv": "convolution", "pool": f"{result.get('mode')} pooling"}.get(
        result["kind"], "transposed convolution"
    )
    return str(plot_matrices(panels, out, f"{kind}: p = {result['p']}, s = {result['s']}"))


# the options any one of which, given, means the user's own numbers (conv and transpose: --input,
# --n or --f; pool's --f has a default)
EXAMPLE_UNLESS_GIVEN = {
    "pool": ("input", "n"),
    "cost": ("shape", "f", "filters"),
    "iou": ("a", "b"),
    "dense": ("shape",),
}


def _slide_example(args: argparse.Namespace) -> str:
    """With none of the numbers given, fill ``args`` with the slide's own example (conv, pool,
    transpose, cost, iou; options given keep their value) and say what was filled in; else
    ``""``."""
    from cnnlab.explain import SLIDE_EXAMPLES

    if args.what not in SLIDE_EXAMPLES:
        return ""
    source, values = SLIDE_EXAMPLES[args.what]
    asked = EXAMPLE_UNLESS_GIVEN.get(args.what, ("input", "n", "f"))
    if any(getattr(args, name, None) is not None for name in asked):
        return ""
    compared = args.what == "cost" and (args.separable or args.expansion)
    filled = []
    for name, (value, words) in values.items():
        if getattr(args, name, None) is None and not (name == "bottleneck" and compared):
            setattr(args, name, value)
            filled.append(words)
    return f"{source}: {', '.join(filled)}"


def _explain_boxes(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab import explain_boxes as eb

    if args.what == "iou":
        if args.a is None or args.b is None:  # neither: _slide_example gave both
            raise CnnlabError("explain iou: give --a and --b together (neither: an example)")
        result = eb.explain_iou(eb.parse_box(args.a, "--a"), eb.parse_box(args.b, "--b"))
        if args.out:
            result["figure"] = str(eb.plot_iou(result, args.out))
        if not args.json:
            eb.render_iou(result, console)
            if args.out:
                console.print(f"wrote {result['figure']}")
        return result
    if args.what == "yolo-target":
        boxes, labels = eb.parse_objects(
            eb.EXAMPLE_OBJECTS if args.objects is None else args.objects,
            args.image_size,
            len(eb.SLIDE_CLASSES),
        )
        anchors = eb.parse_anchors(eb.EXAMPLE_ANCHORS if args.anchors is None else args.anchors)
        result = eb.explain_yolo_target(boxes, labels, args.grid, anchors)
        if args.out:
            result["figure"] = str(eb.plot_yolo_target(result, args.out, args.image_size))
        if not args.json:
            eb.render_yolo_target(result, console)
            if args.out:
                console.print(f"wrote {result['figure']}")
        return result
    boxes, scores = eb.parse_scored_boxes(eb.EXAMPLE_BOXES if args.boxes is None else args.boxes)
    result = eb.explain_nms(boxes, scores, args.score_threshold, args.iou_threshold)
    if args.out:
        result["figure"] = str(eb.plot_nms(result, args.out))
    if not args.json:
        eb.render_nms(result, console)
        if args.out:
            console.print(f"wrote {result['figure']}")
    return result


MAX_NAIVE_WINDOWS = 256**2  # 525 px: the naive loop takes ~12 s a repeat on a 2-core CPU


def _explain_sliding(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    import torch

    from cnnlab.engine.sliding import compare_sliding_windows
    from cnnlab.models.overfeat import STRIDE, WINDOW

    if args.image_size < WINDOW:
        raise CnnlabError(f"--image-size must be at least the {WINDOW}-pixel window")
    windows = ((args.image_size - WINDOW) // STRIDE + 1) ** 2
    if windows > MAX_NAIVE_WINDOWS:  # the naive loop runs one window at a time, ~0.2 ms each
        largest = WINDOW + STRIDE * math.isqrt(MAX_NAIVE_WINDOWS) - 1
        raise CnnlabError(
            f"--image-size {args.image_size}: {windows:,} windows for the naive loop to classify "
            f"one by one (about {windows * 2e-4 * (args.repeats + 1) / 60:.0f} min here); "
            f"the comparison takes up to {MAX_NAIVE_WINDOWS:,} (--image-size {largest})"
        )
    if args.checkpoint:
        from cnnlab.engine.checkpoint import model_from_checkpoint

        model, _ = model_from_checkpoint(args.checkpoint, "classification")
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


def _explain_receptive_field(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    from cnnlab.engine.visualize import layer_geometry
    from cnnlab.models.backbone import input_must_fit
    from cnnlab.registry import create_model, get_model_entry

    size = args.size or get_model_entry(args.model).input_size
    with input_must_fit(args.model, size, "--input"):
        geometry = layer_geometry(create_model(args.model), size)
    rows = [
        {
            "layer": g.name,
            "type": g.kind,
            "kernel": g.kernel,
            "stride": g.stride,
            "padding": g.padding,
            "receptive_field": g.rf,
            "whole_image": g.whole,
            "jump": g.jump,
            "start": g.start,
            "output_size": g.size,
        }
        for g in geometry
    ]
    if not args.json:
        whole = any(g.whole for g in geometry)
        table = Table(
            title=f"{args.model}: receptive fields (input {'x'.join(map(str, size))})",
            caption="* each unit also sees the whole image, through a global pool's gate "
            "(squeeze-and-excitation)"
            if whole
            else None,
        )
        for col in ("layer", "type", "k", "s", "p", "field", "jump", "start"):
            table.add_column(col, justify="left" if col in ("layer", "type") else "right")
        for r in rows:
            table.add_row(
                r["layer"],
                r["type"],
                str(r["kernel"]),
                str(r["stride"]),
                str(r["padding"]),
                f"{r['receptive_field']}{' *' if r['whole_image'] else ''}",
                f"{r['jump']:g}",
                f"{r['start']:g}",
            )
        console.print(table)
    result = {"kind": "receptive-field", "model": args.model, "layers": rows}
    if args.out:
        from cnnlab.engine.visualize import plot_receptive_fields

        result["figure"] = str(plot_receptive_fields(geometry, size, args.out))
        if not args.json:
            console.print(f"wrote {result['figure']}")
    return result


def _add_explain(sub: Any, common: argparse.ArgumentParser) -> None:
    from cnnlab.cli import degradation, rcnn, triplets

    explain = sub.add_parser(
        "explain", parents=[common], help="the slides' worked examples, computed"
    )
    what = explain.add_subparsers(dest="what", required=True, parser_class=Parser)
    matrix_help = "matrix, rows separated by ';', e.g. '3 0 1;1 5 8;2 7 2'"
    for name, helptext in (
        ("conv", "a convolution"),
        ("pool", "max or average pooling"),
        ("transpose", "a transposed convolution by both methods"),
    ):
        p = what.add_parser(name, parents=[common], help=helptext)
        p.add_argument("--input", help=matrix_help)
        p.add_argument("--n", type=positive_int, help="input size, to explain shapes only")
        p.add_argument(
            "--s",
            type=positive_int,
            default=None if name == "pool" else 1,
            help="stride" + (" (default: f)" if name == "pool" else ""),
        )
        if name != "pool":
            p.add_argument(
                "--filter", help="a matrix, or a name: vertical, horizontal, sobel, scharr, ..."
            )
            p.add_argument("--f", type=positive_int, help="filter size, to explain shapes only")
        else:
            p.add_argument("--f", type=positive_int, default=2, help="window size")
            p.add_argument(
                "--mode", choices=("max", "avg"), default="max", help="max or average pooling"
            )
        if name == "conv":
            p.add_argument("--p", type=padding, default=0, help="padding: int, valid or same")
            p.add_argument("--filters", type=positive_int, default=1, help="number of filters")
        else:
            p.add_argument("--p", type=non_negative_int, default=0, help="padding")
        if name != "transpose":
            p.add_argument("--channels", type=positive_int, default=1, help="input channels")
        p.add_argument("--out", help="also draw the input, filter and output into this PNG")
        p.set_defaults(handler=cmd_explain)
    p = what.add_parser(
        "dense", parents=[common], help="a fully connected layer on an image vs a convolution"
    )
    p.add_argument(
        "--input",
        dest="shape",
        help="images HxWxC, comma-separated (none: the slide's two, 64x64x3 and 1000x1000x3)",
    )
    p.add_argument("--units", type=positive_int, default=1000, help="n^[1], the layer's units")
    p.add_argument("--f", type=positive_int, default=3, help="filter size of the conv compared")
    p.set_defaults(handler=cmd_explain)
    degradation.add_parser(what, common)  # the slides' ResNets, before 1x1 convolutions
    p = what.add_parser("cost", parents=[common], help="MACs of normal vs cheaper convolutions")
    p.add_argument(
        "--input",
        dest="shape",
        help="input HxWxC, e.g. 28x28x192 (with --f and --filters; none of the three: the slide's "
        "1x1-bottleneck example)",
    )
    p.add_argument("--f", type=positive_int, help="filter size")
    p.add_argument("--filters", type=positive_int, help="output channels")
    p.add_argument("--separable", action="store_true", help="vs depthwise-separable")
    p.add_argument("--bottleneck", type=positive_int, help="vs a 1x1 bottleneck of N channels")
    p.add_argument(
        "--expansion", type=positive_int, help="vs a MobileNet v2 block with this expansion factor"
    )
    p.add_argument(
        "--p",
        type=padding,
        default=None,
        help="padding (default: valid, or same for --bottleneck/--expansion)",
    )
    p.add_argument("--s", type=positive_int, default=1, help="stride")
    p.set_defaults(handler=cmd_explain)
    p = what.add_parser(
        "sliding-windows",
        parents=[common],
        help="FC layers as convolutions: naive vs convolutional windows",
    )
    p.add_argument(
        "--image-size", type=positive_int, default=28, help="the image the windows slide over"
    )
    p.add_argument("--checkpoint", help="a trained window classifier (default: seeded weights)")
    p.add_argument(
        "--repeats", type=positive_int, default=3, help="timing repeats (the median is shown)"
    )
    p.set_defaults(handler=cmd_explain)
    p = what.add_parser(
        "receptive-field", parents=[common], help="each layer's receptive field, jump and start"
    )
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument(
        "--input", dest="size", type=dims, help="input size CxHxW (default: the model's)"
    )
    p.add_argument("--out", help="also draw each layer's field over the input into this PNG")
    p.set_defaults(handler=cmd_explain)
    p = what.add_parser("iou", parents=[common], help="intersection over union of two boxes")
    p.add_argument(
        "--a",
        help="a box 'x1 y1 x2 y2' (top-left, bottom-right); with neither --a nor --b: a car's "
        "true box and a predicted one",
    )
    p.add_argument("--b", help="the other box 'x1 y1 x2 y2'")
    p.add_argument("--out", help="also draw the boxes and their intersection into this PNG")
    p.set_defaults(handler=cmd_explain)
    p = what.add_parser(
        "nms", parents=[common], help="the slide's non-max suppression, step by step"
    )
    p.add_argument(
        "--boxes",
        help="'x1 y1 x2 y2 p_c; ...' (default: two cars found several times, one faint box)",
    )
    p.add_argument(
        "--score-threshold", type=unit_interval, default=0.6, help="discard boxes with p_c <= this"
    )
    p.add_argument(
        "--iou-threshold",
        type=unit_interval,
        default=0.5,
        help="discard boxes with IoU >= this with the pick",
    )
    p.add_argument("--out", help="also draw the boxes before and after into this PNG")
    p.set_defaults(handler=cmd_explain)
    p = what.add_parser(
        "yolo-target", parents=[common], help="the YOLO target y: grid cell, anchor, b_x..b_w"
    )
    p.add_argument(
        "--objects",
        help="'x1 y1 x2 y2 class; ...' in pixels, classes 1 pedestrian, 2 car, 3 motorcycle; "
        "'' for an image without objects (default: the slide's car, b_x 0.3, b_y 0.4, b_h 0.5, "
        "b_w 1.1)",
    )
    p.add_argument(
        "--image-size", type=positive_int, default=300, help="the square image's side in pixels"
    )
    p.add_argument("--grid", type=positive_int, default=3, help="S: an S x S grid")
    p.add_argument(
        "--anchors", help="'w h; w h' relative to the image (default: tall 0.1 0.3, wide 0.3 0.1)"
    )
    p.add_argument("--out", help="also draw the grid, the objects and the anchors into this PNG")
    p.set_defaults(handler=cmd_explain)
    rcnn.add_parser(what, common)  # the slides' "faster algorithms", after YOLO's target
    p = what.add_parser("scale", parents=[common], help="EfficientNet compound scaling")
    p.add_argument(
        "--phi",
        type=float,
        default=1.0,
        help="compound coefficient phi (default: 1, the slide's step 1: EfficientNet-B1)",
    )
    p.set_defaults(handler=cmd_explain)
    triplets.add_parser(what, common)  # the slides' "triplet loss", from the faces part


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """models and summary (:mod:`cnnlab.cli.zoo`), explain, and edges
    (:mod:`cnnlab.cli.edges`), in that order."""
    from cnnlab.cli import edges, zoo

    zoo.add_parsers(sub, common)
    _add_explain(sub, common)
    edges.add_parsers(sub, common)
