"""Tangent spaces, on/off-manifold projections and restricted attacks (lib.manifold)."""

import math
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from torch import nn

from lib import attacks, flip, manifold
from lib.chapters import ch02
from lib.config import ParameterError


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def ae_bases():
    torch.manual_seed(0)
    ae = manifold.AutoEncoder(20, 3, [16]).eval()
    x = torch.rand(7, 20, generator=_gen())
    return manifold.autoencoder_bases(ae, x)


def test_tangent_projection_is_idempotent(ae_bases):
    v = torch.randn(7, 20, generator=_gen(1))
    p = manifold.project(v, ae_bases)
    assert torch.allclose(manifold.project(p, ae_bases), p, atol=1e-6)
    off = manifold.complement(v, ae_bases)
    assert torch.allclose(manifold.complement(off, ae_bases), off, atol=1e-6)


def test_complement_is_orthogonal_and_parts_sum_to_vector(ae_bases):
    v = torch.randn(7, 20, generator=_gen(2))
    on, off = manifold.project(v, ae_bases), manifold.complement(v, ae_bases)
    assert torch.allclose(on + off, v, atol=1e-6)
    assert (on * off).sum(1).abs().max() < 1e-5
    assert torch.allclose(manifold.project(off, ae_bases), torch.zeros_like(v), atol=1e-6)
    gram = ae_bases.transpose(1, 2) @ ae_bases
    assert torch.allclose(gram, torch.eye(3).expand_as(gram), atol=1e-5)
    # the batched products give exactly the numbers of the einsum formula they replaced
    assert torch.equal(on, torch.einsum("bnk,bk->bn", ae_bases, torch.einsum("bnk,bn->bk", ae_bases, v)))


def test_tangent_of_linear_decoder_is_its_column_space_exactly():
    torch.manual_seed(0)
    dec = nn.Linear(4, 15).double()
    z = torch.randn(6, 4, dtype=torch.float64, generator=_gen(3))
    bases = manifold.tangent_basis(dec, z)
    w = dec.weight.detach()
    proj = w @ torch.linalg.solve(w.T @ w, w.T)  # orthogonal projector on span(W)
    v = torch.randn(6, 15, dtype=torch.float64, generator=_gen(4))
    assert torch.allclose(manifold.project(v, bases), v @ proj, atol=1e-12)


def test_batched_jacobian_matches_per_sample_jacobians():
    phi = manifold.SineManifold(9, 2, amplitude=0.7, generator=_gen(5))
    c = torch.rand(5, 2, generator=_gen(6)) * 2 - 1
    bases = manifold.tangent_basis(phi, c)
    for i in range(len(c)):
        jac = torch.autograd.functional.jacobian(lambda ci: phi(ci.unsqueeze(0))[0], c[i])  # (9, 2)
        p_ref = jac @ torch.linalg.pinv(jac)
        assert torch.allclose(bases[i] @ bases[i].T, p_ref, atol=1e-5)


def test_flat_sine_manifold_tangent_is_its_subspace():
    phi = manifold.SineManifold(12, 3, amplitude=0.0, generator=_gen(7))
    c = torch.rand(4, 3, generator=_gen(8)) * 2 - 1
    u = phi.u[:, :3]
    bases = manifold.tangent_basis(phi, c)
    assert torch.allclose(bases @ bases.transpose(1, 2), (u @ u.T).expand(4, -1, -1), atol=1e-5)


def test_random_direction_rms_share_is_sqrt_k_over_n():
    n, k = 40, 5
    bases = manifold.random_bases(4000, n, k, generator=_gen(9))
    v = torch.randn(4000, n, generator=_gen(10))
    lo, hi = ch02.random_band(n, k, 4000, width=4.0)
    assert lo <= manifold.rms(manifold.on_fraction(v, bases)) <= hi
    assert abs(manifold.random_baseline(n, k) - math.sqrt(k / n)) < 1e-12


