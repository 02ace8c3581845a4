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


def gram_matrix(a: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W) -> (B, C, C)``: ``G = F F^T`` with ``F`` the ``(C, H W)`` unrolled map."""
    f = a.flatten(2)
    return f @ f.transpose(1, 2)


def content_cost(a_c: torch.Tensor, a_g: torch.Tensor, norm: str = "course") -> torch.Tensor:
    """``(B, C, H, W)`` activations of the content and generated images -> ``(B,)``."""
    _check(norm)
    c, h, w = a_c.shape[1:]
    scale = 1 / (4 * h * w * c) if norm == "course" else 0.5
    return scale * ((a_c - a_g) ** 2).sum((1, 2, 3))


def style_layer_cost(a_s: torch.Tensor, a_g: torch.Tensor, norm: str = "course") -> torch.Tensor:
    """One layer's style cost ``(B,)``; the two normalisations coincide (module docstring)."""
    _check(norm)
    c, h, w = a_s.shape[1:]
    diff = gram_matrix(a_s) - gram_matrix(a_g)
    return (diff**2).sum((1, 2)) / (2 * h * w * c) ** 2


def style_cost(
    styles: Mapping[str, torch.Tensor],
    generated: Mapping[str, torch.Tensor],
    weights: Mapping[str, float],
    norm: str = "course",
) -> torch.Tensor:
    """``sum_l lambda_l J_style^[l]`` over the layers named in ``weights``."""
    return sum(w * style_layer_cost(styles[k], generated[k], norm) for k, w in weights.items())


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W) -> (B,)``: mean squared difference between neighbouring pixels."""
    dh = (x[..., 1:, :] - x[..., :-1, :]) ** 2
    dw = (x[..., :, 1:] - x[..., :, :-1]) ** 2
    return dh.mean((1, 2, 3)) + dw.mean((1, 2, 3))


def _check(norm: str) -> None:
    if norm not in NORMS:
        raise CnnlabError(f"--norm must be one of {', '.join(NORMS)}, got {norm!r}")
