"""Vectorised bisection finds planted per-sample thresholds; flipping budgets of a linear model."""
import math

import pytest
import torch
from torch import nn

from lib import attacks, bisection
from lib.config import ParameterError


def test_bisect_recovers_planted_thresholds():
    thresholds = torch.tensor([0.0, 0.1, 0.37, 0.99, 2.0], dtype=torch.float64)
    calls = []

    def pred(v):
        calls.append(v.shape)
        return v >= thresholds

    out = bisection.bisect(pred, 5, 0.0, 1.0, steps=20)
    assert out[0] == 0.0  # holds already at lo
    assert math.isinf(out[4])  # never holds within [lo, hi]
    assert torch.all(out[1:4] >= thresholds[1:4])
    assert torch.allclose(out[1:4], thresholds[1:4], atol=2 ** -20)
    assert all(s == (5,) for s in calls)  # all samples tested together
    with pytest.raises(ParameterError):
        bisection.bisect(pred, 5, 1.0, 1.0)


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
    eps = bisection.smallest_flipping_eps(net, attacks.fgsm, x, y, 5.0, bisection_steps=30, clamp=None)
    assert torch.allclose(eps, expected, atol=1e-4)
