"""One look for every figure of the book."""
from __future__ import annotations

import matplotlib

import matplotlib.pyplot as plt
import seaborn as sns

PALETTE = "colorblind"


def set_theme() -> None:
    """The book's seaborn theme: white grid, colour-blind palette, readable sizes."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE,
                  rc={"figure.dpi": 110, "savefig.dpi": 150, "figure.figsize": (6.4, 4.0),
                      "axes.titlesize": "medium", "legend.frameon": False})
    matplotlib.rcParams["figure.constrained_layout.use"] = True


def subplots(nrows: int = 1, ncols: int = 1, *, width: float = 4.0, height: float = 3.2, **kw):
    """``plt.subplots`` sized per panel, so small multiples stay readable."""
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw)