def test_shared_basis_and_per_sample_basis_agree():
    b = manifold.random_bases(1, 10, 3, generator=_gen(11))[0]
    v = torch.randn(4, 10, generator=_gen(12))
    assert torch.allclose(manifold.project(v, b), manifold.project(v, b.expand(4, -1, -1)), atol=1e-6)
    with pytest.raises(ParameterError):
        manifold.projector(b, "sideways")


def test_sine_manifold_rows_of_w_have_norm_frequency():
    phi = manifold.SineManifold(10, 3, amplitude=0.5, frequency=2.5, generator=_gen(40))
    assert phi.w.shape == (3, 3)  # m = min(k, n - k) = 3 curved coordinates
    assert torch.allclose(phi.w.norm(dim=1), torch.full((3,), 2.5), atol=1e-6)


def test_sine_manifold_rotation_is_drawn_in_double_precision():
    """U is orthonormalised in float64 and rounded once to float32: each entry then errs by at most
    2**-24 of itself, so (Cauchy-Schwarz over unit columns) every entry of U^T U - I is at most
    2 * 2**-24 + 2**-48 off; a rotation orthonormalised in float32 misses that by a few times."""
    phi = manifold.SineManifold(40, 10, amplitude=0.5, generator=_gen(41))
    u = phi.u.double()  # (40, 20): k + m = 10 + 10 columns
    assert u.shape == (40, 20)
    err = (u.T @ u - torch.eye(20, dtype=torch.float64)).abs().max().item()
    assert err <= 2**-23 + 1e-12
    assert torch.equal(manifold.SineManifold(6, 2, axis_aligned=True).u, torch.eye(6, 4))


def test_sine_manifold_forward_on_planted_frequencies_and_phases():
    """Axis-aligned (U = I), n = 4, k = 2, W = pi I and b = (0, pi/2) planted: phi(c) = (c, a sin(pi c1),
    a cos(pi c2)), so c = (1/6, 1/3) with a = 0.3 maps to (1/6, 1/3, 0.3 * 1/2, 0.3 * 1/2)."""
    phi = manifold.SineManifold(4, 2, amplitude=0.3, axis_aligned=True, generator=_gen(42))
    with torch.no_grad():
        phi.w.copy_(math.pi * torch.eye(2))
        phi.b.copy_(torch.tensor([0.0, math.pi / 2]))
    c = torch.tensor([[1 / 6, 1 / 3], [0.0, 0.0]])
    want = torch.tensor([[1 / 6, 1 / 3, 0.15, 0.15], [0.0, 0.0, 0.0, 0.3]])
    assert torch.allclose(phi(c), want, atol=1e-6)
    # with random W and b the curved coordinates stay within the amplitude
    rnd = manifold.SineManifold(6, 3, amplitude=0.3, axis_aligned=True, generator=_gen(43))
    h = rnd(torch.rand(200, 3, generator=_gen(44)) * 2 - 1)
    assert h[:, 3:].abs().max() <= 0.3 + 1e-6 and h[:, 3:].abs().max() > 0.2


def test_manifold_points_follow_the_generator_alone():
    """The same seeded generator gives the same points whatever the global RNG did in between;
    the points are phi of their codes in [-1, 1]^k, labelled by the checkerboard of the codes."""
    phi = manifold.SineManifold(8, 2, amplitude=0.4, generator=_gen(45))
    torch.manual_seed(1)
    x1, y1, c1 = manifold.manifold_points(phi, 50, cells=3, generator=_gen(46))
    torch.manual_seed(2)
    x2, y2, c2 = manifold.manifold_points(phi, 50, cells=3, generator=_gen(46))
    assert torch.equal(c1, c2) and torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(c1, manifold.manifold_points(phi, 50, cells=3, generator=_gen(47))[2])
    assert c1.shape == (50, 2) and c1.min() >= -1 and c1.max() <= 1
    assert torch.allclose(x1, phi(c1))
    assert torch.equal(y1, manifold.checkerboard(c1, 3))


