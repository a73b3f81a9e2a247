"""Chapter 5's claims, each declared once below, and this run's rows (:func:`claims`) and numbers (:func:`scalars`).

Every claim is the book's own (the papers never measured one population through all four
lenses), so every kind is CONTROL: the book's extension of a paper's explanation to
networks it was not made on. A lens's claims read "larger is more (or less) robust" by
the sign its paper predicts (:data:`lib.chapters.ch05.lenses.LENSES`).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from ...claims import CONTROL, FAILS, HOLDS, INCONCLUSIVE, Claim, Declared, by_interval, declared, fmt
from ...manifold import LEARNED_PARAMS
from ...monotonicity import direction_verdict, trend
from .association import abs_rho_difference, robustness_row
from .lenses import LENSES, ROBUSTNESS, ROBUSTNESS_LABEL, Probe
from .population import METHODS

__all__ = ["NO_CHANGE", "NO_LINK", "NO_GAIN", "PAPERS", "DIRECTED", "BEAT_ALPHA", "DECLARED", "claims", "scalars"]

# ---------------------------------------------------------------- thresholds
NO_CHANGE = 0.0  # mean change (adversarial minus backprop, matched networks) of robustness or of a lens
NO_LINK = 0.0  # Spearman rho of a lens with robustness
NO_GAIN = 0.0  # |rho| of a lens with robustness minus |rho| of alpha

PAPERS = {
    1: "Jiang et al. (chapter 1)",
    2: "Shamir et al. (chapter 2)",
    3: "Lee & Vijayan (chapter 3)",
    4: "Melamed et al. (chapter 4)",
}
DIRECTED = tuple(lens for lens, (_, _, sign) in LENSES.items() if sign)  # the lenses whose paper predicts a sign
BEAT_ALPHA = ("tangent_share", "perp_share")  # the shares that might predict robustness better than alpha

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
    "flip_steps",
    "bisection_steps",
    "n_boot",
)  # the population, robustness, intervals
LENS_SETTINGS = {
    "alpha": ("alpha_window",),
    "tangent_share": tuple(LEARNED_PARAMS),
    "on_off_ratio": tuple(LEARNED_PARAMS),
    "homogeneity_shallow": ("som_grid", "som_sigma", "som_epochs"),
    "perp_share": ("pca_variance",),
    "perp_par_ratio": ("pca_variance",),
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
            f"Spearman rho with the {ROBUSTNESS_LABEL}, over networks (cluster bootstrap)",
            NO_LINK,
            above,
            settings,
        ),
        Declared(
            f"ch05.{lens}_beyond_accuracy",
            CONTROL,
            "[book] ... also at equal clean accuracy",
            "the same rho, partial on clean accuracy",
            NO_LINK,
            above,
            settings,
        ),
        Declared(
            f"ch05.{lens}_within_methods",
            CONTROL,
            "[book] ... also within each training method",
            "Spearman rho with ranks taken within each method (stratified cluster bootstrap)",
            NO_LINK,
            above,
            settings,
        ),
    )


DECLARED = declared(
    Declared(
        "ch05.at_robust",
        CONTROL,
        "[book] PGD adversarial training makes networks more robust (the population spans robustness)",
        f"mean change of the {ROBUSTNESS_LABEL}, adversarial minus backprop (same condition and seed)",
        NO_CHANGE,
        settings=EVERY,
    ),
    *(d for lens in DIRECTED for d in _lens_claims(lens)),
    Declared(
        "ch05.alpha_nonmonotonic",
        CONTROL,
        "[book] Robustness is a non-monotonic function of alpha (as chapter 1's paper finds for FGSM)",
        "shape of the flip norm vs alpha: Spearman + two-lines test (chapter 1's test)",
        settings=EVERY + LENS_SETTINGS["alpha"],
    ),
    *(
        Declared(
            f"ch05.{lens}_beats_alpha",
            CONTROL,
            f"[book] The {LENSES[lens][1]} predicts robustness better than alpha",
            "|rho| of the share minus |rho| of alpha (paired cluster bootstrap)",
            NO_GAIN,
            settings=EVERY + LENS_SETTINGS[lens] + LENS_SETTINGS["alpha"],
        )
        for lens in BEAT_ALPHA
    ),
    Declared(
        "ch05.at_moves_all",
        CONTROL,
        "[book] Adversarial training moves every lens in the direction its paper predicts",
        "lenses whose change (adversarial minus backprop) has its interval on the predicted side",
        NO_CHANGE,
        settings=EVERY + tuple(dict.fromkeys(s for lens in DIRECTED for s in LENS_SETTINGS[lens])),
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
    out.append(
        DECLARED["alpha_nonmonotonic"].tested(
            direction_verdict(t, "non-monotonic"),
            f"{t.shape}; rho {fmt(t.spearman, t.spearman_ci, 2)}",
            t.spearman,
            t.spearman_ci[0],
            t.spearman_ci[1],
        )
    )
    for lens in BEAT_ALPHA:
        d, ci = abs_rho_difference(cfg, table, lens)
        out.append(DECLARED[f"{lens}_beats_alpha"].interval(d, *ci))
    verdicts = [by_interval(shift.loc[c].lo, shift.loc[c].hi, NO_CHANGE, above=LENSES[c][2] > 0) for c in DIRECTED]
    n_ok, n_bad = verdicts.count(HOLDS), verdicts.count(FAILS)
    overall = HOLDS if n_ok == len(verdicts) else FAILS if n_bad else INCONCLUSIVE
    out.append(
        DECLARED["at_moves_all"].tested(
            overall, f"{n_ok} of {len(verdicts)} (opposite side: {n_bad})", n_ok / len(verdicts)
        )
    )
    return out


def scalars(table: pd.DataFrame, probe: Probe, corr: pd.DataFrame) -> dict:
    """Key numbers of the run, named for ``lib.results.record``."""
    out = {
        "networks": len(table),
        "pca_k": probe.pca_k,
        "pca_share": probe.pca_share,
        "ae_explained": probe.ae_explained,
    }
    out.update({f"clean_accuracy_{m}": float(table[table.method == m].clean_accuracy.mean()) for m in METHODS})
    out.update({f"rho_{r.lens}": r.rho for r in corr[corr.robustness == ROBUSTNESS_LABEL].itertuples()})
    return out
