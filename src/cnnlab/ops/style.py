"""Neural style transfer costs (Gatys, Ecker & Bethge, 2015; slides "Neural style transfer cost
function" to "Intuition about style of an image").

``J(G) = alpha J_content(C, G) + beta J_style(S, G)``.

* Gram matrix ("style = correlation between activations across channels"): for activations
  ``a (n_C, n_H, n_W)``, ``G[k, k'] = sum_{i,j} a[k, i, j] a[k', i, j]``.
* Content cost on one layer: ``J_content = c * sum (a^(C) - a^(G))^2`` with
  ``c = 1 / (4 n_H n_W n_C)`` in the course's programming exercise (``norm="course"``) and
  ``c = 1/2`` in Gatys et al. (``norm="gatys"``).
* Style cost on one layer: ``J_style^[l] = sum (G^(S) - G^(G))^2 / (2 n_H n_W n_C)^2``; Gatys et
  al. write ``1 / (4 N^2 M^2)`` with ``N = n_C`` and ``M = n_H n_W``: the same number, so both
  norms agree here. The total style cost is a weighted sum over layers.
* Total variation (optional smoothness term): mean squared difference of neighbouring pixels.

Default: ``norm="course"``: with its content normaliser both costs are averages of comparable
size, so the course's ``alpha = 10, beta = 40`` balance works across layers and image sizes; the
raw Gatys content sum grows with the layer size and needs ratios around ``1e-3``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from cnnlab.errors import CnnlabError

NORMS = ("course", "gatys")


def _maps(a: torch.Tensor, name: str) -> torch.Tensor:
    """``a`` as ``(B, C, H, W)``: one image's ``(C, H, W)`` (the slide's ``n_C, n_H, n_W``) gets
    a batch of one; any other shape is an error, not a Gram matrix of the wrong axes."""
    if a.dim() == 3:
        return a[None]
    if a.dim() != 4:
        raise CnnlabError(
            f"{name} must be (C, H, W) or (B, C, H, W) activations, got shape {tuple(a.shape)}"
        )
    return a


def _pair(
    a: torch.Tensor, b: torch.Tensor, names: str, same_size: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both as ``(B, C, H, W)``, with the same channels (Gram matrices compare across sizes:
    a style image may be larger than the generated one) and, with ``same_size``, the same
    shape."""
    a4, b4 = _maps(a, names), _maps(b, names)
    if a.dim() != b.dim() or (a.shape != b.shape if same_size else a4.shape[1] != b4.shape[1]):
        raise CnnlabError(
            f"{names} activations do not match: shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    return a4, b4


def gram_matrix(a: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W) -> (B, C, C)``, or one image's ``(C, H, W) -> (C, C)``: ``G = F F^T``
    with ``F`` the ``(C, H W)`` unrolled map."""
    f = _maps(a, "gram_matrix's input").flatten(2)
    g = f @ f.transpose(1, 2)
    return g[0] if a.dim() == 3 else g


def content_cost(a_c: torch.Tensor, a_g: torch.Tensor, norm: str = "course") -> torch.Tensor:
    """``(B, C, H, W)`` activations of the content and generated images -> ``(B,)`` (one
    image's ``(C, H, W)`` -> a scalar)."""
    _check(norm)
    c4, g4 = _pair(a_c, a_g, "content and generated")
    c, h, w = c4.shape[1:]
    scale = 1 / (4 * h * w * c) if norm == "course" else 0.5
    cost = scale * ((c4 - g4) ** 2).sum((1, 2, 3))
    return cost[0] if a_c.dim() == 3 else cost


def style_layer_cost(a_s: torch.Tensor, a_g: torch.Tensor, norm: str = "course") -> torch.Tensor:
    """One layer's style cost ``(B,)`` (a scalar for one image's ``(C, H, W)``); the two
    normalisations coincide (module docstring)."""
    _check(norm)
    s4, g4 = _pair(a_s, a_g, "style and generated", same_size=False)
    c, h, w = s4.shape[1:]
    diff = gram_matrix(s4) - gram_matrix(g4)
    cost = (diff**2).sum((1, 2)) / (2 * h * w * c) ** 2
    return cost[0] if a_s.dim() == 3 else cost


def style_cost(
    styles: Mapping[str, torch.Tensor],
    generated: Mapping[str, torch.Tensor],
    weights: Mapping[str, float],
    norm: str = "course",
) -> torch.Tensor:
    """``sum_l lambda_l J_style^[l]`` over the layers named in ``weights``."""
    return sum(w * style_layer_cost(styles[k], generated[k], norm) for k, w in weights.items())


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W) -> (B,)`` (one image's ``(C, H, W)`` -> a scalar): mean squared
    difference between vertically, plus between horizontally, neighbouring pixels; an image one
    pixel high (or wide) has no such neighbours and adds 0 for them."""
    x4 = _maps(x, "total_variation's input")
    cost = x4.new_zeros(len(x4))
    for d in (x4[..., 1:, :] - x4[..., :-1, :], x4[..., :, 1:] - x4[..., :, :-1]):
        if all(d.shape[1:]):
            cost = cost + (d**2).flatten(1).mean(1)
    return cost[0] if x.dim() == 3 else cost


def _check(norm: str) -> None:
    if norm not in NORMS:
        raise CnnlabError(f"--norm must be one of {', '.join(NORMS)}, got {norm!r}")
