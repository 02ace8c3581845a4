"""Neural style transfer by gradient descent on the pixels of G (Gatys et al., 2015).

Features come from VGG-19 of the model zoo: layer ``conv4_2`` for content and ``conv1_1,
conv2_1, conv3_1, conv4_1, conv5_1`` (equal weights) for style, read after their ReLUs.

* With ``weights`` (a torchvision VGG-19 file, ``vgg19-dcbb9e9d.pth``) images are normalised with
  ImageNet statistics and the results are the classic ones.
* Without weights nothing can be downloaded here, so the default uses VGG-19 with *random*
  (seeded, Kaiming-initialised) weights. Random convolutional features still capture texture
  statistics through their Gram matrices (Ustyuzhaninov et al., 2016, "Texture synthesis using
  shallow convolutional networks with random filters"), so the style (colours, strokes,
  textures) transfers recognisably, but the content is held by low-level structure rather than
  object semantics: edges and layout are kept, the "meaning" of the content is not. Random mode
  uses the shallower layers (content ``conv3_1``, style ``conv1_1 .. conv4_1``), where random
  features are most informative.

:func:`transfer_style` optimises coarse to fine (two scales by default), which is what makes the
random-feature default transfer structure and not only colour and grain at 256 px.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from torch import nn

from cnnlab.engine.runlog import epoch_progress
from cnnlab.errors import CnnlabError, refuse_unwritable
from cnnlab.ops.style import content_cost, style_cost, total_variation
from cnnlab.registry import create_model
from cnnlab.words import nearest

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "china",
    "flower",
    "brick",
    "grass",
    "gravel",
    "rocket",
    "camera",
)


# Peak memory of the optimisation on a CPU, measured at 256, 512 and 1,024 px (2 steps, one
# scale): 0.84, 1.27 and 3.44 GB, i.e. about 0.6 GB (VGG-19 and the process) + 2.8 kB a pixel for
# the activations kept for the backward pass; 3 kB a pixel leaves a margin.
STYLE_BYTES_PER_PIXEL = 3000


def check_style_memory(size: int) -> None:
    """Refuse a ``--size`` whose optimisation cannot fit in this machine's memory (``--size
    50000`` was killed by the OS after a minute, without a word)."""
    from cnnlab.data.memory import require_memory

    require_memory(
        600 * 2**20 + STYLE_BYTES_PER_PIXEL * size * size,
        f"style transfer at {size} x {size} px",
        "use a smaller --size",
    )


def load_rgb(source: str, size: int) -> torch.Tensor:
    """A bundled photo by name (scikit-image: astronaut, chelsea (the cat), coffee, rocket,
    camera; textures brick, grass, gravel; scikit-learn: china, flower) or an image path ->
    ``(1, 3, size, size)`` in [0, 1] (shorter side resized, centre crop)."""
    from PIL import Image

    if source in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        arr = load_sample_image(f"{source}.jpg")
    elif source in PHOTOS:
        import skimage.data

        arr = np.asarray(getattr(skimage.data, source)())
    elif Path(source).exists():  # a file, or a folder that read_image names as one
        from cnnlab.data.images import read_image

        arr = np.asarray(read_image(source, "RGB", at_least=2 * size))  # fast for big JPEGs
    else:
        raise CnnlabError(
            f"{source}: no such file, and not a bundled photo ({', '.join(PHOTOS)})"
            + nearest(source, PHOTOS)
        )
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, -1)
    from cnnlab.data.folder import fit_image

    img = fit_image(Image.fromarray(arr[..., :3].astype(np.uint8)), size)
    return torch.from_numpy(np.asarray(img, np.float32) / 255).permute(2, 0, 1)[None]


def vgg19_layer_names() -> list[str]:
    """Names of ``vgg19.features`` children: conv1_1, relu1_1, conv1_2, ..., pool5."""
    from cnnlab.models.vgg import VGG_CONFIGS

    names = []
    for block, stage in enumerate(VGG_CONFIGS[19], start=1):
        for i in range(1, stage.convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


class FeatureExtractor(nn.Module):
    """VGG-19 features returning the named ReLU outputs; max pools replaced by average pools
    (Gatys et al. report slightly smoother results with average pooling)."""

    def __init__(self, weights: str | None, layers: list[str], seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        vgg = create_model("vgg19")
        if weights:
            from cnnlab.models.torchvision_weights import load_torchvision_weights

            load_torchvision_weights(vgg, weights)
        names = vgg19_layer_names()
        last = max(names.index(n.replace("conv", "relu")) for n in layers)
        modules = []
        for m in list(vgg.features)[: last + 1]:
            modules.append(nn.AvgPool2d(2, 2) if isinstance(m, nn.MaxPool2d) else m)
        self.body = nn.Sequential(*modules).eval().requires_grad_(False)
        self.taps = {names.index(n.replace("conv", "relu")): n for n in layers}
        self.normalise = weights is not None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.normalise:
            mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
            std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
            x = (x - mean) / std
        out = {}
        for i, m in enumerate(self.body):
            x = m(x)
            if i in self.taps:
                out[self.taps[i]] = x
        return out


@dataclass
class StyleResult:
    """The generated image, the costs per step, snapshots for the strip, and the time taken."""

    image: torch.Tensor  # (3, H, W) in [0, 1]
    history: list[dict[str, float]] = field(default_factory=list)
    snapshots: list[torch.Tensor] = field(default_factory=list)
    seconds: float = 0.0
    seconds_per_step: float = 0.0
    interrupted: bool = False  # Ctrl-C: ``image`` is G as far as it got, after ``len(history)``


def style_layers_for(weights: str | None) -> tuple[str, list[str]]:
    """``(content layer, style layers)``: Gatys' with pretrained weights, shallower with random
    features (module docstring)."""
    if weights:
        return "conv4_2", ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
    return "conv3_1", ["conv1_1", "conv2_1", "conv3_1", "conv4_1"]


def feature_network(weights: str | None, seed: int = 0) -> FeatureExtractor:
    """VGG-19 cut after the last layer :func:`style_layers_for` needs."""
    content_layer, style_layers = style_layers_for(weights)
    layers = sorted({content_layer, *style_layers}, key=vgg19_layer_names().index)
    return FeatureExtractor(weights, layers, seed)


def optimise_pixels(
    content: torch.Tensor,
    style: torch.Tensor,
    *,
    steps: int = 300,
    alpha: float = 10.0,
    beta: float | None = None,
    tv_weight: float = 0.0,
    norm: str = "course",
    init: str = "content",
    optimizer: str = "adam",
    lr: float = 0.02,
    weights: str | None = None,
    seed: int = 0,
    bf16: bool = False,
    snapshots: int = 6,
    console: Console | None = None,
    start: torch.Tensor | None = None,
    net: FeatureExtractor | None = None,
    device: str | torch.device = "cpu",
) -> StyleResult:
    """Minimise ``J(G)`` over the pixels of G at one resolution. ``init``: ``random`` (the
    slide's step 1: uniform noise) or ``content`` (the content image plus noise, which converges
    faster); ``start`` overrides both (the previous level of :func:`transfer_style`), which also
    passes its ``net`` (:func:`feature_network`) so that it is built once. ``beta``
    defaults to the course's 40 with pretrained weights and to 4,000 with random features, whose
    Gram matrices are about a hundred times smaller. The optimisation runs on ``device``; the
    result's images come back on the CPU."""
    if beta is None:
        beta = 40.0 if weights else 4000.0
    if alpha == beta == tv_weight == 0:
        raise CnnlabError("--alpha, --beta and --tv are all 0: J(G) = 0, nothing to optimise")
    if init not in ("random", "content"):
        raise CnnlabError(f"--init must be random or content, got {init!r}")
    if optimizer not in ("adam", "lbfgs"):
        raise CnnlabError(f"--optimizer must be adam or lbfgs, got {optimizer!r}")
    content_layer, style_layers = style_layers_for(weights)
    device = torch.device(device)
    net = (net or feature_network(weights, seed)).to(device)
    content, style = content.to(device), style.to(device)
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if bf16
        else torch.autocast(device.type, enabled=False)
    )
    with torch.no_grad(), autocast:
        target_c = {k: v.float() for k, v in net(content).items()}[content_layer]
        target_s = {k: v.float() for k, v in net(style).items()}
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(content.shape, generator=g).to(device)  # the same noise on any device
    if start is None:
        start = noise if init == "random" else (0.8 * content + 0.2 * noise)
    # contiguous: L-BFGS flattens the gradient with view(), which a photo's HWC-permuted
    # layout (load_rgb) refused with a traceback for the default --init content
    x = start.to(device).clone(memory_format=torch.contiguous_format).requires_grad_(True)
    layer_w = {k: 1.0 / len(style_layers) for k in style_layers}
    opt: torch.optim.Optimizer = (
        torch.optim.Adam([x], lr=lr)
        if optimizer == "adam"
        else torch.optim.LBFGS([x], lr=1.0, max_iter=1)
    )
    history: list[dict[str, float]] = []
    shots: list[torch.Tensor] = []
    every = max(1, steps // max(snapshots, 1))

    def closure() -> torch.Tensor:
        opt.zero_grad()
        with autocast:
            feats = {k: v.float() for k, v in net(x).items()}
        jc = content_cost(target_c, feats[content_layer], norm).sum()
        js = style_cost(target_s, feats, layer_w, norm).sum()
        jtv = total_variation(x).sum()
        total = alpha * jc + beta * js + tv_weight * jtv
        total.backward()
        history.append(
            {"total": total.item(), "content": jc.item(), "style": js.item(), "tv": jtv.item()}
        )
        return total

    console = console or Console(stderr=True)
    started = time.perf_counter()
    interrupted = False
    size = f"{content.shape[-1]}x{content.shape[-2]}"  # width x height: each level its own bar
    with epoch_progress(console, unit=f"{size} px, step") as progress:
        task = progress.add_task(f"style {size}", total=steps, stats="")
        for step in range(1, steps + 1):
            try:
                opt.step(closure)
            except KeyboardInterrupt:  # Ctrl-C: keep G as far as it got (a step cut short
                interrupted = True  # may leave x half updated: clamped below)
                with torch.no_grad():
                    x.clamp_(0, 1)
                break
            with torch.no_grad():
                x.clamp_(0, 1)
            if step % every == 0 or step == steps:
                shots.append(x.detach()[0].cpu().clone())
            h = history[-1]
            progress.update(
                task,
                advance=1,
                stats=(f"J {h['total']:.3g}  content {h['content']:.3g}  style {h['style']:.3g}"),
            )
    seconds = time.perf_counter() - started
    done = max(1, len(history))
    return StyleResult(x.detach()[0].cpu(), history, shots, seconds, seconds / done, interrupted)


def transfer_style(
    content: torch.Tensor,
    style: torch.Tensor,
    *,
    steps: int = 300,
    scales: int = 2,
    snapshots: int = 6,
    **options: Any,
) -> StyleResult:
    """Neural style transfer, coarse to fine (Gatys et al., 2017, "Controlling perceptual factors
    in neural style transfer", Sec. 5): the image is first optimised at ``1 / 2^(scales - 1)`` of
    the size, where the features' receptive fields cover more of it and the style's larger
    structures (a brick's outline, not only its grain) appear, then upsampled and refined at each
    finer level. ``steps`` in total: the finest level gets a third, the coarser ones share the
    rest, so the default costs less than ``steps`` full-size steps. ``scales=1`` is plain Gatys.
    ``content``, ``style``: ``(1, 3, H, W)`` in [0, 1]; ``options`` go to
    :func:`optimise_pixels`. Snapshots of all levels are upsampled to the final size."""
    if scales < 1 or min(content.shape[-2:]) >> (scales - 1) < 16:
        raise CnnlabError(f"--scales {scales}: the coarsest level would be under 16 pixels")
    if steps < scales:  # every level takes at least one step: the total would not hold
        raise CnnlabError(f"--steps {steps}: fewer than one per level of --scales {scales}")
    size = content.shape[-2:]
    fine = max(1, steps // 3) if scales > 1 else steps
    coarse = [(steps - fine) // (scales - 1)] * (scales - 1) if scales > 1 else []
    plan = [*coarse, steps - sum(coarse)]  # the finest level takes any remainder
    total = StyleResult(content[0])
    start = None
    net = feature_network(options.get("weights"), options.get("seed", 0))  # moved by each level
    for level, level_steps in enumerate(plan):
        factor = 2 ** (scales - 1 - level)
        shape = (size[0] // factor, size[1] // factor)
        c, s = (
            F.interpolate(t, size=shape, mode="area") if factor > 1 else t for t in (content, style)
        )
        if start is not None:
            start = F.interpolate(start, size=shape, mode="bilinear", align_corners=False)
        shots = max(1, round(snapshots * level_steps / steps))
        r = optimise_pixels(
            c, s, steps=level_steps, snapshots=shots, start=start, net=net, **options
        )
        start = r.image[None]
        total.history += r.history
        total.snapshots += [
            F.interpolate(x[None], size=size, mode="bilinear", align_corners=False)[0].clamp(0, 1)
            for x in r.snapshots
        ]
        total.seconds += r.seconds
        if r.interrupted:  # Ctrl-C: the image so far, at the final size
            total.interrupted = True
            start = F.interpolate(start, size=size, mode="bilinear", align_corners=False)
            break
    total.image = start[0]  # clamped at each step; bilinear resizing keeps it in [0, 1]
    total.seconds_per_step = total.seconds / max(1, len(total.history))
    return total


def image_path(path: str | Path) -> Path:
    """``path`` when Pillow can write an image there; a folder or an unknown suffix is a
    :class:`CnnlabError` (checked before a long optimisation, not after it)."""
    from PIL import Image

    path = Path(path)
    if path.is_dir():
        raise CnnlabError(f"{path}: a folder; give the image's file name, e.g. {path / 'out.png'}")
    if path.suffix.lower() not in Image.registered_extensions():
        raise CnnlabError(f"{path}: not an image file name Pillow can write (try .png or .jpg)")
    if blocking := next((p for p in path.parents if p.is_file()), None):
        raise CnnlabError(f"{blocking}: a file, where a folder is needed for {path.name}")
    refuse_unwritable(path)
    return path


def save_strip(images: list[torch.Tensor], path: str | Path) -> Path:
    """Side-by-side strip of ``(3, H, W)`` images."""
    from PIL import Image

    strip = torch.cat([im.clamp(0, 1) for im in images], -1)
    arr = (strip.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    path = image_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path
