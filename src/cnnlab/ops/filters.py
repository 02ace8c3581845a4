"""Edge-detection filters from the slides "Vertical edge detection", "Vertical and Horizontal Edge
Detection" and "Learning to detect edges".

Each kernel is written as on the slide and applied as cross-correlation (``conv2d``), so a bright
-to-dark transition from left to right gives a positive vertical-edge response, as on the slide's
``10 10 10 0 0 0`` example (output ``0 30 30 0``).

Note: the slide's Scharr kernel is extracted as ``3 0 -1 / 10 0 -10 / 3 0 -3`` (and titled
"Schass"); the published Scharr operator is ``3 0 -3 / 10 0 -10 / 3 0 -3``, used here.
"""

from __future__ import annotations

import torch

from cnnlab.errors import CnnlabError
from cnnlab.words import nearest

EDGE_FILTERS: dict[str, tuple[tuple[float, ...], ...]] = {
    "vertical": ((1, 0, -1), (1, 0, -1), (1, 0, -1)),
    "horizontal": ((1, 1, 1), (0, 0, 0), (-1, -1, -1)),
    "sobel": ((1, 0, -1), (2, 0, -2), (1, 0, -1)),
    "sobel_horizontal": ((1, 2, 1), (0, 0, 0), (-1, -2, -1)),
    "scharr": ((3, 0, -3), (10, 0, -10), (3, 0, -3)),
    "scharr_horizontal": ((3, 10, 3), (0, 0, 0), (-3, -10, -3)),
}


def edge_filter(name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The named 3x3 kernel as a ``(3, 3)`` tensor. Names: see :data:`EDGE_FILTERS`."""
    try:
        rows = EDGE_FILTERS[name]
    except KeyError:
        known = ", ".join(EDGE_FILTERS)
        hint = nearest(name, EDGE_FILTERS)
        raise CnnlabError(f"unknown filter {name!r}{hint}; known filters: {known}") from None
    return torch.tensor(rows, dtype=dtype)
