"""``cnnlab explain``: the slides' worked examples, computed by the real implementation.

Each ``explain_*`` function takes plain values, runs the functions of :mod:`cnnlab.ops` and
returns a JSON-ready dict; :func:`cnnlab.explain_render.render` prints that dict the way the
slides show it (input matrix, filter, output matrix and the output-size formula with the numbers
filled in).
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch
import torch.nn.functional as F

from cnnlab.errors import CnnlabError
from cnnlab.ops import conv_arith, cost, reference
from cnnlab.ops.filters import EDGE_FILTERS, edge_filter

Matrix = list[list[float]]

# What `cnnlab explain conv|pool|transpose|cost|iou` shows when given none of its numbers: the
# slide's own example, as the options that would ask for it, each with what it is in words
# (tests/slide_examples.py types the same numbers in from the slides, with the results they
# print; the IoU slide's picture has no numbers, so its boxes are two of `explain nms`'s).
# Options given on the command line keep their value.
SLIDE_EXAMPLES: dict[str, tuple[str, dict[str, tuple[Any, str]]]] = {
    "conv": (
        'the slide "Vertical edge detection"',
        {
            "input": (
                "3 0 1 2 7 4;1 5 8 9 3 1;2 7 2 5 1 3;0 1 3 1 7 8;4 2 1 6 2 8;2 4 5 2 3 9",
                "its 6x6 input",
            ),
            "filter": ("vertical", "its 3x3 vertical filter"),
        },
    ),
    "pool": (
        'the slide "Pooling layer: Max pooling"',
        {"input": ("1 3 2 1;2 9 1 1;1 3 2 3;5 6 1 2", "its 4x4 input")},
    ),
    "transpose": (
        'the slide "Why transpose convolution?"',
        {
            "input": ("122 148;126 134", "its 2x2 output"),
            "filter": ("1 4 1;1 4 3;3 3 1", "its 3x3 kernel"),
        },
    ),
    "cost": (
        'the slide "The problem of computational cost"',
        {
            "shape": ("28x28x192", "a 28x28x192 input"),
            "f": (5, "5x5 filters"),
            "filters": (32, "32 of them"),
            "bottleneck": (16, "against a 1x1 bottleneck of 16"),
        },
    ),
    "dense": (
        'the slide "Deep learning on large images"',
        {"shape": ("64x64x3,1000x1000x3", "its 64x64x3 and 1000x1000x3 images")},
    ),
    "iou": (
        "the IoU slide's picture",
        {
            "a": ("10 20 40 45", "a car's true box (a)"),
            "b": ("12 18 43 44", "a predicted box (b)"),
        },
    ),
}


def parse_matrix(text: str, what: str = "--input") -> torch.Tensor:
    """``"3 0 1; 1 5 8"`` -> a ``(rows, cols)`` float64 tensor. Rows are separated by ``;``,
    cells by spaces or commas. Ragged rows, non-numbers, NaN or infinity are a
    :class:`CnnlabError`."""
    rows = [r for r in (row.strip() for row in text.strip().strip(";").split(";"))]
    if not text.strip() or any(not r for r in rows):
        raise CnnlabError(f"{what}: empty matrix row in {text!r} (rows are separated by ';')")
    values: list[list[float]] = []
    for i, row in enumerate(rows):
        cells = [c for c in re.split(r"[\s,]+", row) if c]
        try:
            values.append([float(c) for c in cells])
        except ValueError:
            bad = next(c for c in cells if not _is_number(c))
            if re.fullmatch(r"\d+(x\d+)+", bad):  # a size where the numbers go (cost's form)
                raise CnnlabError(
                    f"{what} {bad!r}: give the matrix's numbers, rows separated by ';' (e.g. "
                    f"'3 0 1;1 5 8;2 7 2'); for shapes alone, --n {bad.split('x')[0]}"
                ) from None
            raise CnnlabError(f"{what}: row {i + 1} has {bad!r}, which is not a number") from None
        if not all(math.isfinite(v) for v in values[-1]):  # "nan", "inf", "1e999"
            bad = next(c for c, v in zip(cells, values[-1], strict=True) if not math.isfinite(v))
            raise CnnlabError(f"{what}: row {i + 1} has {bad!r}; give finite numbers")
    widths = {len(r) for r in values}
    if len(widths) != 1:
        lengths = ", ".join(str(len(r)) for r in values)
        raise CnnlabError(
            f"{what}: rows have different lengths ({lengths}); a matrix must be rectangular"
        )
    return torch.tensor(values, dtype=torch.float64)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def resolve_filter(text: str) -> tuple[torch.Tensor, str]:
    """A named edge filter (``vertical``, ``sobel``...) or a matrix typed on the command line."""
    if text.strip() in EDGE_FILTERS:
        return edge_filter(text.strip(), torch.float64), text.strip()
    if re.fullmatch(r"[A-Za-z_]+", text.strip()):
        raise CnnlabError(
            f"--filter: unknown filter {text!r}; named filters: "
            f"{', '.join(EDGE_FILTERS)}, or give a matrix like '1 0 -1;1 0 -1'"
        )
    return parse_matrix(text, "--filter"), "custom"


def _plain(t: torch.Tensor) -> Matrix:
    return [[plain_number(v) for v in row] for row in t.tolist()]


def plain_number(v: float) -> float | int:
    """An int where the value is whole (the slides print 3, not 3.0), else rounded to 6 places."""
    return int(v) if float(v).is_integer() else round(float(v), 6)


def _size_formula(n: int, f: int, p: int, s: int) -> str:
    out = conv_arith.conv_output_size(n, f, p, s)
    return f"floor(({n} + 2*{p} - {f}) / {s}) + 1 = {out}"


def explain_conv(
    input_matrix: torch.Tensor | None = None,
    filter_matrix: torch.Tensor | None = None,
    filter_name: str = "custom",
    n: int | None = None,
    f: int | None = None,
    p: int | str = 0,
    s: int = 1,
    channels: int = 1,
    filters: int = 1,
) -> dict:
    """A convolution: with matrices, compute it; without, explain the shapes of one layer."""
    if input_matrix is None:
        if n is None or f is None:
            raise CnnlabError("give --input and --filter matrices, or --n and --f for shapes")
        for name, v in (("--channels", channels), ("--filters", filters)):
            if v < 1:
                raise CnnlabError(f"{name} must be >= 1, got {v}")
        pad = conv_arith.resolve_padding(p, f)
        out = conv_arith.conv_output_size(n, f, pad, s)
        params = (f * f * channels + 1) * filters
        return {
            "kind": "conv",
            "mode": "shapes",
            "n": n,
            "f": f,
            "p": pad,
            "s": s,
            "channels": channels,
            "filters": filters,
            "input_shape": [n, n, channels],
            "filter_shape": [f, f, channels],
            "output_shape": [out, out, filters],
            "formula": _size_formula(n, f, pad, s),
            "parameters": params,
            "parameters_formula": f"({f}*{f}*{channels} + 1) * {filters}",
            "macs": out * out * filters * f * f * channels,
        }
    if filter_matrix is None:
        raise CnnlabError("--filter is needed with --input (a matrix or a name such as vertical)")
    kh, kw = filter_matrix.shape
    if kh != kw and isinstance(p, str) and p == "same":
        raise CnnlabError("'same' padding needs a square filter here")
    pad = conv_arith.resolve_padding(p, kh)
    h, w = input_matrix.shape
    formulas = [_size_formula(h, kh, pad, s), _size_formula(w, kw, pad, s)]
    out = reference.conv2d(
        input_matrix[None, None], filter_matrix[None, None], stride=s, padding=pad
    )[0, 0]
    padded = F.pad(input_matrix, (pad,) * 4)
    window = padded[:kh, :kw]
    terms = " + ".join(
        f"{plain_number(a)}*{plain_number(b)}"
        for a, b in zip(window.flatten().tolist(), filter_matrix.flatten().tolist(), strict=True)
    )
    return {
        "kind": "conv",
        "mode": "matrix",
        "p": pad,
        "s": s,
        "filter_name": filter_name,
        "input": _plain(input_matrix),
        "padded_input": _plain(padded),
        "filter": _plain(filter_matrix),
        "output": _plain(out),
        "input_shape": [h, w],
        "output_shape": list(out.shape),
        "formula": formulas,
        "first_cell": f"{terms} = {plain_number(out[0, 0].item())}",
    }


def explain_pool(
    input_matrix: torch.Tensor | None = None,
    f: int = 2,
    s: int | None = None,
    mode: str = "max",
    p: int = 0,
    n: int | None = None,
    channels: int = 1,
) -> dict:
    """Max or average pooling of a matrix, or the shapes of a pooling layer."""
    if mode not in ("max", "avg"):
        raise CnnlabError(f"--mode must be max or avg, got {mode!r}")
    stride = f if s is None else s
    if input_matrix is None:
        if n is None:
            raise CnnlabError("give --input (a matrix) or --n (a size) to explain pooling")
        out = conv_arith.pool_output_size(n, f, stride, p)
        return {
            "kind": "pool",
            "mode": mode,
            "f": f,
            "s": stride,
            "p": p,
            "input_shape": [n, n, channels],
            "output_shape": [out, out, channels],
            "formula": _size_formula(n, f, p, stride),
            "parameters": 0,
        }
    pool = reference.max_pool if mode == "max" else reference.avg_pool
    out = pool(input_matrix[None, None], f, stride, p)[0, 0]
    h, w = input_matrix.shape
    return {
        "kind": "pool",
        "mode": mode,
        "f": f,
        "s": stride,
        "p": p,
        "input": _plain(input_matrix),
        "output": _plain(out),
        "input_shape": [h, w],
        "output_shape": list(out.shape),
        "formula": [_size_formula(h, f, p, stride), _size_formula(w, f, p, stride)],
        "parameters": 0,
    }


def explain_transpose(
    input_matrix: torch.Tensor | None = None,
    filter_matrix: torch.Tensor | None = None,
    s: int = 1,
    p: int = 0,
    n: int | None = None,
    f: int | None = None,
) -> dict:
    """A transposed convolution by both of the slides' methods, checked against PyTorch."""
    if input_matrix is None:
        if n is None or f is None:
            raise CnnlabError("give --input and --filter matrices, or --n and --f for shapes")
        out = conv_arith.transposed_output_size(n, f, s, p)
        return {
            "kind": "transpose",
            "mode": "shapes",
            "n": n,
            "f": f,
            "s": s,
            "p": p,
            "output_shape": [out, out],
            "formula": f"({n} - 1)*{s} + {f} - 2*{p} = {out}",
            "zero_insertions": s - 1,
            "padding_after_insertion": f - p - 1,
        }
    if filter_matrix is None:
        raise CnnlabError("--filter is needed with --input")
    k = filter_matrix.shape[0]
    if filter_matrix.shape[0] != filter_matrix.shape[1]:
        raise CnnlabError("--filter must be square for a transposed convolution here")
    x, w = input_matrix[None, None], filter_matrix[None, None]
    by_zeros = reference.conv_transpose_zero_insertion(x, w, stride=s, padding=p)[0, 0]
    by_matrix = reference.conv_transpose_matrix(x, w, stride=s, padding=p)[0, 0]
    torch_out = F.conv_transpose2d(x, w, stride=s, padding=p)[0, 0]
    h, wd = input_matrix.shape
    inserted = reference.insert_zeros(x, (s, s))[0, 0]
    # k - p - 1 < 0 (p > k - 1, which PyTorch allows): F.pad's negative padding crops.
    padded = F.pad(inserted, (k - p - 1,) * 4)
    out_h, out_w = by_zeros.shape
    matrix = reference.conv_matrix(filter_matrix, (out_h, out_w), s, p)
    return {
        "kind": "transpose",
        "mode": "matrix",
        "s": s,
        "p": p,
        "input": _plain(input_matrix),
        "filter": _plain(filter_matrix),
        "zero_inserted": _plain(inserted),
        "zero_inserted_padded": _plain(padded),
        "padding_after_insertion": k - p - 1,
        "flipped_filter": _plain(filter_matrix.flip(0, 1)),
        "conv_matrix_shape": list(matrix.shape),
        "conv_matrix": _plain(matrix) if matrix.numel() <= 400 else None,
        "output": _plain(by_zeros),
        "output_shape": [out_h, out_w],
        "formula": [
            f"({h} - 1)*{s} + {k} - 2*{p} = {out_h}",
            f"({wd} - 1)*{s} + {k} - 2*{p} = {out_w}",
        ],
        "methods_agree": bool(
            torch.allclose(by_zeros, by_matrix) and torch.allclose(by_zeros, torch_out)
        ),
    }


