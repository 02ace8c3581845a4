"""Seeing what a network learned (Zeiler & Fergus, 2014; slides "Visualizing what a deep network
is learning" and "Visualizing deep layers: Layer 1..5").

* :func:`layer_geometry`: every convolution and pooling layer in execution order with its
  receptive field: ``size r``, ``jump j`` (input pixels between neighbouring units) and ``start``
  (input coordinate of unit 0's field centre): ``r_l = r + (k_eff - 1) j``,
  ``start_l = start + ((k_eff - 1)/2 - p) j``, ``j_l = j s``, followed along every branch
  (residual sums, Inception's concatenations, squeeze-and-excitation gates:
  :mod:`cnnlab.engine.fields`).
* :func:`top_patches`: for a unit (a channel of a layer), the nine dataset patches with the
  largest activation, each cropped to that unit's exact receptive field.
* first-layer filters as images, and one image's activation maps through the network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.engine.device import model_device


@dataclass(frozen=True)
class LayerGeometry:
    """A conv/pool layer and the receptive field of its output units."""

    name: str
    kind: str
    kernel: int
    stride: int
    padding: int
    dilation: int
    rf: int  # receptive field size in input pixels
    jump: float  # input pixels between neighbouring output units (a fraction after upsampling)
    start: float  # input coordinate of the centre of unit 0's field
    channels: int
    size: int  # output height
    whole: bool = False  # each unit also sees the whole image (after a global pool's gate)

    def field(self, i: int) -> tuple[int, int]:
        """``[lo, hi)`` input rows (or columns) seen by output unit ``i``."""
        centre = self.start + i * self.jump
        lo = math.floor(centre - (self.rf - 1) / 2 + 0.5)
        return lo, lo + self.rf

    def centre_field(self, height: int, width: int) -> tuple[int, int, int, int]:
        """``(top, left, bottom, right)`` input pixels (end exclusive) seen by the unit whose
        field centre is nearest the centre of a ``height x width`` input, down and across
        (square kernels and strides: ``start`` and ``jump`` serve both axes)."""
        top, bottom = self.field(round(((height - 1) / 2 - self.start) / self.jump))
        left, right = self.field(round(((width - 1) / 2 - self.start) / self.jump))
        return top, left, bottom, right


def _first(v: int | tuple[int, ...]) -> int:
    return v if isinstance(v, int) else v[0]


def layer_geometry(model: nn.Module, input_size: tuple[int, ...]) -> list[LayerGeometry]:
    """Trace ``model`` on a zero input; each convolution and pooling layer's receptive field as
    :class:`~cnnlab.engine.fields.FieldTracker` follows it (module docstring). A layer whose
    input is no longer an image-shaped map (after flattening) is left out."""
    from cnnlab.engine.fields import FieldTracker

    calls: list[tuple[str, nn.Module, torch.Tensor]] = []
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
            handles.append(
                m.register_forward_hook(lambda mod, a, o, name=name: calls.append((name, mod, o)))
            )
    was = model.training
    model.eval()
    weight = next(model.parameters(), None)  # a model in float64 takes float64
    dtype = weight.dtype if weight is not None and weight.is_floating_point() else None
    x = torch.zeros(1, *input_size, device=model_device(model), dtype=dtype)
    tracker = FieldTracker(x)
    try:
        with torch.no_grad(), tracker:
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    out = []
    for name, m, o in calls:
        f = tracker.field(o)
        if f is None:
            continue
        k, s = _first(m.kernel_size), _first(m.stride)
        p, d = _first(m.padding), _first(getattr(m, "dilation", 1))
        jump = int(f.jump) if float(f.jump).is_integer() else f.jump
        out.append(
            LayerGeometry(
                name,
                type(m).__name__,
                k,
                s,
                p,
                d,
                math.ceil(f.rf - 1e-9),
                jump,
                f.start,
                o.shape[1],
                o.shape[2],
                f.whole,
            )
        )
    return out


@dataclass(frozen=True)
class Strongest:
    """Per image and channel of one layer, the strongest activation and where it is:
    ``value``, ``row``, ``col``, each ``(N, C)``."""

    value: torch.Tensor
    row: torch.Tensor
    col: torch.Tensor


@torch.no_grad()
def strongest_units(
    model: nn.Module, layers: list[str], images: torch.Tensor, batch_size: int = 256
) -> dict[str, Strongest]:
    """One pass of ``images (N, C, H, W)`` through ``model``: each named layer's strongest
    activation per image and channel (:class:`Strongest`), from which :func:`top_patches` picks
    any unit's patches without running the model again."""
    modules = dict(model.named_modules())
    found: dict[str, list[tuple[torch.Tensor, torch.Tensor, int]]] = {n: [] for n in layers}

    def grab(name: str, out: torch.Tensor) -> None:
        value, index = out.flatten(2).max(2)  # (b, C) over the h x w positions
        found[name].append((value.cpu(), index.cpu(), out.shape[-1]))

    handles = [modules[n].register_forward_hook(lambda m, a, o, n=n: grab(n, o)) for n in layers]
    model.eval()
    device = model_device(model)
    try:
        for start in range(0, len(images), batch_size):
            model(images[start : start + batch_size].to(device))
    finally:
        for h in handles:
            h.remove()
    result = {}
    for name, parts in found.items():
        value = torch.cat([v for v, _, _ in parts])
        index = torch.cat([i for _, i, _ in parts])
        width = parts[0][2]
        result[name] = Strongest(value, index // width, index % width)
    return result


def top_patches(
    model: nn.Module,
    layer: str,
    unit: int,
    images: torch.Tensor,
    geometry: LayerGeometry,
    k: int = 9,
    batch_size: int = 256,
    strongest: Strongest | None = None,
) -> tuple[torch.Tensor, list[tuple[int, int, int]]]:
    """The ``k`` patches of ``images (N, C, H, W)`` (model-ready) that most excite channel
    ``unit`` of ``layer``: ``(k, C, rf, rf)`` crops (zero outside the image) and their
    ``(image, row, col)`` unit positions, strongest first. One patch per image at most, as in
    Zeiler & Fergus's figures. ``strongest``: the layer's :func:`strongest_units`, when one
    pass has found them for many units."""
    if strongest is None:
        strongest = strongest_units(model, [layer], images, batch_size)[layer]
    order = strongest.value[:, unit].argsort(descending=True)[:k].tolist()
    where = [(n, int(strongest.row[n, unit]), int(strongest.col[n, unit])) for n in order]
    fields = [(geometry.field(row), geometry.field(col)) for _, row, col in where]
    # zeros wide enough for every field: a field reaches past the image by up to rf at the
    # borders, and further where the model pads its input (the padded U-Net, to 2^depth)
    h, w = images.shape[-2:]
    top = max(0, *(-y0 for (y0, _), _ in fields))
    left = max(0, *(-x0 for _, (x0, _) in fields))
    bottom = max(0, *(y1 - h for (_, y1), _ in fields))
    right = max(0, *(x1 - w for _, (_, x1) in fields))
    padded = F.pad(images[order], (left, right, top, bottom))
    crops = [
        padded[i, :, y0 + top : y1 + top, x0 + left : x1 + left]
        for i, ((y0, y1), (x0, x1)) in enumerate(fields)
    ]
    return torch.stack(crops), where


def plot_patch_grid(
    rows: list[tuple[str, list[torch.Tensor]]], path: str | Path, title: str = ""
) -> Path:
    """``rows``: per layer, a list of ``(9, C, r, r)`` patch stacks (one per unit), drawn as
    3x3 mosaics side by side like the slides."""
    from cnnlab.viz.plots import plt, save_figure

    units = max(len(u) for _, u in rows)
    fig, axes = plt.subplots(
        len(rows), units, figsize=(1.8 * units, 1.9 * len(rows)), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for r, (name, stacks) in enumerate(rows):
        for u, stack in enumerate(stacks):
            mosaic = _mosaic(stack)
            ax = axes[r][u]
            ax.imshow(mosaic, cmap="gray" if mosaic.ndim == 2 else None)
            if u == 0:
                ax.set_title(name, fontsize=7, loc="left")
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path, dpi=110)


def _mosaic(stack: torch.Tensor) -> np.ndarray:
    """``(n, C, r, r)`` -> a 3x3 (or smaller) grid image, each patch min-max scaled."""
    n, c, r, _ = stack.shape
    side = math.ceil(math.sqrt(n))
    grid = torch.ones(c, side * (r + 1) - 1, side * (r + 1) - 1)
    for i, p in enumerate(stack):
        lo, hi = p.min(), p.max()
        p = (p - lo) / (hi - lo + 1e-8)
        y, x = divmod(i, side)
        grid[:, y * (r + 1) : y * (r + 1) + r, x * (r + 1) : x * (r + 1) + r] = p
    arr = grid.permute(1, 2, 0).numpy()
    return arr[..., 0] if c == 1 else arr[..., :3]


def first_layer_filters(model: nn.Module) -> torch.Tensor:
    """The first convolution's weights ``(out, in, k, k)``."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.weight.detach().cpu()
    raise ValueError("the model has no Conv2d layer")


@torch.no_grad()
def activation_maps(
    model: nn.Module, image: torch.Tensor, max_channels: int = 8
) -> list[tuple[str, torch.Tensor]]:
    """One image's output of every Conv2d, first ``max_channels`` channels each."""
    maps: list[tuple[str, torch.Tensor]] = []
    handles = [
        m.register_forward_hook(
            lambda mod, a, o, name=name: maps.append((name, o[0, :max_channels].cpu()))
        )
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d)
    ]
    model.eval()
    try:
        model(image[None].to(model_device(model)))
    finally:
        for h in handles:
            h.remove()
    return maps


