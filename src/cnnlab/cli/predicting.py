"""What the predict commands share: the network (a checkpoint or an ``--onnx`` file), the
table's source column, and what they write beside it: ``--as-dataset`` (the predictions as
training data to correct) and ``--out`` (the objects found drawn on each photo)."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from cnnlab.cli.common import checkpoint_among
from cnnlab.cli.values import frame_every
from cnnlab.errors import CnnlabError
from cnnlab.words import counted

if TYPE_CHECKING:
    from cnnlab.data.video import Every


def add_checkpoint_or_onnx(parser: argparse.ArgumentParser) -> None:
    """A predict command's network: ``--checkpoint`` or, exported, ``--onnx``."""
    parser.add_argument("--checkpoint", help="a run's best.pt (or give --onnx)")
    parser.add_argument("--onnx", help="instead: a file cnnlab export wrote, run by ONNX Runtime")


def checkpoint_or_onnx(args: argparse.Namespace, command: str) -> None:
    """Refuse both ``--checkpoint`` and ``--onnx``, or neither (naming the newest run of
    ``command``, and a ``.pt`` given among the images without its option)."""
    if args.checkpoint and args.onnx:
        raise CnnlabError("give --checkpoint or --onnx, not both")
    if not args.checkpoint and not args.onnx:
        from cnnlab.engine.run_folders import checkpoint_hint

        given = checkpoint_among([str(f) for f in getattr(args, "images", None) or []])
        raise CnnlabError(
            f"give --checkpoint ({checkpoint_hint(command)}) or --onnx (a file cnnlab export "
            "wrote)" + (f"; to use {given}, put --checkpoint before it" if given else "")
        )


def predict_network(args: argparse.Namespace, command: str, task: str) -> tuple[Any, dict]:
    """The network a predict command runs and what it was saved with: the checkpoint's model
    on ``--device`` and the checkpoint, or the ``--onnx`` file's network (decoded after the
    graph as the model's output is, :mod:`cnnlab.engine.exported`) and its metadata
    (:func:`~cnnlab.engine.predict.load_network`)."""
    from cnnlab.engine.predict import load_network

    checkpoint_or_onnx(args, command)
    network, saved = load_network(args.checkpoint, args.onnx, task, args.device)
    if args.onnx and not args.images:
        raise CnnlabError("with --onnx, give image files (new scenes need the run's settings)")
    return network, saved


def add_as_dataset(
    parser: argparse.ArgumentParser, layout: str, formats: dict[str, str] | None = None
) -> None:
    """``--as-dataset FOLDER``: the images given and what the model said of them, written as
    the training data of the task (``layout``), a draft of labels to correct and train on;
    with ``formats`` (each labelling tool's layout and what it writes, the first the default),
    ``--dataset-format`` too (:mod:`cnnlab.data.drafts`)."""
    parser.add_argument(
        "--as-dataset",
        metavar="FOLDER",
        help=f"also write the images and their predictions there as a dataset ({layout}): "
        "labels to correct, then train on (--data FOLDER); a new or empty folder",
    )
    if formats:
        parser.add_argument(
            "--dataset-format",
            choices=list(formats),
            default=next(iter(formats)),
            help="--as-dataset's layout: "
            + ", ".join(f"{kind} ({what})" for kind, what in formats.items()),
        )


def dataset_folder(args: argparse.Namespace, what: str) -> Path | None:
    """``--as-dataset``'s folder, checked before any image is read; it needs image files
    (the split's or new scenes' images have no files to write)."""
    if not args.as_dataset:
        from cnnlab.cli.typed import typed

        if typed(args, "--dataset-format"):
            raise CnnlabError("--dataset-format is --as-dataset's layout; give --as-dataset FOLDER")
        return None
    if not args.images:
        raise CnnlabError(f"--as-dataset writes the images given and {what}; give image files")
    from cnnlab.data.folder import new_dataset_folder

    return new_dataset_folder(args.as_dataset)


def add_every(
    parser: argparse.ArgumentParser, does: str = "predict on", drawn: bool = True
) -> None:
    """``--every N``: of each video given, frames 0, N, 2N, ... only; ``does`` names what is
    done with them, and ``drawn`` says the command's ``--out`` writes a video of them."""
    out = "; --out's video plays them at 1/N of the frame rate, lasting as long" if drawn else ""
    parser.add_argument(
        "--every",
        type=frame_every,
        default=1,
        metavar="N",
        help=f"of each video, {does} every N-th frame only (0, N, 2N, ...; 2s: a frame every 2 "
        f"seconds of each video, at its own frame rate; default 1: all){out}",
    )


