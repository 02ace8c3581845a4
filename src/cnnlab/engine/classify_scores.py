"""Scoring a classifier on a split: mean cross-entropy, accuracy, the confusion matrix (rows:
true class, columns: predicted) and per-class precision, recall and F1, and, per image, the
label, prediction, its probability and loss, from which the worst mistakes are drawn. Training
scores its validation split after every epoch and its test split at the end with
:func:`evaluate`; ``cnnlab classify eval`` (:mod:`cnnlab.engine.classify_eval`) a saved model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.engine.class_balance import per_class_metrics

if TYPE_CHECKING:
    from cnnlab.engine.classify import Inputs


@dataclass
class EvalResult:
    """Loss, accuracy and confusion matrix (rows: true class, columns: predicted) of one split;
    an empty split (``--test-fraction 0``, a folder without ``test/``) has no loss or accuracy:
    ``None``, never 0."""

    loss: float | None
    accuracy: float | None
    confusion: torch.Tensor  # (classes, classes) int64
    count: int
    # per image, in the split's order: (N,) true class, arg-max class, its softmax probability,
    # and the cross-entropy
    labels: torch.Tensor | None = None
    predicted: torch.Tensor | None = None
    confidence: torch.Tensor | None = None
    losses: torch.Tensor | None = None

    def worst_mistakes(self, k: int = 16) -> list[int]:
        """The split indices of up to ``k`` wrongly classified images, the highest loss first
        (where the model is surest of a wrong class: mislabelled images show up here)."""
        if self.labels is None or self.predicted is None or self.losses is None:
            return []
        wrong = (self.predicted != self.labels).nonzero().flatten()
        return wrong[self.losses[wrong].argsort(descending=True)][:k].tolist()

    @property
    def per_class(self) -> dict[str, Any]:
        """Precision, recall, F1, support, balanced accuracy and macro F1
        (:func:`~cnnlab.engine.class_balance.per_class_metrics`)."""
        return per_class_metrics(self.confusion)

    def to_dict(self) -> dict[str, Any]:
        return {
            "loss": self.loss,
            "accuracy": self.accuracy,
            "count": self.count,
            "confusion": self.confusion.tolist(),
        } | self.per_class


@torch.no_grad()
def evaluate(model: nn.Module, inputs: Inputs, split: str, batch_size: int = 256) -> EvalResult:
    """Mean cross-entropy, accuracy and confusion matrix of ``model`` on ``split``, and each
    image's label, arg-max class, its probability and its loss (for the worst mistakes)."""
    model.eval()
    k = len(inputs.data.class_names)
    n = len(inputs.data.splits[split])
    empty = torch.zeros(0, dtype=torch.int64)
    labels, predictions, confidences, losses = [empty], [empty], [torch.zeros(0)], [torch.zeros(0)]
    for start in range(0, n, batch_size):
        x, y = inputs.batch(split, torch.arange(start, min(start + batch_size, n)), train=False)
        logits = inputs.forward(model, x).float()
        losses.append(F.cross_entropy(logits, y, reduction="none").cpu())
        labels.append(y.cpu())
        top_p, top = logits.softmax(1).max(1)  # kept per image, not all k probabilities
        confidences.append(top_p.cpu())
        predictions.append(top.cpu())
    y, predicted, confidence = torch.cat(labels), torch.cat(predictions), torch.cat(confidences)
    confusion = torch.bincount(y * k + predicted, minlength=k * k).view(k, k)
    if not n:
        return EvalResult(None, None, confusion, 0)
    loss = torch.cat(losses)
    accuracy = confusion.diag().sum().item() / n
    mean = loss.double().sum().item() / n
    return EvalResult(mean, accuracy, confusion, n, y, predicted, confidence, loss)


def mistakes_figure(
    result: EvalResult, images: torch.Tensor, class_names: list[str], path: Path, title: str
) -> Path | None:
    """:func:`~cnnlab.viz.plots.plot_mistakes` of the split's 16 worst mistakes
    (:meth:`EvalResult.worst_mistakes`; ``images`` the split's uint8 ``(N, C, H, W)``); None,
    and no file, when every image is right."""
    from cnnlab.viz.plots import plot_mistakes

    worst = result.worst_mistakes()
    if not worst:
        return None
    # worst_mistakes found some: the per-image tensors are there
    assert result.labels is not None and result.predicted is not None
    assert result.confidence is not None and result.losses is not None
    return plot_mistakes(
        images[worst],
        [class_names[int(result.labels[i])] for i in worst],
        [class_names[int(result.predicted[i])] for i in worst],
        [float(result.confidence[i]) for i in worst],
        [math.exp(-float(result.losses[i])) for i in worst],  # cross-entropy = -log p(true)
        path,
        title,
    )
