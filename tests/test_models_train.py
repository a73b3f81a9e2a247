import pytest
import torch

from lib import models, train
from lib.config import ParameterError


def blobs(n=200, d=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    centers = torch.randn(3, d, generator=g) * 3
    return centers[y] + torch.randn(n, d, generator=g), y


def test_mlp_shapes_and_hidden():
    net = models.MLP(10, [16, 8], 3)
    out, hs = net(torch.randn(5, 10), return_hidden=True)
    assert out.shape == (5, 3) and [h.shape for h in hs] == [(5, 16), (5, 8)]
    assert torch.all(hs[0] >= 0)
    with pytest.raises(ParameterError, match="widths"):
        models.MLP(10, [16, 0], 3)


def test_conv_net_takes_flat_images():
    net = models.SmallConvNet((8, 8), 10)
    out, hs = net(torch.rand(4, 64), return_hidden=True)
    assert out.shape == (4, 10) and len(hs) == 3 and hs[-1].shape == (4, 64)
    with pytest.raises(ParameterError, match="channels"):
        models.SmallConvNet((8, 8), 10, channels=(4,))


def test_two_layer_relu_init_scale():
    g = torch.Generator().manual_seed(0)
    small = models.TwoLayerReLU(50, 400, init_scale=0.01, generator=g)
    g = torch.Generator().manual_seed(0)
    big = models.TwoLayerReLU(50, 400, init_scale=1.0, generator=g)
    assert torch.allclose(small.w * 100, big.w)
    assert small(torch.randn(7, 50)).shape == (7,)
    frozen = models.TwoLayerReLU(5, 4, train_output=False)
    assert models.n_params(frozen) == 4 * 5 + 4


def test_fit_lowers_loss_and_is_deterministic():
    x, y = blobs()
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        net = models.MLP(10, [32], 3)
        hist = train.fit(
            net, x, y, epochs=5, batch_size=32, lr=1e-2, generator=torch.Generator().manual_seed(1), progress=False
        )
        runs.append((hist, net))
    hist = runs[0][0]
    assert list(hist.columns) == ["epoch", "loss", "train_acc"]
    assert hist.loss.iloc[-1] < hist.loss.iloc[0]
    assert hist.train_acc.iloc[-1] > 0.9
    assert hist.equals(runs[1][0])
    for p, q in zip(runs[0][1].parameters(), runs[1][1].parameters()):
        assert torch.equal(p, q)


def test_fit_rejects_bad_arguments():
    x, y = blobs(20)
    net = models.MLP(10, [4], 3)
    with pytest.raises(ParameterError, match="'epochs'"):
        train.fit(net, x, y, epochs=0)
    with pytest.raises(ParameterError, match="'optimizer'.*'adam', 'sgd'"):
        train.fit(net, x, y, epochs=1, optimizer="rmsprop", progress=False)


def test_transform_sees_every_batch():
    x, y = blobs(50)
    seen = []

    def transform(model, xb, yb):
        seen.append(len(xb))
        return xb

    train.fit(models.MLP(10, [4], 3), x, y, epochs=2, batch_size=20, transform=transform, progress=False)
    assert seen == [20, 20, 10, 20, 20, 10]


def test_fit_is_the_plain_loop_over_seeded_permutations():
    """fit's batching is the textbook loop: same permutation per epoch, same batches, same weights."""
    x, y = blobs(90)
    torch.manual_seed(0)
    net = models.MLP(10, [16], 3)
    ref = models.MLP(10, [16], 3)
    ref.load_state_dict(net.state_dict())
    train.fit(net, x, y, epochs=3, batch_size=20, lr=1e-2, generator=torch.Generator().manual_seed(4), progress=False)
    g = torch.Generator().manual_seed(4)
    opt = train.make_optimizer(ref.parameters(), "adam", 1e-2)
    for _ in range(3):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 20):
            idx = order[i : i + 20]
            loss = torch.nn.functional.cross_entropy(ref(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    for p, q in zip(net.parameters(), ref.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("name", train.OPTIMIZERS)
def test_optimizer_matches_default_implementation(name):
    """The fused optimizer takes the same steps as torch.optim's default one, to round-off."""
    x, y = blobs(64)
    nets, steps = [], []
    for make in (
        lambda ps: train.make_optimizer(ps, name, 1e-2, weight_decay=1e-3, momentum=0.9),
        lambda ps: (
            torch.optim.Adam(ps, lr=1e-2, weight_decay=1e-3)
            if name == "adam"
            else torch.optim.SGD(ps, lr=1e-2, weight_decay=1e-3, momentum=0.9)
        ),
    ):
        torch.manual_seed(0)
        net = models.MLP(10, [16], 3)
        opt = make(net.parameters())
        for _ in range(20):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
        nets.append(net)
        steps.append(opt.defaults.get("fused"))
    assert steps[0] is True  # on CPU the fused kernels are used
    for p, q in zip(*(n.parameters() for n in nets)):
        assert torch.allclose(p, q, rtol=0, atol=1e-5)


def test_epoch_loss_is_the_mean_over_points_and_train_acc_the_final_models():
    """Batches of 20, 20 and 10 points: the epoch's loss weights each batch's mean loss by its size."""
    x, y = blobs(50)
    torch.manual_seed(0)
    net = models.MLP(10, [8], 3)
    seen = []

    def loss_fn(model, xb, yb):
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        seen.append((len(xb), loss.item()))
        return loss

    hist = train.fit(
        net, x, y, epochs=2, batch_size=20, lr=0.05, loss_fn=loss_fn, x_val=x[:7], y_val=y[:7], progress=False
    )
    assert [n for n, _ in seen] == [20, 20, 10, 20, 20, 10]
    for epoch, batches in enumerate((seen[:3], seen[3:])):
        want = sum(n * loss for n, loss in batches) / 50
        assert hist.loss.iloc[epoch] == pytest.approx(want, rel=1e-6)
        assert hist.loss.iloc[epoch] != pytest.approx(sum(loss for _, loss in batches) / 3, rel=1e-4)
    with torch.no_grad():
        pred = net(x).argmax(1)
    assert hist.train_acc.iloc[-1] == pytest.approx((pred == y).double().mean().item(), abs=1e-6)
    assert hist.val_acc.iloc[-1] == pytest.approx((pred[:7] == y[:7]).double().mean().item(), abs=1e-6)
    assert list(hist.epoch) == [1, 2]


def test_train_acc_every_measures_some_epochs_and_the_last_and_trains_the_same():
    """Every third epoch and the last one (7) measured, NaN between; the training is the same."""
    x, y = blobs(40)
    nets = []
    for every in (1, 3):
        torch.manual_seed(0)
        nets.append(models.MLP(10, [8], 3))
        hist = train.fit(
            nets[-1], x, y, epochs=7, batch_size=16, lr=0.05, generator=torch.Generator().manual_seed(1),
            progress=False, train_acc_every=every,
        )  # fmt: skip
        if every == 1:
            full = hist
    assert list(hist.epoch[hist.train_acc.notna()]) == [3, 6, 7]
    assert hist.train_acc.dropna().tolist() == full.train_acc.iloc[[2, 5, 6]].tolist()
    assert hist.loss.tolist() == full.loss.tolist()
    assert all(torch.equal(a, b) for a, b in zip(nets[0].state_dict().values(), nets[1].state_dict().values()))
    for bad in (0, 1.5, True):
        with pytest.raises(ParameterError, match="'train_acc_every' must be an int >= 1"):
            train.fit(nets[0], x, y, epochs=1, progress=False, train_acc_every=bad)


def test_two_layer_relu_draws_its_weights_at_fan_in_scale_from_its_generator():
    a = models.TwoLayerReLU(50, 400, generator=torch.Generator().manual_seed(3))
    b = models.TwoLayerReLU(50, 400, init_scale=1.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.w, b.w) and torch.equal(a.v, b.v)  # init_scale defaults to 1, all draws from the generator
    g = torch.Generator().manual_seed(3)
    w, v = torch.randn(400, 50, generator=g), torch.randn(400, generator=g)
    torch.testing.assert_close(a.w.detach(), w / 50**0.5)  # N(0, 1/d) and N(0, 1/width)
    torch.testing.assert_close(a.v.detach(), v / 400**0.5)
    assert torch.equal(a.b, torch.zeros(400)) and models.TwoLayerReLU(5, 4, bias=False).b is None
    with pytest.raises(ParameterError, match=r"parameter 'init_scale' must be > 0, got 0"):
        models.TwoLayerReLU(5, 4, init_scale=0.0)
    with pytest.raises(ParameterError, match=r"d and width must be positive, got d=5, width=0"):
        models.TwoLayerReLU(5, 0)


def test_schedule_bounds_and_default_optimizer_settings():
    train.check_schedule(epochs=1, batch_size=1, lr=1e-9, anneal_epochs=0)  # the smallest valid values
    with pytest.raises(ParameterError, match=r"parameter 'lr' must be > 0, got 0"):
        train.check_schedule(epochs=1, lr=0.0)
    with pytest.raises(ParameterError, match=r"parameter 'batch_size' must be >= 1, got 0"):
        train.check_schedule(epochs=1, batch_size=0)
    sgd = train.make_optimizer(models.MLP(3, [4], 2).parameters(), "sgd", 0.1)
    assert sgd.defaults["momentum"] == 0.0 and sgd.defaults["weight_decay"] == 0.0


def test_a_diverging_fit_warns_once_naming_the_rate():
    x, y = blobs(64)
    torch.manual_seed(0)
    net = models.MLP(10, [16], 3)
    with pytest.warns(RuntimeWarning, match=r"diverges, lower 'lr' \(now 1000\)") as caught:
        train.fit(net, x, y, epochs=4, batch_size=16, lr=1e3, optimizer="sgd", progress=False, desc="toy")
    assert len([w for w in caught if issubclass(w.category, RuntimeWarning)]) == 1
    assert str(caught[0].message).startswith("toy: the training loss")


def test_divergence_names_a_non_finite_loss_or_a_tenfold_rise():
    """A falling curve, and a rise to exactly ten times the lowest loss (the threshold), are not divergence; a
    loss above ten times the lowest, or a NaN or infinite one, is."""
    assert train.divergence([1.0]) is None and train.divergence([1.0, 0.5, 0.2]) is None
    assert train.divergence([1.0, 0.1, 1.0]) is None
    assert train.divergence([1.0, 0.1, 1.01]) == "the training loss rose from 0.1 to 1.01"
    assert train.divergence([1.0, float("nan")]) == "the training loss is nan"
    assert train.divergence([1.0, float("inf")]) == "the training loss is inf"


def test_anneal_epochs_must_be_below_epochs():
    train.check_schedule(epochs=3, anneal_epochs=2)  # the largest valid value
    for bad in (3, -1):
        with pytest.raises(ParameterError, match=rf"'anneal_epochs' must be in 0\.\.2 \(below 'epochs'\), got {bad}"):
            train.check_schedule(epochs=3, anneal_epochs=bad)


def test_accuracy_and_predict_run_in_batches_of_batch_size():
    """A model that counts right only the first 2 points of each batch it is given: 7 points all labelled right
    score 5/7 in batches of 3 (3 + 3 + 1: 2 + 2 + 1 right) and 2/7 in one batch (2 right)."""
    seen = []

    class FirstTwo(torch.nn.Module):
        def forward(self, x):
            seen.append(len(x))
            out = torch.zeros(len(x), 2)
            out[:2, 1] = 1.0  # class 1 for the first two rows, class 0 (a tie) for the rest
            return out

    y = torch.ones(7, dtype=torch.long)
    assert train.accuracy(FirstTwo(), torch.zeros(7, 3), y, batch_size=3) == pytest.approx(5 / 7)
    assert seen == [3, 3, 1]
    assert train.accuracy(FirstTwo(), torch.zeros(7, 3), y) == pytest.approx(2 / 7)


def test_fit_without_progress_writes_nothing_and_reads_validation_only_as_a_pair(capsys):
    """``progress=False`` keeps the terminal silent (no bar on stderr); a validation set needs both x_val and
    y_val: given x_val alone, no ``val_acc`` column."""
    x, y = blobs(30)
    torch.manual_seed(0)
    hist = train.fit(models.MLP(10, [4], 3), x, y, epochs=2, x_val=x[:5], progress=False)
    assert list(hist.columns) == ["epoch", "loss", "train_acc"]
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_bad_architectures_name_what_is_wrong():
    with pytest.raises(ParameterError, match=r"'activation' is 'sigmoid'; allowed values: 'relu', 'tanh', 'gelu'"):
        models.MLP(10, [4], 3, activation="sigmoid")
    with pytest.raises(ParameterError, match=r"parameter 'channels' must be a non-empty list of positive integers"):
        models.SmallConvNet((8, 8), 10, channels=(4, 0))
    models.SmallConvNet((4, 4), 10)  # the smallest image two 2x2 poolings leave a pixel of
    with pytest.raises(ParameterError, match=r"image_shape \(3, 3\) is too small for two 2x2 poolings"):
        models.SmallConvNet((3, 3), 10)


def test_conv_net_hidden_layers_are_flat_per_image():
    """8x8 images, channels (16, 32), hidden 64: the pooled maps are 16 x 4 x 4 = 256 and 32 x 2 x 2 = 128 numbers."""
    net = models.SmallConvNet((8, 8), 10)
    _, hs = net(torch.rand(4, 64), return_hidden=True)
    assert [tuple(h.shape) for h in hs] == [(4, 256), (4, 128), (4, 64)]


def test_two_layer_relu_computes_its_formula_with_and_without_bias():
    """Planted weights w = I, b = (-1, 0.5), v = (2, -3) at x = (3, 1): 2 relu(3 - 1) - 3 relu(1 + 0.5) = -0.5;
    without bias 2 relu(3) - 3 relu(1) = 3. By default every parameter trains: 5 x 4 + 4 + 4 = 28."""
    net = models.TwoLayerReLU(2, 2)
    no_bias = models.TwoLayerReLU(2, 2, bias=False)
    with torch.no_grad():
        for m in (net, no_bias):
            m.w.copy_(torch.eye(2))
            m.v.copy_(torch.tensor([2.0, -3.0]))
        net.b.copy_(torch.tensor([-1.0, 0.5]))
    x = torch.tensor([[3.0, 1.0]])
    torch.testing.assert_close(net(x), torch.tensor([-0.5]))
    torch.testing.assert_close(no_bias(x), torch.tensor([3.0]))
    assert models.n_params(models.TwoLayerReLU(5, 4)) == 28


def test_transform_is_given_the_model_being_trained():
    """A transform (an attack, say) needs the model itself: it is passed the very module fit trains."""
    x, y = blobs(20)
    net = models.MLP(10, [4], 3)
    given = []
    train.fit(net, x, y, epochs=1, batch_size=20, transform=lambda m, xb, yb: given.append(m) or xb, progress=False)
    assert given == [net] and given[0] is net


def test_default_rate_is_one_thousandth_the_size_of_adams_first_step():
    """Adam's first step moves every parameter with a nonzero gradient by lr (m / sqrt(v) = sign(g)).

    One epoch in one batch is one step: with the default lr = 1e-3 each weight of a linear
    model moves by 1e-3 (up to Adam's eps), not by 1 or any other amount.
    """
    torch.manual_seed(0)
    x, y = blobs(30, d=4)
    net = torch.nn.Linear(4, 3)
    before = [p.detach().clone() for p in net.parameters()]
    train.fit(net, x, y, epochs=1, batch_size=30, progress=False)
    moves = torch.cat([(p.detach() - b).abs().flatten() for p, b in zip(net.parameters(), before)])
    assert torch.allclose(moves, torch.full_like(moves, 1e-3), rtol=1e-3)


def test_optimizer_accepts_parameter_groups():
    """Groups given as dicts (each with its own lr) are unpacked: plain SGD moves w by -lr * grad per group."""
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    for name in ("sgd", "adam"):
        opt = train.make_optimizer([{"params": [a]}, {"params": [b], "lr": 0.5}], name, 0.1)
        assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    opt = train.make_optimizer([{"params": [a]}, {"params": [b], "lr": 0.5}], "sgd", 0.1)
    (a.sum() + 2 * b.sum()).backward()  # grad 1 on a, 2 on b
    opt.step()
    assert torch.allclose(a.detach(), torch.full((2,), -0.1)) and torch.allclose(b.detach(), torch.full((2,), -1.0))


def test_two_layer_relu_smallest_sizes_are_one_input_and_one_unit():
    """d = width = 1 is the smallest valid network (one output from one unit); 0 of either is refused."""
    net = models.TwoLayerReLU(1, 1, generator=torch.Generator().manual_seed(0))
    assert net(torch.ones(3, 1)).shape[0] == 3
    for d, width in ((0, 1), (1, 0)):
        with pytest.raises(ParameterError, match="must be positive"):
            models.TwoLayerReLU(d, width)
