"""Chapter 4's claims, declared once, the rows of this run, and its key numbers.

Three kinds of row. The paper's claims, each against its null: "large" orthogonal gradients
against the untrained network of the same width at the same points; "small" orthogonal
flips against the data scale (the flip distance over ||x||, its slope in d - k at a radius
growing as sqrt(d), beside the same slope within P and for the untrained network), both
with their dependence on the data radius. The book's controls: the untrained-network
comparison of the flip distance, and the chessboard's linear plane z=0. Checks of the
mechanism that any correct implementation must show (plain GD leaves the orthogonal
weights frozen, Adam does not, and the orthogonal gradient and its exponents follow the
book's derivation): asserted in the notebook, tested, never counted as findings. The
in-subspace comparisons the claims were once judged by (orthogonal over in-P gradient and
flip distance, ratios that grow with the data radius) are descriptive numbers (:func:`scalars`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ...claims import CHECK, CONTROL, INCONCLUSIVE, LOG, PAPER, Claim, Declared, assert_checks, by_test, declared, fmt
from .networks import ratio_ci
from .scaling import RATIOS, sweep_key
from .synthetic import AFFINE

__all__ = ["ADAM_MOVES", "DECLARED", "DRIFT_TOL", "EQUIVALENCE", "agreement_verdict", "claims", "scalars", "scale_rows"]

# Thresholds of the decisions.
DRIFT_TOL = 1e-3  # relative drift of frozen weights: float32 rounding gives ~1e-5 after 10^4 steps (the notebook's TOL)
ADAM_MOVES = 1e-2  # median relative drift above which Adam has moved the orthogonal weights (it is ~0.5)
EQUIVALENCE = 0.1  # |measured - predicted| exponent (and law ratio - 1) the book accepts as agreement
EVEN = 1.0  # a ratio of distances, gradients or gains at which neither side is larger
MOST = 0.5  # "most training points": more than half
FLAT = 0.0  # a log-log slope with no trend

# The book-chosen settings the figure claims depend on.
DIAGONAL_SETTINGS = ("figure_seeds", "diagonal_steps")
CHESSBOARD_SETTINGS = ("figure_seeds", "chessboard_steps")
FITTED = "{fitted} of {seeds} seeds whose networks all fit their points, 95% CI"
EXPONENT_STATISTIC = (
    f"log-log slope, mean [95% CI] over seeds, vs prediction; agreement within +-{EQUIVALENCE} "
    "on (measured - predicted)"
)


def _exponent(short: str, what: str, *settings: str) -> Declared:
    """The row of one sweep (id ``ch04.exponent_<short>``): its exponent follows the derivation."""
    return Declared(
        f"ch04.exponent_{short}",
        CHECK,
        f"[book] exponent of ||grad_perp f|| in {what} follows the derivation",
        EXPONENT_STATISTIC,
        threshold=EQUIVALENCE,
        above=False,
        settings=settings,
        section="ch04-scaling",
    )


DECLARED = declared(
    Declared(
        "ch04.frozen_orthogonal_weights",
        CHECK,
        "[book] plain GD never moves the P-perp part of the first-layer weights (c_T times it with L2)",
        "max relative drift over every GD network of the chapter (float32)",
        threshold=DRIFT_TOL,
        above=False,
        section="ch04-mechanism",
    ),
    Declared(
        "ch04.adam_moves_orthogonal_weights",
        CHECK,
        "[book] Adam moves it when P is not axis-aligned, and not when it is",
        "median drift, Adam on a random P / max drift, Adam on an axis-aligned P",
        threshold=ADAM_MOVES,
        section="ch04-mechanism",
    ),
    Declared(
        "ch04.orthogonal_gradient_law",
        CHECK,
        "[book] E||grad_perp f(x)||^2 = c_T^2 sigma_w^2 (d-k) S(x) at data points",
        "mean of measured / predicted squared norm over all networks of the chapter, 95% CI; "
        f"agreement within +-{EQUIVALENCE}",
        threshold=EQUIVALENCE,
        above=False,
        section="ch04-mechanism",
    ),
    Declared(
        "ch04.orthogonal_gradient_vs_untrained",
        PAPER,
        "Trained networks have large gradients orthogonal to the data subspace",
        "median ||grad_perp f|| of the trained network / that of its untrained initialisation (same width, "
        "same points), geometric mean [95% CI] over seeds; holds if > 1. Radius dependence (radius sweep): "
        "log-log slope {radius_slope:+.2f} [{radius_lo:+.2f}, {radius_hi:+.2f}], {first:.2f} at radius "
        "{r_first:g} to {last:.2f} at {r_last:g}",
        threshold=EVEN,
        settings=("radius", "sweep_radius"),
        sesoi=1.1,
        scale=LOG,
        depends=False,
        why="a ratio of 1.1: a 10% change of a gradient norm is the smallest the book reads as one",
        section="ch04-gradients",
    ),
    Declared(
        "ch04.orthogonal_flip_small",
        PAPER,
        "Small L2 perturbations orthogonal to P flip labels",
        "log-log slope in d-k of the median P-perp flip distance / ||x||, the data radius growing as sqrt(d) "
        "(d = {ds}), mean [95% CI] over seeds; holds if < 0 (small against the data scale as the dimension "
        "grows). Same slope within P: {par:+.2f}; untrained network of the same width: {untrained:+.2f}. "
        "At d={d}, radius {radius:g}: {level:.2f} ||x|| (within P {level_par:.2f}, untrained {level0:.2f}); "
        "radius dependence: slope {radius_slope:+.2f} in the radius",
        threshold=FLAT,
        above=False,
        settings=("radius", "sweep_d"),
        sesoi=0.1,
        depends=False,
        why="0.1 of a log-log slope: the book's tolerance on exponents; doubling x moves the distance < 7%",
        section="ch04-data-scale",
    ),
    Declared(
        "ch04.orthogonal_flip_vs_untrained",
        CONTROL,
        "Trained networks are no harder to flip orthogonally to P than untrained ones of the same width",
        "median P-perp flip distance of the trained network / that of its untrained initialisation at the "
        "same points, geometric mean [95% CI] over seeds; holds if < 1. Its log-log slope in d-k (radius "
        "~ sqrt(d)): {slope:+.2f}; in the radius: {radius_slope:+.2f}",
        threshold=EVEN,
        above=False,
        settings=("radius", "sweep_d", "sweep_radius"),
        sesoi=1.1,
        scale=LOG,
        depends=False,
        why="a ratio of 1.1: a 10% change of a flip distance is the smallest the book reads as one",
        section="ch04-flips",
    ),
    Declared(
        "ch04.universal_direction",
        PAPER,
        "One universal orthogonal direction flips most training points",
        "fraction flipped at norm {norm:.2g} (random P-perp direction: {random:.2f}); holds if > 0.5",
        threshold=MOST,
        settings=("radius", "universal_fraction"),
        sesoi=0.01,
        depends=False,
        why="0.01 of a share: a percentage point is the smallest gap of shares the book reports",
        section="ch04-flips",
    ),
    Declared(
        "ch04.small_init_robust",
        PAPER,
        "A smaller initialisation makes the network more robust orthogonally to P",
        "log-log slope of the P-perp flip distance in the init scale; holds if < 0",
        threshold=FLAT,
        above=False,
        settings=("sweep_init_scale",),
        sesoi=0.1,
        depends=False,
        why="0.1 of a log-log slope: the book's tolerance on exponents; doubling x moves the distance < 7%",
        section="ch04-scaling",
    ),
    Declared(
        "ch04.weight_decay_robust",
        PAPER,
        "L2 regularisation makes the network more robust orthogonally to P",
        "log-log slope of the P-perp flip distance in the decay factor c_T; holds if < 0",
        threshold=FLAT,
        above=False,
        settings=("sweep_weight_decay", "steps"),
        sesoi=0.1,
        depends=False,
        why="0.1 of a log-log slope: the book's tolerance on exponents; doubling x moves the distance < 7%",
        section="ch04-scaling",
    ),
    Declared(
        "ch04.diagonal_small_init_gain",
        PAPER,
        "Diagonal figure: small init makes labels harder to flip perpendicular to the diagonal",
        "small init / vanilla median exact flip distance perpendicular to the diagonal, geometric mean over "
        f"the {FITTED}; holds if > 1",
        threshold=EVEN,
        settings=DIAGONAL_SETTINGS + ("diagonal_small_init_factor",),
        sesoi=1.1,
        scale=LOG,
        depends=False,
        why="a ratio of 1.1: a 10% change of a flip distance is the smallest the book reads as one",
        section="ch04-figures",
    ),
    Declared(
        "ch04.diagonal_weight_decay_gain",
        PAPER,
        "Diagonal figure: weight decay makes labels harder to flip perpendicular to the diagonal",
        "weight decay / vanilla median exact flip distance perpendicular to the diagonal, geometric mean over "
        f"the {FITTED}; holds if > 1",
        threshold=EVEN,
        settings=DIAGONAL_SETTINGS + ("diagonal_weight_decay",),
        sesoi=1.1,
        scale=LOG,
        depends=False,
        why="a ratio of 1.1: a 10% change of a flip distance is the smallest the book reads as one",
        section="ch04-figures",
    ),
    Declared(
        "ch04.chessboard_small_init_gain",
        PAPER,
        f"Chessboard figure: small init makes labels harder to flip off the plane {AFFINE}",
        f"small init / vanilla median exact flip distance off the plane {AFFINE}, geometric mean over "
        f"the {FITTED}; holds if > 1",
        threshold=EVEN,
        settings=CHESSBOARD_SETTINGS + ("chessboard_small_init_factor",),
        sesoi=1.1,
        scale=LOG,
        depends=False,
        why="a ratio of 1.1: a 10% change of a flip distance is the smallest the book reads as one",
        section="ch04-figures",
    ),
    Declared(
        "ch04.chessboard_weight_decay_gain",
        PAPER,
        f"Chessboard figure: weight decay makes labels harder to flip off the plane {AFFINE}",
        f"weight decay / vanilla median exact flip distance off the plane {AFFINE}, geometric mean over "
        f"the {FITTED}; holds if > 1",
        threshold=EVEN,
        settings=CHESSBOARD_SETTINGS + ("chessboard_weight_decay",),
        sesoi=1.1,
        scale=LOG,
        depends=False,
        why="a ratio of 1.1: a 10% change of a flip distance is the smallest the book reads as one",
        section="ch04-figures",
    ),
    Declared(
        "ch04.chessboard_linear_small_init_gain",
        CONTROL,
        "On the chessboard's linear plane z=0 (the paper's setting), small init makes labels harder to flip off it",
        "small init / vanilla median exact flip distance off the plane z=0, geometric mean over "
        f"the {FITTED}; holds if > 1",
        threshold=EVEN,
        settings=CHESSBOARD_SETTINGS + ("chessboard_small_init_factor",),
        sesoi=1.1,
        scale=LOG,
        depends=False,
        why="a ratio of 1.1: a 10% change of a flip distance is the smallest the book reads as one",
        section="ch04-figures",
    ),
    Declared(
        "ch04.affine_plane_weaker",
        CONTROL,
        "The effect is weaker on the chessboard's affine plane than on a linear subspace",
        f"ratio of the small-init robustness gain off the plane {AFFINE} to that off z=0, over the {FITTED}; "
        "holds if < 1",
        threshold=EVEN,
        above=False,
        settings=CHESSBOARD_SETTINGS + ("chessboard_small_init_factor",),
        sesoi=1.1,
        scale=LOG,
        depends=False,
        why="a ratio of 1.1: a 10% change of a robustness gain is the smallest the book reads as one",
        section="ch04-figures",
    ),
    _exponent("d", "d (fan-in init)", "sweep_d"),
    _exponent("d_fixed", "d (fixed init std)", "sweep_d"),
    _exponent("k", "k", "sweep_k"),
    _exponent("width", "width", "sweep_width"),
    _exponent("init_scale", "init scale", "sweep_init_scale"),
    _exponent("weight_decay", "the decay factor c_T (weight-decay sweep)", "sweep_weight_decay", "steps"),
    _exponent("data_radius", "data radius", "sweep_radius"),
)


def agreement_verdict(lo: float, hi: float, tol: float = EQUIVALENCE) -> str:
    """Holds when the CI of (measured - predicted) lies inside [-tol, tol]; fails when it lies outside."""
    if any(math.isnan(v) for v in (lo, hi)):
        return INCONCLUSIVE
    return by_test(-tol <= lo and hi <= tol, hi < -tol or lo > tol)


def assert_mechanisms(rows: list[Claim]) -> str:  # exported by the package
    """:func:`lib.claims.assert_checks`, but an exponent row (an interval over ``n_seeds`` networks at finite d)
    stops the run only when refuted; an inconclusive one is named in the one-line summary instead."""
    open_ = [c for c in rows if c.id.startswith("ch04.exponent_") and c.verdict == INCONCLUSIVE]
    summary = assert_checks([c for c in rows if c not in open_])
    return summary + (f"; inconclusive in this run: {', '.join(c.id.split('.', 1)[1] for c in open_)}" if open_ else "")


def _interval(decl: Declared, est: tuple[float, float, float], digits: int = 2, **fields) -> Claim:
    """``decl``'s row decided by which side of its threshold the interval ``est = (estimate, lo, hi)`` lies."""
    value = fmt(est[0], est[1:], digits) if np.isfinite(est[1]) else f"{est[0]:.{digits}g}"
    return decl.interval(*est, value=value, **fields)


