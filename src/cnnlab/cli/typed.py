"""Options typed where they do nothing are refused with one line, not ignored.

``cnnlab.cli.main`` records the options as typed (``args.typed``), so an option is known to be
given even at its default value. The commands name theirs: ``explain conv --input <3x3> --n 6``
(the matrix gives the size), ``detect predict photo.jpg --scenes 20`` (image files replace the
new scenes), ``detect train --data my_yolo --images 500`` (the folder brings its own images),
``edges learn --lr 0.5`` with L-BFGS (its steps come from a line search), and others.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from cnnlab.errors import CnnlabError
from cnnlab.words import listed


def typed(args: argparse.Namespace, *options: str) -> list[str]:
    """Those of ``options`` typed on the command line, in the order given here."""
    return [o for o in options if o in getattr(args, "typed", ())]


def refuse_beside_images(
    args: argparse.Namespace, options: Sequence[str], meaning: str, option: str = "images"
) -> None:
    """``options`` typed beside image files (``args.<option>``), where they choose the images
    used without any (``meaning``)."""
    given = typed(args, *options)
    if getattr(args, option, None) and given:
        many = len(given) > 1
        raise CnnlabError(
            f"{listed(given)} {'choose' if many else 'chooses'} {meaning} when no image files "
            f"are given; with image files, drop {'them' if many else 'it'}"
        )


SCENE_OPTIONS = ("--images", "--num-classes", "--max-objects")  # the generator's, at train


def refuse_scene_options(args: argparse.Namespace, data: str) -> None:
    """A train command's scene-generator options typed with ``--data`` other than scenes."""
    given = typed(args, *SCENE_OPTIONS)
    if data != "scenes" and given:
        raise CnnlabError(
            f"{listed(given)} {'describe' if len(given) > 1 else 'describes'} the generated "
            f"scenes; --data {data} brings its own images and classes"
        )


def refuse_lr_without_adam(args: argparse.Namespace, why: str) -> None:
    """``--lr`` typed for an optimiser other than Adam (``why``: what the other one does)."""
    if typed(args, "--lr") and args.optimizer != "adam":
        raise CnnlabError(f"--lr is Adam's learning rate (--optimizer adam); {why}")


def refuse_other_mode(args: argparse.Namespace, matrices: bool) -> None:
    """explain conv, pool and transpose compute on matrices (``--input``, ``--filter``) or
    explain the shapes of a layer (``--n``, ``--f``, ``--channels``, ``--filters``): an option
    of the other mode was ignored without a word (``--input "1 2;3 4" --n 6``)."""
    pooling = args.what == "pool"  # pooling's --f is its window, on a matrix as well
    given = typed(args, "--n", *(() if pooling else ("--f",)), "--channels", "--filters")
    if matrices and given:
        raise CnnlabError(
            f"explain {args.what}: {listed(given)} {'describe' if len(given) > 1 else 'describes'} "
            "a layer's shapes, without --input; with --input the matrices give the sizes"
        )
    if not matrices and getattr(args, "filter", None):
        raise CnnlabError(
            f"explain {args.what}: --filter is a matrix to convolve --input with; without "
            "--input give --n and --f for the shapes"
        )
