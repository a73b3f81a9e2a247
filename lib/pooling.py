"""Pooled replications: a claim's runs over seeds as one random-effects estimate, and its verdict.

The seed is the unit. Per claim and condition the runs' decision statistics are pooled
on the claim's analysis scale (``identity``; ``fisher_z``: z = atanh(r) for
correlations; ``log`` for ratios): a random-effects mean with the DerSimonian-Laird
between-seed variance tau^2 (DerSimonian & Laird 1986, Controlled Clinical Trials 7:177)
and the Hartung-Knapp interval (Hartung & Knapp 2001, Stat. Med. 20:3875), beside the
plain Student-t interval over the seed estimates. A run's standard error is its own 95% interval's width / 3.92 on the
analysis scale; where a run has none, the t interval over the seeds is the pooled one.

The verdict compares the pooled interval with the band null +- SESOI (the smallest
effect of interest, declared per claim before any verdict is computed with it):
*holds* beyond the band on the predicted side, *opposite* beyond it on the other,
*no effect* inside it, *weak* when it excludes the null on the predicted side but not
the band (*weak, opposite* on the other side), *inconclusive* otherwise; *not measured*
when most runs have no estimate. Across conditions a claim gets the one verdict they
all give, or *depends on the data*, naming each condition's verdict; runs of different
conditions are never pooled together.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from .claims import FISHER_Z, IDENTITY, LOG, SCALES

LEVEL = 0.95
Z_WIDTHS = 3.92  # a 95% normal interval spans 2 x 1.96 standard errors: a run's se is its width / 3.92
NOT_MEASURED_SHARE = 0.8  # at least this share of runs without an estimate: the condition is not measured
R_CLIP = 0.999  # a correlation of exactly +-1 (a perfect ranking of few points) pools as +-0.999 (z = +-3.8)

HOLDS, OPPOSITE, NO_EFFECT = "holds", "opposite", "no effect"
WEAK, WEAK_OPPOSITE, INCONCLUSIVE = "weak", "weak, opposite", "inconclusive"
NOT_MEASURED, DEPENDS = "not measured", "depends on the data"
CONDITION_VERDICTS = (HOLDS, OPPOSITE, NO_EFFECT, WEAK, WEAK_OPPOSITE, INCONCLUSIVE, NOT_MEASURED)


def _array(values: Iterable[float] | float | None, n: int = 0) -> np.ndarray:
    """Values as a float array, None and non-numbers as NaN; None itself as ``n`` NaNs."""
    if values is None:
        return np.full(n, np.nan)
    if np.ndim(values) == 0:
        values = [values]
    out = []
    for v in values:
        try:
            out.append(math.nan if v is None else float(v))
        except (TypeError, ValueError):
            out.append(math.nan)
    return np.asarray(out, dtype=float)


def _check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")


def to_scale(x: Iterable[float] | float, scale: str) -> np.ndarray:
    """Values on the analysis scale: as they are, atanh(r) (r clipped to +-``R_CLIP``), or log (NaN at <= 0)."""
    _check_scale(scale)
    x = _array(x)
    if scale == FISHER_Z:
        return np.arctanh(np.clip(x, -R_CLIP, R_CLIP))
    if scale == LOG:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), np.nan)
    return x


def from_scale(z: Iterable[float] | float, scale: str) -> np.ndarray:
    """Values on the analysis scale back in the statistic's units (tanh, exp or as they are)."""
    _check_scale(scale)
    z = _array(z)
    return np.tanh(z) if scale == FISHER_Z else np.exp(z) if scale == LOG else z


def run_se(lo: Iterable[float], hi: Iterable[float], scale: str) -> np.ndarray:
    """Each run's standard error from its own 95% interval: (hi - lo) / 3.92 on the analysis scale (NaN without one)."""
    a, b = to_scale(lo, scale), to_scale(hi, scale)
    return np.abs(b - a) / Z_WIDTHS


