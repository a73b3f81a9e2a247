"""Trend shapes (increasing, decreasing, interior maximum) and the intrinsic dimension estimator."""

import json
import warnings

import numpy as np
import pytest
import torch

from lib import intrinsic_dim, monotonicity


def cloud(seed=0, n=80):
    rng = np.random.default_rng(seed)
    return rng, rng.uniform(1, 3, n)


def test_spearman_known_values():
    x = np.arange(10.0)
    assert monotonicity.spearman(x, x**3) == pytest.approx(1.0)
    assert monotonicity.spearman(x, -np.exp(x)) == pytest.approx(-1.0)
    assert np.isnan(monotonicity.spearman(x, np.ones(10)))


def test_spearman_of_one_row_is_a_python_float_and_of_several_rows_an_array():
    """One pair of series gives a plain float (a Trend field, written to JSON); rows give one value each."""
    x = np.arange(10.0)
    r = monotonicity.spearman(x, x**3)
    assert type(r) is float and json.dumps(r) == "1.0"
    rows = monotonicity.spearman(np.stack([x, x]), np.stack([x**3, -x]))
    assert isinstance(rows, np.ndarray) and rows.shape == (2,) and rows == pytest.approx([1.0, -1.0])
    assert type(monotonicity.trend(x, x**3, n_boot=20).spearman) is float


def test_quadratic_vertex_exact():
    x = np.linspace(0, 4, 20)
    v, c = monotonicity.quadratic_vertex(x, 1 - 2 * (x - 1.3) ** 2)
    assert float(v) == pytest.approx(1.3)
    assert float(c) == pytest.approx(-2.0)


def test_quadratic_vertex_of_a_constant_row_is_a_flat_fit():
    """A bootstrap row may draw one x value only: with z = 0 the ridge-regularised solve fits the
    constant mean of y, so that row has curvature exactly 0 and no vertex, without a warning and
    without touching the other row (an exact parabola with vertex 1.3 and curvature -2)."""
    x = np.stack([np.full(20, 2.0), np.linspace(0, 4, 20)])
    y = np.stack([np.arange(20.0), 1 - 2 * (x[1] - 1.3) ** 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v, c = monotonicity.quadratic_vertex(x, y)
    assert np.isnan(v[0]) and c[0] == 0.0
    assert v[1] == pytest.approx(1.3) and c[1] == pytest.approx(-2.0)


def test_a_point_on_the_breakpoint_counts_on_both_sides():
    """y = x^2 on x = 0..10: the vertex 0 is clipped to the 0.2 quantile, x = 2 itself, which both
    side lines use. Left: x = 0, 1, 2, slope 2 * mean(x) = 2; right: x = 2..10, slope 2 * 6 = 12
    (leaving x = 2 out of the right side would give 2 * 6.5 = 13)."""
    x = np.arange(11.0)
    t = monotonicity.trend(x, x**2, n_boot=50, rng=0)
    assert t.breakpoint == 2.0
    assert t.curvature == pytest.approx(1.0)
    assert t.left_slope == pytest.approx(2.0)
    assert t.right_slope == pytest.approx(12.0)


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda rng, x: x + rng.normal(0, 0.2, x.size), "increasing"),
        (lambda rng, x: -np.exp(x) + rng.normal(0, 0.3, x.size), "decreasing"),
        (lambda rng, x: -((x - 2) ** 2) + rng.normal(0, 0.05, x.size), "interior maximum"),
        (lambda rng, x: (x - 2) ** 2 + rng.normal(0, 0.05, x.size), "interior minimum"),
        (lambda rng, x: rng.normal(0, 1, x.size), "undetermined"),
        # rises then saturates: a parabola bends, but the two-lines test sees no fall
        (lambda rng, x: np.minimum(x, 2.2) + rng.normal(0, 0.03, x.size), "increasing"),
    ],
)
def test_trend_shapes(make, shape):
    rng, x = cloud()
    t = monotonicity.trend(x, make(rng, x), n_boot=500, rng=1)
    assert t.shape == shape
    assert t.monotonic == (shape in ("increasing", "decreasing"))
    assert t.spearman_ci[0] <= t.spearman <= t.spearman_ci[1]


