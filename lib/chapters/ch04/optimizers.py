"""The optimizer comparison: does plain GD or Adam move the first-layer weights orthogonally to P?"""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from .costs import STAGES
from .networks import make_batch, measure, orthogonal_drift, per_seed_medians, train
from .params import ADAM_LR, OPTIMIZER_STEPS

__all__ = ["optimizer_comparison"]


@STAGES.timed("optimizer comparison")
def optimizer_comparison(cfg: SimpleNamespace, steps: int = OPTIMIZER_STEPS) -> pd.DataFrame:
    """Drift of the P-perp weights under GD and Adam, for an axis-aligned and a random subspace.

    Every network trains for a fixed ``steps`` (no margin stop) so the drift can accumulate.
    """
    rows = []
    for aligned in (True, False):
        batch = make_batch(
            cfg.n_points,
            [cfg.d] * cfg.n_seeds,
            [cfg.k] * cfg.n_seeds,
            rule=cfg.rule,
            radius=cfg.radius,
            generator=cfg.generator,
            device=cfg.device,
            axis_aligned=aligned,
        )
        for opt, lr in (("gd", cfg.lr), ("adam", ADAM_LR)):
            run = train(
                cfg,
                batch,
                optimizer=opt,
                lr=lr,
                steps=steps,
                margin=False,
                weight_decay=0.0,
                desc=f"{opt}, {'axis-aligned' if aligned else 'random'} P",
            )
            med = per_seed_medians(measure(run, directions=False), cfg.n_seeds)
            for e, drift in enumerate(orthogonal_drift(run).tolist()):
                rows.append(
                    {
                        "subspace": "axis-aligned" if aligned else "random",
                        "optimizer": opt,
                        "seed": e,
                        "drift": drift,
                        "g_perp": med.g_perp.iloc[e],
                        "g_par": med.g_par.iloc[e],
                        "min_margin": float(run.fit.min_margin[e]),
                    }
                )
    return pd.DataFrame(rows)
