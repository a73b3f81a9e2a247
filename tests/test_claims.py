import math

import pytest

from lib import claims


def test_by_interval_sides():
    assert claims.by_interval(0.1, 0.2) == claims.HOLDS
    assert claims.by_interval(-0.3, -0.1) == claims.FAILS
    assert claims.by_interval(-0.1, 0.1) == claims.INCONCLUSIVE
    assert claims.by_interval(0.2, 0.4, 0.5, above=False) == claims.HOLDS
    assert claims.by_interval(0.6, 0.7, 0.5, above=False) == claims.FAILS
    assert claims.by_interval(math.nan, 1.0) == claims.INCONCLUSIVE


@pytest.mark.parametrize("threshold", [0.0, 0.5, -2.0])
def test_by_interval_an_interval_touching_its_threshold_decides_nothing(threshold):
    """ "Above t" holds only when the whole interval is strictly above t: an interval that ends at t straddles it."""
    t = threshold
    assert claims.by_interval(t, t + 1, t) == claims.INCONCLUSIVE  # lo == t: not above
    assert claims.by_interval(t - 1, t, t) == claims.INCONCLUSIVE  # hi == t: not below either
    assert claims.by_interval(t, t, t) == claims.INCONCLUSIVE
    assert claims.by_interval(t - 1, t, t, above=False) == claims.INCONCLUSIVE
    assert claims.by_interval(t, t + 1, t, above=False) == claims.INCONCLUSIVE
    eps = 1e-9
    assert claims.by_interval(t + eps, t + 1, t) == claims.HOLDS
    assert claims.by_interval(t - 1, t - eps, t) == claims.FAILS
    assert claims.by_interval(t - 1, t - eps, t, above=False) == claims.HOLDS
    assert claims.by_interval(t + eps, t + 1, t, above=False) == claims.FAILS
    assert claims.by_interval(t + 1, t + eps, t) == claims.HOLDS  # given in either order
    assert claims.by_interval(t + 1, math.nan, t) == claims.INCONCLUSIVE


def test_declared_interval_decides_by_its_threshold_and_side():
    above = claims.Declared("chX.grows", claims.PAPER, "{what} grows", "slope of {what}", threshold=1.0)
    row = above.interval(1.5, 1.0, 2.0, what="alpha")
    assert (row.verdict, row.claim, row.statistic, row.id, row.kind) == (
        claims.INCONCLUSIVE,
        "alpha grows",
        "slope of alpha",
        "chX.grows",
        claims.PAPER,
    )
    assert (row.estimate, row.lo, row.hi, row.value) == (1.5, 1.0, 2.0, "1.5 [1, 2]")
    assert above.interval(1.5, 1.01, 2.0, what="a").verdict == claims.HOLDS
    below = claims.Declared("chX.shrinks", claims.CONTROL, "c", "s", threshold=1.0, above=False)
    assert below.interval(0.5, 0.2, 0.99).verdict == claims.HOLDS
    assert below.interval(0.5, 0.2, 1.0).verdict == claims.INCONCLUSIVE
    assert below.interval(1.5, 1.01, 2.0).verdict == claims.FAILS


def test_by_test_and_bad_verdict():
    assert claims.by_test(True, False) == claims.HOLDS
    assert claims.by_test(False, True) == claims.FAILS
    assert claims.by_test(True, True) == claims.INCONCLUSIVE
    with pytest.raises(ValueError, match="verdict must be one of"):
        claims.Claim("c", "s", "v", "probably")


def test_claims_table_shows_long_text_in_full():
    long = "a claim whose wording is much longer than pandas' default column width of fifty characters"
    t = claims.table([claims.Claim(long, "statistic", claims.fmt(1.0, (0.5, 1.5)), claims.by_interval(0.1, 0.2))])
    assert long in t._repr_html_() and long in repr(t)
    assert t.value.iloc[0] == "1 [0.5, 1.5]"
    assert t.verdict.iloc[0] == claims.HOLDS and list(t.index) == [1]
    assert isinstance(t[["claim", "verdict"]], claims.ClaimsTable)
