"""U-Net: Ronneberger, Fischer & Brox, 2015, "U-Net: Convolutional networks for biomedical image
segmentation" (slides "U-Net"), and a practical padded variant.

* ``unet_paper``: as published: unpadded 3x3 convolutions (each trims 2 pixels), 2x2 max
  pooling, 2x2 up-convolutions (transposed convolutions, stride 2: ``(i - 1)*2 + 2 = 2i``) that
  halve the channels, and skip connections that crop the encoder's map to the decoder's size and
  concatenate. A 572x572 input gives a 388x388 map (`cnnlab summary unet_paper --input
  1x572x572` walks the shapes); trained and used on images of any size through the paper's
  overlap-tile input (:meth:`UNet.overlap_tile`: the image mirrored at its borders).
* ``unet``: "same" padding so the output matches the input; any input size (padded internally
  to a multiple of ``2^depth`` and cropped back); configurable depth, base width, batch norm and
  transposed-convolution or bilinear upsampling.

Skip connections are named tensors in ``forward`` (``skips["enc1"]`` ...), never found by index.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.registry import register_model

RONNEBERGER_2015 = "Ronneberger et al., 2015. U-Net"


def double_conv(
    in_channels: int, out_channels: int, padding: int, batch_norm: bool
) -> nn.Sequential:
    """``(conv 3x3 -> [BN] -> ReLU) x 2``; ``padding=0`` is the paper's valid convolution."""
    layers: list[nn.Module] = []
    for c_in in (in_channels, out_channels):
        layers.append(nn.Conv2d(c_in, out_channels, 3, padding=padding, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def center_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The paper's "crop": the centre ``height x width`` of ``x (B, C, H, W)``."""
    top, left = (x.shape[-2] - height) // 2, (x.shape[-1] - width) // 2
    return x[..., top : top + height, left : left + width]


def mirror_pad(x: torch.Tensor, left: int, right: int, top: int, bottom: int) -> torch.Tensor:
    """Mirror padding of any width for ``x (B, C, H, W)``: ``F.pad``'s reflect takes less than
    the side, so a wider margin is mirrored again from the already padded map (a 1-pixel side
    is repeated instead)."""
    while left or right or top or bottom:
        h, w = x.shape[-2:]
        step = (min(left, w - 1), min(right, w - 1), min(top, h - 1), min(bottom, h - 1))
        if not any(step):
            return F.pad(x, (left, right, top, bottom), mode="replicate")
        x = F.pad(x, step, mode="reflect")
        left, right, top, bottom = (
            left - step[0],
            right - step[1],
            top - step[2],
            bottom - step[3],
        )
    return x


def network_input(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What ``model`` sees of images ``x``: :meth:`UNet.tile_input` for a U-Net, else ``x``."""
    tile = getattr(model, "tile_input", None)
    return tile(x) if tile is not None else x


def at_input_size(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model``'s output for ``x (B, C, H, W)``, a segmenter's at the input's own size: a U-Net
    through :meth:`UNet.overlap_tile` (the paper's unpadded one sees the image mirrored at its
    borders), any other model as it is."""
    tile = getattr(model, "overlap_tile", None)
    return tile(x) if tile is not None else model(x)


class SameSizeScores(nn.Module):
    """A segmenter whose ``forward`` is :func:`at_input_size` (for export: the graph then maps
    an image to scores at its own size, the overlap-tile input included)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return at_input_size(self.model, x)


class UNet(nn.Module):
    """Encoder of ``depth`` double convs with pooling, a bottleneck, and a decoder that upsamples,
    joins the named skip and double-convs. ``(B, C_in, H, W) -> (B, num_classes, H', W')``."""

    def __init__(
        self,
        *,
        num_classes: int = 2,
        in_channels: int = 1,
        depth: int = 4,
        base_width: int = 64,
        padding: int = 0,
        batch_norm: bool = False,
        upsample: str = "transpose",
    ) -> None:
        super().__init__()
        if upsample not in ("transpose", "bilinear"):
            raise ValueError(f"upsample must be transpose or bilinear, got {upsample!r}")
        self.depth, self.padding = depth, padding
        widths = [base_width * 2**i for i in range(depth + 1)]
        self.encoders = nn.ModuleList()
        c = in_channels
        for w in widths[:-1]:
            self.encoders.append(double_conv(c, w, padding, batch_norm))
            c = w
        self.pool = nn.MaxPool2d(2, 2)
        self.bottleneck = double_conv(widths[-2], widths[-1], padding, batch_norm)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for w_hi, w in zip(widths[:0:-1], widths[-2::-1], strict=True):
            if upsample == "transpose":
                self.ups.append(nn.ConvTranspose2d(w_hi, w, 2, stride=2))  # "up-conv 2x2"
            else:
                self.ups.append(
                    nn.Sequential(
                        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                        nn.Conv2d(w_hi, w, 1),
                    )
                )
            self.decoders.append(double_conv(2 * w, w, padding, batch_norm))
        self.classifier = nn.Conv2d(widths[0], num_classes, 1)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The bottleneck map and the named encoder outputs (the skip connections)."""
        skips: dict[str, torch.Tensor] = {}
        for level, encoder in enumerate(self.encoders, start=1):
            x = encoder(x)
            skips[f"enc{level}"] = x
            x = self.pool(x)
        return self.bottleneck(x), skips

    def unpadded_output_side(self, n: int) -> int | None:
        """The output side for an ``n x n`` input without padding (each double conv trims 4
        pixels, each pooling halves, each up-conv doubles), or ``None`` where a pooling would
        meet an odd side or a map would vanish: ``572 -> 388`` for the paper's depth 4."""
        for _ in range(self.depth):
            n -= 4
            if n <= 0 or n % 2:
                return None
            n //= 2
        n -= 4  # the bottleneck's double conv
        if n <= 0:
            return None
        for _ in range(self.depth):
            n = 2 * n - 4
        return n if n > 0 else None

    def overlap_tile(self, x: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, num_classes, H, W)`` at the input's own size: ``forward`` on
        :meth:`tile_input`, cut to ``H x W``."""
        h, w = x.shape[-2:]
        return self(self.tile_input(x))[..., :h, :w]

    def tile_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the network sees of images ``x (B, C, H, W)``. The padded U-Net: ``x``. The
        paper's unpadded one: the overlap-tile input of Ronneberger et al. (2015, Fig. 2), "the
        missing context is extrapolated by mirroring the input image", on the smallest input
        whose output covers the image; output pixel ``j`` sees input pixel ``j + c`` at the
        centre of its context ``c = (in - out) / 2`` (92 for 572 -> 388), so the mirror adds
        ``c`` pixels before the image and the rest after it."""
        if self.padding:
            return x
        h, w = (int(v) for v in x.shape[-2:])  # numbers even while traced for export
        n = max(h, w)
        while (out := self.unpadded_output_side(n)) is None or out < max(h, w):
            n += 1
        c = (n - out) // 2
        return mirror_pad(x, c, n - w - c, c, n - h - c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pad_h = pad_w = 0
        if self.padding:  # pad to a multiple of 2^depth so every pooling divides evenly
            m = 2**self.depth
            pad_h, pad_w = (-size[0]) % m, (-size[1]) % m
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if min(size) > 1 else "constant")
        y, skips = self.forward_features(x)
        for level, up, decoder in zip(
            range(self.depth, 0, -1), self.ups, self.decoders, strict=True
        ):
            y = up(y)
            skip = center_crop(skips[f"enc{level}"], y.shape[-2], y.shape[-1])
            y = decoder(torch.cat([skip, y], 1))
        out = self.classifier(y)
        return out[..., : size[0], : size[1]] if self.padding else out


class ResNetUNet(nn.Module):
    """A U-Net whose encoder is a ResNet of the model zoo: skips are taken at strides 2 (after
    the stem's ReLU), 4, 8 and 16 (``layer1..3``), the bottleneck is ``layer4`` (stride 32); the
    decoder upsamples (transposed convolutions) and joins each named skip, then a last 2x up-conv
    returns to the input size. Torchvision ResNet weights load into ``encoder`` with
    :func:`cnnlab.models.load_torchvision_weights`."""

    def __init__(
        self, encoder: str = "resnet18", *, num_classes: int = 4, in_channels: int = 3
    ) -> None:
        super().__init__()
        from cnnlab.registry import create_model

        self.encoder = create_model(encoder, in_channels=in_channels)
        self.encoder.fc = nn.Identity()  # the classifier never runs here
        c0 = self.encoder.conv1.out_channels
        widths = [
            getattr(self.encoder, f"layer{i}")[-1].bn2.num_features
            if not hasattr(getattr(self.encoder, f"layer{i}")[-1], "bn3")
            else getattr(self.encoder, f"layer{i}")[-1].bn3.num_features
            for i in range(1, 5)
        ]
        skips = [c0, *widths[:3]]  # channels at strides 2, 4, 8, 16
        self.ups, self.decoders = nn.ModuleList(), nn.ModuleList()
        c = widths[3]
        for skip in reversed(skips):
            out = max(skip, 32)
            self.ups.append(nn.ConvTranspose2d(c, out, 2, stride=2))
            self.decoders.append(double_conv(out + skip, out, 1, True))
            c = out
        self.final_up = nn.ConvTranspose2d(c, 32, 2, stride=2)
        self.classifier = nn.Conv2d(32, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pad_h, pad_w = (-size[0]) % 32, (-size[1]) % 32
        x = F.pad(x, (0, pad_w, 0, pad_h))
        e = self.encoder
        skips = {"s2": e.relu(e.bn1(e.conv1(x)))}
        skips["s4"] = e.layer1(e.maxpool(skips["s2"]))
        skips["s8"] = e.layer2(skips["s4"])
        skips["s16"] = e.layer3(skips["s8"])
        y = e.layer4(skips["s16"])
        for name, up, decoder in zip(
            ("s16", "s8", "s4", "s2"), self.ups, self.decoders, strict=True
        ):
            y = decoder(torch.cat([skips[name], up(y)], 1))
        out = self.classifier(torch.relu(self.final_up(y)))
        return out[..., : size[0], : size[1]]


@register_model(
    "unet_resnet18",
    input_size=(3, 128, 128),
    task="segmentation",
    paper=RONNEBERGER_2015 + " with a ResNet-18 encoder (He et al., 2015)",
)
def unet_resnet18(*, num_classes: int = 4, in_channels: int = 3) -> ResNetUNet:
    """U-Net decoder on the zoo's ResNet-18 encoder."""
    return ResNetUNet("resnet18", num_classes=num_classes, in_channels=in_channels)


@register_model("unet_paper", input_size=(1, 572, 572), task="segmentation", paper=RONNEBERGER_2015)
def unet_paper(*, num_classes: int = 2, in_channels: int = 1) -> UNet:
    """U-Net as published: valid convolutions, 572 -> 388."""
    return UNet(
        num_classes=num_classes,
        in_channels=in_channels,
        depth=4,
        base_width=64,
        padding=0,
        batch_norm=False,
        upsample="transpose",
    )


@register_model(
    "unet",
    input_size=(3, 128, 128),
    task="segmentation",
    paper=RONNEBERGER_2015 + " (padded, batch norm)",
)
def unet(
    *,
    num_classes: int = 4,
    in_channels: int = 3,
    depth: int = 4,
    base_width: int = 16,
    batch_norm: bool = True,
    upsample: str = "transpose",
) -> UNet:
    """Padded U-Net for any input size (output size = input size)."""
    return UNet(
        num_classes=num_classes,
        in_channels=in_channels,
        depth=depth,
        base_width=base_width,
        padding=1,
        batch_norm=batch_norm,
        upsample=upsample,
    )