def test_interior_maximum_position_is_located():
    rng, x = cloud(2, 120)
    t = monotonicity.trend(x, -((x - 2.3) ** 2) + rng.normal(0, 0.05, x.size), n_boot=500, rng=0)
    assert t.breakpoint_ci[0] < 2.3 < t.breakpoint_ci[1]
    assert t.breakpoint == pytest.approx(2.3, abs=0.1)


def test_trend_is_deterministic_and_validates():
    rng, x = cloud()
    y = x + rng.normal(0, 0.2, x.size)
    assert monotonicity.trend(x, y, n_boot=200, rng=5) == monotonicity.trend(x, y, n_boot=200, rng=5)
    with pytest.raises(ValueError, match="at least 8"):
        monotonicity.trend(x[:5], y[:5])
    with pytest.raises(ValueError, match="constant"):
        monotonicity.trend(np.ones(10), np.arange(10.0))
    with pytest.raises(ValueError, match="differ"):
        monotonicity.trend(x, y[:-1])


@pytest.mark.parametrize("where", ["x", "y"])
def test_trend_refuses_missing_and_infinite_values(where):
    """A missing measurement (None) or an infinite one is refused with the same ValueError."""
    rng, x = cloud()
    y = x + rng.normal(0, 0.2, x.size)
    for bad in (None, float("nan"), float("inf")):
        xs, ys = list(x), list(y)
        (xs if where == "x" else ys)[3] = bad
        with pytest.raises(ValueError, match="^x and y must be finite$"):
            monotonicity.trend(xs, ys, n_boot=50)
        with pytest.raises(ValueError, match="^x and y must be finite$"):
            monotonicity.cluster_trend(xs, ys, np.arange(x.size) % 4, n_boot=50)


@pytest.mark.parametrize("d", [2, 5])
def test_twonn_recovers_dimension_of_a_flat_subspace(d):
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(30, d, generator=g, dtype=torch.float64))[0]
    x = torch.rand(3000, d, generator=g, dtype=torch.float64) @ basis.T
    assert intrinsic_dim.twonn(x) == pytest.approx(d, rel=0.1)


def test_twonn_ignores_duplicates_and_rejects_tiny_inputs():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1000, 3, generator=g, dtype=torch.float64)
    assert intrinsic_dim.twonn(torch.cat([x, x[:10]])) == pytest.approx(3, rel=0.1)
    with pytest.raises(ValueError, match="at least 3"):
        intrinsic_dim.twonn(x[:2])
    with pytest.raises(ValueError, match="distinct"):
        intrinsic_dim.twonn(torch.zeros(10, 3))


def twonn_by_hand(mu, discard_fraction):
    """Facco et al.'s fit on the ratios ``mu``: -log(1 - i/n) against the i-th smallest log mu, through 0."""
    log_mu = np.sort(np.log(mu))
    n = len(log_mu)
    m = min(n - 1, max(3, int(n * (1 - discard_fraction))))
    cdf = np.arange(1, m + 1) / n  # the empirical CDF at the i-th smallest ratio: i / n
    return np.sum(log_mu[:m] * -np.log(1 - cdf)) / np.sum(log_mu[:m] ** 2)


def test_twonn_on_five_points_of_a_line_is_the_fit_done_by_hand():
    # 0, 1, 3, 6, 11: (first, second) neighbour distances (1, 3), (1, 2), (2, 3), (3, 5), (5, 8)
    mu = [3.0, 2.0, 1.5, 5 / 3, 1.6]
    x = torch.tensor([[0.0], [1.0], [3.0], [6.0], [11.0]])
    # n = 5 keeps m = 4 ratios: log 1.5, log 1.6, log 5/3, log 2 against -log(4/5), -log(3/5), -log(2/5), -log(1/5)
    logs, cdf = np.log([1.5, 1.6, 5 / 3, 2.0]), np.array([1, 2, 3, 4]) / 5
    want = np.sum(logs * -np.log(1 - cdf)) / np.sum(logs**2)
    assert want == pytest.approx(twonn_by_hand(mu, 0.1), rel=1e-12)
    assert intrinsic_dim.twonn(x) == pytest.approx(want, rel=1e-12)
    assert intrinsic_dim.twonn(x, discard_fraction=0.0) == pytest.approx(want, rel=1e-12)  # m = n - 1 at most