def _fitted_ratio(decl: Declared, ratios: pd.Series) -> Claim:
    """:func:`_interval` on the per-seed ``ratios`` of fitted networks (NaN: a network did not fit).

    With fewer than two such seeds there is no interval, and the claim is inconclusive:
    its value says how many seeds fitted.
    """
    ok = ratios.dropna()
    counts = dict(fitted=len(ok), seeds=len(ratios))
    if len(ok) < 2:
        return decl.tested(INCONCLUSIVE, f"not measured: {len(ok)} of {len(ratios)} seeds fitted", **counts)
    return _interval(decl, ratio_ci(ok), **counts)


def _flip_slope(e: dict) -> tuple[float, float, float]:
    """A sweep's log-log slope of the P-perp flip distance, with its interval."""
    return e["delta_measured"], e["delta_measured_lo"], e["delta_measured_hi"]


def _exponent_row(e: dict) -> Claim:
    """One sweep's row: measured exponent of ||grad_perp f|| vs the derivation's."""
    value = (
        f"{fmt(e['measured'], (e['measured_lo'], e['measured_hi']), 2)} vs "
        f"{e['predicted']:.2f} (closed-form part {e['structural']:.2f})"
    )
    return DECLARED[f"exponent_{sweep_key(e['sweep'])}"].tested(
        agreement_verdict(e["diff_lo"], e["diff_hi"]), value, e["diff"], e["diff_lo"], e["diff_hi"]
    )