def _linear_binary(w, b):
    """Logits (0, w.x + b): the boundary is the hyperplane w.x + b = 0."""
    net = nn.Linear(len(w), 2)
    with torch.no_grad():
        net.weight.copy_(torch.stack([torch.zeros_like(w), w]))
        net.bias.copy_(torch.tensor([0.0, b]))
    return net


def test_margin_and_margin_loss_known_values():
    logits = torch.tensor([[1.0, 5.0, 3.0], [2.0, 2.0, 0.0], [-1.0, -4.0, -2.0]])
    assert manifold.margin(logits).tolist() == [2.0, 0.0, 1.0]  # top minus runner-up; a tie is on the boundary
    # max over the other classes minus the labelled one: (5 - 1) + (2 - 2) + (-1 - -2), summed
    assert manifold.margin_loss(logits, torch.tensor([0, 1, 2])).item() == 4.0 + 0.0 + 1.0


def test_boundary_normal_of_a_linear_boundary():
    """Logits (0, w.x + b): the margin is |w.x + b|, whose gradient is +w on the side of class 1, -w on the other."""
    w = torch.tensor([3.0, -1.0, 2.0])
    net = _linear_binary(w, 0.5)
    x = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])  # w.x + b = 3.5 and -2.5
    assert torch.allclose(manifold.boundary_normal(net, x), torch.stack([w, -w]))


@pytest.mark.parametrize("part", ["on", "off"])
def test_restricted_pgd_stays_in_subspace_and_budget(part):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 3))
    x = torch.randn(8, 12, generator=_gen(13))
    y = torch.randint(0, 3, (8,), generator=_gen(14))
    bases = manifold.random_bases(8, 12, 4, generator=_gen(15))
    eps = torch.linspace(0.1, 0.8, 8)
    adv = attacks.pgd(
        net, x, y, eps, norm="l2", steps=7, clamp=None, generator=_gen(16), project=manifold.projector(bases, part)
    )
    delta = adv - x
    assert (delta.norm(dim=1) <= eps + 1e-5).all()
    assert delta.norm(dim=1).min() > 0
    wrong = manifold.project(delta, bases) if part == "off" else manifold.complement(delta, bases)
    assert wrong.norm(dim=1).max() < 1e-5


def test_min_flip_norm_finds_known_distance_of_linear_boundary():
    w = torch.tensor([3.0, -1.0, 2.0, 0.5, 1.0, 0.0])
    net = _linear_binary(w, 0.2)
    x = torch.randn(16, 6, generator=_gen(17))
    pred = net(x).argmax(1)
    margin = (x @ w + 0.2).abs()
    bases = manifold.random_bases(16, 6, 2, generator=_gen(18))
    for b, part in ((None, "on"), (bases, "on"), (bases, "off")):
        w_in = (
            w.expand(16, -1)
            if b is None
            else (manifold.project(w.expand(16, -1), b) if part == "on" else manifold.complement(w.expand(16, -1), b))
        )
        true = margin / w_in.norm(dim=1)
        res = flip.min_flip_norm(
            net, x, pred, eps_max=50.0, bases=b, part=part, steps=10, bisection_steps=5, generator=_gen(19)
        )
        ok = (true > 50.0 * 2**-8) & (true < 50.0 * 0.9)  # inside the searched range
        assert ok.sum() >= 10
        assert (res.norm[ok] >= true[ok] * (1 - 1e-4)).all(), "no flip can be shorter than the distance"
        assert (res.norm[ok] <= true[ok] * 1.025).all(), "bisection precision is 2**(1/32) ~ 2.2%"
        assert (net(x + res.delta).argmax(1)[ok] != pred[ok]).all()
        if b is not None:
            wrong = manifold.complement(res.delta, b) if part == "on" else manifold.project(res.delta, b)
            assert wrong.norm(dim=1).max() < 1e-4


