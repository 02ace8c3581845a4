"""Face verification and recognition: training a Siamese encoder with mined triplets (or a
learned similarity on pairs), choosing tau, and measuring one-shot learning on identities the
network never saw (the measuring itself: :mod:`cnnlab.engine.face_scores`).

The bundled default is honest about what it is: no face-identity data ships with any package
here, so "identities" are scikit-learn's handwritten digits: classes 0-5 are the people seen in
training, 6-9 people never seen. One-shot identification on 6-9 from a single enrolled image
measures exactly what face recognition needs: generalisation to new identities.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.markup import escape

from cnnlab.config import FacesConfig
from cnnlab.data.classification import (
    channel_stats,
    load_classification,
    normalize,
    resize_batch,
    to_uint8,
)
from cnnlab.data.glyphs import GlyphIdentities, draw_glyphs, random_glyphs
from cnnlab.data.identities import IdentitySet, dihedral_identities
from cnnlab.engine.checkpoint import save_checkpoint
from cnnlab.engine.device import resolve_device
from cnnlab.engine.face_scores import (
    N_PAIRS,
    choose_threshold,
    embed,
    evaluate_unseen,
    pair_scores,
    plot_roc,
    plot_worst_pairs,
)
from cnnlab.engine.run_folders import run_folder, warn_if_reused
from cnnlab.engine.runlog import announce, epoch_progress, one_cycle, optimizer_step
from cnnlab.engine.transfer import (
    backbone_groups,
    freeze_part,
    pretrained_backbone,
    train_mode,
    warn_frozen_at_random,
)
from cnnlab.errors import CnnlabError
from cnnlab.losses.cosface import CosFaceLoss
from cnnlab.losses.triplet import (
    gather_rows,
    mined_triplet_loss,
    random_triplets,
    triplet_loss,
)
from cnnlab.models.shapes import shapes_only
from cnnlab.models.siamese import (
    LearnedSimilarity,
    SiameseEncoder,
    SiameseEnsemble,
    same_probability,
    similarity_record,
)
from cnnlab.registry import create_model
from cnnlab.words import comma_names

DIGITS_UNSEEN = ("6", "7", "8", "9")  # the split: train on 0-5, one-shot on 6-9


def held_out_names(unseen: str, class_names: list[str], data: str) -> list[str]:
    """The identities ``--unseen`` names (comma-separated); when it names none, the digits'
    6-9, or for other data a fifth of its identities (at least 2), drawn with a fixed seed so
    every run on a folder holds out the same people and their figures compare."""
    if unseen.strip():
        return comma_names(unseen)
    if data == "digits":
        return list(DIGITS_UNSEEN)
    count = max(2, round(len(class_names) / 5))
    drawn = torch.randperm(len(class_names), generator=torch.Generator().manual_seed(0))
    return [class_names[int(i)] for i in drawn[:count].sort().values]


def load_identities(config: FacesConfig) -> tuple[IdentitySet, IdentitySet, dict]:
    """Seen (training) and unseen identities, standardised with the seen images' statistics."""
    data = load_classification(
        config.data, image_size=config.image_size, val_fraction=0, test_fraction=0
    )
    x, y = data.splits["train"].images, data.splits["train"].labels
    unseen_names = held_out_names(config.unseen, data.class_names, config.data)
    missing = [n for n in unseen_names if n not in data.class_names]
    if missing:
        known = ", ".join(data.class_names[:10]) + (", ..." if len(data.class_names) > 10 else "")
        raise CnnlabError(
            f"--unseen names unknown identities: {', '.join(missing)} ({config.data} has {known})"
        )
    unseen_ids = torch.tensor([data.class_names.index(n) for n in unseen_names])
    is_unseen = torch.isin(y, unseen_ids)
    if len(data.class_names) < 4 and not config.unseen.strip():
        raise CnnlabError(
            f"{config.data}: {len(data.class_names)} identities; faces train needs at least 4: "
            "2 to train on and 2 held out, never seen, to score the encoder on"
        )
    if len(unseen_ids) < 2 or len(data.class_names) - len(unseen_ids) < 2:
        raise CnnlabError(
            "--unseen must hold out at least 2 identities and leave at least 2 for training "
            f"({len(data.class_names)} identities in {config.data})"
        )
    # the seen images' statistics only: the never-seen identities stay unseen, even in the mean
    mean, std = channel_stats(x[~is_unseen])
    norm = {"mean": list(mean), "std": list(std)}

    def part(mask: torch.Tensor) -> IdentitySet:
        return IdentitySet(normalize(x[mask], mean, std), y[mask], data.class_names)

    return part(~is_unseen), part(is_unseen), norm


