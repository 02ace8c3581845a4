"""Face verification and recognition with a trained encoder (slides "Face verification vs. face
recognition", "One-shot learning", "Learning a similarity function").

* Verification: an image and a claimed identity -> same or not, by ``d = ||f(x1) - f(x2)||^2``
  against the identity's enrolled images: same when the nearest ``d <= tau``.
* Recognition: an image -> the enrolled person nearest to it, or "not recognized" when even the
  nearest ``d > tau`` (one enrolled image per person is enough: one-shot learning).

``tau`` is the one the encoder's training chose on held-out images; the enrolled embeddings live
in a :class:`~cnnlab.data.face_db.FaceDatabase` that refuses embeddings of another model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.data.face_db import FaceDatabase
from cnnlab.data.images import image_list
from cnnlab.data.video import Every
from cnnlab.engine.predict import CHUNK, preprocess, source_names
from cnnlab.errors import CnnlabError
from cnnlab.models.siamese import LearnedSimilarity, same_probability, similarity_from_record


def face_meta(ckpt: dict[str, Any]) -> dict[str, Any]:
    """How a file becomes the encoder's input, exactly as in training: the training images were
    resized by ``load_classification``'s default (shorter side, then a centre crop; stretching
    instead distorted every non-square photo), and the digits' light-on-dark look is kept.
    ``ckpt`` is a checkpoint, or the metadata ``cnnlab export`` stored (``invert_light`` is
    then stored as such)."""
    invert = ckpt["invert_light"] if "invert_light" in ckpt else ckpt["config"]["data"] == "digits"
    return {
        "input_size": ckpt["input_size"],
        "normalization": ckpt["normalization"],
        "invert_light": invert,
        "resize": "center-crop",
    }


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(P, D) x (G, D) -> (P, G)`` squared distances as ``|a|^2 + |b|^2 - 2ab`` (no
    ``(P, G, D)`` array), in float64, clipped at 0 against rounding."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.maximum((a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2 * a @ b.T, 0.0)


@dataclass
class FaceEncoder:
    """A trained encoder ``f(x)`` (``cnnlab faces train``'s ``best.pt``, or the ONNX file
    ``cnnlab export`` made of it) with its ``tau``.

    >>> enc = FaceEncoder.load("runs/faces/run/best.pt")  # doctest: +SKIP
    >>> db = enc.database("runs/faces/faces.db")  # doctest: +SKIP
    >>> enc.enroll(db, "ada", ["ada1.png"])  # doctest: +SKIP
    >>> enc.identify(db, ["probe.png"])[0]["identity"]  # doctest: +SKIP
    >>> FaceEncoder.of_database("runs/faces/faces.db")  # doctest: +SKIP

    The database records the file of the encoder that enrolled (``source``), which
    :meth:`of_database` loads again.

    The export keeps the checkpoint's model id: a database enrolled with one is used with the
    other (ONNX Runtime's embeddings differ from PyTorch's by ~1e-6).
    """

    model: Any  # the encoder on its device (OnDevice), or an ExportedNetwork: CPU in and out
    checkpoint: dict[str, Any] = field(repr=False)  # or what export stored beside the graph
    # where it was loaded from: ("checkpoint" or "onnx", the file); a database records it
    source: tuple[str, Path] | None = field(default=None, repr=False)

    @classmethod
    def load(
        cls,
        checkpoint: str | Path | None = None,
        onnx: str | Path | None = None,
        device: str = "auto",
    ) -> FaceEncoder:
        """The encoder in ``checkpoint`` (on ``device``) or, exported, in ``onnx`` (give one)."""
        from cnnlab.engine.predict import load_network

        model, ckpt = load_network(checkpoint, onnx, "embedding", device, "FaceEncoder.load")
        if "tau" not in ckpt and onnx is not None:  # an encoder exported before tau was stored
            raise CnnlabError(
                f"{onnx}: exported without the tau to decide by: export the best.pt of cnnlab "
                "faces train (again, if an earlier cnnlab wrote this file)"
            )
        if "tau" not in ckpt:  # an encoder saved some other way: no threshold to decide with
            raise CnnlabError(
                f"{checkpoint}: not a face encoder (train one with cnnlab faces train)"
            )
        kind, file = ("onnx", onnx) if onnx is not None else ("checkpoint", checkpoint)
        return cls(model, ckpt, (kind, Path(str(file))))

    @classmethod
    def of_database(cls, path: str | Path, device: str = "auto") -> FaceEncoder:
        """The encoder that last enrolled someone in the face database at ``path``, loaded from
        the file the database recorded; a :class:`CnnlabError` when it recorded none (nobody
        enrolled yet, or an earlier cnnlab enrolled them) or the file is gone."""
        recorded = FaceDatabase.encoder_of(path)
        if recorded is None:
            raise CnnlabError(
                f"{path}: no encoder recorded (nobody enrolled, or enrolled by an earlier "
                "cnnlab): give --checkpoint or --onnx"
            )
        kind, file = recorded
        if not file.is_file():
            raise CnnlabError(
                f"{path}: enrolled with {file}, which is no longer there: give --checkpoint or "
                "--onnx (the same model, moved, or its export)"
            )
        encoder = cls.load(**{kind: file}, device=device)
        if encoder.checkpoint["model_id"] != FaceDatabase.model_of(path):
            raise CnnlabError(
                f"{path}: enrolled with {file}, which now holds another model (trained again "
                "there?): give --checkpoint or --onnx of the model that enrolled"
            )
        return encoder

    @property
    def tau(self) -> float:
        return float(self.checkpoint["tau"])

    @cached_property
    def learned(self) -> tuple[LearnedSimilarity, float] | None:
        """A ``--method similarity`` encoder's learned similarity and its logit threshold
        (verification decides by them, as its training scored it), else ``None``."""
        record = self.checkpoint.get("similarity")
        return None if record is None else similarity_from_record(record)

    @property
    def similarity_threshold(self) -> float | None:
        """The learned similarity's threshold as a probability, ``sigmoid(logit threshold)``:
        what verify's ``similarity`` column is compared with; ``None`` without one."""
        return None if self.learned is None else same_probability(self.learned[1])

    def pair_scores(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
        """Scores of the pairs ``a[i], b[i]`` (``(n, D)`` each; higher: more alike) and the
        score at which a pair is the same person: the learned similarity's logits and
        threshold, or ``-d`` and ``-tau``."""
        if (learned := self.learned) is not None:
            similarity, threshold = learned
            with torch.no_grad():
                logits = similarity(torch.from_numpy(a).float(), torch.from_numpy(b).float())
            return logits.double().numpy(), threshold
        return -((a.astype(np.float64) - b) ** 2).sum(1), -self.tau

    def embed(self, paths: Sequence[Any], chunk: int = CHUNK, first: int = 0) -> np.ndarray:
        """``(len(paths), D)`` embeddings of images, ``chunk`` at a time: files, or images a
        program holds (Pillow images, numpy ``uint8`` arrays: a camera frame), as for
        :func:`~cnnlab.engine.predict.preprocess` (an error calls one ``images[first + i]``).
        :meth:`enroll`, :meth:`verify` and :meth:`identify` take the same, and videos
        (:meth:`embed_named`)."""
        from cnnlab.data.images import with_progress

        paths = image_list(paths)  # a generator too, or one image alone
        meta, parts = face_meta(self.checkpoint), []
        starts = range(0, max(len(paths), 1), chunk)  # no files: one empty batch
        with torch.no_grad():
            for start in with_progress(starts, "embedding", files=len(paths)):
                batch = preprocess(paths[start : start + chunk], meta, first=first + start)
                parts.append(self.model(batch).numpy())
        return np.concatenate(parts)

    def embed_named(self, images: Sequence[Any], every: Every = 1) -> tuple[np.ndarray, list[str]]:
        """``(n, D)`` embeddings and what rows call each: files (by their path) and images in
        memory (``images[i]``) as :meth:`embed` takes them, and each video file among them
        frame by frame (every ``every``-th from the first, ``clip.mp4#frame=i``), streamed: a
        long video is never held, only its embeddings."""
        from cnnlab.data.video import is_video
        from cnnlab.engine.predict import frame_chunks

        images = image_list(images)
        videos = [i for i, x in enumerate(images) if isinstance(x, str | Path) and is_video(x)]
        names: list[str] = []
        parts = []
        meta, start = face_meta(self.checkpoint), 0
        for i in [*videos, len(images)]:  # the images before each video, then the video
            if start < i or (not parts and i == len(images)):  # no image at all: (0, D)
                parts.append(self.embed(images[start:i], first=start))
                names += source_names(images[start:i], start)
            if i < len(images):
                with torch.no_grad():
                    for frames in frame_chunks(images[i], names, every):
                        parts.append(self.model(preprocess(frames, meta)).numpy())
            start = i + 1
        return np.concatenate(parts), names

    def evaluate(
        self,
        data: str | None = None,
        identities: Sequence[str] | None = None,
        seed: int | None = None,
    ) -> Any:
        """This encoder scored on ``data``'s ``identities`` (by default, the ones its training
        held out): :func:`~cnnlab.engine.face_eval.evaluate_encoder`, whose ``metrics`` are
        verification at tau, one-shot, 5-shot and open-set identification."""
        from cnnlab.engine.face_eval import evaluate_encoder

        return evaluate_encoder(self, data, identities, seed)

    def database(self, path: str | Path) -> FaceDatabase:
        """The face database at ``path`` for this encoder's embeddings (made with its folder
        when missing; one another model filled is refused)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return FaceDatabase(path, self.checkpoint["model_id"], self.source)

    def enroll(
        self,
        db: FaceDatabase,
        name: str,
        paths: Sequence[Any],
        others: list[dict[str, str]] | None = None,
        every: Every = 1,
        sources: list[str] | None = None,
    ) -> int:
        """Enrol ``name`` with the images ``paths`` (a video's frames, every ``every``-th:
        :meth:`embed_named`) in one transaction; returns how many were added (an image enrolled
        before for the same person is skipped; one enrolled as another person is added with a
        warning, and listed in ``others`` when given as ``{"source", "enrolled_as"}``). Every
        image is read before the database is touched, so a bad one adds nothing. ``sources``,
        when given, gets what each image read is called."""
        emb, names = self.embed_named(paths, every)
        found = warn_enrolled_as_others(db, name, emb, names)
        if others is not None:
            others.extend({"source": path, "enrolled_as": who} for path, who in found)
        if sources is not None:
            sources.extend(names)
        return db.enroll(name, emb)

    def remove(
        self, db: FaceDatabase, name: str, paths: Sequence[Any], every: Every = 1
    ) -> tuple[int, int]:
        """Remove the images ``paths`` (or a video's frames, :meth:`embed_named`) from
        ``name``'s enrolment (one filed under the wrong person, say), found by their
        embeddings; the person goes with their last image. Returns ``(removed, left)``; an
        image not enrolled as ``name`` removes nothing."""
        return db.remove_images(name, *self.embed_named(paths, every))

    def enroll_people(
        self,
        db: FaceDatabase,
        people: Sequence[tuple[str, Sequence[str | Path]]],
        every: Every = 1,
    ) -> list[dict[str, Any]]:
        """Enrol each ``(name, images)`` (a gallery's person folders,
        :func:`~cnnlab.data.identities.person_folders`; a video among them: its frames, every
        ``every``-th), one transaction a person: every image is read and embedded first, so a
        bad one adds no one, and a crash keeps the people enrolled before it. Returns per
        person ``name``, ``enrolled`` and ``skipped`` (already there), and
        ``enrolled_as_others`` where some images were someone else's already."""
        from cnnlab.data.video import video_of

        if not people:
            return []
        files = [str(f) for _, paths in people for f in paths]
        emb, names = self.embed_named(files, every)  # one pass, one bar for the images
        owner = {f: k for k, (_, paths) in enumerate(people) for f in map(str, paths)}
        whose = np.array([owner[(video_of(n) or (n,))[0]] for n in names], dtype=int)
        rows = []
        for k, (name, _) in enumerate(people):
            part, paths = emb[whose == k], [n for n, w in zip(names, whose, strict=True) if w == k]
            found = warn_enrolled_as_others(db, name, part, paths)
            added = db.enroll(name, part)
            rows.append({"name": name, "enrolled": added, "skipped": len(part) - added})
            if found:
                rows[-1]["enrolled_as_others"] = [
                    {"source": path, "enrolled_as": who} for path, who in found
                ]
        return rows

    def verify(
        self, db: FaceDatabase, name: str, paths: Sequence[Any], every: Every = 1
    ) -> list[dict[str, Any]]:
        """For each image (each frame of a video, every ``every``-th: :meth:`embed_named`): is
        it ``name``? Its distance to ``name``'s nearest enrolled image and ``same`` (``distance
        <= tau``). A ``--method similarity`` encoder decides by its learned similarity instead:
        ``same`` when its logit with one of ``name``'s images reaches the threshold, and
        ``similarity`` is the highest ``sigmoid(logit)``."""
        names, gallery = _enrolled(db)
        mine = [i for i, n in enumerate(names) if n == name]
        if not mine:
            raise db.no_person(name)
        (emb, sources), theirs = self.embed_named(paths, every), gallery[mine]
        d = squared_distances(emb, theirs).min(1)
        rows = [
            {"source": p, "claimed": name, "distance": float(x), "same": bool(x <= self.tau)}
            for p, x in zip(sources, d, strict=True)
        ]
        if self.learned is not None:  # every probe against every enrolled image of name
            n, m = len(emb), len(theirs)
            scores, threshold = self.pair_scores(np.repeat(emb, m, 0), np.tile(theirs, (n, 1)))
            best = scores.reshape(n, m).max(1)
            for row, s in zip(rows, best, strict=True):
                row["similarity"] = same_probability(s)
                row["same"] = bool(s >= threshold)
        return rows

    def identify(
        self, db: FaceDatabase, paths: Sequence[Any], top_k: int = 1, every: Every = 1
    ) -> list[dict[str, Any]]:
        """For each image (each frame of a video, every ``every``-th: :meth:`embed_named`): the
        enrolled person nearest to it (``nearest``, ``distance``) and ``identity``, that person
        when ``distance <= tau``, else ``None`` (not recognized). ``top_k > 1`` adds ``top_k``:
        the ``k`` nearest people, each ``[name, distance to their nearest enrolled image]``,
        nearest first (how close the runners-up came)."""
        names, gallery = _enrolled(db)
        emb, sources = self.embed_named(paths, every)
        d = squared_distances(emb, gallery)
        rows = []
        for p, dist in zip(sources, d, strict=True):
            i = int(np.argmin(dist))
            rows.append(
                {
                    "source": p,
                    "identity": names[i] if dist[i] <= self.tau else None,
                    "nearest": names[i],
                    "distance": float(dist[i]),
                }
            )
        if top_k > 1:
            people, per_person = nearest_per_person(names, d)
            order = np.argsort(per_person, axis=1, kind="stable")[:, :top_k]
            for row, ranked, dist in zip(rows, order, per_person, strict=True):
                row["top_k"] = [[people[j], float(dist[j])] for j in ranked]
        return rows


def nearest_per_person(names: Sequence[str], d: np.ndarray) -> tuple[list[str], np.ndarray]:
    """``d (P, G)``, probe-to-enrolled-image distances with ``names[g]`` the person of image
    ``g`` -> the people (sorted) and ``(P, U)``: each probe's distance to each person's nearest
    image (one-shot or K-shot, a person is as near as their nearest enrolled image)."""
    people = sorted(set(names))
    column = {name: j for j, name in enumerate(people)}
    per_person = np.full((len(people), len(d)), np.inf)
    np.minimum.at(per_person, [column[n] for n in names], d.T)  # (U, P) <- rows of (G, P)
    return people, per_person.T


def warn_enrolled_as_others(
    db: FaceDatabase, name: str, emb: np.ndarray, paths: Sequence[str | Path]
) -> list[tuple[str, str]]:
    """Warn of each image ``paths[i]`` (embedded as ``emb[i]``, ``(n, D)``) that someone other
    than ``name`` already has enrolled (within :data:`~cnnlab.data.face_db.SAME_IMAGE`): one
    photo filed under two people, or a gallery folder copied into another, would make the
    nearest person a tie at distance 0. The image is still enrolled (the database cannot know
    which name is right); returns ``(path, the others)`` pairs ("ann", "ann and bo")."""
    import warnings

    from cnnlab.data.face_db import SAME_IMAGE
    from cnnlab.words import counted, listed

    names, gallery = db.gallery()
    others = [i for i, n in enumerate(names) if n != name]
    if not others or not len(emb):
        return []
    theirs, found = gallery[others], []
    for start in range(0, len(emb), CHUNK):  # (CHUNK, G) distances at a time
        d = squared_distances(emb[start : start + CHUNK], theirs)
        for i in np.flatnonzero(d.min(1) <= SAME_IMAGE):
            holders = sorted({names[others[j]] for j in np.flatnonzero(d[i] <= SAME_IMAGE)})
            found.append((str(paths[start + i]), listed(holders)))
    if found:
        shown = ", ".join(f"{path} ({who})" for path, who in found[:3])
        more = f" and {len(found) - 3} more" if len(found) > 3 else ""
        warnings.warn(
            f"{counted(len(found), 'image')} of {name} already enrolled as someone else, "
            f"enrolled anyway: {shown}{more} (faces remove --name NAME IMAGE takes an image "
            "out of the wrong person)",
            stacklevel=2,
        )
    return found


def _enrolled(db: FaceDatabase) -> tuple[list[str], np.ndarray]:
    names, gallery = db.gallery()
    if not names:
        raise CnnlabError(f"{db.path}: nobody is enrolled yet (cnnlab faces enroll)")
    return names, gallery
