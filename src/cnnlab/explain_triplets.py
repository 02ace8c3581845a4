"""``cnnlab explain triplet``: the slides "Triplet loss" and "Choosing the triplets A, P, N"
worked through on a batch of embeddings the user types (2-D by default, so they can be drawn).

``L(A, P, N) = max(||f(A) - f(P)||^2 - ||f(A) - f(N)||^2 + alpha, 0)``. The slide's warning:
"during training, if A, P, N are chosen randomly, ``d(A, P) + alpha <= d(A, N)`` is easily
satisfied", so most triplets have zero loss and teach nothing; "choose triplets that are hard
to train on". :func:`explain_triplets` counts every valid triplet of the batch and the share
already satisfied, then shows which ones each mining strategy of
:func:`cnnlab.losses.triplet.mine_triplets` (the one training uses) picks, with their losses
from :func:`cnnlab.losses.triplet.triplet_loss`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from rich import box
from rich.console import Console
from rich.table import Table

from cnnlab.errors import CnnlabError
from cnnlab.explain import parse_matrix, plain_number
from cnnlab.losses.triplet import MINING, mine_triplets, pairwise_sq_distances, triplet_loss
from cnnlab.words import counted

MAX_POINTS = 200  # embeddings explain takes: 8 million triplets looked at, at most

# three people, three images each, in 2-D: person 0's third image lies far from its others and
# close to person 1, the "hard" case the slide asks for
EXAMPLE_POINTS = (
    "0 0 0; 0.3 0.1 0; 0.9 0.5 0; 1.0 0.2 1; 1.3 0 1; 1.2 0.5 1; 0.2 1.2 2; 0.5 1.0 2; 0 1.5 2"
)


def parse_points(text: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``"x y person; ..."`` -> embeddings ``(B, D)`` (every column but the last) and integer
    person labels ``(B,)``."""
    m = parse_matrix(text, "--points")
    if m.shape[1] < 2:
        raise CnnlabError("--points: each row is an embedding's numbers, then its person")
    labels = m[:, -1]
    if not torch.equal(labels, labels.round()):
        raise CnnlabError("--points: the last number of each row is its person, an integer")
    return m[:, :-1].float(), labels.long()


def explain_triplets(
    emb: torch.Tensor, labels: torch.Tensor, alpha: float = 0.2, anchor: int = 0
) -> dict[str, Any]:
    """The batch's squared distances, every valid triplet's loss, and per mining strategy the
    triplets it picks (``anchor``'s listed) with their losses. ``emb (B, D)``, ``labels (B,)``."""
    b = len(emb)
    if b > MAX_POINTS:  # every triplet is looked at: B^3 of them
        raise CnnlabError(
            f"--points: {b} embeddings; explain takes at most {MAX_POINTS} (faces train mines "
            "batches of any size)"
        )
    same = labels[:, None] == labels[None, :]
    usable = (same.sum(1) >= 2) & ~same.all(1)  # another image of its person, and someone else
    if not usable.any():
        raise CnnlabError("--points: a triplet needs two images of one person and one of another")
    if not 0 <= anchor < b:
        raise CnnlabError(f"--anchor {anchor}: the batch has images 0 to {b - 1}")
    if not usable[anchor]:
        raise CnnlabError(
            f"--anchor {anchor}: needs another image of its person and an image of someone else"
        )
    x = emb.double()
    d = pairwise_sq_distances(x)
    positive = same & ~torch.eye(b, dtype=torch.bool)
    a, p, n = (positive[:, :, None] & ~same[:, None, :]).nonzero(as_tuple=True)  # every valid
    losses = triplet_loss(x[a], x[p], x[n], alpha, "none")
    strategies = {}
    for strategy in MINING:
        ta, tp, tn = mine_triplets(x, labels, strategy, alpha)
        loss = triplet_loss(x[ta], x[tp], x[tn], alpha, "none")
        mine = (ta == anchor).nonzero().flatten().tolist()
        strategies[strategy] = {
            "triplets": len(ta),
            "active": int((loss > 0).sum()),
            "mean_loss": plain_number(loss.mean()) if len(loss) else 0,
            "anchor_triplets": [
                _triplet(int(ta[k]), int(tp[k]), int(tn[k]), d, float(loss[k]), alpha) for k in mine
            ],
        }
    return {
        "kind": "triplet",
        "alpha": alpha,
        "anchor": anchor,
        "points": [[plain_number(v) for v in row] for row in emb.tolist()],
        "labels": labels.tolist(),
        "distances": [[plain_number(v) for v in row] for row in d.tolist()],
        "valid_triplets": len(a),
        "zero_loss": int((losses == 0).sum()),
        "mean_loss_all_valid": plain_number(losses.mean()),
        "strategies": strategies,
    }


def _triplet(a: int, p: int, n: int, d: torch.Tensor, loss: float, alpha: float) -> dict[str, Any]:
    """One picked triplet: its images, distances, loss and whether N is semi-hard."""
    d_ap, d_an = float(d[a, p]), float(d[a, n])
    return {
        "a": a,
        "p": p,
        "n": n,
        "d_ap": plain_number(d_ap),
        "d_an": plain_number(d_an),
        "loss": plain_number(loss),
        "semi_hard": d_ap < d_an < d_ap + alpha,
    }


