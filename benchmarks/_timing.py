"""Interleaved timing shared by the benchmarks.

On a shared, noisy machine each round times flowtrace and its baseline back to back, so a
slow moment hits both sides; the result is the median time of each side and the median
of the per-round ratios (ours / baseline), which is what RESULTS.md quotes.
"""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable
from typing import NamedTuple


class Paired(NamedTuple):
    ours_us: float
    base_us: float
    ratio: float


def interleaved(
    ours: Callable[[], object], base: Callable[[], object], *, number: int, rounds: int
) -> Paired:
    """Time ``ours`` and ``base`` in ``rounds`` alternating rounds of ``number`` calls."""
    mine: list[float] = []
    theirs: list[float] = []
    for _ in range(rounds):
        mine.append(timeit.timeit(ours, number=number) / number * 1e6)
        theirs.append(timeit.timeit(base, number=number) / number * 1e6)
    return Paired(
        statistics.median(mine),
        statistics.median(theirs),
        statistics.median(o / b for o, b in zip(mine, theirs, strict=True)),
    )


def median_us(func: Callable[[], object], *, number: int, repeat: int) -> float:
    """Median per-call time in microseconds over ``repeat`` runs of ``number`` calls."""
    return statistics.median(timeit.repeat(func, number=number, repeat=repeat)) / number * 1e6