@pytest.mark.parametrize("discard_fraction", [0.0, 0.1, 0.25, 0.5])
def test_twonn_on_a_small_cloud_equals_brute_force_ratios_and_the_fit_by_hand(discard_fraction):
    x = np.random.default_rng(3).random((40, 3))
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    r = np.sort(d, axis=1)[:, :2]
    want = twonn_by_hand(r[:, 1] / r[:, 0], discard_fraction)
    assert intrinsic_dim.twonn(torch.tensor(x), discard_fraction=discard_fraction) == pytest.approx(want, rel=1e-12)


def two_sided(left, left_ci, right, right_ci):
    nan = float("nan")
    return monotonicity.Trend(40, nan, (nan, nan), 2.0, (nan, nan), nan, left, left_ci, right, right_ci, "")


@pytest.mark.parametrize(
    "left, right, want, verdict",
    [
        ((1.0, (0.5, 1.5)), (-1.0, (-1.5, -0.5)), "non-monotonic", monotonicity.HOLDS),
        ((-1.0, (-1.5, -0.5)), (1.0, (0.5, 1.5)), "non-monotonic", monotonicity.HOLDS),
        ((1.0, (0.5, 1.5)), (0.4, (0.1, 0.7)), "non-monotonic", monotonicity.FAILS),  # both halves rise
        ((1.0, (0.5, 1.5)), (0.0, (-0.2, 0.2)), "non-monotonic", monotonicity.INCONCLUSIVE),  # no extremum seen
        ((1.0, (0.5, 1.5)), (0.0, (-0.2, 0.2)), "monotonic", monotonicity.INCONCLUSIVE),
        ((-1.0, (-1.5, -0.5)), (-0.4, (-0.7, -0.1)), "monotonic", monotonicity.HOLDS),  # either direction
        ((1.0, (0.5, 1.5)), (-0.4, (-0.7, -0.1)), "monotonic", monotonicity.FAILS),
        ((1.0, (0.5, 1.5)), (0.4, (0.1, 0.7)), "increasing", monotonicity.HOLDS),
        ((1.0, (0.5, 1.5)), (-0.4, (-0.7, -0.1)), "increasing", monotonicity.FAILS),
        ((1.0, (-0.5, 2.5)), (-0.4, (-0.7, -0.1)), "increasing", monotonicity.FAILS),  # a significant fall decides
        ((1.0, (0.5, 1.5)), (0.4, (-0.1, 0.7)), "increasing", monotonicity.INCONCLUSIVE),
        ((-1.0, (-1.5, -0.5)), (-0.4, (-0.7, -0.1)), "decreasing", monotonicity.HOLDS),
        ((0.3, (0.1, 0.5)), (-0.4, (-0.7, -0.1)), "decreasing", monotonicity.FAILS),
        ((0.0, (0.0, 0.0)), (float("nan"), (float("nan"), float("nan"))), "monotonic", monotonicity.INCONCLUSIVE),
    ],
)
def test_shape_verdict_decides_from_both_side_slopes(left, right, want, verdict):
    t = two_sided(*left, *right)
    assert monotonicity.shape_verdict(t, want) == verdict
    est, lo, hi = monotonicity.shape_statistic(t, want)
    if verdict != monotonicity.INCONCLUSIVE:  # the recorded interval decides the same way against 0
        above = want in ("monotonic", "increasing")
        assert (lo > 0 if above == (verdict == monotonicity.HOLDS) else hi < 0) and lo <= est <= hi


def test_shape_statistic_is_the_weaker_side_signed_by_the_stronger():
    est, lo, hi = monotonicity.shape_statistic(two_sided(-1.0, (-1.5, -0.5), 0.3, (0.1, 0.6)), "non-monotonic")
    assert (est, lo, hi) == (-0.3, -0.6, -0.1)  # the halves disagree: below 0
    with pytest.raises(ValueError, match="want"):
        monotonicity.shape_statistic(two_sided(1, (0, 2), 1, (0, 2)), "u-shaped")