def _slope_est(sl: dict, col: str) -> tuple[float, float, float]:
    """A :func:`~.scaling.ratio_slopes` slope with its interval."""
    return sl[col], sl[col + "_lo"], sl[col + "_hi"]


def scale_rows(flips: dict, scale: dict, cfg) -> list[Claim]:
    """The two non-robustness claims and the untrained-network control, judged against the data scale.

    ``flips`` is :func:`~.main_runs.flip_summary` of the main runs; ``scale`` holds
    :func:`~.scaling.ratio_slopes` of the data-scale sweep (``"d"``, x = d - k) and of the radius
    sweep (``"radius"``); ``cfg`` gives the chapter's d and radius.
    """
    C, by_d, by_r = DECLARED, scale["d"], scale["radius"]
    lv = by_r["levels"].grad_gain
    grad = _interval(
        C["orthogonal_gradient_vs_untrained"],
        flips["grad_gain"],
        radius_slope=by_r["grad_gain"],
        radius_lo=by_r["grad_gain_lo"],
        radius_hi=by_r["grad_gain_hi"],
        first=lv.iloc[0],
        last=lv.iloc[-1],
        r_first=lv.index[0],
        r_last=lv.index[-1],
    )
    small = _interval(
        C["orthogonal_flip_small"],
        _slope_est(by_d, "rel_perp"),
        ds=", ".join(str(int(v)) for v in by_d["levels"].index + cfg.k),
        par=by_d["rel_par"],
        untrained=by_d["rel_perp0"],
        d=cfg.d,
        radius=cfg.radius,
        level=flips["rel_perp"][0],
        level_par=flips["rel_par"][0],
        level0=flips["rel_perp0"][0],
        radius_slope=by_r["rel_perp"],
    )
    untrained = _interval(
        C["orthogonal_flip_vs_untrained"],
        flips["flip_gain"],
        slope=by_d["flip_gain"],
        radius_slope=by_r["flip_gain"],
    )
    return [grad, small, untrained]