@functools.lru_cache(maxsize=256)
def t_quantile(level: float, df: int) -> float:
    """The two-sided ``level`` quantile of Student's t with ``df`` degrees of freedom."""
    from scipy import stats  # scipy.stats takes a second to import: only where an interval is computed

    return float(stats.t.ppf(0.5 + level / 2, df))


def t_interval(y: Iterable[float], level: float = LEVEL) -> tuple[float, float, float, float]:
    """Mean of the finite ``y``, its Student-t interval and their SD: ``(mean, lo, hi, sd)`` (NaN where undefined)."""
    y = _array(y)
    y = y[np.isfinite(y)]
    if len(y) == 0:
        return math.nan, math.nan, math.nan, math.nan
    m = float(y.mean())
    if len(y) < 2:
        return m, math.nan, math.nan, math.nan
    sd = float(y.std(ddof=1))
    half = t_quantile(level, len(y) - 1) * sd / math.sqrt(len(y))
    return m, m - half, m + half, sd


@dataclass(frozen=True)
class HK:
    """A random-effects pool: DerSimonian-Laird ``tau2`` and ``i2``, Hartung-Knapp interval ``lo``-``hi``."""

    mean: float
    lo: float
    hi: float
    tau2: float
    i2: float
    q: float  # Cochran's Q about the fixed-effect mean


def hartung_knapp(y: Iterable[float], v: Iterable[float], level: float = LEVEL, floor: bool = False) -> HK:
    """Random-effects mean of ``y`` with within-run variances ``v``: DerSimonian-Laird tau^2, Hartung-Knapp interval.

    tau^2 = max(0, (Q - (k - 1)) / (sum w - sum w^2 / sum w)) with w = 1/v and Cochran's
    Q = sum w (y - y_w)^2 (DerSimonian & Laird 1986, eq. 8); weights w* = 1 / (v + tau^2),
    mean mu = sum w* y / sum w*; the interval is mu +- t_{k-1} sqrt(q / sum w*) with
    q = sum w* (y - mu)^2 / (k - 1) (Hartung & Knapp 2001, eq. 10): the spread the seeds
    show sets the width, so with equal run variances it is the t interval over the seeds.
    With ``floor`` q is at least 1 (Knapp & Hartung 2003's ad hoc variant): runs that agree
    better than their own intervals say never get an interval narrower than those imply.
    I^2 = max(0, (Q - (k - 1)) / Q) (Higgins & Thompson 2002). Needs k >= 2 and v > 0.
    """
    y, v = _array(y), _array(v)
    if len(y) != len(v) or len(y) < 2 or not (np.all(np.isfinite(y)) and np.all(np.isfinite(v)) and np.all(v > 0)):
        raise ValueError("hartung_knapp needs at least 2 finite estimates with positive finite variances")
    k = len(y)
    w = 1.0 / v
    fixed = float(np.sum(w * y) / np.sum(w))
    q_stat = float(np.sum(w * (y - fixed) ** 2))
    c = float(np.sum(w) - np.sum(w**2) / np.sum(w))
    tau2 = max(0.0, (q_stat - (k - 1)) / c) if c > 0 else 0.0
    i2 = max(0.0, (q_stat - (k - 1)) / q_stat) if q_stat > 0 else 0.0
    ws = 1.0 / (v + tau2)
    mu = float(np.sum(ws * y) / np.sum(ws))
    factor = float(np.sum(ws * (y - mu) ** 2) / (k - 1))
    if floor:
        factor = max(1.0, factor)
    half = t_quantile(level, k - 1) * math.sqrt(factor / float(np.sum(ws)))
    return HK(mu, mu - half, mu + half, tau2, i2, q_stat)


