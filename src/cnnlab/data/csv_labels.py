"""Images labelled by a CSV file, as Kaggle's classification sets come: ``train.csv`` with a row
per image (``id,label``; ``image_id,healthy,rust,scab`` one-hot) beside a folder of the images.

Which columns mean what:

- the image: the column named ``image``, ``image_id``, ``id``, ``filename``, ``path``, ... (see
  :data:`IMAGE_HEADERS`), else the first column; its value is a path relative to the images'
  folder, with or without the file's extension (``1000015157`` finds ``1000015157.jpg``);
- the class: the column named ``label``, ``class``, ``category``, ``target``, ... (see
  :data:`LABEL_HEADERS`), else the other column of a two-column file; or, where every other
  column holds only 0 and 1 with one 1 a row, the name of the column with the 1 (one-hot).

The images' folder is the CSV's own or one beside it (``images/``, ``<stem>/`` and
``<stem>_images/`` first: ``train.csv`` with ``train/`` or ``train_images/``): the one where
most of the first rows' images are. Classes are the labels' values, sorted (numerically
where all are whole numbers: ``2`` before ``10``). Every row must name an image that is there
and a class: a row that does not is an error naming the file and the line.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cnnlab.data.folder import IMAGE_SUFFIXES
from cnnlab.data.textfiles import read_lines, sorted_names
from cnnlab.errors import CnnlabError, collected, raise_unless_collected
from cnnlab.words import counted

IMAGE_HEADERS = (
    "image",
    "images",
    "image_id",
    "image_name",
    "image_path",
    "img",
    "id",
    "id_code",
    "filename",
    "file_name",
    "file",
    "path",
    "filepath",
)
LABEL_HEADERS = (
    "label",
    "labels",
    "class",
    "class_name",
    "category",
    "target",
    "y",
    "diagnosis",
    "species",
    "breed",
)


@dataclass(frozen=True)
class LabelledImages:
    """The images a CSV file labels, each with its class's name, and the sorted class names."""

    files: list[tuple[Path, str]]
    class_names: list[str]
    folder: Path  # where the images were found

    def indexed(self) -> list[tuple[Path, int]]:
        """Each image with its class's index in :attr:`class_names`, as the loaders take them."""
        index = {name: i for i, name in enumerate(self.class_names)}
        return [(file, index[name]) for file, name in self.files]


def _rows(path: Path) -> list[list[str]]:
    """The CSV's rows, its delimiter (``,`` ``;`` tab or ``|``) sniffed from the first lines."""
    lines = [line for line in read_lines(path) if line.strip()]
    if len(lines) < 2:
        raise CnnlabError(f"{path}: needs a header row and a row per image")
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines[:20]), delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel  # one column, or the sniffer gave up: commas
    return [[cell.strip() for cell in row] for row in csv.reader(lines, dialect)]


def _class_columns(header: list[str], body: list[list[str]], image: int, path: Path):
    """``(label column, None)`` or ``(None, one-hot columns)``."""
    lower = [h.lower() for h in header]
    named = [i for i, h in enumerate(lower) if h in LABEL_HEADERS and i != image]
    if named:
        return named[0], None
    others = [i for i in range(len(header)) if i != image]
    if len(others) == 1:
        return others[0], None
    if others and all(
        all(row[i] in ("0", "1", "0.0", "1.0") for i in others)
        and sum(float(row[i]) for i in others) == 1
        for row in body
    ):
        return None, others
    raise CnnlabError(
        f"{path}: which column is the class? (columns: {', '.join(header)}; name it 'label', "
        "keep two columns, or give one-hot 0/1 columns)"
    )


def _candidates(path: Path) -> list[Path]:
    """Where the images may be: beside the CSV, in ``images/``, ``<stem>/``, ``<stem>_images/``,
    then any other folder beside it."""
    here = path.parent
    named = [here, here / "images", here / path.stem, here / f"{path.stem}_images"]
    others = sorted(d for d in here.iterdir() if d.is_dir() and d not in named)
    return [d for d in named if d.is_dir()] + [d for d in others if not d.name.startswith(".")]


def _resolver(values: Sequence[str], path: Path) -> tuple[Path, str]:
    """The folder and the suffix (``""`` where the values carry theirs) that find the most of
    the first rows' images; a :class:`CnnlabError` naming where it looked when none does."""
    probe = [v for v in values[:20] if v]
    best, most = None, 0
    for folder in _candidates(path):
        for suffix in ("", *sorted(IMAGE_SUFFIXES), *sorted(s.upper() for s in IMAGE_SUFFIXES)):
            found = sum((folder / f"{v}{suffix}").is_file() for v in probe)
            if found > most:
                best, most = (folder, suffix), found
    if best is None:
        raise CnnlabError(
            f"{path}: no image {probe[0] if probe else ''!r} (with or without an extension) "
            "beside it or in a folder beside it"
        )
    return best


def read_label_csv(path: str | Path, classes: Sequence[str] | None = None) -> LabelledImages:
    """The images ``path`` labels (module docstring); ``classes``: the names the labels must be
    among (a checkpoint's), in that order, instead of the labels' own sorted."""
    path = Path(path)
    if not path.is_file():
        raise CnnlabError(f"{path}: no such CSV file")
    header, *body = _rows(path)
    if len(header) < 2:
        raise CnnlabError(f"{path}: one column; needs the image and its class")
    if short := next((n for n, row in enumerate(body, 2) if len(row) != len(header)), None):
        raise CnnlabError(
            f"{path}:{short}: {len(body[short - 2])} cells, the header has {len(header)}"
        )
    lower = [h.lower() for h in header]
    image = next((i for i, h in enumerate(lower) if h in IMAGE_HEADERS), 0)
    label, one_hot = _class_columns(header, body, image, path)
    folder, suffix = _resolver([row[image] for row in body], path)
    files: list[tuple[Path, str]] = []
    missing = []
    for n, row in enumerate(body, 2):
        file = folder / f"{row[image]}{suffix}"
        name = (
            row[label] if label is not None else header[next(i for i in one_hot if float(row[i]))]
        )
        if not name:  # data check names every bad row; training the first
            raise_unless_collected(f"{path}:{n}: no class for {row[image]!r}")
            continue
        if not row[image] or not file.is_file():
            if collected(CnnlabError(f"{path}:{n}: no image {row[image]!r} in {folder}")):
                continue
            missing.append((n, row[image]))  # training: counted, the first named
        files.append((file, name))
    if missing:  # training: how many, and the first
        n, value = missing[0]
        raise CnnlabError(
            f"{path}: {counted(len(missing), 'row')} name{'s' if len(missing) == 1 else ''} "
            f"no image in {folder}, e.g. line {n}: "
            f"{value!r}"
        )
    found = {name for _, name in files}
    if classes is not None:
        if unknown := sorted(found - set(classes)):
            raise CnnlabError(
                f"{path}: class {unknown[0]!r} is unknown to the checkpoint (its classes: "
                f"{', '.join(list(classes)[:12])}{', ...' if len(classes) > 12 else ''})"
            )
        return LabelledImages(files, list(classes), folder)
    return LabelledImages(files, sorted_names(found), folder)
