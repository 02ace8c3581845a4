"""Faces: triplet loss against PyTorch, mining on a hand-made batch, the crash-safe database,
and the command line from training to identification."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import cnnlab
from cnnlab.cli import main
from cnnlab.data.classification import load_digits
from cnnlab.data.face_db import FaceDatabase
from cnnlab.errors import CnnlabError
from cnnlab.losses.triplet import (
    mine_triplets,
    mined_triplet_loss,
    random_triplets,
    triplet_loss,
)
from cnnlab.models.siamese import LearnedSimilarity
from cnnlab.words import counted


def test_triplet_loss_against_pytorch() -> None:
    g = torch.Generator().manual_seed(0)
    a, p, n = (torch.randn(16, 8, generator=g) for _ in range(3))
    oracle = F.triplet_margin_with_distance_loss(
        a, p, n, distance_function=lambda x, y: ((x - y) ** 2).sum(1), margin=0.2, reduction="sum"
    )
    assert triplet_loss(a, p, n, 0.2).item() == pytest.approx(oracle.item(), rel=1e-6)
    # With non-squared distances the slide's form is exactly PyTorch's triplet_margin_loss.
    d_ap, d_an = (a - p).norm(dim=1), (a - n).norm(dim=1)
    assert (d_ap - d_an + 1.0).clamp(min=0).mean().item() == pytest.approx(
        F.triplet_margin_loss(a, p, n, margin=1.0, eps=0).item(), rel=1e-5
    )


def test_mining_picks_the_hardest_on_a_hand_made_batch() -> None:
    # identity 0 at x = 0, 1, 3; identity 1 at x = 2, 10 (1-D embeddings)
    emb = torch.tensor([[0.0], [1.0], [3.0], [2.0], [10.0]])
    labels = torch.tensor([0, 0, 0, 1, 1])
    a, p, n = mine_triplets(emb, labels, "batch_hard")
    hard = {int(i): (int(j), int(k)) for i, j, k in zip(a, p, n, strict=True)}
    assert hard[0] == (2, 3)  # farthest positive x=3, nearest negative x=2
    assert hard[4] == (3, 2)  # identity 1's anchor at 10: positive x=2, nearest negative x=3
    a, p, n = mine_triplets(emb, labels, "semi_hard", alpha=5.0)
    for i, j, k in zip(a.tolist(), p.tolist(), n.tolist(), strict=True):
        assert labels[i] == labels[j] != labels[k]
    a, p, n = mine_triplets(emb, labels, "batch_all", alpha=0.2)
    losses = triplet_loss(emb[a], emb[p], emb[n], 0.2, "none")
    assert (losses > 0).all() and len(a) > 0


def test_batch_all_finds_every_triplet_with_a_positive_loss(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Against the triple loop over every (A, P, N): same triplets, same order, whether the
    anchors are taken all at once or a few at a time."""
    import cnnlab.losses.triplet as T

    g = torch.Generator().manual_seed(1)
    emb = torch.nn.functional.normalize(torch.randn(20, 4, generator=g), dim=1)
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 4, 5, 5, 5, 6, 6, 6, 7, 7])
    d = ((emb[:, None] - emb[None]) ** 2).sum(-1)
    expected = [
        (i, j, k)
        for i in range(20)
        for j in range(20)
        for k in range(20)
        if i != j and labels[i] == labels[j] != labels[k] and d[i, j] - d[i, k] + 0.3 > 0
    ]
    whole = mine_triplets(emb, labels, "batch_all", alpha=0.3)
    assert list(zip(*(t.tolist() for t in whole), strict=True)) == expected
    assert 0 < len(expected) < 20 * 19 * 18  # some triplets are easy, some are not
    monkeypatch.setattr(T, "CHUNK", 3 * 20 * 20)  # three anchors a step
    chunked = mine_triplets(emb, labels, "batch_all", alpha=0.3)
    assert all(torch.equal(x, y) for x, y in zip(whole, chunked, strict=True))
    empty = mine_triplets(emb[:0], labels[:0], "batch_all")
    assert [len(t) for t in empty] == [0, 0, 0]


def test_semi_hard_mining_in_chunks_equals_all_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large P x K batches are mined a few anchor-positive pairs at a time; the triplets are the
    same as in one pass."""
    import cnnlab.losses.triplet as T

    g = torch.Generator().manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(48, 8, generator=g), dim=1)
    labels = torch.arange(6).repeat_interleave(8)
    whole = mine_triplets(emb, labels, "semi_hard", alpha=0.3)
    monkeypatch.setattr(T, "CHUNK", 48 * 7)  # 7 pairs a step: 48 steps for 336 pairs
    chunked = mine_triplets(emb, labels, "semi_hard", alpha=0.3)
    assert len(whole[0]) == 6 * 8 * 7
    assert all(torch.equal(x, y) for x, y in zip(whole, chunked, strict=True))


def test_triplet_inputs_are_checked() -> None:
    """Mismatched shapes and unknown options fail by name; a batch with nothing to mine gives a
    zero loss that still reports the batch's distances (not a fake 0 that reads as collapse)."""
    x = torch.randn(4, 8)
    with pytest.raises(CnnlabError, match=r"\(T, D\) each, got \(4, 8\), \(4, 8\), \(3, 8\)"):
        triplet_loss(x, x, x[:3])
    with pytest.raises(CnnlabError, match="reduction must be sum, mean or none"):
        triplet_loss(x, x, x, reduction="avg")
    with pytest.raises(CnnlabError, match=r"one label each: got \(4, 8\) and labels \(3,\)"):
        mine_triplets(x, torch.tensor([0, 0, 1]))
    loss, stats = mined_triplet_loss(x, torch.zeros(4, dtype=torch.int64))
    assert loss.item() == 0 and stats["triplets"] == 0
    assert stats["mean_distance"] == pytest.approx(torch.cdist(x, x).pow(2).mean().item(), 1e-4)
    # an empty batch: no triplet by any strategy (batch-hard's argmax over no columns raised)
    empty, no_labels = x[:0].requires_grad_(), torch.zeros(0, dtype=torch.int64)
    for strategy in ("batch_hard", "batch_all", "semi_hard"):
        loss, stats = mined_triplet_loss(empty, no_labels, strategy)
        assert loss.item() == 0 and stats["triplets"] == 0 and stats["mean_distance"] == 0
    assert all(len(i) == 0 for i in random_triplets(no_labels))


def test_collapse_warning() -> None:
    emb = torch.zeros(6, 4, requires_grad=True)
    with pytest.warns(UserWarning, match="collapsed"):
        mined_triplet_loss(emb, torch.tensor([0, 0, 1, 1, 2, 2]))


def test_encoder_and_learned_similarity() -> None:
    enc = cnnlab.create_model("siamese", embedding_dim=16)
    f = enc(torch.randn(4, 1, 32, 32))
    assert f.shape == (4, 16) and torch.allclose(f.norm(dim=1), torch.ones(4), atol=1e-5)
    for form in ("l1", "chi2"):
        sim = LearnedSimilarity(16, form)
        out = sim(f[:2], f[2:])
        assert out.shape == (2,) and torch.isfinite(out).all()
    zeros = torch.zeros(1, 16)
    assert torch.isfinite(LearnedSimilarity(16, "chi2")(zeros, zeros)).all()  # guarded 0/0


def test_balanced_pairs() -> None:
    from cnnlab.engine.face_scores import balanced_pairs

    perm = torch.randperm(11, generator=torch.Generator().manual_seed(3))
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 7, 7, 7, 7, 9])[perm]  # 2 and 9: one image each
    i, j, same = balanced_pairs(labels, 400, torch.Generator().manual_seed(0))
    assert len(i) == 400 and same.sum() == 200  # half same, half different
    assert (i[same] != j[same]).all() and (labels[i] == labels[j]).eq(same).all()
    assert not torch.isin(labels[i[same]], torch.tensor([2, 9])).any()
    assert set(torch.cat([i, j]).tolist()) == set(range(11))  # every image takes part
    # thousands of identities with two images each: still exactly balanced
    many = torch.arange(3000).repeat(2)
    _, _, same = balanced_pairs(many, 1000, torch.Generator().manual_seed(0))
    assert same.sum() == 500
    with pytest.raises(CnnlabError, match="at least two images"):
        balanced_pairs(torch.tensor([3]), 4, torch.Generator())


def test_threshold_has_the_best_accuracy_of_all_thresholds() -> None:
    from cnnlab.engine.face_scores import choose_threshold

    rng = np.random.default_rng(0)
    same = rng.random(300) < 0.3  # unbalanced, as a pairs file may be
    scores = rng.normal(same * 1.0, 1.0)
    threshold, roc = choose_threshold(scores, same)
    brute = max(((scores >= t) == same).mean() for t in scores)
    assert roc["val_accuracy"] == pytest.approx(brute)
    assert ((scores >= threshold) == same).mean() == pytest.approx(brute)


