"""lib.som against MiniSom (same weights, same answers) and code measures on hand-made maps."""

import math

import numpy as np
import pytest
import torch
from minisom import MiniSom

from lib import som
from lib.config import ParameterError


@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(5, 6))
    x = np.concatenate([c + rng.normal(size=(40, 6)) for c in centres])
    return x


def ravel(m: MiniSom, x: np.ndarray) -> np.ndarray:
    shape = m.get_weights().shape[:2]
    return np.array([np.ravel_multi_index(m.winner(v), shape) for v in x])


@pytest.mark.parametrize("rows,cols", [(5, 4), (3, 7)])
def test_winners_match_minisom_winner(blobs, rows, cols):
    m = MiniSom(rows, cols, blobs.shape[1], random_seed=1)
    m.pca_weights_init(blobs)
    m.train(blobs, 50, random_order=True)
    w = torch.tensor(m.get_weights().reshape(rows * cols, -1))
    expected = ravel(m, blobs)
    # small chunks so that the chunked path is exercised
    assert np.array_equal(som.winners(torch.tensor(blobs), w, chunk_size=17).numpy(), expected)


def test_pca_init_matches_minisom_up_to_axis_direction(blobs):
    m = MiniSom(5, 4, blobs.shape[1])
    m.pca_weights_init(blobs)
    ref = m.get_weights()
    w = som.pca_init(torch.tensor(blobs), 5, 4).numpy().reshape(5, 4, -1)
    errors = [np.abs(w[::a, ::b] - ref).max() for a in (1, -1) for b in (1, -1)]
    assert min(errors) < 1e-10


def test_batch_fit_reproduces_minisom_train_batch_offline(blobs):
    m = MiniSom(5, 4, blobs.shape[1], sigma=2.0, learning_rate=0.6, random_seed=3)
    m.pca_weights_init(blobs)
    w0 = torch.tensor(m.get_weights().reshape(20, -1).copy())
    m.train_batch_offline(blobs, 7)
    fitted = som.fit(
        torch.tensor(blobs),
        5,
        4,
        epochs=7,
        sigma=2.0,
        learning_rate=0.6,
        lr_decay="asymptotic",
        sigma_decay="asymptotic",
        schedule_at="start",
        init=w0,
    )
    np.testing.assert_allclose(fitted.weights.numpy(), m.get_weights().reshape(20, -1), atol=1e-10)
    assert [h["sigma"] for h in fitted.history][-1] == pytest.approx(2.0 / (1 + 6 / 3.5))


def test_errors_and_u_matrix_match_minisom(blobs):
    m = MiniSom(6, 5, blobs.shape[1], random_seed=0)
    m.pca_weights_init(blobs)
    m.train(blobs, 400, random_order=True)
    s = som.SOM(torch.tensor(m.get_weights().reshape(30, -1)), 6, 5)
    x = torch.tensor(blobs)
    assert s.quantization_error(x) == pytest.approx(m.quantization_error(blobs), rel=1e-9)
    assert s.topographic_error(x) == pytest.approx(m.topographic_error(blobs), abs=1e-12)
    u = s.u_matrix().numpy()
    np.testing.assert_allclose(u / u.max(), m.distance_map(scaling="mean"), atol=1e-12)


def test_decays_are_minisoms():
    m = MiniSom(5, 5, 1, sigma=4.0)
    for kind, fn in [
        ("asymptotic", m._asymptotic_decay),
        ("inverse_to_zero", m._inverse_decay_to_zero),
        ("linear_to_zero", m._linear_decay_to_zero),
        ("inverse_to_one", m._inverse_decay_to_one),
        ("linear_to_one", m._linear_decay_to_one),
    ]:
        assert som.decay(4.0, 7, 20, kind) == pytest.approx(fn(4.0, 7, 20))
    assert som.decay(4.0, 20, 20, "asymptotic") == pytest.approx(4.0 / 3)


