"""lib.pooling: the estimator on hand-computed answers, and the pooled rule by simulation (planted effect, null,
condition-dependent effect) against the old vote count, lib.evidence.replicated_verdict."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lib import claims, evidence, pooling

T2 = 4.302652729911275  # Student t, 2 degrees of freedom, 97.5% quantile

# ------------------------------------------------------------ known answers


def test_hartung_knapp_by_hand():
    """y = 0, 2, 6 with variances 1, 1, 4, worked by hand in fractions.

    w = 1, 1, 1/4; fixed mean 3.5 / 2.25 = 14/9; Q = (14^2 + 4^2 + 40^2 / 4) / 81 = 68/9;
    C = 2.25 - 2.0625 / 2.25 = 4/3; tau^2 = (68/9 - 2) / (4/3) = 25/6; I^2 = (68/9 - 2) / (68/9) = 25/34;
    w* = 6/31, 6/31, 6/49 (sum 774/1519); mu = (12/31 + 36/49) / (774/1519) = 284/129;
    q = ((6/31)(284^2 + 26^2) + (6/49) 490^2) / 129^2 / 2; half-width t_2 sqrt(q / sum w*).
    """
    r = pooling.hartung_knapp([0.0, 2.0, 6.0], [1.0, 1.0, 4.0])
    q = ((6 / 31) * (284**2 + 26**2) + (6 / 49) * 490**2) / 129**2 / 2
    half = T2 * math.sqrt(q / (774 / 1519))
    assert r.mean == pytest.approx(284 / 129)
    assert r.tau2 == pytest.approx(25 / 6) and r.i2 == pytest.approx(25 / 34) and r.q == pytest.approx(68 / 9)
    assert (r.lo, r.hi) == pytest.approx((284 / 129 - half, 284 / 129 + half))
    assert q > 1 and pooling.hartung_knapp([0.0, 2.0, 6.0], [1.0, 1.0, 4.0], floor=True) == r  # no floor to bite


def test_agreeing_runs_have_no_between_seed_spread():
    r = pooling.hartung_knapp([1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    assert (r.tau2, r.i2, r.mean) == (0.0, 0.0, 1.0)
    assert r.lo == r.hi == 1.0  # the seeds show no spread: neither does the interval
    # with the floor, q = 0 counts as 1: the interval three runs of variance 1 imply
    floored = pooling.hartung_knapp([1.0, 1.0, 1.0], [1.0, 1.0, 1.0], floor=True)
    assert (floored.lo, floored.hi) == pytest.approx((1 - T2 / math.sqrt(3), 1 + T2 / math.sqrt(3)))
    # spread smaller than the runs' own variances: Q < k - 1, tau clipped at 0
    assert pooling.hartung_knapp([0.9, 1.0, 1.1], [1.0, 1.0, 1.0]).tau2 == 0.0


def test_equal_variances_give_the_t_interval():
    """With equal run variances and tau^2 > 0, Hartung-Knapp is the t interval over the estimates."""
    r = pooling.hartung_knapp([1.0, 2.0, 4.0], [1.0, 1.0, 1.0])
    half = T2 * math.sqrt(7 / 9)  # sd^2 = 7/3 over 3 runs
    assert (r.lo, r.hi) == pytest.approx((7 / 3 - half, 7 / 3 + half))
    m, lo, hi, sd = pooling.t_interval([1.0, 2.0, 4.0])
    assert (m, lo, hi, sd) == pytest.approx((7 / 3, 7 / 3 - half, 7 / 3 + half, math.sqrt(7 / 3)))
    with pytest.raises(ValueError, match="at least 2"):
        pooling.hartung_knapp([1.0], [1.0])


def test_pool_uses_run_intervals_or_falls_back_to_t():
    y = [0.0, 2.0, 6.0]
    se = np.array([1.0, 1.0, 2.0])
    p = pooling.pool(y, np.array(y) - 1.96 * se, np.array(y) + 1.96 * se)
    assert p.method == "HK" and p.mean == pytest.approx(284 / 129) and p.tau == pytest.approx(math.sqrt(25 / 6))
    t = pooling.pool(y, [-1.96, math.nan, 2.0], [1.96, 3.0, 10.0])  # one run without an interval
    m, lo, hi, sd = pooling.t_interval(y)
    assert (t.method, t.mean, t.lo, t.hi, t.sd) == ("t", m, lo, hi, sd) and math.isnan(t.tau)
    # runs without an estimate are left out, and counted
    q = pooling.pool([1.0, math.nan, 3.0, None])
    assert (q.n, q.k, q.mean) == (4, 2, 2.0)


def test_scales_and_bands():
    r = [0.2, 0.4, 0.6]
    p = pooling.pool(r, scale=claims.FISHER_Z)
    assert p.mean == pytest.approx(np.mean(np.arctanh(r)))
    assert p.shown()["estimate"] == pytest.approx(np.tanh(np.mean(np.arctanh(r))))
    assert pooling.band(0.1, 0.1, claims.FISHER_Z) == pytest.approx((0.0, math.atanh(0.2)))
    assert pooling.band(1.0, 1.1, claims.LOG) == pytest.approx((-math.log(1.1), math.log(1.1)))
    assert pooling.band(2.0, 0.5, claims.IDENTITY) == (1.5, 2.5)
    assert pooling.to_scale([1.0, -1.0], claims.FISHER_Z) == pytest.approx(np.arctanh([0.999, -0.999]))
    assert math.isnan(pooling.to_scale(0.0, claims.LOG)[0])  # a ratio of 0 has no log: no estimate
    assert pooling.pool([2.0, 2.0 * math.e], scale=claims.LOG).shown()["estimate"] == pytest.approx(
        2 * math.sqrt(math.e)
    )
    with pytest.raises(ValueError, match="ratio > 1"):
        pooling.band(1.0, 0.1, claims.LOG)
    with pytest.raises(ValueError, match="scale must be one of"):
        pooling.to_scale(1.0, "probit")


@pytest.mark.parametrize(
    "lo, hi, above, expected",
    [
        (0.2, 0.5, True, pooling.HOLDS),
        (-0.5, -0.2, True, pooling.OPPOSITE),
        (-0.5, -0.2, False, pooling.HOLDS),
        (-0.05, 0.08, True, pooling.NO_EFFECT),
        (0.02, 0.08, True, pooling.NO_EFFECT),  # excludes the null, but every value in it is trivial
        (0.05, 0.5, True, pooling.WEAK),
        (-0.5, -0.05, True, pooling.WEAK_OPPOSITE),
        (-0.5, -0.05, False, pooling.WEAK),
        (-0.5, 0.5, True, pooling.INCONCLUSIVE),
        (math.nan, 0.5, True, pooling.INCONCLUSIVE),
    ],
)
def test_decide(lo, hi, above, expected):
    assert pooling.decide(lo, hi, null=0.0, sesoi=0.1, above=above) == expected


def test_not_measured_and_across():
    _, v = pooling.condition_verdict([1.0, math.nan, math.nan, math.nan, math.nan], null=0.0, sesoi=0.1)
    assert v == pooling.NOT_MEASURED
    _, v = pooling.condition_verdict([1.0, 1.1, math.nan, math.nan, math.nan], null=0.0, sesoi=0.1)
    assert v != pooling.NOT_MEASURED  # 60% without an estimate: still pooled
    assert pooling.across({"a": pooling.HOLDS, "b": pooling.HOLDS}) == (pooling.HOLDS, "holds on a, b")
    assert pooling.across({"a": pooling.HOLDS, "b": pooling.NO_EFFECT, "c": pooling.HOLDS}) == (
        pooling.DEPENDS,
        "holds on a, c; no effect on b",
    )


def test_seeds_needed_matches_the_t_test_power():
    # a one-sample t test of an effect of one SD needs 10 runs for 80% power at 5% (e.g. G*Power)
    assert pooling.seeds_needed(1.0, 1.0) == 10
    k = int(pooling.seeds_needed(0.05, 0.02))
    nct = stats.nct.sf(stats.t.ppf(0.975, k - 1), k - 1, 0.4 * math.sqrt(k))
    below = stats.nct.sf(stats.t.ppf(0.975, k - 2), k - 2, 0.4 * math.sqrt(k - 1))
    assert nct >= 0.8 > below
    assert pooling.seeds_needed(1.0, 1.0, equivalence=True) > pooling.seeds_needed(1.0, 1.0)
    assert pooling.seeds_needed(0.0, 0.1) == 2 and math.isnan(pooling.seeds_needed(math.nan, 0.1))
    assert pooling.seeds_needed(1.0, 1e-4, max_seeds=50) == math.inf


# --------------------------------------------------------------- simulations

SE, TAU = 1.0, 0.5  # each run's own standard error, and the between-seed SD its interval leaves out


def runs(rng: np.random.Generator, k: int, mu: float, se: float = SE, tau: float = TAU):
    """``k`` runs of a statistic whose true value is ``mu``: estimates and their own 95% intervals."""
    y = mu + rng.normal(0.0, tau, k) + rng.normal(0.0, se, k)
    return y, y - 1.96 * se, y + 1.96 * se


def test_holds_grows_with_seeds_where_the_vote_count_shrinks():
    """A real effect each run detects with probability 0.7 (its interval above 0): pooled, P(holds) rises with
    5 -> 10 -> 20 seeds; the old 80%-of-runs rule reads holds less often the more seeds are run."""
    rng = np.random.default_rng(30)
    mu = 1.96 * SE + stats.norm.ppf(0.7) * math.hypot(SE, TAU)  # P(run's lo > 0) = 0.7
    reps, sesoi = 400, 1.5
    pooled, votes, power = {}, {}, []
    for k in (5, 10, 20):
        hold = vote = 0
        for _ in range(reps):
            y, lo, hi = runs(rng, k, mu)
            hold += pooling.condition_verdict(y, lo, hi, null=0.0, sesoi=sesoi)[1] == pooling.HOLDS
            h, f = float(np.mean(lo > 0)), float(np.mean(hi < 0))
            vote += evidence.replicated_verdict([(h, f, k)]) == evidence.HOLDS
            power.append(h)
        pooled[k], votes[k] = hold / reps, vote / reps
    assert np.mean(power) == pytest.approx(0.7, abs=0.02)
    # Monte Carlo SE of each rate <= 0.025 (400 ledgers): the steps asked for are >= 4 SEs
    assert pooled[5] + 0.2 < pooled[10] and pooled[10] + 0.1 < pooled[20], pooled
    assert votes[5] > votes[10] + 0.1 and votes[10] > votes[20] + 0.03, votes  # P(Bin(k, 0.7) >= 0.8k): .53 .38 .24
    assert pooled[20] > 0.9 > votes[20] + 0.5


@pytest.mark.parametrize(
    "se, tau, intervals",
    [
        (SE, TAU, True),  # the runs' intervals leave out a moderate between-seed spread
        (0.2, 1.0, True),  # miscalibrated runs: intervals five times too narrow
        (SE, TAU, False),  # no run intervals: the t interval over the seeds
    ],
)
def test_a_planted_null_is_rarely_decided(se, tau, intervals):
    """Under a planted null with SESOI 0 (so holds or opposite means: the interval excludes the null),
    holds or opposite comes out in at most 5% of ledgers of 5 seeds, plus 3 Monte Carlo SEs (0.015 at 2000
    ledgers); with a SESOI of 0.5 they come out in fewer still."""
    rng = np.random.default_rng(7)
    reps, k = 2000, 5
    decided = {0.0: 0, 0.5: 0}
    for _ in range(reps):
        y, lo, hi = runs(rng, k, 0.0, se, tau)
        if not intervals:
            lo = hi = None
        for sesoi in decided:
            v = pooling.condition_verdict(y, lo, hi, null=0.0, sesoi=sesoi)[1]
            decided[sesoi] += v in (pooling.HOLDS, pooling.OPPOSITE)
    slack = 3 * math.sqrt(0.05 * 0.95 / reps)
    assert decided[0.0] / reps <= 0.05 + slack, decided
    assert decided[0.5] <= decided[0.0]


def test_a_planted_null_reads_no_effect_when_the_sesoi_is_wide_enough():
    rng = np.random.default_rng(11)
    reps, k = 400, 10
    verdicts = [pooling.condition_verdict(*runs(rng, k, 0.0), null=0.0, sesoi=2.0)[1] for _ in range(reps)]
    assert verdicts.count(pooling.NO_EFFECT) / reps >= 0.95
    # ... and a SESOI far below the seed-to-seed spread leaves it undecided, never "no effect"
    narrow = [pooling.condition_verdict(*runs(rng, k, 0.0), null=0.0, sesoi=0.05)[1] for _ in range(reps)]
    assert narrow.count(pooling.NO_EFFECT) == 0


def test_a_planted_condition_dependent_effect_depends_on_the_data():
    """An effect of 3 on digits and none on fashion: with 20 seeds, holds on one and no effect on the other."""
    rng = np.random.default_rng(3)
    reps, k, found = 200, 20, 0
    for _ in range(reps):
        per = {
            cond: pooling.condition_verdict(*runs(rng, k, mu), null=0.0, sesoi=1.0)[1]
            for cond, mu in (("digits", 3.0), ("fashion", 0.0))
        }
        verdict, named = pooling.across(per)
        found += verdict == pooling.DEPENDS and named == "holds on digits; no effect on fashion"
    assert found / reps >= 0.9


# ------------------------------------------------- the rule in lib.evidence


def ledger(rng: np.random.Generator, effects: dict[str, float], k: int = 10, claim: str = "ch01.x") -> pd.DataFrame:
    """A ledger of one claim: ``k`` seeds per condition with the planted effects, provenance left out."""
    rows = []
    for cond, mu in effects.items():
        y, lo, hi = runs(rng, k, mu)
        for seed in range(k):
            rows.append(
                {
                    "claim_id": claim,
                    "chapter": claim.split(".")[0],
                    "kind": "paper",
                    "claim": "a claim",
                    "condition": f"{cond} · quick",
                    "dataset": cond,
                    "scale": "quick",
                    "seed": seed,
                    "estimate": y[seed],
                    "lo": lo[seed],
                    "hi": hi[seed],
                    "verdict": claims.by_interval(lo[seed], hi[seed]),
                    "notebook": "01_local_errors.ipynb",
                    **dict.fromkeys(("code_sha256", "notebook_sha256", "lib_sha256"), "ab" * 32),
                }
            )
    return pd.DataFrame(rows)


def declarations(claim: str = "ch01.x", **over) -> pd.DataFrame:
    row = dict(
        id=claim,
        chapter="ch01",
        kind="paper",
        statement="a claim",
        statistic="a statistic",
        null=0.0,
        above=True,
        sesoi=1.0,
        scale="identity",
        depends=True,
        why="hand-made",
    )
    return pd.DataFrame([{**row, **over}])


def test_evidence_decides_by_the_pooled_rule_with_declarations():
    led = ledger(np.random.default_rng(5), {"digits": 4.0, "fashion": 0.0}, k=20)
    conditions, verdicts = evidence.aggregate(led, declarations=declarations())
    v = verdicts.iloc[0]
    assert v.replicated == evidence.DEPENDS
    assert v.verdicts_by_condition == "holds on digits · quick; no effect on fashion · quick"
    assert math.isnan(v.pooled)  # no estimate across conditions
    assert list(conditions.verdict) == [evidence.HOLDS, evidence.NO_EFFECT]
    # without a declared SESOI nothing is decided; the old vote count stays beside it
    _, undeclared = evidence.aggregate(led)
    assert undeclared.replicated.iloc[0] == evidence.NO_SESOI and undeclared.votes.iloc[0] in evidence.VOTES


@pytest.mark.parametrize("depends", [True, False])
def test_a_planted_condition_dependent_effect_depends_on_the_data_whatever_the_declaration(depends):
    """An effect of 4 on digits and none on fashion, 10 seeds each, in 100 simulated ledgers: the claim depends on
    the data in at least 90% of them, declared condition-dependent or general alike (a general claim's conditions
    are not pooled into one estimate, which would read inconclusive); a general claim is flagged."""
    rng = np.random.default_rng(31)
    reps, found = 100, 0
    for _ in range(reps):
        led = ledger(rng, {"digits": 4.0, "fashion": 0.0}, k=10)
        _, verdicts = evidence.aggregate(led, declarations=declarations(depends=depends))
        v = verdicts.iloc[0]
        if v.replicated == evidence.DEPENDS:
            found += 1
            assert v.verdicts_by_condition.startswith("holds on digits · quick; ")
            assert v.declared_general == (evidence.NOT_GENERAL if depends else evidence.GENERAL_BUT_DEPENDS)
        assert math.isnan(v.pooled)  # never an estimate across conditions
    assert found / reps >= 0.9


def test_conditions_that_agree_give_their_verdict_and_a_general_claim_is_not_flagged():
    """Two conditions whose runs are bit-identical seed for seed, and a third with the same effect: each is decided
    on its own runs (5 each, not 10 or 15 pooled), they agree, and the general declaration stands."""
    rng = np.random.default_rng(8)
    one = ledger(rng, {"r4": 3.0}, k=5)
    twin = one.assign(condition="r8 · quick", dataset="r8")
    led = pd.concat([one, twin, ledger(rng, {"d256": 3.0}, k=5)], ignore_index=True)
    conditions, verdicts = evidence.aggregate(led, declarations=declarations(depends=False, sesoi=0.5))
    v = verdicts.iloc[0]
    assert list(conditions.k) == [5, 5, 5]
    p = pooling.pool(one.estimate, one.lo, one.hi)
    assert conditions.pooled.iloc[0] == conditions.pooled.iloc[1] == pytest.approx(p.mean)
    assert set(conditions.verdict) == {v.replicated} and v.replicated == pooling.decide(p.lo, p.hi, 0.0, 0.5)
    assert v.verdicts_by_condition == f"{v.replicated} on r4 · quick, r8 · quick, d256 · quick"
    assert v.declared_general == evidence.GENERAL and math.isnan(v.pooled)
    assert evidence.declared_general(None, evidence.DEPENDS) == ""