def test_worst_pairs_are_the_wrong_ones_worst_first_each_once(tmp_path: Path) -> None:
    """Hand-made pairs at threshold -1 (d <= 1 means "same"): the "different" pairs scored
    at or above it, most alike first, and the "same" pairs below it, least alike first; a pair
    drawn both ways round counts once; ``n`` caps each kind."""
    from cnnlab.engine.face_scores import plot_worst_pairs, worst_pairs

    first = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 2, 8])
    second = torch.tensor([1, 0, 3, 4, 5, 6, 7, 8, 3, 9])
    scores = np.array([-0.2, -0.2, -1.0, -3.0, -0.5, -2.5, -1.5, -0.1, -1.0, -0.9])
    same = np.array([0, 0, 0, 1, 0, 1, 1, 1, 0, 0], bool)
    worst = worst_pairs(first, second, scores, same, -1.0, n=3)
    # different and d <= 1: (0,1) twice, (4,5), (8,9), and (2,3) twice at d = 1 exactly: cut
    assert worst["false_accepts"].tolist() == [[0, 1, -0.2], [4, 5, -0.5], [8, 9, -0.9]]
    every = worst_pairs(first, second, scores, same, -1.0)["false_accepts"]
    assert len(every) == 4 and every[-1].tolist() == [2, 3, -1.0]
    # same and d > 1: (3,4) d 3, (5,6) d 2.5, (6,7) d 1.5; (7,8) at d 0.1 is right
    assert worst["false_rejects"].tolist() == [[3, 4, -3.0], [5, 6, -2.5], [6, 7, -1.5]]
    # drawn: one picture per pair; nothing wrong, no figure
    drawn: list[int] = []

    def picture(k: int) -> torch.Tensor:
        drawn.append(k)
        return torch.full((1, 8, 8), 25 * k, dtype=torch.uint8)

    path = tmp_path / "mistakes.png"
    args = (picture, str, -1.0)
    assert plot_worst_pairs(worst, *args, path) == path and path.is_file()
    assert drawn == [0, 1, 4, 5, 8, 9, 3, 4, 5, 6, 6, 7]  # the pairs', in their order
    right = {kind: rows[:0] for kind, rows in worst.items()}
    assert plot_worst_pairs(right, *args, tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_open_set_rates_trade_off_through_tau() -> None:
    """Identities 0-3 as tight clusters around four corners of a square: at a lax tau every
    enrolled image is named and no stranger is rejected; at tau 0 the reverse."""
    from cnnlab.data.identities import IdentitySet
    from cnnlab.engine.face_scores import evaluate_unseen

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat_interleave(6)
    centres = torch.eye(4)[labels]
    images = F.normalize(centres + 0.01 * torch.randn(24, 4, generator=g), dim=1)
    unseen = IdentitySet(images, labels, ["a", "b", "c", "d"])
    lax, _ = evaluate_unseen(torch.nn.Identity(), unseen, 10.0, 0)
    strict, _ = evaluate_unseen(torch.nn.Identity(), unseen, 0.0, 0)
    assert lax["open_set_identification"] == 1 and lax["open_set_rejection"] == 0
    assert strict["open_set_identification"] == 0 and strict["open_set_rejection"] == 1
    # between the clusters (squared distance ~0.0005 within, 2 across): both right
    middle, pairs = evaluate_unseen(torch.nn.Identity(), unseen, 1.0, 0)
    assert {kind: len(rows) for kind, rows in pairs["worst_pairs"].items()} == {
        "false_accepts": 0,
        "false_rejects": 0,
    }
    # at tau 0 every "same" pair is rejected, the farthest first; no different pair accepted
    rejected = evaluate_unseen(torch.nn.Identity(), unseen, 0.0, 0)[1]["worst_pairs"]
    assert len(rejected["false_accepts"]) == 0 and len(rejected["false_rejects"]) == 8
    assert (labels[rejected["false_rejects"][:, :2].astype(int)].diff(dim=1) == 0).all()
    assert (np.diff(rejected["false_rejects"][:, 2]) >= 0).all()
    assert middle["open_set_identification"] == 1 and middle["open_set_rejection"] == 1
    assert middle["verification_accuracy"] == 1 and middle["identification_1_shot"] == 1
    # 100 one-shot galleries, 5 probes of each identity each: all named right
    assert middle["confusion_1_shot"] == {
        "names": ["a", "b", "c", "d"],
        "counts": (500 * torch.eye(4, dtype=torch.long)).tolist(),
    }
    # one image per enrolled identity: nothing left to identify, so no figure (not NaN)
    single = IdentitySet(images[::6], labels[::6], unseen.names)
    lone, _ = evaluate_unseen(torch.nn.Identity(), single, 1.0, 0)
    assert lone["open_set_identification"] is None and lone["open_set_rejection"] == 1
    assert lone["unseen_auc"] is None and lone["verification_accuracy"] == 1


def test_many_identities_keep_the_most_confused_but_no_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past CONFUSION_MAX identities the one-shot confusion table (n x n, in the JSON and a
    figure) is left out; the most confused pair is still named, as the table would name it."""
    from cnnlab.data.identities import IdentitySet
    from cnnlab.engine import face_scores

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(40).repeat_interleave(4)
    centres = torch.randn(40, 8, generator=g)
    emb = F.normalize(centres[labels] + 0.8 * torch.randn(160, 8, generator=g), dim=1)
    people = IdentitySet(emb, labels, [f"p{k}" for k in range(40)])
    many, _ = face_scores.evaluate_unseen(torch.nn.Identity(), people, 1.0, 0)
    assert "confusion_1_shot" not in many and many["most_confused_1_shot"] is not None
    monkeypatch.setattr(face_scores, "CONFUSION_MAX", 40)
    table, _ = face_scores.evaluate_unseen(torch.nn.Identity(), people, 1.0, 0)
    counts = torch.tensor(table["confusion_1_shot"]["counts"], dtype=torch.float64)
    shares = counts / counts.sum(1, keepdim=True)
    shares.fill_diagonal_(0)
    i, j = divmod(int(shares.argmax()), 40)
    assert 0 < shares[i, j] < 1
    assert many["most_confused_1_shot"] == {
        "identity": f"p{i}",
        "named_as": f"p{j}",
        "share": pytest.approx(float(shares[i, j])),
    }
    # nobody named wrong: nothing to name
    apart = IdentitySet(F.normalize(torch.eye(40)[labels], dim=1), labels, people.names)
    assert (
        face_scores.evaluate_unseen(torch.nn.Identity(), apart, 1.0, 0)[0]["most_confused_1_shot"]
        is None
    )


def test_whitening_is_the_identity_until_fitted_then_whitens() -> None:
    torch.manual_seed(0)
    plain = cnnlab.create_model("siamese", embedding_dim=8)
    white = cnnlab.create_model("siamese", embedding_dim=8, whiten=True)
    white.load_state_dict(plain.state_dict(), strict=False)
    plain.eval(), white.eval()
    x = torch.randn(6, 1, 32, 32)
    torch.testing.assert_close(white(x), plain(x))  # training sees the plain embedding
    # correlated unit vectors stand in for the embeddings of many identities
    f = F.normalize(torch.randn(2000, 8) @ torch.randn(8, 8) + torch.randn(8), dim=1)
    white.fit_whitening(f, shrink=0.0)
    z = (f - white.white_mean) @ white.white_proj
    torch.testing.assert_close(torch.cov(z.T), torch.eye(8), atol=1e-3, rtol=0)
    expected = F.normalize((plain(x) - white.white_mean) @ white.white_proj, dim=1)
    torch.testing.assert_close(white(x), expected)
    white.fit_whitening(f, shrink=1.0)  # full shrinkage: centre and scale only
    torch.testing.assert_close(white(x), F.normalize(plain(x) - f.mean(0), dim=1))
    with pytest.raises(ValueError, match="without whiten"):
        plain.fit_whitening(f)


CHILD = """
import sys, time, numpy as np
from cnnlab.data.face_db import FaceDatabase
db = FaceDatabase(sys.argv[1], "m1")
db.enroll("alice", np.eye(3, 4, dtype=np.float32))
print("alice", flush=True)
class Slow:
    def __iter__(self):
        for i in range(1000):
            time.sleep(0.01)
            yield np.full(4, i, np.float32)
db.enroll("bob", Slow())
"""


def test_database_survives_a_kill_mid_enrolment(tmp_path: Path) -> None:
    path = tmp_path / "faces.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "alice"
    time.sleep(0.5)  # bob's enrolment is under way
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    db = FaceDatabase(path, "m1")
    assert db.people() == [("alice", 3)]  # nothing half-written, nothing lost
    with pytest.raises(CnnlabError, match="made by model m1"):
        FaceDatabase(path, "other")
    db.remove("alice")
    assert db.people() == []


def test_a_database_another_program_holds_is_said_to_be_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program writing (a database browser mid-edit, a slow enrolment) past the wait:
    one line saying so, and nothing changed; it was "not a cnnlab face database (database is
    locked)" on opening and a traceback on enrolling or removing."""
    import sqlite3

    import cnnlab.data.face_db as face_db

    monkeypatch.setattr(face_db, "BUSY_TIMEOUT", 0.2)
    path = tmp_path / "faces.db"
    db = FaceDatabase(path, "m1")
    db.enroll("ada", np.eye(4, dtype=np.float32)[:1])
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    in_use = rf"{re.escape(str(path))}: in use by another program \(locked for over 0.2 s\)"
    with pytest.raises(CnnlabError, match=in_use):
        FaceDatabase(path, "m1")
    with pytest.raises(CnnlabError, match=in_use):
        db.enroll("bo", np.eye(4, dtype=np.float32)[1:2])
    with pytest.raises(CnnlabError, match=in_use):
        db.remove("ada")
    other.execute("ROLLBACK")
    other.close()
    assert db.people() == [("ada", 1)]
    assert db.enroll("bo", np.eye(4, dtype=np.float32)[1:2]) == 1  # free again: it goes on
    db.close()


def test_two_models_creating_one_database_at_once_cannot_mix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two enrolments with different models starting on a database not yet made both passed
    the model check (no file yet), and the second enrolled its embeddings beside the first's:
    the model is checked again inside the transaction that creates the tables."""
    path = tmp_path / "faces.db"
    FaceDatabase(path, "m1").close()
    monkeypatch.setattr(FaceDatabase, "model_of", staticmethod(lambda p: "m2"))  # the race
    with pytest.raises(CnnlabError, match="made by model m1; this is m2"):
        FaceDatabase(path, "m2")


def test_database_refuses_what_it_cannot_hold(tmp_path: Path) -> None:
    """A file that is not a database, a nameless person and an unknown name fail in one line;
    an empty database has an empty gallery; a person keeps every image enrolled, once."""
    junk = tmp_path / "notes.db"
    junk.write_text("these are my notes, not a database " * 100)
    with pytest.raises(CnnlabError, match=r"notes\.db: not a cnnlab face database"):
        FaceDatabase(junk, "m1")
    db = FaceDatabase(tmp_path / "faces.db", "m1")
    assert db.gallery()[0] == [] and db.people() == []
    with pytest.raises(CnnlabError, match="non-empty name"):
        db.enroll("  ", np.ones((1, 4), np.float32))
    with pytest.raises(CnnlabError, match=r"no person named 'nobody'; nobody is enrolled$"):
        db.remove("nobody")
    assert db.enroll("ada", np.eye(4, dtype=np.float32)[:2]) == 2
    assert db.enroll("ada", np.eye(4, dtype=np.float32)[2:3]) == 1
    names, gallery = db.gallery()
    assert names == ["ada"] * 3 and np.array_equal(gallery, np.eye(4, dtype=np.float32)[:3])
    assert db.people() == [("ada", 3)]
    # the same images again (up to float rounding), or twice in one call, are not added twice;
    # someone else may have the same image (a mistake the database cannot know)
    again = np.eye(4, dtype=np.float32)[[0, 3, 3]] + 1e-6
    assert db.enroll("ada", again) == 1 and db.people() == [("ada", 4)]
    assert db.enroll("bo", np.eye(4, dtype=np.float32)[:1]) == 1
    # a name is kept without the spaces around it; one that differs by case is another person,
    # which is said
    assert db.enroll(" bo ", np.eye(4, dtype=np.float32)[1:2]) == 1
    with pytest.warns(UserWarning, match="'BO' is enrolled as a new person beside 'bo'"):
        db.enroll("BO", np.eye(4, dtype=np.float32)[2:3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        db.enroll("BO", np.eye(4, dtype=np.float32)[3:4])  # BO is enrolled now: no warning
    assert db.people() == [("ada", 4), ("BO", 2), ("bo", 2)]
    db.remove("BO")
    db.remove_images("bo", np.eye(4, dtype=np.float32)[1:2])
    # from Python: vectors the gallery could not stack or compare, or none for a new person,
    # are refused and change nothing (a 5-d vector beside 4-d ones broke every later identify)
    for name, bad, message in [
        ("cy", np.ones((1, 5), np.float32), "a 5-d embedding, the database holds 4-d ones"),
        ("ada", np.eye(4, dtype=np.float32)[[1, 1]] * np.nan, "a 4-d embedding, not all finite"),
        ("cy", np.zeros((0, 4), np.float32), "no embedding given to enrol 'cy'"),
    ]:
        with pytest.raises(CnnlabError, match=message):
            db.enroll(name, bad)
    assert db.people() == [("ada", 4), ("bo", 1)] and db.gallery()[1].shape == (5, 4)
    for name in ("person10", "Zoe", "person2", "Cy"):  # listed as a person would list them
        db.enroll(name, np.full((1, 4), len(name), np.float32))
    assert [n for n, _ in db.people()] == ["ada", "bo", "Cy", "person2", "person10", "Zoe"]
    # an unknown name is answered with who is there: the nearest name, or the names
    for name, said in [
        ("cy", "; did you mean 'Cy'?"),
        ("Adda", "; did you mean 'ada'?"),
        ("xavier", " (enrolled: ada, bo, Cy, person2, person10, Zoe)"),
    ]:
        with pytest.raises(
            CnnlabError, match=f"^{re.escape(f'{db.path}: no person named {name!r}{said}')}$"
        ):
            db.remove_images(name, np.eye(4, dtype=np.float32)[:1])
    for k in range(5):
        db.enroll(f"extra{k}", np.full((1, 4), 10.0 + k, np.float32))
    with pytest.raises(
        CnnlabError, match=r"'xavier' \(11 people enrolled: cnnlab faces list names"
    ):
        db.remove("xavier")
    assert len(db.people()) == 11  # nothing removed
    db.close()


def test_cli_flow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["faces", "train", "--steps", "30", "--out", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in (
        "verification_accuracy",
        "identification_1_shot",
        "identification_5_shot",
        "open_set_rejection",
        "open_set_identification",
        "eer",
        "tau",
    ):
        assert key in result
    assert (run / "roc.png").is_file() and (run / "glyphs.png").is_file()
    assert (run / "confusion_1_shot.png").is_file()
    assert (run / "loss.png").is_file() and (run / "embedding_map.png").is_file()
    assert (run / "verification_mistakes.png").is_file()  # 30 steps: some pairs are wrong
    # 30 steps: the first 100 and the last 100 are the same 30
    assert result["loss_first_100_steps"] == pytest.approx(result["loss_last_100_steps"])
    confusion = result["confusion_1_shot"]  # rows: the true identity, over 100 galleries
    assert confusion["names"] == ["6", "7", "8", "9"]
    correct = sum(confusion["counts"][i][i] for i in range(4))
    total = sum(map(sum, confusion["counts"]))
    assert correct / total == pytest.approx(result["identification_1_shot"])
    trained = torch.load(run / "best.pt", weights_only=True)
    assert trained["model_kwargs"]["whiten"]  # digits use glyphs, so the embedding is whitened
    assert not torch.equal(trained["state_dict"]["white_proj"], torch.eye(128))
    digits = load_digits()
    images = digits.splits["test"].images
    labels = digits.splits["test"].labels
    files = {}
    for digit in (6, 7):
        idx = (labels == digit).nonzero().flatten()[:2]
        for j, i in enumerate(idx.tolist()):
            f = tmp_path / f"d{digit}_{j}.png"
            Image.fromarray(images[i, 0].numpy()).save(f)
            files[(digit, j)] = str(f)
    db = str(tmp_path / "new" / "faces.db")  # enrolling creates the folder
    ckpt = str(run / "best.pt")
    assert main(["faces", "identify", "--checkpoint", ckpt, "--db", db, files[(6, 0)]]) == 2
    assert "no such database" in capsys.readouterr().err
    for probe in (["identify"], ["verify", "--name", "x"]):  # no encoder would help: said first
        assert main(["faces", *probe, "--db", db, files[(6, 0)]]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert err == f"cnnlab: error: {db}: no such database (cnnlab faces enroll creates it)"
    assert not Path(db).parent.exists()  # a failed look-up creates nothing
    for command in (  # a folder as --db: was "not a cnnlab face database (unable to open ...)"
        ["enroll", "--checkpoint", ckpt, "--name", "x", files[(6, 0)]],
        ["identify", "--checkpoint", ckpt, files[(6, 0)]],
        ["list"],
    ):
        assert main(["faces", *command, "--db", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert f"{tmp_path}: a folder, not a database file (--db faces.db)" in err, command
    for digit in (6, 7):
        assert (
            main(
                [
                    "faces",
                    "enroll",
                    "--checkpoint",
                    ckpt,
                    "--db",
                    db,
                    "--name",
                    f"person{digit}",
                    files[(digit, 0)],
                    "--json",
                ]
            )
            == 0
        )
    capsys.readouterr()  # the same file again, beside a new one: only the new one is added
    argv = ["faces", "enroll", "--checkpoint", ckpt, "--db", db, "--name", "person6"]
    assert main([*argv, files[(6, 0)], files[(6, 1)], "--json"]) == 0
    added = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert added["enrolled"] == 1 and added["skipped"] == 1
    assert main([*argv, files[(6, 1)]]) == 0 and "1 already enrolled, skipped" in (
        capsys.readouterr().out
    )
    argv[-1] = " person6 "  # as a shell quote may keep it: the same person
    assert main([*argv, files[(6, 1)]]) == 0 and "1 already enrolled, skipped" in (
        capsys.readouterr().out
    )
    assert main([*argv[:-1], "  ", files[(6, 1)]]) == 2
    assert "argument --name: a person needs a non-empty name" in capsys.readouterr().err
    assert (
        main(
            [
                "faces",
                "verify",
                "--checkpoint",
                ckpt,
                "--db",
                db,
                "--name",
                "person6",
                files[(6, 1)],
                "--json",
            ]
        )
        == 0
    )
    v = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["results"][0]
    assert v["claimed"] == "person6" and v["distance"] >= 0
    assert (
        main(["faces", "identify", "--checkpoint", ckpt, "--db", db, files[(7, 1)], "--json"]) == 0
    )
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["results"][0]
    assert r["nearest"] in ("person6", "person7")
    from cnnlab.engine.recognition import FaceEncoder  # the distance, done directly

    encoder = FaceEncoder.load(ckpt)
    probe = encoder.embed([files[(7, 1)]])[0]
    names, gallery = FaceDatabase(db, encoder.checkpoint["model_id"]).gallery()
    direct = ((gallery - probe) ** 2).sum(1)
    assert r["distance"] == pytest.approx(float(direct.min()), abs=1e-5)
    assert r["nearest"] == names[int(direct.argmin())]
    # from Python, the same answers as the command line
    database = encoder.database(db)
    assert encoder.identify(database, [files[(7, 1)]]) == [r]
    assert encoder.verify(database, "person6", [files[(6, 1)]]) == [v]
    # a gallery of person folders, enrolled in one command: a transaction a person
    gallery = tmp_path / "gallery"
    for digit in (6, 7):
        (gallery / f"p{digit}").mkdir(parents=True)
        for j in range(2):
            Path(files[(digit, j)]).replace(gallery / f"p{digit}" / f"{j}.png")
            files[(digit, j)] = str(gallery / f"p{digit}" / f"{j}.png")
    (gallery / "p7" / "broken.png").write_bytes(b"not a png")  # passed over, with a line
    people_db = str(tmp_path / "people.db")
    enroll = ["faces", "enroll", "--checkpoint", ckpt, "--db", people_db, "--people", str(gallery)]
    assert main([*enroll, "--json"]) == 0
    captured = capsys.readouterr()
    said = json.loads(captured.out.strip().splitlines()[-1])
    assert said["people"] == [
        {"name": "p6", "enrolled": 2, "skipped": 0},
        {"name": "p7", "enrolled": 2, "skipped": 0},
    ]
    assert "broken.png" in captured.err and len(said["skipped_files"]) == 1
    assert main(enroll) == 0  # again: nothing added twice
    assert "p6: enrolled 0 images (2 already enrolled, skipped)" in capsys.readouterr().out
    assert encoder.database(people_db).people() == [("p6", 2), ("p7", 2)]
    assert encoder.enroll_people(encoder.database(people_db), []) == []
    for argv, message in (
        ([*enroll, "--name", "x"], "give no --name or images"),
        (enroll[:-2], "give --name and the person's images, or --people FOLDER"),
        ([*enroll[:-1], files[(6, 0)]], "not a folder of person folders"),
        (
            [*enroll[:-1], str(gallery / "p6")],
            f"images, but no person folders: one person's? (--name p6 {gallery / 'p6'})",
        ),
    ):
        assert main(argv) == 2
        assert message in capsys.readouterr().err
    (gallery / "stray.png").write_bytes(Path(files[(6, 0)]).read_bytes())  # whose is it?
    assert main(enroll) == 2
    assert "stray.png: an image beside the person folders" in capsys.readouterr().err
    (gallery / "stray.png").unlink()
    # many probes: a line each and a tally under them; --csv holds every row, as --json does
    import csv

    probes = [files[(6, 1)], files[(7, 1)], files[(6, 0)]]
    sheet = tmp_path / "who.csv"
    identify = ["faces", "identify", "--checkpoint", ckpt, "--db", db, *probes]
    assert main([*identify, "--csv", str(sheet), "--json"]) == 0
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    with sheet.open(newline="") as f:
        written = list(csv.DictReader(f))
    assert said["csv"] == str(sheet)
    assert [(w["source"], w["nearest"], w["identity"]) for w in written] == [
        (r["source"], r["nearest"], r["identity"] or "") for r in said["results"]
    ]
    assert main(identify) == 0
    recognized = sum(r["identity"] is not None for r in said["results"])
    assert f"recognized {recognized} of 3 images" in capsys.readouterr().out
    verify = ["faces", "verify", "--checkpoint", ckpt, "--db", db, "--name", "person6"]
    assert main([*verify, *probes, "--csv", str(sheet)]) == 0
    with sheet.open(newline="") as f:
        same = [w["same"] for w in csv.DictReader(f)]
    assert f"{same.count('True')} of 3 images are person6" in capsys.readouterr().out
    # -o draws the probes with their verdicts; a figure name matplotlib cannot write is refused
    # before any image is read
    for argv in (identify, [*verify, *probes]):
        figure = tmp_path / f"{argv[1]}.png"
        assert main([*argv, "-o", str(figure), "--json"]) == 0
        said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert said["figure"] == str(figure) and figure.stat().st_size > 5_000
    assert main([*identify, "-o", str(tmp_path / "who.xyz")]) == 2
    assert "cannot write .xyz figures" in capsys.readouterr().err
    with pytest.raises(CnnlabError, match="no person named 'nobody'"):
        encoder.verify(database, "nobody", [files[(6, 1)]])
    assert encoder.embed([]).shape == (0, probe.shape[0])
    assert main(["faces", "list", "--db", db, "--json"]) == 0
    people = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["people"]
    assert {p["name"] for p in people} == {"person6", "person7"}
    enrolled = {p["name"]: p["images"] for p in people}
    assert main(["faces", "remove", "--db", db, "--name", "person6"]) == 0
    said = capsys.readouterr().out  # a removal says what it removed and who is left
    assert f"removed person6 and their {counted(enrolled['person6'], 'image')}" in said
    assert f"person7: {counted(enrolled['person7'], 'image')}" in said
    assert main(["faces", "remove", "--db", db, "--name", "nobody"]) == 2
    np.testing.assert_equal(
        len(FaceDatabase(db, torch.load(ckpt, weights_only=True)["model_id"]).people()), 1
    )
    assert main(["faces", "remove", "--db", db, "--name", "person7", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {
        "people": [],
        "encoder": str((run / "best.pt").resolve()),  # kept: the next enrol may use it
        "removed": "person7",
    }
    assert main(["faces", "list", "--db", db]) == 0
    assert f"nobody is enrolled in {db}" in capsys.readouterr().out


def test_many_probes_are_tallied() -> None:
    """Under a folder's lines: who was named how often (most first), and the rest."""
    from cnnlab.cli.face_gallery import _tally

    rows = [{"source": f"{i}.png", "identity": n} for i, n in enumerate(("bo", None, "ada", "bo"))]
    assert _tally(rows, None) == "recognized 3 of 4 images (bo 2, ada 1); 1 not recognized"
    frames = [{"source": f"door.mp4#frame={i}", "identity": None} for i in (0, 5)]
    assert _tally(frames, None) == "recognized 0 of 2 frames; 2 not recognized"
    rows = [{"source": s, "same": b} for s, b in (("a.png", True), ("b.mp4#frame=0", False))]
    assert _tally(rows, "ada") == "1 of 2 images and frames are ada (distance <= tau)"


def test_cosface_loss_against_hand_computation() -> None:
    from cnnlab.losses.cosface import CosFaceLoss

    loss = CosFaceLoss(2, 2, scale=10.0, margin=0.3)
    with torch.no_grad():
        loss.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))  # normalised to the axes
    emb = torch.tensor([[0.6, 0.8]])
    # cos = (0.6, 0.8); the true class 0 loses the margin: logits 10 * (0.3, 0.8)
    expected = -torch.log(torch.exp(torch.tensor(3.0)) / (np.exp(3.0) + np.exp(8.0)))
    torch.testing.assert_close(loss(emb, torch.tensor([0])), expected)
    # m = 0 is normalised softmax cross-entropy
    loss.margin = 0.0
    logits = 10 * F.normalize(emb, dim=1) @ F.normalize(loss.weight, dim=1).T
    torch.testing.assert_close(
        loss(emb, torch.tensor([1])), F.cross_entropy(logits, torch.tensor([1]))
    )


