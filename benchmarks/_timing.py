"""Timing shared by the benchmarks (a module, not a benchmark: `make bench` skips names starting with _)."""
from __future__ import annotations

import time

import torch


def timed(fn, *args) -> tuple[float, float]:
    """Wall-clock and process CPU seconds of ``fn(*args)``, with the GPU synchronised around it."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    fn(*args)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0, time.process_time() - c0
