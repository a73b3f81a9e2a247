import pytest
import torch

from lib import attacks, models, train
from lib.config import ParameterError


@pytest.fixture(scope="module")
def trained():
    """A small MLP trained on two well-separated blobs in [0, 1]^20."""
    g = torch.Generator().manual_seed(0)
    n, d = 400, 20
    y = torch.randint(0, 2, (n,), generator=g)
    x = (0.5 + 0.15 * (2 * y[:, None] - 1) + 0.05 * torch.randn(n, d, generator=g)).clamp(0, 1)
    torch.manual_seed(0)
    net = models.MLP(d, [32], 2)
    train.fit(net, x, y, epochs=20, batch_size=50, lr=1e-2, generator=g, progress=False)
    assert train.accuracy(net, x, y) > 0.98
    return net, x, y


def all_attacks(generator_seed=0):
    g = lambda: torch.Generator().manual_seed(generator_seed)  # noqa: E731
    return {
        "fgsm": lambda m, x, y, e: attacks.fgsm(m, x, y, e),
        "pgd_linf": lambda m, x, y, e: attacks.pgd(m, x, y, e, steps=10, generator=g()),
        "pgd_l2": lambda m, x, y, e: attacks.pgd(m, x, y, e, norm="l2", steps=10, generator=g()),
        "noise": lambda m, x, y, e: attacks.gaussian_noise(x, e, generator=g()),
    }


@pytest.mark.parametrize("name", ["fgsm", "pgd_linf", "pgd_l2", "noise"])
def test_budget_range_inputs_untouched(trained, name):
    net, x, y = trained
    x_before = x.clone()
    eps = 0.1
    xa = all_attacks()[name](net, x, y, eps)
    assert torch.equal(x, x_before)
    assert xa.min() >= 0 and xa.max() <= 1
    delta = (xa - x).flatten(1)
    if name in ("fgsm", "pgd_linf"):
        assert delta.abs().max() <= eps + 1e-6
    elif name == "pgd_l2":
        assert delta.norm(dim=1).max() <= eps + 1e-5


@pytest.mark.parametrize("name", ["fgsm", "pgd_linf", "pgd_l2"])
@pytest.mark.parametrize("mode", [True, False])
def test_mode_restored_and_no_param_grads(trained, name, mode):
    net, x, y = trained
    net.zero_grad(set_to_none=True)
    net.train(mode)
    all_attacks()[name](net, x[:10], y[:10], 0.1)
    assert net.training is mode
    assert all(p.grad is None for p in net.parameters())
    net.eval()


def test_accuracy_drops_and_pgd_beats_noise(trained):
    net, x, y = trained
    eps = 0.2
    acc = {name: train.accuracy(net, atk(net, x, y, eps), y) for name, atk in all_attacks().items()}
    assert acc["fgsm"] < 0.5 and acc["pgd_linf"] <= acc["fgsm"] + 0.02
    assert acc["noise"] > acc["pgd_linf"] + 0.3
    assert train.accuracy(net, attacks.pgd(net, x, y, 1.5, norm="l2", steps=20), y) < 0.5


def test_deterministic_with_generator(trained):
    net, x, y = trained
    # few small steps, so the random start still shows in the result
    kw = dict(steps=2, step_size=0.01)
    a = attacks.pgd(net, x, y, 0.1, generator=torch.Generator().manual_seed(5), **kw)
    b = attacks.pgd(net, x, y, 0.1, generator=torch.Generator().manual_seed(5), **kw)
    c = attacks.pgd(net, x, y, 0.1, generator=torch.Generator().manual_seed(6), **kw)
    assert torch.equal(a, b) and not torch.equal(a, c)
    n1 = attacks.gaussian_noise(x, 0.1, generator=torch.Generator().manual_seed(1))
    n2 = attacks.gaussian_noise(x, 0.1, generator=torch.Generator().manual_seed(1))
    assert torch.equal(n1, n2)


