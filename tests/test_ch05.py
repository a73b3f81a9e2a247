"""Chapter 5: parameter checks, the population, the statistics over networks and the claims' verdicts."""

import dataclasses
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from lib import claims, config, flip, manifold, monotonicity, stats, subspace
from lib.chapters import ch05
from lib.chapters.ch05.claims import DECLARED
from lib.config import ParameterError


def resolve(**kw):
    return config.resolve(ch05.PARAMS, {"profile": "quick"}, device="cpu", **kw)


@pytest.mark.parametrize(
    "kw, name",
    [
        ({"alpha_window": [11, 200]}, "alpha_window"),  # beyond the narrowest layer
        ({"alpha_window": [11, 12]}, "alpha_window"),
        ({"n_eval": 5000}, "n_eval"),
        ({"latent_dim": 64}, "latent_dim"),  # digits have 64 pixels
        ({"epoch_grid": [20]}, "epoch_grid"),
        ({"pgd_budgets": [0.5, 9.0]}, "flip_eps_max"),
        ({"init_scales": [1.0, 2.0]}, "init_scales"),
    ],
)
def test_bad_parameters_fail_before_training(kw, name):
    with pytest.raises(ParameterError, match=name):
        ch05.load_data(resolve(**kw))


@pytest.mark.parametrize(
    "kw, name",
    [
        ({"widths": [0]}, "widths"),
        ({"dataset": "cifar"}, "dataset"),
        ({"n_seeds": 1}, "n_seeds"),
        ({"pca_variance": 1.0}, "pca_variance"),
        ({"weight_decays": [-1.0]}, "weight_decays"),
    ],
)
def test_bad_values_are_rejected_by_resolve(kw, name):
    with pytest.raises(ParameterError, match=name):
        resolve(**kw)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"n_seeds": 1}, "parameter 'n_seeds' must be >= 2, got 1"),
        ({"som_grid": 1}, "parameter 'som_grid' must be >= 2, got 1"),
        ({"n_boot": 99}, "parameter 'n_boot' must be >= 100, got 99"),
        ({"width_grid": [config.MAX_WIDTH + 1]}, f"parameter 'width_grid' must be <= {config.MAX_WIDTH}"),
        ({"anneal_share": 1.0}, r"must be in \[0, 1\)"),
    ],
)
def test_bounds_name_the_parameter_and_the_bound(kw, message):
    with pytest.raises(ParameterError, match=message):
        resolve(**kw)


def test_lens_2_parameters_are_the_learned_manifolds_in_place():
    keys, names = list(ch05.PARAMS), list(manifold.LEARNED_PARAMS)
    at = keys.index(names[0])
    assert keys[at - 1 : at + len(names) + 1] == ["alpha_window", *names, "som_grid"]  # the table's order
    for name, p in manifold.LEARNED_PARAMS.items():
        assert ch05.PARAMS[name] == dataclasses.replace(p, help="lens 2: " + p.help)


def test_chapter_5_imports_no_other_chapter():
    code = "import sys, lib.chapters.ch05; print(sorted(m for m in sys.modules if m.startswith('lib.chapters.ch0')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert [m for m in eval(out) if not m.startswith("lib.chapters.ch05")] == []


def test_population_is_balanced_with_shared_seeds():
    cfg = resolve()
    pop = ch05.population(cfg)
    per_method = 1 + len(cfg.epoch_grid) + len(cfg.width_grid) + len(cfg.init_scales) + len(cfg.weight_decays)
    assert len(pop) == len(ch05.METHODS) * per_method * cfg.n_seeds
    sizes = pd.Series([n.configuration for n in pop]).value_counts()
    assert (sizes == cfg.n_seeds).all() and len(sizes) == len(ch05.METHODS) * per_method
    seeds = {c: {n.seed for n in pop if n.configuration == c} for c in sizes.index}
    assert len({frozenset(s) for s in seeds.values()}) == 1


def test_sweep_seed_changes_the_networks():
    assert {n.seed for n in ch05.population(resolve(seed=1))}.isdisjoint(n.seed for n in ch05.population(resolve()))


def test_init_scale_multiplies_trainable_weights_only():
    cfg = resolve()
    ds = ch05.load_data(cfg)
    pop = [n for n in ch05.population(cfg) if n.method == "local" and n.seed == 0]
    base = next(n for n in pop if n.condition == "base")
    scaled = next(n for n in pop if n.init_scale == 2.0)
    a, b = ch05.build(cfg, ds, base), ch05.build(cfg, ds, scaled)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(2 * p, q)
    for r, s in zip(a.readouts, b.readouts):
        assert torch.equal(r, s)


