"""cnnlab explain triplet (slides "Triplet loss", "Choosing the triplets A, P, N"): the counts
and picks against loops over every triplet of the batch."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch

from cnnlab.cli import main
from cnnlab.explain_triplets import EXAMPLE_POINTS, explain_triplets, parse_points


def _loss(d: torch.Tensor, a: int, p: int, n: int, alpha: float) -> float:
    return max(float(d[a, p] - d[a, n]) + alpha, 0.0)


@pytest.mark.parametrize("seed", [None, 0, 1])
def test_counts_and_picks_equal_loops_over_every_triplet(seed: int | None) -> None:
    """The example batch, and random ones (4 people x 3 images in 3-D, ties impossible)."""
    if seed is None:
        emb, labels = parse_points(EXAMPLE_POINTS)
    else:
        g = torch.Generator().manual_seed(seed)
        emb, labels = torch.randn(12, 3, generator=g), torch.arange(4).repeat_interleave(3)
    alpha, b = 0.2, len(emb)
    d = ((emb.double()[:, None] - emb.double()[None]) ** 2).sum(-1)
    triplets = [
        (a, p, n)
        for a, p, n in itertools.product(range(b), repeat=3)
        if a != p and labels[a] == labels[p] and labels[n] != labels[a]
    ]
    for anchor in (0, 4):
        r = explain_triplets(emb, labels, alpha, anchor)
        assert r["valid_triplets"] == len(triplets) == b * 2 * (b - 3)
        losses = [_loss(d, *t, alpha) for t in triplets]
        assert r["zero_loss"] == sum(x == 0 for x in losses)
        assert r["mean_loss_all_valid"] == pytest.approx(sum(losses) / len(losses), abs=1e-6)
        s = r["strategies"]
        positive = [t for t, x in zip(triplets, losses, strict=True) if x > 0]
        assert s["batch_all"]["triplets"] == s["batch_all"]["active"] == len(positive)
        mine = [list(t) for t in positive if t[0] == anchor]
        assert [[t["a"], t["p"], t["n"]] for t in s["batch_all"]["anchor_triplets"]] == mine
        same = [j for j in range(b) if j != anchor and labels[j] == labels[anchor]]
        others = [j for j in range(b) if labels[j] != labels[anchor]]
        far_p = max(same, key=lambda j: d[anchor, j])
        near_n = min(others, key=lambda j: d[anchor, j])
        (hard,) = s["batch_hard"]["anchor_triplets"]
        assert (hard["p"], hard["n"]) == (far_p, near_n)
        assert hard["loss"] == pytest.approx(_loss(d, anchor, far_p, near_n, alpha), abs=1e-6)
        for t, p in zip(s["semi_hard"]["anchor_triplets"], same, strict=True):
            d_ap = float(d[anchor, p])
            band = [n for n in others if d_ap < d[anchor, n] < d_ap + alpha]
            want = min(band or others, key=lambda j: d[anchor, j])
            assert (t["p"], t["n"], t["semi_hard"]) == (p, want, bool(band))


def test_the_example_shows_the_slides_point(tmp_path: Path, capsys) -> None:
    """Most triplets of the example already satisfy the margin; batch-hard finds the negative
    closer than the positive, semi-hard the one inside the band; the command prints, draws and
    refuses bad input in one line."""
    figure = tmp_path / "triplets.png"
    assert main(["explain", "triplet", "--out", str(figure), "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["zero_loss"] / r["valid_triplets"] > 0.8 and figure.stat().st_size > 20_000
    (hard,) = r["strategies"]["batch_hard"]["anchor_triplets"]
    assert hard["d_an"] < hard["d_ap"]  # a negative nearer than the positive: hard
    assert any(t["semi_hard"] for t in r["strategies"]["semi_hard"]["anchor_triplets"])
    line = tmp_path / "line.png"  # 1-D embeddings are drawn on a line
    assert main(["explain", "triplet", "--points", "0 0; 1 0; 3 1", "--out", str(line)]) == 0
    assert line.is_file()
    capsys.readouterr()
    assert main(["explain", "triplet"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # as it reads, whatever the line breaks
    assert "90 (83%) already have d(A,P) + 0.2 <= d(A,N), loss 0" in out and "batch_hard" in out
    for argv, message in (
        (["--points", "0 0 0.5; 1 1 1"], "the last number of each row is its person"),
        (["--anchor", "9"], "--anchor 9: the batch has images 0 to 8"),
        (["--points", "0 0 0; 1 1 0; 2 2 1", "--anchor", "2"], "needs another image of its"),
        (["--points", "0 0 0; 1 1 1"], "a triplet needs two images of one person and one of"),
        (["--points", "0 0 0 0; 1 1 1 0; 2 2 2 1", "--out", str(figure)], "draws 1-D or 2-D"),
        (["--points", ";".join(f"{i} {i % 2}" for i in range(201))], "at most 200"),
        (["--alpha", "-1"], "--alpha: must be >= 0"),
    ):
        assert main(["explain", "triplet", *argv]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, (argv, err)
