"""Identity data for face verification: more training identities from few, and LFW-style pairs.

``dihedral_identities`` follows the few-shot practice from Omniglot (Santoro et al., 2016; Snell
et al., 2017, "Prototypical Networks", Sec. 3.1): a rotation by a multiple of 90 degrees, or a
mirror image, of a character is treated as a *new* class. Six seen digits become up to 48
identities, and an encoder that must tell all of them apart learns features that carry over to
identities it never saw. Use it only where a transformed identity is a different identity (glyphs),
never for faces: a mirrored face is the same person.

``person_folders`` reads a gallery laid out as training reads identities, ``root/<person>/*.jpg``.

``read_pairs`` reads the pairs file of Labeled Faces in the Wild (Huang et al., 2007):
an optional header line (``N`` or ``folds N``), then one pair per line, either
``name i j`` (two images of one person) or ``name1 i name2 j`` (two people), where image ``i`` of
``name`` is ``root/name/name_%04d.jpg`` (or any extension, or the ``i``-th file in sorted order
when the LFW file names are not used).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from cnnlab.data.folder import IMAGE_SUFFIXES
from cnnlab.errors import CnnlabError
from cnnlab.words import counted


@dataclass
class IdentitySet:
    """Images of people (or glyphs standing for them) and who each is."""

    images: torch.Tensor  # standardised (N, C, S, S)
    labels: torch.Tensor  # (N,) indices into names
    names: list[str]


def dihedral_identities(
    images: torch.Tensor, labels: torch.Tensor, max_similarity: float = 0.9
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, C, S, S), (N,)`` -> the 8 rotations/mirrors of every image with identity ids
    ``8 * label + t``. A transformed identity whose mean image has cosine similarity above
    ``max_similarity`` with an identity already kept (a 0 turned upside down is still a 0) is
    dropped, so no two identities are the same glyph. Returns ``(M, C, S, S), (M,)``."""
    if images.shape[-1] != images.shape[-2]:
        raise CnnlabError("dihedral identities need square images")
    xs, ys, means = [], [], []
    for t in range(8):
        x = torch.rot90(images, t % 4, (-2, -1))
        if t >= 4:
            x = x.flip(-1)
        for c in labels.unique().tolist():
            sel = labels == c
            mean = x[sel].mean(0).flatten()
            mean = mean - mean.mean()
            if means and max(float(torch.cosine_similarity(mean, m, 0)) for m in means) > (
                max_similarity
            ):
                continue
            means.append(mean)
            xs.append(x[sel])
            ys.append(torch.full((int(sel.sum()),), 8 * c + t, dtype=torch.long))
    return torch.cat(xs), torch.cat(ys)


@dataclass(frozen=True)
class Pair:
    """One line of an LFW-style pairs file: two image files, and whether they show the same
    person."""

    first: Path
    second: Path
    same: bool


def _image(root: Path, name: str, index: str, where: str) -> Path:
    try:
        i = int(index)
    except ValueError:
        raise CnnlabError(f"{where}: image number {index!r} is not an integer") from None
    folder = root / name
    if not folder.is_dir():
        raise CnnlabError(f"{where}: no folder {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    for path in files:
        if path.stem == f"{name}_{i:04d}":
            return path
    if not 1 <= i <= len(files):
        raise CnnlabError(f"{where}: {name} has {counted(len(files), 'image')}, no number {i}")
    return files[i - 1]


def read_pairs(path: str | Path, root: str | Path) -> list[Pair]:
    """The pairs of an LFW-style ``pairs.txt`` under the identity folder ``root``."""
    path, root = Path(path), Path(root)
    if not path.is_file():
        raise CnnlabError(f"{path}: no such pairs file")
    pairs = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        fields = line.split()
        where = f"{path}:{number}"
        if not fields or (number == 1 and len(fields) <= 2 and all(f.isdigit() for f in fields)):
            continue
        if len(fields) == 3:
            name, i, j = fields
            pairs.append(Pair(_image(root, name, i, where), _image(root, name, j, where), True))
        elif len(fields) == 4:
            a, i, b, j = fields
            pairs.append(Pair(_image(root, a, i, where), _image(root, b, j, where), a == b))
        else:
            raise CnnlabError(
                f"{where}: expected 'name i j' or 'name1 i name2 j', got {len(fields)} fields"
            )
    if not pairs:
        raise CnnlabError(f"{path}: no pairs in the file")
    return pairs


def person_folders(
    root: str | Path, skipped: list[str] | None = None, enrolling: bool = True
) -> list[tuple[str, list[str]]]:
    """``root/<person>/*.jpg`` -> ``(person, image files)`` for every person folder, sorted by
    name (hidden folders left out); a folder's unreadable files are noted in ``skipped``, as
    :func:`~cnnlab.data.folder.image_files` does. A root that is not a folder, has no person
    folders, or has image files of its own (whose person would they be?) is an error naming it
    (one person's folder given by mistake: ``enrolling`` suggests enrolling it with ``--name``).
    ``enrolling``, a person's videos are among their files (enrolment reads their frames)."""
    from cnnlab.data.folder import IMAGE_SUFFIXES, image_files, images_under
    from cnnlab.data.video import VIDEO_SUFFIXES, is_video

    folder = Path(root)
    if not folder.is_dir():
        raise CnnlabError(f"{folder}: not a folder of person folders ({folder}/<person>/*.jpg)")
    people = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    suffixes = IMAGE_SUFFIXES | VIDEO_SUFFIXES if enrolling else IMAGE_SUFFIXES
    loose = [p for p in images_under(folder, suffixes) if p.parent == folder]
    if not people and loose:  # one person's folder given for the gallery
        alone = f" (--name {folder.name} {folder})," if enrolling else ""
        raise CnnlabError(
            f"{folder}: images, but no person folders: one person's?{alone} or the folder above it"
        )
    if not people:
        raise CnnlabError(f"{folder}: no person folders ({folder}/<person>/*.jpg)")
    if loose:
        raise CnnlabError(
            f"{loose[0]}: {'a video' if is_video(loose[0]) else 'an image'} beside the person "
            "folders; put it in its person's folder"
        )
    return [(p.name, image_files([str(p)], skipped, videos=enrolling)) for p in people]
