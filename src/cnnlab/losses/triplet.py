"""Triplet loss and triplet mining (Schroff et al., 2015, FaceNet; slides "Triplet loss" and
"Choosing the triplets A, P, N").

``L(A, P, N) = max(||f(A) - f(P)||^2 - ||f(A) - f(N)||^2 + alpha, 0)``, summed over triplets,
``alpha = 0.2``. Randomly chosen triplets mostly satisfy ``d(A, P) + alpha <= d(A, N)`` already
and teach nothing, so triplets are mined from a batch of P identities x K images:

* ``batch_all``: every valid (A, P, N) with a positive loss (averaged over those);
* ``batch_hard`` (Hermans et al., 2017): per anchor, the farthest positive and nearest negative;
* ``semi_hard`` (FaceNet): per (A, P) pair, the nearest negative that is still farther than P
  (``d(A,P) < d(A,N) < d(A,P) + alpha``), falling back to the hardest negative.
"""

from __future__ import annotations

import warnings

import torch

from cnnlab.errors import CnnlabError

MINING = ("batch_all", "batch_hard", "semi_hard")


def triplet_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    alpha: float = 0.2,
    reduction: str = "sum",
) -> torch.Tensor:
    """The slide's loss on explicit triplets ``(T, D)`` each. ``reduction``: sum, mean or none."""
    if not anchor.shape == positive.shape == negative.shape or anchor.dim() != 2:
        raise CnnlabError(
            "anchor, positive and negative must be (T, D) each, got "
            f"{tuple(anchor.shape)}, {tuple(positive.shape)}, {tuple(negative.shape)}"
        )
    d_ap = ((anchor - positive) ** 2).sum(1)
    d_an = ((anchor - negative) ** 2).sum(1)
    loss = (d_ap - d_an + alpha).clamp(min=0)
    if reduction not in ("sum", "mean", "none"):
        raise CnnlabError(f"reduction must be sum, mean or none, got {reduction!r}")
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


def pairwise_sq_distances(emb: torch.Tensor) -> torch.Tensor:
    """``(B, D) -> (B, B)`` squared Euclidean distances (clamped at 0)."""
    sq = (emb**2).sum(1)
    return (sq[:, None] + sq[None, :] - 2 * emb @ emb.T).clamp(min=0)


CHUNK = 1 << 22  # distances looked at per step of semi-hard mining (16 MiB of float32)


