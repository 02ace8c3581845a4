"""Figures written as PNG files with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.ticker import MaxNLocator

from cnnlab.errors import CnnlabError

# a box's colour by its class (drawn predictions and augmented training boxes alike)
BOX_COLOURS = ("yellow", "cyan", "magenta", "lime", "orange", "white", "red", "blue")


def labelled_box(ax: plt.Axes, box: Sequence[float], text: str, colour: str) -> None:
    """A detection on ``ax``: its ``xyxy`` box in pixels outlined in ``colour`` and ``text``
    (class and score) on a patch of that colour at its top-left corner."""
    from matplotlib.patches import Rectangle

    x1, y1, x2, y2 = box
    ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=colour, lw=1.5))
    ax.text(x1, y1, text, color="black", fontsize=6, bbox={"facecolor": colour, "pad": 1, "lw": 0})


def plot_training_curves(history: Sequence[dict[str, float]], path: str | Path) -> Path:
    """Loss (left) and accuracy (right) per epoch for the training and validation splits."""
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax_loss.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
    ax_acc.plot(epochs, [h["train_accuracy"] for h in history], label="train")
    ax_acc.plot(epochs, [h["val_accuracy"] for h in history], label="validation")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, path)


def plot_epoch_curves(
    rows: Sequence[dict[str, float]], metrics: dict[str, str], path: str | Path, title: str
) -> Path:
    """Training loss (left) and validation ``metrics`` (right; row key -> label) per epoch:
    the ``metrics.csv`` of a localisation or segmentation run as a figure."""
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], marker=".")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Training loss")
    for key, label in metrics.items():
        ax_val.plot(epochs, [r[key] for r in rows], marker=".", label=label)
    ax_val.set(xlabel="epoch", title=f"{title} (validation)")
    for ax in (ax_loss, ax_val):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_val.legend()
    return save_figure(fig, path)


def plot_confusion_matrix(
    confusion: torch.Tensor,
    class_names: Sequence[str],
    path: str | Path,
    title: str = "Confusion matrix",
    shares: bool = False,
) -> Path:
    """Counts with true classes as rows and predicted classes as columns; ``shares`` shows each
    row as fractions of its total instead (for counts summed over many trials)."""
    counts = confusion.cpu().numpy()
    if shares:
        counts = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(max(3.5, 1.0 + 0.5 * n), max(3.0, 0.8 + 0.5 * n)))
    ax.imshow(counts, cmap="Blues")
    ax.set(
        xticks=range(n),
        yticks=range(n),
        xticklabels=class_names,
        yticklabels=class_names,
        xlabel="predicted",
        ylabel="true",
    )
    ax.set_title(title, fontsize=9)
    threshold = counts.max() / 2 if counts.size else 0
    for i in range(n):
        for j in range(n):
            if counts[i, j]:
                ax.text(
                    j,
                    i,
                    f"{counts[i, j]:.2f}" if shares else str(counts[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if counts[i, j] > threshold else "black",
                )
    return save_figure(fig, path)


def plot_image_grid(
    images: Sequence[torch.Tensor],
    titles: Sequence[str],
    path: str | Path,
    cols: int = 3,
    cmap: str = "gray",
    symmetric: bool | Sequence[bool] = False,
    suptitle: str = "",
) -> Path:
    """A grid of 2D maps with titles; ``symmetric`` (one flag, or one per image) shows a map on a
    red-blue scale centred on zero, for signed responses such as edge maps."""
    flags = [symmetric] * len(images) if isinstance(symmetric, bool) else list(symmetric)
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, title, centred in zip(
        axes.flat[: len(images)], images, titles, flags, strict=True
    ):
        arr = img.detach().cpu().numpy()
        if centred:
            lim = float(np.percentile(np.abs(arr), 99.5)) or 1.0  # clip rare extremes
            ax.imshow(arr, cmap="RdBu_r", vmin=-lim, vmax=lim)
        else:
            ax.imshow(arr, cmap=cmap)
        ax.set_title(title, fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    return save_figure(fig, path)


def plot_captioned(
    images: torch.Tensor,
    captions: Sequence[str],
    path: str | Path,
    title: str = "",
    colors: Sequence[str] | None = None,
    cols: int = 4,
    legend: Sequence[tuple[str, Sequence[int]]] = (),
    cell: tuple[float, float] = (2.2, 2.5),
) -> Path:
    """Images ``(N, C, H, W)`` uint8 (grey or RGB) in a grid, each over its caption (in its
    colour, where ``colors`` gives one); ``legend``: ``(label, RGB 0-255)`` swatches below;
    ``cell``: the inches each image and caption take, wide and high."""
    cols = max(1, min(cols, len(images)))
    rows = -(-len(images) // cols)
    width = max(cell[0] * cols, 4.0)  # room for the title over a single image
    fig, axes = plt.subplots(rows, cols, figsize=(width, cell[1] * rows + 0.3), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, img, caption) in enumerate(zip(axes.flat, images, captions, strict=False)):
        arr = img.permute(1, 2, 0).cpu().numpy()
        ax.imshow(arr[..., 0] if arr.shape[-1] == 1 else arr, cmap="gray", vmin=0, vmax=255)
        ax.set_title(caption, fontsize=8, color=colors[i] if colors else "black")
    if title:
        fig.suptitle(title, fontsize=9, wrap=True)
    if legend:
        from matplotlib.patches import Patch

        swatches = [Patch(color=np.asarray(rgb) / 255, label=label) for label, rgb in legend]
        fig.legend(handles=swatches, loc="lower center", ncol=min(len(swatches), 5), fontsize=8)
        fig.subplots_adjust(bottom=0.08 + 0.5 * (-(-len(swatches) // 5)) / fig.get_figheight())
    return save_figure(fig, path)


def plot_mistakes(
    images: torch.Tensor,
    labels: Sequence[str],
    predicted: Sequence[str],
    confidence: Sequence[float],
    true_confidence: Sequence[float],
    path: str | Path,
    title: str = "",
) -> Path:
    """The misclassified images ``(N, C, H, W)`` uint8, each titled with its true class and the
    class predicted, each with the probability the model gave it: where a model goes wrong (or
    a label does) is seen at a glance."""
    captions = [
        f"true {true} {p_true:.2f}\npredicted {guess} {p:.2f}"
        for true, guess, p, p_true in zip(
            labels, predicted, confidence, true_confidence, strict=True
        )
    ]
    return plot_captioned(images, captions, path, title)


def figure_path(path: str | Path) -> Path:
    """Where a figure goes: ``path``, with ``.png`` added when it has no suffix; a folder or a
    format matplotlib cannot write is a :class:`CnnlabError`."""
    from matplotlib.backend_bases import FigureCanvasBase

    path = Path(path)
    if path.is_dir():
        raise CnnlabError(f"{path}: a folder; give the figure's file name, e.g. {path / 'out.png'}")
    if not path.suffix:
        return path.with_suffix(".png")
    if path.suffix.lower().lstrip(".") not in FigureCanvasBase.get_supported_filetypes():
        raise CnnlabError(f"{path}: cannot write {path.suffix} figures (try .png, .pdf or .svg)")
    return path


def save_figure(fig: plt.Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` at ``path`` (PNG unless its suffix names another format; folders created),
    close it, return the path written."""
    try:
        path = figure_path(path)
    except CnnlabError:
        plt.close(fig)
        raise
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def plot_augmentation_grid(
    rows: Sequence[torch.Tensor],
    path: str | Path,
    title: str = "",
    row_labels: Sequence[str] | None = None,
    boxes: Sequence[Sequence[tuple[torch.Tensor, torch.Tensor]]] | None = None,
    masks: Sequence[torch.Tensor] | None = None,
) -> Path:
    """``rows`` of ``(N, C, H, W)`` images in [0, 1]: by default the originals, then augmented
    draws (``row_labels`` names the rows otherwise). Detection data adds, per row and image,
    ``(boxes (K, 4) xyxy relative to the image, labels (K,))``, drawn coloured by class;
    segmentation data a ``(N, H, W)`` class map per row, laid over the image (the background
    clear, unlabelled pixels, 255, grey)."""
    from matplotlib.patches import Rectangle

    if masks is not None:
        from cnnlab.engine.segment_maps import colorize
        from cnnlab.losses.segmentation import VOID

    n_rows, n_cols = len(rows), rows[0].shape[0]
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.3 * n_cols, 1.3 * n_rows), squeeze=False)
    for r, batch in enumerate(rows):
        for c in range(n_cols):
            img = batch[c].detach().cpu().clamp(0, 1)
            ax = axes[r][c]
            if img.shape[0] == 1:
                ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(img.permute(1, 2, 0).numpy())
            h, w = img.shape[-2:]
            if masks is not None:
                m = masks[r][c].numpy()
                tint = np.zeros((*m.shape, 4))
                tint[..., :3] = colorize(m) / 255
                tint[..., 3] = np.where(m > 0, 0.5, 0.0)
                tint[m == VOID] = (0.5, 0.5, 0.5, 0.9)
                ax.imshow(tint)
            if boxes is not None:
                b, labels = boxes[r][c]
                for (x1, y1, x2, y2), label in zip(b.tolist(), labels.tolist(), strict=True):
                    colour = BOX_COLOURS[label % len(BOX_COLOURS)]
                    corner, size = (x1 * w, y1 * h), ((x2 - x1) * w, (y2 - y1) * h)
                    ax.add_patch(Rectangle(corner, *size, fill=False, color=colour, lw=1))
            ax.set_xticks([])
            ax.set_yticks([])
        label = row_labels[r] if row_labels else "original" if r == 0 else f"draw {r}"
        axes[r][0].set_ylabel(label, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def plot_anchors(
    wh: torch.Tensor,
    anchors: torch.Tensor,
    ks: Sequence[int],
    ious: Sequence[float],
    path: str | Path,
) -> Path:
    """k-means anchors as YOLOv2's figure 2 shows them: every box's shape ``wh (N, 2)`` (relative
    to the image) coloured by the anchor ``(k, 2)`` it fits best; the anchors drawn as boxes
    around one centre; and the mean best IoU against k, the k used marked."""
    from matplotlib.patches import Rectangle

    from cnnlab.ops.anchors import shape_iou

    best = shape_iou(wh, anchors).argmax(1).numpy()
    colours = plt.get_cmap("tab10" if len(anchors) <= 10 else "tab20")
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(13, 4.2))
    w, h = wh[:, 0].numpy(), wh[:, 1].numpy()
    ax1.scatter(w, h, c=[colours(int(b) % colours.N) for b in best], s=6, alpha=0.5)
    for i, (aw, ah) in enumerate(anchors.tolist()):
        ax1.scatter([aw], [ah], marker="X", s=140, color=colours(i % colours.N), ec="black")
        ax2.add_patch(
            Rectangle(
                (0.5 - aw / 2, 0.5 - ah / 2), aw, ah, fill=False, lw=2, ec=colours(i % colours.N)
            )
        )
    ax1.set(xlabel="box width / image", ylabel="box height / image")
    ax1.set_title(f"{len(wh):,} training boxes by their best anchor", fontsize=10)
    ax2.set(xlim=(0, 1), ylim=(1, 0), aspect="equal", xticks=[], yticks=[])
    ax2.set_title(f"the {len(anchors)} anchors, one centre (image = square)", fontsize=10)
    ax3.plot(list(ks), list(ious), "o-")
    k = len(anchors)
    if k in ks:
        ax3.plot([k], [ious[list(ks).index(k)]], "o", ms=12, mfc="none", mec="red", mew=2)
    ax3.set(xlabel="anchors k", ylabel="mean IoU with the best anchor")
    ax3.set_title("k-means (1 - IoU): more anchors, better fit", fontsize=10)
    ax3.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax3.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_step_losses(losses: Sequence[Sequence[float]], path: str | Path, title: str) -> Path:
    """The training loss at every step (faint) and its moving average over 50 steps, one line a
    trained model (an ensemble's members)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for i, run in enumerate(losses):
        values = np.asarray(run, dtype=float)
        colour = f"C{i % 10}"
        ax.plot(np.arange(1, len(values) + 1), values, color=colour, alpha=0.25, lw=0.8)
        window = min(50, len(values))
        if window:
            mean = np.convolve(values, np.ones(window) / window, mode="valid")
            label = f"member {i + 1}" if len(losses) > 1 else f"mean of {window} steps"
            ax.plot(np.arange(window, len(values) + 1), mean, color=colour, label=label)
    ax.set(xlabel="step", ylabel="loss", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def pca_2d(x: torch.Tensor) -> torch.Tensor:
    """``(N, D)`` points projected on their two principal directions, ``(N, 2)``: centred, then
    times the first two right singular vectors (fewer than two points or dimensions: zeros
    fill the missing axis)."""
    centred = x.double() - x.double().mean(0)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    out = centred @ vh[:2].T
    return torch.cat([out, torch.zeros(len(x), 2 - out.shape[1], dtype=out.dtype)], 1).float()


def plot_embedding_map(
    panels: dict[str, tuple[torch.Tensor, torch.Tensor, Sequence[str]]], path: str | Path
) -> Path:
    """Each panel's embeddings ``(N, D)`` on their own first two principal directions, a point
    an image, coloured by its identity (``labels (N,)`` indexing ``names``): the clusters a
    distance threshold has to separate."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.6), squeeze=False)
    for ax, (title, (emb, labels, names)) in zip(axes[0], panels.items(), strict=True):
        xy = pca_2d(emb.detach().cpu()).numpy()
        present = sorted(set(labels.tolist()))
        cmap = plt.get_cmap("tab10" if len(present) <= 10 else "tab20")
        for i, k in enumerate(present):
            mask = (labels == k).numpy()
            ax.scatter(*xy[mask].T, s=8, alpha=0.6, color=cmap(i % cmap.N), label=names[k])
        ax.set(title=title, xticks=[], yticks=[])
        if len(present) <= 20:
            ax.legend(fontsize=7, markerscale=2, loc="best")
    fig.suptitle("embeddings, first two principal directions", fontsize=10)
    return save_figure(fig, path)


