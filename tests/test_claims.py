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