def test_fit_lowers_quantization_error_and_rejects_bad_arguments(blobs):
    x = torch.tensor(blobs, dtype=torch.float32)
    init = som.pca_init(x, 4, 4)
    fitted = som.fit(x, 4, 4, epochs=10, sigma=2.0)
    assert fitted.quantization_error(x) < som.SOM(init, 4, 4).quantization_error(x)
    for kw in (
        {"epochs": 0},
        {"sigma": -1.0},
        {"learning_rate": 1.5},
        {"lr_decay": "cosine"},
        {"init": "random"},
        {"schedule_at": "middle"},
    ):
        with pytest.raises(ParameterError):
            som.fit(x, 4, 4, **{"epochs": 2, **kw})


# ---------------------------------------------------------------- code measures, hand-made maps


def table(rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_contingency_counts_codes_by_class():
    codes = torch.tensor([0, 0, 2, 2, 2, 3])
    labels = torch.tensor([1, 0, 1, 1, 0, 1])
    c = som.contingency(codes, labels, n_units=4, n_classes=2)
    assert c.tolist() == [[1, 1], [0, 0], [1, 2], [0, 1]]


def test_measures_of_a_perfectly_class_specific_map():
    # 4 codes used equally, codes 0-1 hold class 0 only, codes 2-3 class 1 only, one unused code
    m = som.code_measures(table([[5, 0], [5, 0], [0, 5], [0, 5], [0, 0]]))
    assert m["effective_codes"] == pytest.approx(4)
    assert m["effective_codes_per_class"] == pytest.approx(2)
    assert m["used_codes"] == 4
    assert m["shared_codes"] == 0 and m["inputs_in_shared_codes"] == 0
    assert m["purity"] == 1
    assert m["mutual_information"] == pytest.approx(1.0)  # bits: H(label) = 1
    assert m["nmi"] == pytest.approx(1.0)


def test_measures_of_a_single_shared_code():
    m = som.code_measures(table([[0, 0], [6, 6], [0, 0]]))
    assert m["effective_codes"] == pytest.approx(1)
    assert m["shared_codes"] == 1 and m["inputs_in_shared_codes"] == 1
    assert m["purity"] == 0.5
    assert m["mutual_information"] == pytest.approx(0.0, abs=1e-12)


def test_measures_of_a_mixed_map():
    # code 0: 3 of class A, 1 of class B; code 1: 4 of class B
    m = som.code_measures(table([[3, 1], [0, 4]]))
    h = lambda *p: -sum(q * math.log2(q) for q in p if q > 0)  # noqa: E731
    mi = h(3 / 8, 5 / 8) - 0.5 * h(3 / 4, 1 / 4)
    assert m["purity"] == pytest.approx(7 / 8)
    assert m["shared_codes"] == 0.5 and m["inputs_in_shared_codes"] == 0.5
    assert m["mutual_information"] == pytest.approx(mi)
    assert m["nmi"] == pytest.approx(mi / h(3 / 8, 5 / 8))
    assert m["effective_codes"] == pytest.approx(2)
    # class A uses one code; class B uses codes 0 and 1 in shares 1/5, 4/5
    assert m["effective_codes_per_class"] == pytest.approx((1 + 2 ** h(1 / 5, 4 / 5)) / 2)


def test_homogeneity_and_other_class_fraction():
    ref = table([[3, 1], [0, 4], [0, 0]])
    codes = torch.tensor([0, 0, 1, 2])
    labels = torch.tensor([0, 1, 1, 0])
    f = som.other_class_fraction(codes, labels, ref)
    assert f[:3].tolist() == pytest.approx([0.25, 0.75, 0.0])
    assert math.isnan(f[3].item())  # no reference input uses code 2
    assert som.homogeneity(codes, labels, ref) == pytest.approx((0.25 + 0.75 + 0.0) / 3)


def test_landing_categories():
    ref = table([[3, 1, 0], [0, 4, 0], [0, 0, 0], [0, 1, 5]])
    code_labels = som.code_labels(ref)
    assert code_labels.tolist() == [0, 1, -1, 2]
    codes = torch.tensor([0, 1, 2, 3])
    true = torch.tensor([0, 0, 0, 0])
    adv = torch.tensor([1, 1, 1, 1])
    # code 0 belongs to the true class, code 1 to the adversarial class, code 2 is unused, code 3 is class 2's
    assert som.landing(codes, true, adv, ref).tolist() == [0, 1, 3, 2]


# ---------------------------------------------------------------- PCA start and streamed fitting at scale


@pytest.fixture
def wide():
    """Wide data with a decaying spectrum (the regime of a conv layer): dim 300 > the sketch's 10 columns."""
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(300, 300, generator=g, dtype=torch.float64))[0]
    scales = 3.0 * torch.arange(1, 301, dtype=torch.float64) ** -0.8
    return (torch.randn(2000, 300, generator=g, dtype=torch.float64) * scales) @ basis.T + 0.5


