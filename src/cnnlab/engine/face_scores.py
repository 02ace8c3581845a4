"""Verification and recognition, measured (slides "Face verification vs. face recognition",
"Learning a similarity function"): embeddings of a set of images, balanced same/different pairs
scored by ``-d(img1, img2) = -||f(x1) - f(x2)||^2`` (or a learned similarity), tau chosen for the
best accuracy with the ROC, AUC and equal-error rate, nearest-neighbour identification with "not
recognized" beyond tau, one-shot / 5-shot / open-set figures on identities never trained on,
and the pairs decided most wrongly, drawn side by side.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.data.identities import IdentitySet
from cnnlab.errors import CnnlabError
from cnnlab.models.siamese import LearnedSimilarity, same_probability, squared_distance


@torch.no_grad()
def embed(model: torch.nn.Module, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """``(N, D)`` embeddings on the CPU, ``batch`` images at a time on the model's device."""
    model.eval()
    weight = next(model.parameters(), None)  # a model without weights runs where images are
    device = weight.device if weight is not None else images.device
    return torch.cat(
        [model(images[i : i + batch].to(device)).cpu() for i in range(0, len(images), batch)]
    )


def balanced_pairs(
    labels: torch.Tensor, n_pairs: int, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n_pairs`` index pairs ``(i, j, same)``: half of one identity (two different images), half
    of two identities, each a random anchor and a random partner among the images that qualify.
    Anchors whose identity has one image only are used for "different" pairs. Exact balance at
    any number of identities (with thousands of people, random pairs are almost never "same");
    memory O(N): the images are ordered by identity and partners are drawn by position."""
    order = labels.argsort(stable=True)
    _, inverse, counts = labels[order].unique_consecutive(return_inverse=True, return_counts=True)
    start = (counts.cumsum(0) - counts)[inverse]  # first position of each image's identity
    size = counts[inverse]
    rank = torch.arange(len(labels)) - start  # position within its identity
    halves = (n_pairs // 2, n_pairs - n_pairs // 2)
    pairs = []
    for same, want, eligible in (
        (True, halves[0], size > 1),
        (False, halves[1], size < len(labels)),
    ):
        pool = eligible.nonzero().flatten()
        if len(pool) == 0 or want == 0:
            continue
        a = pool[torch.randint(len(pool), (want,), generator=g)]
        u = torch.rand(want, generator=g)
        if same:  # another image of a's identity
            step = (u * (size[a] - 1)).long().clamp_max(size[a] - 2)  # u*m may round up to m
            b = start[a] + (rank[a] + 1 + step) % size[a]
        else:  # different: any image outside a's identity
            r = (u * (len(labels) - size[a])).long().clamp_max(len(labels) - size[a] - 1)
            b = torch.where(r < start[a], r, r + size[a])
        pairs.append((order[a], order[b]))
    if not pairs:
        raise CnnlabError("pairs need at least two images")
    i, j = torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs])
    return i, j, labels[i] == labels[j]


def pair_scores(
    emb: torch.Tensor,
    labels: torch.Tensor,
    n_pairs: int,
    g: torch.Generator,
    similarity: LearnedSimilarity | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Balanced same/different pairs: ``(scores, is_same)``; score = -distance (or the learned
    similarity's logit), so higher means "same"."""
    i, j, same = balanced_pairs(labels, n_pairs, g)
    return score_pairs(emb[i], emb[j], similarity), same.numpy()


def score_pairs(
    a: torch.Tensor, b: torch.Tensor, similarity: LearnedSimilarity | None = None
) -> np.ndarray:
    """Scores of the pairs ``a[k], b[k]`` (``(n, D)`` each): ``-d`` or the learned logit."""
    with torch.no_grad():
        score = similarity(a, b) if similarity is not None else -squared_distance(a, b)
    return score.numpy()


def worst_pairs(
    first: torch.Tensor,
    second: torch.Tensor,
    scores: np.ndarray,
    same: np.ndarray,
    threshold: float,
    n: int = 8,
) -> dict[str, np.ndarray]:
    """The pairs verification got most wrong at ``threshold`` (``score >= threshold``: same):
    ``false_accepts``, the "different" pairs scored most alike, and ``false_rejects``, the
    "same" pairs scored least alike, up to ``n`` each, worst first, as rows of ``(first image,
    second image, score)``. A pair drawn twice (either way round) is shown once."""
    worst = {}
    for name, wrong, sign in (
        ("false_accepts", ~same & (scores >= threshold), -1.0),
        ("false_rejects", same & (scores < threshold), 1.0),
    ):
        rows = np.stack(  # (image, image, score): the unordered pair, then its score
            [
                torch.minimum(first, second).numpy(),
                torch.maximum(first, second).numpy(),
                scores,
            ],
            1,
        )[wrong]
        _, once = np.unique(rows[:, :2], axis=0, return_index=True)
        rows = rows[once]
        worst[name] = rows[np.argsort(sign * rows[:, 2], kind="stable")[:n]]
    return worst


# pairs drawn to choose tau and to score verification. Measured on one trained model, 8 draws:
# unseen verification accuracy sd 0.011 (range 0.043) with 2,000 pairs, sd 0.003 with 20,000
N_PAIRS = 20_000


def choose_threshold(scores: np.ndarray, same: np.ndarray) -> tuple[float, dict[str, Any]]:
    """The score threshold (``score >= threshold`` means "same") with the best accuracy; ROC, AUC
    and equal-error rate."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, thr = roc_curve(same, scores)
    n_same = same.sum()
    acc = (tpr * n_same + (1 - fpr) * (len(same) - n_same)) / len(same)  # at each threshold
    # the first best point: the strictest threshold of the best accuracy, the farthest "same"
    # pair's score. Its midpoint with the next lower score (a maximum margin) measured worse:
    # never-seen people lie closer together than the trained ones (docs/faces.md)
    best = int(np.argmax(acc))
    eer_i = int(np.argmin(np.abs(fpr - (1 - tpr))))
    return float(thr[best]), {
        "roc_fpr": fpr.tolist(),
        "roc_tpr": tpr.tolist(),
        # one class alone has no AUC: scikit-learn 1.3 raises, later releases warn and give NaN
        "auc": float(roc_auc_score(same, scores)) if 0 < n_same < len(same) else float("nan"),
        "eer": float((fpr[eer_i] + 1 - tpr[eer_i]) / 2),
        "val_accuracy": float(acc[best]),
    }


def identify(
    gallery: torch.Tensor, gallery_labels: torch.Tensor, probes: torch.Tensor, tau: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest enrolled embedding: ``(labels, distances)``; label -1 when ``distance > tau``."""
    d = torch.cdist(probes, gallery) ** 2
    dist, idx = d.min(1)
    labels = gallery_labels[idx].clone()
    labels[dist > tau] = -1
    return labels, dist


# identities up to which the one-shot confusion table is kept (and drawn): 30 x 30 cells
CONFUSION_MAX = 30


def most_confused(
    keys: torch.Tensor, counts: torch.Tensor, names: list[str]
) -> dict[str, Any] | None:
    """The largest share off the diagonal of a confusion table given sparsely (``keys``,
    ``true * n + named``, each seen ``counts`` times): ``{"identity", "named_as", "share"}``
    (the share of ``identity``'s probes named ``named_as``); ``None`` when nobody was named
    wrong."""
    n = len(names)
    true, named = keys // n, keys % n
    totals = torch.zeros(n, dtype=torch.long).index_add_(0, true, counts)
    shares = counts.double() / totals[true].clamp_min(1)
    shares[true == named] = 0
    if len(shares) == 0 or shares.max() == 0:
        return None
    k = int(shares.argmax())  # the first of the largest: the lowest (true, named)
    return {
        "identity": names[int(true[k])],
        "named_as": names[int(named[k])],
        "share": float(shares[k]),
    }


def evaluate_unseen(
    model: torch.nn.Module,
    unseen: IdentitySet,
    tau_distance: float,
    seed: int,
    similarity: LearnedSimilarity | None = None,
    sim_threshold: float = 0.0,
    emb: torch.Tensor | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """On never-seen identities: verification accuracy at the chosen threshold (with the ROC of
    those pairs and their :func:`worst_pairs`, returned second), one-shot and 5-shot
    identification, and open-set identification with half of the identities enrolled (one image
    each): the rejection rate of never-enrolled identities, and the rate at which the enrolled
    ones' other images are accepted and named right. A stricter tau raises the first and lowers
    the second. ``confusion_1_shot`` counts, over the one-shot galleries, which identity each
    probe was named as (up to :data:`CONFUSION_MAX` identities; ``most_confused_1_shot`` names
    the largest share named wrong at any number). ``emb``: the unseen images' embeddings when
    the caller has them already."""
    g = torch.Generator().manual_seed(seed + 7)
    emb = embed(model, unseen.images) if emb is None else emb
    i, j, same_t = balanced_pairs(unseen.labels, N_PAIRS, g)  # as pair_scores draws them
    scores, same = score_pairs(emb[i], emb[j], similarity), same_t.numpy()
    threshold = sim_threshold if similarity is not None else -tau_distance
    from sklearn.exceptions import UndefinedMetricWarning

    both = bool(same.any() and not same.all())  # one image per identity: no "same" pairs
    with warnings.catch_warnings():  # sklearn warns that the ROC is undefined then
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        _, roc = choose_threshold(scores, same)
    roc["worst_pairs"] = worst_pairs(i, j, scores, same, threshold)
    ids = unseen.labels.unique()
    result: dict[str, Any] = {
        "verification_accuracy": float(((scores >= threshold) == same).mean()),
        "unseen_auc": roc["auc"] if both else None,  # None, not NaN: the JSON stays valid
        "unseen_eer": roc["eer"] if both else None,
    }
    n = len(ids)
    named_as = []  # one-shot: true * n + named for every probe of every gallery
    for shots in (1, 5):
        correct = total = 0
        for trial in range(100):
            gal, probe = [], []
            gt = torch.Generator().manual_seed(seed + trial)
            for c in ids:
                pool = (unseen.labels == c).nonzero().flatten()
                perm = pool[torch.randperm(len(pool), generator=gt)]
                gal.append(perm[:shots])
                probe.append(perm[shots:])
            gal_i, probe_i = torch.cat(gal), torch.cat(probe)
            pred, _ = identify(emb[gal_i], unseen.labels[gal_i], emb[probe_i], float("inf"))
            correct += (pred == unseen.labels[probe_i]).sum().item()
            total += len(probe_i)
            if shots == 1:
                true = torch.searchsorted(ids, unseen.labels[probe_i])
                named = torch.searchsorted(ids, pred)
                named_as.append(true * n + named)
        # None when no identity has more than `shots` images (nothing left to identify)
        result[f"identification_{shots}_shot"] = correct / total if total else None
    # counted sparsely: an n x n table would not fit thousands of people (LFW has 5,749)
    keys, counts = torch.cat(named_as).unique(return_counts=True)
    names = [unseen.names[int(c)] for c in ids]
    result["most_confused_1_shot"] = most_confused(keys, counts, names)
    if n <= CONFUSION_MAX:  # which never-seen identity is taken for which, as a table
        confusion = torch.zeros(n * n, dtype=torch.long).index_add_(0, keys, counts)
        result["confusion_1_shot"] = {"names": names, "counts": confusion.view(n, n).tolist()}
    half = ids[: len(ids) // 2]
    enrolled = torch.isin(unseen.labels, half)
    gal_i = torch.stack([(unseen.labels == c).nonzero().flatten()[0] for c in half])
    strangers = (~enrolled).nonzero().flatten()
    pred, _ = identify(emb[gal_i], unseen.labels[gal_i], emb[strangers], tau_distance)
    result["open_set_rejection"] = (pred == -1).float().mean().item()
    # the other side of tau: enrolled people's other images, accepted and named right
    # (the detection and identification rate of open-set identification)
    enrolled[gal_i] = False
    probes = enrolled.nonzero().flatten()
    pred, _ = identify(emb[gal_i], unseen.labels[gal_i], emb[probes], tau_distance)
    # None when the enrolled identities have no other image (as for identification above)
    hits = (pred == unseen.labels[probes]).float()
    result["open_set_identification"] = hits.mean().item() if len(probes) else None
    return result, roc


def plot_roc(curves: dict[str, dict[str, Any]], path: Path) -> Path:
    """One verification ROC per named set of pairs (from :func:`choose_threshold`)."""
    from cnnlab.viz.plots import plt, save_figure

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for name, roc in curves.items():
        label = f"{name}\nAUC {roc['auc']:.3f}, EER {roc['eer']:.3f}"
        ax.plot(roc["roc_fpr"], roc["roc_tpr"], label=label)
    ax.plot([0, 1], [0, 1], "k--", lw=0.5)
    ax.legend(loc="lower right", fontsize=8)
    ax.set(xlabel="false accept rate", ylabel="true accept rate", title="verification ROC")
    return save_figure(fig, path, dpi=100)


def plot_worst_pairs(
    worst: dict[str, np.ndarray],
    picture: Callable[[int], torch.Tensor],
    who: Callable[[int], str],
    threshold: float,
    path: Path,
    learned: bool = False,
    which: str = "pairs",
) -> Path | None:
    """The pairs of :func:`worst_pairs` side by side, each captioned with ``who`` its two images
    are and its distance (or, ``learned``, the learned similarity's probability that they are one
    person); ``picture(k)``: image ``k`` as ``(C, H, W)`` uint8, the same size for all; ``which``
    names the pairs in the title. ``None``, and no file, when verification got every pair
    right."""
    from cnnlab.viz.plots import plot_captioned

    rows = [(kind, row) for kind in ("false_accepts", "false_rejects") for row in worst[kind]]
    if not rows:
        return None
    pictures, captions, colors = [], [], []
    for kind, (a, b, score) in rows:
        first, second = picture(int(a)), picture(int(b))
        gap = torch.full_like(first[..., :2], 128)  # a grey line between the two
        pictures.append(torch.cat([first, gap, second], -1))
        said = "same" if kind == "false_accepts" else "different"
        value = f"p {same_probability(score):.2f}" if learned else f"d {-score:.2f}"
        captions.append(f"{who(int(a))} / {who(int(b))}\n{value}: said {said}")
        colors.append("tab:red" if kind == "false_accepts" else "tab:blue")
    decided = (
        f"p(same) >= {same_probability(threshold):.2f}" if learned else f"d <= tau {-threshold:.2f}"
    )
    title = (
        f"the {which} decided most wrongly ({decided} means the same): "
        "different people taken for one (red), one person taken for two (blue)"
    )
    return plot_captioned(torch.stack(pictures), captions, path, title, colors, cell=(2.6, 1.8))