def test_principal_subspace_recovers_a_planted_subspace():
    g = torch.Generator().manual_seed(0)
    basis, _ = torch.linalg.qr(torch.randn(30, 3, generator=g, dtype=torch.float64))
    x = (torch.randn(2000, 3, generator=g, dtype=torch.float64) * torch.tensor([3.0, 2.0, 1.0])) @ basis.T
    x = (x + 0.01 * torch.randn(2000, 30, generator=g, dtype=torch.float64) + 5.0).float()
    b, k, share = subspace.principal_subspace(x, 0.99)
    assert k == 3 and share >= 0.99
    assert torch.allclose(b.double() @ b.double().T, basis @ basis.T, atol=1e-2)
    assert subspace.principal_subspace(x, 0.5)[1] == 1


def test_cluster_resamples_draw_whole_configurations():
    clusters = np.repeat(["a", "b", "c", "d"], 3)
    idx = ch05.cluster_resamples(clusters, 50, np.random.default_rng(0))
    assert idx.shape == (50, 12)
    for row in idx:
        drawn = clusters[row].reshape(4, 3)
        assert (drawn == drawn[:, :1]).all()  # every block of three is one configuration, all its seeds
    with pytest.raises(ValueError, match="same number"):
        ch05.cluster_resamples(["a", "a", "b"], 10, np.random.default_rng(0))


def test_spearman_and_its_partial_on_a_common_cause():
    rng = np.random.default_rng(0)
    c = rng.normal(size=60)
    a, b = c + 0.1 * rng.normal(size=60), c + 0.1 * rng.normal(size=60)  # related only through c
    idx = ch05.cluster_resamples(np.repeat(np.arange(20), 3), 300, rng)
    r, lo, hi = stats.spearman_with_ci(a, b, idx)
    assert r > 0.9 and lo > 0.8
    p, plo, phi = stats.spearman_with_ci(a, b, idx, control=c)
    assert abs(p) < 0.35 and plo < 0 < phi
    assert stats.spearman_with_ci(np.arange(60), -(np.arange(60) ** 3), idx)[0] == pytest.approx(-1.0)


def synthetic_table(direction: int, seed: int = 0) -> pd.DataFrame:
    """A population whose lenses follow robustness in their predicted direction (+1) or against it (-1)."""
    cfg = resolve()
    rng = np.random.default_rng(seed)
    rows = []
    for n in ch05.population(cfg):
        robust = rng.uniform(0.2, 2.0) + (1.0 if n.method == "adversarial" else 0.0)
        row = {
            "method": n.method,
            "condition": n.condition,
            "configuration": n.configuration,
            "seed": n.seed,
            "clean_accuracy": rng.uniform(0.9, 0.95),
            "flip_norm": robust,
            "pgd_0.5": robust / 3,
            "pgd_1": robust / 4,
        }
        for lens, (_, _, sign) in ch05.LENSES.items():
            s = sign if sign else 1
            row[lens] = math.exp(direction * s * robust + 0.05 * rng.normal())
        for null in ch05.NULL.values():  # a random basis sees nothing of robustness
            row[null] = math.exp(0.05 * rng.normal())
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("direction, expected", [(+1, claims.HOLDS), (-1, claims.FAILS)])
def test_claim_verdicts_follow_the_data(direction, expected):
    cfg = resolve(n_boot=200)
    table = synthetic_table(direction)
    corr = ch05.correlations(cfg, table)
    shift = ch05.training_shift(cfg, table)
    listed = ch05.claims(cfg, table, corr, shift)
    assert [(c.id, c.kind) for c in listed] == [(d.id, d.kind) for d in DECLARED.values()]  # every declared claim, once
    rows = {c.id: c for c in listed}
    for lens in ch05.DIRECTED:
        assert rows[f"ch05.{lens}_predicts"].verdict == expected, lens
    for lens in ch05.BASIS_LENSES:
        assert rows[f"ch05.{lens}_beats_null"].verdict == expected, lens
    assert rows["ch05.at_robust"].verdict == claims.HOLDS and rows["ch05.at_robust"].kind == claims.CHECK
    assert claims.assert_checks(listed).startswith("Mechanism checks: all 1 pass")
    assert rows["ch05.at_moves_lenses_as_predicted"].verdict == expected
    assert {c.kind for c in listed} == {claims.CONTROL, claims.CHECK}  # the book's claims; no paper claim here
    claims.record(list(rows.values()), "ch05")  # ids follow the contract


