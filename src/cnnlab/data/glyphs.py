"""Synthetic identities: random pen-stroke glyphs, rendered the way the UCI digits were made.

Face recognition learns what separates *people it never saw* only from many identities; the
digits offer six. Synthetic identity sets fill that gap for real face recognition (DigiFace-1M,
Bae et al., 2023: 110k rendered people), and here a random glyph is an identity: 1-3 pen
strokes (cubic Bezier curves or elliptical arcs) with random control points. No digit shapes go
into the generator, so the identities never seen in training stay unseen.

Each *image* of a glyph is a new hand drawing it: every control point moves (``jitter``, in units
of the glyph box), the drawing is rotated and sheared, scaled to a handwriting-like box (height
26-29 px, width at most 22 px, of 32) and drawn with a pen 4-6 px wide. Then it is reduced as
the UCI optical digits were (Alpaydin & Kaynak, 1998; scikit-learn's ``load_digits``): the 32x32
bitmap is cut into 4x4 blocks and each pixel of the 8x8 result is the count of inked pixels in its
block, 0..16 (here divided by 16).

Rasterisation is vectorised: stroke points are splatted into a 32x32 skeleton (``scatter_``) and
dilated with a disk (a ``conv2d`` with a 0/1 disk kernel, three pen widths).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

BITMAP = 32  # the UCI digits were drawn on 32x32 bitmaps
BLOCK = 4  # ... and reduced by counting inked pixels in 4x4 blocks
PEN_RADII = (1.7, 2.1, 2.5)  # disk radii in bitmap pixels (pen widths ~4-6 px)


@dataclass(frozen=True)
class GlyphIdentities:
    """``n`` glyph identities: for every identity up to ``strokes`` strokes.

    ``ctrl (n, S, 4, 2)``: Bezier control points in the unit square; ``arc (n, S, 5)``: centre,
    radii and sweep of an elliptical arc; ``is_arc (n, S)`` picks the form; ``used (n, S)`` says
    which strokes the glyph has (at least one)."""

    ctrl: torch.Tensor
    arc: torch.Tensor
    is_arc: torch.Tensor
    used: torch.Tensor

    def __len__(self) -> int:
        return len(self.ctrl)


def random_glyphs(
    n: int, g: torch.Generator, strokes: int = 3, arc_fraction: float = 0.35
) -> GlyphIdentities:
    """``n`` random glyph identities (1 to ``strokes`` strokes each)."""
    count = torch.randint(1, strokes + 1, (n,), generator=g)
    return GlyphIdentities(
        ctrl=torch.rand(n, strokes, 4, 2, generator=g),
        arc=torch.rand(n, strokes, 5, generator=g),
        is_arc=torch.rand(n, strokes, generator=g) < arc_fraction,
        used=torch.arange(strokes)[None] < count[:, None],
    )


def stroke_points(
    glyphs: GlyphIdentities,
    identity: torch.Tensor,
    g: torch.Generator,
    jitter: float = 0.05,
    points: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One hand drawing per entry of ``identity (B,)``: points along every stroke,
    ``(B, S * points, 2)`` in the unit square (x, y), and ``(B, S * points)`` True where the
    stroke exists."""
    b = len(identity)
    ctrl = glyphs.ctrl[identity] + jitter * torch.randn(b, *glyphs.ctrl.shape[1:], generator=g)
    t = torch.linspace(0, 1, points)
    bernstein = torch.stack([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3], 1)
    bezier = torch.einsum("mk,bskd->bsmd", bernstein, ctrl)  # B(t) = sum_k b_k(t) P_k
    arc = glyphs.arc[identity] + jitter * torch.randn(b, *glyphs.arc.shape[1:], generator=g)
    centre = 0.25 + 0.5 * arc[..., :2]
    radii = 0.1 + 0.25 * arc[..., 2:4]
    start = 2 * math.pi * glyphs.arc[identity][..., 4]
    sweep = (1.0 + arc[..., 4].clamp(0, 1)) * math.pi  # half a turn to a whole loop
    angle = start[..., None] + sweep[..., None] * t  # (B, S, points)
    ellipse = centre[..., None, :] + radii[..., None, :] * torch.stack(
        [torch.cos(angle), torch.sin(angle)], -1
    )
    pts = torch.where(glyphs.is_arc[identity][..., None, None], ellipse, bezier)
    used = glyphs.used[identity][..., None].expand(-1, -1, points)
    return pts.reshape(b, -1, 2), used.reshape(b, -1)


def render(points: torch.Tensor, used: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """``(B, P, 2)`` stroke points -> ``(B, 1, 8, 8)`` images with values ``k / 16``: a random
    rotation (sd 0.15 rad) and shear (sd 0.15), a handwriting-sized box, a random pen width, and
    the UCI 4x4 block counts."""
    b = len(points)
    theta = 0.15 * torch.randn(b, generator=g)
    shear = 0.15 * torch.randn(b, generator=g)
    cos, sin = torch.cos(theta), torch.sin(theta)
    affine = torch.stack([torch.stack([cos, shear - sin], -1), torch.stack([sin, cos], -1)], 1)
    p = torch.einsum("bij,bpj->bpi", affine, points - 0.5)
    far = torch.tensor(1e4)
    lo = torch.where(used[..., None], p, far).amin(1)
    hi = torch.where(used[..., None], p, -far).amax(1)
    extent = (hi - lo).clamp_min(1e-3)
    sy = (26 + 3 * torch.rand(b, generator=g)) / extent[:, 1]
    sx = torch.minimum(sy, 22 / extent[:, 0])  # tall like handwriting: squash wide glyphs
    shift = torch.randn(b, 1, 2, generator=g)  # writers do not centre exactly
    q = (p - (lo + hi)[:, None] / 2) * torch.stack([sx, sy], -1)[:, None] + BITMAP / 2 + shift
    cell = q.floor().long().clamp(0, BITMAP - 1)
    skeleton = torch.zeros(b, BITMAP * BITMAP)
    skeleton.scatter_(1, cell[..., 1] * BITMAP + cell[..., 0], used.float())
    skeleton = skeleton.clamp(max=1).reshape(b, 1, BITMAP, BITMAP)
    offsets = torch.arange(-3, 4, dtype=torch.float32)
    radius = (offsets[:, None] ** 2 + offsets[None] ** 2).sqrt()
    pen = torch.randint(len(PEN_RADII), (b,), generator=g)
    bitmap = torch.zeros_like(skeleton)
    for i, r in enumerate(PEN_RADII):
        sel = pen == i
        disk = (radius <= r).float()[None, None]
        bitmap[sel] = (F.conv2d(skeleton[sel], disk, padding=3) > 0).float()
    return F.avg_pool2d(bitmap, BLOCK)  # inked pixels per 4x4 block / 16


def draw_glyphs(
    glyphs: GlyphIdentities, identity: torch.Tensor, g: torch.Generator, jitter: float = 0.05
) -> torch.Tensor:
    """A new hand drawing of each glyph in ``identity (B,)``: ``(B, 1, 8, 8)`` in [0, 1]."""
    points, used = stroke_points(glyphs, identity, g, jitter)
    return render(points, used, g)