def pk_batch(labels: torch.Tensor, p: int, k: int, g: torch.Generator) -> torch.Tensor:
    """Indices of P random identities x K random images each."""
    ids = labels.unique()
    chosen = ids[torch.randperm(len(ids), generator=g)[:p]]
    out = []
    for c in chosen:
        pool = (labels == c).nonzero().flatten()
        out.append(pool[torch.randint(len(pool), (k,), generator=g)])
    return torch.cat(out)


def glyph_option(config: FacesConfig, option: str, on: str) -> bool:
    """Whether an option that suits glyphs, not faces (``auto``, ``on`` or ``none``) is on:
    ``auto`` means on for the digits only."""
    value = getattr(config, option)  # FacesConfig checked it is one of the three
    return value == on or (value == "auto" and config.data == "digits")


def training_identities(config: FacesConfig, seen: IdentitySet) -> IdentitySet:
    """The identities the encoder trains on: the seen ones, or their dihedral family."""
    if not glyph_option(config, "identities", "dihedral"):
        return seen
    images, labels = dihedral_identities(seen.images, seen.labels)
    return IdentitySet(images, labels, seen.names)


class GlyphBatches:
    """P random glyph identities x K new drawings each, as standardised training images whose
    labels follow the real identities' (``offset + glyph``)."""

    def __init__(self, config: FacesConfig, channels: int, norm: dict, offset: int) -> None:
        self.g = torch.Generator().manual_seed(config.seed + 1)
        self.glyphs: GlyphIdentities = random_glyphs(config.synthetic_identities, self.g)
        self.p, self.k, self.offset = config.p * 2, config.k, offset
        self.size, self.channels = config.image_size, channels
        self.mean, self.std = norm["mean"], norm["std"]

    def __len__(self) -> int:
        return len(self.glyphs)

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.randperm(len(self.glyphs), generator=self.g)[: self.p].repeat_interleave(self.k)
        x = resize_batch(draw_glyphs(self.glyphs, ids, self.g), self.size)
        x = normalize(x.expand(-1, self.channels, -1, -1), self.mean, self.std)
        return x, ids + self.offset


def glyph_batches(
    config: FacesConfig, channels: int, norm: dict, offset: int
) -> GlyphBatches | None:
    """The synthetic identities this run adds to every batch, or ``None``."""
    if not glyph_option(config, "synthetic", "glyphs"):
        return None
    return GlyphBatches(config, channels, norm, offset)


