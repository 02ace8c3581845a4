"""Classes of unequal size: per-class figures and balanced loss weights, against scikit-learn."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import COLOURS, make_image
from sklearn.metrics import balanced_accuracy_score, precision_recall_fscore_support
from sklearn.utils.class_weight import compute_class_weight

from cnnlab.cli import main
from cnnlab.engine.class_balance import (
    balanced_class_weights,
    class_weights,
    parse_class_weights,
    per_class_metrics,
)
from cnnlab.errors import CnnlabError


def test_per_class_figures_match_scikit_learn() -> None:
    """A class never predicted (precision 0 by sklearn's zero_division=0) and a class absent
    from the split (left out of the averages) included."""
    rng = np.random.default_rng(0)
    y_true = rng.choice(5, 300, p=[0.6, 0.2, 0.1, 0.1, 0.0])
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.choice([0, 1, 2, 4], 300))
    y_pred[y_true == 3] = 1  # 3 is never predicted, 4 never true
    confusion = torch.bincount(torch.tensor(y_true * 5 + y_pred), minlength=25).view(5, 5)
    ours = per_class_metrics(confusion)
    present = [0, 1, 2, 3]
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(5)), zero_division=0
    )
    assert ours["precision"] == pytest.approx(p.tolist())
    assert ours["recall"] == pytest.approx(r.tolist())
    assert ours["f1"] == pytest.approx(f.tolist())
    assert ours["support"] == s.tolist()
    assert ours["precision"][3] == 0  # 3 is never predicted
    with pytest.warns(UserWarning, match="y_pred contains classes not in y_true"):
        balanced = balanced_accuracy_score(y_true, y_pred)
    assert ours["balanced_accuracy"] == pytest.approx(balanced)
    macro = precision_recall_fscore_support(
        y_true, y_pred, labels=present, average="macro", zero_division=0
    )[2]
    assert ours["macro_f1"] == pytest.approx(macro)
    assert per_class_metrics(torch.zeros(3, 3, dtype=torch.int64))["balanced_accuracy"] is None


def test_eval_table_shows_the_classes_the_images_hold_worst_first() -> None:
    """classify eval on images of a few classes: a class without images (F1 0, no recall to
    measure) neither fills the table nor crowds out the worst real class when it is cut."""
    from rich.console import Console

    from cnnlab.cli.classify import per_class_table

    confusion = torch.zeros(5, 5, dtype=torch.int64)
    confusion[1, 1], confusion[1, 3] = 8, 2  # class 1: recall 0.8
    confusion[3, 3], confusion[3, 0] = 4, 6  # class 3: recall 0.4, the worst held
    figures, names = per_class_metrics(confusion), ["a", "b", "c", "d", "e"]

    def rows(most: int) -> list[str]:
        console = Console(width=100, record=True)
        console.print(per_class_table(figures, names, most=most))
        return [line.split()[1] for line in console.export_text().splitlines() if "│" in line]

    assert rows(30) == ["b", "d"]  # a, c and e hold no image
    assert rows(1) == ["d"]  # the lowest F1 of those held, not an empty class's 0


def test_balanced_weights_match_scikit_learn_and_even_out_the_classes() -> None:
    labels = np.array([0] * 50 + [1] * 5 + [2] * 20)
    counts = torch.bincount(torch.tensor(labels), minlength=4)  # class 3 has no images
    ours = balanced_class_weights(counts[:3])
    expected = compute_class_weight("balanced", classes=np.arange(3), y=labels)
    assert ours.tolist() == pytest.approx(expected.tolist())
    totals = ours * counts[:3]  # what each class adds to an epoch's loss weights
    assert torch.allclose(totals, totals[0].expand(3))
    assert balanced_class_weights(counts)[3] == 0


@pytest.mark.parametrize(
    "text, message",
    [
        ("1,x", "expected none, balanced, or numbers"),
        ("1,-1", "finite, >= 0"),
        ("0,0", "not all 0"),
    ],
)
def test_bad_class_weights_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(CnnlabError, match=message):
        parse_class_weights(text)


def test_class_weights_given_or_balanced() -> None:
    counts = torch.tensor([30, 10])
    assert parse_class_weights("none") is None and parse_class_weights("") is None
    assert class_weights(parse_class_weights("balanced"), counts, ["a", "b"]).tolist() == [
        pytest.approx(2 / 3),
        pytest.approx(2.0),
    ]
    assert class_weights(parse_class_weights("1,4"), counts, ["a", "b"]).tolist() == [1, 4]
    with pytest.raises(CnnlabError, match=r"needs 2 values, one per class \(a, b\)"):
        class_weights(parse_class_weights("1,2,3"), counts, ["a", "b"])


def _imbalanced_folder(root: Path) -> Path:
    """40 red, 8 green, 8 blue images: 5 to 1."""
    rng = np.random.default_rng(1)
    for name, n in (("red", 40), ("green", 8), ("blue", 8)):
        (root / name).mkdir(parents=True)
        for i in range(n):
            make_image(COLOURS[name], rng).save(root / name / f"{i}.png")
    return root


def test_imbalanced_folder_warns_and_reports_per_class(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _imbalanced_folder(tmp_path / "imb")
    args = ["classify", "train", "--data", str(data), "--epochs", "1", "--json"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    captured = capsys.readouterr()
    assert "cnnlab: warning: the classes are imbalanced ('red' has" in captured.err
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert 0 <= result["test_balanced_accuracy"] <= 1 and "test_macro_f1" in result
    assert main([*args, "--out", str(tmp_path / "b"), "--class-weights", "balanced"]) == 0
    assert "imbalanced" not in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "c"), "--class-weights", "1,2"]) == 2
    assert "--class-weights needs 3 values, one per class (blue, green, red)" in (
        capsys.readouterr().err
    )
    eval_args = ["classify", "eval", "--checkpoint", str(tmp_path / "b" / "best.pt")]
    assert main(eval_args) == 0
    shown = capsys.readouterr().out
    assert "balanced accuracy" in shown and "precision" in shown and "green" in shown
    assert main([*eval_args, "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    confusion = torch.tensor(figures["confusion"])
    recall = (confusion.diag() / confusion.sum(1)).mean().item()
    assert figures["balanced_accuracy"] == pytest.approx(recall)
    assert figures["support"] == confusion.sum(1).tolist()


def test_segmentation_balanced_weights_count_pixels() -> None:
    from cnnlab.engine.segment import pixel_counts
    from cnnlab.engine.segment_data import scenes_segmentation

    data = scenes_segmentation(6, image_size=32, seed=1)
    idx = torch.tensor([0, 2, 5])
    expected = np.bincount(data.masks[idx].numpy().ravel(), minlength=4)
    assert pixel_counts(data, idx).tolist() == expected.tolist()