def plot_receptive_fields(
    geometry: list[LayerGeometry], input_size: tuple[int, ...], path: str | Path
) -> Path:
    """The input pixels each layer's centre unit sees, one square a layer (at most 12, evenly
    spread over the depth), over a photo at the input's size: deeper units see more (dashed
    where a field runs past the image, into the padding)."""
    from matplotlib.patches import Rectangle
    from skimage import data as samples
    from skimage.color import rgb2gray
    from skimage.transform import resize

    from cnnlab.viz.plots import plt, save_figure

    h, w = input_size[-2:]
    fig, (ax, key) = plt.subplots(2, 1, figsize=(6, 7), height_ratios=(6, 1))
    ax.imshow(resize(rgb2gray(samples.astronaut()), (h, w)), cmap="gray", alpha=0.6)
    shown = geometry
    if len(geometry) > 12:
        shown = [geometry[round(i)] for i in np.linspace(0, len(geometry) - 1, 12)]
    colours = plt.get_cmap("viridis")
    corners = [(0, 0, h, w)]  # (top, left, bottom, right) of the image and of every field
    for i, g in enumerate(shown):
        top, left, bottom, right = g.centre_field(h, w)
        inside = top >= 0 and left >= 0 and bottom <= h and right <= w
        corners.append((top, left, bottom, right))
        ax.add_patch(
            Rectangle(
                (left - 0.5, top - 0.5),
                right - left,
                bottom - top,
                fill=False,
                lw=2,
                ls="-" if inside else "--",
                ec=colours(i / max(1, len(shown) - 1)),
                label=f"{g.name}: {g.rf} px" + (" + the image" if g.whole else ""),
            )
        )
    top, left = min(c[0] for c in corners), min(c[1] for c in corners)
    bottom, right = max(c[2] for c in corners), max(c[3] for c in corners)
    ax.set(xlim=(left - 2.5, right + 1.5), ylim=(bottom + 1.5, top - 2.5), xticks=[], yticks=[])
    key.axis("off")  # the legend in an axes of its own, so the layout leaves room for it
    key.legend(*ax.get_legend_handles_labels(), fontsize=7, loc="center", ncol=3)
    ax.set_title(f"receptive field of each layer's centre unit ({h}x{w} input)", fontsize=10)
    return save_figure(fig, path)
