"""Occlusion sensitivity: where in an image a classifier looks (Zeiler & Fergus, 2014, section
4.2 and figure 7, the paper behind the slide "Visualizing what a deep network is learning").

A grey square is slid over the image and, at every position, the classifier's probability of
the class is recorded: where it falls, the network was using what the square hides. Grey is the
training images' mean colour, which standardisation makes 0, so the square is filled with 0 in
the standardised input.

The square's positions obey the slides' convolution arithmetic with p = 0: an f x f square moved
by s pixels over an n x m image stands at ``(floor((n - f)/s) + 1) x (floor((m - f)/s) + 1)``
places (:func:`cnnlab.ops.conv_arith.conv_output_size`), its top-left corner at ``(i s, j s)``.

Vectorised: the occluded copies are one batch, ``x * (1 - mask) + fill * mask`` with the masks
``(N, H, W)`` made by comparing row and column indices with each window's span, run in chunks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from cnnlab.engine.device import model_device
from cnnlab.errors import CnnlabError
from cnnlab.ops.conv_arith import conv_output_size


@dataclass(frozen=True)
class OcclusionMap:
    """The classifier's answers with the square at every position ``(i, j)`` of the grid."""

    probability: torch.Tensor  # (ny, nx) p(target | the image with the square at (i, j))
    top_class: torch.Tensor  # (ny, nx) the most probable class with the square there
    base_probability: float  # p(target | the whole image)
    base_class: int  # the most probable class of the whole image
    target: int
    patch: int
    stride: int

    def window(self, i: int, j: int) -> tuple[int, int, int, int]:
        """``(top, left, bottom, right)`` pixels hidden at grid position ``(i, j)``, end
        exclusive."""
        y, x = i * self.stride, j * self.stride
        return y, x, y + self.patch, x + self.patch

    def most_sensitive(self) -> tuple[int, int]:
        """The grid position where hiding the square lowers ``p(target)`` the most."""
        flat = int(self.probability.argmin())
        return divmod(flat, self.probability.shape[1])


def occlusion_grid(height: int, width: int, patch: int, stride: int) -> tuple[int, int]:
    """``(ny, nx)``: the square's positions down and across (slides: ``floor((n - f)/s) + 1``);
    a square larger than the image is an error naming both."""
    if patch > min(height, width):
        raise CnnlabError(
            f"occluding square of {patch} px is larger than the {height}x{width} image"
        )
    return conv_output_size(height, patch, 0, stride), conv_output_size(width, patch, 0, stride)