def claims(
    flips: dict,
    law: tuple[float, float, float],
    drift_gd: float,
    optim: pd.DataFrame,
    exps: list[dict],
    gain: pd.DataFrame,
    tol: float,
    figure_gains: dict[str, pd.DataFrame],
    scale: dict,
    cfg,
) -> list[Claim]:
    """The chapter's claims table, every verdict computed from the run (no side effect).

    ``tol`` is the drift a frozen weight may show in float32 (the notebook's ``TOL``, :data:`DRIFT_TOL`).
    ``figure_gains`` maps ``"diagonal"`` and ``"chessboard"`` to :func:`~.synthetic.robustness_gains`
    of the two synthetic figures (the chessboard's on its plane z=0.5); ``scale`` and ``cfg`` as in
    :func:`scale_rows`.
    """
    by_name = {e["sweep"]: e for e in exps}
    adam_rand = float(optim.query("optimizer == 'adam' and subspace == 'random'").drift.median())
    adam_axis = float(optim.query("optimizer == 'adam' and subspace == 'axis-aligned'").drift.max())
    init, wd = by_name["init scale"], by_name["weight decay"]
    C = DECLARED
    rows = [
        C["frozen_orthogonal_weights"].tested(by_test(drift_gd < tol, drift_gd >= tol), f"{drift_gd:.1e}", drift_gd),
        C["adam_moves_orthogonal_weights"].tested(
            by_test(adam_rand > ADAM_MOVES and adam_axis < tol, adam_rand <= ADAM_MOVES or adam_axis >= tol),
            f"{adam_rand:.2g} / {adam_axis:.1e}",
            adam_rand,
        ),
        C["orthogonal_gradient_law"].tested(agreement_verdict(law[1] - 1, law[2] - 1), fmt(law[0], law[1:], 3), *law),
        *scale_rows(flips, scale, cfg),
        _interval(
            C["universal_direction"],
            flips["univ_flipped"],
            norm=flips["universal_norm"],
            random=flips["rand_flipped"][0],
        ),
        _interval(C["small_init_robust"], _flip_slope(init)),
        _interval(C["weight_decay_robust"], _flip_slope(wd)),
    ]
    for fig in ("diagonal", "chessboard"):
        for variant, short in (("small init", "small_init"), ("weight decay", "weight_decay")):
            rows.append(_fitted_ratio(C[f"{fig}_{short}_gain"], figure_gains[fig][variant]))
    rows.append(_fitted_ratio(C["chessboard_linear_small_init_gain"], gain["z=0"]))
    rows.append(_fitted_ratio(C["affine_plane_weaker"], gain[AFFINE] / gain["z=0"]))
    return rows + [_exponent_row(e) for e in exps]


