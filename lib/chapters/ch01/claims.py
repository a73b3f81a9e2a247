"""Chapter 1's claims, each declared once, and the run's rows and scalars built from them (no side effect).

The notebook records the rows (``lib.claims.table(rows, chapter="ch01")``) and the
scalars (``lib.results.record(**scalars(...))``).

The accuracy claims are tested on networks trained to the end of their schedule, with
one readout kind (a fitted logistic regression) for every layer of either method, and
intervals that resample whole networks. Robustness is accuracy under attack relative to
the same readout's clean accuracy. A shape claim is decided by the two side slopes of
the two-lines test alone (:func:`lib.monotonicity.shape_statistic`): the recorded
estimate is the weaker side's slope, signed by the stronger side, so "no extremum
detected" is inconclusive unless both sides establish a monotonic trend.
"""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

from ...claims import CHECK, CONTROL, FAILS, FISHER_Z, HOLDS, INCONCLUSIVE, PAPER, Claim, Declared, declared, fmt
from ...monotonicity import Trend, shape_statistic
from .alpha_trends import POPULATIONS, Cloud
from .baselines import Fidelity
from .layers import MEASURES

UNTESTABLE = "untestable here: no trained network's layer below the bound"
SHAPE_SETTINGS = ("alpha_window", "width_grid", "weight_decays", "readout_epochs")  # the trained networks, readouts
TRAINED_SET = "the trained networks' layers ({n} networks, alpha {a_lo:.2f}-{a_hi:.2f}; intervals resample networks)"
SIDES = (
    "two lines of {measure} against alpha, split at the two-lines breakpoint, over " + TRAINED_SET + "; estimate: "
    "the weaker side's slope, signed by the stronger side's"
)
SHAPES = {  # claim -> (measure, what the claim says, the shape claimed: shape_statistic's want)
    "gaussian_monotonic": (
        "gaussian_rel",
        "Under Gaussian noise, accuracy is a monotonic function of alpha",
        "monotonic",
    ),
    "fgsm_nonmonotonic": ("fgsm_rel", "Under FGSM, accuracy is a non-monotonic function of alpha", "non-monotonic"),
}
SIGN_MEANING = {
    "monotonic": " (> 0: both sides go one way, monotonic; < 0: they go opposite ways, an extremum)",
    "non-monotonic": " (< 0: the sides go opposite ways, an interior extremum; > 0: both go one way, monotonic)",
}

DECLARED = declared(
    Declared(
        "ch01.local_vs_backprop",
        PAPER,
        "A deep MLP trained by local errors generalizes: its top classifier is within {tol:g} of the backprop MLP's",
        "test accuracy, backprop minus local (paired bootstrap over test points)",
        threshold=math.nan,
        above=False,  # the threshold is the parameter gap_tolerance
        settings=("gap_tolerance", "readout_scale", "anneal_epochs"),
        null=0.02,
        sesoi=0.01,
        depends=False,
        why="0.01 of accuracy: a point of accuracy; null: the tolerance gap_tolerance 0.02 of every profile",
        section="ch01-fidelity",
    ),
    *(
        decl
        for pop, who in POPULATIONS.items()
        for decl in (
            Declared(
                f"ch01.clean_alpha_trained_{pop}",
                PAPER if pop == "local" else CONTROL,
                f"High generalization accuracy requires a fast spectral decay, large alpha ({who})",
                "Spearman(alpha, clean accuracy of the layer's fitted readout) over " + TRAINED_SET,
                threshold=0.0,
                above=True,
                settings=SHAPE_SETTINGS,
                scale=FISHER_Z,
                sesoi=0.1,
                depends=False,
                why="0.1 of a rank correlation: below it alpha explains under 1% of the rank variance",
                section="ch01-accuracy-alpha",
            ),
            *(
                Declared(
                    f"ch01.{name}_trained_{pop}",
                    PAPER if pop == "local" else CONTROL,
                    f"{says} ({who})",
                    SIDES.replace("{measure}", MEASURES[measure]) + SIGN_MEANING[want],
                    threshold=0.0,
                    above=want == "monotonic",
                    settings=(*SHAPE_SETTINGS, "epsilons"),
                    sesoi=0.1,
                    depends=False,
                    why="0.1 of relative accuracy per unit alpha: a point per tenth of alpha, the scale of 2/d in "
                    "the bound",
                    section="ch01-accuracy-alpha",
                )
                for name, (measure, says, want) in SHAPES.items()
            ),
        )
    ),
    Declared(
        "ch01.smoothness_bound_trained",
        PAPER,
        "Smoothness: layers with alpha > 1 + 2/d = {bound:.3g} (TwoNN d = {d:.3g}) are more robust to FGSM "
        "than layers below it",
        "mean FGSM accuracy / clean accuracy above minus below the bound, trained networks' layers "
        "({n_above} vs {n_below}; the interval resamples networks)",
        threshold=0.0,
        above=True,
        settings=(*SHAPE_SETTINGS, "epsilons", "id_points"),
        sesoi=0.01,
        depends=False,
        why="0.01 of relative accuracy: a point of accuracy is the smallest gap the book reports",
        section="ch01-smoothness-bound",
    ),
    Declared(
        "ch01.local_beats_pixels",
        CONTROL,
        "[book, fidelity] The local-error network's top classifier beats a logistic regression on raw pixels",
        "test accuracy, local minus tuned pixel logistic regression (paired bootstrap over test points)",
        threshold=0.0,
        above=True,
        settings=("logistic_l2",),
        sesoi=0.01,
        why="0.01 of accuracy: a point of accuracy (depends: how far a linear model gets varies with the data)",
        section="ch01-fidelity",
    ),
    Declared(
        "ch01.no_gradient_crosses_layers",
        CHECK,
        "Local errors: each block's loss moves its own parameters and no other block's",
        "largest |gradient| of a block's loss w.r.t. another block's parameters (must be 0; own blocks > 0)",
        section="ch01-fidelity",
    ),
    Declared(
        "ch01.readouts_stay_fixed",
        CHECK,
        "Local errors: the fixed random readouts B_l are still their initial draw after training",
        "readouts equal to a fresh draw from the same seed",
        section="ch01-fidelity",
    ),
)