@dataclass(frozen=True)
class Pooled:
    """The runs of one claim in one condition (or all its distinct runs), pooled on the analysis ``scale``.

    ``mean``, ``lo``, ``hi``: the pooled estimate and its interval (Hartung-Knapp, or the
    t interval where a run has no interval of its own: ``method`` says which); ``t_lo``,
    ``t_hi``: the plain t interval over the seed estimates; ``tau``: the between-seed SD
    (DerSimonian-Laird; NaN under the t method, which cannot separate it); ``i2``: the
    share of the spread that is between seeds; ``sd``: the SD of the seed estimates.
    ``n`` runs, ``k`` of them with an estimate. Everything on the analysis scale;
    :meth:`shown` gives the estimate and intervals in the statistic's units.
    """

    n: int
    k: int
    mean: float
    lo: float
    hi: float
    t_lo: float
    t_hi: float
    tau: float
    i2: float
    sd: float
    method: str
    scale: str = IDENTITY

    def shown(self) -> dict[str, float]:
        """The estimate and both intervals back in the statistic's units."""
        values = from_scale([self.mean, self.lo, self.hi, self.t_lo, self.t_hi], self.scale)
        return dict(zip(("estimate", "lo", "hi", "t_lo", "t_hi"), (float(x) for x in values)))


def pool(
    estimates: Iterable[float],
    lo: Iterable[float] | None = None,
    hi: Iterable[float] | None = None,
    scale: str = IDENTITY,
    level: float = LEVEL,
) -> Pooled:
    """Pool runs' estimates (with their own intervals ``lo``-``hi`` where known) over seeds on ``scale``.

    Hartung-Knapp over the runs with an estimate when every one of them has an interval
    (:func:`hartung_knapp`, se = width / 3.92); else the t interval over their estimates.
    """
    y = to_scale(estimates, scale)
    n = len(y)
    se = run_se(_array(lo, n), _array(hi, n), scale)
    keep = np.isfinite(y)
    y, se = y[keep], se[keep]
    mean, t_lo, t_hi, sd = t_interval(y, level)
    if len(y) >= 2 and np.all(np.isfinite(se)) and np.all(se > 0):
        r = hartung_knapp(y, se**2, level)
        return Pooled(n, len(y), r.mean, r.lo, r.hi, t_lo, t_hi, math.sqrt(r.tau2), r.i2, sd, "HK", scale)
    return Pooled(n, len(y), mean, t_lo, t_hi, t_lo, t_hi, math.nan, math.nan, sd, "t", scale)


def band(null: float, sesoi: float, scale: str) -> tuple[float, float]:
    """The band of no effect of interest on the analysis scale.

    identity: null +- sesoi; fisher_z: atanh(null +- sesoi) (clipped to +-``R_CLIP``);
    log: log(null) +- log(sesoi), ``sesoi`` a ratio > 1.
    """
    _check_scale(scale)
    if scale == LOG:
        if not sesoi > 1:
            raise ValueError(f"on the log scale the SESOI is a ratio > 1, got {sesoi!r}")
        centre = float(to_scale(null, LOG)[0])
        return centre - math.log(sesoi), centre + math.log(sesoi)
    if not sesoi >= 0:
        raise ValueError(f"the SESOI must be >= 0, got {sesoi!r}")
    a, b = to_scale([null - sesoi, null + sesoi], scale)
    return float(a), float(b)