def test_random_triplets_are_valid() -> None:
    labels = torch.tensor([0, 0, 0, 1, 1, 2])  # identity 2 has no positive
    a, p, n = random_triplets(labels, torch.Generator().manual_seed(0))
    assert a.tolist() == [0, 1, 2, 3, 4]
    assert (labels[a] == labels[p]).all() and (a != p).all()
    assert (labels[a] != labels[n]).all()


def test_dihedral_identities() -> None:
    from cnnlab.data.identities import dihedral_identities

    g = torch.Generator().manual_seed(0)
    ell = torch.zeros(4, 1, 5, 5)
    ell[:, 0, :, 0] = 1
    ell[:, 0, 4, :3] = 1  # an "L" with a short foot: all 8 transforms differ
    ring = torch.zeros(4, 1, 5, 5)
    ring[:, 0, 1:4, 1:4] = 1
    ring[:, 0, 2, 2] = 0  # a ring: every transform is the same glyph
    images = torch.cat([ell, ring]) + 0.01 * torch.rand(8, 1, 5, 5, generator=g)
    labels = torch.tensor([0] * 4 + [1] * 4)
    x, y = dihedral_identities(images, labels)
    assert sorted(y.unique().tolist()) == [0, 1, 2, 3, 4, 5, 6, 7, 8]  # 8 Ls, 1 ring
    torch.testing.assert_close(x[y == 8 * 0 + 1], torch.rot90(ell, 1, (2, 3)), atol=0.02, rtol=0)
    torch.testing.assert_close(
        x[y == 8 * 0 + 5], torch.rot90(ell, 1, (2, 3)).flip(-1), atol=0.02, rtol=0
    )
    with pytest.raises(CnnlabError, match="square"):
        dihedral_identities(torch.zeros(2, 1, 4, 5), torch.tensor([0, 1]))


