"""How ``cnnlab explain`` prints its results: :func:`render` lays out an ``explain_*`` dict
(:mod:`cnnlab.explain`) the way the slides show it: input matrix, filter and output matrix side
by side, the first output cell worked out, and the output-size formula with the numbers filled
in; the cost, dense-layer and scaling comparisons as tables.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

from cnnlab.explain import Matrix


def matrix_table(title: str, rows: Matrix) -> Table:
    # as wide as the title's longest word: rich wraps a title, but cuts a word ("ou…" above a
    # 1x1 output)
    widest = max(len(word) for word in title.split())
    table = Table(title=title, show_header=False, box=None, padding=(0, 1), min_width=widest)
    for _ in rows[0]:
        table.add_column(justify="right")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    return table


def _side_by_side(*cells: Any) -> Table:
    grid = Table.grid(padding=(0, 2))
    for _ in cells:
        grid.add_column(vertical="middle")
    grid.add_row(*cells)
    return grid


def _formula_lines(result: dict[str, Any]) -> list[str]:
    formula = result.get("formula")
    if formula is None:
        return []
    return formula if isinstance(formula, list) else [formula]


def render(result: dict[str, Any], console: Console) -> None:
    """Print an ``explain_*`` result as the slides lay it out."""
    kind = result["kind"]
    if kind == "scale":
        _render_scale(result, console)
        return
    if kind == "cost":
        _render_cost(result, console)
        return
    if kind == "dense":
        _render_dense(result, console)
        return
    if result.get("mode") == "shapes" or "input" not in result:
        lines = [f"{k}: {v}" for k, v in result.items() if k not in ("kind", "mode")]
        console.print(Panel("\n".join(lines), title=f"{kind}: shapes"))
        return
    parts: list[Any] = []
    if kind == "conv":
        padded = f"input (padded, p={result['p']})" if result["p"] else "input"
        shown = "padded_input" if result["p"] else "input"
        parts += [
            _side_by_side(
                matrix_table(padded, result[shown]),
                "*",
                matrix_table(f"filter ({result['filter_name']})", result["filter"]),
                "=",
                matrix_table(f"output (s={result['s']})", result["output"]),
            ),
            f"first cell: {result['first_cell']}",
        ]
    elif kind == "pool":
        parts.append(
            _side_by_side(
                matrix_table("input", result["input"]),
                f"{result['mode']} pool\nf={result['f']} s={result['s']}",
                matrix_table("output", result["output"]),
            )
        )
    else:
        parts += [
            matrix_table("input", result["input"]),
            matrix_table("filter", result["filter"]),
            f"(a) insert s-1 = {result['s'] - 1} zeros between pixels, {_pad_or_crop(result)}, "
            "convolve with the flipped filter at stride 1:",
            matrix_table(
                "zero-inserted and "
                + ("padded" if result["padding_after_insertion"] >= 0 else "cropped")
                + " input",
                result["zero_inserted_padded"],
            ),
            matrix_table("flipped filter", result["flipped_filter"]),
            f"(b) convolution matrix C of shape {result['conv_matrix_shape']}; output = C^T x",
        ]
        if result["conv_matrix"] is not None:
            parts.append(matrix_table("convolution matrix C", result["conv_matrix"]))
        parts += [
            matrix_table("output", result["output"]),
            f"both methods equal F.conv_transpose2d: {result['methods_agree']}",
        ]
    parts += [f"output size: {line}" for line in dict.fromkeys(_formula_lines(result))]
    console.print(Panel(Group(*parts), title=f"explain {kind}"))


def _pad_or_crop(result: dict[str, Any]) -> str:
    """Step (a)'s border: pad ``k - p - 1`` zeros, or crop ``p - k + 1`` pixels when p > k - 1."""
    border = result["padding_after_insertion"]
    if border >= 0:
        return f"pad k-p-1 = {border}"
    return f"crop p-k+1 = {-border} (k-p-1 < 0)"


def _render_cost(result: dict[str, Any], console: Console) -> None:
    table = Table(title=result["title"])
    for col in ("", "operation", "output (H, W, C)", "positions * filters * filter params", "MACs"):
        table.add_column(col, justify="right" if col == "MACs" else "left")
    for side in ("baseline", "alternative"):
        for term in result.get(side, []):
            table.add_row(
                side,
                term["name"],
                "x".join(map(str, term["output_shape"])),
                term["formula"],
                f"{term['macs']:,}",
            )
    console.print(table)
    console.print(f"baseline: {result['baseline_macs']:,} MACs")
    if "alternative_macs" in result:
        console.print(
            f"alternative: {result['alternative_macs']:,} MACs; ratio {result['ratio']:.4f}"
        )
    for note in result.get("notes", []):
        console.print(note)


def _render_dense(result: dict[str, Any], console: Console) -> None:
    units, f = result["units"], result["f"]
    table = Table(title=f"a first layer of {units:,} units on the whole image")
    for col in ("image", "n_x", "W^[1]", "parameters", "fp32", "conv"):
        table.add_column(col, justify="left" if col == "image" else "right", no_wrap=True)
    for r in result["rows"]:
        table.add_row(
            "x".join(map(str, r["input_shape"])),
            f"{r['inputs']:,}",
            f"({r['weight_shape'][0]}, {r['weight_shape'][1]})",
            f"{r['dense_parameters']:,}",
            _megabytes(r["dense_megabytes_fp32"]),
            f"{r['conv_parameters']:,}",
        )
    console.print(table)
    console.print(
        f"n_x = H*W*C inputs; W^[1] is (n^[1], n_x), plus {units:,} biases. conv: a layer of "
        f"{units:,} filters of {f}x{f}, each sharing its weights across every position: "
        f"{result['rows'][-1]['conv_formula']} parameters, whatever the image's size"
    )


def _megabytes(mb: float) -> str:
    return f"{mb / 1000:,.1f} GB" if mb >= 1000 else f"{mb:,.1f} MB"


def _render_scale(result: dict[str, Any], console: Console) -> None:
    console.print(
        f"alpha * beta^2 * gamma^2 = {result['constraint']:.3f} (~2); FLOPs grow by "
        f"{result['flops_factor']:.2f}x at phi = {result['phi']:g}"
    )
    console.print(result["formula"])
    table = Table(title="rule vs released EfficientNets")
    for col in ("variant", "width", "depth", "resolution"):
        table.add_column(col, justify="right")
    table.add_row(
        f"rule, phi={result['phi']:g}",
        f"{result['width']:.3f}",
        f"{result['depth']:.3f}",
        str(result["resolution"]),
        style="bold",
    )
    for name, v in result["released"].items():
        style = "cyan" if name == result["compare_with"] else None
        table.add_row(
            name.upper(), f"{v['width']}", f"{v['depth']}", str(v["resolution"]), style=style
        )
    console.print(table)
