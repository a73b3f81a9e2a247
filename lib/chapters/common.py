"""What every chapter shares: loading its data set, CPU threads for small models, timing its stages."""

from __future__ import annotations

import functools
import time
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import torch

from .. import data


def load_data(cfg: SimpleNamespace, **options: Any) -> data.Dataset:
    """The chapter's data set on its device: seeded subsets of ``n_train``/``n_test`` points (0 or None: all).

    ``options`` go to :func:`lib.data.load` (``value_range=(-1, 1)`` for chapter 1, say).
    """
    return data.load(
        cfg.dataset, device=cfg.device, seed=cfg.seed, n_train=cfg.n_train or None, n_test=cfg.n_test or None, **options
    )


@contextmanager
def one_thread(device: torch.device) -> Iterator[None]:
    """One CPU thread while the block runs (none changed on a GPU), the previous count restored after.

    The chapters' small networks are too small to gain from more, and on a shared machine
    extra OpenMP threads spin-wait, slowing training several-fold.
    """
    before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def small_net_threads(cfg: SimpleNamespace) -> int:
    """One CPU thread for the rest of the run at the quick profile on 8x8 digits; returns the thread count.

    For chapters whose every step is a small network there: splitting each operation
    across threads costs more than it saves (and much more on a busy machine).
    """
    if cfg.device.type == "cpu" and cfg.profile == "quick" and cfg.dataset == "digits":
        torch.set_num_threads(1)
    return torch.get_num_threads()


class Stages:
    """Wall time of each stage of a run: ``with stages("name"): ...`` or ``@stages.timed("name")``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = time.perf_counter() - t0

    def timed(self, name: str) -> Callable[[Callable], Callable]:
        """Decorator: every call of the function is the stage ``name``."""

        def wrap(fn: Callable) -> Callable:
            @functools.wraps(fn)
            def inner(*args: Any, **kw: Any) -> Any:
                with self(name):
                    return fn(*args, **kw)

            return inner

        return wrap