def test_targeted_raises_target_probability(trained):
    net, x, y = trained
    target = 1 - y
    p_before = torch.softmax(net(x), 1).gather(1, target[:, None]).mean()
    assert p_before < 0.05
    for xa in (
        attacks.fgsm(net, x, target, 0.2, targeted=True),
        attacks.pgd(net, x, target, 0.2, targeted=True, generator=torch.Generator().manual_seed(0)),
    ):
        p_after = torch.softmax(net(xa), 1).gather(1, target[:, None]).mean()
        assert p_after > 0.5


def test_per_sample_eps_and_fgsm_matches_formula(trained):
    net, x, y = trained
    eps = torch.linspace(0, 0.2, len(x))
    xa = attacks.fgsm(net, x, y, eps, clamp=None)
    assert torch.allclose((xa - x).abs().amax(1), eps, atol=1e-6)
    xr = x.detach().requires_grad_(True)
    torch.nn.functional.cross_entropy(net(xr), y, reduction="sum").backward()
    assert torch.allclose(xa, x + eps[:, None] * xr.grad.sign())


def test_bad_budget_names_parameter(trained):
    net, x, y = trained
    with pytest.raises(ParameterError, match="'eps'"):
        attacks.fgsm(net, x, y, -0.1)
    with pytest.raises(ParameterError, match="'norm'.*'linf', 'l2'"):
        attacks.pgd(net, x, y, 0.1, norm="l1")
    with pytest.raises(ParameterError, match="'std'"):
        attacks.gaussian_noise(x, -1.0)


def test_project_keeps_perturbation_in_subspace(trained):
    net, x, y = trained
    basis = torch.eye(20)[:, :3]
    proj = lambda v: v @ basis @ basis.T  # noqa: E731
    xa = attacks.pgd(net, x, y, 0.3, norm="l2", clamp=None, project=proj, generator=torch.Generator().manual_seed(0))
    delta = xa - x
    assert torch.allclose(delta, proj(delta), atol=1e-6)
    assert delta[:, 3:].abs().max() < 1e-6


def _pgd_textbook(
    model,
    x,
    y,
    eps,
    norm="linf",
    steps=10,
    step_size=None,
    random_start=True,
    generator=None,
    targeted=False,
    clamp=(0.0, 1.0),
    project=None,
):
    """PGD as first written: delta state, box then range clamp, one operation at a time."""
    shape = (-1, *([1] * (x.ndim - 1)))
    e = torch.as_tensor(eps, dtype=x.dtype)
    e = e.view(shape) if e.ndim else e
    alpha = 2.5 * e / steps if step_size is None else torch.as_tensor(step_size, dtype=x.dtype)
    rng = (lambda t: t) if clamp is None else (lambda t: t.clamp(*clamp))  # noqa: E731
    unit = lambda v: v / v.flatten(1).norm(dim=1).clamp_min(1e-12).view(shape)  # noqa: E731
    x0, delta = x.detach(), torch.zeros_like(x)
    if random_start:
        if norm == "linf":
            delta = (torch.rand(x.shape, generator=generator) * 2 - 1) * e
        else:
            r = torch.randn(x.shape, generator=generator)
            u = torch.rand(len(x), generator=generator)
            delta = unit(r) * u.pow(1.0 / x[0].numel()).view(shape) * e
        delta = project(delta) if project is not None else delta
        delta = rng(x0 + delta) - x0
    was = model.training
    model.eval()
    for _ in range(steps):
        xr = (x0 + delta).requires_grad_(True)
        (g,) = torch.autograd.grad(torch.nn.functional.cross_entropy(model(xr), y, reduction="sum"), xr)
        g = -g if targeted else g
        g = project(g) if project is not None else g
        if norm == "linf":
            delta = torch.maximum(torch.minimum(delta + alpha * g.sign(), e), -e)
        else:
            delta = delta + alpha * unit(g)
            dn = delta.flatten(1).norm(dim=1).view(shape)
            delta = delta * torch.clamp(e / dn.clamp_min(1e-12), max=1.0)
        delta = rng(x0 + delta) - x0
    model.train(was)
    return x0 + delta