def sides_text(t: Trend) -> str:
    """The two side slopes with their intervals and the breakpoint, for a value cell."""
    return (
        f"left {fmt(t.left_slope, t.left_ci, 2)}, right {fmt(t.right_slope, t.right_ci, 2)} "
        f"(break at alpha {t.breakpoint:.3g})"
    )


def shape_row(name: str, pop: str, cloud: Cloud) -> Claim:
    """One shape claim's row: decided by :func:`shape_statistic`'s interval against 0, recorded as that number."""
    measure, _, want = SHAPES[name]
    t = cloud.trends[measure]
    est, lo, hi = shape_statistic(t, want)
    words = dict(n=cloud.n_networks, a_lo=cloud.alpha_range[0], a_hi=cloud.alpha_range[1])
    value = f"{fmt(est, (lo, hi), 2)}; {sides_text(t)}"
    return DECLARED[f"{name}_trained_{pop}"].interval(est, lo, hi, value=value, **words)


def claims(
    cfg: SimpleNamespace, clouds: dict[str, Cloud], fid: Fidelity, d: float, split, alpha_min: float
) -> list[Claim]:
    """The chapter's paper claims and controls with ids, numeric statistics and computed verdicts.

    ``clouds`` maps a population (see POPULATIONS) to its trends over trained networks;
    claims 2-4 get one row per population. ``split`` is :func:`bound_split`'s result at
    ``1 + 2/d``; ``alpha_min`` the lowest alpha of a trained network's layer.
    """
    tol = cfg.gap_tolerance
    gap, gap_ci = fid.backprop_minus_local
    rows = [replace(DECLARED["local_vs_backprop"], threshold=tol).interval(gap, *gap_ci, tol=tol)]
    for pop, cloud in clouds.items():
        c = cloud.trends["clean"]
        words = dict(n=cloud.n_networks, a_lo=cloud.alpha_range[0], a_hi=cloud.alpha_range[1])
        rows.append(DECLARED[f"clean_alpha_trained_{pop}"].interval(c.spearman, *c.spearman_ci, digits=2, **words))
        rows += [shape_row(name, pop, cloud) for name in SHAPES]
    diff, diff_ci, n_above, n_below = split
    words = dict(bound=1 + 2 / d, d=d, n_above=n_above, n_below=n_below)
    smooth = DECLARED["smoothness_bound_trained"]
    if n_below == 0:
        rows.append(smooth.tested(INCONCLUSIVE, f"{UNTESTABLE} (lowest alpha {alpha_min:.3g})", **words))
    else:
        value = None if np.isfinite(diff) else "no layer above the bound"
        rows.append(smooth.interval(diff, *diff_ci, value=value, **words))
    lm, lm_ci = fid.local_minus_logistic
    rows.append(DECLARED["local_beats_pixels"].interval(lm, *lm_ci))
    return rows


def mechanism_checks(gradients: torch.Tensor, readouts_fixed: bool) -> list[Claim]:
    """The local-error mechanism as check rows: no gradient crosses blocks, the readouts are never trained.

    ``gradients`` is :func:`lib.local_errors.cross_layer_gradients`' matrix (loss x block).
    """
    g = gradients.abs()
    off = float((g - torch.diag(torch.diag(g))).max())
    own = float(torch.diag(g).min())
    crossing = DECLARED["no_gradient_crosses_layers"]
    return [
        crossing.tested(HOLDS if off == 0 and own > 0 else FAILS, f"off-block {off:.3g}, own blocks >= {own:.3g}", off),
        DECLARED["readouts_stay_fixed"].tested(HOLDS if readouts_fixed else FAILS, str(readouts_fixed)),
    ]


def scalars(
    table: pd.DataFrame, fid: Fidelity, clouds: dict[str, Cloud], d: float, trajectory: pd.DataFrame, movement
) -> dict:
    """The run's numbers worth keeping beside its claims (what the notebook records), descriptive ones included."""
    bound = 1 + 2 / d
    trs = {p: c.trends for p, c in clouds.items()}
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
        group_local_top_accuracy=fid.group_local_top,
        group_local_minus_logistic=fid.group_minus_logistic[0],
        class_share_top_min=table[table.kind == "base"].class_top.min(),
        **{f"trained_alpha_{e}_{p}": c.alpha_range[i] for p, c in clouds.items() for i, e in enumerate(("min", "max"))},
        **{f"spearman_{m}_{p}": trs[p][m].spearman for p in trs for m in MEASURES},
        **{f"slope_left_{m}_{p}": trs[p][m].left_slope for p in trs for m in MEASURES},
        **{f"slope_right_{m}_{p}": trs[p][m].right_slope for p in trs for m in MEASURES},
        **{f"trajectory_spearman_{m}": trajectory.at[m, "Spearman along the trajectory"] for m in trajectory.index},
        **{f"epoch_change_{m}_{c}": v for m, row in movement.iterrows() for c, v in row.items() if np.isfinite(v)},
    )