def mine_triplets(
    emb: torch.Tensor, labels: torch.Tensor, strategy: str = "batch_hard", alpha: float = 0.2
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Indices ``(a, p, n)`` of mined triplets in a batch (see module docstring)."""
    if strategy not in MINING:
        raise CnnlabError(f"mining must be one of {', '.join(MINING)}, got {strategy!r}")
    if emb.dim() != 2 or labels.shape != (len(emb),):
        raise CnnlabError(
            f"embeddings (B, D) need one label each: got {tuple(emb.shape)} and labels "
            f"{tuple(labels.shape)}"
        )
    if len(emb) == 0:  # an empty batch: no triplet (argmax over no columns would raise)
        return _no_triplets(emb.device)
    d = pairwise_sq_distances(emb.detach())
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=emb.device)
    pos_mask, neg_mask = same & ~eye, ~same
    if strategy == "batch_hard":
        has = pos_mask.any(1) & neg_mask.any(1)
        a = has.nonzero().flatten()
        p = torch.where(pos_mask, d, -1.0)[a].argmax(1)
        n = torch.where(neg_mask, d, float("inf"))[a].argmin(1)
        return a, p, n
    if strategy == "batch_all":
        return _batch_all(d, pos_mask, neg_mask, alpha)
    a, p = pos_mask.nonzero(as_tuple=True)
    # semi-hard, anchor-positive pairs in chunks: P*K*(K-1) pairs x B candidates would not fit
    # in memory at once for large K
    n = torch.empty_like(a)
    keep = torch.empty_like(a, dtype=torch.bool)
    step = max(1, CHUNK // len(labels))
    for s in range(0, len(a), step):
        rows = slice(s, s + step)
        d_ap, d_an, negs = d[a[rows], p[rows]][:, None], d[a[rows]], neg_mask[a[rows]]
        semi = negs & (d_an > d_ap) & (d_an < d_ap + alpha)
        hardest = torch.where(negs, d_an, float("inf")).argmin(1)
        nearest_semi = torch.where(semi, d_an, float("inf")).argmin(1)
        n[rows] = torch.where(semi.any(1), nearest_semi, hardest)
        keep[rows] = negs.any(1)
    return a[keep], p[keep], n[keep]


def _no_triplets(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Empty ``(a, p, n)`` index tensors."""
    none = torch.empty(0, dtype=torch.long, device=device)
    return none, none, none


def _batch_all(
    d: torch.Tensor, pos_mask: torch.Tensor, neg_mask: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every ``(a, p, n)`` with ``d(a, p) - d(a, n) + alpha > 0``, ordered by anchor, positive,
    negative: a ``(anchors, B, B)`` mask a few anchors at a time (``CHUNK`` entries a step)."""
    b = len(d)
    step = max(1, CHUNK // max(1, b * b))
    found = [_no_triplets(d.device)]
    for s in range(0, b, step):
        rows = slice(s, s + step)
        d_a = d[rows]  # (anchors, B): d(a, p) along dim 1 and d(a, n) along dim 2 below
        valid = pos_mask[rows, :, None] & neg_mask[rows, None, :]
        valid &= d_a[:, :, None] - d_a[:, None, :] + alpha > 0
        a, p, n = valid.nonzero(as_tuple=True)
        found.append((a + s, p, n))
    return tuple(torch.cat(x) for x in zip(*found, strict=True))  # type: ignore[return-value]


def gather_rows(rows: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``rows[index]`` by ``index_select``: its backward (index_add) sums repeated rows in a fixed
    order, so a seed trains the same encoder twice; ``rows[index]``'s backward (index_put with
    accumulate) sums them in an order that varies with the CPU threads."""
    return rows.index_select(0, index.to(rows.device))


def random_triplets(
    labels: torch.Tensor, g: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Indices ``(a, p, n)``: every image as anchor, a random other image of its identity and a
    random image of another identity (the unmined baseline). Anchors without both are skipped."""
    if len(labels) == 0:
        return _no_triplets(labels.device)
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    neg = ~same
    a = (pos.any(1) & neg.any(1)).nonzero().flatten()
    noise = torch.rand(len(labels), len(labels), generator=g).to(labels.device)
    p = torch.where(pos, noise, -1.0)[a].argmax(1)
    n = torch.where(neg, noise, -1.0)[a].argmax(1)
    return a, p, n


def mined_triplet_loss(
    emb: torch.Tensor, labels: torch.Tensor, strategy: str = "batch_hard", alpha: float = 0.2
) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean triplet loss over the mined triplets, and statistics (``active``: fraction of
    triplets with a positive loss; ``mean_distance``). Warns when embeddings collapse."""
    a, p, n = mine_triplets(emb, labels, strategy, alpha)
    mean_d = pairwise_sq_distances(emb.detach()).mean().item() if len(emb) else 0.0
    if len(a) == 0:  # one identity, or no identity with two images: nothing to learn from
        return emb.sum() * 0, {"triplets": 0, "active": 0.0, "mean_distance": mean_d}
    anchor, positive, negative = (gather_rows(emb, i) for i in (a, p, n))
    losses = triplet_loss(anchor, positive, negative, alpha, reduction="none")
    if mean_d < 1e-4:
        warnings.warn("embeddings have collapsed: all distances are near zero", stacklevel=2)
    return losses.mean(), {
        "triplets": len(a),
        "active": (losses > 0).float().mean().item(),
        "mean_distance": mean_d,
    }
