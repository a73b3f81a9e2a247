"""What each stage of chapter 4 costs: the step budgets, a calibrated upper bound, and the wall time it took.

``STAGES`` times the experiments as they run (each experiment is one stage, a sweep one
stage per sweep); :func:`cost_report` sets those times next to :func:`expected_costs`.
"""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import pandas as pd
import torch

from ... import ensemble
from ..common import Stages
from .params import CHESSBOARD, DATA_SCALE, DIAGONAL, OPTIMIZER_STEPS, SWEEPS, sweep_values

__all__ = ["STAGES", "cost_report", "expected_costs", "format_duration", "stages"]

STAGES = Stages()  # wall time of each stage of this run, filled as the stages run


def stages(cfg: SimpleNamespace) -> pd.DataFrame:
    """Every training stage of the chapter: networks, points, input dim, width and step budget."""
    S = cfg.n_seeds
    rows = [
        ("main runs", S, cfg.n_points, cfg.d, cfg.width, cfg.steps),
        ("optimizer comparison", S, cfg.n_points, cfg.d, cfg.width, 4 * OPTIMIZER_STEPS),
    ]
    for name in SWEEPS:
        vals = sweep_values(cfg, name)
        d = max(vals) if name.startswith("d ") else cfg.d
        m = int(max(vals)) if name == "width" else cfg.width
        rows.append((f"sweep: {name}", S * len(vals), cfg.n_points, d, m, cfg.steps))
    rows.append((f"sweep: {DATA_SCALE}", S * len(cfg.sweep_d), cfg.n_points, max(cfg.sweep_d), cfg.width, cfg.steps))
    rows += [
        ("diagonal figure", 3 * cfg.figure_seeds, 7, 2, DIAGONAL["width"], cfg.diagonal_steps),
        ("chessboard figure", 5 * cfg.figure_seeds, 25, 3, CHESSBOARD["width"], cfg.chessboard_steps),
    ]
    return pd.DataFrame(rows, columns=["stage", "networks", "points", "d", "width", "step budget"])


def _seconds_per_step(E: int, n: int, d: int, m: int, device, budget: float = 0.25) -> float:
    """Measured wall time of one full-batch step of ``E`` networks ``d -> m -> 1`` on ``n`` points."""
    g = torch.Generator().manual_seed(0)
    ens = ensemble.init(E, d, m, generator=g, device=device)
    x, y = torch.randn(n, d, generator=g).to(device), torch.randint(0, 2, (n,), generator=g).to(device)
    ensemble.fit(ens, x, y, lr=1e-3, steps=2, progress=False)  # warm-up
    t0 = time.perf_counter()
    ensemble.fit(ens, x, y, lr=1e-3, steps=2, progress=False)
    per = (time.perf_counter() - t0) / 2
    k = int(min(200, budget / max(per, 1e-9)))
    if k > 2:  # cheap enough: time more steps for a steadier figure
        t0 = time.perf_counter()
        ensemble.fit(ens, x, y, lr=1e-3, steps=k, progress=False)
        per = (time.perf_counter() - t0) / k
    return per


def expected_costs(cfg: SimpleNamespace) -> pd.DataFrame:
    """:func:`stages` with the calibrated time per step and the time of the whole step budget.

    The budget time is an upper bound: a network that reaches the margin leaves its batch,
    so a stage costs less the sooner its networks finish (the measurement and plotting
    after training are not counted).
    """
    out = stages(cfg)
    out["ms per step"] = [
        1e3 * _seconds_per_step(*r, device=cfg.device)
        for r in out[["networks", "points", "d", "width"]].itertuples(index=False)
    ]
    out["at most (s)"] = out["ms per step"] * out["step budget"] / 1e3
    return out.set_index("stage")


def cost_report(expected: pd.DataFrame) -> pd.DataFrame:
    """The expected upper bound of every stage next to the wall time it took in this run."""
    out = expected[["networks", "step budget", "at most (s)"]].copy()
    out["took (s)"] = [STAGES.seconds.get(name, math.nan) for name in out.index]
    return out


def format_duration(seconds: float) -> str:
    """``seconds`` in the largest sensible unit (s, min or h)."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
