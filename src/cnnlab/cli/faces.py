"""Face verification and recognition commands."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from cnnlab.cli.common import (
    MAX_DRAWN,
    Parser,
    add_backbone_weights,
    add_csv,
    add_device,
    add_image_files,
    add_run_folder,
    config_from_args,
    csv_file,
    drawn_note,
    figure_file,
    first_shown,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    random_seed,
    run_folder_note,
    runner_up_columns,
    write_csv,
)
from cnnlab.cli.predicting import (
    add_as_dataset,
    add_every,
    dataset_folder,
    frame_stride,
    sources_word,
)
from cnnlab.cli.typed import typed
from cnnlab.errors import CnnlabError
from cnnlab.words import counted, skipped_lines

NOT_RECOGNIZED = "not recognized"
"""``identify --as-dataset``'s folder for the images nobody enrolled came near enough to."""


SUMMARY_ROWS = (  # (key in train_faces' results, what it measures)
    ("verification_accuracy", "verification accuracy at tau (never-seen identities)"),
    ("identification_1_shot", "one-shot identification (1 image enrolled)"),
    ("identification_5_shot", "5-shot identification"),
    ("open_set_rejection", "open set: strangers turned away"),
    ("open_set_identification", "open set: enrolled people named right"),
    ("unseen_auc", "ROC AUC, never-seen pairs"),
    ("unseen_eer", "equal-error rate, never-seen pairs"),
    ("tau", "tau (chosen on held-out images of the training identities)"),
    ("val_accuracy", "verification accuracy there"),
    ("seconds", "training seconds"),
)


def _summary_table(result: dict[str, Any]) -> Table:
    """The figures of a faces run, never-seen identities first; absent ones (no identity with
    more than 5 images, say) show as '-'."""
    table = Table(title="faces: what the encoder does on identities it never saw")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = list(SUMMARY_ROWS)
    if "similarity_threshold" in result:  # --method similarity: verification by its unit
        rows[0] = ("verification_accuracy", "verification accuracy at the learned threshold")
        rows[-3:-1] = [  # in place of tau and the held-out accuracy
            ("similarity_threshold", "learned similarity threshold (held-out training images)"),
            ("val_accuracy", "verification accuracy there"),
            ("tau", "tau, a distance (open-set identification decides by it)"),
        ]
    for key, what in rows:
        value = result.get(key)
        shown = "-" if value is None else f"{value:.1f}" if key == "seconds" else f"{value:.3f}"
        table.add_row(what, shown)
    return table


# options that only one --method reads (None when not given: the method's default applies)
METHOD_OPTIONS = {
    "mining": "triplet",
    "alpha": "triplet",
    "margin": "cosface",
    "scale": "cosface",
    "similarity": "similarity",
}


