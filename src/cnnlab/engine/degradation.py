"""The slides' case for ResNets, measured: "the deeper [plain] network has higher training error,
and thus test error" (He et al., 2016, Fig. 1), while "the residual networks have no extra
parameter compared to their plain counterparts" and the deeper one trains at least as well
(Fig. 4). Not overfitting: the training error itself is higher, an optimisation difficulty
that the shortcut ``a^[l+2] = g(z^[l+2] + a^[l])`` removes (an identity is easy to learn: zero
weights).

:func:`compare_depths` trains the paper's CIFAR networks (section 4.2: 6n + 2 layers, 16/32/64
filters; ``cifar_plainD`` is ``cifar_resnetD`` without its shortcuts, the same parameters) with
the same recipe, seed and data, and keeps each epoch's training error (measured during the
epoch, as the paper's thin curves are) and validation error.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from rich.console import Console

from cnnlab.config import ClassifyTrainConfig

DEPTHS = (20, 56)  # the two depths of the paper's Fig. 1


def network_name(depth: int, residual: bool) -> str:
    """The registered CIFAR network of ``depth`` layers, with or without shortcuts."""
    return f"cifar_{'resnet' if residual else 'plain'}{depth}"


def compare_depths(
    config: ClassifyTrainConfig, depths: Sequence[int] = DEPTHS, console: Console | None = None
) -> list[dict[str, Any]]:
    """Train the plain and the residual network of each depth with ``config`` (its model and
    output folder replaced; the runs go to a temporary folder). One row each: ``model``,
    ``residual``, ``layers``, ``params``, per epoch ``train_error``, ``train_loss`` and
    ``val_error``, the ``test_error`` of the best epoch's weights and the training
    ``seconds``."""
    from cnnlab.engine.checkpoint import model_from_checkpoint
    from cnnlab.engine.classify import train_classifier

    rows = []
    with tempfile.TemporaryDirectory(prefix="cnnlab-degradation-") as tmp:
        for residual in (False, True):
            for depth in depths:
                name = network_name(depth, residual)
                run = train_classifier(replace(config, model=name, out=f"{tmp}/{name}"), console)
                model, _ = model_from_checkpoint(run.run_dir / "best.pt")
                rows.append(
                    {
                        "model": name,
                        "residual": residual,
                        "layers": depth,
                        "params": sum(w.numel() for w in model.parameters()),
                        "train_error": [1 - h["train_accuracy"] for h in run.history],
                        "train_loss": [h["train_loss"] for h in run.history],
                        "val_error": [1 - h["val_accuracy"] for h in run.history],
                        "test_error": 1 - run.test.accuracy,
                        "seconds": round(run.seconds, 1),
                    }
                )
    return rows


def plot_degradation(rows: list[dict[str, Any]], path: str, data: str) -> str:
    """The paper's Fig. 4 on ``data``: plain networks on the left, ResNets on the right,
    training error (thin) and validation error (bold) per epoch, one colour per depth."""
    from cnnlab.viz.plots import plt, save_figure

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    depths = sorted({r["layers"] for r in rows})
    colours = dict(zip(depths, ("tab:orange", "tab:red", "tab:blue", "tab:green"), strict=False))
    for ax, residual in zip(axes, (False, True), strict=True):
        for r in (r for r in rows if r["residual"] == residual):
            epochs = range(1, len(r["train_error"]) + 1)
            colour = colours.get(r["layers"])
            kind = "ResNet" if residual else "plain"
            for key, width, word in (("train_error", 1, "train"), ("val_error", 2.5, "val")):
                errors = [100 * e for e in r[key]]
                label = f"{kind}-{r['layers']} {word}"
                ax.plot(epochs, errors, lw=width, color=colour, label=label)
        ax.set(xlabel="epoch", title="ResNets" if residual else "plain networks")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("error (%)")
    fig.suptitle(
        f"{data}: the deeper plain network trains worse; with shortcuts it does not", fontsize=10
    )
    return str(save_figure(fig, path))
