"""Flip search: exact on linear scores; the exact two-layer search agrees with bisection."""
import math

import torch

from lib import ensemble, flip


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
    got = flip.flip_distance(lambda z: z @ a + c, x, u, t_max=t_max, tol=1e-9)
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
    got = ensemble.flip_distance(net, x, u[None])[0]
    assert torch.equal(torch.isinf(got), torch.isinf(exact))
    fin = torch.isfinite(exact)
    torch.testing.assert_close(got[fin], exact[fin], atol=1e-9, rtol=1e-9)


def test_exact_search_matches_bisection_on_relu_networks():
    g = torch.Generator().manual_seed(3)
    ens = ensemble.init(3, 6, 20, generator=g, dtype=torch.float64)
    x = torch.randn(25, 6, generator=g, dtype=torch.float64)
    u = torch.randn(3, 25, 6, generator=g, dtype=torch.float64)
    u = u / u.norm(dim=-1, keepdim=True)
    exact = ensemble.flip_distance(ens, x, u)
    bisect = flip.flip_distance(lambda z: ens(z), x.expand(3, -1, -1), u, t_max=20.0, grid=2000, tol=1e-10)
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
