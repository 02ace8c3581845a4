"""Face recognition on never-seen identities: one table comparing training methods.

The digits default (train on 0-5, test on 6-9, which the encoder never saw): verification accuracy
at the tau chosen on held-out images of the seen identities, one-shot and 5-shot identification
among the four unseen identities, open-set rejection of never-enrolled ones and identification of
enrolled ones, and training seconds. Rows: raw pixels (no learning), cnnlab's first recipe
(batch-hard triplets, 6 x 8 batches, 400 steps), then with the default batches and steps: random
triplets, batch-hard and semi-hard mining, the learned similarity on pairs, and CosFace, each with
and without the dihedral training identities, and with the synthetic glyph identities
(cnnlab.data.glyphs) added to every batch, and then the embedding whitened on new glyph identities
(with and without, for two methods), then random erasing added (the default; every other row
trains with random crops alone, as measured before it joined), the default and the former default
as ensembles of five encoders, the former default with a deeper backbone (slow: `--exclude
plain20` skips it). A last row is not a valid result but a ceiling: the encoder trains on half of
each "unseen" identity's images. A second one asks what a plain supervised LeNet-5 classifier of
all ten digits (trained on half of every digit's images, 6-9 included) gives the protocol when its
penultimate features are the embedding. Median over seeds.

Run: `python benchmarks/faces_methods.py [--seeds 3] [--only TEXT] [--exclude TEXT,TEXT]` (rows
whose name holds TEXT / none of the TEXTs); prints one JSON line per row as it finishes, then the
table and one JSON line of all rows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from dataclasses import replace

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from cnnlab.data.identities import IdentitySet
from cnnlab.engine.face_scores import N_PAIRS, choose_threshold, evaluate_unseen, pair_scores
from cnnlab.engine.faces import FacesConfig, load_identities, train_faces

KEYS = (
    "verification_accuracy",
    "identification_1_shot",
    "identification_5_shot",
    "open_set_rejection",
    "open_set_identification",
    "seconds",
)
ROWS = {
    "batch-hard triplets, first recipe": {
        "method": "triplet",
        "identities": "none",
        "p": 6,
        "k": 8,
        "steps": 400,
        "augment": "crop,rotate,shear",
    },
    "random triplets": {"method": "triplet", "mining": "random", "identities": "none"},
    "batch-hard triplets": {"method": "triplet", "mining": "batch_hard", "identities": "none"},
    "semi-hard triplets": {"method": "triplet", "mining": "semi_hard", "identities": "none"},
    "learned similarity": {"method": "similarity", "identities": "none"},
    "cosface": {"method": "cosface", "identities": "none"},
    "batch-hard + dihedral": {"method": "triplet", "mining": "batch_hard"},
    "learned similarity + dihedral": {"method": "similarity"},
    "cosface + dihedral": {"method": "cosface"},
    "random triplets + dihedral + glyphs + whitening": {
        "method": "triplet",
        "mining": "random",
        "synthetic": "auto",
    },
    "batch-hard + dihedral + glyphs + whitening": {
        "method": "triplet",
        "mining": "batch_hard",
        "synthetic": "auto",
    },
    "learned similarity + dihedral + glyphs (not whitened)": {
        "method": "similarity",
        "synthetic": "auto",
    },
    "cosface + dihedral + glyphs, not whitened": {
        "method": "cosface",
        "whiten": False,
        "synthetic": "auto",
    },
    "cosface + dihedral + glyphs + whitening": {"method": "cosface", "synthetic": "auto"},
    "semi-hard + dihedral + glyphs, not whitened": {
        "method": "triplet",
        "whiten": False,
        "synthetic": "auto",
    },
    "semi-hard + dihedral + glyphs + whitening (the default before random erasing)": {
        "method": "triplet",
        "synthetic": "auto",
    },
    "semi-hard + dihedral + glyphs + whitening + random erasing (default)": {
        "method": "triplet",
        "synthetic": "auto",
        "augment": "crop,erase",
    },
    "cosface + dihedral + glyphs + whitening + random erasing": {
        "method": "cosface",
        "synthetic": "auto",
        "augment": "crop,erase",
    },
    # five encoders (seeds s..s+4) joined into one embedding: 5x the time
    "the default, an ensemble of 5 encoders (--members 5)": {
        "method": "triplet",
        "members": 5,
        "synthetic": "auto",
        "augment": "crop,erase",
    },
    "the former default, an ensemble of 5 encoders": {
        "method": "triplet",
        "members": 5,
        "synthetic": "auto",
    },
    # 20 plain conv layers (He et al.'s CIFAR net) instead of LeNet-5: ~30 min a run on one core
    "the former default with the cifar_plain20 backbone": {
        "method": "triplet",
        "backbone": "cifar_plain20",
        "synthetic": "auto",
    },
}


CEILING = "not valid, a ceiling: the former default, half of 6-9 in training"


def half_seen(
    seen: IdentitySet, unseen: IdentitySet, norm: dict, seed: int
) -> tuple[IdentitySet, IdentitySet, dict]:
    """The split that breaks the rule: half of every unseen identity's images are trained on,
    the other half are enrolled and probed."""
    perm = torch.randperm(len(unseen.labels), generator=torch.Generator().manual_seed(seed))
    train, test = perm[: len(perm) // 2], perm[len(perm) // 2 :]
    return (
        IdentitySet(
            torch.cat([seen.images, unseen.images[train]]),
            torch.cat([seen.labels, unseen.labels[train]]),
            seen.names,
        ),
        IdentitySet(unseen.images[test], unseen.labels[test], unseen.names),
        norm,
    )


CLASSIFIER = "not valid, a ceiling: a LeNet-5 classifier of all ten digits, half of each trained"


class Penultimate(torch.nn.Module):
    """A classifier's last hidden layer (FC 84 after ReLU), L2-normalised: ``(B, C, H, W) ->
    (B, 84)``."""

    def __init__(self, classifier: torch.nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.classifier.forward_features(x)
        return F.normalize(self.classifier.head[:-1](features), dim=1)


def classifier_ceiling(seen: IdentitySet, unseen: IdentitySet, seed: int) -> dict:
    """Cross-entropy on half of every identity's images, the unseen ones included (30 epochs,
    AdamW, random shifts of up to 2 px); tau chosen on the held-out half of the seen
    identities, scored on the held-out half of the unseen ones."""
    from cnnlab.registry import create_model

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    halves = []
    for part in (seen, unseen):
        perm = torch.randperm(len(part.labels), generator=g)
        halves.append((perm[: len(perm) // 2], perm[len(perm) // 2 :]))
    x = torch.cat([seen.images[halves[0][0]], unseen.images[halves[1][0]]])
    y = torch.cat([seen.labels[halves[0][0]], unseen.labels[halves[1][0]]])
    model = create_model("lenet5", num_classes=len(seen.names), in_channels=x.shape[1])
    opt = torch.optim.AdamW(model.parameters(), 3e-3, weight_decay=5e-4)
    for _ in range(30):
        model.train()
        for idx in torch.randperm(len(y), generator=g).split(64):
            dy, dx = torch.randint(-2, 3, (2,), generator=g).tolist()
            loss = F.cross_entropy(model(x[idx].roll((dy, dx), (2, 3))), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    encoder = Penultimate(model.eval())
    held_out = seen.images[halves[0][1]], seen.labels[halves[0][1]]
    with torch.no_grad():
        scores, same = pair_scores(encoder(held_out[0]), held_out[1], N_PAIRS, g)
    test = IdentitySet(unseen.images[halves[1][1]], unseen.labels[halves[1][1]], unseen.names)
    with torch.no_grad():
        return evaluate_unseen(encoder, test, -choose_threshold(scores, same)[0], seed)[0]


class Pixels(torch.nn.Module):
    """The no-learning baseline: the standardised image itself, L2-normalised."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x.flatten(1), dim=1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", default="", help="run only the rows whose name contains this")
    parser.add_argument(
        "--exclude", default="", help="skip the rows whose name contains one of these (commas)"
    )
    args = parser.parse_args()
    excluded = [t for t in args.exclude.split(",") if t]

    def wanted(name: str) -> bool:
        return args.only in name and not any(t in name for t in excluded)

    def done(name: str, runs: list[dict]) -> None:  # one JSON line per row as it finishes
        results[name] = {k: statistics.median(r[k] for r in runs) for k in KEYS if k in runs[0]}
        print(json.dumps({"row": name, **results[name]}), flush=True)

    root = tempfile.mkdtemp(prefix="cnnlab-faces-bench-")  # one per process: runs in parallel
    quiet = Console(stderr=True, quiet=True)
    table = Table(title="faces on unseen digits 6-9 (median of seeds)")
    table.add_column("method")
    for key in KEYS:
        table.add_column(key.replace("identification_", "").replace("_", " "), justify="right")
    results: dict[str, dict] = {}
    seen, unseen, norm = load_identities(FacesConfig())
    g = torch.Generator().manual_seed(0)
    scores, same = pair_scores(Pixels()(seen.images), seen.labels, N_PAIRS, g)
    tau = -choose_threshold(scores, same)[0]  # chosen on the seen identities, as for the others
    pixels = [evaluate_unseen(Pixels(), unseen, tau, s)[0] for s in range(args.seeds)]
    done("raw pixels", pixels)
    for name, overrides in ROWS.items():
        if not wanted(name):
            continue
        runs = []
        for seed in range(args.seeds):
            # every step trained, as the table was measured (--patience came later: a row
            # without glyphs may go 200 steps with a zero loss and stop)
            config = replace(FacesConfig(), seed=seed, out=f"{root}/{seed}", patience=0)
            # glyphs only where a row asks for them ("synthetic": "auto"); random erasing
            # only where it asks for it (the rows were measured before it joined the default)
            row = {"synthetic": "none", "augment": "crop", **overrides}
            runs.append(train_faces(replace(config, **row), quiet))
        done(name, runs)
    if wanted(CEILING):  # not a valid result: half of each "unseen" identity trains
        runs = []
        for seed in range(args.seeds):
            config = replace(
                FacesConfig(), seed=seed, out=f"{root}/{seed}", augment="crop", patience=0
            )
            split = half_seen(seen, unseen, norm, seed)
            runs.append(train_faces(config, quiet, identities=split))
        done(CEILING, runs)
    if wanted(CLASSIFIER):  # not valid either: a supervised classifier of all ten digits
        done(CLASSIFIER, [classifier_ceiling(seen, unseen, seed) for seed in range(args.seeds)])
    for name, row in results.items():
        table.add_row(name, *(f"{row[k]:.3f}" if k in row else "-" for k in KEYS))
    Console().print(table)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