def test_glyph_identities_are_drawn_like_the_uci_digits() -> None:
    from cnnlab.data.glyphs import draw_glyphs, random_glyphs

    glyphs = random_glyphs(40, torch.Generator().manual_seed(0))
    ids = torch.arange(40).repeat_interleave(6)
    x = draw_glyphs(glyphs, ids, torch.Generator().manual_seed(1))
    assert x.shape == (240, 1, 8, 8)
    # counts of inked pixels in 4x4 blocks of a 32x32 bitmap: k / 16 with k in 0..16
    torch.testing.assert_close(x * 16, (x * 16).round())
    assert x.min() >= 0 and x.max() <= 1 and (x.flatten(1).sum(1) > 0).all()
    # handwriting-sized: ink reaches (nearly) the top and bottom rows, not the left/right edges
    rows = x.sum((1, 3)) > 0
    assert rows[:, :2].any(1).float().mean() > 0.9 and rows[:, -2:].any(1).float().mean() > 0.9
    torch.testing.assert_close(x, draw_glyphs(glyphs, ids, torch.Generator().manual_seed(1)))
    # a new drawing of the same glyph is closer than a drawing of another glyph
    f = F.normalize((x - x.mean(0)).flatten(1), dim=1)
    sim = f @ f.T
    same = (ids[:, None] == ids[None]) & ~torch.eye(240, dtype=torch.bool)
    assert sim[same].mean() > sim[ids[:, None] != ids[None]].mean() + 0.3


def test_synthetic_identities_join_training_for_digits_only() -> None:
    from cnnlab.engine.faces import FacesConfig, glyph_batches, load_identities

    _, _, norm = load_identities(FacesConfig())
    batches = glyph_batches(FacesConfig(synthetic_identities=50), 1, norm, offset=48)
    assert batches is not None and len(batches) == 50
    x, y = batches.sample()
    assert x.shape == (32 * 4, 1, 32, 32) and y.min() >= 48 and y.max() < 98
    assert (y.view(-1, 4) == y.view(-1, 4)[:, :1]).all()  # P identities x K drawings
    assert glyph_batches(FacesConfig(data="/some/faces"), 1, norm, 0) is None
    assert glyph_batches(FacesConfig(data="/some/faces", synthetic="glyphs"), 3, norm, 0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"synthetic": "fonts"}, "--synthetic must be auto, glyphs or none"),
        ({"identities": "mirror"}, "--identities must be auto, dihedral or none"),
        ({"method": "arcface"}, "--method must be one of cosface, triplet, similarity"),
        ({"mining": "hardest"}, "--mining must be one of batch_hard, batch_all"),
        ({"synthetic_identities": 1}, "--synthetic-identities must be at least 2"),
        ({"p": 1}, "--p must be at least 2"),
        ({"k": 1}, "--k must be at least 2 for --method triplet"),
        ({"p": 64, "k": 64}, "at most 2048"),
        ({"members": 0}, "--members must be at least 1"),
        ({"members": 2, "method": "similarity"}, "1 for --method similarity"),
        ({"seed": 2**32 - 1, "members": 2}, "must stay <= 4294967295"),
    ],
)
def test_faces_settings_are_refused_when_made(settings: dict, message: str) -> None:
    """The Python API refuses a bad setting when the FacesConfig is made, with the option's
    name, before any image is read (as ``cnnlab faces train`` does)."""
    from cnnlab.config import FacesConfig

    with pytest.raises(CnnlabError, match=re.escape(message)):
        FacesConfig(**settings)
    FacesConfig(k=1, method="cosface")  # a cosface batch needs no positives
    FacesConfig(synthetic="none", synthetic_identities=0)  # read by nobody


def test_unseen_identities_stay_out_of_the_statistics() -> None:
    """The standardisation comes from the seen identities' images alone (the never-seen ones
    must not reach training even as a mean), and a repeated --unseen name counts once."""
    from cnnlab.data.classification import channel_stats
    from cnnlab.engine.faces import FacesConfig, load_identities

    seen, unseen, norm = load_identities(FacesConfig())
    digits = load_digits(val_fraction=0, test_fraction=0).splits["train"]
    mean, std = channel_stats(digits.images[digits.labels < 6])
    assert norm == {"mean": list(mean), "std": list(std)}
    assert channel_stats(digits.images)[0] != mean  # all ten digits would give another mean
    assert abs(float(seen.images.mean())) < 1e-4  # so the seen images are centred exactly
    assert set(unseen.labels.tolist()) == {6, 7, 8, 9}
    with pytest.raises(CnnlabError, match="--unseen must hold out at least 2 identities"):
        load_identities(FacesConfig(unseen="6,6"))


def test_a_seed_trains_the_same_encoder_twice() -> None:
    """Run to run, one seed gives the same weights: the mined triplets' rows are gathered with
    index_select, whose backward sums repeated rows in a fixed order (``emb[a]``'s backward
    did not on 2 CPU threads, and a 1e-8 difference after 5 steps grew into +-0.01 of
    verification accuracy at the end)."""
    from rich.console import Console

    from cnnlab.engine.faces import (
        FacesConfig,
        load_identities,
        train_encoder,
        training_identities,
    )

    config = FacesConfig(steps=6)
    seen, _, norm = load_identities(config)
    kwargs = {"backbone": "lenet5", "in_channels": 1, "input_size": 32, "pool_size": 4}
    weights = []
    for _ in range(2):
        g = torch.Generator().manual_seed(0)
        model, _, _ = train_encoder(
            config, training_identities(config, seen), kwargs, norm, g, Console(quiet=True)
        )
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


@pytest.mark.parametrize(
    "settings",
    [{"method": "cosface"}, {"method": "similarity"}, {"mining": "random"}],
    ids=["cosface", "learned-similarity", "random-triplets"],
)
def test_each_method_of_the_comparison_learns(settings: dict) -> None:
    """The README's table compares random triplets, hard mining, the learned similarity and
    CosFace: each one's loss falls over 100 steps (the mean of the last 10 below 0.95 of the
    first 10's), and only the similarity method returns a similarity (whose scores are tested
    by test_the_learned_similarity_learns_who_is_who). The distance methods
    also spread the training identities: the mean distance between images of different digits
    over that between images of the same digit rises by over 0.05 from 1.54 after one
    step (measured: CosFace 1.65, random triplets 1.65; with the labels shuffled
    1.48 and 1.57, which a falling loss alone did not reveal)."""
    from rich.console import Console

    from cnnlab.engine.face_scores import embed
    from cnnlab.engine.faces import (
        FacesConfig,
        load_identities,
        train_encoder,
        training_identities,
    )

    seen, _, norm = load_identities(FacesConfig(**settings))
    same = seen.labels[:, None] == seen.labels[None]
    spreads = []
    for steps in (1, 100):
        config = FacesConfig(steps=steps, **settings)
        kwargs = {"backbone": "lenet5", "in_channels": 1, "input_size": 32, "pool_size": 4}
        losses: list[float] = []
        g = torch.Generator().manual_seed(0)
        train = training_identities(config, seen)
        model, similarity, _ = train_encoder(
            config, train, kwargs, norm, g, Console(quiet=True), losses=losses
        )
        d = torch.cdist(embed(model, seen.images), embed(model, seen.images))
        spreads.append(float(d[~same].mean() / d[same].mean()))
    assert len(losses) == 100 and all(np.isfinite(losses))
    assert np.mean(losses[-10:]) < 0.95 * np.mean(losses[:10]), losses
    assert (similarity is not None) == (settings.get("method") == "similarity")
    if similarity is None:  # the learned similarity scores pairs with its own weights
        assert spreads[1] > spreads[0] + 0.05, spreads


def test_the_learned_similarity_learns_who_is_who() -> None:
    """The similarity method's score must tell the training digits apart better than the
    encoder's plain distance after one step does (AUC on 4,000 balanced pairs of 0-5: 0.858), not
    merely fit its loss. Trained on the digits alone (no dihedral or glyph identities, whose
    labels would teach it whatever the digits' labels say), 300 steps: measured AUC 0.925
    (0.907 / 0.921 with other batch seeds); with the digits' labels shuffled 0.850 (0.811 /
    0.809), since a falling loss can also come from memorising random pairs."""
    from rich.console import Console
    from sklearn.metrics import roc_auc_score

    from cnnlab.engine.face_scores import embed, pair_scores
    from cnnlab.engine.faces import FacesConfig, load_identities, train_encoder

    aucs = []
    for steps in (1, 300):
        config = FacesConfig(method="similarity", identities="none", synthetic="none", steps=steps)
        seen, _, norm = load_identities(config)
        kwargs = {"backbone": "lenet5", "in_channels": 1, "input_size": 32, "pool_size": 4}
        g = torch.Generator().manual_seed(0)
        model, similarity, _ = train_encoder(config, seen, kwargs, norm, g, Console(quiet=True))
        emb = embed(model, seen.images)
        pairs = torch.Generator().manual_seed(0)
        score, same = pair_scores(emb, seen.labels, 4000, pairs, similarity if steps > 1 else None)
        aucs.append(roc_auc_score(same, score))
    assert aucs[1] > aucs[0] + 0.03, aucs


