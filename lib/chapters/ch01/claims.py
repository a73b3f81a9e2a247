"""Chapter 1's claims, each declared once, and the run's rows and scalars built from them (no side effect).

The notebook records the rows (``lib.claims.table(rows, chapter="ch01")``) and the
scalars (``lib.results.record(**scalars(...))``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd

from ...claims import CONTROL, INCONCLUSIVE, PAPER, Claim, Declared, declared, fmt
from ...monotonicity import Trend, direction_verdict
from .alpha_trends import POPULATIONS
from .baselines import Fidelity
from .layers import MEASURES

UNTESTABLE = "untestable here: no layer below the bound"
SHAPE_SETTINGS = ("alpha_window", "epoch_grid", "width_grid", "weight_decays")  # alpha and the conditions moving it

DECLARED = declared(
    Declared(
        "ch01.local_vs_backprop",
        PAPER,
        "A deep MLP trained by local errors generalizes: its top classifier is within {tol:g} of the backprop MLP's",
        "test accuracy, backprop minus local (paired bootstrap over test points)",
        threshold=math.nan,
        above=False,  # the threshold is the parameter gap_tolerance
        settings=("gap_tolerance", "readout_scale", "anneal_epochs"),
    ),
    *(
        decl
        for pop, who in POPULATIONS.items()
        for decl in (
            Declared(
                f"ch01.clean_alpha_{pop}",
                PAPER,
                f"High generalization accuracy requires a fast spectral decay, large alpha ({who})",
                "Spearman(alpha, clean accuracy) over layers x conditions",
                threshold=0.0,
                above=True,
                settings=SHAPE_SETTINGS,
            ),
            Declared(
                f"ch01.gaussian_monotonic_{pop}",
                PAPER,
                f"Under Gaussian noise, accuracy rises monotonically with alpha ({who})",
                "shape of mean noisy accuracy vs alpha (Spearman + two-lines test); holds only if increasing",
                settings=(*SHAPE_SETTINGS, "epsilons"),
            ),
            Declared(
                f"ch01.fgsm_nonmonotonic_{pop}",
                PAPER,
                f"Under FGSM, accuracy vs alpha is non-monotonic ({who})",
                "shape of mean FGSM accuracy vs alpha: two-lines test (estimate: Spearman)",
                settings=(*SHAPE_SETTINGS, "epsilons"),
            ),
        )
    ),
    Declared(
        "ch01.smoothness_bound",
        PAPER,
        "Smoothness: layers with alpha > 1 + 2/d = {bound:.3g} (TwoNN d = {d:.3g}) are more robust to FGSM "
        "than layers below it",
        "mean FGSM accuracy above minus below the bound ({n_above} vs {n_below} points)",
        threshold=0.0,
        above=True,
        settings=(*SHAPE_SETTINGS, "epsilons", "id_points"),
    ),
    Declared(
        "ch01.local_beats_pixels",
        CONTROL,
        "[book, fidelity] The local-error network's top classifier beats a logistic regression on raw pixels",
        "test accuracy, local minus tuned pixel logistic regression (paired bootstrap over test points)",
        threshold=0.0,
        above=True,
        settings=("logistic_l2",),
    ),
)


def claims(
    cfg: SimpleNamespace, trs: dict[str, dict[str, Trend]], fid: Fidelity, d: float, split, alpha_min: float
) -> list[Claim]:
    """The chapter's claims with ids, numeric statistics and computed verdicts.

    ``trs`` maps a population (see POPULATIONS) to its trends; claims 2-4 get one
    row per population. ``split`` is :func:`bound_split`'s result at ``1 + 2/d``.
    """
    tol = cfg.gap_tolerance
    gap, gap_ci = fid.backprop_minus_local
    rows = [replace(DECLARED["local_vs_backprop"], threshold=tol).interval(gap, *gap_ci, tol=tol)]
    for pop, t in trs.items():
        c, g, a = t["clean"], t["gaussian"], t["fgsm"]
        rows += [
            DECLARED[f"clean_alpha_{pop}"].interval(c.spearman, *c.spearman_ci, digits=2),
            DECLARED[f"gaussian_monotonic_{pop}"].tested(
                direction_verdict(g, "increasing"),
                f"{g.shape}; rho {fmt(g.spearman, g.spearman_ci, 2)}",
                g.spearman,
                *g.spearman_ci,
            ),
            DECLARED[f"fgsm_nonmonotonic_{pop}"].tested(
                direction_verdict(a, "non-monotonic"),
                f"{a.shape}; rho {fmt(a.spearman, a.spearman_ci, 2)}",
                a.spearman,
                *a.spearman_ci,
            ),
        ]
    diff, diff_ci, n_above, n_below = split
    words = dict(bound=1 + 2 / d, d=d, n_above=n_above, n_below=n_below)
    smooth = DECLARED["smoothness_bound"]
    if n_below == 0:
        rows.append(smooth.tested(INCONCLUSIVE, f"{UNTESTABLE} (lowest alpha {alpha_min:.3g})", **words))
    else:
        value = None if np.isfinite(diff) else "no layer above the bound"
        rows.append(smooth.interval(diff, *diff_ci, value=value, **words))
    lm, lm_ci = fid.local_minus_logistic
    rows.append(DECLARED["local_beats_pixels"].interval(lm, *lm_ci))
    return rows


def scalars(table: pd.DataFrame, fid: Fidelity, trs: dict[str, dict[str, Trend]], d: float) -> dict:
    """The run's numbers worth keeping beside its claims (what the notebook records)."""
    bound = 1 + 2 / d
    return dict(
        intrinsic_dimension=d,
        smoothness_bound=bound,
        fraction_above_bound=(table.alpha > bound).mean(),
        alpha_min=table.alpha.min(),
        alpha_max=table.alpha.max(),
        logistic_accuracy=fid.logistic,
        local_top_accuracy=fid.local_top,
        backprop_top_accuracy=fid.backprop_top,
        backprop_best_refit_accuracy=max(fid.backprop_refit),
        **{f"spearman_{m}_{p}": trs[p][m].spearman for p in trs for m in MEASURES},
        **{f"shape_{m}_{p}": trs[p][m].shape for p in trs for m in MEASURES},
    )
