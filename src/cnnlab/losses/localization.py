"""The slide's localisation loss, in its squared-error form and the form used in practice.

Slide "Classification with localization": with target ``y = [p_c, b_x, b_y, b_h, b_w, c_1..c_C]``

    L(y_hat, y) = sum_i (y_hat_i - y_i)^2   if p_c = 1 (every term)
                = (y_hat_1 - y_1)^2          if p_c = 0 (only p_c: the rest is "don't care")

``form="squared"`` is exactly that, with ``y_hat_1 = sigmoid(p_c logit)`` and the class scores
a softmax, so every term lives in [0, 1] like the targets. ``form="practical"`` is what detectors
train with (as the slide's lecture notes suggest): logistic (binary cross-entropy) loss for
``p_c``, squared error for the box, softmax cross-entropy for the class; box and class terms
again only where an object is present. Landmarks add a squared error on ``(x, y)`` pairs of
images with an object.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cnnlab.errors import CnnlabError
from cnnlab.models.heads import LocalizationOutput


@dataclass(frozen=True)
class LocalizationTarget:
    """Targets in the slide's layout. Box and class are ignored where ``pc == 0``."""

    pc: torch.Tensor  # (B,) 1 object, 0 background
    box: torch.Tensor  # (B, 4) b_x, b_y, b_h, b_w relative to the image
    label: torch.Tensor  # (B,) int64 class index (any value where pc == 0)
    landmarks: torch.Tensor | None = None  # (B, K, 2) relative (x, y)

    def slide_vector(self, num_classes: int) -> torch.Tensor:
        """``(B, 5 + C)``: the slide's ``y`` with a one-hot class."""
        onehot = F.one_hot(self.label.clamp(min=0), num_classes).float() * self.pc[:, None]
        return torch.cat([self.pc[:, None], self.box * self.pc[:, None], onehot], 1)


def localization_loss(
    out: LocalizationOutput,
    target: LocalizationTarget,
    form: str = "practical",
    landmark_weight: float = 1.0,
) -> torch.Tensor:
    """Mean over the batch of the per-image loss described in the module docstring."""
    present = target.pc > 0.5
    if form == "squared":
        pred = torch.cat(
            [torch.sigmoid(out.pc_logit)[:, None], out.box, out.class_logits.softmax(1)], 1
        )
        y = target.slide_vector(out.class_logits.shape[1])
        per_term = (pred - y) ** 2
        per_image = torch.where(present, per_term.sum(1), per_term[:, 0])
    elif form == "practical":
        per_image = F.binary_cross_entropy_with_logits(
            out.pc_logit, target.pc.float(), reduction="none"
        )
        box = ((out.box - target.box) ** 2).sum(1)
        cls = F.cross_entropy(out.class_logits, target.label.clamp(min=0), reduction="none")
        per_image = per_image + torch.where(present, box + cls, torch.zeros_like(box))
    else:
        raise CnnlabError(f"loss form must be squared or practical, got {form!r}")
    if out.landmarks.shape[1] and target.landmarks is not None:
        err = ((out.landmarks - target.landmarks) ** 2).sum((1, 2))
        per_image = per_image + landmark_weight * torch.where(present, err, torch.zeros_like(err))
    return per_image.mean()