def test_training_shift_pairs_the_same_condition_and_seed():
    cfg = resolve(n_boot=200)
    table = synthetic_table(+1)
    adv = table.method == "adversarial"
    shift = ch05.training_shift(cfg, table)
    assert shift.loc["flip_norm", "mean change"] == pytest.approx(
        table[adv].flip_norm.mean() - table[table.method == "backprop"].flip_norm.mean()
    )
    table.loc[adv, "alpha"] = table.loc[table.method == "backprop", "alpha"].to_numpy() + 0.5
    s = ch05.training_shift(cfg, table).loc["alpha"]
    assert s["mean change"] == pytest.approx(0.5) and s.lo == pytest.approx(0.5) and s.hi == pytest.approx(0.5)


def tiny_cfg(**kw):
    return resolve(
        widths=[32, 32],
        width_grid=[40],
        epochs=2,
        epoch_grid=[1],
        n_seeds=2,
        alpha_window=[3, 8],
        n_eval=12,
        ae_epochs=1,
        ae_channels=[4, 8],
        som_grid=3,
        som_sigma=1.0,
        som_epochs=2,
        pgd_steps=2,
        fmn_steps=2,
        at_steps=1,
        n_train=200,
        **kw,
    )


def test_one_network_is_measured_through_every_lens_deterministically():
    cfg = tiny_cfg()
    ds = ch05.load_data(cfg)
    probe = ch05.make_probe(cfg, ds)
    spec = next(n for n in ch05.population(cfg) if n.method == "adversarial")
    rows = [ch05.measure(cfg, ds, probe, ch05.train_network(cfg, ds, spec), spec) for _ in range(2)]
    assert rows[0] == rows[1]
    row = rows[0]
    for key in (*ch05.LENSES, "flip_norm", "clean_accuracy", "pgd_0.5", "pgd_1", "alpha_1", "alpha_2"):
        assert np.isfinite(row[key]), key
    assert 0 < row["flip_norm"] <= cfg.flip_eps_max
    assert 0 <= row["homogeneity_shallow"] <= 1
    assert row["pgd_1"] <= row["pgd_0.5"] <= row["clean_accuracy"]


def test_within_method_rho_ignores_a_lens_that_only_separates_methods():
    rng = np.random.default_rng(1)
    methods = np.repeat(["a", "b", "c"], 60)
    clusters = np.repeat(np.arange(60), 3)
    robust = rng.normal(size=180) + 5.0 * (methods == "c")
    lens = rng.normal(size=180) + 5.0 * (methods == "c")  # tracks the method, not robustness inside it
    idx = ch05.cluster_resamples(clusters, 300, rng)
    assert stats.spearman_with_ci(lens, robust, idx)[0] > 0.4
    r, lo, hi = ch05.within_spearman_with_ci(lens, robust, methods, clusters, 300, rng)
    assert abs(r) < 0.3 and lo < 0 < hi
    tracks = robust + 0.1 * rng.normal(size=180)
    assert ch05.within_spearman_with_ci(tracks, robust, methods, clusters, 300, rng)[1] > 0.8


# ---------------------------------------------------------------- issue 29: every verdict can fail


def test_lens_and_robustness_images_are_disjoint_halves():
    lens, robust = ch05.split_test(450, 100, torch.Generator().manual_seed(8))
    assert len(lens) == len(robust) == 225 and not set(lens.tolist()) & set(robust.tolist())
    assert sorted(lens.tolist() + robust.tolist()) == list(range(450))
    plain = torch.randperm(450, generator=torch.Generator().manual_seed(8))[:100]
    assert torch.equal(lens[:100], plain)  # the lens images are those a plain draw of n_eval gave
    with pytest.raises(ParameterError, match="n_eval"):
        ch05.split_test(450, 226, torch.Generator().manual_seed(8))
    with pytest.raises(ParameterError, match="n_eval"):
        resolve(n_eval=300)  # digits: 450 test images, 225 per half


def test_robustness_is_measured_on_the_other_half(monkeypatch):
    cfg = tiny_cfg()
    ds = ch05.load_data(cfg)
    probe = ch05.make_probe(cfg, ds)
    half = {tuple(r) for r in ds.x_test[probe.robust_index].tolist()}
    assert all(tuple(r) in half for r in probe.x_robust.tolist())
    assert not any(tuple(r) in half for r in probe.x.tolist())
    spec = next(n for n in ch05.population(cfg) if n.method == "backprop")
    net = ch05.train_network(cfg, ds, spec)
    row = ch05.measure(cfg, ds, probe, net, spec)
    pred = net(probe.x_robust).argmax(1)
    search = dict(eps_max=cfg.flip_eps_max, steps=cfg.fmn_steps)
    full = flip.flip_norms(net, probe.x_robust, pred, {"full": (None, "on")}, **search)["full"].norm
    assert row["flip_norm"] == ch05.lenses.median_norm(full, cfg.flip_eps_max)
    # the lens images feed no robustness number: scrambling them leaves robustness as it was
    scrambled = dataclasses.replace(probe, x=torch.rand_like(probe.x))
    again = ch05.measure(cfg, ds, scrambled, net, spec)
    assert again["flip_norm"] == row["flip_norm"] and again["pgd_0.5"] == row["pgd_0.5"]
    assert again["first_order"] != row["first_order"]