def train_encoder(
    config: FacesConfig,
    train: IdentitySet,
    kwargs: dict[str, Any],
    norm: dict,
    g: torch.Generator,
    console: Console,
    label: str = "faces",
    losses: list[float] | None = None,
) -> tuple[SiameseEncoder, LearnedSimilarity | None, GlyphBatches | None]:
    """One encoder (and the learned similarity, for that method) trained on ``train``'s
    identities plus the run's glyphs with ``config.method``, then whitened on new glyphs when
    ``kwargs["whiten"]``; ``g`` draws the batches (on the CPU, so a seed draws the same ones on
    any device). Trains on ``config.device`` and returns the modules on the CPU; each step's
    loss is appended to ``losses`` when given. Training ends early once ``config.patience``
    steps in a row had a zero loss (every mined triplet of those batches met the margin)."""
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    model = create_model("siamese", **kwargs)
    if config.pretrained:  # the backbone's weights; the embedding layer starts fresh
        console.print(escape(f"{label}: " + pretrained_backbone(model, config.pretrained)))
    freeze_part(model, config.freeze)
    model.to(device)
    similarity = (
        LearnedSimilarity(config.embedding_dim, config.similarity)
        if config.method == "similarity"
        else None
    )
    if similarity is not None:
        similarity.to(device)
    params = list(similarity.parameters()) if similarity else []  # the loss's own, if any
    from cnnlab.data.augment import build_augmentation, parse_augment

    channels = train.images.shape[1]
    augment = build_augmentation(
        parse_augment(config.augment), image_size=config.image_size, channels=channels
    )
    labels = train.labels
    glyphs = glyph_batches(config, channels, norm, int(labels.max()) + 1)
    n_identities = int(labels.max()) + 1 + (len(glyphs) if glyphs else 0)
    cosface = None
    if config.method == "cosface":
        cosface = CosFaceLoss(config.embedding_dim, n_identities, config.scale, config.margin)
        params += list(cosface.to(device).parameters())
    groups = backbone_groups(model, config.lr, config.backbone_lr_mult, params)
    opt = torch.optim.AdamW(groups, lr=config.lr, weight_decay=1e-4)
    sched = one_cycle(opt, config.steps, warmup=0.3)  # torch's default warm-up
    idle = 0  # steps in a row with a zero loss
    with epoch_progress(console, unit="step") as progress:
        task = progress.add_task(label, total=config.steps, stats="")
        for step in range(1, config.steps + 1):
            train_mode(model)
            idx = pk_batch(labels, config.p, config.k, g)
            x, y = train.images[idx], labels[idx]
            if glyphs is not None:
                gx, gy = glyphs.sample()
                x, y = torch.cat([x, gx]), torch.cat([y, gy])
            x = x.to(device)
            emb = model(augment(x) if augment is not None else x)
            stats: dict[str, float] = {}
            if cosface is not None:
                loss = cosface(emb, y.to(device))
            elif similarity is not None:
                # uniform random pairs from the whole batch, glyphs included: mostly "different".
                # Measured against balanced pairs (half "same"), seed 0: unseen AUC 0.88 vs
                # 0.78, one-shot 0.81 vs 0.78; pushing identities apart generalises better
                a = torch.randint(len(y), (len(y),), generator=g)
                b = torch.randint(len(y), (len(y),), generator=g)
                loss = F.binary_cross_entropy_with_logits(
                    similarity(gather_rows(emb, a), gather_rows(emb, b)),
                    (y[a] == y[b]).float().to(device),
                )
            elif config.mining == "random":
                a, p, n = random_triplets(y, g)
                loss = triplet_loss(
                    *(gather_rows(emb, i) for i in (a, p, n)), config.alpha, reduction="mean"
                )
            else:
                loss, stats = mined_triplet_loss(emb, y.to(device), config.mining, config.alpha)
            value = optimizer_step(loss, opt, sched, f"step {step}", bf16=False)
            if losses is not None:
                losses.append(value)
            progress.update(
                task,
                advance=1,
                stats=f"loss {value:.4f}" + (f"  active {stats['active']:.2f}" if stats else ""),
            )
            idle = idle + 1 if value == 0.0 else 0
            if config.patience and idle >= config.patience:
                progress.update(task, total=step)
                break
    if config.patience and idle >= config.patience:
        console.print(
            f"{label}: stopped at step {step:,} of {config.steps:,}: the last "
            f"{config.patience:,} batches all had a zero loss (every triplet met the margin: "
            "no gradient); --patience 0 trains every step"
        )
    model.cpu()  # whitening, tau and the scores are small: the CPU, whatever trained
    if similarity is not None:
        similarity.cpu()
    if kwargs.get("whiten"):  # 1,280 drawings of glyph identities never trained on
        fresh = GlyphBatches(replace(config, seed=config.seed + 100), channels, norm, 0)
        model.fit_whitening(embed(model, torch.cat([fresh.sample()[0] for _ in range(10)])))
    return model, similarity, glyphs


