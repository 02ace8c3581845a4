"""The benchmarks' clock: the median of repeated calls after one warm-up call (this shared
machine is noisy; a median of several repeats is what the README quotes)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """``fn()`` once to warm up, then ``repeats`` times; the median wall time in seconds."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)
