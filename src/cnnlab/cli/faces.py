"""Face verification and recognition commands: ``faces train`` and the parsers of them all
(the database's commands are in :mod:`cnnlab.cli.face_gallery`, scoring in
:mod:`cnnlab.cli.face_eval`)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from cnnlab.cli.common import (
    Parser,
    add_backbone_weights,
    add_device,
    add_image_files,
    add_run_folder,
    config_from_args,
)
from cnnlab.cli.face_gallery import (
    NOT_RECOGNIZED,
    add_db,
    add_encoder,
    cmd_faces_enroll,
    cmd_faces_people,
    cmd_faces_probe,
)
from cnnlab.cli.predicting import (
    add_as_dataset,
    add_every,
)
from cnnlab.cli.run_settings import add_config_option
from cnnlab.cli.shown import add_csv, run_folder_note
from cnnlab.cli.typed import typed
from cnnlab.cli.values import (
    non_negative_float,
    non_negative_int,
    person_name,
    positive_float,
    positive_int,
    random_seed,
)
from cnnlab.errors import CnnlabError

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
        console.print(run_folder_note(result["run_dir"], args.started))
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
    add_backbone_weights(p, d)
    p.add_argument(
        "--augment", default=d.augment, help="augmentations of each batch (as classify train)"
    )
    p.add_argument(
        "--seed", type=random_seed, default=d.seed, help="seeds weights, batches and glyphs"
    )
    add_device(p, d.device)
    add_run_folder(p, "faces")
    add_config_option(p)
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
        add_db(p)
        if name != "identify":
            p.add_argument("--name", type=person_name, required=name == "verify", help="the person")
        add_image_files(p, images_help, nargs="*" if name == "enroll" else "+", videos=True)
        does = {"enroll": "enrol", "verify": "check", "identify": "identify"}[name]
        add_every(p, does, drawn=False)
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
    from cnnlab.cli.face_eval import add_eval_parsers  # it needs most_confused from here

    add_eval_parsers(kinds, common)
    p = kinds.add_parser("list", parents=[common], help="enrolled people")
    add_db(p)
    p.set_defaults(handler=cmd_faces_people)
    p = kinds.add_parser("remove", parents=[common], help="remove a person, or their images")
    add_db(p)
    p.add_argument(
        "--name", type=person_name, required=True, help="the person to remove, with their images"
    )
    add_image_files(
        p,
        "only these of the person's images (one filed under the wrong person), found by "
        "their embeddings; the person goes with their last image",
        videos=True,
    )
    add_every(p, "remove", drawn=False)
    add_encoder(p, recorded=True)
    p.set_defaults(handler=cmd_faces_people)