def parse_shape(text: str, square: bool = True) -> tuple[int, int, int]:
    """``"28x28x192"`` -> ``(28, 28, 192)`` (height x width x channels, as on the slides);
    ``square``: height and width must agree (the cost comparisons)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not m:
        raise CnnlabError(f"--input {text!r}: expected HxWxC such as 6x6x3")
    h, w, c = (int(g) for g in m.groups())
    if min(h, w, c) < 1:
        raise CnnlabError(f"--input {text!r}: every size must be >= 1")
    if square and h != w:
        raise CnnlabError(f"--input {text!r}: cost comparisons need a square input")
    return h, w, c


def explain_dense(shapes: list[tuple[int, int, int]], units: int, f: int) -> dict:
    """Slide "Deep learning on large images": for each ``H x W x C`` image, a fully connected
    layer of ``units`` units (``W^[1]`` is ``(units, H * W * C)``) against a convolutional layer
    of ``units`` ``f x f x C`` filters, whose parameters do not grow with the image."""
    if units < 1 or f < 1:
        raise CnnlabError(f"--units and --f must be >= 1, got {units} and {f}")
    rows = []
    for shape in shapes:
        dense = cost.DenseLayer(shape, units)
        conv = cost.conv_parameters(f, shape[2], units)
        rows.append(
            {
                "input_shape": list(shape),
                "inputs": dense.inputs,
                "inputs_formula": " * ".join(map(str, shape)) + f" = {dense.inputs:,}",
                "weight_shape": [units, dense.inputs],
                "dense_parameters": dense.parameters,
                "dense_megabytes_fp32": 4 * dense.parameters / 1e6,
                "conv_parameters": conv,
                "conv_formula": f"{units} * ({f}*{f}*{shape[2]} + 1) = {conv:,}",
            }
        )
    return {"kind": "dense", "units": units, "f": f, "rows": rows}


def explain_cost(
    input_shape: tuple[int, int, int],
    f: int,
    filters: int,
    *,
    separable: bool = False,
    bottleneck: int | None = None,
    expansion: int | None = None,
    p: int | str | None = None,
    s: int = 1,
) -> dict:
    """The slides' cost comparisons; with no option, the cost of the one convolution."""
    n, _, c = input_shape
    chosen = sum([separable, bottleneck is not None, expansion is not None])
    if chosen > 1:
        raise CnnlabError("choose one of --separable, --bottleneck and --expansion")
    for name, v in (
        ("--f", f),
        ("--filters", filters),
        ("--bottleneck", bottleneck or 1),
        ("--expansion", expansion or 1),
    ):
        if v < 1:
            raise CnnlabError(f"{name} must be >= 1, got {v}")
    if bottleneck is not None:
        result = cost.bottleneck_cost(n, f, c, filters, bottleneck, "same" if p is None else p, s)
    elif expansion is not None:
        result = cost.inverted_residual_cost(
            n, f, c, filters, expansion, "same" if p is None else p, s
        )
    elif separable:
        result = cost.separable_cost(n, f, c, filters, 0 if p is None else p, s)
    else:
        term = cost.conv_cost("conv", n, f, c, filters, 0 if p is None else p, s)
        return {
            "kind": "cost",
            "title": "one convolution",
            "baseline": [
                {
                    "name": term.name,
                    "macs": term.macs,
                    "formula": term.formula,
                    "output_shape": list(term.output_shape),
                }
            ],
            "baseline_macs": term.macs,
            "flops": 2 * term.macs,
        }
    return {"kind": "cost"} | result.to_dict()