def test_randomized_plane_matches_the_exact_eigendecomposition(wide):
    fast = som.principal_planes(som.tensor_batches(wide, chunk_size=333))[0]
    exact = som.principal_planes(som.tensor_batches(wide), method="exact")[0]
    np.testing.assert_allclose(fast.mean.numpy(), wide.mean(0).numpy(), atol=1e-12)
    # same sign convention, so the components agree entry by entry
    np.testing.assert_allclose(fast.components.numpy(), exact.components.numpy(), atol=1e-6)
    np.testing.assert_allclose(fast.variances.numpy(), exact.variances.numpy(), rtol=1e-8)
    cov = torch.cov(wide.T)
    top = torch.linalg.eigvalsh(cov)[-2:].flip(0)
    np.testing.assert_allclose(exact.variances.numpy(), top.numpy(), rtol=1e-10)
    assert fast.n == len(wide)


def test_plane_is_deterministic_and_pca_init_accepts_it(wide):
    a = som.principal_planes(som.tensor_batches(wide), seed=3)[0]
    b = som.principal_planes(som.tensor_batches(wide), seed=3)[0]
    assert torch.equal(a.components, b.components)
    from_plane = som.pca_init(a, 6, 5)
    from_data = som.pca_init(wide.float(), 6, 5)
    assert from_plane.dtype == torch.float32 and from_plane.shape == (30, 300)
    np.testing.assert_allclose(from_plane.numpy(), from_data.numpy(), atol=1e-5)


def test_principal_planes_rejects_bad_arguments(wide):
    with pytest.raises(ParameterError, match="method"):
        som.principal_planes(som.tensor_batches(wide), method="svd")
    with pytest.raises(ParameterError, match="n_iter"):
        som.principal_planes(som.tensor_batches(wide), n_iter=0)


def test_fit_layers_streams_several_layers_as_separate_fits(blobs, wide):
    """Fitting two layers in shared, chunked passes gives each layer the weights of its own fit."""
    x1 = torch.tensor(blobs[:150], dtype=torch.float64)
    x2 = wide[:150]
    both = som.fit_layers(som.tensor_batches(x1, x2, chunk_size=37), 4, 5, epochs=6, sigma=2.0)
    for x, m in zip((x1, x2), both):
        alone = som.fit(x, 4, 5, epochs=6, sigma=2.0)
        np.testing.assert_allclose(m.weights.numpy(), alone.weights.numpy(), atol=1e-9)
    assignment = som.assign_layers(both, som.tensor_batches(x1, x2, chunk_size=50))
    for x, m, (idx, dist) in zip((x1, x2), both, assignment):
        assert torch.equal(idx[:, 0], m.codes(x))
        assert som.quantization_error(dist) == pytest.approx(m.quantization_error(x))
        assert som.topographic_error(idx, 4, 5) == pytest.approx(m.topographic_error(x))