@pytest.mark.parametrize(
    "case",
    [
        dict(norm="linf", eps=0.1),
        dict(norm="l2", eps=0.8),
        dict(norm="linf", eps=0.1, random_start=False),
        dict(norm="l2", eps=0.8, random_start=False),
        dict(norm="linf", eps=0.2, targeted=True),
        dict(norm="l2", eps=1.0, targeted=True, steps=5),
        dict(norm="linf", eps="per-sample", clamp=None),
        dict(norm="l2", eps="per-sample", step_size=0.05),
        dict(norm="l2", eps=0.5, project="first-3", clamp=None),
        dict(norm="linf", eps=0.1, project="first-3"),
    ],
)
def test_pgd_matches_textbook_loop(trained, case):
    """The streamlined update computes the same iterates as the step-by-step loop, to round-off."""
    net, x, y = trained
    case = dict(case)
    if case["eps"] == "per-sample":
        case["eps"] = torch.linspace(0.0, 0.3, len(x))
    if case.get("project") == "first-3":
        basis = torch.eye(x.shape[1])[:, :3]
        case["project"] = lambda v: v @ basis @ basis.T
    if case.get("targeted"):
        y = 1 - y
    new = attacks.pgd(net, x, y, generator=torch.Generator().manual_seed(3), **case)
    old = _pgd_textbook(net, x, y, generator=torch.Generator().manual_seed(3), **case)
    assert (new - x).abs().max() > 1e-3  # the attack moved the points
    assert torch.allclose(new, old, rtol=0, atol=1e-5), (new - old).abs().max()


def test_pgd_training_transform_is_pgd_with_its_generator(trained):
    """The adversarial-training batch transform returns the same examples as pgd, one draw per batch."""
    net, x, y = trained
    make = attacks.pgd_training(0.8, norm="l2", steps=3, generator=torch.Generator().manual_seed(5), clamp=None)
    g = torch.Generator().manual_seed(5)
    for _ in range(2):  # the second batch draws from the advanced generator
        want = attacks.pgd(net, x, y, 0.8, norm="l2", steps=3, generator=g, clamp=None)
        assert torch.equal(make(net, x, y), want)
    with pytest.raises(ParameterError, match="norm"):
        attacks.pgd_training(0.8, norm="l1", steps=3)


