"""Video files, read a frame at a time and written back with what was found drawn on them, by
PyAV (FFmpeg's libraries; ``pip install 'cnnlab[video]'``).

A frame is an ``(H, W, 3)`` uint8 RGB array, as an image in memory is
(:func:`~cnnlab.data.images.image_in_memory`); a prediction row calls it
``<video>#frame=<i>`` (counted from 0), as a media fragment names a point in a video. Frames
are streamed: a minute of 1080p video is 11 GB of pixels, never held at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.errors import CnnlabError

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv"}
FRAGMENT = "#frame="


@dataclass(frozen=True)
class Seconds:
    """``--every 2s``: a frame every ``value`` seconds of each video, whatever its frame rate
    (:func:`frame_step` makes it a stride of frames for each video: 50 at 25 fps, 60 at 30)."""

    value: float

    def __str__(self) -> str:
        return f"{self.value:g}s"


Every = int | Seconds  # which frames of a video to keep: every n-th, or one every t seconds


def is_video(path: str | Path) -> bool:
    """Whether ``path`` names a video file (by its suffix; whether it can be read is
    :func:`read_frames`'s to say)."""
    return Path(str(path)).suffix.lower() in VIDEO_SUFFIXES


def frame_source(video: str | Path, index: int) -> str:
    """What a row calls frame ``index`` of ``video``: ``clip.mp4#frame=12``."""
    return f"{video}{FRAGMENT}{index}"


def video_of(source: str) -> tuple[str, int] | None:
    """``(video, frame index)`` of a :func:`frame_source`, ``None`` for anything else."""
    video, sep, index = str(source).rpartition(FRAGMENT)
    return (video, int(index)) if sep and index.isdigit() and is_video(video) else None


def numbered_frames(path: str | Path, every: Every = 1) -> Iterator[tuple[str, np.ndarray]]:
    """:func:`read_frames` with each frame's name, ``(clip.mp4#frame=12, frame)``: the name
    counts every frame of the video, kept or not (with ``every=5``: 0, 5, 10, ...)."""
    step = frame_step(path, every)
    for k, frame in enumerate(read_frames(path, step)):
        yield frame_source(path, k * step), frame


def frame_file(source: str | Path) -> Path:
    """The file a row's image becomes in a dataset written from predictions: a frame
    (``clip.mp4#frame=12``) a PNG beside its video, ``clip_000012.png``; a file itself."""
    if (of := video_of(str(source))) is None:
        return Path(source)
    return Path(of[0]).with_name(f"{Path(of[0]).stem}_{of[1]:06d}.png")


def frames_at(video: str | Path, indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
    """``(i, frame i)`` for each of ``indices`` in order (none past the video's end), the
    video read once and only as far as the last of them (a frame stands on those before it),
    one frame held at a time."""
    wanted = set(indices)
    if wanted:
        yield from _kept_frames(video, wanted.__contains__, max(wanted))


def with_frames(sources: Sequence[str]) -> list[str | np.ndarray]:
    """``sources`` with each video frame among them (a :func:`frame_source`) replaced by the
    frame, decoded; files stay paths. For a few (a figure's): frames are held at once."""
    by_video: dict[str, list[int]] = {}
    for source in sources:
        if (of := video_of(source)) is not None:
            by_video.setdefault(of[0], []).append(of[1])
    decoded = {
        frame_source(video, i): frame
        for video, indices in by_video.items()
        for i, frame in frames_at(video, indices)
    }
    return [decoded.get(source, source) for source in sources]


def save_images(pairs: Sequence[tuple[str | Path, Path]]) -> None:
    """Each ``(source, target)``: an image file copied, or a video's frame (a
    :func:`frame_source`) saved as the PNG ``target`` (lossless: it is a label's picture now),
    each video read once."""
    import shutil

    from PIL import Image

    by_video: dict[str, dict[int, Path]] = {}
    for source, target in pairs:
        if (of := video_of(str(source))) is None:
            shutil.copyfile(source, target)
        else:
            by_video.setdefault(of[0], {})[of[1]] = target
    for video, target_of in by_video.items():
        for i, frame in frames_at(video, target_of):
            Image.fromarray(frame).save(target_of[i])


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise CnnlabError(
            "video files need PyAV (FFmpeg's libraries): pip install 'cnnlab[video]'"
        ) from None
    return av


def _open(path: str | Path, mode: str = "r") -> Any:
    av = _av()
    if mode == "r" and not Path(path).is_file():
        raise CnnlabError(f"{path}: no such file")
    try:
        return av.open(str(path), mode)
    except (av.FFmpegError, OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or exc  # FFmpeg's words, without the path again
        raise CnnlabError(f"{path}: not a video FFmpeg can read ({why})") from None


def _stated(path: str | Path) -> tuple[int, float]:
    """``(frames, frames per second)`` as the container states them for its first video
    stream (frames 0 where it does not say; 25 fps where it states no rate)."""
    with _open(path) as container:
        if not container.streams.video:
            raise CnnlabError(f"{path}: no video stream")
        stream = container.streams.video[0]
        return int(stream.frames or 0), float(stream.average_rate or stream.guessed_rate or 25)


def frame_step(path: str | Path, every: Every, fps: float | None = None) -> int:
    """The stride of frames ``every`` keeps of the video ``path``: ``every`` itself, or for
    :class:`Seconds` its seconds at the video's frame rate (``fps`` when the caller read it
    already), rounded (at least 1: ``0.01s`` of a 25 fps video keeps every frame)."""
    if isinstance(every, Seconds):
        return max(1, round(every.value * (fps if fps is not None else _stated(path)[1])))
    if every < 1:
        raise ValueError(f"every must be 1 or more, not {every}")
    return every


def video_info(path: str | Path, every: Every = 1) -> tuple[int, float]:
    """``(frames, frames per second)`` of a video's first video stream, as its container
    states them (``frames`` 0 where it does not); with ``every`` keeping every n-th frame
    (:func:`frame_step`), of the frames :func:`read_frames` keeps: ``ceil(frames / n)`` at
    ``fps / n``, the same time span."""
    frames, fps = _stated(path)
    step = frame_step(path, every, fps)
    return -(-frames // step), fps / step


def read_frames(path: str | Path, every: Every = 1) -> Iterator[np.ndarray]:
    """The frames of ``path``'s first video stream, in order, each ``(H, W, 3)`` uint8 RGB:
    every one, or with ``every=n`` frames 0, n, 2n, ... (``every=Seconds(2)``: a frame every
    2 seconds, :func:`frame_step`; the others are decoded, as the next may be coded as a
    change to them, but not converted to RGB). A file FFmpeg cannot read, or that breaks off,
    is a :class:`CnnlabError` naming it."""
    step = frame_step(path, every)
    return (frame for _, frame in _kept_frames(path, lambda i: i % step == 0))


def _kept_frames(
    path: str | Path, keep: Callable[[int], bool], last: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """``(i, frame i)`` as RGB for the frames ``keep(i)`` is true of, up to frame ``last``;
    every frame is decoded (a frame may be coded as a change to those before it), only the
    kept ones converted."""
    av = _av()
    with _open(path) as container:
        if not container.streams.video:
            raise CnnlabError(f"{path}: no video stream")
        try:
            for i, frame in enumerate(container.decode(video=0)):
                if last is not None and i > last:
                    return
                if keep(i):
                    yield i, frame.to_ndarray(format="rgb24")
        except av.FFmpegError as exc:
            why = getattr(exc, "strerror", None) or exc
            raise CnnlabError(f"{path}: the video breaks off ({why})") from None


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float) -> int:
    """``frames`` (``(H, W, 3)`` uint8 RGB, all one size) as an H.264 video at ``fps`` (MPEG-4
    part 2 where this FFmpeg has no H.264 encoder); an odd width or height, which H.264's 4:2:0
    colour cannot take, loses its last column or row. Returns how many frames were written."""
    av = _av()
    written = 0
    with _open(path, "w") as container:
        stream = None
        for frame in frames:
            if stream is None:
                h, w = (frame.shape[0] // 2) * 2, (frame.shape[1] // 2) * 2
                codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
                rate = Fraction(fps).limit_denominator(1001)  # 29.97 is 30000/1001
                stream = container.add_stream(codec, rate=max(rate, Fraction(1, 60)))
                stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            image = np.ascontiguousarray(frame[:h, :w, :3])
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
            written += 1
        if stream is not None:
            for packet in stream.encode():  # what the encoder still holds
                container.mux(packet)
    return written