def flip_population(effect: float, seed: int = 0, n_images: int = 100) -> tuple[pd.DataFrame, np.ndarray]:
    """Simulated flip norms per network, each image's norm with its own network-specific noise.

    ``effect`` 0, the planted null: every network is equally robust, and every search (unrestricted
    on the lens images, unrestricted on the robustness images, confined to the manifold, confined to
    a random subspace of its dimension) differs between networks by measurement noise alone. Else
    robustness s varies and the manifold's flips, relative to a random subspace's, scale as s**-effect.
    Returns the table (flip_norm on the robustness images, on_random_flip on the lens images) and the
    old lens, med(flip on) / med(flip off), whose "off" search is nearly the unrestricted one on the
    same images, the one the old robustness was (old robustness: the table's old_flip_norm)."""
    cfg = resolve()
    rng = np.random.default_rng(seed)
    rows, old = [], []
    d_lens, d_robust = rng.lognormal(0, 0.3, n_images), rng.lognormal(0, 0.3, n_images)  # the images' difficulty

    def noisy(scale):
        return scale * rng.lognormal(0, 0.3, n_images)

    for n in ch05.population(cfg):
        s = 1.0 if effect == 0 else rng.uniform(0.3, 3.0)
        full_lens, random = noisy(s * d_lens), noisy(3 * s * d_lens)
        on = noisy(3 * s * d_lens) if effect == 0 else random * s**-effect * rng.lognormal(0, 0.1, n_images)
        old.append(np.median(on) / np.median(full_lens))
        rows.append(
            {
                "method": n.method,
                "condition": n.condition,
                "configuration": n.configuration,
                "seed": n.seed,
                "clean_accuracy": rng.uniform(0.9, 0.95),
                "flip_norm": ch05.lenses.median_norm(torch.tensor(noisy(s * d_robust)), 100.0),
                "old_flip_norm": float(np.median(full_lens)),
                "on_random_flip": ch05.flip_ratio(torch.tensor(on), torch.tensor(random), 100.0),
            }
        )
    return pd.DataFrame(rows), np.asarray(old)


def test_ratio_lens_no_longer_shares_its_measurement_with_robustness():
    table, old = flip_population(effect=0)  # planted null: no network is more robust than another
    idx = ch05.cluster_resamples(table.configuration, 300, np.random.default_rng(0))
    r, lo, hi = stats.spearman_with_ci(old, table.old_flip_norm, idx)
    assert hi < 0 and r < -0.5  # the old on/off ratio "holds" with no relation at all
    r, lo, hi = stats.spearman_with_ci(table.on_random_flip, table.flip_norm, idx)
    assert lo < 0 < hi  # restricted versus random-k, robustness on other images: no link
    table, _ = flip_population(effect=0.5)  # planted effect: the manifold gets cheaper as robustness grows
    r, lo, hi = stats.spearman_with_ci(table.on_random_flip, table.flip_norm, idx)
    assert hi < -0.5


def test_flip_ratio_is_a_median_of_capped_per_image_ratios():
    a, b = torch.tensor([1.0, 2.0, math.inf, math.inf]), torch.tensor([2.0, 1.0, 4.0, math.inf])
    assert ch05.flip_ratio(a, b, cap=8.0) == pytest.approx(float(torch.tensor([0.5, 2.0, 2.0, 1.0]).median()))