def explain_scale(phi: float) -> dict:
    """EfficientNet's compound scaling (equation 3) for ``phi``, beside the released variants."""
    from cnnlab.models.efficientnet import (
        ALPHA,
        BETA,
        EFFICIENTNET_VARIANTS,
        GAMMA,
        compound_scaling,
    )

    if not 0 <= phi <= 10:
        raise CnnlabError(f"--phi must be between 0 and 10, got {phi}")
    rule = compound_scaling(phi)
    released = {
        k: {"width": v.width, "depth": v.depth, "resolution": v.resolution}
        for k, v in EFFICIENTNET_VARIANTS.items()
    }
    closest = f"b{min(max(round(phi), 0), 7)}"
    return {
        "kind": "scale",
        "phi": phi,
        "alpha": ALPHA,
        "beta": BETA,
        "gamma": GAMMA,
        "constraint": ALPHA * BETA**2 * GAMMA**2,
        "depth": rule.depth,
        "width": rule.width,
        "resolution": rule.resolution,
        "flops_factor": (ALPHA * BETA**2 * GAMMA**2) ** phi,
        "formula": f"d = {ALPHA}^{phi:g} = {rule.depth:.3f}, w = {BETA}^{phi:g} = "
        f"{rule.width:.3f}, r = 224 * {GAMMA}^{phi:g} = {rule.resolution}",
        "released": released,
        "compare_with": closest,
    }