def test_learned_similarity_run_keeps_a_distance_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Verification scores with the learned similarity; open-set identification still needs
    a distance tau, chosen on the held-out pairs' distances (finite, unlike the score's)."""
    argv = ["faces", "train", "--method", "similarity", "--steps", "10", "--json"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 < result["tau"] < 4  # squared distances of unit vectors lie in [0, 4]
    assert 0 <= result["verification_accuracy"] <= 1 and 0 <= result["open_set_rejection"] <= 1


@pytest.mark.parametrize("form", ["l1", "chi2"])
def test_faces_verify_decides_by_the_learned_similarity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], form: str
) -> None:
    """A --method similarity encoder keeps its logistic unit and threshold, and verify and pairs
    decide by them, as its training scored verification: same when ``w . phi(f1, f2) + b``
    reaches the threshold against one of the person's images, phi the slide's |f1 - f2| or its
    chi-square form (f1 - f2)^2 / (|f1| + |f2|), computed here by hand."""
    from cnnlab.engine.recognition import FaceEncoder

    run = tmp_path / "run"
    argv = ["faces", "train", "--method", "similarity", "--similarity", form, "--steps", "10"]
    assert main([*argv, "--out", str(run), "--json"]) == 0
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    record = torch.load(run / "best.pt", weights_only=True)["similarity"]
    assert record["form"] == form and len(record["weight"]) == 128
    sigmoid = 1 / (1 + np.exp(-record["threshold"]))  # what the run reported, as a probability
    assert trained["similarity_threshold"] == pytest.approx(sigmoid)
    w, b = np.array(record["weight"]), record["bias"]
    files = _digit_pngs(tmp_path, (6, 7), 3)
    db = str(tmp_path / "faces.db")
    ckpt = str(run / "best.pt")
    enrol = ["faces", "enroll", "--checkpoint", ckpt, "--db", db, "--name", "six"]
    assert main([*enrol, files[0], files[1]]) == 0
    probes = files[1:]
    verify = ["faces", "verify", "--checkpoint", ckpt, "--db", db, "--name", "six"]
    assert main([*verify, *probes, "--json"]) == 0
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert said["similarity_threshold"] == pytest.approx(sigmoid)
    encoder = FaceEncoder.load(ckpt)
    enrolled, emb = encoder.embed(files[:2]), encoder.embed(probes)
    for row, e in zip(said["results"], emb, strict=True):
        diff = e[None] - enrolled
        phi = np.abs(diff) if form == "l1" else diff**2 / (np.abs(e) + np.abs(enrolled) + 1e-6)
        logit = (phi @ w + b).max()
        assert row["similarity"] == pytest.approx(1 / (1 + np.exp(-logit)), abs=1e-5)
        assert row["same"] == (logit >= record["threshold"])
    # the ROC of pairs files is the learned score's too
    root = tmp_path / "people"
    for k, f in enumerate(files):
        (root / f"p{k // 3}").mkdir(parents=True, exist_ok=True)
        Path(f).replace(root / f"p{k // 3}" / f"p{k // 3}_{k % 3 + 1:04d}.png")
    (tmp_path / "pairs.txt").write_text("p0 1 2\np1 2 3\np0 1 p1 1\np0 3 p1 2\n")
    pairs = ["faces", "pairs", "--checkpoint", ckpt, "--data", str(root)]
    assert main([*pairs, "--pairs", str(tmp_path / "pairs.txt"), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scored["decided_by"] == "learned similarity" and scored["pairs"] == 4


def _digit_pngs(folder: Path, digits: tuple[int, ...], n: int) -> list[str]:
    """``n`` test images of each of ``digits`` written as PNGs, digit by digit."""
    data = load_digits().splits["test"]
    files = []
    for digit in digits:
        for j, i in enumerate((data.labels == digit).nonzero().flatten()[:n].tolist()):
            files.append(str(folder / f"d{digit}_{j}.png"))
            Image.fromarray(data.images[i, 0].numpy()).save(files[-1])
    return files


def _identity_folder(root: Path) -> None:
    digits = load_digits()
    images, labels = digits.splits["test"].images, digits.splits["test"].labels
    for name, digit in (("Ann_Lee", 6), ("Bo", 7)):
        (root / name).mkdir(parents=True)
        for j, i in enumerate((labels == digit).nonzero().flatten()[:3].tolist(), 1):
            Image.fromarray(images[i, 0].numpy()).save(root / name / f"{name}_{j:04d}.png")


def test_read_pairs(tmp_path: Path) -> None:
    from cnnlab.data.identities import read_pairs

    _identity_folder(tmp_path / "people")
    pairs_file = tmp_path / "pairs.txt"
    pairs_file.write_text("1 3\nAnn_Lee 1 2\nBo 2 3\nAnn_Lee 3 Bo 1\n")
    pairs = read_pairs(pairs_file, tmp_path / "people")
    assert [p.same for p in pairs] == [True, True, False]
    assert pairs[2].first.name == "Ann_Lee_0003.png" and pairs[2].second.name == "Bo_0001.png"
    for text, message in (
        ("Ann_Lee 1 9\n", r"pairs.txt:1: Ann_Lee has 3 images, no number 9"),
        ("Ann_Lee 1 x\n", r"pairs.txt:1: image number 'x'"),
        ("1 1\nCy 1 2\n", r"pairs.txt:2: no folder"),
        ("Ann_Lee 1 2 3 4 5\n", r"pairs.txt:1: expected"),
        ("", "no pairs"),
    ):
        pairs_file.write_text(text)
        with pytest.raises(CnnlabError, match=message):
            read_pairs(pairs_file, tmp_path / "people")


def test_eval_reproduces_training_and_scores_a_folder_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``faces eval`` on the training data scores the held-out identities with the training's
    seed: the figures of the run's results.json, from the checkpoint and from its ONNX export.
    The same 714 images written as a folder of people give the same figures (the files path);
    --identities picks, and figures are drawn."""
    run = tmp_path / "run"
    assert main(["faces", "train", "--steps", "20", "--seed", "3", "--out", str(run)]) == 0
    trained = json.loads((run / "results.json").read_text())
    capsys.readouterr()
    keys = ("verification_accuracy", "identification_1_shot", "identification_5_shot")
    keys += ("open_set_rejection", "open_set_identification", "unseen_auc", "confusion_1_shot")
    figures = [str(tmp_path / f) for f in ("roc.png", "mistakes.png", "confusion.png")]
    argv = ["faces", "eval", "--checkpoint", str(run / "best.pt"), "--roc", figures[0]]
    assert main([*argv, "--mistakes", figures[1], "--confusion", figures[2], "--json"]) == 0
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {k: scored[k] for k in keys} == {k: trained[k] for k in keys}
    assert scored["identities"] == ["6", "7", "8", "9"] and scored["seed"] == 3
    assert all(Path(f).stat().st_size > 1000 for f in figures)
    worst = scored["worst_pairs"]["false_accepts"] + scored["worst_pairs"]["false_rejects"]
    assert worst and all(r["first"].startswith("digits image ") for r in worst)
    # the exported encoder keeps what it trained on, so it scores the same identities alike
    onnx = str(tmp_path / "enc.onnx")
    assert main(["export", str(run / "best.pt"), "-o", onnx]) == 0
    capsys.readouterr()
    assert main(["faces", "eval", "--onnx", onnx, "--json"]) == 0
    exported = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert exported["identities"] == scored["identities"]
    assert exported["unseen_auc"] == pytest.approx(scored["unseen_auc"], abs=1e-3)
    # the unseen digits as files in person folders, in the same order: the same figures
    from cnnlab.data.classification import load_classification

    digits = load_classification("digits", image_size=32, val_fraction=0, test_fraction=0)
    x, y = digits.splits["train"].images, digits.splits["train"].labels
    people = tmp_path / "people"
    for k in (y >= 6).nonzero().flatten().tolist():
        (people / str(int(y[k]))).mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[k, 0].numpy()).save(people / str(int(y[k])) / f"{k:05d}.png")
    argv = ["faces", "eval", "--checkpoint", str(run / "best.pt"), "--data", str(people)]
    assert main([*argv, "--seed", "3", "--json"]) == 0
    folder = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {k: folder[k] for k in keys} == {k: trained[k] for k in keys}
    assert folder["images"] == scored["images"] == int((y >= 6).sum())
    worst = folder["worst_pairs"]["false_accepts"]
    assert worst and all(Path(r["first"]).parent.parent == people for r in worst)
    # a choice of identities, and the ones that are not there
    assert main([*argv, "--identities", "7,9", "--json"]) == 0
    picked = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert picked["identities"] == ["7", "9"] and picked["images"] == int(
        ((y == 7) | (y == 9)).sum()
    )
    assert picked["seed"] == 3  # the training's, by default
    for identities, message in (
        ("7,x", "no identity x"),
        ("7", "at least 2 identities"),
        (" , ", "names no identity"),
    ):
        assert main([*argv, "--identities", identities, "--json"]) == 2
        assert message in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]
    assert main([*argv[:-1], str(tmp_path / "none"), "--json"]) == 2
    assert main([*argv[:-1], str(people / "7"), "--json"]) == 2  # one person's folder
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]
    assert said.endswith("images, but no person folders: one person's? or the folder above it")


