"""One look for every figure of the book."""

from __future__ import annotations

import math
from typing import Iterable

import matplotlib
import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

PALETTE = "colorblind"


def set_theme() -> None:
    """The book's seaborn theme: white grid, colour-blind palette, readable sizes."""
    sns.set_theme(
        context="notebook",
        style="whitegrid",
        palette=PALETTE,
        rc={
            "figure.dpi": 110,
            "savefig.dpi": 150,
            "figure.figsize": (6.4, 4.0),
            "axes.titlesize": "medium",
            "legend.frameon": False,
        },
    )
    matplotlib.rcParams["figure.constrained_layout.use"] = True


def subplots(nrows: int = 1, ncols: int = 1, *, width: float = 4.0, height: float = 3.2, **kw):
    """``plt.subplots`` sized per panel, so small multiples stay readable."""
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw)


class ReadableLogLocator(LogLocator):
    """Major ticks of a log axis, more per decade the fewer decades the view spans: 1, 1.5, 2, 3, 4, 5
    and 7 times the powers of ten within a decade, 1, 2 and 5 within two, the powers alone beyond."""

    def tick_values(self, vmin: float, vmax: float):
        lo, hi = sorted((vmin, vmax))
        decades = math.log10(hi / lo) if lo > 0 else math.inf
        self.set_params(
            subs=(1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0) if decades <= 1 else (1.0, 2.0, 5.0) if decades <= 2 else (1.0,)
        )
        return super().tick_values(vmin, vmax)


def log_ticks(axis, values: Iterable[float] | None = None) -> None:
    """Readable log axis: plain-number labels at ``values`` (skipping one too close to the previous),
    or where :class:`ReadableLogLocator` puts them, so a view within one decade is labelled too; no minor labels."""
    if values is None:
        axis.set_major_locator(ReadableLogLocator())
    else:
        ticks: list[float] = []
        for v in sorted(set(float(v) for v in values)):
            if not ticks or v / ticks[-1] > 1.3:  # skip a tick too close to the previous one
                ticks.append(v)
        axis.set_ticks(ticks)
    axis.set_major_formatter(FormatStrFormatter("%.3g"))
    axis.set_minor_formatter(NullFormatter())