WHAT = {
    "batch_all": "every triplet with loss > 0",
    "batch_hard": "each A: its farthest P, nearest N",
    "semi_hard": "each (A, P): the nearest N beyond P within alpha, else the nearest",
}


def render_triplets(result: dict[str, Any], console: Console) -> None:
    """The distances, the slide's warning in numbers, and each strategy's picks for the anchor."""
    labels = result["labels"]
    table = Table(
        title="squared distances ||f(i) - f(j)||^2, images named i:person",
        box=box.SIMPLE,
    )
    table.add_column("")
    for j, person in enumerate(labels):
        table.add_column(f"{j}:{person}", justify="right")
    for i, row in enumerate(result["distances"]):
        table.add_row(f"{i}:{labels[i]}", *(f"{v:.2f}" for v in row))
    console.print(table)
    alpha, valid, zero = result["alpha"], result["valid_triplets"], result["zero_loss"]
    console.print(
        f"{counted(valid, 'valid triplet')} (A, P the same person, N another): {zero} "
        f"({zero / valid:.0%}) already have d(A,P) + {alpha:g} <= d(A,N), loss 0, so triplets "
        f"chosen at random teach little (mean loss {result['mean_loss_all_valid']:.3f})"
    )
    table = Table(title=f"what each mining strategy picks (alpha {alpha:g})")
    for col in ("strategy", "picks", "triplets", "loss > 0", "mean loss"):
        table.add_column(col, justify="right" if col in ("triplets", "loss > 0") else "left")
    for strategy, s in result["strategies"].items():
        table.add_row(
            strategy, WHAT[strategy], str(s["triplets"]), str(s["active"]), f"{s['mean_loss']:.3f}"
        )
    console.print(table)
    anchor = result["anchor"]
    table = Table(title=f"the triplets with image {anchor} as the anchor A")
    for col in ("strategy", "A, P, N", "d(A,P)", "d(A,N)", "loss", "semi-hard"):
        table.add_column(col, justify="left" if col in ("strategy", "A, P, N") else "right")
    for strategy, s in result["strategies"].items():
        for t in s["anchor_triplets"]:
            table.add_row(
                strategy,
                f"{t['a']}, {t['p']}, {t['n']}",
                f"{t['d_ap']:.3f}",
                f"{t['d_an']:.3f}",
                f"{t['loss']:.3f}",
                "yes" if t["semi_hard"] else "",
            )
        if not s["anchor_triplets"]:
            table.add_row(strategy, "none: every triplet of it has loss 0", "", "", "", "")
    console.print(table)


def plot_triplets(result: dict[str, Any], path: str | Path) -> Path:
    """One panel a strategy: the 2-D (or 1-D) batch coloured by person, the anchor ringed, each
    picked triplet's A-P line green and A-N line red, and around A the circles ``d = d(A,P)`` and
    ``d = d(A,P) + alpha`` of its pick with the largest loss: a negative inside the first is
    hard, one between the two semi-hard, one outside both teaches nothing."""
    from matplotlib.patches import Circle

    from cnnlab.viz.plots import plt, save_figure

    points, labels = torch.tensor(result["points"], dtype=torch.float64), result["labels"]
    if points.shape[1] > 2:
        raise CnnlabError(
            f"--out draws 1-D or 2-D embeddings; these have {points.shape[1]} numbers"
        )
    if points.shape[1] == 1:  # on a line
        points = torch.cat([points, torch.zeros_like(points)], 1)
    people = sorted(set(labels))
    palette = [plt.get_cmap("tab10")(k) for k in (0, 1, 4, 5, 6, 7, 8, 9)]  # no green, no red
    fig, axes = plt.subplots(
        1, len(MINING), figsize=(4.2 * len(MINING), 4.4), sharex=True, sharey=True
    )
    anchor = result["anchor"]
    ax_, ay = points[anchor].tolist()
    for ax, (strategy, s) in zip(axes, result["strategies"].items(), strict=True):
        for t in s["anchor_triplets"]:
            for other, colour in ((t["p"], "green"), (t["n"], "red")):
                ox, oy = points[other].tolist()
                ax.plot([ax_, ox], [ay, oy], color=colour, lw=1.2, alpha=0.6, zorder=1)
        if s["anchor_triplets"]:
            top = max(s["anchor_triplets"], key=lambda t: t["loss"])
            for radius, style in ((top["d_ap"], "-"), (top["d_ap"] + result["alpha"], "--")):
                ax.add_patch(
                    Circle((ax_, ay), radius**0.5, fill=False, ls=style, color="grey", lw=0.8)
                )
        for k, person in enumerate(people):
            mine = [i for i, lab in enumerate(labels) if lab == person]
            colour = palette[k % len(palette)]
            ax.scatter(points[mine, 0], points[mine, 1], color=colour, s=40, zorder=2)
        ax.scatter([ax_], [ay], s=160, facecolors="none", edgecolors="black", zorder=3)
        for i, (x, y) in enumerate(points.tolist()):
            ax.annotate(str(i), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_aspect("equal")
        picked = counted(len(s["anchor_triplets"]), "triplet")
        ax.set_title(f"{strategy}: {picked} with anchor {anchor}", fontsize=9)
    fig.suptitle(
        f"anchor {anchor} (ringed), coloured by person: green A-P, red A-N; circles d(A,P) and "
        "d(A,P) + alpha of the pick with the largest loss",
        fontsize=9,
    )
    return save_figure(fig, path)