def scalars(
    flips: dict, law: tuple, drift: float, exps: list[dict], gain: pd.DataFrame, reach: pd.DataFrame, scale: dict
) -> dict:
    """The scalars a sweep over this chapter collects (see lib.results): the descriptive numbers among them
    (the old in-subspace comparisons ``grad_ratio`` and ``delta_ratio``, the flip distances over the data
    scale, and every :data:`~.scaling.RATIOS` slope in d - k and in the radius) decide nothing."""
    out = {"orthogonal_drift": drift, "universal_norm": flips["universal_norm"], "law_ratio": law[0]}
    for name in RATIOS:
        out[name] = flips[name][0]
        for axis, sl in scale.items():
            out[f"{name}_slope_{axis}"] = sl[name]
    for (fig, plane, variant), r in reach.iterrows():
        out[f"reached_{fig}_{plane}_{variant}".replace(" ", "_").replace("=", "").replace(".", "")] = int(r.reached)
    for name in ("grad_ratio", "delta_ratio", "univ_flipped", "rand_flipped"):
        out[name] = flips[name][0]
    for e in exps:
        key = sweep_key(e["sweep"])
        out[f"slope_{key}"] = e["measured"]
        out[f"predicted_{key}"] = e["predicted"]
        out[f"delta_slope_{key}"] = e["delta_measured"]
    fitted_ratios = (gain[AFFINE] / gain["z=0"]).dropna()  # NaN (recorded null) when no seed fitted
    out["affine_gain_ratio"] = float(np.exp(np.log(fitted_ratios).mean())) if len(fitted_ratios) else math.nan
    return out