def test_pairs_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    argv = ["faces", "train", "--steps", "20", "--method", "triplet", "--out", str(run)]
    assert main([*argv, "--json"]) == 0
    _identity_folder(tmp_path / "people")
    pairs_file = tmp_path / "pairs.txt"
    pairs_file.write_text("Ann_Lee 1 2\nBo 1 3\nAnn_Lee 1 Bo 2\nAnn_Lee 3 Bo 3\n")
    capsys.readouterr()
    roc = tmp_path / "roc.png"
    argv = ["faces", "pairs", "--checkpoint", str(run / "best.pt"), "--data", str(tmp_path)]
    assert main([*argv, "--pairs", str(pairs_file), "--json"]) == 2  # no such person folders
    argv[-1] = str(tmp_path / "people")
    assert main([*argv, "--pairs", str(pairs_file), "--roc", str(roc), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["pairs"] == 4 and result["same_pairs"] == 2
    assert 0 <= result["accuracy_at_tau"] <= 1 and 0 <= result["auc"] <= 1
    assert roc.stat().st_size > 1000
    wrong = result["false_accepts"] + result["false_rejects"]
    assert wrong == round(4 * (1 - result["accuracy_at_tau"]))
    # the pairs decided wrongly, worst first: tau 0 rejects every same pair of two images, a
    # huge tau accepts every different pair
    ckpt = torch.load(run / "best.pt", weights_only=True)
    people = tmp_path / "people"
    for tau, kind, expected in ((0.0, "false_rejects", 2), (1e9, "false_accepts", 2)):
        torch.save(ckpt | {"tau": tau}, tmp_path / "tau.pt")
        mistakes = tmp_path / f"mistakes_{tau:g}.png"
        argv_tau = ["faces", "pairs", "--checkpoint", str(tmp_path / "tau.pt"), "--data"]
        argv_tau += [str(people), "--pairs", str(pairs_file), "--mistakes", str(mistakes)]
        assert main([*argv_tau, "--json"]) == 0
        result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert result[kind] == expected and result["accuracy_at_tau"] == 0.5
        rows = result["worst_pairs"][kind]
        assert {(r["first"], r["second"]) for r in rows} == {
            (str(people / f"{a}.png"), str(people / f"{b}.png"))
            for a, b in (
                [("Ann_Lee/Ann_Lee_0001", "Ann_Lee/Ann_Lee_0002"), ("Bo/Bo_0001", "Bo/Bo_0003")]
                if tau == 0
                else [
                    ("Ann_Lee/Ann_Lee_0001", "Bo/Bo_0002"),
                    ("Ann_Lee/Ann_Lee_0003", "Bo/Bo_0003"),
                ]
            )
        }
        distances = [r["distance"] for r in rows]  # worst first: the farthest same pair
        assert distances == sorted(distances, reverse=tau == 0) and mistakes.is_file()
    pairs_file.write_text("Ann_Lee 1 2\nBo 1 3\n")  # no different pairs: no curve, and it says so
    capsys.readouterr()
    assert main([*argv, "--pairs", str(pairs_file), "--roc", str(tmp_path / "same.png")]) == 0
    assert "only same-person pairs, so no ROC curve" in capsys.readouterr().err
    assert not (tmp_path / "same.png").exists()
    # at the huge tau every same pair is right: nothing to draw, and it says so
    argv_tau[-3:] = [str(pairs_file), "--mistakes", str(tmp_path / "none.png")]
    assert main(argv_tau) == 0
    said = " ".join(capsys.readouterr())
    assert "every pair decided right, so" in said and "wrong at tau: 0 different" in said
    assert not (tmp_path / "none.png").exists()
    from cnnlab.engine.recognition import FaceEncoder  # files embedded a chunk at a time

    encoder = FaceEncoder.load(run / "best.pt")
    files = sorted(str(f) for f in (tmp_path / "people").rglob("*.png"))
    whole = encoder.embed(files)
    assert len(files) > 2 and whole.shape == (len(files), 128)
    np.testing.assert_allclose(encoder.embed(files, chunk=2), whole, atol=1e-5)


def test_train_on_an_identity_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    digits = load_digits()
    x, y = digits.splits["train"].images, digits.splits["train"].labels
    root = tmp_path / "people"
    for person, digit in (("ann", 1), ("bo", 2), ("cy", 3), ("di", 4)):
        (root / person).mkdir(parents=True)
        for j, i in enumerate((y == digit).nonzero().flatten()[:6].tolist()):
            Image.fromarray(x[i, 0].numpy()).save(root / person / f"{person}_{j:04d}.png")
    argv = ["faces", "train", "--data", str(root), "--steps", "5", "--out", str(tmp_path / "r")]
    assert main([*argv, "--unseen", "cy,di", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= result["identification_1_shot"] <= 1 and result["tau"] > 0
    # glyphs are for digits: a folder trains without them, so counting them is refused
    assert main([*argv, "--unseen", "cy,di", "--synthetic-identities", "50"]) == 2
    assert "which identity folders train without (--synthetic glyphs" in capsys.readouterr().err
    # faces want more than 32 px with a deeper backbone: --image-size reaches the encoder
    big = ["--image-size", "64", "--backbone", "resnet18", "--pool-size", "2"]
    assert main([*argv, *big, "--unseen", "cy,di", "--out", str(tmp_path / "r64")]) == 0
    ckpt = torch.load(tmp_path / "r64" / "best.pt", weights_only=True)
    assert ckpt["input_size"][-2:] == [64, 64]
    few = tmp_path / "few"  # two people to train on with one image each: too few
    for person, n in (("e1", 1), ("e2", 1), ("cy", 3), ("di", 3)):
        (few / person).mkdir(parents=True)
        for j in range(n):
            Image.fromarray(x[j, 0].numpy()).save(few / person / f"{j}.png")
    assert main([*argv, "--data", str(few), "--unseen", "cy,di"]) == 2
    assert "fewer than 2 identities to train on" in capsys.readouterr().err
    from cnnlab.data.identities import IdentitySet
    from cnnlab.engine.faces import FacesConfig, training_identities

    g = torch.Generator().manual_seed(0)
    ids = IdentitySet(torch.rand(4, 1, 6, 6, generator=g), torch.tensor([0, 0, 1, 1]), ["a", "b"])
    assert training_identities(FacesConfig(data=str(root)), ids) is ids  # mirrored faces: same
    assert len(training_identities(FacesConfig(), ids).labels.unique()) > 2  # digits: dihedral
    assert main([*argv, "--unseen", "di"]) == 2
    assert "at least 2 identities" in capsys.readouterr().err
    assert main([*argv, "--unseen", "6,7"]) == 2  # not there: the folder's names are shown
    assert capsys.readouterr().err.strip() == (
        f"cnnlab: error: --unseen names unknown identities: 6, 7 ({root} has ann, bo, cy, di)"
    )
    # no warning for the refused runs above; this one writes over the first run's best.pt
    assert main([*argv, "--unseen", "cy,di"]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"cnnlab: warning: {tmp_path / 'r'} holds an earlier run (best.pt of ")
    assert "this run writes over it (leave out --out, or name another folder, to keep it)" in err


def test_a_folder_holds_out_the_same_fifth_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --unseen, digits hold out 6-9 and other data a fifth of their identities (at
    least 2), the same ones whatever the seed; the names drawn are kept in the checkpoint, so
    faces eval scores them by default."""
    from cnnlab.engine.faces import FacesConfig, held_out_names, train_faces

    names = [f"p{k:02d}" for k in range(23)]
    drawn = held_out_names("", names, "people/")
    assert len(drawn) == 5 and drawn == sorted(drawn) and set(drawn) <= set(names)
    assert held_out_names(" ", names, "elsewhere/") == drawn  # fixed: not the run's seed
    assert drawn != names[:5] and drawn != names[-5:]  # drawn, not the first or last by name
    assert len(held_out_names("", names[:4], "people/")) == 2  # 4 identities: 2 held out
    assert held_out_names("", [str(d) for d in range(10)], "digits") == ["6", "7", "8", "9"]
    assert held_out_names("bo, ann,bo", names, "people/") == ["bo", "ann"]
    digits = load_digits()
    x, y = digits.splits["train"].images, digits.splits["train"].labels
    root = tmp_path / "people"
    for person, digit in (("ann", 1), ("bo", 2), ("cy", 3), ("di", 4), ("ed", 5)):
        (root / person).mkdir(parents=True)
        for j, i in enumerate((y == digit).nonzero().flatten()[:6].tolist()):
            Image.fromarray(x[i, 0].numpy()).save(root / person / f"{person}_{j:04d}.png")
    run = tmp_path / "r"
    argv = ["faces", "train", "--data", str(root), "--steps", "5", "--out", str(run)]
    assert main([*argv, "--seed", "4"]) == 0
    said = " ".join(capsys.readouterr().err.split())
    held = held_out_names("", ["ann", "bo", "cy", "di", "ed"], str(root))
    assert f"never seen: {', '.join(held)} (12 images; drawn once for these data" in said
    ckpt = torch.load(run / "best.pt", weights_only=True)
    assert ckpt["config"]["unseen"] == ",".join(held)
    assert main(["faces", "eval", "--checkpoint", str(run / "best.pt"), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scored["identities"] == held and scored["images"] == 12
    from cnnlab.engine.recognition import FaceEncoder

    encoder = FaceEncoder.load(run / "best.pt")  # as an export older than trained_on reads
    kept = {k: v for k, v in encoder.checkpoint.items() if k != "config"}
    older = FaceEncoder(encoder.model, kept | {"invert_light": False})
    with pytest.raises(CnnlabError, match="does not say what it trained on: give --data"):
        older.evaluate()
    assert older.evaluate(str(root)).identities == ["ann", "bo", "cy", "di", "ed"]
    shutil.rmtree(root / "di")  # was "--unseen must hold out at least 2 identities ...",
    shutil.rmtree(root / "ed")  # when no --unseen was given
    three = FacesConfig(data=str(root), steps=5, out=str(tmp_path / "r3"))
    with pytest.raises(CnnlabError, match=r"people: 3 identities; faces train needs at least 4"):
        train_faces(three)
    lone = tmp_path / "lone"  # one image each: no same pairs, so no ROC (and it says so)
    for person in ("ann", "bo", "cy"):
        (lone / person).mkdir(parents=True)
        shutil.copy(root / person / f"{person}_0000.png", lone / person)
    argv = ["faces", "eval", "--checkpoint", str(run / "best.pt"), "--data", str(lone)]
    assert main([*argv, "--roc", str(tmp_path / "roc.png")]) == 0
    said = capsys.readouterr()
    assert "no pairs of both kinds, so no ROC curve" in said.err
    assert not (tmp_path / "roc.png").exists() and "one-shot identification" in said.out


def test_train_names_the_most_confused_identities(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --json, training starts by saying what it trains on and ends with the figures
    and the worst one-shot confusion."""
    run = tmp_path / "run"
    assert main(["faces", "train", "--steps", "30", "--out", str(run)]) == 0
    said = capsys.readouterr()
    out = said.out.replace("\n", "")  # rich wraps long lines
    # and it began by saying what trains on what, and what stays unseen
    from sklearn.datasets import load_digits

    unseen = int((load_digits().target >= 6).sum())
    first = " ".join(said.err.split())
    assert first.startswith("siamese (lenet5, 128-d): ") and "+ 2,000 glyph identities" in first
    assert (
        "digits: 6 identities (" in first and f"never seen: 6, 7, 8, 9 ({unseen} images)" in first
    )
    counts = json.loads((run / "results.json").read_text())["confusion_1_shot"]["counts"]
    shares = torch.tensor(counts, dtype=torch.float64)
    shares = shares / shares.sum(1, keepdim=True)
    shares.fill_diagonal_(0)
    i, j = divmod(int(shares.argmax()), 4)
    assert f"most confused, one-shot: {6 + i} named as {6 + j} for {shares[i, j]:.1%}" in out
    figures = (
        "confusion_1_shot.png, embedding_map.png, glyphs.png, loss.png, roc.png, "
        "verification_mistakes.png"
    )
    assert f"run folder: {run} (figures: {figures})" in out
    result = json.loads((run / "results.json").read_text())
    assert "one-shot identification" in out and "never-seen identities" in out
    assert f"{result['identification_1_shot']:.3f}" in out
    assert f"{result['verification_accuracy']:.3f}" in out


def test_an_ensemble_distance_is_the_members_mean() -> None:
    """``[f_1, ..., f_N] / sqrt(N)`` has unit norm, and its squared distance is the mean of the
    members' squared distances."""
    from cnnlab.models.siamese import squared_distance

    ensemble = cnnlab.create_model("siamese_ensemble", members=3, embedding_dim=8).eval()
    x1, x2 = torch.randn(5, 1, 32, 32), torch.randn(5, 1, 32, 32)
    with torch.no_grad():
        f1, f2 = ensemble(x1), ensemble(x2)
        each = torch.stack([squared_distance(m(x1), m(x2)) for m in ensemble.members])
    assert f1.shape == (5, 24)
    assert torch.allclose(f1.norm(dim=1), torch.ones(5))
    assert torch.allclose(squared_distance(f1, f2), each.mean(0), atol=1e-6)
    with pytest.raises(CnnlabError, match="members must be an integer >= 2, got 1"):
        cnnlab.create_model("siamese_ensemble", members=1)


def test_train_an_ensemble_and_identify_with_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--members 2``: two encoders with their own seeds, one checkpoint, usable by the
    database commands; the learned similarity (one pair model) refuses it."""
    run = tmp_path / "run"
    argv = ["faces", "train", "--steps", "10", "--members", "2", "--out", str(run), "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= result["identification_1_shot"] <= 1
    trained = torch.load(run / "best.pt", weights_only=True)
    assert trained["model"] == "siamese_ensemble" and trained["model_kwargs"]["members"] == 2
    state = trained["state_dict"]
    assert not torch.equal(state["members.0.embed.weight"], state["members.1.embed.weight"])
    digits = load_digits()
    image = tmp_path / "six.png"
    Image.fromarray(digits.splits["test"].images[0, 0].numpy()).save(image)
    db = ["--checkpoint", str(run / "best.pt"), "--db", str(tmp_path / "faces.db")]
    assert main(["faces", "enroll", *db, "--name", "six", str(image)]) == 0
    assert main(["faces", "identify", *db, str(image), "--json"]) == 0
    found = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["results"][0]
    assert found["identity"] == "six" and found["distance"] == pytest.approx(0, abs=1e-6)
    assert main([*argv[:-3], "--method", "similarity", "--out", str(tmp_path / "s")]) == 2
    assert "--members must be at least 1, and 1 for --method similarity" in capsys.readouterr().err


def test_another_programs_database_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An SQLite file that is not ours is neither listed (was a TypeError) nor given our tables."""
    import sqlite3

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('owner', 'someone')")
    conn.close()
    before = other.read_bytes()
    for argv in (["faces", "list", "--db", str(other)], ["faces", "remove", "--db", str(other)]):
        assert main([*argv, "--name", "x"] if "remove" in argv else argv) == 2
        assert "other.db: not a cnnlab face database" in capsys.readouterr().err
    with pytest.raises(CnnlabError, match="not a cnnlab face database"):
        FaceDatabase(other, "m1")
    assert other.read_bytes() == before
    db = FaceDatabase(tmp_path / "ours.db", "m1")  # a new one records its model at creation
    db.close()
    assert FaceDatabase.model_of(tmp_path / "ours.db") == "m1"


def test_names_with_brackets_are_printed_as_they_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rich reads "[bold]" in a string as a style: a person or file named so lost that part."""
    db = FaceDatabase(tmp_path / "f.db", "m1")
    db.enroll("ada [bold] lovelace", np.ones((1, 4), np.float32))
    db.close()
    assert main(["faces", "list", "--db", str(tmp_path / "f.db")]) == 0
    assert "ada [bold] lovelace: 1 image\n" in capsys.readouterr().out  # not "1 images"


def test_enrolment_sees_a_photo_as_training_did(tmp_path: Path) -> None:
    """Training resizes identity-folder photos shorter side first, then crops the centre;
    enrolment and verification used to stretch them instead, so every non-square photo met the
    encoder distorted. The tensor enrolment builds now equals the training one."""
    from cnnlab.data.classification import load_classification, normalize
    from cnnlab.engine.predict import preprocess
    from cnnlab.engine.recognition import face_meta

    rng = np.random.default_rng(0)
    root = tmp_path / "people"
    for person in ("ann", "bo", "cy", "di"):
        (root / person).mkdir(parents=True)
        for j in range(6):
            photo = rng.integers(0, 255, (32, 48, 3)).astype(np.uint8)  # wider than tall
            photo[:, :8] = 255  # a white band that a centre crop cuts away and a stretch keeps
            Image.fromarray(photo).save(root / person / f"{j}.png")
    run = tmp_path / "run"
    argv = ["faces", "train", "--data", str(root), "--unseen", "cy,di", "--steps", "3"]
    assert main([*argv, "--out", str(run), "--json"]) == 0
    ckpt = torch.load(run / "best.pt", weights_only=True)
    size = ckpt["input_size"][-1]
    trained = load_classification(str(root), image_size=size, val_fraction=0, test_fraction=0)
    norm = ckpt["normalization"]
    seen = normalize(trained.splits["train"].images, norm["mean"], norm["std"])
    enrolled = preprocess([root / "ann" / "0.png"], face_meta(ckpt))[0]
    assert any(torch.allclose(enrolled, x, atol=1e-6) for x in seen)  # one training image is it


def test_a_diverging_training_stops_instead_of_scoring_nan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A learning rate of 1e6 makes the loss NaN within a few steps: the run stops there with
    one line (it used to train on and score NaN embeddings)."""
    argv = ["faces", "train", "--lr", "1e6", "--steps", "60", "--synthetic", "none"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "loss became nan at step" in err and "a lower --lr may hold" in err
    # on the way, the embeddings collapse: cnnlab's own warning as one line, not Python's form
    assert "cnnlab: warning: embeddings have collapsed" in err and "UserWarning" not in err


def test_an_out_that_cannot_be_a_folder_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--out`` naming a file: refused before the encoder trains (it was refused after, when
    the checkpoint was written, the training lost)."""

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained although the run could not be saved")

    monkeypatch.setattr("cnnlab.engine.faces.train_encoder", never)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine\n")
    assert main(["faces", "train", "--out", str(a_file / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"cnnlab: error: {a_file}: a file, where a folder is needed for what is written there"
    )
    assert a_file.read_text() == "mine\n"


def test_pca_2d_keeps_the_distances_of_points_on_a_plane() -> None:
    """Points on a plane inside 10-D space: their projection on the two principal directions
    is the plane itself, so every pairwise distance survives; degenerate inputs give zeros."""
    from cnnlab.viz.plots import pca_2d

    g = torch.Generator().manual_seed(0)
    basis, _ = torch.linalg.qr(torch.randn(10, 2, generator=g))  # orthonormal columns
    x = torch.randn(30, 2, generator=g) * torch.tensor([3.0, 1.0]) @ basis.T + 5
    xy = pca_2d(x).double()

    def distances(p: torch.Tensor) -> torch.Tensor:
        return (p[:, None] - p[None]).double().norm(dim=-1)

    assert torch.allclose(distances(xy), distances(x), atol=1e-4)
    assert torch.equal(pca_2d(torch.ones(1, 4)), torch.zeros(1, 2))  # one point
    one_d = pca_2d(torch.tensor([[0.0], [2.0]]))  # one dimension: the second axis is zero
    assert torch.allclose(one_d, torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))


@pytest.fixture(scope="module")
def four_people(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``people/<ann|bo|cy|di>/*.png`` (3 digits each: 6, 7, 8, 9) and an encoder's best.pt
    trained on ann and bo for a few steps."""
    tmp_path = tmp_path_factory.mktemp("four")
    root = tmp_path / "people"
    for person, digit in (("ann", 6), ("bo", 7), ("cy", 8), ("di", 9)):
        (root / person).mkdir(parents=True)
        _digit_pngs(root / person, (digit,), 3)
    run = tmp_path / "run"
    argv = ["faces", "train", "--data", str(root), "--unseen", "cy,di", "--steps", "3"]
    assert main([*argv, "--out", str(run), "--json"]) == 0
    return root, run / "best.pt"


def test_images_in_memory_are_enrolled_and_named_as_their_files(
    four_people: tuple[Path, Path], tmp_path: Path, opened: Callable[[Path], Image.Image]
) -> None:
    """A program holding its images (a camera frame as a numpy array, a Pillow image) enrols,
    verifies and identifies them as it would their files: the same embeddings, the same
    distances; rows name them ``images[i]``, a file by its path."""
    from cnnlab.data.images import read_image
    from cnnlab.engine.recognition import FaceEncoder

    root, best = four_people
    encoder = FaceEncoder.load(best)
    files = sorted(root.glob("*/*.png"))
    held = [np.asarray(read_image(files[0], "RGB")), opened(files[1]), files[2]]
    assert np.array_equal(encoder.embed(held), encoder.embed(files[:3]))
    on_disk, in_memory = encoder.database(tmp_path / "a.db"), encoder.database(tmp_path / "b.db")
    encoder.enroll(on_disk, "ann", files[:2])
    assert encoder.enroll(in_memory, "ann", held[:2]) == 2
    assert on_disk.gallery()[1].tolist() == in_memory.gallery()[1].tolist()
    probes = [np.asarray(opened(f)) for f in files[3:5]]  # (H, W) grey frames
    for want, got in zip(
        encoder.identify(on_disk, files[3:5]), encoder.identify(in_memory, probes), strict=True
    ):
        assert got["distance"] == want["distance"] and got["nearest"] == want["nearest"]
    rows = encoder.verify(in_memory, "ann", [files[3], *probes])
    assert [r["source"] for r in rows] == [str(files[3]), "images[1]", "images[2]"]
    with pytest.raises(CnnlabError, match=r"images\[1\]: a float64 array"):
        encoder.enroll(in_memory, "bo", [probes[0], probes[1] / 255.0])
    assert in_memory.gallery()[0] == ["ann", "ann"]  # the bad one added no one
    # one image alone, not in a list: one image (a path was read letter by letter before)
    assert encoder.enroll(in_memory, "cy", str(files[5])) == 1
    (alone,) = encoder.identify(in_memory, str(files[5]))
    assert alone["source"] == str(files[5]) and alone["identity"] == "cy"
    (frame,) = encoder.verify(in_memory, "cy", probes[0])  # files[3] as a grey frame
    (its_file,) = encoder.verify(in_memory, "cy", [files[3]])
    assert frame["source"] == "images[0]" and frame["distance"] == its_file["distance"]


def test_the_encoder_runs_on_the_device_asked_for(
    four_people: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``FaceEncoder.load(device=...)`` and the probe commands' ``--device``: an unknown device
    is one line; on a GPU (where there is one) the embeddings are the CPU's."""
    from cnnlab.engine.recognition import FaceEncoder

    root, best = four_people
    with pytest.raises(CnnlabError, match=r"^FaceEncoder\.load takes a checkpoint or an ONNX"):
        FaceEncoder.load()
    files = sorted(root.glob("*/*.png"))
    cpu = FaceEncoder.load(best, device="cpu")
    assert repr(cpu) == "FaceEncoder(model=OnDevice(SiameseEncoder on cpu))"
    encoder = ["--checkpoint", str(best), "--db", str(tmp_path / "f.db"), "--device", "tpu"]
    assert main(["faces", "enroll", "--name", "ann", *encoder[:-1], "cpu", str(files[0])]) == 0
    for argv in (["enroll", "--name", "bo"], ["verify", "--name", "ann"], ["identify"]):
        assert main(["faces", *argv, *encoder, str(files[0])]) == 2
        assert "unknown device 'tpu'" in capsys.readouterr().err
    if torch.cuda.is_available():
        gpu = FaceEncoder.load(best, device="cuda")
        assert np.allclose(gpu.embed(files), cpu.embed(files), atol=1e-4)


def test_each_persons_distance_is_that_of_their_nearest_image() -> None:
    """``nearest_per_person`` against a loop: a person enrolled with several images is as near
    as the nearest of them (K-shot), whatever order the database lists them in."""
    from cnnlab.engine.recognition import nearest_per_person

    rng = np.random.default_rng(0)
    names = list(rng.choice(["ann", "bo", "cy", "di", "ed"], 23))
    d = rng.random((7, 23))
    people, got = nearest_per_person(names, d)
    assert people == sorted(set(names))
    for p in range(7):
        for j, person in enumerate(people):
            want = min(d[p, g] for g, n in enumerate(names) if n == person)
            assert got[p, j] == want


def test_identify_ranks_the_next_nearest_people(
    four_people: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``faces identify --top-k K``: each image's K nearest people, nearest first, the first
    being the identity's own ``nearest``; in the text, the JSON and the CSV."""
    root, best = four_people
    db = str(tmp_path / "f.db")
    assert (
        main(["faces", "enroll", "--checkpoint", str(best), "--db", db, "--people", str(root)]) == 0
    )
    probes = [str(p) for p in sorted(root.glob("*/d*_2.png"))]
    argv = ["faces", "identify", "--checkpoint", str(best), "--db", db, *probes]
    sheet = tmp_path / "who.csv"
    assert main([*argv, "--top-k", "3", "--csv", str(sheet), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["results"]
    for r in rows:
        ranked = [d for _, d in r["top_k"]]
        assert len(r["top_k"]) == 3 and ranked == sorted(ranked)
        assert r["top_k"][0] == [r["nearest"], r["distance"]]
        assert len({n for n, _ in r["top_k"]}) == 3  # three people, not three images
    with sheet.open() as f:
        header = f.readline().strip().split(",")
    assert header[-4:] == ["person_2", "distance_2", "person_3", "distance_3"]
    assert main([*argv, "--top-k", "2"]) == 0
    said = capsys.readouterr().out
    assert all(f"next: {r['top_k'][1][0]} " in said for r in rows)
    assert main([*argv, "--json"]) == 0  # by default: no ranking
    assert "top_k" not in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["results"][0]


def test_identify_writes_who_each_is_as_an_identity_folder(
    four_people: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``faces identify --as-dataset FOLDER``: each probe copied, byte for byte, into the folder
    of the person it was named (``not recognized/`` where nobody came within tau), a folder only
    for people named; it is refused on a folder with files before anything is read, and what
    it wrote enrols again with ``--people`` once the strangers are sorted out."""
    root, best = four_people
    db = str(tmp_path / "f.db")
    enrol = ["faces", "enroll", "--checkpoint", str(best), "--db", db]
    for person in ("ann", "bo"):
        assert (
            main([*enrol, "--name", person, str(root / person / f"d{6 + (person == 'bo')}_0.png")])
            == 0
        )
    probes = sorted(str(p) for p in root.glob("*/*.png"))
    out = tmp_path / "sorted"
    argv = ["faces", "identify", "--checkpoint", str(best), "--db", db, *probes]
    assert main([*argv, "--as-dataset", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = result["results"]
    folders = {r["identity"] or "not recognized" for r in rows}
    assert {p.name for p in out.iterdir()} == folders and "ann" in folders  # ann's own image
    assert len(list(out.glob("*/*.png"))) == len(probes) == result["dataset"]["images"]
    for r in rows:
        source = Path(r["source"])
        copy = out / (r["identity"] or "not recognized") / source.name  # d6_0.png, d7_0.png...
        assert copy.read_bytes() == source.read_bytes()
    named = Counter(r["identity"] or "not recognized" for r in rows)
    assert result["dataset"]["per_class"] == dict(named)
    assert main([*argv, "--as-dataset", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    import shutil

    shutil.rmtree(out / "not recognized", ignore_errors=True)
    again = ["faces", "enroll", "--checkpoint", str(best), "--db", str(tmp_path / "g.db")]
    assert main([*again, "--people", str(out), "--json"]) == 0
    enrolled = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["people"]
    assert {r["name"] for r in enrolled} == folders - {"not recognized"}


def test_a_database_remembers_the_encoder_that_enrolled(
    four_people: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Enrolling records the encoder's file (absolute, its format) with the enrolment, so
    verify, identify and enroll take it from ``--db`` when given no ``--checkpoint``: the same
    answers as naming it. A file gone, or holding another model since, is one line naming it;
    a database recorded with nothing (an earlier cnnlab's) asks for --checkpoint as before."""
    root, best = four_people
    run = tmp_path / "run"
    shutil.copytree(best.parent, run)  # a run folder of its own, to move and overwrite
    db = tmp_path / "f.db"
    files = [str(f) for f in sorted(root.glob("*/*.png"))]
    monkeypatch.chdir(tmp_path)  # the checkpoint named relative to here: recorded absolute
    assert main(["faces", "enroll", "--checkpoint", "run/best.pt", "--db", str(db),
                 "--name", "ann", files[0], "--json"]) == 0  # fmt: skip
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert said["encoder"] == str((run / "best.pt").resolve())
    assert FaceDatabase.encoder_of(db) == ("checkpoint", (run / "best.pt").resolve())
    assert main(["faces", "enroll", "--db", str(db), "--name", "bo", files[3]]) == 0
    assert "(the checkpoint that enrolled in" in " ".join(capsys.readouterr().out.split())
    assert main(["faces", "list", "--db", str(db), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert listed["encoder"] == str((run / "best.pt").resolve())
    assert [p["name"] for p in listed["people"]] == ["ann", "bo"]
    named = ["faces", "identify", "--checkpoint", str(run / "best.pt"), "--db", str(db)]
    assert main([*named, *files, "--json"]) == 0
    want = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["results"]
    assert main(["faces", "identify", "--db", str(db), *files, "--json"]) == 0
    got = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert got["results"] == want and got["encoder"] == str((run / "best.pt").resolve())
    assert main(["faces", "verify", "--db", str(db), "--name", "ann", files[1]]) == 0
    assert "ann" in capsys.readouterr().out

    moved = tmp_path / "moved"
    run.rename(moved)
    assert main(["faces", "identify", "--db", str(db), files[0]]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cnnlab: error: {db}: enrolled with {run.resolve() / 'best.pt'}, "
                          "which is no longer there")  # fmt: skip
    moved.rename(run)
    ckpt = torch.load(run / "best.pt", weights_only=True)
    torch.save(ckpt | {"model_id": "0" * 16}, run / "best.pt")  # trained again there
    assert main(["faces", "verify", "--db", str(db), "--name", "ann", files[0]]) == 2
    assert "which now holds another model" in capsys.readouterr().err

    earlier = tmp_path / "earlier.db"  # enrolled by a FaceDatabase told no encoder file
    FaceDatabase(earlier, ckpt["model_id"]).enroll("ann", np.ones((1, 4), np.float32))
    assert FaceDatabase.encoder_of(earlier) is None
    assert main(["faces", "identify", "--db", str(earlier), files[0]]) == 2
    assert "give --checkpoint" in capsys.readouterr().err
    onnx = FaceDatabase(earlier, ckpt["model_id"], ("onnx", tmp_path / "enc.onnx"))
    onnx.enroll("bo", np.full((1, 4), 2.0, np.float32))  # the last to enrol is recorded
    assert FaceDatabase.encoder_of(earlier) == ("onnx", (tmp_path / "enc.onnx").resolve())


def test_remove_takes_out_only_the_images_named(
    four_people: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``faces remove --name P images``: those images' embeddings leave P's enrolment (an image
    filed under two people is mended without removing either), all or none of them, and P goes
    with their last image; an image P was not enrolled with is named and removes nothing."""
    root, best = four_people
    db = str(tmp_path / "f.db")
    ann, bo = sorted((root / "ann").glob("*.png")), sorted((root / "bo").glob("*.png"))
    enrol = ["faces", "enroll", "--checkpoint", str(best), "--db", db, "--name"]
    assert main([*enrol, "ann", *map(str, ann)]) == 0
    assert main([*enrol, "bo", str(bo[0]), str(ann[0])]) == 0  # ann's photo filed under bo too
    assert "already enrolled as someone else" in capsys.readouterr().err
    remove = ["faces", "remove", "--db", db, "--name"]
    assert main([*remove, "bo", str(bo[1]), str(ann[0])]) == 2  # bo[1] was never enrolled
    assert capsys.readouterr().err.strip() == (
        f"cnnlab: error: {bo[1]}: not an image enrolled as bo in {db}"
    )
    assert FaceDatabase(db, FaceDatabase.model_of(db)).people() == [("ann", 3), ("bo", 2)]
    assert main([*remove, "bo", str(ann[0]), "--json"]) == 0  # no --checkpoint: the recorded one
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["removed_images"] == 1
    assert result["people"] == [{"name": "ann", "images": 3}, {"name": "bo", "images": 1}]
    assert main(["faces", "identify", "--db", db, str(ann[0]), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["results"]
    assert row["identity"] == "ann" and row["distance"] < 1e-6  # no longer a tie with bo
    assert main([*remove, "bo", str(bo[0])]) == 0
    assert "bo is no longer enrolled" in " ".join(capsys.readouterr().out.split())
    assert FaceDatabase(db, FaceDatabase.model_of(db)).people() == [("ann", 3)]

    other = FaceDatabase(tmp_path / "g.db", "another model")  # the rows, without an encoder
    other.enroll("cy", np.eye(3, dtype=np.float32))
    assert other.remove_images("cy", np.eye(3, dtype=np.float32)[[2, 0]]) == (2, 1)
    with pytest.raises(CnnlabError, match=r"^x\.png: not an image enrolled as cy in"):
        other.remove_images("cy", np.eye(3, dtype=np.float32)[[1, 2]], ["y.png", "x.png"])
    assert other.gallery()[1].tolist() == [[0.0, 1.0, 0.0]]  # the refused call removed nothing
    at_g = ["--db", str(tmp_path / "g.db"), "--checkpoint", str(best)]
    assert main([*remove, "ann", str(ann[0]), *at_g]) == 2
    assert "its embeddings were made by model another model" in capsys.readouterr().err


def test_train_starts_the_backbone_from_pretrained_weights(
    four_people: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``faces train --pretrained FILE``: a torchvision weights file (or a face encoder's
    best.pt) starts the backbone, the embedding layer fresh; ``--backbone-lr-mult 0`` keeps the
    loaded weights as they were while the embedding trains. A missing or unfitting file is one
    line and leaves no run folder behind."""
    root, _ = four_people
    weights = tmp_path / "resnet18.pth"
    torch.manual_seed(123)  # not the weights the run's seed draws
    torch.save(cnnlab.create_model("resnet18").state_dict(), weights)  # torchvision's key names
    argv = ["faces", "train", "--data", str(root), "--unseen", "cy,di", "--steps", "3"]
    argv += ["--backbone", "resnet18", "--pool-size", "1", "--backbone-lr-mult", "0"]
    run = tmp_path / "run"
    assert main([*argv, "--pretrained", str(weights), "--out", str(run)]) == 0
    assert f"loaded {weights} (every tensor)" in " ".join(capsys.readouterr().err.split())
    given = torch.load(weights, weights_only=True)
    trained = torch.load(run / "best.pt", weights_only=True)
    state = trained["state_dict"]
    assert trained["config"]["pretrained"] == str(weights)
    for name in ("layer1.0.conv1.weight", "layer4.1.bn2.weight", "bn1.bias"):
        assert torch.equal(state[f"backbone.{name}"], given[name])  # lr x 0: as loaded
    torch.manual_seed(0)  # the embedding layer as the run drew it: it trained at the full rate
    drawn = cnnlab.create_model("siamese", **trained["model_kwargs"])
    assert not torch.equal(state["embed.weight"], drawn.embed.weight)
    own = drawn.backbone.layer1[0].conv1.weight  # what the run would have started from
    assert not torch.equal(own, given["layer1.0.conv1.weight"])
    again = tmp_path / "again"  # a face encoder's best.pt: its backbone, without the prefix
    assert main([*argv, "--pretrained", str(run / "best.pt"), "--out", str(again)]) == 0
    assert "(every tensor)" in " ".join(capsys.readouterr().err.split())
    second = torch.load(again / "best.pt", weights_only=True)["state_dict"]
    assert torch.equal(second["backbone.layer2.0.conv2.weight"], given["layer2.0.conv2.weight"])

    frozen = tmp_path / "frozen"  # --freeze backbone: its batch norms' statistics kept too
    still = [*argv[:-2], "--freeze", "backbone", "--pretrained", str(weights)]
    assert main([*still, "--out", str(frozen)]) == 0
    kept = torch.load(frozen / "best.pt", weights_only=True)["state_dict"]
    assert not torch.equal(state["backbone.bn1.running_mean"], given["bn1.running_mean"])
    assert all(torch.equal(kept[f"backbone.{k}"], v) for k, v in given.items() if k[:3] != "fc.")

    gone = tmp_path / "gone"
    assert main([*argv, "--pretrained", str(tmp_path / "nothere.pth"), "--out", str(gone)]) == 2
    assert "nothere.pth: no such weights file" in capsys.readouterr().err
    assert main([*argv[:-6], "--pretrained", str(weights), "--out", str(gone)]) == 2  # lenet5
    assert "torchvision has no weights for LeNet5" in capsys.readouterr().err
    assert not gone.exists()  # neither left an empty run folder


def test_training_stops_after_patience_steps_of_zero_loss(
    four_people: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``faces train --patience N`` ends training once N steps in a row had a zero loss (no
    gradient): at step N when every loss is zero, never when a non-zero one breaks each
    streak, never with ``--patience 0``; the step is in ``--json`` and in what ``runs`` says."""
    import cnnlab.engine.faces as faces_engine

    calls = {"n": 0}

    def loss_on_some_steps(emb: torch.Tensor, *args: Any) -> tuple[torch.Tensor, dict]:
        calls["n"] += 1
        loss, stats = mined_triplet_loss(emb, *args)
        return (loss if calls["n"] % every == 0 else emb.sum() * 0), stats

    monkeypatch.setattr(faces_engine, "mined_triplet_loss", loss_on_some_steps)
    root, _ = four_people
    argv = ["faces", "train", "--data", str(root), "--unseen", "cy,di", "--steps", "12"]

    def trained(out: str, *more: str) -> dict[str, Any]:
        calls["n"] = 0
        assert main([*argv, "--out", str(tmp_path / out), *more, "--json"]) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    every = 10**9  # every loss zero
    stopped = trained("zero", "--patience", "4")
    assert stopped["stopped_early_at"] == 4 and stopped["steps_trained"] == [4]
    assert calls["n"] == 4
    assert "stopped early at 4" in json.dumps(_runs(tmp_path / "zero", capsys))
    full = trained("never", "--patience", "0")
    assert "stopped_early_at" not in full and full["steps_trained"] == [12]
    every = 3  # a zero streak of 2 at the most: patience 3 never stops
    assert trained("streaks", "--patience", "3")["steps_trained"] == [12]
    assert "stopped_early_at" in trained("streaks2", "--patience", "2")


def _runs(folder: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """``cnnlab runs FOLDER --json``'s object."""
    assert main(["runs", str(folder), "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_ctrl_c_says_nothing_was_kept_and_leaves_no_empty_run_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """faces train writes its run folder at the end: Ctrl-C says so (was a bare "interrupted")
    and takes away the empty folder it made, but not a folder that was there before."""
    from cnnlab.engine import faces

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(faces, "train_encoder", interrupted)
    out = tmp_path / "new"
    assert main(["faces", "train", "--out", str(out)]) == 130
    said = " ".join(capsys.readouterr().err.split())
    assert "cnnlab: interrupted; faces train writes its run folder at the end and has no" in said
    assert not out.exists()
    kept = tmp_path / "kept"
    (kept / "earlier").mkdir(parents=True)
    assert main(["faces", "train", "--out", str(kept)]) == 130
    assert (kept / "earlier").is_dir()
    (kept / "earlier").rmdir()
    assert main(["faces", "train", "--out", str(kept)]) == 130
    assert kept.is_dir()  # empty, but there before the run