@pytest.mark.parametrize(
    "left, right, want",
    [
        # neither side significant: the weak side is signed by the strong side's estimate
        ((-1.0, (-2.0, 0.2)), (-0.1, (-0.3, 0.4)), (0.1, -0.4, 0.3)),  # both fall: same way, positive
        ((1.0, (-0.2, 2.0)), (0.1, (-0.4, 0.3)), (0.1, -0.4, 0.3)),  # both rise: same way, positive
        ((-1.0, (-2.0, 0.2)), (0.1, (-0.3, 0.4)), (-0.1, -0.4, 0.3)),  # opposite ways: negative
    ],
)
def test_shape_statistic_signs_by_the_stronger_estimate_when_no_side_is_significant(left, right, want):
    t = two_sided(*left, *right)
    assert monotonicity.shape_statistic(t, "monotonic") == pytest.approx(want)
    assert monotonicity.shape_verdict(t, "monotonic") == monotonicity.INCONCLUSIVE


def test_side_shape_needs_intervals_strictly_off_zero():
    """An interval touching 0 does not establish a sign: (0, 1.5) is not above 0, (-1.5, 0) not below."""
    rise, fall = (0.4, (0.1, 0.7)), (-0.4, (-0.7, -0.1))
    assert monotonicity.side_shape(two_sided(1.0, (1e-9, 1.5), *rise)) == "increasing"
    assert monotonicity.side_shape(two_sided(1.0, (0.0, 1.5), *rise)) == "undetermined"
    assert monotonicity.side_shape(two_sided(-1.0, (-1.5, -1e-9), *fall)) == "decreasing"
    assert monotonicity.side_shape(two_sided(-1.0, (-1.5, 0.0), *fall)) == "undetermined"
    assert monotonicity.side_shape(two_sided(1.0, (0.5, 1.5), -0.4, (-0.7, 0.0))) == "undetermined"


def test_side_shape_uses_only_the_two_slopes():
    assert monotonicity.side_shape(two_sided(1.0, (0.5, 1.5), 0.4, (0.1, 0.7))) == "increasing"
    assert monotonicity.side_shape(two_sided(1.0, (0.5, 1.5), -0.4, (-0.7, -0.1))) == "interior maximum"
    assert monotonicity.side_shape(two_sided(1.0, (0.5, 1.5), 0.0, (-0.2, 0.2))) == "undetermined"


@pytest.mark.parametrize(
    "shape, want, verdict",
    [
        ("increasing", "increasing", monotonicity.HOLDS),
        ("decreasing", "increasing", monotonicity.FAILS),
        ("interior maximum", "increasing", monotonicity.FAILS),
        ("decreasing", "decreasing", monotonicity.HOLDS),
        ("interior minimum", "non-monotonic", monotonicity.HOLDS),
        ("increasing", "non-monotonic", monotonicity.FAILS),
        ("undetermined", "increasing", monotonicity.INCONCLUSIVE),
        ("undetermined", "non-monotonic", monotonicity.INCONCLUSIVE),
    ],
)
def test_direction_verdict_by_the_trend_shape(shape, want, verdict):
    nan = float("nan")
    t = monotonicity.Trend(40, nan, (nan, nan), 2.0, (nan, nan), nan, nan, (nan, nan), nan, (nan, nan), shape)
    assert monotonicity.direction_verdict(t, want) == verdict


def test_a_rise_that_saturates_is_no_evidence_of_monotonicity():
    """Planted null of the old scoring: no extremum, so direction_verdict refutes 'non-monotonic'."""
    rng, x = cloud(3)
    y = np.minimum(x, 1.6) + rng.normal(0, 0.03, x.size)  # rises, then flat over most of the range
    t = monotonicity.trend(x, y, n_boot=500, rng=1)
    assert monotonicity.direction_verdict(t, "non-monotonic") == monotonicity.FAILS  # the old scoring
    assert monotonicity.shape_verdict(t, "non-monotonic") == monotonicity.INCONCLUSIVE
    assert monotonicity.shape_verdict(t, "monotonic") == monotonicity.INCONCLUSIVE