def test_first_order_distance_of_a_linear_model_is_its_distance_to_the_boundary():
    net = torch.nn.Linear(3, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
        net.bias.zero_()
    x = torch.tensor([[2.0, 5.0, -1.0], [-0.5, 1.0, 1.0], [3.0, 0.0, 0.0]])
    assert ch05.first_order_distance(net, x) == pytest.approx(2.0)  # |x_1|: 2, 0.5, 3


def comparator_table(seed: int = 0, **columns) -> pd.DataFrame:
    """A population with robustness and the columns given as functions of (robustness, rng)."""
    table = synthetic_table(+1, seed)
    rng = np.random.default_rng(seed + 100)
    for name, f in columns.items():
        table[name] = [f(r, rng) for r in table.flip_norm]
    return table


def test_a_lens_whose_null_predicts_as_well_does_not_beat_its_null():
    cfg = resolve(n_boot=300)
    generic = dict(  # any basis sees robustness: the lens and its null both track it
        tangent_share=lambda r, g: r + 0.3 * g.normal(), tangent_share_null=lambda r, g: r + 0.3 * g.normal()
    )
    table = comparator_table(**generic)
    rows = {c.id: c for c in ch05.claims(cfg, table, ch05.correlations(cfg, table), ch05.training_shift(cfg, table))}
    assert rows["ch05.tangent_share_predicts"].verdict == claims.HOLDS  # the old test passes
    assert rows["ch05.tangent_share_beats_null"].verdict == claims.INCONCLUSIVE
    table = comparator_table(tangent_share=generic["tangent_share"], tangent_share_null=lambda r, g: g.normal())
    d, (lo, hi) = ch05.rho_difference(cfg, table, "tangent_share", "tangent_share_null", absolute=False, sign=+1)
    assert lo > 0.3


def test_a_share_that_beats_alpha_can_lose_to_the_first_order_distance():
    cfg = resolve(n_boot=300)
    table = comparator_table(
        alpha=lambda r, g: g.normal(),  # null, as on digits
        tangent_share=lambda r, g: r + 0.5 * g.normal(),
        first_order=lambda r, g: r + 0.05 * g.normal(),
    )
    rows = {c.id: c for c in ch05.claims(cfg, table, ch05.correlations(cfg, table), ch05.training_shift(cfg, table))}
    assert rows["ch05.tangent_share_beats_alpha"].verdict == claims.HOLDS  # the old comparator is beaten
    assert rows["ch05.tangent_share_beats_first_order"].verdict == claims.FAILS


def shape_rows(f, seed: int = 0):
    """The claims of a population whose robustness is ``f(alpha)`` plus noise, and the trend chapter 5 tests."""
    cfg = resolve(n_boot=500)
    table = synthetic_table(+1, seed)
    rng = np.random.default_rng(seed + 50)
    table["alpha"] = rng.uniform(0, 1, len(table))
    table["flip_norm"] = f(table.alpha.to_numpy()) + 0.03 * rng.normal(size=len(table)) + 1.0
    rows = {c.id: c for c in ch05.claims(cfg, table, ch05.correlations(cfg, table), ch05.training_shift(cfg, table))}
    t = monotonicity.trend(table.alpha, table.flip_norm, n_boot=cfg.n_boot, rng=np.random.default_rng(cfg.seed + 3))
    return rows[DECLARED["alpha_interior_extremum"].id], t


def test_no_extremum_detected_is_inconclusive_not_a_refutation():
    row, t = shape_rows(lambda x: np.minimum(x, 0.4))  # rises, then flat: no extremum, no monotonicity established
    assert t.shape == "increasing" and t.right_ci[0] < 0 < t.right_ci[1]
    assert monotonicity.direction_verdict(t, "non-monotonic") == claims.FAILS  # the old scoring refutes
    assert row.verdict == claims.INCONCLUSIVE
    assert row.lo < 0 < row.hi and row.estimate == pytest.approx(np.sign(t.left_slope) * t.right_slope)  # weak side


@pytest.mark.parametrize(
    "f, verdict",
    [(lambda x: -((x - 0.5) ** 2), claims.HOLDS), (lambda x: x, claims.FAILS)],
)
def test_shape_claims_hold_and_fail_on_their_slopes(f, verdict):
    row, t = shape_rows(f)
    assert row.verdict == verdict
    assert row.verdict == claims.by_interval(row.lo, row.hi, above=DECLARED["alpha_interior_extremum"].above)


def test_claims_hold_fail_and_touch_the_threshold_on_planted_inputs():
    cfg = resolve(n_boot=200)
    table = synthetic_table(+1)
    corr, shift = ch05.correlations(cfg, table), ch05.training_shift(cfg, table)
    rows = {c.id: c for c in ch05.claims(cfg, table, corr, shift)}
    assert rows["ch05.perp_share_predicts"].verdict == claims.HOLDS
    table = synthetic_table(-1)
    rows = {c.id: c for c in ch05.claims(cfg, table, ch05.correlations(cfg, table), shift)}
    assert rows["ch05.perp_share_predicts"].verdict == claims.FAILS
    # boundaries: an interval touching 0 decides nothing, and a touching mechanism check stops the chapter
    corr.loc[(corr.lens == "perp_share") & (corr.robustness == ch05.lenses.ROBUSTNESS_LABEL), "hi"] = 0.0
    shift.loc["flip_norm", "lo"] = 0.0
    rows = ch05.claims(cfg, synthetic_table(-1), corr, shift)
    by_id = {c.id: c for c in rows}
    corr_row = by_id["ch05.perp_share_predicts"]
    assert corr_row.hi == 0.0 and corr_row.verdict == claims.INCONCLUSIVE
    assert by_id["ch05.at_robust"].verdict == claims.INCONCLUSIVE
    with pytest.raises(claims.CheckFailed, match="ch05.at_robust"):
        claims.assert_checks(rows)


def test_adversarial_training_makes_a_network_more_robust():
    """The mechanism check at_robust on real networks: PGD training raises the median flip norm."""
    cfg = resolve(
        widths=[32, 32], width_grid=[40], epochs=6, epoch_grid=[1], alpha_window=[3, 8], at_eps=1.5, n_train=600
    )
    ds = ch05.load_data(cfg)
    base = next(n for n in ch05.population(cfg) if n.method == "backprop" and n.condition == "base")
    x = ds.x_test[:60]
    median = []
    for spec in (base, dataclasses.replace(base, method="adversarial")):
        net = ch05.train_network(cfg, ds, spec)
        norm = flip.flip_norms(net, x, net(x).argmax(1), {"full": (None, "on")}, eps_max=8.0)["full"].norm
        median.append(ch05.lenses.median_norm(norm, 8.0))
    assert median[1] > 1.5 * median[0]


def test_the_comparisons_table_shows_the_claims_numbers():
    cfg = resolve(n_boot=200)
    table = synthetic_table(+1)
    rows = {c.id: c for c in ch05.claims(cfg, table, ch05.correlations(cfg, table), ch05.training_shift(cfg, table))}
    versus = ch05.comparisons(cfg, table).set_index(["lens", "against"])
    for lens in ch05.BASIS_LENSES:
        null = versus.loc[(lens, "permutation null")]
        assert (null.gain, null.lo, null.hi) == pytest.approx(
            (
                rows[f"ch05.{lens}_beats_null"].estimate,
                rows[f"ch05.{lens}_beats_null"].lo,
                rows[f"ch05.{lens}_beats_null"].hi,
            )
        )
    for lens in ("tangent_share", "perp_share"):
        assert versus.loc[(lens, "first-order distance")].gain == pytest.approx(
            rows[f"ch05.{lens}_beats_first_order"].estimate
        )


def test_headline_names_the_claims_this_run_does_not_show_first():
    rows = [
        DECLARED["alpha_predicts"].interval(0.4, 0.2, 0.6),
        DECLARED["tangent_share_predicts"].interval(-0.4, -0.6, -0.2),
        DECLARED["perp_share_predicts"].interval(-0.1, -0.3, 0.1),
        DECLARED["at_robust"].interval(0.5, 0.4, 0.6),
    ]
    assert [r.verdict for r in rows] == [claims.HOLDS, claims.FAILS, claims.INCONCLUSIVE, claims.HOLDS]
    lines = ch05.headline(rows).splitlines()
    assert lines[0] == "**1 of the book's 3 claims hold in this run.**" and lines[1] == "Not shown:"
    assert lines[2].startswith(f"- {rows[1].claim}: **does not hold**; {rows[1].value}")  # refuted first
    assert lines[3].startswith(f"- {rows[2].claim}: **inconclusive at this scale**")
    assert lines[4:] == ["Shown:", f"- {rows[0].claim}: {rows[0].value}."]
    assert not any(rows[3].claim in line for line in lines)  # the mechanism check is no finding


@pytest.mark.parametrize("moves", [(+1, +1, +1, +1, -1, 0), (+1, -1, -1, 0, 0, 0), (0, 0, 0, 0, 0, 0)])
def test_lens_moves_counts_the_lenses_on_each_side(moves):
    """Planted changes: +1 a lens moved as its paper predicts (interval beyond 0 on that side), -1 against, 0 its
    interval straddles 0; half the lenses predicted up, half down, so a sign slip shows."""
    from lib.chapters.ch05.claims import lens_moves

    sign = {lens: ch05.LENSES[lens][2] for lens in ch05.DIRECTED}
    assert len(sign) == len(moves) and set(sign.values()) == {-1, 1}
    mid = {lens: m * sign[lens] for lens, m in zip(ch05.DIRECTED, moves, strict=True)}
    shift = pd.DataFrame({k: {"mean change": v, "lo": v - 0.5, "hi": v + 0.5} for k, v in mid.items()}).T
    assert lens_moves(shift) == (moves.count(1), moves.count(-1), len(moves))


def test_each_directed_lens_declares_three_rank_correlation_claims_on_its_predicted_side():
    """Two lenses whose papers predict opposite signs: the on-manifold share (chapter 2: larger, more robust) and
    the off-PCA share (chapter 4: larger, less robust). Each gets three rank-correlation claims, against rho 0 on
    Fisher's z, decided on the predicted side: an interval above 0 holds for the first and fails for the second,
    one touching 0 decides nothing."""
    from lib.chapters.ch05.claims import _lens_claims

    up, down = _lens_claims("tangent_share"), _lens_claims("perp_share")
    assert [d.id for d in up] == [
        "ch05.tangent_share_predicts",
        "ch05.tangent_share_beyond_accuracy",
        "ch05.tangent_share_within_methods",
    ]
    assert [d.id for d in down] == [
        "ch05.perp_share_predicts",
        "ch05.perp_share_beyond_accuracy",
        "ch05.perp_share_within_methods",
    ]
    assert up[0].claim == (
        "[book] Networks with a larger on-manifold share of the boundary normal (relative to a random subspace) are "
        "more robust (Shamir et al. (chapter 2))"
    )
    assert down[0].claim == (
        "[book] Networks with a larger share of the boundary normal off the PCA subspace (relative to random) are "
        "less robust (Melamed et al. (chapter 4))"
    )
    for decls in (up, down):
        assert [d.claim for d in decls[1:]] == [
            "[book] ... also at equal clean accuracy",
            "[book] ... also within each training method",
        ]
        assert [d.statistic for d in decls] == [
            "Spearman rho with the median smallest flipping L2 norm (other half of the test set), over networks "
            "(cluster bootstrap)",
            "the same rho, partial on clean accuracy",
            "Spearman rho with ranks taken within each method (stratified cluster bootstrap)",
        ]
        for d in decls:
            assert (d.kind, d.threshold, d.scale, d.sesoi, d.depends, d.section) == (
                claims.CONTROL,
                0.0,
                claims.FISHER_Z,
                0.1,
                False,
                "ch05-lenses",
            )
            assert "n_boot" in d.settings and "flip_eps_max" in d.settings and "alpha_window" not in d.settings
    for d in up:
        assert d.above is True and set(manifold.LEARNED_PARAMS) <= set(d.settings)
        assert d.interval(0.3, 0.1, 0.5).verdict == claims.HOLDS
        assert d.interval(0.2, 0.0, 0.4).verdict == claims.INCONCLUSIVE  # touching rho 0
    for d in down:
        assert d.above is False and "pca_variance" in d.settings
        assert d.interval(0.3, 0.1, 0.5).verdict == claims.FAILS
        assert d.interval(-0.2, -0.4, 0.0).verdict == claims.INCONCLUSIVE


def test_scalars_report_the_planted_population():
    """Planted: six networks, two per method, robustness 1..6; clean accuracies 0.9 to 0.4 in steps of 0.1 (means
    0.85, 0.65, 0.45 by method); nulls whose Spearman rho with robustness is known by hand (a square: 1, a
    negation: -1, ranks 1 3 2 4 6 5: 1 - 6 * 4 / 210 = 0.886, ranks 2 1 4 3 6 5: 1 - 6 * 6 / 210 = 0.829); the
    lenses' rho with robustness read from the correlations table, not those with another robustness measure."""
    robust = np.arange(1.0, 7.0)
    table = pd.DataFrame(
        {
            "method": np.repeat(["backprop", "local", "adversarial"], 2),
            "clean_accuracy": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
            "flip_norm": robust,
            "flipped_share": [1, 1, 1, 1, 0.5, 0.5],
            "restricted_unflipped_share": [0, 0, 0, 0, 0, 0.6],
            "tangent_share_null": robust**2,
            "on_random_flip_null": -robust,
            "perp_share_null": [1, 3, 2, 4, 6, 5],
            "par_random_flip_null": [2, 1, 4, 3, 6, 5],
        }
    )
    unread = ("lens_index", "robust_index", "tangent", "random", "random_null", "pca", "pca_random", "pca_random_null")
    probe = ch05.lenses.Probe(
        x=torch.zeros(12, 64),
        x_robust=torch.zeros(10, 64),
        pca_k=5,
        pca_share=0.9,
        ae_explained=0.7,
        ae_mse=0.01,
        **dict.fromkeys(unread, torch.zeros(0)),
    )
    corr = pd.DataFrame(
        {
            "lens": ["alpha", "alpha", "perp_share"],
            "robustness": [ch05.lenses.ROBUSTNESS_LABEL, "PGD accuracy, L2 budget 1", ch05.lenses.ROBUSTNESS_LABEL],
            "rho": [0.4, 0.9, -0.2],
        }
    )
    matrix = pd.DataFrame(
        [[1.0, -0.3], [-0.3, 1.0]], index=["tangent_share", "perp_share"], columns=["tangent_share", "perp_share"]
    )
    s = ch05.scalars(table, probe, corr, matrix)
    assert (s["networks"], s["pca_k"], s["pca_share"], s["ae_explained"]) == (6, 5, 0.9, 0.7)
    assert (s["lens_images"], s["robustness_images"]) == (12, 10)
    assert (s["flipped_share"], s["restricted_unflipped_share"]) == pytest.approx((5 / 6, 0.1))
    assert [s[f"clean_accuracy_{m}"] for m in ("backprop", "local", "adversarial")] == pytest.approx([0.85, 0.65, 0.45])
    assert (s["rho_alpha"], s["rho_perp_share"]) == (0.4, -0.2)
    assert [s[f"rho_{n}_null"] for n in ch05.BASIS_LENSES] == pytest.approx([1.0, -1.0, 1 - 24 / 210, 1 - 36 / 210])
    assert s["rho_tangent_share_perp_share"] == -0.3
    assert "rho_tangent_share_perp_share" not in ch05.scalars(table, probe, corr)


def test_the_shape_row_shows_both_side_slopes_to_two_digits():
    """Planted without noise: robustness 1 + 1.234 |alpha - 0.5| over alphas spread evenly on [0, 1], a V whose
    fitted vertex is 0.5 and whose side slopes are -1.234 and +1.234 on every resample: an interior minimum (the
    weaker side, signed against the other, -1.234 < 0: holds), shown as the decision to three digits and the
    slopes to two."""
    cfg = resolve(n_boot=200)
    table = synthetic_table(+1)
    table["alpha"] = np.linspace(0, 1, len(table))
    table["flip_norm"] = 1 + 1.234 * np.abs(table.alpha - 0.5)
    rows = {c.id: c for c in ch05.claims(cfg, table, ch05.correlations(cfg, table), ch05.training_shift(cfg, table))}
    row = rows["ch05.alpha_interior_extremum"]
    assert row.value == "-1.23 [-1.23, -1.23]; slopes left -1.2 [-1.2, -1.2], right 1.2 [1.2, 1.2] at alpha 0.50"
    assert row.estimate == pytest.approx(-1.234) and row.verdict == claims.HOLDS


def test_the_shape_row_is_drawn_from_the_run_seed():
    """Planted: a noisy hump. The same seed gives the same interval on a rerun, another seed another draw."""
    table = synthetic_table(+1)
    rng = np.random.default_rng(50)
    table["alpha"] = rng.uniform(0, 1, len(table))
    table["flip_norm"] = 1 - (table.alpha - 0.5) ** 2 + 0.03 * rng.normal(size=len(table))

    cfg = resolve(n_boot=200)
    corr, shift = ch05.correlations(cfg, table), ch05.training_shift(cfg, table)

    def shape(seed):
        rows = ch05.claims(resolve(n_boot=200, seed=seed), table, corr, shift)
        row = next(r for r in rows if r.id == "ch05.alpha_interior_extremum")
        return row.lo, row.hi

    assert shape(0) == shape(0)
    assert shape(0) != shape(1)


def test_lens_moves_claim_reports_the_net_share_of_lenses():
    """Planted changes: four of the six directed lenses move as their papers predict, one against, one not
    clearly: a net share of (4 - 1) / 6 = 0.5 (holds); then one as predicted and two against: -1/6 (fails)."""
    cfg = resolve(n_boot=200)
    table = synthetic_table(+1)
    corr, shift = ch05.correlations(cfg, table), ch05.training_shift(cfg, table)
    for moves, verdict, net, value in (
        ((+1, +1, +1, +1, -1, 0), claims.HOLDS, 0.5, "4 of 6 as predicted, 1 against"),
        ((+1, -1, -1, 0, 0, 0), claims.FAILS, -1 / 6, "1 of 6 as predicted, 2 against"),
    ):
        for lens, m in zip(ch05.DIRECTED, moves, strict=True):
            v = m * ch05.LENSES[lens][2]
            shift.loc[lens, ["mean change", "lo", "hi"]] = [v, v - 0.5, v + 0.5]
        row = next(r for r in ch05.claims(cfg, table, corr, shift) if r.id == "ch05.at_moves_lenses_as_predicted")
        assert (row.verdict, row.value) == (verdict, value)
        assert row.estimate == pytest.approx(net)
