"""Chapter 5's claims, each declared once below, and this run's rows (:func:`claims`) and numbers (:func:`scalars`).

Every claim is the book's own (the papers never measured one population through all four
lenses), so every kind is CONTROL: the book's extension of a paper's explanation to
networks it was not made on; that adversarial training makes networks more robust is a
mechanism check (CHECK) of the population. A lens's claims read "larger is more (or less)
robust" by the sign its paper predicts (:data:`lib.chapters.ch05.lenses.LENSES`), against
a robustness measured on the other half of the test set; a lens measured in a basis must
also beat its permutation null (the same lens with its basis replaced by a random one of
the same dimension), and the shares must beat alpha and the first-order distance.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from ...claims import CHECK, CONTROL, FAILS, FISHER_Z, HOLDS, INCONCLUSIVE, Claim, Declared, by_interval, declared, fmt
from ...manifold import LEARNED_PARAMS
from ...monotonicity import shape_statistic, shape_verdict, trend
from .association import rho_difference, robustness_row
from .lenses import BASIS_LENSES, DIRECTED, FIRST_ORDER, LENSES, NULL, ROBUSTNESS, ROBUSTNESS_LABEL, Probe
from .population import METHODS

__all__ = [
    "NO_CHANGE",
    "NO_LINK",
    "NO_GAIN",
    "PAPERS",
    "DIRECTED",
    "BEAT",
    "DECLARED",
    "SHAPE",
    "claims",
    "lens_moves",
    "scalars",
]

# ---------------------------------------------------------------- thresholds
NO_CHANGE = 0.0  # mean change (adversarial minus backprop, matched networks) of robustness or of a lens
NO_LINK = 0.0  # Spearman rho of a lens with robustness
NO_GAIN = 0.0  # |rho| (or signed rho) of a lens with robustness minus that of its comparator
NO_SLOPE = 0.0  # the side slope of the two-lines test that decides
SHAPE = "non-monotonic"  # the shape chapter 1's paper reports for FGSM, decided by lib.monotonicity.shape_verdict

PAPERS = {
    1: "Jiang et al. (chapter 1)",
    2: "Shamir et al. (chapter 2)",
    3: "Lee & Vijayan (chapter 3)",
    4: "Melamed et al. (chapter 4)",
}
BEAT = ("tangent_share", "perp_share")  # the shares that might predict robustness better than alpha or first order

# ---------------------------------------------------------------- the smallest effects of interest
RHO_SESOI = dict(
    sesoi=0.1, depends=False, why="0.1 of a rank correlation: below it a lens explains under 1% of the rank variance"
)
GAIN_SESOI = dict(sesoi=0.1, depends=False, why="0.1 of a rank correlation, as for the lenses themselves")

# ---------------------------------------------------------------- the book-chosen settings a claim depends on
EVERY = (
    "epochs",
    "epoch_grid",
    "width_grid",
    "init_scales",
    "weight_decays",
    "n_seeds",
    "at_eps",
    "at_steps",
    "n_eval",
    "flip_eps_max",
    "fmn_steps",
    "n_boot",
)  # the population, robustness, intervals
LENS_SETTINGS = {
    "alpha": ("alpha_window",),
    "tangent_share": tuple(LEARNED_PARAMS),
    "on_random_flip": tuple(LEARNED_PARAMS),
    "homogeneity_shallow": ("som_grid", "som_sigma", "som_epochs"),
    "perp_share": ("pca_variance",),
    "par_random_flip": ("pca_variance",),
    FIRST_ORDER: (),
}


def _lens_claims(lens: str) -> tuple[Declared, ...]:
    """The three claims of a lens whose paper predicts a sign: across networks, at equal accuracy, within methods."""
    chapter, label, sign = LENSES[lens]
    above, settings = sign > 0, EVERY + LENS_SETTINGS[lens]
    return (
        Declared(
            f"ch05.{lens}_predicts",
            CONTROL,
            f"[book] Networks with a larger {label} are {'more' if above else 'less'} robust ({PAPERS[chapter]})",
            f"Spearman rho with the {ROBUSTNESS_LABEL} (other half of the test set), over networks (cluster bootstrap)",
            NO_LINK,
            above,
            settings,
            scale=FISHER_Z,
            **RHO_SESOI,
            section="ch05-lenses",
        ),
        Declared(
            f"ch05.{lens}_beyond_accuracy",
            CONTROL,
            "[book] ... also at equal clean accuracy",
            "the same rho, partial on clean accuracy",
            NO_LINK,
            above,
            settings,
            scale=FISHER_Z,
            **RHO_SESOI,
            section="ch05-lenses",
        ),
        Declared(
            f"ch05.{lens}_within_methods",
            CONTROL,
            "[book] ... also within each training method",
            "Spearman rho with ranks taken within each method (stratified cluster bootstrap)",
            NO_LINK,
            above,
            settings,
            scale=FISHER_Z,
            **RHO_SESOI,
            section="ch05-lenses",
        ),
    )


DECLARED = declared(
    Declared(
        "ch05.at_robust",
        CHECK,
        "PGD adversarial training makes networks more robust (the population spans robustness)",
        f"mean change of the {ROBUSTNESS_LABEL}, adversarial minus backprop (same condition and seed)",
        NO_CHANGE,
        settings=EVERY,
        section="ch05-adversarial-training",
    ),
    *(d for lens in DIRECTED for d in _lens_claims(lens)),
    Declared(
        "ch05.alpha_interior_extremum",
        CONTROL,
        "[book] Robustness is a non-monotonic function of alpha, with an interior extremum (as chapter 1's paper "
        "finds for FGSM)",
        "two-lines test of the flip norm on alpha (chapter 1's breakpoint): the side slope whose interval lies "
        "nearer 0 (it decides), signed + where it goes the same way as the other side's slope, - where it goes "
        "the opposite way; holds below 0 (both sides exclude 0, with opposite signs), does not hold above 0 "
        "(both exclude 0 with one sign: monotonic), else inconclusive (no extremum detected is no evidence of "
        "monotonicity)",
        NO_SLOPE,
        above=False,
        settings=EVERY + LENS_SETTINGS["alpha"],
        sesoi=0.1,
        depends=False,
        why="0.1 of flip norm per unit alpha: a hundredth of one pixel's range per tenth of alpha, as in chapter 1",
        section="ch05-lenses",
    ),
    *(
        Declared(
            f"ch05.{lens}_beats_alpha",
            CONTROL,
            f"[book] The {LENSES[lens][1]} predicts robustness better than alpha",
            "|rho| of the share minus |rho| of alpha (paired cluster bootstrap)",
            NO_GAIN,
            settings=EVERY + LENS_SETTINGS[lens] + LENS_SETTINGS["alpha"],
            **GAIN_SESOI,
            section="ch05-lenses",
        )
        for lens in BEAT
    ),
    *(
        Declared(
            f"ch05.{lens}_beats_first_order",
            CONTROL,
            f"[book] The {LENSES[lens][1]} predicts robustness better than the first-order distance "
            "|margin| / ||grad margin|| on the same images",
            "|rho| of the share minus |rho| of the first-order distance (paired cluster bootstrap)",
            NO_GAIN,
            settings=EVERY + LENS_SETTINGS[lens],
            **GAIN_SESOI,
            section="ch05-lenses",
        )
        for lens in BEAT
    ),
    *(
        Declared(
            f"ch05.{lens}_beats_null",
            CONTROL,
            f"[book] The {LENSES[lens][1]} predicts robustness because of its basis: better than the same lens with "
            "its basis replaced by a random one of the same dimension (its permutation null)",
            "rho of the lens minus rho of its null, times the predicted sign (paired cluster bootstrap)",
            NO_GAIN,
            settings=EVERY + LENS_SETTINGS[lens],
            **GAIN_SESOI,
            section="ch05-lenses",
        )
        for lens in BASIS_LENSES
    ),
    Declared(
        "ch05.at_moves_lenses_as_predicted",
        CONTROL,
        "[book] Adversarial training moves more lenses in the directions their papers predict than against them",
        "net share of the six lenses whose sign a paper predicts: those whose change (adversarial minus backprop) has "
        "its interval on the predicted side, minus those with it on the other side, over six; holds if > 0",
        NO_CHANGE,
        settings=EVERY + tuple(dict.fromkeys(s for lens in DIRECTED for s in LENS_SETTINGS[lens])),
        sesoi=1 / 6,
        depends=False,
        why="1/6 of the lenses: one of the six whose sign a paper predicts, the least a run can show",
        section="ch05-adversarial-training",
    ),
)


def claims(cfg: SimpleNamespace, table: pd.DataFrame, corr: pd.DataFrame, shift: pd.DataFrame) -> list[Claim]:
    """The book's own claims about the four lenses, every verdict computed from this run (records nothing)."""
    adv = shift.loc[ROBUSTNESS]
    out = [DECLARED["at_robust"].interval(adv["mean change"], adv.lo, adv.hi)]
    for lens in DIRECTED:
        r = robustness_row(corr, lens)
        out += [
            DECLARED[f"{lens}_predicts"].interval(r.rho, r.lo, r.hi),
            DECLARED[f"{lens}_beyond_accuracy"].interval(r["partial rho"], r["partial lo"], r["partial hi"]),
            DECLARED[f"{lens}_within_methods"].interval(r["within rho"], r["within lo"], r["within hi"]),
        ]
    t = trend(table.alpha, table[ROBUSTNESS], n_boot=cfg.n_boot, rng=np.random.default_rng(cfg.seed + 3))
    est, lo, hi = shape_statistic(t, SHAPE)
    out.append(
        DECLARED["alpha_interior_extremum"].tested(
            shape_verdict(t, SHAPE),
            f"{fmt(est, (lo, hi), 3)}; slopes left {fmt(t.left_slope, t.left_ci, 2)}, right "
            f"{fmt(t.right_slope, t.right_ci, 2)} at alpha {t.breakpoint:.2f}",
            est,
            lo,
            hi,
        )
    )
    for lens in BEAT:
        d, ci = rho_difference(cfg, table, lens, "alpha")
        out.append(DECLARED[f"{lens}_beats_alpha"].interval(d, *ci))
    for lens in BEAT:
        d, ci = rho_difference(cfg, table, lens, FIRST_ORDER)
        out.append(DECLARED[f"{lens}_beats_first_order"].interval(d, *ci))
    for lens in BASIS_LENSES:
        d, ci = rho_difference(cfg, table, lens, NULL[lens], absolute=False, sign=LENSES[lens][2])
        out.append(DECLARED[f"{lens}_beats_null"].interval(d, *ci))
    n_ok, n_bad, n = lens_moves(shift)
    overall = HOLDS if n_ok > n_bad else FAILS if n_bad > n_ok else INCONCLUSIVE
    out.append(
        DECLARED["at_moves_lenses_as_predicted"].tested(
            overall, f"{n_ok} of {n} as predicted, {n_bad} against", (n_ok - n_bad) / n
        )
    )
    return out


