"""Local-error training: no gradient crosses layers, fixed readouts never move, readouts read layers."""
import pytest
import torch
import torch.nn.functional as F

from lib import local_errors as le
from lib import train
from lib.config import ParameterError


def toy(n=96, d=6, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = 2 * torch.randn(k, d, generator=g)
    y = torch.randint(0, k, (n,), generator=g)
    return centers[y] + 0.3 * torch.randn(n, d, generator=g), y


def net(seed=0, widths=(16, 12, 8), scale=0.01):
    torch.manual_seed(seed)
    return le.LocalErrorMLP(6, list(widths), 3, readout_scale=scale, generator=torch.Generator().manual_seed(seed))


def test_no_gradient_crosses_layers():
    x, y = toy()
    g = le.cross_layer_gradients(net(), x, y)
    assert g.shape == (4, 4)  # three hidden-layer losses + top loss, three layers + head
    off = g - torch.diag(torch.diag(g))
    assert torch.all(off == 0)
    assert torch.all(torch.diag(g) > 0)


def test_backprop_loss_would_cross_layers():
    """The check can fail: the end-to-end loss does reach the first layer."""
    x, y = toy()
    m = net()
    loss = F.cross_entropy(m(x), y)
    (gw,) = torch.autograd.grad(loss, [m.hidden[0].weight])
    assert gw.abs().max() > 0


def test_layer_gradients_equal_their_own_loss_alone():
    x, y = toy()
    m = net()
    m.zero_grad()
    le.local_loss(m, x, y).backward()
    total = m.hidden[1].weight.grad.clone()
    (own,) = torch.autograd.grad(le.local_losses(m, x, y)[1], [m.hidden[1].weight])
    torch.testing.assert_close(total, own)


def test_readouts_are_fixed_buffers_scaled_as_asked():
    m = net()
    assert all(not b.requires_grad for b in m.readouts)
    assert len(list(m.parameters())) == 2 * 3 + 2  # weights and biases, no readout
    draw = le.LocalErrorMLP(6, [4000], 3, readout_scale=0.01, generator=torch.Generator().manual_seed(1))
    assert draw.readouts[0].std().item() == pytest.approx(0.01, rel=0.05)
    before = [b.clone() for b in m.readouts]
    x, y = toy()
    le.train_local(m, x, y, epochs=2, batch_size=32, progress=False)
    for b0, b1 in zip(before, m.readouts):
        assert torch.equal(b0, b1)


def test_training_is_deterministic_and_learns():
    x, y = toy()
    runs = []
    for _ in range(2):
        m = net(scale=0.3)
        hist = le.train_local(m, x, y, epochs=20, batch_size=16, lr=1e-2, generator=torch.Generator().manual_seed(3),
                              progress=False)
        runs.append((m, hist))
    torch.testing.assert_close(runs[0][0].hidden[2].weight, runs[1][0].hidden[2].weight)
    assert hist.loss.iloc[-1] < hist.loss.iloc[0]
    m = runs[0][0]
    for depth, b in enumerate(m.readouts, start=1):
        assert train.accuracy(le.LayerReadout(m, depth, b), x, y) > 0.9


def test_layer_readout_matches_manual_forward_and_passes_input_gradients():
    m = net()
    x, _ = toy(n=5)
    h = m(x, return_hidden=True)[1]
    r = le.LayerReadout(m, 2, m.readouts[1])
    torch.testing.assert_close(r(x), h[1] @ m.readouts[1].T)
    xr = x.clone().requires_grad_(True)
    r(xr).sum().backward()
    assert xr.grad.abs().sum() > 0
    with pytest.raises(ParameterError):
        le.LayerReadout(m, 4, m.readouts[0])


def test_fitted_linear_readouts_read_every_layer():
    x, y = toy()
    m = net()
    ro = le.fit_linear_readouts(m, x, y, 3, epochs=30, lr=1e-2, batch_size=32,
                                generator=torch.Generator().manual_seed(0))
    assert [r.in_features for r in ro] == [16, 12, 8]
    assert train.accuracy(le.LayerReadout(m, 1, ro[0]), x, y) > 0.9


def test_bad_readout_scale_raises():
    with pytest.raises(ParameterError, match="readout_scale"):
        le.LocalErrorMLP(6, [4], 3, readout_scale=0.0)
