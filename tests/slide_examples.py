"""The slides' worked examples, typed in once for every test that needs them.

Where the extracted slide text lost cells (the 7x7 strided-convolution input and the 5x5 max-pool
input carry overlaid filter values), the input is the original course example these slides
reproduce; the tests say which printed results follow from it.
"""

from __future__ import annotations

import torch

# "Vertical edge detection" / "Learning to detect edges": 6x6 input, 3x3 vertical filter.
EDGE_INPUT = [
    [3, 0, 1, 2, 7, 4],
    [1, 5, 8, 9, 3, 1],
    [2, 7, 2, 5, 1, 3],
    [0, 1, 3, 1, 7, 8],
    [4, 2, 1, 6, 2, 8],
    [2, 4, 5, 2, 3, 9],
]
EDGE_OUTPUT = [[-5, -4, 0, 8], [-10, -2, 2, 3], [0, -2, -4, -7], [-3, -2, -3, -16]]

# "Vertical edge detection examples": a bright-to-dark and a dark-to-bright step.
STEP_BRIGHT_LEFT = [[10, 10, 10, 0, 0, 0]] * 6
STEP_DARK_LEFT = [[0, 0, 0, 10, 10, 10]] * 6
# "Vertical and Horizontal Edge Detection": the checkerboard with the horizontal filter.
CHECKER = [[10, 10, 10, 0, 0, 0]] * 3 + [[0, 0, 0, 10, 10, 10]] * 3
CHECKER_HORIZONTAL = [[0, 0, 0, 0], [30, 10, -10, -30], [30, 10, -10, -30], [0, 0, 0, 0]]

# "Strided convolution": 7x7 input, 3x3 filter, stride 2 -> 3x3.
STRIDED_INPUT = [
    [2, 3, 7, 4, 6, 2, 9],
    [6, 6, 9, 8, 7, 4, 3],
    [3, 4, 8, 3, 8, 9, 7],
    [7, 8, 3, 6, 6, 3, 4],
    [4, 2, 1, 8, 3, 4, 6],
    [3, 2, 4, 1, 9, 8, 3],
    [0, 1, 3, 9, 2, 1, 4],
]
STRIDED_FILTER = [[3, 4, 4], [1, 0, 2], [-1, 0, 3]]
# As printed on the slide. Two cells do not follow from the input: the computation gives 88 at
# (0, 2) and 117 at (1, 2) where the slide prints 83 and 127 (an arithmetic slip on the original
# slide; the other seven cells agree).
STRIDED_OUTPUT_PRINTED = [[91, 100, 83], [69, 91, 127], [44, 72, 74]]
STRIDED_CELLS_THAT_FOLLOW = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2)]

# "Pooling layer: Max pooling": 4x4, f=2, s=2 -> 9 2 / 6 3; and 5x5, f=3, s=1.
POOL_INPUT = [[1, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]]
POOL_MAX = [[9, 2], [6, 3]]
POOL_AVG = [[3.75, 1.25], [3.75, 2.0]]
POOL5_INPUT = [[1, 3, 2, 1, 3], [2, 9, 1, 1, 5], [1, 3, 2, 3, 2], [8, 3, 5, 1, 0], [5, 6, 1, 2, 9]]
POOL5_MAX = [[9, 9, 5], [9, 9, 5], [8, 6, 9]]

# "Why transpose convolution?": kernel (3, 3), inputs (4, 4), convolution matrix (4, 16).
TRANSPOSE_KERNEL = [[1, 4, 1], [1, 4, 3], [3, 3, 1]]
TRANSPOSE_INPUT = [[4, 5, 8, 7], [1, 8, 8, 8], [3, 6, 6, 4], [6, 5, 7, 8]]
TRANSPOSE_CONV_OUTPUT = [[122, 148], [126, 134]]
CONV_MATRIX_4x16 = [
    [1, 4, 1, 0, 1, 4, 3, 0, 3, 3, 1, 0, 0, 0, 0, 0],
    [0, 1, 4, 1, 0, 1, 4, 3, 0, 3, 3, 1, 0, 0, 0, 0],
    [0, 0, 0, 0, 1, 4, 1, 0, 1, 4, 3, 0, 3, 3, 1, 0],
    [0, 0, 0, 0, 0, 1, 4, 1, 0, 1, 4, 3, 0, 3, 3, 1],
]

# "Convolutions in 2D and 1D": an 8-sample signal and a 5-tap filter; the four outputs are
# computed by hand here (the slide shows the operands): 1*1 + 20*3 + 15*10 + 3*3 + 18*1 = 238, ...
SIGNAL_1D = [1, 20, 15, 3, 18, 12, 4, 17]
FILTER_1D = [1, 3, 10, 3, 1]
OUTPUT_1D = [238, 161, 244, 206]


def t(rows: list[list[float]]) -> torch.Tensor:
    """A slide matrix as a float64 ``(1, 1, H, W)`` batch."""
    return torch.tensor(rows, dtype=torch.float64)[None, None]
