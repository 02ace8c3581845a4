"""The commands of a face database (``cnnlab faces enroll|verify|identify|list|remove``):
images (and videos' frames) embedded by an encoder, :class:`~cnnlab.engine.recognition.FaceEncoder`,
and kept or compared in a :class:`~cnnlab.data.face_db.FaceDatabase`, which records the encoder
that enrolled so the others need not be told it."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console

from cnnlab.cli.common import add_device
from cnnlab.cli.predicting import dataset_folder, frame_stride
from cnnlab.cli.shown import (
    MAX_DRAWN,
    csv_file,
    drawn_note,
    figure_file,
    first_shown,
    runner_up_columns,
    sources_word,
    write_csv,
)
from cnnlab.errors import CnnlabError
from cnnlab.words import counted, skipped_lines

NOT_RECOGNIZED = "not recognized"
"""``identify --as-dataset``'s folder for the images nobody enrolled came near enough to."""


def cmd_faces_people(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """``faces list`` and ``faces remove``: who is enrolled, with how many images; ``remove``
    with images removes only those (:meth:`~cnnlab.engine.recognition.FaceEncoder.remove`)."""
    from cnnlab.data.face_db import FaceDatabase

    db = FaceDatabase(args.db, FaceDatabase.model_of(args.db))  # refuses a missing file
    images = getattr(args, "images", None)
    if images:  # only these images of the person: found by their embeddings
        encoder = load_encoder(args, console)
        db.close()
        db = encoder.database(args.db)  # one made by another model is refused
        removed, left = encoder.remove(db, args.name, images, frame_stride(args))
        if not args.json:
            rest = (
                f"{counted(left, 'image')} left" if left else f"{args.name} is no longer enrolled"
            )
            console.print(
                f"removed {counted(removed, 'image')} of {args.name} from {args.db} ({rest})"
            )
    else:
        removed = db.remove(args.name) if args.what == "remove" else None
    people = [{"name": n, "images": c} for n, c in db.people()]
    recorded = FaceDatabase.encoder_of(args.db)  # the file verify and identify load
    if not args.json:
        if removed is not None and not images:
            console.print(
                f"removed {args.name} and their {counted(removed, 'image')} from {args.db}"
            )
        for p in people:
            console.print(f"{p['name']}: {counted(p['images'], 'image')}")
        if not people:
            console.print(f"nobody is enrolled in {args.db}")
        elif recorded is not None:
            console.print(
                f"encoder: {_here(recorded[1])} (the {ENCODER_WORDS[recorded[0]]} that enrolled)"
            )
    result = {"people": people, "encoder": str(recorded[1]) if recorded else None}
    if images:
        return result | {"removed": args.name, "removed_images": removed}
    return result | ({"removed": args.name} if removed is not None else {})


def cmd_faces_enroll(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """``faces enroll``: embed the images, then add them to the person in one transaction; with
    ``--people``, every person folder of a gallery, a transaction each."""
    if args.people and (args.name or args.images):
        raise CnnlabError("--people enrols each person folder under it: give no --name or images")
    if not args.people and not (args.name and args.images):
        raise CnnlabError(
            "give --name and the person's images, or --people FOLDER (FOLDER/<person>/*.jpg)"
        )
    encoder = load_encoder(args, console)
    if args.people:
        from cnnlab.data.identities import person_folders

        skipped: list[str] = vars(args).setdefault("skipped_files", [])  # in --json as well
        people = person_folders(args.people, skipped)
        for line in skipped_lines(skipped):  # a gallery's unreadable files, as training says
            print(line, file=sys.stderr)
        every = frame_stride(args, [f for _, files in people for f in files])
        rows = encoder.enroll_people(encoder.database(args.db), people, every)
        if not args.json:
            for r in rows:
                again = f" ({r['skipped']} already enrolled, skipped)" if r["skipped"] else ""
                console.print(f"{r['name']}: enrolled {counted(r['enrolled'], 'image')}{again}")
            console.print(
                f"{counted(len(rows), 'person', 'people')} from {args.people} in {args.db}"
            )
        return {"people": rows, "encoder": _encoder_file(encoder)}
    others: list[dict[str, str]] = []  # images someone else has enrolled already (warned)
    read: list[str] = []  # each image read, or each frame of a video
    every = frame_stride(args)
    n = encoder.enroll(encoder.database(args.db), args.name, args.images, others, every, read)
    skipped_images = len(read) - n
    if not args.json:
        again = f" ({skipped_images} already enrolled, skipped)" if skipped_images else ""
        of = "frame" if sources_word(read) == "frames" else "image"  # a video's, or any
        console.print(f"enrolled {counted(n, of)} of {args.name}{again}")
    result = {"name": args.name, "enrolled": n, "skipped": skipped_images}
    result["encoder"] = _encoder_file(encoder)
    return result | ({"enrolled_as_others": others} if others else {})


def cmd_faces_probe(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """``faces verify`` (is each image ``--name``?) and ``faces identify`` (who is it, or not
    recognized): :class:`cnnlab.engine.recognition.FaceEncoder` at the checkpoint's tau."""
    from cnnlab.cli.predicting import checkpoint_among, checkpoint_or_onnx
    from cnnlab.data.face_db import require_database

    if not (args.checkpoint or args.onnx) and checkpoint_among([str(f) for f in args.images]):
        checkpoint_or_onnx(args, "faces")  # a best.pt among the images: where it goes, first
    require_database(args.db)  # then the database: without one, no encoder would help
    encoder = load_encoder(args, console)
    tau = encoder.tau
    csv_path = csv_file(args.csv) if args.csv else None  # refused before any image is read
    figure = figure_file(args.output) if args.output else None  # as is a figure's
    dataset = dataset_folder(args, "who each is") if args.what == "identify" else None
    db = encoder.database(args.db)
    every = frame_stride(args)
    if args.what == "verify":
        rows = encoder.verify(db, args.name, args.images, every)
    else:
        rows = encoder.identify(db, args.images, args.top_k, every)
    cut = encoder.similarity_threshold if args.what == "verify" else None
    if not args.json:
        shown, note = first_shown(rows, csv_path)
        for r in shown:
            verdict = (
                ("same person" if r["same"] else "different person")
                if args.what == "verify"
                else (r["identity"] or "not recognized")
            )
            why = f"distance {r['distance']:.3f}, tau {tau:.3f}"
            if args.what == "identify" and r["identity"] is None:  # who came nearest, still
                why = f"nearest {r['nearest']}, " + why
            if cut is not None:  # a --method similarity encoder decides by its learned score
                why = f"learned similarity {r['similarity']:.3f}, threshold {cut:.3f}; " + why
            runners_up = ", ".join(f"{n} {x:.3f}" for n, x in r.get("top_k", [])[1:])
            after = f"; next: {runners_up}" if runners_up else ""
            console.print(f"{r['source']}: {verdict} ({why}){after}")
        if note:
            console.print(note)
        if len(rows) > 1:
            console.print(_tally(rows, args.name if args.what == "verify" else None))
    result: dict[str, Any] = {"tau": tau, "encoder": _encoder_file(encoder), "results": rows}
    if cut is not None:
        result["similarity_threshold"] = cut
    if figure:
        result["figure"] = str(_draw_probes(rows, encoder, figure, args.what == "verify"))
        if not args.json:
            console.print(f"wrote {figure}{drawn_note(rows)}")
    if csv_path:  # source, claimed, distance, same / identity, nearest (and the runners-up)
        result["csv"] = write_csv(csv_path, [_flat(r) for r in rows], console, args.json)
    if dataset:  # a person folder each: correct it, then enrol it (--people) or train on it
        result["dataset"] = _write_people(dataset, rows)
        if not args.json:
            stranger = f"; {NOT_RECOGNIZED}/: name or delete them" if _strangers(rows) else ""
            console.print(
                f"copied {counted(len(rows), 'image')} to {dataset}/<person>/{stranger} "
                "(then faces enroll --people, or faces train --data there)"
            )
    return result


def _strangers(rows: list[dict[str, Any]]) -> int:
    """How many probes ``identify`` named nobody."""
    return sum(r["identity"] is None for r in rows)


def _write_people(folder: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``identify --as-dataset``: each probe copied to ``folder/<person it was named>/`` (the
    identity-folder layout ``faces enroll --people`` and ``faces train --data`` read), the ones
    not recognized to ``folder/not recognized/``, to move into a person's folder (a new one for
    a new person) or delete. Only people named get a folder: an empty person folder is an error
    for a gallery."""
    from cnnlab.data.folder import write_class_folders

    named = sorted({r["identity"] for r in rows if r["identity"] is not None})
    names = named + ([NOT_RECOGNIZED] if _strangers(rows) else [])
    files = [(r["source"], r["identity"] or NOT_RECOGNIZED) for r in rows]
    return write_class_folders(folder, names, files)


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    """A probe's row for a spreadsheet: ``top_k``'s runners-up as ``person_2, distance_2``..."""
    flat = {k: v for k, v in row.items() if k != "top_k"}
    return flat | runner_up_columns(row.get("top_k", []), "person", "distance")


def _draw_probes(rows: list[dict[str, Any]], encoder: Any, path: Path, verify: bool) -> Path:
    """``-o``: the first :data:`MAX_DRAWN` probes, each captioned with the verdict and its
    distance (green: the claimed person, or a name; red: not them, or not recognized)."""
    from cnnlab.data.video import with_frames
    from cnnlab.engine.predict import thumbnails
    from cnnlab.engine.recognition import face_meta
    from cnnlab.viz.plots import plot_captioned

    drawn = rows[:MAX_DRAWN]
    images = thumbnails(
        with_frames([r["source"] for r in drawn]), face_meta(encoder.checkpoint)["input_size"][0]
    )
    if verify:
        yes = [r["same"] for r in drawn]
        words = [f"{r['claimed'] if r['same'] else 'not ' + r['claimed']}" for r in drawn]
    else:
        yes = [r["identity"] is not None for r in drawn]
        words = [r["identity"] or "not recognized" for r in drawn]
    cut = encoder.similarity_threshold if verify else None  # decided by the learned similarity
    captions = [
        f"{w}\n" + (f"d = {r['distance']:.2f}" if cut is None else f"s = {r['similarity']:.2f}")
        for w, r in zip(words, drawn, strict=True)
    ]
    colors = ["forestgreen" if y else "firebrick" for y in yes]
    title = f"tau = {encoder.tau:.2f}: a distance at most tau is the same person"
    if cut is not None:
        title = f"learned similarity s at least {cut:.2f} is the same person"
    return plot_captioned(images, captions, path, title, colors, cols=6)


def _tally(rows: list[dict[str, Any]], claimed: str | None) -> str:
    """One line for many probes: how many are ``claimed`` (verify), or who was named how often
    and how many were not recognized (identify)."""
    sources = [r["source"] for r in rows]
    if claimed is not None:
        same = sum(r["same"] for r in rows)
        rule = "learned similarity >= threshold" if "similarity" in rows[0] else "distance <= tau"
        return f"{same} of {len(rows)} {sources_word(sources)} are {claimed} ({rule})"
    named = Counter(r["identity"] for r in rows if r["identity"] is not None)
    who = ", ".join(f"{name} {n}" for name, n in named.most_common())
    recognized = sum(named.values())
    return (
        f"recognized {recognized} of {len(rows)} {sources_word(sources)}"
        + (f" ({who})" if who else "")
        + f"; {len(rows) - recognized} not recognized"
    )


ENCODER_WORDS = {"checkpoint": "checkpoint", "onnx": "ONNX file"}  # a recorded encoder's format
ENCODER_HELP = "an encoder's best.pt from cnnlab faces train (or give --onnx)"


def add_encoder(p: argparse.ArgumentParser, recorded: bool = False) -> None:
    """``--checkpoint`` or ``--onnx``, and ``--device``; ``recorded``: a command given a
    ``--db``, which defaults to the encoder that enrolled there."""
    after = " (default: the one that last enrolled in --db, which records it)" if recorded else ""
    p.add_argument("--checkpoint", help=ENCODER_HELP + after)
    p.add_argument(
        "--onnx",
        help="instead: the file cnnlab export wrote of such a best.pt, run by ONNX Runtime "
        "(it keeps the model's id: a database enrolled with either serves both)",
    )
    add_device(p)


def load_encoder(args: argparse.Namespace, console: Console | None = None) -> Any:
    """The :class:`~cnnlab.engine.recognition.FaceEncoder` of ``--checkpoint`` or ``--onnx``;
    given neither, the one that enrolled in ``--db`` (its file, recorded there), said on
    ``console``."""
    from cnnlab.cli.predicting import checkpoint_or_onnx
    from cnnlab.data.face_db import FaceDatabase
    from cnnlab.engine.recognition import FaceEncoder

    db = getattr(args, "db", None)
    told = args.checkpoint or args.onnx
    if not told and db and Path(db).is_file() and FaceDatabase.encoder_of(db) is not None:
        encoder = FaceEncoder.of_database(db, args.device)
        if console is not None and not args.json:
            kind, file = encoder.source
            console.print(
                f"encoder: {_here(file)} (the {ENCODER_WORDS[kind]} that enrolled in {db})"
            )
        return encoder
    checkpoint_or_onnx(args, "faces")
    return FaceEncoder.load(checkpoint=args.checkpoint, onnx=args.onnx, device=args.device)


def _encoder_file(encoder: Any) -> str:
    """The encoder's file for ``--json``, absolute, as the database records it."""
    return str(Path(encoder.source[1]).resolve())


def _here(file: Path) -> Path:
    """``file`` relative to the working folder when it is under it (a database records the
    absolute path), else as it is."""
    try:
        return file.relative_to(Path.cwd())
    except ValueError:
        return file


def add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default="runs/faces/faces.db", help="the SQLite face database")
