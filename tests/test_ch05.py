"""Chapter 5: parameter checks, the population, the statistics over networks and the claims' verdicts."""

import dataclasses
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from lib import claims, config, manifold, stats, subspace
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
    directed = [k for k, (_, _, s) in ch05.LENSES.items() if s]
    for lens in directed:
        assert rows[f"ch05.{lens}_predicts"].verdict == expected, lens
    assert rows["ch05.at_robust"].verdict == claims.HOLDS
    assert rows["ch05.at_moves_all"].verdict == expected
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
        flip_steps=2,
        bisection_steps=1,
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
