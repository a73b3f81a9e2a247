"""lib.stack: a stack of MLPs trains each member exactly as it would train alone."""

import copy
import math
import warnings

import pytest
import torch

from lib import attacks, models, stack
from lib import local_errors as le
from lib.config import ParameterError


def toy(n=90, d=6, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = 2 * torch.randn(k, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, k, (n,), generator=g)
    return centers[y] + 0.3 * torch.randn(n, d, generator=g, dtype=torch.float64), y


def members(local=False, n=3, widths=(16, 12)):
    out = []
    for s in range(n):
        torch.manual_seed(s)
        net = (
            le.LocalErrorMLP(6, list(widths), 3, readout_scale=0.3, generator=torch.Generator().manual_seed(s))
            if local
            else models.MLP(6, list(widths), 3)
        )
        out.append(net.double())
    return out


def max_difference(nets_a, nets_b) -> float:
    return max(
        (a - b).abs().max().item()
        for na, nb in zip(nets_a, nets_b)
        for a, b in zip(na.state_dict().values(), nb.state_dict().values())
    )


def test_forward_is_every_members_forward_and_unstack_gives_the_members_back():
    nets = members(local=True)
    st = stack.StackedMLP(nets)
    x, _ = toy(n=12)
    xs = torch.cat([x, x.flip(0), 2 * x])  # three member batches of 12 rows, end to end
    out = st(xs)
    assert out.shape == (36, 3)
    for s, net in enumerate(nets):
        torch.testing.assert_close(out[12 * s : 12 * (s + 1)], net(xs[12 * s : 12 * (s + 1)]), rtol=0, atol=1e-12)
        local, top = net.local_forward(xs[12 * s : 12 * (s + 1)])
        s_local, s_top = st.local_forward(xs)
        torch.testing.assert_close(s_top[12 * s : 12 * (s + 1)], top, rtol=0, atol=1e-12)
        for a, b in zip(s_local, local):
            torch.testing.assert_close(a[12 * s : 12 * (s + 1)], b, rtol=0, atol=1e-12)
    back = st.unstack()
    assert [type(n) for n in back] == [le.LocalErrorMLP] * 3 and max_difference(back, nets) == 0.0
    # The stack's parameters (what its optimizer gets) and state are the stacked tensors alone.
    stacked = [f"{kind}.{i}" for kind in ("weights", "biases") for i in range(3)]
    assert [n for n, _ in st.named_parameters()] == stacked
    assert sorted(st.state_dict()) == sorted([*stacked, "readout_0", "readout_1"])


@pytest.mark.parametrize("method", ["backprop", "local", "adversarial"])
def test_stacked_training_equals_training_each_member_alone(method):
    """In float64 the only difference between the two is round-off: each member gets its own
    batch order, its own mean loss and its own Adam update (with weight decay and an annealed stage)."""
    x, y = toy()
    nets = members(local=method == "local")
    alone = copy.deepcopy(nets)
    loss_fn = le.local_loss if method == "local" else None
    transform = None
    if method == "adversarial":  # no random start: the same attack on the stack and on each member

        def transform(m, xb, yb):
            return attacks.pgd(m, xb, yb, 0.3, norm="l2", steps=2, random_start=False, clamp=None)

    for s, net in enumerate(alone):
        kw = dict(loss_fn=loss_fn) if loss_fn else {}
        le.fit_annealed(
            net,
            x,
            y,
            epochs=4,
            anneal_epochs=1,
            batch_size=16,
            lr=1e-2,
            weight_decay=1e-3,
            generator=torch.Generator().manual_seed(10 + s),
            transform=transform,
            progress=False,
            **kw,
        )
    st = stack.StackedMLP(nets)
    hist = stack.fit_annealed(
        st,
        x,
        y,
        epochs=4,
        anneal_epochs=1,
        batch_size=16,
        lr=1e-2,
        weight_decay=1e-3,
        generators=[torch.Generator().manual_seed(10 + s) for s in range(3)],
        loss="local" if method == "local" else "cross_entropy",
        transform=transform,
    )
    trained = st.unstack()
    assert max_difference(trained, alone) < 1e-10
    assert max_difference(trained, nets) > 1e-3  # it did train
    assert list(hist.columns) == ["member", "epoch", "loss"] and len(hist) == 12


def test_bad_stacks_and_parameters_are_named():
    with pytest.raises(ParameterError, match="same class, layer sizes"):
        stack.StackedMLP([*members(n=1), *members(n=1, widths=(16, 8))])
    with pytest.raises(ParameterError, match="same class"):
        stack.StackedMLP([*members(n=1), *members(local=True, n=1)])
    with pytest.raises(ParameterError, match="at least one"):
        stack.StackedMLP([])
    st = stack.StackedMLP(members())
    x, y = toy()
    gens = [torch.Generator() for _ in range(3)]
    with pytest.raises(ParameterError, match="'generators' needs one generator per member \\(3\\), got 2"):
        stack.fit_annealed(st, x, y, epochs=2, generators=gens[:2])
    with pytest.raises(ParameterError, match="'loss' is 'local' but"):
        stack.fit_annealed(st, x, y, epochs=2, generators=gens, loss="local")
    with pytest.raises(ParameterError, match="'loss' is 'mse'; allowed values: 'cross_entropy', 'local'"):
        stack.fit_annealed(st, x, y, epochs=2, generators=gens, loss="mse")
    with pytest.raises(ParameterError, match="'anneal_epochs' must be in 0..1"):
        stack.fit_annealed(st, x, y, epochs=2, anneal_epochs=2, generators=gens)
    with pytest.raises(ValueError, match="multiple of 3 rows, got 10"):
        st(x[:10])


def test_a_diverging_member_is_named_and_a_stable_stack_warns_nothing():
    x, y = toy()
    nets = members()
    with torch.no_grad():
        nets[1].head.bias[0] = float("inf")  # member 1's loss is not finite from the first batch on
    st = stack.StackedMLP(nets)
    gens = [torch.Generator().manual_seed(s) for s in range(3)]
    with pytest.warns(RuntimeWarning, match=r"toy: member 1: the training loss is nan by epoch 1") as caught:
        hist = stack.fit_annealed(st, x, y, epochs=3, lr=1e-2, generators=gens, desc="toy")
    assert len(caught) == 1  # members 0 and 2 train on, untouched by member 1
    assert hist[hist.member != 1].loss.map(math.isfinite).all()
    assert all(torch.isfinite(p).all() for net in st.unstack()[::2] for p in net.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stack.fit_annealed(stack.StackedMLP(members()), x, y, epochs=3, lr=1e-2, generators=gens)


def test_default_learning_rate_is_one_networks_default():
    """Left at its default, ``lr`` is lib.local_errors.fit_annealed's (1e-3): the stack trains each
    member as that function trains it alone with its own default."""
    x, y = toy()
    nets = members(n=2)
    alone = copy.deepcopy(nets)
    for s, net in enumerate(alone):
        le.fit_annealed(
            net, x, y, epochs=2, batch_size=16, generator=torch.Generator().manual_seed(10 + s), progress=False
        )
    st = stack.StackedMLP(nets)
    stack.fit_annealed(
        st, x, y, epochs=2, batch_size=16, generators=[torch.Generator().manual_seed(10 + s) for s in range(2)]
    )
    assert max_difference(st.unstack(), alone) < 1e-10


def test_local_forward_of_a_backprop_stack_is_refused_by_name():
    st = stack.StackedMLP(members())
    x, _ = toy(n=9)
    with pytest.raises(ParameterError, match=r"^local_forward needs a stack of LocalErrorMLP networks$"):
        st.local_forward(x)