def _announce(
    config: FacesConfig,
    console: Console,
    kwargs: dict[str, Any],
    train: IdentitySet,
    n_val: int,
    unseen: IdentitySet,
    device: torch.device,
    drawn: bool = False,
) -> None:
    """The line a run starts with: the encoder, the identities it trains on and the ones it
    will never see (``drawn``: by :func:`held_out_names`, not named by ``--unseen``)."""
    with shapes_only():
        ghost = create_model("siamese", **kwargs)
    trained_on = len(train.labels.unique())
    if glyph_option(config, "identities", "dihedral"):  # labels 8 * identity + transform
        people = len((train.labels // 8).unique())
        ids = f"{people} identities ({trained_on} with their rotations and mirrors)"
    else:
        ids = f"{trained_on} identities"
    if glyph_option(config, "synthetic", "glyphs"):
        ids += f" + {config.synthetic_identities:,} glyph identities"
    never = ", ".join(unseen.names[int(i)] for i in unseen.labels.unique())
    about = (
        f"{config.data}: {ids}, {len(train.labels):,} train / {n_val:,} held-out images (for "
        f"tau); never seen: {never} ({len(unseen.labels):,} images"
        + ("; drawn once for these data: --unseen names others)" if drawn else ")")
    )
    how = "fp32" + (f", {config.members} members" if config.members > 1 else "")
    name = f"siamese ({config.backbone}, {config.embedding_dim}-d)"
    announce(console, name, ghost, train.images.shape[1:], about, device, how)


def train_faces(
    config: FacesConfig,
    console: Console | None = None,
    identities: tuple[IdentitySet, IdentitySet, dict] | None = None,
) -> dict[str, Any]:
    """Train on the seen identities, choose tau, measure on the unseen ones. ``identities``
    replaces :func:`load_identities` (``seen, unseen, normalization``) for other splits. With
    ``config.members`` > 1, that many encoders train apart (seeds ``seed``, ``seed + 1``, ...)
    and join as a :class:`SiameseEnsemble`."""
    from cnnlab.data.augment import parse_augment

    device = resolve_device(config.device)  # a bad --device fails before any work
    parse_augment(config.augment)  # and so does a misspelt --augment
    out = run_folder(config.out, "faces", warn=False)  # warned once the identities are checked
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)  # an --out that cannot be a folder fails here too
    try:
        return _train_faces(config, console or Console(stderr=True), identities, device, out)
    except KeyboardInterrupt:  # Ctrl-C: nothing is written before the end
        raise KeyboardInterrupt(
            "faces train writes its run folder at the end and has no --resume (a run of the "
            "default takes about a minute): run it again"
        ) from None
    finally:  # stopped by an error or Ctrl-C before writing: the empty folder this run made
        if made and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # (not one that was there)


def _train_faces(
    config: FacesConfig,
    console: Console,
    identities: tuple[IdentitySet, IdentitySet, dict] | None,
    device: torch.device,
    out: Path,
) -> dict[str, Any]:
    """:func:`train_faces` once its run folder ``out`` is made."""
    started = time.perf_counter()
    seen, unseen, norm = identities or load_identities(config)
    drawn = not config.unseen.strip() and config.data != "digits"  # held_out_names drew them
    # the names held out, in best.pt's config (faces eval scores on them by default)
    config = replace(config, unseen=",".join(unseen.names[int(i)] for i in unseen.labels.unique()))
    g = torch.Generator().manual_seed(config.seed)
    kwargs = {
        "backbone": config.backbone,
        "embedding_dim": config.embedding_dim,
        "in_channels": seen.images.shape[1],
        "input_size": config.image_size,
        "pool_size": config.pool_size,
    }
    if (
        config.whiten
        and config.method != "similarity"  # its weights are fitted to the plain embedding
        and glyph_option(config, "synthetic", "glyphs")
    ):
        kwargs["whiten"] = True
    # hold out 15% of the seen identities' images to choose tau
    perm = torch.randperm(len(seen.labels), generator=g)
    n_val = min(max(10, len(perm) // 7), len(perm) // 2)  # small folders keep half to train
    val_i, train_i = perm[:n_val], perm[n_val:]
    if len(seen.labels[train_i].unique()) < 2:
        raise CnnlabError(
            f"{config.data}: the training identities have only {len(perm)} images; choosing tau "
            f"holds out {min(n_val, len(perm))}, which leaves fewer than 2 identities to train on"
        )
    train = training_identities(
        config, IdentitySet(seen.images[train_i], seen.labels[train_i], seen.names)
    )
    warn_if_reused(out)  # an --out holding an earlier run: said before the run begins
    _announce(config, console, kwargs, train, len(val_i), unseen, device, drawn)
    warn_frozen_at_random(config.freeze, config.pretrained)
    losses: list[list[float]] = [[] for _ in range(config.members)]
    trained = [  # member i: seed + i for its weights, batches and glyphs
        train_encoder(
            replace(config, seed=config.seed + i),
            train,
            kwargs,
            norm,
            g if i == 0 else torch.Generator().manual_seed(config.seed + i),
            console,
            "faces" if config.members == 1 else f"member {i + 1}/{config.members}",
            losses[i],
        )
        for i in range(config.members)
    ]
    members = [encoder for encoder, _, _ in trained]
    _, similarity, glyphs = trained[0]
    model: torch.nn.Module = members[0] if len(members) == 1 else SiameseEnsemble(members)
    name = "siamese" if len(members) == 1 else "siamese_ensemble"
    if len(members) > 1:
        kwargs = {"members": len(members), **kwargs}
    # tau is chosen on the seen identities only. Adding as many pairs of new glyph identities
    # (to set it for identities the encoder never trained on) measured worse on the default,
    # 3 seeds: unseen verification 0.877 -> 0.867, open-set rejection 0.94 -> 0.71
    val_emb = embed(model, seen.images[val_i])
    scores, same = pair_scores(val_emb, seen.labels[val_i], N_PAIRS, g, similarity)
    threshold, roc = choose_threshold(scores, same)
    tau = -threshold if similarity is None else float("inf")
    if similarity is not None:  # open-set rejection still needs a distance threshold
        d_scores, d_same = pair_scores(val_emb, seen.labels[val_i], N_PAIRS, g)
        tau = -choose_threshold(d_scores, d_same)[0]
    unseen_emb = embed(model, unseen.images)  # scored here, drawn in embedding_map.png
    metrics, roc_unseen = evaluate_unseen(
        model,
        unseen,
        tau,
        config.seed,
        similarity,
        threshold if similarity is not None else 0.0,
        unseen_emb,
    )
    state = {k: v.cpu() for k, v in model.state_dict().items()}
    payload = {
        "model": name,
        "model_kwargs": kwargs,
        "config": asdict(config),
        "state_dict": state,
        "tau": tau,
        "normalization": norm,
        "input_size": [seen.images.shape[1], config.image_size, config.image_size],
        "model_id": hashlib.sha256(
            b"".join(v.numpy().tobytes() for v in state.values())
        ).hexdigest()[:16],
    }
    if similarity is not None:  # what faces verify decides by, as training scored it
        payload["similarity"] = similarity_record(similarity, threshold)
    save_checkpoint(out / "best.pt", payload)
    # the settings, as every training command's run folder holds them (cnnlab runs reads them)
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
    plot_roc(
        {"seen identities, held-out images": roc, "never-seen identities": roc_unseen},
        out / "roc.png",
    )
    mean, std = (torch.tensor(norm[k]).view(-1, 1, 1) for k in ("mean", "std"))
    plot_worst_pairs(
        roc_unseen["worst_pairs"],
        lambda k: to_uint8(unseen.images[k] * std + mean),  # as the encoder saw it
        lambda k: unseen.names[int(unseen.labels[k])],
        threshold if similarity is not None else -tau,
        out / "verification_mistakes.png",
        learned=similarity is not None,
        which="never-seen pairs",
    )
    if glyphs is not None:
        plot_glyphs(glyphs.glyphs, out / "glyphs.png")
    from cnnlab.viz.plots import plot_confusion_matrix, plot_embedding_map, plot_step_losses

    what = config.method if config.method != "triplet" else f"triplet ({config.mining})"
    plot_step_losses(losses, out / "loss.png", f"{what} loss per step")
    plot_embedding_map(
        {
            "seen identities, held-out images": (val_emb, seen.labels[val_i], seen.names),
            "never-seen identities": (unseen_emb, unseen.labels, unseen.names),
        },
        out / "embedding_map.png",
    )

    if "confusion_1_shot" in metrics:  # not for more identities than a table can show
        plot_confusion_matrix(
            torch.tensor(metrics["confusion_1_shot"]["counts"]),
            metrics["confusion_1_shot"]["names"],
            out / "confusion_1_shot.png",
            "never-seen identities named after one image each",
            shares=True,
        )
    result = {
        "run_dir": str(out),
        "tau": tau,
        "auc": roc["auc"],
        "eer": roc["eer"],
        "val_accuracy": roc["val_accuracy"],
        **metrics,
        "seconds": round(time.perf_counter() - started, 1),
        "device": str(device),
        "steps_trained": [len(member) for member in losses],
        "loss_first_100_steps": _mean_loss(losses, slice(None, 100)),
        "loss_last_100_steps": _mean_loss(losses, slice(-100, None)),
    }
    if all(len(member) < config.steps for member in losses):  # --patience ended every member
        result["stopped_early_at"] = max(len(member) for member in losses)
    if similarity is not None:  # verification's threshold, as a probability
        result["similarity_threshold"] = same_probability(threshold)
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _mean_loss(losses: list[list[float]], part: slice) -> float:
    """The mean loss over ``part`` of every trained member's steps."""
    values = [v for run in losses for v in run[part]]
    return sum(values) / len(values)


def plot_glyphs(glyphs: GlyphIdentities, path: Path, rows: int = 6, drawings: int = 8) -> Path:
    """What the synthetic identities look like: one glyph per row, new drawings across."""
    from cnnlab.viz.plots import plot_augmentation_grid

    ids = torch.arange(rows).repeat_interleave(drawings)
    x = draw_glyphs(glyphs, ids, torch.Generator().manual_seed(0)).view(rows, drawings, 1, 8, 8)
    return plot_augmentation_grid(
        list(x),
        path,
        title="synthetic identities: one glyph per row, new drawings across",
        row_labels=[f"glyph {i}" for i in range(rows)],
    )