def test_shape_verdict_sees_planted_shapes():
    rng, x = cloud(4, 120)
    peak = monotonicity.trend(x, -((x - 2) ** 2) + rng.normal(0, 0.05, x.size), n_boot=500, rng=1)
    line = monotonicity.trend(x, x + rng.normal(0, 0.1, x.size), n_boot=500, rng=1)
    assert monotonicity.shape_verdict(peak, "non-monotonic") == monotonicity.HOLDS
    assert monotonicity.shape_verdict(peak, "monotonic") == monotonicity.FAILS
    assert monotonicity.shape_verdict(line, "non-monotonic") == monotonicity.FAILS
    assert monotonicity.shape_verdict(line, "monotonic") == monotonicity.HOLDS
    assert monotonicity.shape_verdict(line, "increasing") == monotonicity.HOLDS


def clustered(seed=0, n_groups=6, size=10):
    """Groups whose shared offsets are unrelated to x; within a group x barely moves."""
    rng = np.random.default_rng(seed)
    xg, ug = rng.uniform(1, 3, n_groups), rng.normal(0, 1, n_groups)
    groups = np.repeat(np.arange(n_groups), size)
    x = xg[groups] + rng.normal(0, 0.01, groups.size)
    return x, ug[groups] + rng.normal(0, 0.05, groups.size), groups


def test_cluster_bootstrap_counts_groups_not_points():
    for seed in range(20):  # a draw where the six group offsets happen to line up with x
        x, y, g = clustered(seed)
        by_point = monotonicity.trend(x, y, n_boot=500, rng=0)
        if by_point.spearman_ci[0] > 0 or by_point.spearman_ci[1] < 0:
            break
    else:
        pytest.fail("no planted draw")
    by_group = monotonicity.cluster_trend(x, y, g, n_boot=500, rng=0)
    assert by_group.spearman == by_point.spearman
    assert by_group.spearman_ci[0] < 0 < by_group.spearman_ci[1]  # six groups cannot establish the trend


def test_cluster_trend_sees_a_trend_across_groups_and_handles_unequal_sizes():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(12), 3)
    x = rng.uniform(1, 3, 12)[groups] + rng.normal(0, 0.05, groups.size)
    y = x + rng.normal(0, 0.05, groups.size)
    t = monotonicity.cluster_trend(x, y, groups, n_boot=300, rng=0)
    assert t.spearman_ci[0] > 0.5 and monotonicity.shape_verdict(t, "increasing") == monotonicity.HOLDS
    uneven = np.where(groups == 0, 1, groups)  # group 1 now has six points
    u = monotonicity.cluster_trend(x, y, uneven, n_boot=300, rng=0)
    assert u.spearman_ci[0] > 0.5 and u.n == x.size
    assert monotonicity.cluster_trend(x, y, groups, n_boot=300, rng=0) == t
    with pytest.raises(ValueError, match="at least 3 groups"):
        monotonicity.cluster_trend(x, y, groups % 2, n_boot=300)
    with pytest.raises(ValueError, match="groups and x differ"):
        monotonicity.cluster_trend(x, y, groups[:-1], n_boot=300)


def test_trend_settings_are_refused_outside_their_ranges_and_accepted_at_the_edge():
    """n_boot = 10 is the fewest resamples allowed (9 is refused); level and inner outside (0, 1) and [0, 0.5)."""
    rng, x = cloud()
    y = x + rng.normal(0, 0.2, x.size)
    assert monotonicity.trend(x, y, n_boot=10, rng=0).shape == "increasing"
    assert monotonicity.trend(x, y, n_boot=50, inner=0.0, rng=0).n == x.size
    for bad in ({"n_boot": 9}, {"level": 1.0}, {"level": 0.0}, {"inner": 0.5}, {"inner": -0.1}):
        with pytest.raises(ValueError, match=r"^need 0 < level < 1, 0 <= inner < 0.5 and n_boot >= 10$"):
            monotonicity.trend(x, y, **{"n_boot": 50, **bad})