def test_joint_searches_under_several_restrictions_equal_the_searches_one_by_one():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 4))
    x = torch.randn(30, 12, generator=_gen(22))
    pred = net(x).argmax(1)
    per_sample = manifold.random_bases(30, 12, 3, generator=_gen(23))
    shared = manifold.random_bases(1, 12, 5, generator=_gen(24))[0]
    restrictions = {
        "full": (None, "on"),
        "on": (per_sample, "on"),
        "off": (per_sample, "off"),
        "par": (shared, "on"),
        "perp": (shared, "off"),
    }
    kw = dict(eps_max=20.0, steps=8, bisection_steps=5)
    joint = flip.min_flip_norms(net, x, pred, restrictions, **kw)
    assert list(joint) == list(restrictions)
    for name, (b, part) in restrictions.items():
        alone = flip.min_flip_norm(net, x, pred, bases=b, part=part, **kw)
        assert torch.equal(torch.isfinite(joint[name].norm), torch.isfinite(alone.norm)), name
        assert torch.allclose(joint[name].norm, alone.norm, rtol=1e-5), name
        assert torch.allclose(joint[name].delta, alone.delta, atol=1e-5), name
    assert len({float(joint[k].norm.median()) for k in restrictions}) == len(restrictions)  # they do differ
    with pytest.raises(ParameterError, match="restriction 'odd'.*'part' is 'sideways'"):
        flip.min_flip_norms(net, x, pred, {"odd": (shared, "sideways")}, **kw)


def test_min_flip_norm_reports_inf_beyond_budget():
    net = _linear_binary(torch.tensor([1.0, 0.0]), -5.0)  # boundary at x1 = 5
    x = torch.zeros(3, 2)
    res = flip.min_flip_norm(net, x, net(x).argmax(1), eps_max=2.0, generator=_gen(20))
    assert torch.isinf(res.norm).all() and (res.delta == 0).all()


def test_checkerboard_labels_and_class_distance():
    c = torch.tensor([[-0.9, -0.9], [0.1, -0.9], [0.1, 0.1], [-0.9, 0.1]])
    assert manifold.checkerboard(c, 2).tolist() == [0, 1, 0, 1]
    s = ch02.make_setting(
        "t", 3, 1, 0.0, cells=4, n_train=4, n_eval=50, generator=_gen(21), device=torch.device("cpu"), axis_aligned=True
    )
    code = s.x_eval[:, 0]  # axis-aligned flat: the first coordinate is the code
    edges = torch.tensor([-0.5, 0.0, 0.5])
    expected = (code[:, None] - edges[None]).abs().min(dim=1).values
    assert torch.allclose(s.class_distance, expected, atol=1e-6)


def test_autoencoder_train_mse_is_the_epochs_loss_weighted_by_batch_size():
    """With lr 0 the model never moves, so the epoch's training loss is the MSE over all points,
    whatever the batches: 10 points in batches of 4, 4, 2 (an unweighted mean of the three
    batch losses would differ)."""
    x = torch.rand(10, 6, generator=_gen(25))
    ae = manifold.AutoEncoder(6, 2, [8])
    with torch.no_grad():
        expected = (ae(x) - x).pow(2).mean().item()
    hist = manifold.fit_autoencoder(ae, x, epochs=2, batch_size=4, lr=0.0, generator=_gen(26), progress=False)
    assert hist.train_mse.tolist() == pytest.approx([expected, expected], rel=1e-6)
    assert hist.columns.tolist() == ["epoch", "train_mse"]


def test_autoencoder_default_batches_are_64_and_cover_every_point_once_per_epoch():
    """100 points, default batch size 64: each epoch feeds a batch of 64 and one of 36, the two
    together holding every point exactly once (the points carry their index in column 0)."""
    x = torch.rand(100, 6, generator=_gen(27))
    x[:, 0] = torch.arange(100.0)
    ae = manifold.AutoEncoder(6, 2, [8])
    seen = []
    ae.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
    manifold.fit_autoencoder(ae, x, epochs=2, lr=0.0, generator=_gen(28), progress=False)
    assert [len(b) for b in seen] == [64, 36, 64, 36]
    for epoch in (seen[:2], seen[2:]):
        assert torch.equal(torch.cat(epoch)[:, 0].sort().values, torch.arange(100.0))


