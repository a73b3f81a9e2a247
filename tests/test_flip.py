"""Flip searches (lib.flip): planted budgets, exact on linear scores, the exact two-layer search agrees with the ray scan."""

import math

import pytest
import torch
from torch import nn

from lib import attacks, ensemble, flip
from lib.config import ParameterError


def _linear_case(seed=0, n=40, d=5):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, generator=g, dtype=torch.float64)
    c = 0.3
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    u = torch.randn(n, d, generator=g, dtype=torch.float64)
    u = u / u.norm(dim=-1, keepdim=True)
    exact = -(x @ a + c) / (u @ a)
    exact = torch.where(exact > 0, exact, torch.full_like(exact, math.inf))
    return a, c, x, u, exact


def test_bisection_is_exact_on_a_linear_score():
    a, c, x, u, exact = _linear_case()
    t_max = 10.0
    got = flip.ray_distance(lambda z: z @ a + c, x, u, t_max=t_max, tol=1e-9)
    expected = torch.where(exact <= t_max, exact, torch.full_like(exact, math.inf))
    assert torch.isfinite(expected).sum() >= 10 and torch.isinf(expected).sum() >= 5
    assert torch.equal(torch.isinf(got), torch.isinf(expected))
    fin = torch.isfinite(expected)
    torch.testing.assert_close(got[fin], expected[fin], atol=1e-7, rtol=0)


def _as_linear_network(a, c, big=1e3):
    """relu(a.x + big) - relu(big - c) = a.x + c wherever |a.x| < big: a linear two-layer net."""
    d = a.numel()
    w = torch.stack([a, torch.zeros(d, dtype=a.dtype)])[None]  # (1, 2, d)
    b = torch.tensor([[big, big - c]], dtype=a.dtype)
    v = torch.tensor([[1.0, -1.0]], dtype=a.dtype)
    return ensemble.TwoLayerEnsemble(w, b, v)


def test_exact_two_layer_search_on_a_linear_network():
    a, c, x, u, exact = _linear_case(seed=1)
    net = _as_linear_network(a, c)
    got = flip.ray_distance_exact(net, x, u[None])[0]
    assert torch.equal(torch.isinf(got), torch.isinf(exact))
    fin = torch.isfinite(exact)
    torch.testing.assert_close(got[fin], exact[fin], atol=1e-9, rtol=1e-9)


def test_exact_search_matches_bisection_on_relu_networks():
    g = torch.Generator().manual_seed(3)
    ens = ensemble.init(3, 6, 20, generator=g, dtype=torch.float64)
    x = torch.randn(25, 6, generator=g, dtype=torch.float64)
    u = torch.randn(3, 25, 6, generator=g, dtype=torch.float64)
    u = u / u.norm(dim=-1, keepdim=True)
    exact = flip.ray_distance_exact(ens, x, u)
    bisect = flip.ray_distance(lambda z: ens(z), x.expand(3, -1, -1), u, t_max=20.0, grid=2000, tol=1e-10)
    both = torch.isfinite(exact) & torch.isfinite(bisect)
    assert both.sum() > 20
    torch.testing.assert_close(exact[both], bisect[both], atol=1e-7, rtol=0)
    # the sign really changes at the returned distance, and not before it
    t = exact[both][:, None]
    f0 = ens(x).sign()[both]
    xs = x.expand(3, -1, -1)
    before = ens(xs + (exact[..., None] * (1 - 1e-6)).nan_to_num(posinf=0) * u).sign()[both]
    after = ens(xs + (exact[..., None] * (1 + 1e-6)).nan_to_num(posinf=0) * u).sign()[both]
    assert torch.equal(before, f0) and torch.all(after == -f0)
    assert t.min() > 0


THRESHOLDS = torch.tensor([0.0, 0.1, 0.37, 0.99, 2.0], dtype=torch.float64)


def _planted(calls):
    def flips(idx, eps):
        calls.append(len(idx))
        return torch.as_tensor(eps, dtype=torch.float64) >= THRESHOLDS[idx]

    return flips


def test_arithmetic_budget_search_recovers_planted_thresholds():
    calls = []
    out = flip.budget_search(_planted(calls), 5, 1.0, bisection_steps=20)
    assert out[0] == 0.0  # holds already at budget 0
    assert math.isinf(out[4])  # never holds within [0, eps_max]
    assert torch.all(out[1:4] >= THRESHOLDS[1:4])
    assert torch.allclose(out[1:4], THRESHOLDS[1:4], atol=2**-20)
    assert calls[:2] == [5, 4] and set(calls[2:]) == {3}  # only open brackets are asked again
    for bad in (0.0, -1.0, math.inf):
        with pytest.raises(ParameterError, match="eps_max"):
            flip.budget_search(_planted([]), 5, bad)


def test_geometric_budget_search_brackets_by_doubling():
    out = flip.budget_search(_planted([]), 5, 1.0, doublings=10, bisection_steps=12, geometric=True)
    assert math.isinf(out[4])
    assert torch.all(out[1:4] >= THRESHOLDS[1:4])
    assert torch.all(out[1:4] <= THRESHOLDS[1:4] * 2 ** (2**-12) + 1e-12)  # relative precision
    assert 0 < out[0] <= 2**-10  # the smallest budget: a geometric search never reaches 0


def test_smallest_flipping_eps_of_a_linear_classifier():
    # two-class linear model with logits (w.x, -w.x); FGSM along -sign(w) flips x at eps = |w.x| / |w|_1
    torch.manual_seed(0)
    w = torch.randn(8)
    net = nn.Linear(8, 2, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.stack([w, -w]))
    x = torch.randn(32, 8) * 0.3
    y = net(x).argmax(1)
    expected = (x @ w).abs() / w.abs().sum()
    eps = flip.smallest_flipping_eps(net, attacks.fgsm, x, y, 5.0, bisection_steps=30, clamp=None)
    assert torch.allclose(eps, expected, atol=1e-4)
