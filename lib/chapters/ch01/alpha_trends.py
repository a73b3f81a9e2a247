"""The shape of each accuracy measure against alpha over trained networks (lib.monotonicity), and the training trajectory.

The claims are tested on networks trained to the end of their schedule (``TRAINED``),
every interval resampling whole networks (a cluster bootstrap: the layers of one
network are not independent points). The snapshots taken along the base training
are the trajectory, shown on their own (:func:`trajectory`), never mixed into the test.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd

from ...claims import fmt
from ...monotonicity import Trend, cluster_trend, side_shape, spearman
from .layers import MEASURES, with_relative
from .networks import TRAINED

POPULATIONS = {"local": "trained local-error networks", "pooled": "trained local-error and backprop networks pooled"}


@dataclass(frozen=True)
class Cloud:
    """The trends of one population of trained networks, with the alpha range they cover."""

    trends: dict[str, Trend]
    alpha_range: tuple[float, float]
    n_networks: int


def trained(table: pd.DataFrame, population: str = "pooled") -> pd.DataFrame:
    """The (network, layer) points of the trained networks of ``population`` (a method, or ``pooled``)."""
    part = table[table.kind.isin(TRAINED)]
    return part if population == "pooled" else part[part.method == population]


def trends(cfg: SimpleNamespace, table: pd.DataFrame, population: str = "pooled") -> Cloud:
    """The shape of each accuracy measure against alpha over the trained networks of ``population``."""
    part = trained(table, population)
    rng = np.random.default_rng(cfg.seed)
    return Cloud(
        {m: cluster_trend(part.alpha, part[m], part.network, n_boot=cfg.n_boot, rng=rng) for m in MEASURES},
        (float(part.alpha.min()), float(part.alpha.max())),
        part.network.nunique(),
    )


def trend_rows(trs: dict[str, Trend], **extra) -> list[dict]:
    """Trends as table rows (Spearman, breakpoint, side slopes with intervals, the shape both slopes establish)."""
    return [
        {
            **extra,
            "measure": m,
            "n": t.n,
            "Spearman [95% CI]": fmt(t.spearman, t.spearman_ci, 2),
            "breakpoint alpha": f"{t.breakpoint:.3g}",
            "slope left": fmt(t.left_slope, t.left_ci, 2),
            "slope right": fmt(t.right_slope, t.right_ci, 2),
            "shape (both slopes)": side_shape(t),
        }
        for m, t in trs.items()
    ]


def trends_per_strength(cfg: SimpleNamespace, long: pd.DataFrame, population: str = "local") -> pd.DataFrame:
    """The same test at every single non-zero strength (accuracy relative to clean), trained networks."""
    rng = np.random.default_rng(cfg.seed + 1)
    rows = []
    sel = trained(with_relative(long), population)
    for (attack, eps), part in sel[sel.eps > 0].groupby(["attack", "eps"]):
        t = cluster_trend(part.alpha, part.relative, part.network, n_boot=cfg.n_boot, rng=rng)
        rows += trend_rows({attack: t}, eps=eps)
    return pd.DataFrame(rows).rename(columns={"measure": "attack"}).set_index(["attack", "eps"])


def trends_by_population(cfg: SimpleNamespace, table: pd.DataFrame) -> pd.DataFrame:
    """Trends within each training method and pooled (is the pooled shape a mix of two groups?)."""
    rows = []
    for population in ("local", "backprop", "pooled"):
        cloud = trends(cfg, table, population)
        rows += trend_rows(cloud.trends, population=population, networks=cloud.n_networks)
    return pd.DataFrame(rows).set_index(["population", "measure"])


def trajectory(table: pd.DataFrame) -> pd.DataFrame:
    """Descriptive: Spearman(alpha, clean accuracy) along the base training (its snapshots and the end) and across
    the trained networks, per method; no verdict (one trajectory per method, its points share one training)."""
    rows = []
    for m, part in table.groupby("method"):
        path = part[part.kind.isin(("epochs", "base"))]
        done = part[part.kind.isin(TRAINED)]
        rows.append(
            {
                "method": m,
                "trajectory points": len(path),
                "trajectory clean accuracy": f"{path.clean.min():.2f}-{path.clean.max():.2f}",
                "Spearman along the trajectory": spearman(path.alpha, path.clean),
                "trained points": len(done),
                "trained clean accuracy": f"{done.clean.min():.2f}-{done.clean.max():.2f}",
                "Spearman across trained networks": spearman(done.alpha, done.clean),
            }
        )
    return pd.DataFrame(rows).set_index("method")