def test_fit_layers_rejects_bad_arguments(blobs):
    x = torch.tensor(blobs)
    with pytest.raises(ParameterError, match="init"):
        som.fit_layers(som.tensor_batches(x), 3, 3, init="random")
    with pytest.raises(ParameterError, match="non-empty"):
        som.fit_layers(som.tensor_batches(x[:0]), 3, 3)


def batch_som_by_hand(x, w, rows, cols, epochs, sigma, lr, shift):
    """Batch SOM in numpy: pass t reads MiniSom's asymptotic decays at t + shift (1 = "end", 0 = "start")."""
    w = w.copy()
    ij = np.array([(i, j) for i in range(rows) for j in range(cols)], dtype=float)
    d2 = ((ij[:, None, :] - ij[None, :, :]) ** 2).sum(-1)
    sigmas, rates = [], []
    for t in range(epochs):
        s = sigma / (1 + (t + shift) / (epochs / 2))
        a = lr / (1 + (t + shift) / (epochs / 2))
        bmu = ((x[:, None, :] - w[None, :, :]) ** 2).sum(-1).argmin(1)
        h = np.exp(-d2 / (2 * s * s))[:, bmu]  # (units, points)
        den = h.sum(1)
        live = den > 0
        w[live] = (1 - a) * w[live] + a * (h @ x)[live] / den[live, None]
        sigmas.append(s)
        rates.append(a)
    return w, sigmas, rates


def test_default_schedule_reads_the_decays_at_the_end_of_each_pass(blobs):
    """``schedule_at="end"`` (the default) reads pass t's sigma and rate at t + 1, so the last pass runs at
    the final sigma: a batch SOM written by hand with that schedule gives the same weights and history."""
    w0 = som.pca_init(torch.tensor(blobs), 5, 4)
    want, sigmas, rates = batch_som_by_hand(blobs, w0.numpy(), 5, 4, 6, 2.5, 1.0, shift=1)
    fitted = som.fit(torch.tensor(blobs), 5, 4, epochs=6, init=w0)  # sigma defaults to max(5, 4) / 2
    np.testing.assert_allclose(fitted.weights.numpy(), want, atol=1e-9)
    assert [h["sigma"] for h in fitted.history] == pytest.approx(sigmas, rel=1e-12)
    assert [h["learning_rate"] for h in fitted.history] == pytest.approx(rates, rel=1e-12)
    assert fitted.history[-1]["sigma"] == pytest.approx(2.5 / 3)  # the final sigma: asymptotic at t = T
    layers = som.fit_layers(som.tensor_batches(torch.tensor(blobs)), 5, 4, epochs=6, init=[w0])
    np.testing.assert_allclose(layers[0].weights.numpy(), want, atol=1e-9)
    start, _, _ = batch_som_by_hand(blobs, w0.numpy(), 5, 4, 6, 2.5, 1.0, shift=0)
    assert np.abs(start - want).max() > 1e-3  # the two schedules give different maps


def test_bad_epochs_and_unknown_decay_are_named():
    x = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    with pytest.raises(ParameterError, match=r"SOM 'epochs' must be >= 1, got 0"):
        som.fit(x, 2, 2, epochs=0)
    with pytest.raises(ParameterError, match=r"unknown decay 'cosine'; allowed: 'asymptotic', 'inverse_to_zero', "):
        som.decay(1.0, 0, 10, "cosine")
    with pytest.raises(ParameterError, match=r"'inverse_to_one', 'linear_to_one', 'constant'$"):
        som.decay(1.0, 0, 10, "cosine")


