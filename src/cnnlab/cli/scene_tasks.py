"""What the commands that train on scenes share (localize, detect, segment): the train
command itself, the help texts, ``--mirror``, a predict command's ``--scenes --seed -o`` and the
images it reads, a box in words."""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from rich.console import Console

from cnnlab.cli.common import data_change_reported, resumed_config
from cnnlab.cli.shown import run_folder_note
from cnnlab.cli.typed import refuse_scene_options
from cnnlab.cli.values import positive_int, random_seed

if TYPE_CHECKING:
    from cnnlab.data.video import Every

BACKBONE_HELP = "a registered classifier whose features the head reads (see cnnlab models)"
SIZE_HELP = "images are NxN"
BOX_DATA_HELP = (
    "scenes, a YOLO folder or its data.yaml (Ultralytics), a COCO .json, or a folder of "
    "Pascal VOC XML files (LabelImg, CVAT, Roboflow) or of labelme JSON files"
)


def final_note(split: str) -> str:
    """What a train command adds when its final figures are on val (no test split)."""
    return "; no test split, val also chose the best epoch" if split == "val" else ""


def train_command(
    args: argparse.Namespace,
    console: Console,
    settings: type,
    train: Callable[..., dict[str, Any]],
    figures: Callable[[dict[str, Any], str], str],
) -> dict[str, Any]:
    """``localize|detect|segment train``: the ``settings`` dataclass from the options (with
    ``--resume`` or ``--config``), ``train(config, console, resume)``, and the line of the
    ``figures(result, split)`` on the split it ended on, then where the run folder is."""
    config = resumed_config(settings, args)
    refuse_scene_options(args, config.data)
    with data_change_reported():  # a run resumed on changed data says so
        result = train(config, Console(stderr=True, quiet=args.json), args.resume or "")
    if not args.json:
        split = result["evaluated_on"]
        console.print(figures(result, split) + final_note(split))
        console.print(run_folder_note(result["run_dir"], args.started))
    return result


def box_text(box: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in box)


def add_mirror(p: argparse.ArgumentParser, default: bool, what: str) -> None:
    """``--mirror / --no-mirror``: random horizontal flips of the training images."""
    p.add_argument(
        "--mirror",
        action=argparse.BooleanOptionalAction,
        default=default,
        help=f"mirror half the training images left to right, {what} alike; --no-mirror where "
        "left and right differ (arrows, text)",
    )


def add_scenes(p: argparse.ArgumentParser, seed: int, output: str) -> None:
    """``--scenes --seed -o`` of a predict command that draws new scenes without images."""
    p.add_argument("--scenes", type=positive_int, default=8, help="new scenes, without images")
    p.add_argument("--seed", type=random_seed, default=seed, help="seeds the new scenes")
    p.add_argument("-o", "--output", default=output, help="the figure's PNG")


def scene_or_file_inputs(
    args: argparse.Namespace, size: int, scenes: Callable[[], Any], every: Every = 1
) -> tuple[Iterable[tuple[Any, list[tuple[int, int]]]], list[str]]:
    """A box predict command's images, a chunk at a time with each one's ``(width, height)``,
    and their sources: the files given, stretched to the model's ``size``
    (:func:`~cnnlab.engine.predict.stretched_chunks`: one chunk in memory however many), then
    each video's frames, every ``every``-th (:func:`~cnnlab.engine.predict.video_chunks`, named
    in ``sources`` as they are read); or ``scenes()`` drawn at that size, one chunk."""
    if args.images:
        from cnnlab.data.video import is_video
        from cnnlab.engine.predict import stretched_chunks, video_chunks

        stills = [p for p in args.images if not is_video(p)]
        sources = list(stills)  # each video's frames join as they are read
        videos = [video_chunks(v, size, sources, every) for v in args.images if is_video(v)]
        return itertools.chain(stretched_chunks(stills, size), *videos), sources
    images = scenes()
    return [(images, [(size, size)] * len(images))], [f"scene[{i}]" for i in range(len(images))]