def cmd_faces_train(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """``faces train``: :func:`cnnlab.engine.faces.train_faces`, then its figures on the
    identities it never saw."""
    from cnnlab.engine.faces import FacesConfig, glyph_option, train_faces

    config = config_from_args(FacesConfig, args)
    for option, method in METHOD_OPTIONS.items():  # given for a method that ignores it
        if getattr(args, option) is not None and config.method != method:
            raise CnnlabError(
                f"--{option} is for --method {method}; {config.method} does not use it"
            )
    if typed(args, "--synthetic-identities") and not glyph_option(config, "synthetic", "glyphs"):
        raise CnnlabError(
            "--synthetic-identities counts the glyph identities, "
            + (
                "and --synthetic none draws none"
                if config.synthetic == "none"
                else "which identity folders train without (--synthetic glyphs adds them)"
            )
        )
    result = train_faces(config, Console(stderr=True, quiet=args.json))
    if not args.json:
        console.print(_summary_table(result))
        if confused := most_confused(result):
            console.print(confused)
        console.print(run_folder_note(result["run_dir"]))
    return result


def most_confused(result: dict[str, Any]) -> str:
    """``most confused, one-shot: 7 named as 9 for 6.0% of its images`` from a faces result's
    ``most_confused_1_shot``; "" when nobody was named wrong."""
    found = result.get("most_confused_1_shot")
    if not found:
        return ""
    return (
        f"most confused, one-shot: {found['identity']} named as {found['named_as']} for "
        f"{found['share']:.1%} of its images"
    )


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
    from cnnlab.data.face_db import require_database

    encoder = load_encoder(args, console)
    require_database(args.db)
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
            console.print(f"wrote {figure}{drawn_note(len(rows))}")
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


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default="runs/faces/faces.db", help="the SQLite face database")


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """faces train|enroll|verify|identify|pairs|list|remove."""
    faces = sub.add_parser("faces", parents=[common], help="face verification and recognition")
    kinds = faces.add_subparsers(dest="what", required=True, parser_class=Parser)
    from cnnlab.config import FACE_METHODS, FacesConfig

    d = FacesConfig()
    p = kinds.add_parser("train", parents=[common], help="Siamese encoder on identities")
    p.add_argument("--data", default=d.data, help="digits, or root/<person>/*.jpg")
    p.add_argument(
        "--unseen",
        default=d.unseen,
        help="identities held out of training; verification and one-shot are measured on them "
        "(default: 6,7,8,9 for digits; a fifth of a folder's identities, the same every run)",
    )
    p.add_argument(
        "--backbone", default=d.backbone, help="a registered classifier (see cnnlab models)"
    )
    p.add_argument(
        "--pool-size",
        type=positive_int,
        default=d.pool_size,
        help="spatial grid kept before the embedding (1: global pooling)",
    )
    p.add_argument(
        "--embedding-dim", type=positive_int, default=d.embedding_dim, help="length of f(x)"
    )
    p.add_argument(
        "--method",
        choices=FACE_METHODS,
        default=d.method,
        help="triplet loss, a learned similarity on pairs, or CosFace's margin softmax",
    )
    p.add_argument(
        "--mining",
        choices=("batch_hard", "batch_all", "semi_hard", "random"),
        help=f"which triplets of each P x K batch the triplet loss trains on ({d.mining})",
    )
    p.add_argument("--alpha", type=non_negative_float, help=f"triplet margin ({d.alpha})")
    p.add_argument("--margin", type=non_negative_float, help=f"cosface margin m ({d.margin})")
    p.add_argument(
        "--similarity",
        choices=("l1", "chi2"),
        help=f"--method similarity's features: l1, |f1 - f2|, or chi2, the slide's chi-square "
        f"(f1 - f2)^2 / (f1 + f2) ({d.similarity})",
    )
    p.add_argument(
        "--scale", type=positive_float, help=f"cosface scale s of the cosines ({d.scale:g})"
    )
    p.add_argument(
        "--identities",
        choices=("auto", "dihedral", "none"),
        default=d.identities,
        help="dihedral: each rotation/mirror of a training identity is a new identity "
        "(auto: for digits; a mirrored face is the same person)",
    )
    p.add_argument(
        "--synthetic",
        choices=("auto", "glyphs", "none"),
        default=d.synthetic,
        help="glyphs: random pen-stroke glyphs join every batch as extra identities (auto: digits)",
    )
    p.add_argument(
        "--synthetic-identities",
        type=positive_int,
        default=d.synthetic_identities,
        help="how many glyph identities the batches draw from",
    )
    p.add_argument(
        "--whiten",
        action=argparse.BooleanOptionalAction,
        default=d.whiten,
        help="whiten the embedding on new synthetic identities after training",
    )
    p.add_argument(
        "--p",
        "--identities-per-batch",
        dest="p",
        type=positive_int,
        default=d.p,
        help="P: identities in each batch (mining looks for triplets among them)",
    )
    p.add_argument(
        "--k",
        "--images-per-identity",
        dest="k",
        type=positive_int,
        default=d.k,
        help="K: images of each identity in a batch",
    )
    p.add_argument("--steps", type=positive_int, default=d.steps, help="optimisation steps")
    p.add_argument(
        "--patience",
        type=non_negative_int,
        default=d.patience,
        help="stop once this many steps in a row had a zero loss (every triplet met the "
        "margin: no gradient); 0: train every step",
    )
    p.add_argument(
        "--image-size",
        type=positive_int,
        default=d.image_size,
        help="images are resized to NxN (faces: 64 or more for a deeper --backbone)",
    )
    p.add_argument(
        "--members",
        type=positive_int,
        default=d.members,
        help="encoders trained apart and joined into one embedding (5 on the digits, median of "
        "3 seeds: verification 0.889 -> 0.887, one-shot 0.896 -> 0.895, open-set rejection "
        "0.895 -> 0.929; 5x the time)",
    )
    p.add_argument("--lr", type=positive_float, default=d.lr, help="peak learning rate of AdamW")
    add_backbone_weights(p, d.pretrained, d.backbone_lr_mult)
    p.add_argument(
        "--augment", default=d.augment, help="augmentations of each batch (as classify train)"
    )
    p.add_argument(
        "--seed", type=random_seed, default=d.seed, help="seeds weights, batches and glyphs"
    )
    add_device(p, d.device)
    add_run_folder(p, "faces")
    p.set_defaults(handler=cmd_faces_train)
    for name, helptext, images_help in (
        (
            "enroll",
            "add images of a person",
            "images or videos of the person (a video: its frames), or folders of them",
        ),
        (
            "verify",
            "is this the claimed person?",
            "images or videos (a row a frame), or folders of them, to check against --name",
        ),
        (
            "identify",
            "who is this, or not recognized",
            "images or videos (a row a frame), or folders of them, to identify",
        ),
    ):
        p = kinds.add_parser(name, parents=[common], help=helptext)
        add_encoder(p, recorded=True)
        _add_db(p)
        if name != "identify":
            p.add_argument("--name", required=name == "verify", help="the person")
        add_image_files(p, images_help, nargs="*" if name == "enroll" else "+", videos=True)
        add_every(p, "enrol" if name == "enroll" else "check" if name == "verify" else "identify")
        if name == "enroll":
            p.add_argument(
                "--people",
                metavar="FOLDER",
                help="a gallery FOLDER/<person>/*.jpg: every person in it, each enrolled in a "
                "transaction of its own (instead of --name and images)",
            )
        if name == "identify":
            p.add_argument(
                "--top-k",
                type=positive_int,
                default=1,
                help="also show the next nearest people, each at the distance of their nearest "
                "enrolled image, up to K in all",
            )
            add_as_dataset(p, f"FOLDER/<person named>/, and FOLDER/{NOT_RECOGNIZED}/")
        if name != "enroll":
            p.add_argument(
                "-o",
                "--output",
                help="also draw the first 24 images with their verdicts and distances here",
            )
            add_csv(
                p,
                "every image's "
                + (
                    "distance and verdict"
                    if name == "verify"
                    else "nearest person, distance and identity (empty: not recognized)"
                ),
            )
        p.set_defaults(handler=cmd_faces_enroll if name == "enroll" else cmd_faces_probe)
    from cnnlab.cli.face_eval import add_eval_parsers  # they need add_encoder from here

    add_eval_parsers(kinds, common)
    p = kinds.add_parser("list", parents=[common], help="enrolled people")
    _add_db(p)
    p.set_defaults(handler=cmd_faces_people)
    p = kinds.add_parser("remove", parents=[common], help="remove a person, or their images")
    _add_db(p)
    p.add_argument("--name", required=True, help="the person to remove, with their images")
    add_image_files(
        p,
        "only these of the person's images (one filed under the wrong person), found by "
        "their embeddings; the person goes with their last image",
        videos=True,
    )
    add_every(p, "remove")
    add_encoder(p, recorded=True)
    p.set_defaults(handler=cmd_faces_people)
