"""The ledger: our parameter and MAC counts beside the published figures.

Each :class:`LedgerEntry` names a reference variant, the resolution the figure was measured at,
where the figure comes from, and, where ours differs, why. MACs are multiply-accumulates
(torchvision's documented "GFLOPS" are in fact MACs, and so are the papers' "multiply-adds").
Our counts come from :func:`cnnlab.viz.summary.summarize` run on the ``meta`` device: shapes
only, no memory, no arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnnlab.models.shapes import shapes_only
from cnnlab.registry import create_model, get_model_entry
from cnnlab.viz.summary import summarize

TV = "torchvision docs"


@dataclass(frozen=True)
class LedgerEntry:
    """One published figure for one model configuration."""

    model: str
    resolution: int
    source: str
    params: int | None  # published parameter count (None: not published)
    gmacs: float | None  # published G MACs (None: not published)
    note: str = ""  # why ours differs, where it does
    overrides: dict = field(default_factory=dict)  # builder arguments for this configuration
    params_exact: bool = True  # False where the source rounds (e.g. "6.8M")


LEDGER: tuple[LedgerEntry, ...] = (
    LedgerEntry(
        "lenet5_classic",
        32,
        "LeCun et al. 1998",
        60_000,
        None,
        "RBF prototypes are fixed buffers, as in the paper",
    ),
    LedgerEntry(
        "alexnet",
        227,
        "Krizhevsky et al. 2012",
        60_000_000,
        None,
        "paper says '60 million'; input 227 (the paper's 224 cannot give a 55x55 conv1)",
        params_exact=False,
    ),
    LedgerEntry("alexnet_tv", 224, TV, 61_100_840, 0.714),
    *(
        LedgerEntry(f"vgg{d}{bn}", 224, TV, p, g)
        for d, bn, p, g in (
            (11, "", 132_863_336, 7.609),
            (11, "_bn", 132_868_840, 7.609),
            (13, "", 133_047_848, 11.308),
            (13, "_bn", 133_053_736, 11.308),
            (16, "", 138_357_544, 15.47),
            (16, "_bn", 138_365_992, 15.47),
            (19, "", 143_667_240, 19.632),
            (19, "_bn", 143_678_248, 19.632),
        )
    ),
    LedgerEntry(
        "vgg16",
        224,
        "Simonyan & Zisserman 2014",
        138_000_000,
        None,
        "paper rounds to 138 M",
        params_exact=False,
    ),
    LedgerEntry("resnet18", 224, TV, 11_689_512, 1.814),
    LedgerEntry("resnet18", 224, "He et al. 2015, Table 1", None, 1.8),
    LedgerEntry("resnet34", 224, TV, 21_797_672, 3.664),
    LedgerEntry("resnet34", 224, "He et al. 2015, Table 1", None, 3.6),
    LedgerEntry("resnet50", 224, TV, 25_557_032, 4.089, "v1.5: stride in the 3x3 convolution"),
    LedgerEntry(
        "resnet50",
        224,
        "He et al. 2015, Table 1",
        None,
        3.8,
        "v1 (stride_in_1x1): 3.86 G; the paper rounds down",
        {"stride_in_1x1": True},
    ),
    LedgerEntry("resnet101", 224, TV, 44_549_160, 7.801, "v1.5"),
    LedgerEntry(
        "resnet101",
        224,
        "He et al. 2015, Table 1",
        None,
        7.6,
        "v1 (stride_in_1x1)",
        {"stride_in_1x1": True},
    ),
    LedgerEntry("resnet152", 224, TV, 60_192_808, 11.514, "v1.5"),
    LedgerEntry(
        "resnet152",
        224,
        "He et al. 2015, Table 1",
        None,
        11.3,
        "v1 (stride_in_1x1)",
        {"stride_in_1x1": True},
    ),
    *(
        LedgerEntry(
            f"cifar_resnet{d}",
            32,
            "He et al. 2015, Table 6",
            p,
            None,
            "paper rounds; option A shortcuts add no parameters",
            params_exact=False,
        )
        for d, p in ((20, 270_000), (32, 460_000), (44, 660_000), (56, 850_000), (110, 1_700_000))
    ),
    LedgerEntry(
        "googlenet",
        224,
        TV,
        6_624_904,
        1.498,
        "torchvision's '5x5' branch is 3x3; BN instead of LRN; no auxiliary heads",
    ),
    LedgerEntry(
        "googlenet_paper",
        224,
        "Szegedy et al. 2014, Table 1",
        6_800_000,
        1.5,
        "Table 1's rows come out a little below their own channel counts (5b: 1,388K "
        "printed, 1.44 M by its columns); real 5x5 branches",
        params_exact=False,
    ),
    LedgerEntry(
        "mobilenet_v1",
        224,
        "Howard et al. 2017, Table 8",
        4_200_000,
        0.569,
        "paper rounds to 4.2 M",
        params_exact=False,
    ),
    LedgerEntry(
        "mobilenet_v1",
        224,
        "Howard et al. 2017, Table 6",
        2_600_000,
        0.325,
        "width multiplier alpha = 0.75; the paper rounds",
        {"width_mult": 0.75},
        params_exact=False,
    ),
    LedgerEntry(
        "mobilenet_v1",
        128,
        "Howard et al. 2017, Table 7",
        4_200_000,
        0.186,
        "resolution multiplier rho = 128/224; the paper rounds",
        params_exact=False,
    ),
    LedgerEntry("mobilenet_v2", 224, TV, 3_504_872, 0.301),
    LedgerEntry(
        "mobilenet_v2",
        224,
        "Sandler et al. 2018, Table 4",
        3_400_000,
        0.300,
        "the paper prints 3.4 M; the released model (and torchvision) has 3.50 M",
        params_exact=False,
    ),
    *(
        LedgerEntry(f"efficientnet_b{i}", r, TV, p, g, n)
        for i, r, p, g, n in (
            (0, 224, 5_288_548, 0.386, ""),
            (1, 240, 7_794_184, 0.687, ""),
            (2, 288, 9_109_994, 1.088, "torchvision evaluates B2 at 288 px (paper: 260)"),
            (3, 300, 12_233_232, 1.827, ""),
            (4, 380, 19_341_616, 4.394, ""),
            (5, 456, 30_389_784, 10.266, ""),
            (6, 528, 43_040_704, 19.068, ""),
            (7, 600, 66_347_960, 37.746, ""),
        )
    ),
    *(
        LedgerEntry(
            f"efficientnet_b{i}",
            r,
            "Tan & Le 2019, Table 2",
            p,
            g,
            "paper rounds; ours equals torchvision's count, the paper's FLOP counter is "
            "not documented"
            if i >= 4
            else "paper rounds",
            params_exact=False,
        )
        for i, r, p, g in (
            (0, 224, 5_300_000, 0.39),
            (1, 240, 7_800_000, 0.70),
            (2, 260, 9_200_000, 1.0),
            (3, 300, 12_000_000, 1.8),
            (4, 380, 19_000_000, 4.2),
            (5, 456, 30_000_000, 9.9),
            (6, 528, 43_000_000, 19.0),
            (7, 600, 66_000_000, 37.0),
        )
    ),
)


@dataclass(frozen=True)
class LedgerRow:
    """A ledger entry with our own counts."""

    entry: LedgerEntry
    params: int
    gmacs: float

    @property
    def params_match(self) -> bool | None:
        """Exact equality for exact figures; within 2% where the source rounds."""
        if self.entry.params is None:
            return None
        if self.entry.params_exact:
            return self.params == self.entry.params
        return abs(self.params - self.entry.params) <= 0.02 * self.entry.params

    def to_dict(self) -> dict:
        e = self.entry
        return {
            "model": e.model,
            "overrides": e.overrides,
            "resolution": e.resolution,
            "source": e.source,
            "params": self.params,
            "published_params": e.params,
            "params_match": self.params_match,
            "gmacs": round(self.gmacs, 3),
            "published_gmacs": e.gmacs,
            "note": e.note,
        }


def count(model_name: str, resolution: int, **overrides: object) -> tuple[int, float]:
    """Parameters and G MACs of a registered model at ``resolution`` (built for its shapes only:
    no memory, no weights drawn)."""
    with shapes_only():
        model = create_model(model_name, **overrides)
    channels = get_model_entry(model_name).input_size[0]
    summary = summarize(model, (channels, resolution, resolution))
    return summary.trainable_params, summary.total_macs / 1e9


def build_ledger(entries: tuple[LedgerEntry, ...] = LEDGER) -> list[LedgerRow]:
    """Our counts for every ledger entry."""
    cache: dict[tuple, tuple[int, float]] = {}
    rows = []
    for e in entries:
        key = (e.model, e.resolution, tuple(sorted(e.overrides.items())))
        if key not in cache:
            cache[key] = count(e.model, e.resolution, **e.overrides)
        params, gmacs = cache[key]
        rows.append(LedgerRow(e, params, gmacs))
    return rows
