"""Trend shapes (increasing, decreasing, interior maximum) and the intrinsic dimension estimator."""

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


def test_quadratic_vertex_exact():
    x = np.linspace(0, 4, 20)
    v, c = monotonicity.quadratic_vertex(x, 1 - 2 * (x - 1.3) ** 2)
    assert float(v) == pytest.approx(1.3)
    assert float(c) == pytest.approx(-2.0)


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
