"""Timing shared by the benchmarks (a module, not a benchmark: `make bench` skips names starting with _).

Variants run interleaved, one round after another, so a change of load on a shared
machine hits all of them alike; a ratio is the median over rounds of the ratio within
a round, which is steadier under load than a ratio of best times. A ratio is printed with a
95% interval for that median (order statistics of the rounds' ratios, distribution-free), and
a target is judged by the whole interval: met, missed, or undecided when the interval straddles
it (the machine's speed drifts by several percent between runs, so a median alone can land on
either side of a target it is close to).
"""

from __future__ import annotations

import math
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


def interleaved(
    variants: dict[str, Callable[[], Callable[[], object]]], rounds: int
) -> dict[str, list[tuple[float, float]]]:
    """``rounds`` rounds of timing every variant once, each round starting one variant later.

    Each variant is a set-up function, called untimed before every run, that returns
    the function to time (e.g. one that trains a freshly initialised network). The
    rotation gives every variant every place in the order equally often, so what one
    run leaves behind for the next (memory to map again, caches to refill) does not
    always fall on the same variant.
    """
    names = list(variants)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(timed(variants[name]()))
    return times


def best(times: list[tuple[float, float]], which: int = WALL) -> float:
    """The shortest of the timings (``WALL`` or ``CPU``)."""
    return min(t[which] for t in times)


def median_interval(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """Distribution-free interval for the median and its coverage: the order statistics ``x_(j)``, ``x_(n+1-j)``.

    ``j`` is the largest whose binomial coverage is >= ``level``; with too few values for that
    (fewer than 6 at 95%), the range of the values, whose coverage is then below ``level``.
    """
    x, n = sorted(values), len(values)
    tail = [math.comb(n, i) / 2**n for i in range(n // 2 + 1)]  # P(Binomial(n, 1/2) = i)
    j = 1
    while j < n // 2 and 1 - 2 * sum(tail[: j + 1]) >= level:
        j += 1
    return x[j - 1], x[n - j], 1 - 2 * sum(tail[:j])


def ratios(num: list[tuple[float, float]], den: list[tuple[float, float]], which: int = WALL) -> list[float]:
    """``num / den`` within each round (``WALL`` or ``CPU`` seconds)."""
    return [n[which] / d[which] for n, d in zip(num, den)]


def judged(
    num: list[tuple[float, float]],
    den: list[tuple[float, float]],
    which: int = WALL,
    *,
    at_most: float | None = None,
    at_least: float | None = None,
) -> str:
    """The median ratio with its 95% interval, and the verdict on the target (``at_most`` or ``at_least``) if one is given."""
    r = ratios(num, den, which)
    lo, hi, coverage = median_interval(r)
    text = f"{statistics.median(r):.3f}x [{lo:.3f}, {hi:.3f}]" + (
        "" if coverage >= 0.95 else f" ({coverage:.0%} interval)"
    )
    if at_most is not None:
        text += f" {_verdict(hi <= at_most, lo > at_most)} <= {at_most:g}"
    if at_least is not None:
        text += f" {_verdict(lo >= at_least, hi < at_least)} >= {at_least:g}"
    return text


def _verdict(met: bool, missed: bool) -> str:
    return "meets" if met else "misses" if missed else "undecided at"


def images(n: int, seed: int = 0, size: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images of ``size`` x ``size`` pixels in [0, 1] with labels, always at hand: scikit-learn's 8x8
    digits upsampled (bilinear), drawn with replacement and shifted by up to two pixels each (so that more
    than the 1,797 digits are distinct). Timing needs images of the right size, not real ones; real data is
    each benchmark's ``--dataset`` option."""
    from sklearn.datasets import load_digits

    d = load_digits()
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(d.images), (n,), generator=g)
    x = torch.as_tensor(d.images, dtype=torch.float32)[idx, None] / 16.0
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    shifts = torch.randint(-2, 3, (n, 2), generator=g)
    x = torch.stack([torch.roll(xi, tuple(s.tolist()), dims=(1, 2)) for xi, s in zip(x, shifts)])
    return x.reshape(n, -1).clamp(0, 1), torch.as_tensor(d.target, dtype=torch.long)[idx]