def test_test_homogeneity_reads_test_codes_against_the_training_codes():
    """Training codes: unit 0 holds one input of each class, unit 1 class 1 only, unit 2 (of 3) none.
    A class-0 test input on unit 0 finds half its reference in another class, one on unit 1 all of
    it; a test input on the unused unit 2 gets NaN."""
    f = som.test_homogeneity(
        torch.tensor([0, 0, 1]),
        torch.tensor([0, 1, 1]),
        torch.tensor([0, 1, 1, 2]),
        torch.tensor([0, 0, 1, 1]),
        n_units=3,
        n_classes=2,
    )
    assert isinstance(f, np.ndarray) and f.shape == (4,)
    assert f[:3].tolist() == [0.5, 1.0, 0.0] and math.isnan(f[3])


def test_a_one_row_map_fits_and_an_empty_side_is_rejected():
    """A 1 x 3 map is a valid chain of units (the boundary rows = 1); a map with zero rows or zero
    columns (either side alone) has no units and is rejected by name."""
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    chain = som.fit(x, 1, 3, epochs=2)
    assert chain.weights.shape == (3, 2) and (chain.rows, chain.cols) == (1, 3)
    for rows, cols in ((0, 3), (3, 0)):
        with pytest.raises(ParameterError, match=rf"'rows' and 'cols' must be positive, got {rows}x{cols}"):
            som.fit(x, rows, cols, epochs=2)


def test_winners_of_a_single_unit_map_are_all_that_unit():
    """With one unit every input's best-matching unit is unit 0, whatever the inputs."""
    x = torch.tensor([[0.0, 0.0], [5.0, -1.0], [-3.0, 2.0]])
    assert som.winners(x, torch.tensor([[1.0, 1.0]])).tolist() == [0, 0, 0]


def test_tensor_batches_of_one_column_take_the_whole_budget_of_rows():
    """The default chunk holds 2**24 entries: with one column that is 2**24 rows, so 2**23 + 1 rows
    (a stride-0 view, no memory) come in one chunk; two columns halve the rows per chunk (two chunks)."""
    n = (1 << 23) + 1
    one = torch.zeros(1, 1).expand(n, 1)
    assert [len(c[0]) for c in som.tensor_batches(one)()] == [n]
    two = torch.zeros(1, 2).expand(n, 2)
    assert [len(c[0]) for c in som.tensor_batches(two)()] == [1 << 23, 1]


def test_exact_pca_takes_two_passes_and_randomized_takes_n_iter():
    """The exact method reads the data twice (means, then the covariance); the randomized one once per
    iteration. A counting source tells which method ran."""
    x = torch.tensor([[3.0, 0.0, 0.0], [-3.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, -1.0, 0.0]])
    inner, passes = som.tensor_batches(x), []

    def counted():
        passes.append(1)
        return inner()

    som.principal_planes(counted, method="exact")
    assert len(passes) == 2
    passes.clear()
    som.principal_planes(counted, method="randomized", n_iter=3)
    assert len(passes) == 3


def test_principal_planes_of_one_input_says_it_needs_two():
    for method in som.PCA_METHODS:
        with pytest.raises(ValueError, match="principal_planes needs at least two inputs"):
            som.principal_planes(som.tensor_batches(torch.ones(1, 3)), method=method)


def test_pca_init_spaces_the_units_evenly_in_double_precision():
    """Planted data on the axes: (+-3, 0, 0) and (0, +-1, 0) have mean 0 and principal components e1, e2,
    so unit (i, j) of a 7 x 2 map is (a_i, b_j, 0) with a_i = -1 + i/3 and b_j = -1, 1, to float64
    precision for float64 data (a float32 grid would be off by ~1e-8)."""
    x = torch.tensor([[3.0, 0.0, 0.0], [-3.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, -1.0, 0.0]], dtype=torch.float64)
    w = som.pca_init(x, 7, 2, method="exact")
    want = np.array([[-1 + i / 3, b, 0.0] for i in range(7) for b in (-1.0, 1.0)])
    assert w.dtype == torch.float64
    np.testing.assert_allclose(w.numpy(), want, rtol=0, atol=1e-15)
