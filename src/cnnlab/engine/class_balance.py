"""Classes of unequal size: per-class figures that show what plain accuracy hides, and loss
weights that count every class equally.

On a folder of 500 cats and 50 dogs, a classifier that always says "cat" scores 91% accuracy.
The per-class figures, from the confusion matrix ``C`` (rows: true class, columns: predicted):

- recall (sensitivity) ``C[c, c] / sum_j C[c, j]``: the share of class ``c`` found;
- precision ``C[c, c] / sum_i C[i, c]``: the share of "``c``" answers that were right;
- F1, their harmonic mean ``2 P R / (P + R)``;
- balanced accuracy, the mean recall over the classes present (the always-"cat" classifier
  scores 50%), and macro F1, the mean F1 over them.

A class never predicted has precision 0 (scikit-learn's ``zero_division=0``).

``--class-weights balanced`` weighs class ``c``'s cross-entropy by ``n / (k n_c)`` (``n``
training images, ``k`` classes, ``n_c`` of class ``c``; scikit-learn's "balanced"; pixels instead
of images for segmentation), so each class adds the same total weight to an epoch's loss.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from cnnlab.errors import CnnlabError

IMBALANCE_WARNING = 3.0  # largest / smallest training class from which a run warns


def per_class_metrics(confusion: torch.Tensor) -> dict[str, Any]:
    """Precision, recall, F1 and support per class, balanced accuracy and macro F1 of a
    ``(k, k)`` confusion matrix (module docstring). Averages run over the classes with support;
    ``None`` when there are none."""
    c = confusion.double()
    tp, support, predicted = c.diag(), c.sum(1), c.sum(0)
    recall = tp / support.clamp(min=1)
    precision = tp / predicted.clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    present = support > 0
    return {
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": support.long().tolist(),
        "balanced_accuracy": recall[present].mean().item() if present.any() else None,
        "macro_f1": f1[present].mean().item() if present.any() else None,
    }


def parse_class_weights(text: str) -> str | torch.Tensor | None:
    """``--class-weights``: ``""`` or ``none`` -> ``None``; ``balanced`` -> ``"balanced"``;
    ``"1,2,2"`` -> those weights (finite, >= 0, not all 0). Checked before any data is read;
    :func:`class_weights` then fits them to the classes."""
    if text.strip().lower() in ("", "none"):
        return None
    if text.strip().lower() == "balanced":
        return "balanced"
    try:
        weights = torch.tensor([float(v) for v in text.split(",")])
    except ValueError:
        raise CnnlabError(
            f"--class-weights {text!r}: expected none, balanced, or numbers like 1,2,2"
        ) from None
    if not (torch.isfinite(weights).all() and (weights >= 0).all() and weights.sum() > 0):
        raise CnnlabError(f"--class-weights {text!r}: weights must be finite, >= 0, not all 0")
    return weights


def class_weights(
    given: str | torch.Tensor | None, counts: torch.Tensor, class_names: list[str]
) -> torch.Tensor | None:
    """The loss weights ``(k,)`` for :func:`parse_class_weights`'s result: balanced ones from
    the training ``counts (k,)`` of each class (:func:`balanced_class_weights`), or the given
    ones when there is one per class."""
    if given is None:
        return None
    if isinstance(given, str):
        return balanced_class_weights(counts)
    if len(given) != len(class_names):
        raise CnnlabError(
            f"--class-weights needs {len(class_names)} values, one per class "
            f"({', '.join(class_names)})"
        )
    return given


def balanced_class_weights(counts: torch.Tensor) -> torch.Tensor:
    """``(k,)`` weights ``n / (k n_c)`` from each class's training count ``n_c`` (images, or
    pixels for segmentation); a class never seen in training gets 0 (it adds nothing to the
    loss either way)."""
    counts = counts.double()
    weights = counts.sum() / (len(counts) * counts)
    return torch.where(counts > 0, weights, torch.zeros_like(weights)).float()


def warn_if_imbalanced(counts: torch.Tensor, class_names: list[str], weighted: bool) -> None:
    """Warn when the largest training class (``counts (k,)``) has :data:`IMBALANCE_WARNING`
    times the images of the smallest and the loss is not weighted."""
    big, small = int(counts.argmax()), int(counts.argmin())
    ratio = counts[big].item() / max(counts[small].item(), 1)
    if ratio >= IMBALANCE_WARNING and not weighted:
        warnings.warn(
            f"the classes are imbalanced ({class_names[big]!r} has {counts[big].item()} training "
            f"images, {class_names[small]!r} {counts[small].item()}): accuracy favours the large "
            "classes, so read the balanced accuracy too; --class-weights balanced weighs every "
            "class equally",
            stacklevel=2,
        )