def frame_stride(args: argparse.Namespace, files: Sequence[str] | None = None) -> Every:
    """``--every``'s N (or seconds), refused where no video is given (it would do nothing):
    among ``files``, or by default the images given."""
    from cnnlab.data.video import is_video

    given = (args.images or []) if files is None else files
    if args.every != 1 and not any(is_video(p) for p in given):
        raise CnnlabError(f"--every {args.every} keeps some frames of a video; give a video")
    return args.every


def add_drawn_folder(parser: argparse.ArgumentParser, what: str, tag: str = "boxes") -> None:
    """``--out FOLDER``: each image given, at its own size, with ``what`` drawn on it, written
    as ``<name>_<tag>``."""
    parser.add_argument(
        "--out",
        metavar="FOLDER",
        help=f"also write each image given with {what} drawn on it, at its own size, to FOLDER "
        f"(<name>_{tag}.jpg for a JPEG, .png otherwise, .mp4 for a video)",
    )


def drawn_folder(args: argparse.Namespace) -> Path | None:
    """``--out``'s folder, made and checked writable before any image is read; it needs image
    files (new scenes are drawn in the ``-o`` figure)."""
    if not args.out:
        return None
    if not args.images:
        raise CnnlabError("--out draws on the image files given; give image files or folders")
    from cnnlab.errors import refuse_unwritable

    folder = Path(args.out)
    if folder.exists() and not folder.is_dir():
        raise CnnlabError(f"{folder}: a file; --out takes a folder")
    refuse_unwritable(folder / "drawn")
    return folder


def write_drawn(
    folder: Path, drawn: Sequence[tuple[str, list, list[str], list[int], list]], tag: str = "boxes"
) -> list[str]:
    """Each ``(source, boxes, captions, classes, points)`` drawn on its file at its own size
    (:func:`~cnnlab.viz.boxes.draw_boxes`), written to ``folder`` as ``<stem>_<tag>``; returns
    the files' paths."""
    from cnnlab.data.folder import distinct_stems
    from cnnlab.data.images import open_image, with_progress
    from cnnlab.viz.boxes import draw_boxes, drawn_path

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    sources = [d[0] for d in drawn]
    for (source, boxes, captions, classes, points), stem in with_progress(
        list(zip(drawn, distinct_stems(sources), strict=True)), "drawing"
    ):
        path = drawn_path(folder, stem, source, tag)
        image = draw_boxes(open_image(source, "RGB"), boxes, captions, classes, points)
        image.save(path, **({"quality": 92} if path.suffix == ".jpg" else {}))
        paths.append(str(path))
    return paths


def draw_found(
    folder: Path | None,
    rows: list[dict[str, Any]],
    found: list[list],
    points: list | None = None,
    every: Every = 1,
    tag: str = "boxes",
) -> None:
    """``--out`` of the predict commands: each file with ``found[i]``, its objects as
    ``(class index, box in its pixels or None for the whole image, caption)``, and
    ``points[i]``, each box's landmarks, drawn on it (:func:`write_drawn`, as
    ``<stem>_<tag>``; a video's frames, every ``every``-th, as a video again); each row gets its
    file's path, ``drawn``."""
    if folder is None:
        return
    from cnnlab.data.folder import distinct_stems
    from cnnlab.data.video import video_of

    drawn = [
        (r["source"], [b for _, b, _ in f], [c for _, _, c in f], [k for k, _, _ in f], p)
        for r, f, p in zip(rows, found, points or [[]] * len(rows), strict=True)
    ]
    stills = [i for i, d in enumerate(drawn) if video_of(d[0]) is None]
    written_stills = write_drawn(folder, [drawn[i] for i in stills], tag)
    for i, written in zip(stills, written_stills, strict=True):
        rows[i]["drawn"] = written
    by_video: dict[str, list[int]] = {}
    for i, d in enumerate(drawn):
        if (frame := video_of(d[0])) is not None:
            by_video.setdefault(frame[0], []).append(i)
    for video, stem in zip(by_video, distinct_stems(list(by_video)), strict=True):
        written = write_drawn_video(
            folder / f"{stem}_{tag}.mp4", video, [drawn[i] for i in by_video[video]], every
        )
        for i in by_video[video]:
            rows[i]["drawn"] = written


