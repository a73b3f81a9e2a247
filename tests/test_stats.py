import math

import numpy as np

from lib import stats


def test_bootstrap_interval_covers_the_mean_and_ignores_nan():
    rng = np.random.default_rng(1)
    v = np.r_[rng.normal(1.0, 1.0, 500), np.nan]
    lo, hi = stats.bootstrap_ci(v, n_boot=500, rng=rng)
    assert lo < np.nanmean(v) < hi and hi - lo < 0.3
    # width shrinks like 1/sqrt(n): 2 * 1.96 / sqrt(500) = 0.175
    assert abs((hi - lo) - 0.175) < 0.03


def test_bootstrap_seed_and_statistic():
    v = np.arange(100.0)
    assert stats.bootstrap_ci(v, rng=3) == stats.bootstrap_ci(v, rng=np.random.default_rng(3))
    lo, hi = stats.bootstrap_ci(v, np.median)
    assert lo < 49.5 < hi
    assert all(math.isnan(x) for x in stats.bootstrap_ci([1.0, np.nan]))


def test_wilson_interval_known_value():
    lo, hi = stats.wilson(0.5, 100)
    assert abs(lo - 0.4038) < 1e-3 and abs(hi - 0.5962) < 1e-3


def test_row_pearson():
    a = np.array([[1.0, 2, 3, 4], [1, 1, 1, 1]])
    b = np.array([[2.0, 4, 6, 8], [1, 2, 3, 4]])
    r = stats.row_pearson(a, b)
    assert abs(r[0] - 1) < 1e-12 and np.isnan(r[1])
    assert abs(stats.row_pearson(a[0], -b[0]) + 1) < 1e-12


def test_row_spearman_and_its_partial_form_match_scipy_and_the_textbook_formula():
    from scipy import stats as sps

    rng = np.random.default_rng(5)
    a, b, c = rng.normal(size=(3, 4, 30))
    b = b + a  # correlated rows
    got = stats.row_spearman(a, b, None)
    want = [sps.spearmanr(a[i], b[i]).statistic for i in range(4)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    r = lambda u, v: sps.spearmanr(u, v).statistic  # noqa: E731
    partial = [
        (r(a[i], b[i]) - r(a[i], c[i]) * r(b[i], c[i])) / math.sqrt((1 - r(a[i], c[i]) ** 2) * (1 - r(b[i], c[i]) ** 2))
        for i in range(4)
    ]
    np.testing.assert_allclose(stats.row_spearman(a, b, c), partial, rtol=1e-12)
    assert np.isnan(stats.row_pearson(np.ones((1, 5)), a[:1, :5])).all()  # a constant row has no correlation


def test_spearman_with_ci_is_the_full_estimate_and_the_resamples_percentiles():
    rng = np.random.default_rng(6)
    a = rng.normal(size=40)
    b, c = a + rng.normal(size=40), rng.normal(size=40)
    idx = rng.integers(0, 40, size=(200, 40))
    full, lo, hi = stats.spearman_with_ci(a, b, idx)
    assert full == stats.row_spearman(a, b, None)
    boots = stats.row_spearman(a[idx], b[idx], None)
    assert (lo, hi) == tuple(np.nanpercentile(boots, [2.5, 97.5]))
    assert lo < full < hi
    full_c, lo_c, hi_c = stats.spearman_with_ci(a, b, idx, control=c)
    assert full_c == stats.row_spearman(a, b, c)
    assert (lo_c, hi_c) == tuple(np.nanpercentile(stats.row_spearman(a[idx], b[idx], c[idx]), [2.5, 97.5]))


def test_bootstrap_level_sets_the_quantiles_on_a_known_resampling_distribution():
    """Resampling [0, 1] twice gives means 0, 0.5, 1 with chances 1/4, 1/2, 1/4.

    A 40% interval reads the 30% and 70% quantiles, both inside the mass at 0.5; a 60% interval
    reads the 20% and 80% quantiles, inside the masses at 0 and 1 (2000 draws put each
    mass's share within 0.025 of its chance with room to spare: its sd is 0.01).
    """
    assert stats.bootstrap_ci([0.0, 1.0], level=0.4) == (0.5, 0.5)
    assert stats.bootstrap_ci([0.0, 1.0], level=0.6) == (0.0, 1.0)


def test_row_pearson_does_not_depend_on_the_rows_scale():
    """A correlation is scale-free: rows of tiny spread (product of norms far below 1) still correlate +-1."""
    a = np.array([[0.0, 1e-3, 2e-3], [0.0, 1e-3, 2e-3]])
    b = np.array([[0.0, 2e-3, 4e-3], [4e-3, 2e-3, 0.0]])
    np.testing.assert_allclose(stats.row_pearson(a, b), [1.0, -1.0], rtol=1e-12)