@pytest.fixture
def two_threads():
    """torch at 2 CPU threads for the test, then back at its previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_serial_update_same_iterates_and_threads_restored(trained, norm, monkeypatch, two_threads):
    """At 2 threads the update runs on one thread for a small batch: same iterates, thread count restored."""
    net, x, y = trained
    kw = dict(norm=norm, steps=5, random_start=True)
    seen = []
    hook = net.register_forward_pre_hook(lambda m, a: seen.append(torch.get_num_threads()))
    serial = attacks.pgd(net, x, y, 0.3, generator=torch.Generator().manual_seed(1), **kw)
    hook.remove()
    assert seen == [2] * 5  # forward (and backward) passes keep every thread
    assert torch.get_num_threads() == 2
    monkeypatch.setattr(attacks, "SERIAL_UPDATE_MAX", 0)  # every operation at 2 threads
    parallel = attacks.pgd(net, x, y, 0.3, generator=torch.Generator().manual_seed(1), **kw)
    assert torch.equal(serial, parallel)
    assert (serial - x).abs().max() > 1e-3


def test_pgd_restores_threads_and_mode_after_an_error(trained, two_threads):
    net, x, y = trained
    calls = []

    def fail_second(m, a):
        calls.append(m.training)
        if len(calls) == 2:
            raise RuntimeError("planted")

    hook = net.register_forward_pre_hook(fail_second)
    net.train()
    try:
        with pytest.raises(RuntimeError, match="planted"):
            attacks.pgd(net, x, y, 0.1, steps=3)
        assert torch.get_num_threads() == 2 and net.training
        assert calls == [False, False]  # the attack ran the model in eval mode
    finally:
        hook.remove()
        net.eval()


def test_eval_mode_leaves_eval_model_alone_and_restores_train_mode():
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Dropout(0.5))
    net.eval()
    with attacks.eval_mode(net):
        assert not any(m.training for m in net.modules())
    assert not any(m.training for m in net.modules())
    net.train()
    with attacks.eval_mode(net):
        assert not any(m.training for m in net.modules())
    assert all(m.training for m in net.modules())


def test_accuracy_under_scores_the_attacked_batch(trained):
    """An attack known to succeed: each input moved to the other blob's centre (strength 1) or partly.

    The expected accuracies are counted by hand on the whole set; a scorer of the clean batch
    would report the clean accuracy (about 1) at every strength.
    """
    net, x, y = trained
    other = (0.5 - 0.15 * (2 * y[:, None] - 1)).expand_as(x)  # the centre of the other class's blob

    def swap(model, xb, yb, s):
        return xb + s * ((0.5 - 0.15 * (2 * yb[:, None] - 1)) - xb)

    strengths = [0.0, 0.5, 1.0]
    got = attacks.accuracy_under(net, swap, x, y, strengths, batch_size=64)  # 400 = 6 * 64 + 16
    with torch.no_grad():
        want = [(net(x + s * (other - x)).argmax(1) == y).double().mean().item() for s in strengths]
    assert got == pytest.approx(want, abs=1e-12)
    assert got[0] > 0.98 and got[2] == 0.0
    fgsm = attacks.accuracy_under(net, attacks.fgsm, x, y, [0.2], batch_size=64, clamp=(0, 1))
    assert fgsm == pytest.approx([train.accuracy(net, attacks.fgsm(net, x, y, 0.2, clamp=(0, 1)), y)], abs=0.01)
    assert fgsm[0] < 0.5


def test_fmn_targets_the_nearest_class_the_box_lets_it_reach():
    """Three linear classes in the plane, logits (0, x1 - 1.05, x2 - 0.8), the point (1, 0.5) of class 0 on the
    box's edge x1 = 1. Class 1's boundary x1 = 1.05 is nearest (0.05) but lies outside the box [0, 1]^2 (its
    gradient pushes x1 out of it); class 2's, x2 = 0.8, is 0.3 away and inside it. With one candidate class, FMN
    in the box must pick class 2 and find 0.3; unclamped it picks class 1 and finds 0.05."""
    net = torch.nn.Linear(2, 3).double()
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
        net.bias.copy_(torch.tensor([0.0, -1.05, -0.8]))
    x = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    y = torch.tensor([0])
    boxed = attacks.fmn(net, x, y, candidates=1, clamp=(0.0, 1.0))
    torch.testing.assert_close(boxed.norm, torch.tensor([0.3], dtype=torch.float64), rtol=2e-3, atol=0)
    assert net(x + boxed.delta).argmax(1).item() == 2 and (x + boxed.delta).max() <= 1
    free = attacks.fmn(net, x, y, candidates=1, clamp=None)
    torch.testing.assert_close(free.norm, torch.tensor([0.05], dtype=torch.float64), rtol=2e-3, atol=0)
    assert net(x + free.delta).argmax(1).item() == 1


def test_gaussian_noise_without_a_generator_draws_from_the_global_seed():
    """No generator: the draw comes from torch's global generator, so the same global seed repeats it and
    another does not; the noise has the given std (10,000 draws at 0.1, unclamped: within 3%)."""
    x = torch.full((100, 100), 0.5)
    draws = []
    for seed in (7, 7, 8):
        torch.manual_seed(seed)
        draws.append(attacks.gaussian_noise(x, 0.1, clamp=None))
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])
    assert abs((draws[0] - x).std().item() - 0.1) < 0.003 and abs((draws[0] - x).mean().item()) < 0.003
