"""Predictions from a checkpoint (PyTorch) or an exported ONNX model (ONNX Runtime).

A user's image goes through exactly what training saw: decode (gray or RGB as the model takes),
resize like the dataset, invert light backgrounds for models trained on light-on-dark digits,
and standardise with the training split's statistics stored in the checkpoint (or, for ONNX, in
the model's metadata).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch

from cnnlab.data.classification import normalize
from cnnlab.data.folder import image_to_uint8
from cnnlab.data.video import Every
from cnnlab.errors import CnnlabError


def preprocess(images: Sequence[Any], meta: dict[str, Any], first: int = 0) -> torch.Tensor:
    """Images -> the standardised ``(N, C, S, S)`` batch the model expects (none: an empty
    ``(0, C, S, S)`` batch). Each is a file's path, or an image a program holds: a Pillow
    image or a numpy ``uint8`` array (:func:`~cnnlab.data.images.image_in_memory`), made ready
    exactly as its file would be. ``meta`` holds ``input_size``, ``normalization``,
    ``invert_light`` and ``resize`` (see :func:`model_meta`); an error names the file, or
    ``images[first + i]`` (:func:`source_names`)."""
    c, s = meta["input_size"][0], meta["input_size"][-1]
    resize = meta.get("resize", "center-crop")
    names = source_names(images, first)
    return _standardise(
        [image_to_uint8(x, s, c, resize, n) for x, n in zip(images, names, strict=True)], meta
    )


def source_names(images: Sequence[Any], first: int = 0) -> list[str]:
    """What rows and messages call each of :func:`preprocess`'s images: a file by its path,
    an image in memory by its place in the list, ``images[i]``."""
    return [
        str(x) if isinstance(x, str | Path) else f"images[{first + i}]"
        for i, x in enumerate(images)
    ]


def _standardise(images: list[torch.Tensor], meta: dict[str, Any]) -> torch.Tensor:
    """``(C, S, S)`` uint8 images -> a standardised float batch: light backgrounds inverted for
    a model trained on light-on-dark digits (``invert_light``), then the training split's mean
    and std."""
    c, s = meta["input_size"][0], meta["input_size"][-1]
    batch = [torch.empty(0, c, s, s, dtype=torch.uint8)]
    for x in images:
        if meta.get("invert_light") and x.float().mean() > 127.5:
            x = 255 - x
        batch.append(x[None])
    norm = meta["normalization"]
    return normalize(torch.cat(batch), norm["mean"], norm["std"])


def model_meta(ckpt: dict[str, Any]) -> dict[str, Any]:
    """What prediction needs to know about a checkpoint's inputs and classes."""
    if "normalization" not in ckpt:
        raise CnnlabError("checkpoint has no normalisation statistics (made by an older cnnlab)")
    return {
        "input_size": ckpt["input_size"],
        "normalization": ckpt["normalization"],
        "invert_light": ckpt.get("invert_light", False),
        "resize": ckpt.get("config", {}).get("resize", "center-crop"),
        "class_names": ckpt["class_names"],
        "model": ckpt["model"],
    }


def topk_rows(
    probs: torch.Tensor,
    names: Sequence[str],
    sources: Sequence[str],
    k: int,
    labels: Sequence[str | None] | None = None,
) -> list[dict[str, Any]]:
    """One dict per image: prediction, its probability and the top-k classes."""
    k = min(k, probs.shape[1])
    top_p, top_i = probs.topk(k, dim=1)
    rows = []
    for n, (src, i, p) in enumerate(zip(sources, top_i, top_p, strict=True)):
        row = {
            "source": str(src),
            "prediction": names[int(i[0])],
            "probability": float(p[0]),
            "top_k": [[names[int(j)], float(q)] for j, q in zip(i, p, strict=True)],
        }
        if labels is not None and labels[n] is not None:
            row["label"] = labels[n]
        rows.append(row)
    return rows