def test_autoencoder_layers_and_latent_bounds():
    """in 6 -> widths (8, 5) -> latent 2 and back, activations between the linear maps, none after the last."""
    ae = manifold.AutoEncoder(6, 2, [8, 5])
    kinds = ["Linear", "GELU", "Linear", "GELU", "Linear"]
    assert [type(m).__name__ for m in ae.encoder] == kinds
    assert [type(m).__name__ for m in ae.decoder] == kinds
    enc = [(m.in_features, m.out_features) for m in ae.encoder if isinstance(m, nn.Linear)]
    dec = [(m.in_features, m.out_features) for m in ae.decoder if isinstance(m, nn.Linear)]
    assert enc == [(6, 8), (8, 5), (5, 2)]
    assert dec == [(2, 5), (5, 8), (8, 6)]
    # latent_dim in [1, in_dim - 1]: both ends accepted, one past each refused
    assert manifold.AutoEncoder(6, 1, [4]).encode(torch.zeros(3, 6)).shape == (3, 1)
    assert manifold.AutoEncoder(6, 5, [4]).encode(torch.zeros(3, 6)).shape == (3, 5)
    for bad in (0, 6):
        with pytest.raises(ParameterError, match="latent_dim"):
            manifold.AutoEncoder(6, bad, [4])


def test_autoencoder_training_reduces_reconstruction_error():
    torch.manual_seed(0)
    x = torch.rand(64, 10, generator=_gen(22)) @ torch.randn(10, 10, generator=_gen(23)) * 0.1
    ae = manifold.AutoEncoder(10, 4, [16])
    hist = manifold.fit_autoencoder(ae, x, epochs=30, batch_size=16, lr=1e-2, generator=_gen(24), progress=False)
    assert hist.train_mse.iloc[-1] < 0.5 * hist.train_mse.iloc[0]
    with pytest.raises(ParameterError):
        manifold.AutoEncoder(10, 10)


def test_clinging_criterion_on_hand_made_curves():
    s = ch02.make_setting(
        "m", 50, 2, 0.0, cells=2, n_train=4, n_eval=200, generator=_gen(25), device=torch.device("cpu")
    )
    steps = [0, 1, 10, 100]

    def curve(frac, acc):
        return pd.DataFrame(
            {
                "step": steps,
                "epoch": steps,
                "frac_tangent": frac,
                "accuracy": acc,
                "setting": "m",
                "training": "standard",
            }
        )

    cling = curve([0.2, 0.05, 0.06, 0.07], [0.5, 0.55, 0.8, 1.0])  # falls below the band, then fits
    tilt = curve([0.2, 0.5, 0.8, 0.9], [0.5, 0.6, 0.8, 1.0])  # normal turns into the manifold
    assert bool(ch02.clinging_dimpling(cling, {"m": s}).seen.iloc[0])
    out = ch02.clinging_dimpling(tilt, {"m": s})
    assert not out.clinging.iloc[0] and not out.seen.iloc[0]


# ---------------------------------------------------------------- conv autoencoder, explained variance, PCA


@pytest.mark.parametrize("shape, k", [((8, 8), 8), ((28, 28), 16)])
def test_conv_autoencoder_shapes(shape, k):
    torch.manual_seed(0)
    ae = manifold.ConvAutoEncoder(shape, k, (4, 8)).eval()
    x = torch.rand(3, shape[0] * shape[1], generator=_gen(30))
    z = ae.encode(x)
    assert z.shape == (3, k)
    assert ae.decode(z).shape == (3, shape[0] * shape[1])
    assert ae(x).shape == x.shape
    assert ae(x.reshape(3, 1, *shape)).shape == (3, 1, *shape)


