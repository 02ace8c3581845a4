"""A trained encoder scored on identities (``cnnlab faces eval``): verification at its tau,
one-shot and 5-shot identification, open-set rejection, the ROC and the pairs decided most
wrongly (:func:`~cnnlab.engine.face_scores.evaluate_unseen`, as training measures its
never-seen identities), on any identities: a folder of people the encoder never met, a bundled
dataset's classes, or the ones its training held out (which reproduces training's figures).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.data.identities import IdentitySet
from cnnlab.engine.face_scores import evaluate_unseen
from cnnlab.engine.recognition import FaceEncoder, face_meta
from cnnlab.errors import CnnlabError
from cnnlab.words import comma_names


@dataclass
class ScoredIdentities:
    """What :func:`evaluate_encoder` measured (``metrics``: evaluate_unseen's figures; ``roc``:
    the ROC of the pairs and their worst ones), on which ``data`` and ``identities``; image
    ``k``'s ``sources[k]`` (a file, or ``"digits image 1234"``), whose it is (``who``) and how
    to draw it (``picture``, ``(C, H, W)`` uint8)."""

    metrics: dict[str, Any]
    roc: dict[str, Any]
    data: str
    identities: list[str]
    sources: list[str]
    seed: int
    picture: Callable[[int], torch.Tensor]
    who: Callable[[int], str]


def trained_on(encoder: FaceEncoder) -> dict[str, Any]:
    """The encoder's training ``data``, held-out ``unseen`` identities and ``seed``: a
    checkpoint's config, or what ``cnnlab export`` kept of it (``{}`` when neither says)."""
    ckpt = encoder.checkpoint
    return dict(ckpt.get("config") or ckpt.get("trained_on") or {})


def _same_data(a: str, b: str | None) -> bool:
    """Whether ``--data a`` names the data ``b`` the encoder trained on (a folder by its path)."""
    if b is None:
        return False
    if Path(a).is_dir() and Path(b).is_dir():
        return Path(a).resolve() == Path(b).resolve()
    return a == b


def evaluate_encoder(
    encoder: FaceEncoder,
    data: str | None = None,
    identities: Sequence[str] | None = None,
    seed: int | None = None,
    skipped: list[str] | None = None,
) -> ScoredIdentities:
    """Score ``encoder`` on the ``identities`` of ``data``: a folder ``root/<person>/*.jpg``
    (its files read as ``faces enroll`` reads them; unreadable ones noted in ``skipped``), or a
    bundled or downloaded dataset by name, its classes the identities. By default ``data`` is
    the one the encoder trained on, and then ``identities`` its held-out ``unseen`` ones (the
    figures of its run's ``results.json``); on other data, every identity. ``seed`` (default:
    the training's) draws the pairs and galleries."""
    trained = trained_on(encoder)
    data = data or trained.get("data")
    if not data:
        raise CnnlabError("this encoder does not say what it trained on: give --data")
    if identities is None and _same_data(data, trained.get("data")):
        identities = comma_names(trained.get("unseen", ""))
    seed = int(trained.get("seed", 0)) if seed is None else seed
    channels, *_, size = face_meta(encoder.checkpoint)["input_size"]  # C, S, S
    if Path(data).is_dir():  # people's files, read as enrol and identify read them
        from cnnlab.data.identities import person_folders

        people = dict(person_folders(data, skipped, enrolling=False))
        names = _chosen(list(people), identities, data)
        files = [f for n in names for f in people[n]]
        labels = torch.tensor([i for i, n in enumerate(names) for _ in people[n]])
        emb, sources = encoder.embed(files), [str(f) for f in files]
        picture = file_picture(sources, channels)
    else:  # a dataset by name: its images as training read them
        from cnnlab.data.classification import load_classification

        loaded = load_classification(data, image_size=size, val_fraction=0, test_fraction=0)
        x, y = loaded.splits["train"].images, loaded.splits["train"].labels
        chosen = set(_chosen(loaded.class_names, identities, data))
        names = [n for n in loaded.class_names if n in chosen]  # in the classes' order
        wanted = torch.tensor([loaded.class_names.index(n) for n in names])  # ascending
        keep = torch.isin(y, wanted).nonzero().flatten()
        x, labels = x[keep], torch.searchsorted(wanted, y[keep])
        emb = encoder.embed([img.permute(1, 2, 0).numpy() for img in x])
        sources = [f"{data} image {int(k)}" for k in keep]

        def picture(k: int) -> torch.Tensor:
            return x[k]

    embedded = torch.from_numpy(np.ascontiguousarray(emb)).float()
    learned = encoder.learned
    metrics, roc = evaluate_unseen(
        torch.nn.Identity(),
        IdentitySet(embedded, labels, names),
        encoder.tau,
        seed,
        learned[0] if learned else None,
        learned[1] if learned else 0.0,
        embedded,
    )
    return ScoredIdentities(
        metrics, roc, str(data), names, sources, seed, picture, lambda k: names[int(labels[k])]
    )


def file_picture(files: Sequence[str], channels: int) -> Callable[[int], torch.Tensor]:
    """``picture(k)`` for :func:`~cnnlab.engine.face_scores.plot_worst_pairs`: ``files[k]`` as
    a figure shows a file (:func:`~cnnlab.engine.predict.thumbnails`)."""
    from cnnlab.engine.predict import thumbnails

    return lambda k: thumbnails([files[k]], channels)[0]


def _chosen(known: list[str], wanted: Sequence[str] | None, data: str) -> list[str]:
    """``wanted`` identities (all ``known`` ones when ``None``), each checked to be there, at
    least two."""
    names = list(dict.fromkeys(wanted)) if wanted else list(known)
    missing = [n for n in names if n not in known]
    if missing:
        shown = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
        raise CnnlabError(f"{data}: no identity {', '.join(missing)} (it has {shown})")
    if len(names) < 2:
        raise CnnlabError(f"{data}: scoring needs at least 2 identities, got {len(names)}")
    return names
