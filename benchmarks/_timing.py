"""Interleaved timing shared by the benchmarks.

On a shared, noisy machine each round times flowtrace and its baseline back to back, so a
slow moment hits both sides; the result is the median time of each side and the median
of the per-round ratios (ours / baseline), which is what RESULTS.md quotes.
"""

from __future__ import annotations

import statistics
import time
import timeit
from collections.abc import Callable
from typing import NamedTuple


class Paired(NamedTuple):
    ours_us: float
    base_us: float
    ratio: float


def interleaved(
    ours: Callable[[], object],
    base: Callable[[], object],
    *,
    number: int,
    rounds: int,
    timer: Callable[[], float] = time.perf_counter,
) -> Paired:
    """Time ``ours`` and ``base`` in ``rounds`` alternating rounds of ``number`` calls.

    ``timer=time.thread_time`` counts the CPU time of this thread only, so the time other
    processes hold the CPU is left out (it still suffers their cache and memory traffic).
    """
    mine: list[float] = []
    theirs: list[float] = []
    for _ in range(rounds):
        mine.append(timeit.Timer(ours, timer=timer).timeit(number) / number * 1e6)
        theirs.append(timeit.Timer(base, timer=timer).timeit(number) / number * 1e6)
    return Paired(
        statistics.median(mine),
        statistics.median(theirs),
        statistics.median(o / b for o, b in zip(mine, theirs, strict=True)),
    )


def median_us(func: Callable[[], object], *, number: int, repeat: int) -> float:
    """Median per-call time in microseconds over ``repeat`` runs of ``number`` calls."""
    return statistics.median(timeit.repeat(func, number=number, repeat=repeat)) / number * 1e6