@pytest.mark.parametrize(
    "kw",
    [
        dict(image_shape=(10, 10), latent_dim=4),
        dict(image_shape=(8, 8), latent_dim=64),
        dict(image_shape=(8, 8), latent_dim=4, channels=(4,)),
    ],
)
def test_conv_autoencoder_rejects_bad_settings(kw):
    with pytest.raises(ParameterError):
        manifold.ConvAutoEncoder(**kw)


@pytest.mark.parametrize("shape, k", [((4, 4), 1), ((4, 4), 15), ((4, 8), 2), ((8, 4), 2)])
def test_conv_autoencoder_accepts_the_smallest_settings(shape, k):
    """Sides of 4 (the least that two stride-2 stages halve twice) and latent_dim at both ends of [1, H W - 1]."""
    ae = manifold.ConvAutoEncoder(shape, k, (2, 3)).eval()
    x = torch.rand(2, shape[0] * shape[1], generator=_gen(38))
    assert ae.encode(x).shape == (2, k)
    assert ae(x).shape == x.shape


@pytest.mark.parametrize("shape, k", [((0, 4), 1), ((4, 0), 1), ((4, 4), 0), ((4, 4), 16)])
def test_conv_autoencoder_rejects_one_past_the_smallest_settings(shape, k):
    with pytest.raises(ParameterError):
        manifold.ConvAutoEncoder(shape, k, (2, 3))


def test_make_autoencoder_kinds():
    assert isinstance(manifold.make_autoencoder("conv", (8, 8), 4), manifold.ConvAutoEncoder)
    assert isinstance(manifold.make_autoencoder("mlp", (8, 8), 4, widths=[16]), manifold.AutoEncoder)
    with pytest.raises(ParameterError, match="ae_kind"):
        manifold.make_autoencoder("vae", (8, 8), 4)


def test_autoencoder_for_builds_the_configured_kind():
    cfg = SimpleNamespace(ae_kind="conv", latent_dim=3, ae_widths=[16], ae_channels=[4, 8], device="cpu")
    conv = manifold.autoencoder_for(cfg, (8, 4))
    assert isinstance(conv, manifold.ConvAutoEncoder) and conv.image_shape == (8, 4) and conv.latent_dim == 3
    assert conv.encoder[0].out_channels == 4 and conv.encoder[2].out_channels == 8
    mlp = manifold.autoencoder_for(SimpleNamespace(**{**vars(cfg), "ae_kind": "mlp"}), (8, 4))
    assert isinstance(mlp, manifold.AutoEncoder) and mlp.latent_dim == 3
    assert [(m.in_features, m.out_features) for m in mlp.encoder if isinstance(m, nn.Linear)] == [(32, 16), (16, 3)]


def test_tangent_basis_of_conv_decoder_matches_per_sample_jacobians():
    torch.manual_seed(0)
    ae = manifold.ConvAutoEncoder((8, 8), 3, (4, 8)).eval()
    x = torch.rand(5, 64, generator=_gen(31))
    bases = manifold.autoencoder_bases(ae, x)
    assert bases.shape == (5, 64, 3)
    gram = bases.transpose(1, 2) @ bases
    assert torch.allclose(gram, torch.eye(3).expand_as(gram), atol=1e-5)
    with torch.no_grad():
        z = ae.encode(x)
    for i in range(len(z)):
        jac = torch.autograd.functional.jacobian(lambda zi: ae.decode(zi.unsqueeze(0))[0], z[i])  # (64, 3)
        assert torch.allclose(bases[i] @ bases[i].T, jac @ torch.linalg.pinv(jac), atol=1e-4)


def test_explained_variance_known_values():
    x = torch.randn(200, 6, generator=_gen(32)) * torch.tensor([1.0, 2, 3, 1, 1, 1])
    assert manifold.explained_variance(x, x) == pytest.approx(1.0)
    assert manifold.explained_variance(x, x.mean(0).expand_as(x)) == pytest.approx(0.0, abs=1e-6)
    # keeping only the largest-variance coordinate (variance 9 of 17 in total) explains 9/17
    keep = x.mean(0).expand_as(x).clone()
    keep[:, 2] = x[:, 2]
    assert manifold.explained_variance(x, keep) == pytest.approx(
        x[:, 2].var(unbiased=False).item() / x.var(0, unbiased=False).sum().item(), rel=1e-5
    )