def plot_matrices(
    panels: Sequence[tuple[str, Sequence[Sequence[float]]]], path: str | Path, title: str = ""
) -> Path:
    """Small matrices side by side as the slides draw them, a number in every cell over its
    shade (grey for non-negative matrices, red-blue centred on zero for signed ones such as an
    edge filter or its output); past 16 cells a side the numbers are left out."""
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), squeeze=False)
    for ax, (name, matrix) in zip(axes[0], panels, strict=True):
        m = np.asarray(matrix, dtype=float)
        signed = bool((m < 0).any())
        lim = float(np.abs(m).max()) or 1.0
        cmap, lo, hi = ("RdBu_r", -lim, lim) if signed else ("Greys", 0.0, lim)
        ax.imshow(m, cmap=cmap, vmin=lo, vmax=hi)
        if max(m.shape) <= 16:
            for (r, c), v in np.ndenumerate(m):
                dark = abs(v) > 0.6 * lim if signed else v > 0.6 * lim
                ax.text(
                    c,
                    r,
                    f"{v:g}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if dark else "black",
                )
        ax.set(title=f"{name} ({m.shape[0]}x{m.shape[1]})", xticks=[], yticks=[])
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def plot_class_balance(found: dict, path: str | Path) -> Path:
    """``cnnlab data check -o``: each class's share of each split's images (classify), boxes
    (detect) or object pixels (segment: the background left out), side by side, so that a
    split that lacks a class, or holds it far more or less often than the others, stands out.
    ``found`` is :func:`~cnnlab.engine.data_check.check_data`'s."""
    task, splits = found["task"], list(found["splits"])
    names = list(found["class_names"][1:] if task == "segment" else found["class_names"])
    unit = {"classify": "images", "segment": "object pixels"}.get(task, "boxes")

    def amount(figure: object) -> float:
        if isinstance(figure, int):
            return float(figure)
        return float(figure["pixels"] if task == "segment" else figure["boxes"])  # type: ignore[index]

    shares = np.zeros((len(splits), len(names)))
    for s, split in enumerate(splits):
        values = np.array([amount(found["splits"][split]["per_class"][n]) for n in names])
        shares[s] = values / max(values.sum(), 1e-12)
    height = 0.8 / max(len(splits), 1)
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.3 * len(names) * max(len(splits), 1) ** 0.5))
    y = np.arange(len(names))
    for s, split in enumerate(splits):
        ax.barh(y + (s - (len(splits) - 1) / 2) * height, shares[s], height, label=split)
    ax.set_yticks(y, names)
    ax.invert_yaxis()  # the first class on top, as the table lists them
    ax.set(
        xlabel=f"share of the split's {unit}", title=f"{Path(found['data']).name}: classes by split"
    )
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the bars, over none
    return save_figure(fig, path)
