"""Images labelled by a CSV file (Kaggle's train.csv beside a folder of images)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_folder
from hypothesis import given
from hypothesis import strategies as st

from cnnlab.cli import main
from cnnlab.data.classification import load_classification
from cnnlab.data.csv_labels import read_label_csv
from cnnlab.data.folder import load_image_folder
from cnnlab.errors import CnnlabError


def as_csv(folder: Path, root: Path, header: str = "id,label", stems: bool = True) -> Path:
    """The class folders' images moved into ``root/train/`` (renamed ``<class>_<n>``) and
    listed in ``root/train.csv``, one ``image,class`` row each, the rows shuffled."""
    rows = []
    (root / "train").mkdir(parents=True)
    for cls in sorted(p for p in folder.iterdir() if p.is_dir()):
        for image in sorted(cls.glob("*.png")):
            name = f"{cls.name}_{image.stem}"
            shutil.copy(image, root / "train" / f"{name}.png")
            rows.append(f"{name if stems else name + '.png'},{cls.name}")
    order = np.random.default_rng(0).permutation(len(rows))
    (root / "train.csv").write_text(header + "\n" + "\n".join(rows[i] for i in order) + "\n")
    return root / "train.csv"


def pairs(images: torch.Tensor, labels: torch.Tensor) -> list[tuple[bytes, int]]:
    return sorted((x.numpy().tobytes(), int(y)) for x, y in zip(images, labels, strict=True))


def test_a_csv_loads_what_the_class_folders_load(tmp_path: Path) -> None:
    """The same images as class folders and as a CSV (stems without extension, rows shuffled):
    the same classes, and every image with the same label (the folder reader is the oracle)."""
    folder = write_folder(tmp_path / "folders", per_class=10)
    csv = as_csv(folder, tmp_path / "kaggle")
    a = load_image_folder(folder, image_size=16)
    b = load_classification(str(csv), image_size=16)
    assert a.class_names == b.class_names
    for split in ("train", "val", "test"):
        assert len(a.splits[split]) == len(b.splits[split])
    every = [torch.cat([d.splits[s].images for s in d.splits]) for d in (a, b)]
    labels = [torch.cat([d.splits[s].labels for s in d.splits]) for d in (a, b)]
    assert pairs(every[0], labels[0]) == pairs(every[1], labels[1])


def test_columns_by_name_one_hot_and_numeric_classes(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "f", per_class=3)
    images = sorted(folder.rglob("*.png"))
    (tmp_path / "train_images").mkdir()
    for i, image in enumerate(images):
        shutil.copy(image, tmp_path / "train_images" / f"{i}.png")
    # columns named: the class is 'diagnosis', wherever it stands; ';' as the delimiter
    rows = [f"x;{i}.png;{(2, 10, 1)[i % 3]}" for i in range(len(images))]
    (tmp_path / "train.csv").write_text("source;image_id;diagnosis\n" + "\n".join(rows))
    table = read_label_csv(tmp_path / "train.csv")
    assert table.class_names == ["1", "2", "10"]  # whole numbers sort as numbers
    from cnnlab.data.textfiles import sorted_names

    assert sorted_names({"2", "²", "10"}) == ["10", "2", "²"]  # a superscript is no number
    assert table.folder == tmp_path / "train_images"
    assert table.files[4] == (tmp_path / "train_images" / "4.png", "10")
    # one-hot, as Plant Pathology's: the class is the column holding the 1
    rows = [f"{i},{int(i % 3 == 0)},{int(i % 3 == 1)},{int(i % 3 == 2)}" for i in range(9)]
    (tmp_path / "train.csv").write_text("image_id,healthy,rust,scab\n" + "\n".join(rows))
    table = read_label_csv(tmp_path / "train.csv")
    assert table.class_names == ["healthy", "rust", "scab"]
    assert [name for _, name in table.files[:4]] == ["healthy", "rust", "scab", "healthy"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,label\n0,a\n1,b\n404,a\n", r"train\.csv: 1 row names no image in .*line 4: '404'"),
        ("id,label\n0,a\n1,\n", r"train\.csv:3: no class for '1'"),
        ("id,kind,colour\n0,a,red\n1,b,blue\n", r"train\.csv: which column is the class\? "),
        ("id,label\n0,a\n1,b,c\n", r"train\.csv:3: 3 cells, the header has 2"),
        ("id\n0\n", r"train\.csv: one column; needs the image and its class"),
        ("id,label\n", r"train\.csv: needs a header row and a row per image"),
        ("id,label\n7,a\n8,b\n", r"train\.csv: no image '7' \(with or without an extension\)"),
    ],
)
def test_bad_rows_are_named(tmp_path: Path, text: str, message: str) -> None:
    folder = write_folder(tmp_path / "f", per_class=1)
    (tmp_path / "images").mkdir()
    for i, image in enumerate(sorted(folder.rglob("*.png"))):
        shutil.copy(image, tmp_path / "images" / f"{i}.png")
    (tmp_path / "train.csv").write_text(text)
    with pytest.raises(CnnlabError, match=message):
        read_label_csv(tmp_path / "train.csv")


def test_classify_trains_and_scores_on_csv_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = as_csv(write_folder(tmp_path / "f", per_class=8), tmp_path / "k", "image,class", False)
    run = tmp_path / "run"
    argv = ["classify", "train", "--data", str(csv), "--epochs", "1", "--image-size", "32"]
    assert main([*argv, "--out", str(run), "--json"]) == 0
    capsys.readouterr()
    lines = csv.read_text().splitlines()
    other = csv.with_name("new.csv")  # new rows of the same images: scored whole, by name
    other.write_text("\n".join(lines[:10]) + "\n")
    argv = ["classify", "eval", "--checkpoint", str(run / "best.pt"), "--data", str(other)]
    assert main([*argv, "--json"]) == 0
    scored = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert scored["split"] == "all" and scored["count"] == 9
    other.write_text(lines[0] + "\n" + lines[1].rsplit(",", 1)[0] + ",purple\n")
    assert main(argv) == 2
    assert "class 'purple' is unknown to the checkpoint" in capsys.readouterr().err


@given(
    labels=st.lists(
        st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=8).filter(
            lambda t: t.strip() == t
        ),
        min_size=1,
        max_size=6,
    ),
    delimiter=st.sampled_from([",", ";", "\t"]),
)
def test_any_class_names_survive_the_csv(labels: list[str], delimiter: str) -> None:
    """Class names with commas, quotes, semicolons or accents, written by Python's csv module
    with any of the usual delimiters, come back as written, each row with its own."""
    import csv as csv_module
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "images").mkdir()
        for i in range(len(labels)):
            (root / "images" / f"{i}.png").write_bytes(b"")  # found, not decoded here
        with (root / "train.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv_module.writer(f, delimiter=delimiter)
            writer.writerow(["image", "label"])
            writer.writerows([f"{i}.png", label] for i, label in enumerate(labels))
        table = read_label_csv(root / "train.csv")
    assert [name for _, name in table.files] == labels
    assert set(table.class_names) == set(labels)
