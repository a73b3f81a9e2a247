"""Batched two-layer ensembles: equal to networks trained one by one, and the subspace mechanism."""

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lib import data, ensemble, subspace
from lib.config import ParameterError
from lib.models import TwoLayerReLU


def _single_gd(net, x, y, lr, wd, steps, margin=None):
    """Reference: one network, autograd, torch.optim.SGD on the mean logistic loss."""
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=lr, weight_decay=wd)
    done = 0
    for _ in range(steps):
        loss = F.softplus(-y * net(x)).mean()
        if margin is not None and (y * net(x)).min() >= margin:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        done += 1
    return done


def test_batched_training_equals_single_networks():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (12,), generator=g).double() * 2 - 1
    scales, lrs, wds = [1.0, 0.5, 2.0, 1.0], [0.1, 0.05, 0.02, 0.1], [0.0, 0.01, 0.0, 0.05]
    nets = [TwoLayerReLU(5, 16, init_scale=s, generator=g).double() for s in scales]
    with torch.no_grad():
        for net in nets:
            net.b.normal_(0, 0.3, generator=g)
    ens = ensemble.TwoLayerEnsemble.stack(nets)
    res = ensemble.fit(ens, x, y, lr=lrs, steps=200, weight_decay=wds, progress=False)
    for e, net in enumerate(nets):
        _single_gd(net, x, y, lrs[e], wds[e], 200)
        torch.testing.assert_close(ens.w[e], net.w.detach(), atol=1e-10, rtol=1e-8)
        torch.testing.assert_close(ens.b[e], net.b.detach(), atol=1e-10, rtol=1e-8)
        torch.testing.assert_close(ens.v[e], net.v.detach(), atol=1e-10, rtol=1e-8)
    assert res.steps.tolist() == [200] * 4


def test_each_member_stops_at_its_own_margin():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(10, 4, generator=g, dtype=torch.float64)
    y = torch.where(x[:, 0] > 0, 1.0, -1.0).double()
    nets = [TwoLayerReLU(4, 32, init_scale=s, generator=g).double() for s in (0.5, 1.0, 2.0)]
    ens = ensemble.TwoLayerEnsemble.stack(nets)
    res = ensemble.fit(ens, x, y, lr=0.2, steps=3000, margin=0.5, progress=False)
    for e, net in enumerate(nets):
        n = _single_gd(net, x, y, 0.2, 0.0, 3000, margin=0.5)
        assert res.steps[e].item() == n
        torch.testing.assert_close(ens.w[e], net.w.detach(), atol=1e-9, rtol=1e-7)
    assert res.reached.all() and len(set(res.steps.tolist())) > 1
    assert (res.min_margin >= 0.5).all()


def test_padded_members_are_exactly_the_smaller_networks():
    g = torch.Generator().manual_seed(2)
    small = ensemble.init(1, 3, 8, generator=g, dtype=torch.float64)
    big = ensemble.TwoLayerEnsemble(
        torch.zeros(1, 20, 7, dtype=torch.float64),
        torch.zeros(1, 20, dtype=torch.float64),
        torch.zeros(1, 20, dtype=torch.float64),
    )
    big.w[0, :8, :3], big.b[0, :8], big.v[0, :8] = small.w[0], small.b[0], small.v[0]
    x = torch.randn(9, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (9,), generator=g)
    xp = torch.cat([x, torch.zeros(9, 4, dtype=torch.float64)], 1)
    ensemble.fit(small, x, y, lr=0.1, steps=100, weight_decay=0.01, progress=False)
    ensemble.fit(big, xp, y, lr=0.1, steps=100, weight_decay=0.01, progress=False)
    torch.testing.assert_close(big.w[0, :8, :3], small.w[0])
    assert big.w[0, 8:].abs().max() == 0 and big.w[0, :, 3:].abs().max() == 0 and big.v[0, 8:].abs().max() == 0
    ens = ensemble.init(2, 7, 20, dims=[3, 7], widths=[8, 20], generator=g)
    assert ens.w[0, 8:].abs().max() == 0 and ens.w[0, :, 3:].abs().max() == 0 and ens.b[0, 8:].abs().max() == 0
    assert ens.v[0, 8:].abs().max() == 0 and ens.v[0, :8].abs().min() > 0  # unused output weights are zero