def occlusion_masks(
    height: int, width: int, patch: int, stride: int, positions: torch.Tensor | None = None
) -> torch.Tensor:
    """``(P, H, W)`` bool, True where the square hides the image, for the grid ``positions``
    ``(P,)`` numbered row by row (default: all ``ny * nx``; a chunk keeps a fine grid over a
    large image from holding every mask at once)."""
    ny, nx = occlusion_grid(height, width, patch, stride)
    rows, cols = torch.arange(height), torch.arange(width)
    top, left = torch.arange(ny) * stride, torch.arange(nx) * stride
    in_rows = (rows[None] >= top[:, None]) & (rows[None] < top[:, None] + patch)  # (ny, H)
    in_cols = (cols[None] >= left[:, None]) & (cols[None] < left[:, None] + patch)  # (nx, W)
    k = torch.arange(ny * nx) if positions is None else positions
    return in_rows[k // nx][:, :, None] & in_cols[k % nx][:, None, :]


@torch.no_grad()
def occlusion_map(
    model: nn.Module,
    image: torch.Tensor,
    patch: int,
    stride: int,
    target: int | None = None,
    fill: float = 0.0,
    batch_size: int = 64,
    on_batch: Callable[[int], None] | None = None,
) -> OcclusionMap:
    """Slide a ``patch`` x ``patch`` square of value ``fill`` over the standardised ``image``
    ``(C, H, W)`` in steps of ``stride`` and record the softmax of ``model``'s logits
    ``(1, K)`` at each position. ``target``: the class whose probability is mapped (default:
    the class the model gives the whole image). ``on_batch(n)`` is told after each chunk of
    ``n`` occluded copies (a progress bar)."""
    model.eval()
    device = model_device(model)
    image = image.to(device)
    _, height, width = image.shape
    ny, nx = occlusion_grid(height, width, patch, stride)
    base = model(image[None]).float().softmax(-1)[0]
    base_class = int(base.argmax())
    target = base_class if target is None else target
    if not 0 <= target < len(base):
        raise CnnlabError(f"class {target}: the model has classes 0 to {len(base) - 1}")
    probs, tops = [], []
    for positions in torch.arange(ny * nx).split(batch_size):
        chunk = occlusion_masks(height, width, patch, stride, positions).to(device)
        hidden = chunk[:, None].to(image.dtype)  # (n, 1, H, W), broadcast over channels
        p = model(image[None] * (1 - hidden) + fill * hidden).float().softmax(-1)
        probs.append(p[:, target].cpu())
        tops.append(p.argmax(-1).cpu())
        if on_batch is not None:
            on_batch(len(chunk))
    return OcclusionMap(
        probability=torch.cat(probs).reshape(ny, nx),
        top_class=torch.cat(tops).reshape(ny, nx),
        base_probability=float(base[target]),
        base_class=base_class,
        target=target,
        patch=patch,
        stride=stride,
    )


def default_patch(size: int, patch: int | None = None) -> tuple[int, int]:
    """``(patch, stride)`` for a ``size`` px image: by default a square a quarter of its side;
    moved by a quarter of its own side (13 x 13 positions when the side is a multiple of 16)."""
    patch = patch or max(1, size // 4)
    return patch, max(1, patch // 4)


def _shown(image: torch.Tensor) -> np.ndarray:
    """A standardised ``(C, H, W)`` image stretched to [0, 1] for display, ``(H, W)`` or
    ``(H, W, 3)``."""
    x = image.detach().float().cpu()
    x = (x - x.min()) / (x.max() - x.min()).clamp_min(1e-12)
    return (x[0] if x.shape[0] == 1 else x[:3].permute(1, 2, 0)).numpy()


MIN_SPAN = 0.1  # the narrowest probability range a map's colours stretch over


def colour_range(m: OcclusionMap) -> tuple[float, float]:
    """The probabilities a map's colour scale spans: from its lowest to the higher of its
    highest and the whole image's, widened to at least :data:`MIN_SPAN` within [0, 1]. On a
    fixed 0-1 scale a classifier whose answer moves from 0.61 to 0.57 drew one flat colour;
    the colour bar beside the map still gives the values, so a small effect reads as small."""
    lo = float(m.probability.min())
    hi = max(float(m.probability.max()), m.base_probability)
    if hi - lo < MIN_SPAN:
        lo = min(max(0.0, (lo + hi - MIN_SPAN) / 2), 1.0 - MIN_SPAN)
        hi = lo + MIN_SPAN
    return lo, hi


def plot_occlusion(
    images: list[torch.Tensor],
    maps: list[OcclusionMap],
    captions: list[str],
    class_names: list[str],
    path: str,
) -> str:
    """Zeiler & Fergus's figure 7, one row an image: the image with the square where it hurts
    most outlined; ``p(target)`` at each of the square's positions, every grid cell drawn at
    its window's centre so the panels line up; and the most probable class there."""
    from matplotlib.patches import Patch, Rectangle

    from cnnlab.viz.plots import plt, save_figure

    fig, axes = plt.subplots(len(maps), 3, figsize=(10.5, 3.3 * len(maps)), squeeze=False)
    for row, image, m, caption in zip(axes, images, maps, captions, strict=True):
        h, w = image.shape[-2:]
        for ax in row:  # the maps over a faint copy of the image, so positions read off it
            ax.imshow(_shown(image), cmap="gray", alpha=1.0 if ax is row[0] else 0.35)
        top, left, bottom, right = m.window(*m.most_sensitive())
        row[0].add_patch(
            Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False, lw=2, ec="r")
        )
        row[0].set_title(caption, fontsize=9)
        ny, nx = m.probability.shape
        centre = (m.patch - 1) / 2
        extent = (
            centre - m.stride / 2,
            centre + (nx - 1) * m.stride + m.stride / 2,
            centre + (ny - 1) * m.stride + m.stride / 2,
            centre - m.stride / 2,
        )
        lo, hi = colour_range(m)
        shown = row[1].imshow(
            m.probability.numpy(), cmap="magma", vmin=lo, vmax=hi, extent=extent, alpha=0.85
        )
        fig.colorbar(shown, ax=row[1], fraction=0.046, pad=0.04)
        name = class_names[m.target]
        row[1].set_title(f"p({name}) with the square centred here", fontsize=9)
        classes = sorted(set(m.top_class.flatten().tolist()))
        cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
        colours = {k: cmap(i % cmap.N) for i, k in enumerate(classes)}
        rgb = [[colours[int(k)][:3] for k in line] for line in m.top_class.tolist()]
        row[2].imshow(rgb, extent=extent, alpha=0.85)
        row[2].legend(
            handles=[Patch(color=colours[k], label=class_names[k]) for k in classes[:12]],
            fontsize=7,
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
        )
        row[2].set_title("most probable class", fontsize=9)
        for ax in row:
            ax.set_xlim(-0.5, w - 0.5)
            ax.set_ylim(h - 0.5, -0.5)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(
        f"occlusion sensitivity: a grey square of {maps[0].patch} px, moved by {maps[0].stride} px",
        fontsize=10,
    )
    return str(save_figure(fig, path))