def test_pca_basis_recovers_a_planted_subspace():
    u = manifold.random_bases(1, 20, 3, generator=_gen(33))[0]
    x = torch.randn(500, 3, generator=_gen(34)) * torch.tensor([3.0, 2.0, 1.5]) @ u.T + 0.5
    x = x + 1e-3 * torch.randn(500, 20, generator=_gen(35))
    mean, basis = manifold.pca_basis(x, 3)
    assert torch.allclose(basis @ basis.T, u @ u.T, atol=1e-3)
    assert torch.allclose(mean, torch.full((20,), 0.5), atol=0.3)
    with pytest.raises(ParameterError):
        manifold.pca_basis(x, 0)


def test_conv_autoencoder_explains_a_toy_image_manifold():
    """Images on a 2-D family (two patterns with random weights): a k = 2 conv AE explains nearly all of it."""
    a = torch.zeros(8, 8)
    a[1:4, 1:7] = 1.0
    b = torch.zeros(8, 8)
    b[3:7, 2:5] = 1.0
    c = torch.rand(400, 2, generator=_gen(36))
    x = c[:, :1] * a.flatten() + c[:, 1:] * b.flatten()
    torch.manual_seed(0)
    ae = manifold.ConvAutoEncoder((8, 8), 2, (8, 16))
    seen = []
    hist = manifold.fit_autoencoder(
        ae,
        x[:160],
        epochs=25,
        batch_size=20,
        lr=3e-3,
        generator=_gen(37),
        x_val=x[300:],
        progress=False,
        callback=lambda e, m: seen.append((e, m.training)),
    )
    assert seen == [(e, False) for e in range(26)], "callback after every epoch, from 0, in eval mode"
    assert hist.val_explained.iloc[-1] > 0.9
    with torch.no_grad():
        assert manifold.explained_variance(x[300:], ae(x[300:])) == pytest.approx(hist.val_explained.iloc[-1], abs=1e-5)


def test_project_and_projector_name_what_they_reject():
    """A per-sample basis for 3 samples cannot project 4 vectors; the error names both shapes. A part
    other than 'on'/'off' is rejected with the allowed values."""
    v = torch.zeros(4, 10)
    bases = manifold.random_bases(3, 10, 2, generator=_gen(13))
    with pytest.raises(ValueError, match=r"basis must be \(n, k\) or \(4, n, k\), got \(3, 10, 2\)"):
        manifold.project(v, bases)
    with pytest.raises(ParameterError, match=r"'sideways'; allowed values: 'on', 'off'"):
        manifold.projector(bases[0], "sideways")


def test_random_bases_and_sine_manifold_follow_the_generator_alone():
    """The same seeded generator gives the same bases and the same manifold (rotation, frequencies and
    phases) whatever the global RNG did in between; another seed gives others."""
    torch.manual_seed(1)
    b1 = manifold.random_bases(2, 6, 3, generator=_gen(14))
    phi1 = manifold.SineManifold(8, 2, amplitude=0.4, generator=_gen(15))
    torch.manual_seed(2)
    b2 = manifold.random_bases(2, 6, 3, generator=_gen(14))
    phi2 = manifold.SineManifold(8, 2, amplitude=0.4, generator=_gen(15))
    assert torch.equal(b1, b2)
    for name in ("u", "w", "b"):
        assert torch.equal(getattr(phi1, name), getattr(phi2, name)), name
    assert not torch.equal(b1, manifold.random_bases(2, 6, 3, generator=_gen(16)))
    assert not torch.equal(phi1.b, manifold.SineManifold(8, 2, amplitude=0.4, generator=_gen(16)).b)
