"""Timing shared by the benchmarks (a module, not a benchmark: `make bench` skips names starting with _).

Variants run interleaved, one round after another, so a change of load on a shared
machine hits all of them alike; a ratio is the median over rounds of the ratio within
a round, which is steadier under load than a ratio of best times.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

WALL, CPU = 0, 1


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall-clock and process CPU seconds of ``fn()``, with the GPU synchronised around it."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0, time.process_time() - c0


def interleaved(variants: dict[str, Callable[[], Callable[[], object]]],
                rounds: int) -> dict[str, list[tuple[float, float]]]:
    """``rounds`` rounds of timing every variant once, in order.

    Each variant is a set-up function, called untimed before every run, that returns
    the function to time (e.g. one that trains a freshly initialised network).
    """
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, setup in variants.items():
            times[name].append(timed(setup()))
    return times


def best(times: list[tuple[float, float]], which: int = WALL) -> float:
    """The shortest of the timings (``WALL`` or ``CPU``)."""
    return min(t[which] for t in times)


def ratio(num: list[tuple[float, float]], den: list[tuple[float, float]], which: int = WALL) -> float:
    """Median over rounds of ``num / den`` (``WALL`` or ``CPU`` seconds)."""
    return statistics.median(n[which] / d[which] for n, d in zip(num, den))