def decide(lo: float, hi: float, null: float, sesoi: float, scale: str = IDENTITY, above: bool = True) -> str:
    """The verdict of a pooled interval ``lo``-``hi`` (analysis scale) against null +- SESOI.

    ``above``: the claim predicts a statistic above the null (else below). *holds* /
    *opposite*: the interval lies beyond the band on the predicted / other side; *no
    effect*: inside it; *weak* / *weak, opposite*: it excludes the null on that side but
    not the band; *inconclusive* otherwise (or no interval).
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return INCONCLUSIVE
    lo, hi = min(lo, hi), max(lo, hi)
    b_lo, b_hi = band(null, sesoi, scale)
    centre = float(to_scale(null, scale)[0])
    sign = 1 if above else -1
    # In the predicted direction: "beyond" means past b_hi when above, below b_lo when below.
    if (lo > b_hi) if above else (hi < b_lo):
        return HOLDS
    if (hi < b_lo) if above else (lo > b_hi):
        return OPPOSITE
    if b_lo <= lo and hi <= b_hi:
        return NO_EFFECT
    if sign * (lo - centre) > 0 and sign * (hi - centre) > 0:
        return WEAK
    if sign * (lo - centre) < 0 and sign * (hi - centre) < 0:
        return WEAK_OPPOSITE
    return INCONCLUSIVE


def condition_verdict(
    estimates: Iterable[float],
    lo: Iterable[float] | None = None,
    hi: Iterable[float] | None = None,
    *,
    null: float,
    sesoi: float,
    scale: str = IDENTITY,
    above: bool = True,
    level: float = LEVEL,
    not_measured: float = NOT_MEASURED_SHARE,
) -> tuple[Pooled, str]:
    """One condition's runs pooled (:func:`pool`) and decided (:func:`decide`); *not measured* when at
    least ``not_measured`` of the runs have no estimate on the analysis scale."""
    p = pool(estimates, lo, hi, scale, level)
    if p.n == 0 or (p.n - p.k) / p.n >= not_measured:
        return p, NOT_MEASURED
    return p, decide(p.lo, p.hi, null, sesoi, scale, above)


def across(verdicts: Mapping[str, str]) -> tuple[str, str]:
    """The verdict over conditions (label -> verdict): the one every condition gives, else *depends on the
    data*; with the conditions named (``"holds on digits · quick; no effect on fashion-mnist · quick"``).

    Each condition is decided on its own runs: runs of different conditions are never pooled into
    one estimate, whatever the claim declares about its dependence on the data."""
    if not verdicts:
        return INCONCLUSIVE, ""
    groups: dict[str, list[str]] = {}
    for label, v in verdicts.items():
        groups.setdefault(v, []).append(label)
    named = "; ".join(f"{v} on {', '.join(labels)}" for v, labels in groups.items())
    return (next(iter(groups)) if len(groups) == 1 else DEPENDS), named


def _detect_power(k: int, effect: float, level: float) -> float:
    from scipy import stats

    df = k - 1
    c = t_quantile(level, df)
    return float(stats.nct.sf(c, df, effect * math.sqrt(k)))


def _equivalence_power(k: int, effect: float, level: float, nodes: int = 256) -> float:
    """P(|mean| + t s / sqrt(k) <= delta) for a true null, in units of the seed SD (delta = ``effect``)."""
    from scipy import stats

    df = k - 1
    c = t_quantile(level, df)
    s = stats.chi.ppf((np.arange(nodes) + 0.5) / nodes, df) / math.sqrt(df)  # s / sigma at its quantiles
    room = (effect - c * s / math.sqrt(k)) * math.sqrt(k)  # the mean's allowed distance, in its SEs
    return float(np.mean(np.where(room > 0, 2 * stats.norm.cdf(room) - 1, 0.0)))


def seeds_needed(
    sd: float,
    delta: float,
    *,
    power: float = 0.8,
    level: float = LEVEL,
    equivalence: bool = False,
    max_seeds: int = 1000,
) -> float:
    """Seeds a condition needs, from the between-seed SD ``sd`` of its estimates (analysis scale).

    Without ``equivalence``: the fewest seeds whose t interval excludes the null with
    probability ``power`` when the true effect is ``delta`` (a SESOI; the same seeds let an
    effect of two SESOIs read *holds*), by the noncentral t. With ``equivalence``: the
    fewest whose interval lies inside null +- ``delta`` with that probability when there
    is no effect (*no effect*). ``inf`` beyond ``max_seeds``; NaN when ``sd`` is unknown.
    """
    if not (math.isfinite(sd) and math.isfinite(delta)) or delta <= 0:
        return math.nan
    if sd == 0:
        return 2.0
    effect = delta / sd

    def enough(k: int) -> bool:
        return (_equivalence_power if equivalence else _detect_power)(k, effect, level) >= power

    hi = 2  # power grows with the seeds: double until enough, then bisect
    while not enough(hi):
        if hi >= max_seeds:
            return math.inf
        hi = min(2 * hi, max_seeds)
    lo = max(2, hi // 2)
    if enough(lo):
        return float(lo)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid, hi)
    return float(hi)