def drawn_said(rows: list[dict[str, Any]], folder: Path, what: str = "the boxes") -> str:
    """What ``--out`` drew, in a line: ``drew the boxes on 1 image and 8 frames of 2 videos in
    out (clip_boxes.mp4, ...)``."""
    from cnnlab.data.video import video_of

    frames = [r["drawn"] for r in rows if video_of(r["source"]) is not None]
    videos = list(dict.fromkeys(frames))  # each once, in order
    parts = [counted(len(rows) - len(frames), "image")] if len(frames) < len(rows) else []
    if videos:
        parts.append(f"{counted(len(frames), 'frame')} of {counted(len(videos), 'video')}")
    named = f" ({', '.join(Path(v).name for v in videos)})" if videos else ""
    return f"drew {what} on {' and '.join(parts)} in {folder}{named}"


def write_drawn_video(
    path: Path,
    video: str,
    drawn: Sequence[tuple[str, list, list[str], list[int], list]],
    every: Every = 1,
) -> str:
    """``video`` again, each frame (every ``every``-th) with its ``drawn[i]`` (as
    :func:`write_drawn` draws on a photo), as ``path``: at the video's own frame rate, divided
    by ``every``, so that it lasts as long."""
    import numpy as np
    from PIL import Image

    from cnnlab.data.video import read_frames, video_info, write_video
    from cnnlab.viz.boxes import draw_boxes

    path.parent.mkdir(parents=True, exist_ok=True)
    _, fps = video_info(video, every)
    frames = (
        np.asarray(draw_boxes(Image.fromarray(frame), boxes, captions, classes, points))
        for frame, (_, boxes, captions, classes, points) in zip(
            read_frames(video, every),
            drawn,
            strict=True,  # the same file, read again
        )
    )
    write_video(path, frames, fps)
    return str(path)


def write_boxes(
    folder: Path,
    names: list[str],
    rows: list[dict[str, Any]],
    frames: list[tuple[int, int]],
    found: list[list],
    console: Console,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """``--as-dataset`` of detect and localize predict: the images and ``found[i]``'s boxes
    as ``--dataset-format`` lays them out (:func:`~cnnlab.data.drafts.write_draft`), said in a
    line (unless ``--json``)."""
    from cnnlab.data.drafts import DRAFT_FORMATS, write_draft

    kind = args.dataset_format
    labelled = [
        (r["source"], [(k, box) for k, box, _ in f], frame)
        for r, f, frame in zip(rows, found, frames, strict=True)
    ]
    written = write_draft(folder, names, labelled, kind)
    if not args.json:
        no_area = written["no_area"]
        dropped = f" ({counted(no_area, 'box', 'boxes')} with no area left out)" if no_area else ""
        console.print(
            f"wrote {counted(written['images'], 'image')} and "
            f"{counted(written['boxes'], 'box', 'boxes')} as a {kind} dataset to {folder} "
            f"({DRAFT_FORMATS[kind]}){dropped}"
        )
        if written["images"] and not written["boxes"]:  # a draft with nothing to correct
            threshold = getattr(args, "score_threshold", None)
            console.print(
                "no box was found to draft: "
                + (
                    f"none scored {threshold:g} or more (a lower --score-threshold keeps more)"
                    if threshold is not None
                    else "no image had p_c >= 0.5"
                )
            )
    return written


def add_source_column(table: Any, sources: Sequence[str]) -> list[str]:
    """A prediction table's ``source`` column; returns the sources as it shows them. Files that
    share a folder are shown by their path within it, and the folder heads the column: at 80
    columns rich broke "photos/grass/038.jpg" before its "g" to make room for the probabilities.
    (``--json`` and ``--csv`` keep the whole paths.) Sources that are not paths ("test[3]") or
    share no folder stay as they are, under "source"; a path too long still folds."""
    paths = [Path(s) for s in sources]
    common = ""
    if paths and all(p.parent.parts for p in paths):
        with contextlib.suppress(ValueError):  # absolute and relative paths share nothing
            common = os.path.commonpath([str(p.parent) for p in paths])
    if common in ("", ".", os.sep):
        table.add_column("source", overflow="fold")
        return list(sources)
    table.add_column(f"{common}{os.sep}", overflow="fold")
    return [os.path.relpath(p, common) for p in paths]
