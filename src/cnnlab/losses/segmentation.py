"""Per-pixel losses for semantic segmentation (slide "Per-pixel class labels").

* cross-entropy over classes at every pixel, optionally class-weighted for imbalance;
* soft Dice (Milletari et al., 2016): ``1 - mean_c (2 sum p_c g_c + eps) / (sum p_c + sum g_c +
  eps)`` with ``p = softmax(logits)``, ``g`` the one-hot labels;
* their sum.

Pixels labelled :data:`VOID` (255: Pascal VOC's border around objects, "not labelled") take no
part in either loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnlab.data.palettes import VOID
from cnnlab.errors import CnnlabError


def dice_loss(logits: torch.Tensor, labels: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """``logits (B, C, H, W)``, ``labels (B, H, W)`` int64 -> scalar soft Dice loss over the
    labelled pixels (``VOID`` ones count neither in ``p`` nor in ``g``)."""
    labelled = (labels != VOID).unsqueeze(1)  # (B, 1, H, W)
    probs = logits.softmax(1) * labelled
    onehot = F.one_hot(labels.where(labelled[:, 0], 0), logits.shape[1]).permute(0, 3, 1, 2)
    onehot = onehot.to(probs) * labelled
    inter = (probs * onehot).sum((0, 2, 3))
    total = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    return 1 - ((2 * inter + eps) / (total + eps)).mean()


def segmentation_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    kind: str = "ce+dice",
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """``ce``, ``dice`` or ``ce+dice``."""
    if kind not in ("ce", "dice", "ce+dice"):
        raise CnnlabError(f"--loss must be ce, dice or ce+dice, got {kind!r}")
    loss = logits.new_zeros(())
    if not (labels != VOID).any():  # a batch nobody labelled: nothing to learn (CE would be NaN)
        return loss + 0 * logits.sum()
    if "ce" in kind.split("+"):
        loss = loss + F.cross_entropy(logits, labels, weight=class_weights, ignore_index=VOID)
    if "dice" in kind:
        loss = loss + dice_loss(logits, labels)
    return loss