def test_input_gradient_and_output_mass():
    g = torch.Generator().manual_seed(3)
    ens = ensemble.init(2, 6, 10, generator=g, dtype=torch.float64)
    x = torch.randn(5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    auto = torch.autograd.grad(ens(x).sum(), x)[0]  # members do not interact: sum over e of rows
    manual = ens.input_grad(x.detach())
    torch.testing.assert_close(manual.sum(0), auto)
    on = (ens.preactivations(x.detach()) > 0).double()
    torch.testing.assert_close(ens.active_output_mass(x.detach()), (on * ens.v[:, None, :] ** 2).sum(-1))


def test_init_law_follows_fan_in_and_init_scale():
    g = torch.Generator().manual_seed(4)
    ens = ensemble.init(2, 400, 500, init_scale=[1.0, 0.25], generator=g)
    for e, s in enumerate((1.0, 0.25)):
        assert abs(ens.w[e].std().item() / (s / math.sqrt(400)) - 1) < 0.02
        assert abs(ens.v[e].std().item() / (s / math.sqrt(500)) - 1) < 0.1
    fixed = ensemble.init(1, 400, 500, first_layer_std=0.3, generator=g)
    assert abs(fixed.w.std().item() / 0.3 - 1) < 0.02


def _subspace_problem(axis_aligned, seed=5):
    g = torch.Generator().manual_seed(seed)
    sd = data.subspace_points(
        12, 10, 2, rule="xor", generator=g, radius=3.0, axis_aligned=axis_aligned, dtype=torch.float64
    )
    return sd, ensemble.init(3, 10, 16, generator=g, dtype=torch.float64)


def test_orthogonal_weights_frozen_under_gd_and_decay_geometrically_with_weight_decay():
    sd, ens = _subspace_problem(axis_aligned=False)
    w0 = ens.w.clone()
    wds = [0.0, 0.01, 0.05]
    res = ensemble.fit(ens, sd.x, sd.y, lr=0.05, steps=300, weight_decay=wds, progress=False)
    c = res.decay
    perp_t, perp_0 = subspace.project_perp(ens.w, sd.basis), subspace.project_perp(w0, sd.basis)
    torch.testing.assert_close(perp_t, c[:, None, None] * perp_0, atol=1e-10, rtol=0)
    torch.testing.assert_close(c, torch.tensor([1.0, 0.9995, 0.9975], dtype=torch.float64) ** 300)
    assert subspace.project(ens.w - w0, sd.basis).norm() > 0.1  # the in-subspace part did train
    assert c[2] < 0.5


def test_adam_moves_orthogonal_weights_only_when_the_subspace_is_not_axis_aligned():
    for aligned, moves in ((True, False), (False, True)):
        sd, ens = _subspace_problem(axis_aligned=aligned)
        w0 = ens.w.clone()
        ensemble.fit(ens, sd.x, sd.y, lr=0.01, steps=50, optimizer="adam", progress=False)
        drift = subspace.project_perp(ens.w - w0, sd.basis).norm() / subspace.project_perp(w0, sd.basis).norm()
        assert (drift > 1e-2) if moves else (drift < 1e-12)


def test_bad_settings_raise_parameter_errors():
    ens = ensemble.init(2, 3, 4)
    x, y = torch.randn(5, 3), torch.randint(0, 2, (5,))
    with pytest.raises(ParameterError, match="optimizer"):
        ensemble.fit(ens, x, y, lr=0.1, steps=1, optimizer="rmsprop", progress=False)
    with pytest.raises(ParameterError, match="'lr'"):
        ensemble.fit(ens, x, y, lr=-0.1, steps=1, progress=False)
    with pytest.raises(ParameterError, match="init_scale"):
        ensemble.init(2, 3, 4, init_scale=[1.0, 2.0, 3.0])
    with pytest.raises(ParameterError, match="widths"):
        ensemble.init(2, 3, 4, widths=[4, 5])


def _spread_problem(seed=6, E=7):
    """Members whose init scales make them reach the margin at very different steps (float32)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(9, 12, generator=g)
    y = torch.randint(0, 2, (9,), generator=g)
    ens = ensemble.init(E, 12, 24, init_scale=[0.3, 2.0, 1.0, 0.5, 1.5, 0.2, 0.8][:E], generator=g)
    return ens, x, y


def test_finished_members_leave_the_batch_with_the_same_numbers_as_masking():
    ens, x, y = _spread_problem()
    compact, masked = ens.clone(), ens.clone()
    kw = dict(lr=0.1, steps=4000, margin=1.0, weight_decay=[0.0, 0.001] * 3 + [0.0], log_every=50, progress=False)
    rc = ensemble.fit(compact, x, y, compact=True, **kw)
    rm = ensemble.fit(masked, x, y, compact=False, **kw)
    assert len(set(rc.steps.tolist())) >= 5  # members stop at different steps: the batch shrank several times
    assert rc.steps.tolist() == rm.steps.tolist() and rc.reached.all()
    for a, b in zip(compact._tensors(), masked._tensors()):
        if a is not None:
            assert torch.equal(a, b)  # bitwise: a member's numbers do not depend on the batch it runs in
    for key in ("loss", "min_margin"):
        assert np.array_equal(rc.history[key], rm.history[key])


def test_a_finished_member_is_frozen_at_its_stopping_step_and_the_others_are_unaffected():
    ens, x, y = _spread_problem()
    full = ens.clone()
    res = ensemble.fit(full, x, y, lr=0.1, steps=4000, margin=1.0, progress=False)
    first = int(res.steps.argmin())
    alone = ens.clone()  # the same member trained for exactly its number of steps, no margin stop
    ensemble.fit(alone, x, y, lr=0.1, steps=int(res.steps[first]), progress=False)
    torch.testing.assert_close(full.w[first], alone.w[first], atol=0, rtol=0)
    last = int(res.steps.argmax())
    alone = ens.clone()
    ensemble.fit(alone, x, y, lr=0.1, steps=int(res.steps[last]), progress=False)
    torch.testing.assert_close(full.v[last], alone.v[last], atol=0, rtol=0)


def _authors_reference(ens, e, x, y, lr, wd, steps):
    """Member ``e`` as nn.Linear -> ReLU -> nn.Linear -> sigmoid, trained with BCE and SGD(weight_decay)."""
    net = torch.nn.Sequential(torch.nn.Linear(ens.dim, ens.width), torch.nn.ReLU(), torch.nn.Linear(ens.width, 1))
    net = net.double()
    with torch.no_grad():
        net[0].weight.copy_(ens.w[e])
        net[0].bias.copy_(ens.b[e])
        net[2].weight.copy_(ens.v[e][None])
        net[2].bias.copy_(ens.c[e][None])
    opt = torch.optim.SGD(net.parameters(), lr=lr, weight_decay=wd)
    target = (y > 0).double()[:, None]
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy(torch.sigmoid(net(x)), target).backward()
        opt.step()
    return net


def test_output_bias_training_equals_the_authors_bce_and_sgd_with_weight_decay():
    g = torch.Generator().manual_seed(7)
    x = torch.rand(25, 3, generator=g, dtype=torch.float64)
    y = torch.where(torch.rand(25, generator=g) > 0.5, 1.0, -1.0).double()
    ens = ensemble.init(2, 3, 40, init_scale=[1.0, 1 / 3], scheme="pytorch-uniform", generator=g, dtype=torch.float64)
    start = ens.clone()
    ensemble.fit(ens, x, y, lr=0.05, steps=300, weight_decay=[0.0, 0.003], progress=False)
    for e, wd in enumerate((0.0, 0.003)):
        net = _authors_reference(start, e, x, y, 0.05, wd, 300)
        torch.testing.assert_close(ens.w[e], net[0].weight.detach(), atol=1e-10, rtol=1e-8)
        torch.testing.assert_close(ens.b[e], net[0].bias.detach(), atol=1e-10, rtol=1e-8)
        torch.testing.assert_close(ens.c[e], net[2].bias.detach()[0], atol=1e-10, rtol=1e-8)
    torch.testing.assert_close(ens(x), ens.bias_as_unit()(x))  # the bias as an always-on unit


@pytest.mark.parametrize("scheme", ["pytorch-uniform", "gaussian-weights"])
def test_authors_init_divides_weights_by_the_factor_and_leaves_biases_alone(scheme):
    big = ensemble.init(1, 50, 400, init_scale=1.0, scheme=scheme, generator=torch.Generator().manual_seed(8))
    small = ensemble.init(1, 50, 400, init_scale=1 / 3, scheme=scheme, generator=torch.Generator().manual_seed(8))
    torch.testing.assert_close(small.w, big.w / 3)
    torch.testing.assert_close(small.v, big.v / 3)
    assert torch.equal(small.b, big.b) and torch.equal(small.c, big.c)  # biases NOT divided
    assert big.b.abs().max() <= 1 / math.sqrt(50) and big.c.abs().max() <= 1 / math.sqrt(400)
    assert abs(big.b.std().item() / (1 / math.sqrt(3 * 50)) - 1) < 0.1  # U(-a, a) has std a / sqrt(3)
    if scheme == "pytorch-uniform":
        assert big.w.abs().max() <= 1 / math.sqrt(50) and abs(big.w.std().item() * math.sqrt(3 * 50) - 1) < 0.02
    else:
        assert abs(big.w.std().item() * math.sqrt(50) - 1) < 0.02
    book = ensemble.init(1, 50, 400, init_scale=1 / 3, generator=torch.Generator().manual_seed(8))
    assert book.c is None and abs(book.b.std().item() * 3 * math.sqrt(50) - 1) < 0.1  # the book divides biases too
    with pytest.raises(ParameterError, match="scheme"):
        ensemble.init(1, 3, 4, scheme="xavier")


def test_diverged_members_are_named_in_a_warning_and_a_stable_fit_warns_nothing():
    x = torch.randn(50, 10, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long()
    ens = ensemble.init(4, 10, 20, generator=torch.Generator().manual_seed(0))
    with pytest.warns(
        RuntimeWarning,
        match=r"^ensemble: the training loss of 2 of 4 members is not finite after 200 steps \(members 1, 2\)",
    ):
        fit = ensemble.fit(ens, x, y, lr=[0.1, 1e6, 1e8, 0.1], steps=200, progress=False)
    assert torch.isfinite(fit.loss[[0, 3]]).all() and not torch.isfinite(fit.loss[[1, 2]]).any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ensemble.fit(
            ensemble.init(4, 10, 20, generator=torch.Generator().manual_seed(0)),
            x,
            y,
            lr=0.1,
            steps=200,
            progress=False,
        )


@pytest.mark.parametrize("betas, tol", [((0.5, 0.75), 1e-10), ((0.9, 0.999), 1e-10)])
def test_adam_equals_torch_optim_adam_on_each_network(betas, tol):
    """Adam's moments, bias corrections and L2 term as ``torch.optim.Adam``'s (autograd, one network at a time).

    Few steps keep the bias corrections far from 1, where leaving them out shows most. In float64
    both agree to round-off, with betas exact in binary (0.5, 0.75) and with the default ones
    (0.9, 0.999), which a float32 rounding of the betas would move by a relative 1e-7 or so.
    """
    g = torch.Generator().manual_seed(4)
    x = torch.randn(12, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (12,), generator=g).double() * 2 - 1
    lrs, wds = [0.01, 0.003, 0.02], [0.0, 0.01, 0.05]
    nets = [TwoLayerReLU(5, 16, generator=g).double() for _ in lrs]
    with torch.no_grad():
        for net in nets:
            net.b.normal_(0, 0.3, generator=g)
    ens = ensemble.TwoLayerEnsemble.stack(nets)
    ensemble.fit(ens, x, y, lr=lrs, steps=30, weight_decay=wds, optimizer="adam", betas=betas, progress=False)
    for e, net in enumerate(nets):
        opt = torch.optim.Adam(net.parameters(), lr=lrs[e], betas=betas, eps=1e-8, weight_decay=wds[e])
        for _ in range(30):
            opt.zero_grad()
            F.softplus(-y * net(x)).mean().backward()
            opt.step()
        for mine, ref in ((ens.w[e], net.w), (ens.b[e], net.b), (ens.v[e], net.v)):
            torch.testing.assert_close(mine, ref.detach(), atol=tol, rtol=10 * tol)


def test_signed_maps_0_1_and_keeps_minus_1_plus_1_and_refuses_other_integers():
    """0/1 and -1/+1 integer labels both come out as -1/+1 floats; any other integer label is refused."""
    assert ensemble.signed(torch.tensor([0, 1, 1, 0])).tolist() == [-1.0, 1.0, 1.0, -1.0]
    assert ensemble.signed(torch.tensor([-1, 1, -1])).tolist() == [-1.0, 1.0, -1.0]
    assert ensemble.signed(torch.tensor([True, False])).tolist() == [1.0, -1.0]
    assert ensemble.signed(torch.tensor([-0.5, 2.0])).tolist() == [-0.5, 2.0]  # floats pass as they are
    for bad in ([0, 1, 2], [-2, 1], [3]):
        with pytest.raises(ValueError, match=r"labels must be 0/1 or -1/\+1"):
            ensemble.signed(torch.tensor(bad))


def test_logistic_loss_by_hand():
    """``log(1 + exp(-y f))`` averaged over the last axis: log 2 at f = 0, log(1 + e^2) for a wrong sign of size 2."""
    f = torch.tensor([[0.0, 2.0], [2.0, 2.0]], dtype=torch.float64)  # y f = (0, -2) and (2, -2)
    y = torch.tensor([1.0, -1.0], dtype=torch.float64)
    expected = torch.tensor(
        [(math.log(2) + math.log(1 + math.e**2)) / 2, (math.log(1 + math.e**2) + math.log(1 + math.e**-2)) / 2],
        dtype=torch.float64,
    )
    torch.testing.assert_close(ensemble.logistic_loss(f, y), expected)


def test_concat_keeps_the_members_in_order_and_refuses_mixing_output_biases():
    g = torch.Generator().manual_seed(9)
    a, b = ensemble.init(2, 3, 4, generator=g), ensemble.init(1, 3, 4, generator=g)
    both = ensemble.TwoLayerEnsemble.concat([a, b])
    assert both.n_members == 3 and both.c is None
    for t, ta, tb in zip(both._tensors()[:3], a._tensors()[:3], b._tensors()[:3]):
        assert torch.equal(t[:2], ta) and torch.equal(t[2:], tb)
    ua = ensemble.init(1, 3, 4, scheme="pytorch-uniform", generator=g)
    ub = ensemble.init(2, 3, 4, scheme="pytorch-uniform", generator=g)
    assert torch.equal(ensemble.TwoLayerEnsemble.concat([ua, ub]).c, torch.cat([ua.c, ub.c]))
    with pytest.raises(ValueError, match="with and without an output bias"):
        ensemble.TwoLayerEnsemble.concat([a, ua])


def test_init_draws_each_members_first_layer_independently():
    """Members of the same scale get different weights (a draw shared by all members would make them equal)."""
    for scheme in ensemble.INIT_SCHEMES:
        ens = ensemble.init(3, 4, 5, scheme=scheme, generator=torch.Generator().manual_seed(10))
        for e in (1, 2):
            assert not torch.allclose(ens.w[e], ens.w[0])
            assert not torch.allclose(ens.v[e], ens.v[0])


def test_without_train_output_the_output_layer_is_frozen_and_no_history_by_default():
    """``train_output=False`` trains only ``w`` and ``b`` (``v`` and ``c`` stay bit for bit); ``log_every=0``
    (the default) keeps no history, ``log_every=k`` logs steps 0, k, 2k, ..."""
    g = torch.Generator().manual_seed(11)
    x = torch.randn(8, 3, generator=g)
    y = torch.randint(0, 2, (8,), generator=g)
    for scheme in ("fan-in-gaussian", "pytorch-uniform"):
        ens = ensemble.init(2, 3, 6, scheme=scheme, generator=g)
        start = ens.clone()
        res = ensemble.fit(ens, x, y, lr=0.1, steps=20, train_output=False, progress=False)
        assert res.history == {}
        assert torch.equal(ens.v, start.v) and (ens.c is None or torch.equal(ens.c, start.c))
        assert not torch.equal(ens.w, start.w) and not torch.equal(ens.b, start.b)
        ensemble.fit(ens, x, y, lr=0.1, steps=5, progress=False)
        assert not torch.equal(ens.v, start.v)  # trained when asked (the default)
    res = ensemble.fit(ens, x, y, lr=0.1, steps=7, log_every=3, progress=False)
    assert res.history["step"].tolist() == [0, 3, 6] and res.history["loss"].shape == (3, 2)


def test_divergence_warning_lists_ten_members_and_counts_the_rest():
    """At most ten diverged members are listed by index: exactly ten are all listed, eleven say '1 more'."""
    lr = torch.full((12,), 0.5)
    for n_bad, listed in ((10, "0, 1, 2, 3, 4, 5, 6, 7, 8, 9)"), (11, "0, 1, 2, 3, 4, 5, 6, 7, 8, 9 and 1 more)")):
        loss = torch.zeros(12)
        loss[:n_bad] = float("nan")
        with pytest.warns(RuntimeWarning) as record:
            ensemble._warn_diverged(loss, lr, 5, "planted")
        message = str(record[0].message)
        assert f"{n_bad} of 12 members is not finite after 5 steps (members {listed}" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ensemble._warn_diverged(torch.zeros(12), lr, 5, "planted")


def test_per_member_data_follow_their_members_when_the_batch_shrinks():
    """``x`` of shape ``(E, n, d)``: each member its own inputs. When finished members leave the batch, the
    inputs of those that keep running are gathered with them: the same numbers as keeping everyone (masking)."""
    ens, x, y = _spread_problem()
    xs = x * torch.linspace(0.5, 2.0, ens.n_members)[:, None, None]  # member e sees its own scaling of x
    compact, masked = ens.clone(), ens.clone()
    kw = dict(lr=0.1, steps=4000, margin=1.0, progress=False)
    rc = ensemble.fit(compact, xs, y, compact=True, **kw)
    rm = ensemble.fit(masked, xs, y, compact=False, **kw)
    assert len(set(rc.steps.tolist())) >= 4 and rc.reached.all()
    assert rc.steps.tolist() == rm.steps.tolist()
    for a, b in zip(compact._tensors(), masked._tensors()):
        if a is not None:
            assert torch.equal(a, b)


@pytest.mark.parametrize("n", [64, 63])
def test_a_members_numbers_do_not_depend_on_how_many_members_share_its_batch(n):
    """Float32 training of one member in batches of 2, 3 and 7 members gives bit-identical weights. Planted at
    ``n`` = 64 and 63 samples, where a row of the loss's sigmoid fills (or nearly fills) its padded SIMD lanes."""
    g = torch.Generator().manual_seed(12)
    x = torch.randn(n, 10, generator=g)
    y = torch.randint(0, 2, (n,), generator=g)
    ens = ensemble.init(7, 10, 16, generator=g)
    results = {}
    for E in (7, 3, 2):
        part = ens.select(torch.arange(7 - E, 7))  # the last member is last in every batch
        ensemble.fit(part, x, y, lr=0.5, steps=60, progress=False)
        results[E] = part.w[-1], part.v[-1]
    for E in (3, 2):
        assert torch.equal(results[E][0], results[7][0]) and torch.equal(results[E][1], results[7][1])


def test_zero_steps_change_nothing_and_count_zero_updates():
    """steps=0: no update is made, so every member reports 0 steps and keeps its parameters."""
    g = torch.Generator().manual_seed(7)
    ens = ensemble.init(3, 4, 6, generator=g, dtype=torch.float64)
    before = ens.clone()
    x, y = torch.randn(8, 4, generator=g, dtype=torch.float64), torch.randint(0, 2, (8,), generator=g)
    res = ensemble.fit(ens, x, y, lr=0.1, steps=0, progress=False)
    assert res.steps.tolist() == [0, 0, 0] and torch.equal(res.decay, torch.ones(3, dtype=torch.float64))
    for mine, theirs in zip(ens._tensors()[:3], before._tensors()[:3]):
        assert torch.equal(mine, theirs)
    assert ensemble.fit(ens, x, y, lr=0.1, steps=3, progress=False).steps.tolist() == [3, 3, 3]


def test_a_learning_rate_must_be_positive_while_weight_decay_may_be_zero():
    """lr = 0 (the boundary) is refused as 'lr' must be > 0; weight_decay = 0 is allowed, -0.1 is not."""
    ens = ensemble.init(2, 3, 4)
    x, y = torch.randn(5, 3), torch.randint(0, 2, (5,))
    with pytest.raises(ParameterError, match=r"'lr' must be finite and > 0"):
        ensemble.fit(ens, x, y, lr=0.0, steps=1, progress=False)
    with pytest.raises(ParameterError, match=r"'lr' must be finite and > 0"):
        ensemble.fit(ens, x, y, lr=[0.1, 0.0], steps=1, progress=False)
    with pytest.raises(ParameterError, match=r"'weight_decay' must be finite and >= 0"):
        ensemble.fit(ens, x, y, lr=0.1, weight_decay=-0.1, steps=1, progress=False)
    assert ensemble.fit(ens, x, y, lr=0.1, weight_decay=0.0, steps=1, progress=False).steps.tolist() == [1, 1]


def test_member_is_the_same_network_as_a_single_model():
    """member(e) copies member e into a TwoLayerReLU that computes the ensemble's e-th output; with an
    output bias it is refused (TwoLayerReLU has none)."""
    g = torch.Generator().manual_seed(8)
    ens = ensemble.init(3, 4, 6, generator=g, dtype=torch.float32)
    x = torch.randn(7, 4, generator=g)
    for e in range(3):
        net = ens.member(e)
        assert isinstance(net, TwoLayerReLU)
        assert torch.equal(net.b.detach(), ens.b[e]) and torch.equal(net.w.detach(), ens.w[e])
        torch.testing.assert_close(net(x).detach(), ens(x)[e])
    with pytest.raises(ValueError, match="output bias"):
        ensemble.init(2, 4, 6, scheme="pytorch-uniform", generator=g).member(0)


@pytest.mark.parametrize("d", [15, 16])
def test_both_first_layer_gradient_layouts_equal_single_networks(d):
    """The first-layer gradient is written in the weights' layout from d = 16 on and transposed below
    it: either way, plain GD on the ensemble equals each network trained alone with torch.optim.SGD."""
    g = torch.Generator().manual_seed(9)
    x = torch.randn(10, d, generator=g, dtype=torch.float64)
    y = torch.where(x[:, 0] > 0, 1.0, -1.0).double()
    nets = [TwoLayerReLU(d, 8, init_scale=s, generator=g).double() for s in (1.0, 2.0)]
    with torch.no_grad():
        for net in nets:
            net.b.normal_(0, 0.3, generator=g)
    ens = ensemble.TwoLayerEnsemble.stack(nets)
    ensemble.fit(ens, x, y, lr=0.1, steps=20, weight_decay=0.01, progress=False)
    for e, net in enumerate(nets):
        _single_gd(net, x, y, 0.1, 0.01, 20)
        torch.testing.assert_close(ens.w[e], net.w.detach(), atol=1e-10, rtol=1e-8)
        torch.testing.assert_close(ens.b[e], net.b.detach(), atol=1e-10, rtol=1e-8)
