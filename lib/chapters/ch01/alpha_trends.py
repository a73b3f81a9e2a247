"""The shape of each accuracy measure against alpha: Spearman, breakpoint and side slopes (lib.monotonicity)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from ...claims import fmt
from ...monotonicity import Trend, trend
from .layers import MEASURES

POPULATIONS = {"local": "local-error networks", "pooled": "local-error and backprop networks pooled"}


def trends(cfg: SimpleNamespace, table: pd.DataFrame, population: str = "pooled") -> dict[str, Trend]:
    """The shape of each accuracy measure against alpha over layers and conditions of ``population``."""
    part = table if population == "pooled" else table[table.method == population]
    rng = np.random.default_rng(cfg.seed)
    return {m: trend(part.alpha, part[m], n_boot=cfg.n_boot, rng=rng) for m in MEASURES}


def trend_rows(trs: dict[str, Trend], **extra) -> list[dict]:
    """Trends as table rows (Spearman, breakpoint, side slopes with intervals, shape)."""
    return [
        {
            **extra,
            "measure": m,
            "n": t.n,
            "Spearman [95% CI]": fmt(t.spearman, t.spearman_ci, 2),
            "breakpoint alpha [95% CI]": fmt(t.breakpoint, t.breakpoint_ci, 3),
            "slope left": fmt(t.left_slope, t.left_ci, 2),
            "slope right": fmt(t.right_slope, t.right_ci, 2),
            "shape": t.shape,
        }
        for m, t in trs.items()
    ]


def trends_per_strength(cfg: SimpleNamespace, long: pd.DataFrame, population: str = "pooled") -> pd.DataFrame:
    """The same trend test at every single non-zero strength (not only the grid mean)."""
    rng = np.random.default_rng(cfg.seed + 1)
    rows = []
    sel = long[long.eps > 0] if population == "pooled" else long[(long.eps > 0) & (long.method == population)]
    for (attack, eps), part in sel.groupby(["attack", "eps"]):
        t = trend(part.alpha, part.accuracy, n_boot=cfg.n_boot, rng=rng)
        rows += trend_rows({attack: t}, eps=eps)
    return pd.DataFrame(rows).rename(columns={"measure": "attack"}).set_index(["attack", "eps"])


def trends_by_population(cfg: SimpleNamespace, table: pd.DataFrame) -> pd.DataFrame:
    """Trends within each training method and pooled (is the pooled shape a mix of two groups?)."""
    rows = []
    for population in ("local", "backprop", "pooled"):
        rows += trend_rows(trends(cfg, table, population), population=population)
    return pd.DataFrame(rows).set_index(["population", "measure"])
