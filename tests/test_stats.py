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