def test_trend_defaults_are_2000_resamples_level_95_inner_20_and_seed_0():
    """The documented defaults: a call without settings equals one that spells them out (and not 2001 resamples)."""
    rng, x = cloud(5, 30)
    y = x + rng.normal(0, 0.5, x.size)
    t = monotonicity.trend(x, y)
    assert t == monotonicity.trend(x, y, n_boot=2000, level=0.95, inner=0.2, rng=0)
    assert t != monotonicity.trend(x, y, n_boot=2001, level=0.95, inner=0.2, rng=0)


def test_side_slopes_are_exact_per_row_and_nan_for_fewer_than_two_points():
    """Planted exact lines y = 3x - 1 and y = 1e9 + 5x in one batch: each row's slope is its own,
    whatever the other row holds; a row with one masked point or none has no slope (NaN), silently
    (a bootstrap resample may draw no point on one side of the breakpoint)."""
    x = np.linspace(0.1, 1.7, 9)
    xs, ys = np.stack([x, x]), np.stack([3 * x - 1, 1e9 + 5 * x])
    slopes = monotonicity._slope_rows(xs, ys, np.ones_like(xs, bool))
    assert slopes[0] == pytest.approx(3.0, rel=1e-12) and slopes[1] == pytest.approx(5.0, rel=1e-9)
    alone = monotonicity._slope_rows(xs[:1], ys[:1], np.ones((1, 9), bool))
    assert alone[0] == pytest.approx(3.0, rel=1e-12)
    one, none = np.zeros((2, 9), bool), np.zeros((2, 9), bool)
    one[:, 4] = True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(monotonicity._slope_rows(xs, ys, one)).all()
        assert np.isnan(monotonicity._slope_rows(xs, ys, none)).all()


def test_the_direction_of_a_significant_side_comes_from_its_interval():
    """A percentile interval can exclude its own estimate (a skewed bootstrap): a side whose interval
    lies below 0 falls, whatever its estimate, and the weak side is signed against it; a side whose
    interval only touches 0 is not significant, so its estimate gives the direction."""
    weak = (0.1, (-0.3, 0.4))
    below = two_sided(0.2, (-1.5, -0.5), *weak)  # falls: the weak side's rise counts as opposite
    assert monotonicity.shape_statistic(below, "monotonic") == pytest.approx((-0.1, -0.4, 0.3))
    above = two_sided(-0.2, (0.5, 1.5), *weak)  # rises: the weak side's rise counts as the same way
    assert monotonicity.shape_statistic(above, "monotonic") == pytest.approx((0.1, -0.3, 0.4))
    touching = two_sided(0.2, (-1.5, 0.0), *weak)  # not significant: the estimate 0.2 rises
    assert monotonicity.shape_statistic(touching, "monotonic") == pytest.approx((0.1, -0.3, 0.4))


def test_increasing_is_judged_by_the_side_least_clearly_above_zero():
    """Neither side falls significantly: the side with the lowest lower bound decides, not the
    one with the lowest upper bound (a wide interval crossing 0 leaves 'increasing' undecided)."""
    t = two_sided(1.0, (0.5, 1.5), 0.8, (-0.1, 2.0))
    assert monotonicity.shape_statistic(t, "increasing") == (0.8, -0.1, 2.0)
    assert monotonicity.shape_verdict(t, "increasing") == monotonicity.INCONCLUSIVE
    both = two_sided(1.0, (0.5, 1.5), 0.8, (0.2, 2.0))
    assert monotonicity.shape_statistic(both, "increasing") == (0.8, 0.2, 2.0)
    assert monotonicity.shape_verdict(both, "increasing") == monotonicity.HOLDS
    mirror = two_sided(-1.0, (-1.5, -0.5), -0.8, (-2.0, 0.1))
    assert monotonicity.shape_statistic(mirror, "decreasing") == (-0.8, -2.0, 0.1)
    assert monotonicity.shape_verdict(mirror, "decreasing") == monotonicity.INCONCLUSIVE
