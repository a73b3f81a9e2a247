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