def lens_moves(shift: pd.DataFrame) -> tuple[int, int, int]:
    """How many of the lenses whose sign a paper predicts adversarial training moves that way (the change's interval
    on the predicted side), how many the other way, and how many there are."""
    verdicts = [by_interval(shift.loc[c].lo, shift.loc[c].hi, NO_CHANGE, above=LENSES[c][2] > 0) for c in DIRECTED]
    return verdicts.count(HOLDS), verdicts.count(FAILS), len(verdicts)


def scalars(table: pd.DataFrame, probe: Probe, corr: pd.DataFrame, matrix: pd.DataFrame | None = None) -> dict:
    """Key numbers of the run, named for ``lib.results.record`` (descriptive: they decide nothing)."""
    out = {
        "networks": len(table),
        "pca_k": probe.pca_k,
        "pca_share": probe.pca_share,
        "ae_explained": probe.ae_explained,
        "lens_images": len(probe.x),
        "robustness_images": len(probe.x_robust),
        "flipped_share": float(table.flipped_share.mean()),
        "restricted_unflipped_share": float(table.restricted_unflipped_share.mean()),
    }
    out.update({f"clean_accuracy_{m}": float(table[table.method == m].clean_accuracy.mean()) for m in METHODS})
    out.update({f"rho_{r.lens}": r.rho for r in corr[corr.robustness == ROBUSTNESS_LABEL].itertuples()})
    y = table[ROBUSTNESS]
    out.update({f"rho_{col}": float(table[col].corr(y, method="spearman")) for col in NULL.values()})
    if matrix is not None:
        out["rho_tangent_share_perp_share"] = float(matrix.loc["tangent_share", "perp_share"])
    return out
