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
        hist = le.train_local(
            m, x, y, epochs=20, batch_size=16, lr=1e-2, generator=torch.Generator().manual_seed(3), progress=False
        )
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
    ro = le.fit_linear_readouts(
        m, x, y, 3, epochs=30, lr=1e-2, batch_size=32, generator=torch.Generator().manual_seed(0)
    )
    assert [r.in_features for r in ro] == [16, 12, 8]
    assert train.accuracy(le.LayerReadout(m, 1, ro[0]), x, y) > 0.9


def test_bad_readout_scale_raises():
    with pytest.raises(ParameterError, match="readout_scale"):
        le.LocalErrorMLP(6, [4], 3, readout_scale=0.0)


def test_annealed_fit_is_a_shorter_fit_then_a_lower_rate():
    x, y = toy()
    a, b, c = net(scale=0.3), net(scale=0.3), net(scale=0.3)
    le.fit_annealed(
        a,
        x,
        y,
        epochs=4,
        anneal_epochs=0,
        batch_size=16,
        loss_fn=le.local_loss,
        generator=torch.Generator().manual_seed(3),
        progress=False,
    )
    le.train_local(b, x, y, epochs=4, batch_size=16, generator=torch.Generator().manual_seed(3), progress=False)
    torch.testing.assert_close(a.hidden[1].weight, b.hidden[1].weight)  # no annealing = train.fit
    hist = le.fit_annealed(
        c,
        x,
        y,
        epochs=4,
        anneal_epochs=2,
        batch_size=16,
        loss_fn=le.local_loss,
        generator=torch.Generator().manual_seed(3),
        progress=False,
    )
    assert list(hist.epoch) == [1, 2, 3, 4]
    assert not torch.allclose(c.hidden[1].weight, b.hidden[1].weight)  # the last two epochs differ
    with pytest.raises(ParameterError, match="anneal_epochs"):
        le.fit_annealed(c, x, y, epochs=3, anneal_epochs=3, progress=False)


def test_snapshots_equal_shorter_trainings():
    x, y = toy()
    per_epoch = 96 // 16
    snaps = le.Snapshots({"init": 0, "one": per_epoch, "two": 2 * per_epoch})
    m = net(scale=0.3)
    init = [p.clone() for p in m.parameters()]
    le.train_local(
        m, x, y, epochs=3, batch_size=16, transform=snaps, generator=torch.Generator().manual_seed(3), progress=False
    )
    assert snaps.step == 3 * per_epoch
    for p0, p1 in zip(init, snaps.restore(m, "init").parameters()):
        assert torch.equal(p0, p1)
    for label, epochs in (("one", 1), ("two", 2)):
        short = net(scale=0.3)
        le.train_local(
            short, x, y, epochs=epochs, batch_size=16, generator=torch.Generator().manual_seed(3), progress=False
        )
        torch.testing.assert_close(snaps.restore(m, label).hidden[2].weight, short.hidden[2].weight)
    with pytest.raises(KeyError, match="nope"):
        snaps.restore(m, "nope")


def test_logistic_regression_fits_and_reads_raw_features():
    x, y = toy(n=300)
    x = 50 * x + 7  # badly scaled features: the fit standardises them internally
    lin = le.fit_logistic(x, y, 3, l2=1e-3)
    assert train.accuracy(lin, x, y) > 0.95
    strong = le.fit_logistic(x, y, 3, l2=10.0)
    assert strong.weight.norm() < lin.weight.norm()  # the penalty shrinks the weights
    a, l2a = le.tuned_logistic(x, y, 3, l2_grid=[1e-3, 1.0, 100.0], generator=torch.Generator().manual_seed(0))
    b, l2b = le.tuned_logistic(x, y, 3, l2_grid=[1e-3, 1.0, 100.0], generator=torch.Generator().manual_seed(0))
    assert l2a == l2b and l2a in (1e-3, 1.0)  # a penalty of 100 underfits on held-out data
    torch.testing.assert_close(a.weight, b.weight)
    with pytest.raises(ParameterError, match="val_fraction"):
        le.tuned_logistic(x, y, 3, l2_grid=[1.0], val_fraction=1.0)


def test_annealed_stage_runs_at_a_tenth_of_the_rate():
    """fit_annealed is, step for step, train.fit at lr then train.fit at lr / 10 drawing from the same generator."""
    x, y = toy()
    a, b = net(scale=0.3), net(scale=0.3)
    kw = dict(batch_size=16, loss_fn=le.local_loss, progress=False)
    hist = le.fit_annealed(
        a, x, y, epochs=5, anneal_epochs=3, lr=0.02, generator=torch.Generator().manual_seed(3), **kw
    )
    g = torch.Generator().manual_seed(3)
    early = train.fit(b, x, y, epochs=2, lr=0.02, generator=g, **kw)
    late = train.fit(b, x, y, epochs=3, lr=0.002, generator=g, **kw)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert hist.loss.tolist() == early.loss.tolist() + late.loss.tolist()
    assert list(hist.epoch) == [1, 2, 3, 4, 5]


def test_annealed_fit_defaults_to_no_annealing_and_one_seed_zero_generator_for_both_stages():
    """Without ``anneal_epochs`` the whole run is at ``lr`` (train.fit itself); without ``generator``
    one generator seeded 0 draws every epoch's order, the annealed stage going on from the first
    stage's draws (not restarting at seed 0, which would repeat the first epochs' orders)."""
    x, y = toy()
    kw = dict(batch_size=16, loss_fn=le.local_loss, progress=False)
    a, b = net(scale=0.3), net(scale=0.3)
    le.fit_annealed(a, x, y, epochs=3, lr=0.02, generator=torch.Generator().manual_seed(3), **kw)
    train.fit(b, x, y, epochs=3, lr=0.02, generator=torch.Generator().manual_seed(3), **kw)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    c, d = net(scale=0.3), net(scale=0.3)
    le.fit_annealed(c, x, y, epochs=3, anneal_epochs=1, lr=0.02, **kw)
    g = torch.Generator().manual_seed(0)
    train.fit(d, x, y, epochs=2, lr=0.02, generator=g, **kw)
    train.fit(d, x, y, epochs=1, lr=0.002, generator=g, **kw)
    for p, q in zip(c.parameters(), d.parameters()):
        assert torch.equal(p, q)


def test_linear_readouts_use_the_generator_and_weight_decay_and_fit_quietly(capsys):
    """Each readout's batch order comes from ``generator`` (another seed, other readouts; the same
    seed, the same ones) and ``weight_decay`` shrinks its weights; no progress bar is printed."""
    x, y = toy()
    m = net()

    def fit(seed, weight_decay=0.0):
        torch.manual_seed(0)  # the readouts' initial weights
        return le.fit_linear_readouts(
            m,
            x,
            y,
            3,
            epochs=5,
            lr=1e-2,
            batch_size=16,
            weight_decay=weight_decay,
            generator=torch.Generator().manual_seed(seed),
        )

    one, again, other = fit(1), fit(1), fit(2)
    assert all(torch.equal(r.weight, s.weight) for r, s in zip(one, again))
    assert all(not torch.equal(r.weight, s.weight) for r, s in zip(one, other))
    decayed = fit(1, weight_decay=1.0)
    assert all(d.weight.norm() < r.weight.norm() for d, r in zip(decayed, one))
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
