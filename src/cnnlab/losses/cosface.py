"""Large-margin cosine loss (Wang et al., 2018, "CosFace", Eq. 4), the loss modern face
recognisers train with instead of triplets.

Each training identity ``j`` gets a learned unit vector ``W_j``; with the L2-normalised embedding
``f`` of an image of identity ``y``, ``cos(theta_j) = W_j . f`` and

    L = -log( e^{s (cos(theta_y) - m)}
              / (e^{s (cos(theta_y) - m)} + sum_{j != y} e^{s cos(theta_j)}) )

The margin ``m`` makes an image beat every other identity by ``m`` in cosine, so identities end up
compact and apart on the sphere, which is what a distance threshold ``tau`` needs. ``s`` scales the
cosines so the softmax can become confident. ``m = 0`` is plain normalised softmax (NormFace).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CosFaceLoss(nn.Module):
    """``(B, D)`` unit embeddings and ``(B,)`` identity ids in ``[0, num_classes)`` -> scalar."""

    def __init__(
        self, embedding_dim: int, num_classes: int, scale: float = 16.0, margin: float = 0.2
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, embedding_dim) * 0.1)
        self.scale, self.margin = scale, margin

    def logits(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``s (cos(theta) - m * onehot(y))``, shape ``(B, num_classes)``."""
        cos = F.normalize(emb, dim=1) @ F.normalize(self.weight, dim=1).T
        return self.scale * (cos - self.margin * F.one_hot(labels, cos.shape[1]))

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.logits(emb, labels), labels)