def onnx_session(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """An ONNX Runtime session and the cnnlab metadata stored in the model."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise CnnlabError("ONNX needs the export extra: pip install 'cnnlab[export]'") from None
    path = Path(path)
    if not path.is_file():
        what = "a folder, not an ONNX file" if path.is_dir() else "no such ONNX file"
        raise CnnlabError(f"{path}: {what}")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise CnnlabError(f"{path}: not a readable ONNX model ({str(exc)[:120]})") from None
    meta_json = session.get_modelmeta().custom_metadata_map.get("cnnlab")
    if not meta_json:
        raise CnnlabError(
            f"{path}: ONNX model without cnnlab metadata (export it with `cnnlab export`)"
        )
    try:
        meta = json.loads(meta_json)
    except ValueError:
        meta = None
    if not isinstance(meta, dict):  # edited by hand, or written by another tool
        raise CnnlabError(f"{path}: its cnnlab metadata is not the JSON object export writes")
    missing = [key for key in ("model", "input_size", "class_names") if key not in meta]
    if missing:  # what every export writes
        raise CnnlabError(
            f"{path}: its cnnlab metadata lacks {', '.join(missing)}; export the checkpoint again"
        )
    return session, meta


def onnx_predict(session: Any, batch: torch.Tensor) -> torch.Tensor:
    """Logits from an ONNX Runtime session for a float batch."""
    name = session.get_inputs()[0].name
    return torch.from_numpy(session.run(None, {name: batch.numpy()})[0])


def load_network(
    checkpoint: str | Path | None,
    onnx: str | Path | None,
    task: str,
    device: str = "auto",
    who: str = "load",
) -> tuple[Any, dict[str, Any]]:
    """The network a predictor runs, called with CPU batches and answering on the CPU, and what
    it was saved with: a run's checkpoint, its model on ``device``
    (:class:`~cnnlab.engine.device.OnDevice`), and the checkpoint; or a file ``cnnlab export``
    wrote, run by ONNX Runtime on the CPU (``device`` auto or cpu), and its metadata
    (``class_names``, ``input_size``...). A segmenter's scores come at its input's own size
    either way (a U-Net's by overlap-tile, :class:`~cnnlab.models.unet.SameSizeScores`, as its
    export's graph is). ``who`` names the caller in the error for neither or both."""
    if (checkpoint is None) == (onnx is None):
        raise CnnlabError(f"{who} takes a checkpoint or an ONNX file: one of them")
    if onnx is not None:
        from cnnlab.engine.exported import ExportedNetwork

        if device not in ("auto", "cpu"):  # not quietly on the CPU when a GPU was asked for
            raise CnnlabError(
                f"{onnx}: an ONNX file runs on the CPU here (ONNX Runtime's CPU provider); "
                f"device {device!r} is for a checkpoint"
            )
        network = ExportedNetwork(onnx, task)
        return network, network.meta
    from cnnlab.engine.checkpoint import model_from_checkpoint
    from cnnlab.engine.device import OnDevice, resolve_device

    where = resolve_device(device)  # an unknown device is refused before the file is read
    model, ckpt = model_from_checkpoint(checkpoint, task)
    if task == "segmentation":
        from cnnlab.models.unet import SameSizeScores

        model = SameSizeScores(model)
    return OnDevice(model, where), ckpt


CHUNK = 256  # images decoded and scored at once: thousands of files fit in memory


def stretched_chunks(
    images: Sequence[Any], size: int
) -> Iterator[tuple[torch.Tensor, list[tuple[int, int]]]]:
    """Images stretched to a box model's ``size x size`` (as localize and detect training
    decode theirs), :data:`CHUNK` at a time as ``(n, 3, size, size)`` uint8, each with its own
    ``(width, height)`` as a viewer shows it: predictions made on the stretched image are
    reported in the image's pixels (:func:`in_frame`). One chunk is in memory at a time, however
    many files (10,000 at 416 px would be 5 GB at once); one progress bar covers them all.
    Files, or images a program holds (:func:`preprocess`); nothing given, nothing yielded."""
    from cnnlab.data.images import displayed_size, with_progress

    pairs = list(zip(images, source_names(images), strict=True))  # images[i]: i of them all
    for start in with_progress(range(0, len(pairs), CHUNK), "reading", files=len(pairs)):
        part = pairs[start : start + CHUNK]
        stretched = torch.stack([image_to_uint8(p, size, 3, "stretch", n) for p, n in part])
        yield stretched, [displayed_size(p) for p, _ in part]


def frame_chunks(video: str | Path, names: list[str], every: Every = 1) -> Iterator[list[Any]]:
    """A video's frames (every one, or every ``every``-th from the first), :data:`CHUNK` at a
    time, each ``(H, W, 3)`` uint8 RGB, with a progress bar as long as the video says it is;
    each frame's name (``clip.mp4#frame=12``, :func:`~cnnlab.data.video.frame_source`) is
    appended to ``names`` as it is read, since how many frames a video has is known only once
    it is read."""
    import itertools

    from cnnlab.data.images import with_progress
    from cnnlab.data.video import numbered_frames, video_info

    stated, _ = video_info(video, every)
    named = numbered_frames(video, every)
    frames = iter(with_progress(named, f"reading {Path(video).name}", stated))
    while part := list(itertools.islice(frames, CHUNK)):
        names += [name for name, _ in part]
        yield [frame for _, frame in part]


def video_chunks(
    video: str | Path, size: int, names: list[str], every: Every = 1
) -> Iterator[tuple[torch.Tensor, list[tuple[int, int]]]]:
    """A video's frames (:func:`frame_chunks`) as :func:`stretched_chunks` gives files, each
    chunk stretched to ``size x size``, each frame with its ``(width, height)``."""
    for part in frame_chunks(video, names, every):
        named = names[-len(part) :]
        stretched = [
            image_to_uint8(f, size, 3, "stretch", n) for f, n in zip(part, named, strict=True)
        ]
        yield torch.stack(stretched), [(f.shape[1], f.shape[0]) for f in part]


def in_chunks(
    chunks: Iterable[tuple[torch.Tensor, list[tuple[int, int]]]],
    predict: Callable[[torch.Tensor], list[Any]],
    size: int,
) -> tuple[list[Any], list[tuple[int, int]], torch.Tensor]:
    """``predict`` (a list per image) on each chunk of :func:`stretched_chunks`: the outputs
    joined, each image's ``(width, height)``, and the first chunk's ``(n, 3, size, size)``
    images (what a figure draws: what the model saw; none given, an empty batch)."""
    outputs: list[Any] = []
    frames: list[tuple[int, int]] = []
    first = torch.empty(0, 3, size, size, dtype=torch.uint8)
    for k, (images, chunk_frames) in enumerate(chunks):
        first = images if k == 0 else first
        outputs += predict(images)
        frames += chunk_frames
    return outputs, frames, first


def thumbnails(
    paths: Sequence[str | Path], channels: int, resize: str = "center-crop", size: int = 96
) -> torch.Tensor:
    """Image files as ``(N, channels, size, size)`` uint8 for a figure, cut to a square as the
    model's input was (``resize``)."""
    return torch.stack([image_to_uint8(p, size, channels, resize) for p in paths])


def in_frame(xy: Sequence[float], size: int, frame: tuple[int, int]) -> list[float]:
    """``x, y, x, y...`` in the ``size x size`` model input -> the ``(width, height)`` file's."""
    scale = (frame[0] / size, frame[1] / size)
    return [round(v * scale[i % 2], 2) for i, v in enumerate(xy)]


PredictorT = TypeVar("PredictorT", bound="Predictor")


@dataclass
class Predictor:
    """A trained network loaded once for many images (a folder's photos, a video's frames):
    a run's ``best.pt``, its model on a device, or a file ``cnnlab export`` wrote, run by ONNX
    Runtime (:func:`load_network`). ``network`` maps a standardised ``(N, C, S, S)`` CPU batch
    to the model's output on the CPU; ``meta`` holds what was saved with it (``class_names``,
    ``input_size``...). Each task's predictor (:class:`Classifier`, and the detector, localiser
    and segmenter of their tasks' modules) adds ``predict_files``."""

    network: Any
    meta: dict[str, Any] = field(repr=False)  # a checkpoint: its weights too
    TASK: ClassVar[str] = ""

    @classmethod
    def load(
        cls: type[PredictorT],
        checkpoint: str | Path | None = None,
        onnx: str | Path | None = None,
        device: str = "auto",
    ) -> PredictorT:
        """From a run's ``best.pt`` (on ``device``: auto, cpu, cuda, cuda:N or mps) or from a
        file ``cnnlab export`` wrote."""
        network, saved = load_network(checkpoint, onnx, cls.TASK, device, f"{cls.__name__}.load")
        return cls._made(network, saved, exported=onnx is not None)

    @classmethod
    def _made(
        cls: type[PredictorT], network: Any, saved: dict[str, Any], exported: bool
    ) -> PredictorT:
        return cls(network, saved)

    @property
    def class_names(self) -> list[str]:
        """The classes, in the order of the model's outputs."""
        return list(self.meta["class_names"])

    def predict_images(self, images: Any, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        """The name a notebook looks for: the subclass's ``predict_files``, which takes images
        a program holds (a Pillow image, a numpy ``uint8`` array ``(H, W)``, ``(H, W, 3)`` or
        ``(H, W, 4)``: a camera frame, a crop) as it takes files, made ready alike; rows name
        them ``images[i]``."""
        return self.predict_files(images, *args, **kwargs)  # type: ignore[attr-defined]


@dataclass
class Classifier(Predictor):
    """A trained classifier ready for image files, with what its inputs need (``meta``: size,
    standardisation, class names; ``checkpoint``: the run's, ``None`` for an ONNX file).
    ``network`` maps a standardised ``(N, C, S, S)`` batch to logits ``(N, K)``.

    >>> clf = Classifier.load(checkpoint="runs/classify/lenet5-digits/best.pt")
    >>> clf.predict_files(["my_digit.png"])[0]["prediction"]  # doctest: +SKIP
    >>> clf.predict_images([PIL.Image.open("my_digit.png")])[0]["top_k"]  # doctest: +SKIP
    """

    checkpoint: dict[str, Any] | None = field(default=None, repr=False)  # None for ONNX
    TASK: ClassVar[str] = "classification"

    @classmethod
    def _made(cls, network: Any, saved: dict[str, Any], exported: bool) -> Classifier:
        return cls(network, saved) if exported else cls(network, model_meta(saved), saved)

    def probabilities(self, batches: Iterable[torch.Tensor]) -> torch.Tensor:
        """Softmax ``(N, K)`` of standardised batches, scored one after the other."""
        k = len(self.meta["class_names"])
        with torch.no_grad():
            return torch.cat([torch.empty(0, k)] + [self.network(b).softmax(1) for b in batches])

    def predict_files(self, paths: Sequence[Any], top_k: int = 3) -> list[dict[str, Any]]:
        """One row per image file (:func:`topk_rows`), decoded :data:`CHUNK` at a time as
        training saw them; a file under a folder named after a class gets that ``label``.
        Images a program holds may stand among the files (:meth:`predict_images`)."""
        from cnnlab.data.images import image_list, with_progress

        paths = image_list(paths)  # a generator too, or one image alone
        sources = source_names(paths)
        starts = with_progress(range(0, len(paths), CHUNK), "predicting", files=len(paths))
        chunks = (preprocess(paths[i : i + CHUNK], self.meta, first=i) for i in starts)
        files = [
            s if isinstance(p, str | Path) else "" for p, s in zip(paths, sources, strict=True)
        ]
        labels = folder_labels(files, self.meta["class_names"])
        probs = self.probabilities(chunks)
        return topk_rows(probs, self.meta["class_names"], sources, top_k, labels)

    def predict_video(
        self, video: str | Path, top_k: int = 3, every: Every = 1
    ) -> list[dict[str, Any]]:
        """One row per frame of ``video`` (every ``every``-th from the first), named
        ``clip.mp4#frame=i``; the frames streamed :data:`CHUNK` at a time
        (:func:`frame_chunks`), each made ready as its picture saved to a file would be."""
        sources: list[str] = []
        chunks = (preprocess(part, self.meta) for part in frame_chunks(video, sources, every))
        probs = self.probabilities(chunks)  # sources is whole once the chunks are spent
        return topk_rows(probs, self.meta["class_names"], sources, top_k)


def folder_labels(paths: Sequence[str], class_names: Sequence[str]) -> list[str | None]:
    """Each file's label where a folder above it is named after one of the classes (the
    ``root/<class>/**/*.png`` layout training reads; the nearest such folder), else ``None``."""
    known = set(class_names)
    return [next((q.name for q in Path(p).parents if q.name in known), None) for p in paths]


def draw_predictions(
    rows: Sequence[dict[str, Any]], images: torch.Tensor, path: str | Path, title: str
) -> Path:
    """The images ``(N, C, H, W)`` uint8 beside their rows (:func:`topk_rows`), each captioned
    with its prediction and probability; green where it matches the image's ``label``, red with
    the label where it does not, black where there is none."""
    from cnnlab.viz.plots import plot_captioned

    captions, colors = [], []
    for r in rows:
        label = r.get("label")
        wrong = label is not None and label != r["prediction"]
        captions.append(
            f"{r['prediction']} {r['probability']:.2f}" + (f"\n(is {label})" if wrong else "")
        )
        colors.append("black" if label is None else "firebrick" if wrong else "forestgreen")
    return plot_captioned(images, captions, path, title, colors, cols=6)
