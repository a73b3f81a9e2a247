"""Chapter 4 helpers: parameter checks, planted scaling exponents, paired data, the affine invariant."""

import re
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from lib import claims, config, data, ensemble
from lib.chapters import ch04
from lib.chapters.ch04.claims import ADAM_MOVES, DRIFT_TOL, _exponent, _fitted_ratio, _interval
from lib.chapters.ch04.figures import _variant_title
from lib.chapters.ch04.networks import measure, train
from lib.chapters.ch04.scaling import sweep_key
from lib.config import ParameterError

ROOT = Path(__file__).resolve().parents[1]


def test_chapter_parameters_fail_before_compute():
    with pytest.raises(ParameterError, match="'k'"):  # resolve runs ch04.check
        config.resolve(ch04.PARAMS, {"profile": "quick"}, k=64, d=64)
    with pytest.raises(ParameterError, match="sweep_k"):
        config.resolve(ch04.PARAMS, {"profile": "quick"}, sweep_k=[2, 200])
    with pytest.raises(ParameterError, match="margin"):
        config.resolve(ch04.PARAMS, {"profile": "quick"}, margin=-1.0)
    for name, value, least in (("n_seeds", 1, 2), ("figure_seeds", 1, 2), ("n_points", 3, 4)):
        with pytest.raises(ParameterError, match=rf"parameter '{name}' must be >= {least}, got {value}"):
            config.resolve(ch04.PARAMS, {"profile": "quick"}, **{name: value})
    with pytest.raises(ParameterError, match=r"'sweep_width' must be <= 65536"):
        config.resolve(ch04.PARAMS, {"profile": "quick"}, sweep_width=[64, 100_000])


def test_exponents_recover_planted_slopes():
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(8):
        for v in (1.0, 2.0, 4.0, 8.0):
            S = 3.0 * v**0.4  # output mass growing like v^0.4: adds 0.2 to the slope
            pred = v**0.5 * np.sqrt(S)
            rows.append(
                {
                    "seed": seed,
                    "value": v,
                    "decay": 1.0,
                    "S": S,
                    "pred_perp": pred,
                    "g_perp": pred * np.exp(rng.normal(0, 0.01)),
                    "delta_perp": 1 / pred,
                    "f": 1.0,
                    "reached": True,
                    "sweep": "width",
                }
            )
    out = ch04.exponents(pd.DataFrame(rows))
    assert out["structural"] == pytest.approx(0.5, abs=1e-9)
    assert out["predicted"] == pytest.approx(0.7, abs=1e-9)
    assert out["measured_lo"] < 0.7 < out["measured_hi"]
    assert out["delta_measured"] == pytest.approx(-0.7, abs=1e-9)
    assert ch04.agreement_verdict(out["diff_lo"], out["diff_hi"]) == "holds"
    assert ch04.agreement_verdict(0.2, 0.3) == "does not hold"
    assert ch04.agreement_verdict(-0.05, 0.2) == "inconclusive at this scale"


def test_mean_ci_known_values():
    m, lo, hi = ch04.mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and lo == pytest.approx(2 - 4.302653 / np.sqrt(3), rel=1e-5) and hi == pytest.approx(4 - lo)


def test_paired_batches_share_data_and_pad_dimensions():
    g = torch.Generator().manual_seed(0)
    b = ch04.make_batch(8, [6, 6, 6, 6], [2, 2, 2, 2], rule="xor", radius=3.0, generator=g, device="cpu", shared=2)
    assert torch.equal(b.x[0], b.x[2]) and not torch.equal(b.x[0], b.x[1])
    torch.testing.assert_close(b.x.norm(dim=-1), torch.full((4, 8), 3.0))
    p = ch04.make_batch(5, [3, 7], [2, 4], rule="random", radius=1.0, generator=g, device="cpu")
    assert p.x.shape == (2, 5, 7) and p.x[0, :, 3:].abs().max() == 0 and p.basis[0, :, 2:].abs().max() == 0
    torch.testing.assert_close(p.basis[1].T @ p.basis[1], torch.eye(4), atol=1e-6, rtol=0)


def test_off_plane_weights_move_with_the_biases_on_an_affine_plane():
    x, y = data.chessboard_points(0.5)
    g = torch.Generator().manual_seed(1)
    ens = ensemble.init(2, 3, 30, scheme="pytorch-uniform", generator=g, dtype=torch.float64)
    w0, b0 = ens.w.clone(), ens.b.clone()
    ensemble.fit(ens, x.double(), y, lr=0.05, steps=200, progress=False)
    torch.testing.assert_close(ens.w[..., 2] - w0[..., 2], 0.5 * (ens.b - b0), atol=1e-12, rtol=0)
    assert (ens.b - b0).abs().max() > 1e-2


def test_figure_data_are_the_authors():
    x, y = data.diagonal_points()
    torch.testing.assert_close(x[:, 0], torch.tensor([2 * i / 6 - 1 for i in range(7)]))
    assert torch.equal(x[:, 0], x[:, 1])
    assert y.tolist() == [-1, 1, -1, 1, -1, 1, -1]  # alternating, negative at both ends
    x, y = data.chessboard_points(0.5)
    assert x.shape == (25, 3) and set(x[:, :2].flatten().tolist()) == {0.0, 0.25, 0.5, 0.75, 1.0}
    assert (x[:, 2] == 0.5).all()
    # the authors' rule (chess/data.py): a coordinate is "in" on the odd grid values 0.25 and 0.75; label = XNOR
    odd = (x[:, :2] == 0.25) | (x[:, :2] == 0.75)
    assert torch.equal(y > 0, ~(odd[:, 0] ^ odd[:, 1]))


def test_figure_parameters_are_per_figure_and_checked():
    cfg = config.resolve(ch04.PARAMS, {"profile": "paper"})
    assert (cfg.chessboard_steps, cfg.chessboard_small_init_factor, cfg.chessboard_weight_decay) == (100000, 3.0, 0.003)
    assert (cfg.diagonal_steps, cfg.chessboard_init, cfg.diagonal_init) == (
        40000,
        "pytorch-uniform",
        "gaussian-weights",
    )
    assert ch04.CHESSBOARD["margin"] == 0.01 and ch04.DIAGONAL["margin"] == 0.3
    with pytest.raises(ParameterError, match="chessboard_init"):
        config.resolve(ch04.PARAMS, {"profile": "quick"}, chessboard_init="xavier")
    with pytest.raises(ParameterError, match="diagonal_weight_decay"):  # resolve runs ch04.check
        config.resolve(ch04.PARAMS, {"profile": "quick"}, diagonal_weight_decay=60.0)


def test_small_figures_train_count_reached_runs_and_claim_gains():
    cfg = config.resolve(ch04.PARAMS, {"profile": "quick"}, figure_seeds=2, diagonal_steps=400, chessboard_steps=200)
    diag, cb = ch04.figure_diagonal(cfg), ch04.figure_chessboard(cfg)
    assert len(diag.table) == 6 and len(cb.table) == 10  # 3 variants; the chessboard's two planes
    assert (cb.table.query("variant == 'weight decay'").plane == ch04.AFFINE).all()
    small = cb.table.query("variant == 'small init'").index
    assert (cb.w0[small[:2]] == cb.w0[small[2:]]).all()  # paired inits on the two planes
    reach = ch04.reach_summary(diag, cb)
    assert reach.runs.sum() == 16 and (reach.reached <= reach.runs).all()
    assert "of 2 vanilla runs" in ch04.reach_sentences(reach, cfg)
    gains = ch04.robustness_gains(ch04.diagonal_measures(diag))
    assert list(gains.columns) == ["small init", "weight decay"] and len(gains) == 2
    assert {"diagonal figure", "chessboard figure"} <= set(ch04.STAGES.seconds)
    # An exact flip distance is infinite when the label never changes off the data: titles say so in words.
    meas = ch04.chessboard_measures(cb).assign(delta_off=[np.inf] + [0.25] * 9)
    assert _variant_title(cb, 0, meas, "z=0").endswith("median off-data flip: no label change")
    assert _variant_title(cb, 1, meas, "z=0").endswith("median off-data flip 0.25")
    for i, margin in enumerate(cb.table.min_margin):  # a network that has not fitted its points says so
        assert ("(not fitted)" in _variant_title(cb, i, meas)) == (margin <= 0)
    # With no drawable gain (no seed fitted on both planes), the gain panel says why.
    unfit = ch04.chessboard_measures(cb)
    unfit = unfit.assign(min_margin=np.where(unfit.variant == "small init", -0.1, 0.05))
    fig, axes = plt.subplots(2, 3)
    ch04.plot_chessboard(cb, unfit, axes.ravel())
    assert "4 of 4 not drawn: points not fitted" in axes[1, 2].get_title()
    assert any("no seed with both networks" in t.get_text() for t in axes[1, 2].texts)
    plt.close(fig)


def test_gains_and_claims_leave_out_networks_that_did_not_fit():
    """A gain compares fitted networks only; with fewer than 2 fitted seeds the claim is inconclusive and says so."""
    rows = [
        {"variant": v, "seed": s, "plane": p, "delta_off": d, "min_margin": m}
        for s in range(3)
        for p in (ch04.AFFINE, "z=0")
        for v, d, m in (("vanilla", 1.0, 0.02), ("small init", 2.0 + s / 10, 0.02 if s or p == "z=0" else -0.3))
    ]
    meas = pd.DataFrame(rows)
    gain = ch04.affine_gain(meas)
    assert np.isnan(gain.at[0, ch04.AFFINE]) and gain.at[1, ch04.AFFINE] == 2.1 and gain.at[0, "z=0"] == 2.0
    decl = claims.Declared(
        "ch04.x", claims.CONTROL, "claim", "ratio over the {fitted} of {seeds} seeds; holds if > 1", threshold=1.0
    )
    c = _fitted_ratio(decl, gain[ch04.AFFINE])
    assert c.verdict == "holds" and "2 of 3 seeds" in c.statistic and c.lo > 1
    unfit = meas.assign(min_margin=np.where(meas.variant == "vanilla", 0.02, -0.1))
    c = _fitted_ratio(decl, ch04.robustness_gains(unfit, ch04.AFFINE)["small init"])
    assert c.verdict == "inconclusive at this scale" and c.value == "not measured: 0 of 3 seeds fitted"
    assert np.isnan(c.estimate)


def test_ratio_ci_and_claim_records():
    est, lo, hi = ch04.ratio_ci([2.0, 2.0, 2.0])
    assert est == pytest.approx(2.0) and lo == pytest.approx(2.0) and hi == pytest.approx(2.0)
    above_one = claims.Declared("ch04.x", claims.PAPER, "claim", "stat", threshold=1.0)
    c = _interval(above_one, ch04.ratio_ci([1.8, 2.0, 2.2, 1.9]))
    assert c.verdict == "holds" and c.lo > 1 and c.id == "ch04.x" and c.kind == claims.PAPER
    c = _interval(above_one, ch04.ratio_ci([0.5, 2.0, 1.0]))
    assert c.verdict == "inconclusive at this scale"


def test_claim_declarations():
    """Every sweep has its exponent row; mechanism rows are checks; settings name the chapter's parameters."""
    decl = ch04.DECLARED
    assert [f"exponent_{sweep_key(name)}" for name in ch04.SWEEPS] == [k for k in decl if k.startswith("exponent_")]
    checks = {"frozen_orthogonal_weights", "adam_moves_orthogonal_weights", "orthogonal_gradient_law"}
    assert {k for k, d in decl.items() if d.kind == claims.CHECK} == checks | {k for k in decl if "exponent" in k}
    assert decl["affine_plane_weaker"].kind == claims.CONTROL
    controls = {"affine_plane_weaker", "orthogonal_flip_vs_untrained", "chessboard_linear_small_init_gain"}
    assert {k for k, d in decl.items() if d.kind == claims.CONTROL} == controls
    assert not {"large_orthogonal_gradient", "orthogonal_flip_cheaper"} & set(decl)  # judged by the radius: gone
    assert all(s in ch04.PARAMS for d in decl.values() for s in d.settings)


def test_expected_costs_cover_every_stage():
    cfg = config.resolve(ch04.PARAMS, {"profile": "quick"})
    st = ch04.stages(cfg)
    assert len(st) == 2 + len(ch04.SWEEPS) + 1 + 2  # the data-scale sweep besides the seven
    assert st.set_index("stage").loc["chessboard figure", "networks"] == 5 * cfg.figure_seeds
    assert st.set_index("stage").loc["sweep: width", "width"] == max(cfg.sweep_width)
    assert ch04.format_duration(30) == "30 s" and ch04.format_duration(600) == "10 min"
    assert ch04.format_duration(3 * 3600) == "3.0 h"


# ---------------------------------------------------------------- issue 29: every verdict can fail


def _small_cfg(**kw):
    base = dict(n_seeds=4, sweep_d=[16, 64], sweep_k=[2, 4], steps=400)
    return config.resolve(ch04.PARAMS, {"profile": "quick"}, **{**base, **kw})


def _untrained_run(cfg):
    """Networks that never trained: the trained network *is* the untrained one (zero steps)."""
    E = cfg.n_seeds
    batch = ch04.make_batch(
        cfg.n_points, [cfg.d] * E, [cfg.k] * E, rule=cfg.rule, radius=cfg.radius, generator=cfg.generator, device="cpu"
    )
    return train(cfg, batch, steps=0, margin=False)


def test_untrained_network_passes_the_old_large_and_small_tests_but_not_the_new_ones():
    """Planted null: an untrained network has ||grad_perp|| / ||grad_P|| > 1 and flips cheaper along P-perp
    than within P (the old tests hold), while its gradient and flip equal the untrained network's (new: not held)."""
    cfg = _small_cfg()
    df = measure(_untrained_run(cfg))
    flips = ch04.flip_summary(df, cfg.n_seeds, cfg.universal_fraction)
    assert flips["grad_ratio"][1] > 1 and flips["delta_ratio"][2] < 1  # the old verdicts: both hold
    for name in ("grad_gain", "flip_gain"):
        assert flips[name] == pytest.approx((1.0, 1.0, 1.0))
    levels = pd.DataFrame({c: [1.0, 1.0] for c in ch04.RATIOS}, index=[1.0, 2.0])
    flat = {c: 0.0 for c in ch04.RATIOS} | {f"{c}_{e}": 0.0 for c in ch04.RATIOS for e in ("lo", "hi")}
    rows = ch04.scale_rows(flips, {"d": {**flat, "levels": levels}, "radius": {**flat, "levels": levels}}, cfg)
    assert [r.verdict for r in rows] == ["inconclusive at this scale"] * 3  # each interval touches its threshold


def _planted_points(rel_perp: float, *, x_norm: float, n_seeds: int = 4, n: int = 16, gain: float = 2.0, seed=0):
    """Per-point measures of ``n_seeds`` networks: P-perp flip ``rel_perp * x_norm``, in-P flip ``0.4 x_norm``,
    trained orthogonal gradient ``gain`` times the untrained one (log-normal noise)."""
    rng = np.random.default_rng(seed)
    E = n_seeds
    noise = lambda: np.exp(rng.normal(0, 0.05, E * n))  # noqa: E731
    g0 = 0.7 * noise()
    return pd.DataFrame(
        {
            "member": np.repeat(np.arange(E), n),
            "point": np.tile(np.arange(n), E),
            "f": 1.0,
            "g_par": 1.0 / x_norm * noise(),
            "g_perp": gain * g0,
            "g_perp0": g0,
            "pred_perp": gain * g0,
            "S": 1.0,
            "delta_perp": rel_perp * x_norm * noise(),
            "delta_par": 0.4 * x_norm * noise(),
            "delta_perp0": 0.1 * x_norm * noise(),
            "delta_univ": 1.0,
            "delta_rand": np.inf,
            "dist_other": 0.5 * x_norm,
            "x_norm": x_norm,
        }
    )


def _planted_scale(exponent: float, radius_exponent: float = 0.0):
    """The data-scale sweep and the radius sweep of planted networks: P-perp flip / ||x|| ~ (d-k)^exponent."""
    parts = []
    for i, d in enumerate((16, 32, 64, 128, 256)):
        med = ch04.per_seed_medians(_planted_points(0.3 * ((d - 2) / 62) ** exponent, x_norm=np.sqrt(d), seed=i), 4)
        parts.append(med.assign(ell=d - 2, value=d))
    by_d = pd.concat(parts)
    parts = [
        ch04.per_seed_medians(_planted_points(0.3 * (r / 8) ** radius_exponent, x_norm=r, seed=10 + i), 4).assign(
            value=r
        )
        for i, r in enumerate((2.0, 4.0, 8.0, 16.0))
    ]
    return {"d": ch04.ratio_slopes(by_d, "ell"), "radius": ch04.ratio_slopes(pd.concat(parts), "value")}


def test_small_is_judged_against_the_data_scale_not_the_in_subspace_flip():
    """Planted null: the P-perp flip is cheaper than within P (old test holds) but a fixed fraction of ||x||
    at every d (new: not held); planted effect: it shrinks as (d-k)^-1/2 (new: holds)."""
    cfg = _small_cfg()
    flips = ch04.flip_summary(_planted_points(0.3, x_norm=8.0), 4, 0.5)
    assert flips["delta_ratio"][2] < 1  # the old verdict: holds
    null = {r.id: r for r in ch04.scale_rows(flips, _planted_scale(0.0, radius_exponent=-0.5), cfg)}
    assert null["ch04.orthogonal_flip_small"].verdict != "holds"
    assert re.search(
        r"radius dependence: slope -0\.(4[5-9]|5[0-5]) in the radius", null["ch04.orthogonal_flip_small"].statistic
    )
    effect = {r.id: r for r in ch04.scale_rows(flips, _planted_scale(-0.5), cfg)}
    small = effect["ch04.orthogonal_flip_small"]
    assert small.verdict == "holds" and small.estimate == pytest.approx(-0.5, abs=0.05) and small.hi < 0
    assert re.search(r"Same slope within P: [+-]0\.0\d;", small.statistic)  # the negative control stays flat


def test_scale_rows_hold_fail_and_boundary():
    """claims on planted inputs: one that must hold, one that must fail, one whose interval touches its threshold."""
    cfg = _small_cfg()
    flips = ch04.flip_summary(_planted_points(0.3, x_norm=8.0, gain=1.5), 4, 0.5)
    rows = {r.id: r for r in ch04.scale_rows(flips, _planted_scale(-0.5), cfg)}
    assert rows["ch04.orthogonal_gradient_vs_untrained"].verdict == "holds"  # 1.5x the untrained gradient
    assert rows["ch04.orthogonal_flip_vs_untrained"].verdict == "does not hold"  # 3x the untrained flip distance
    assert rows["ch04.orthogonal_flip_vs_untrained"].kind == claims.CONTROL
    touching = {**flips, "grad_gain": (1.1, 1.0, 1.2)}  # the interval touches its threshold 1
    boundary = ch04.scale_rows(touching, _planted_scale(-0.5), cfg)[0]
    assert boundary.id == "ch04.orthogonal_gradient_vs_untrained" and boundary.verdict == "inconclusive at this scale"
    shrinking = ch04.flip_summary(_planted_points(0.3, x_norm=8.0, gain=0.5), 4, 0.5)
    rows = {r.id: r for r in ch04.scale_rows(shrinking, _planted_scale(-0.5), cfg)}
    assert rows["ch04.orthogonal_gradient_vs_untrained"].verdict == "does not hold"


def test_data_scale_sweep_grows_the_radius_as_sqrt_d():
    cfg = _small_cfg(sweep_d=[16, 64, 256], n_seeds=2)
    run, med = ch04.data_scale_sweep(cfg)
    norms = run.batch.x.norm(dim=-1).mean(1)
    torch.testing.assert_close(norms, torch.tensor([4.0, 4.0, 8.0, 8.0, 16.0, 16.0]), rtol=1e-5, atol=0)
    torch.testing.assert_close(run.lr, torch.tensor([0.08, 0.08, 0.02, 0.02, 0.005, 0.005], dtype=torch.float64))
    assert med.ell.tolist() == [14, 14, 62, 62, 254, 254] and set(ch04.RATIOS) <= set(med.columns)
    assert float(ch04.orthogonal_drift(run).max()) < 1e-3
    sl = ch04.ratio_slopes(med, "ell")
    assert list(sl["levels"].index) == [14, 62, 254] and np.isfinite(sl["rel_perp"])


def test_mechanism_gd_freezes_orthogonal_weights_and_adam_does_not():
    """The mechanism checks, on small ensembles: GD leaves P-perp(W) at c_T times its start (weight decay
    included); Adam moves it on a random P and not on an axis-aligned one."""
    cfg = _small_cfg(n_seeds=3)
    for aligned in (True, False):
        batch = ch04.make_batch(
            16, [32] * 3, [2] * 3, rule="xor", radius=5.0, generator=cfg.generator, device="cpu", axis_aligned=aligned
        )
        gd = train(cfg, batch, steps=200, margin=False, weight_decay=0.01)
        assert float(ch04.orthogonal_drift(gd).max()) < 1e-4 and float(gd.decay.max()) < 0.999
        adam = train(cfg, batch, optimizer="adam", lr=0.003, steps=200, margin=False, weight_decay=0.0)
        drift = ch04.orthogonal_drift(adam)
        assert float(drift.max()) < 1e-4 if aligned else float(drift.min()) > 1e-2


def test_mechanism_orthogonal_gradient_law():
    """E ||grad_perp f||^2 = c_T^2 sigma_w^2 (d-k) S(x) at data points, on trained networks (mean over 24)."""
    cfg = _small_cfg(n_seeds=24)
    E = cfg.n_seeds
    batch = ch04.make_batch(16, [64] * E, [2] * E, rule="xor", radius=8.0, generator=cfg.generator, device="cpu")
    run = train(cfg, batch, weight_decay=0.005)
    law = ch04.law_ratio([ch04.per_seed_medians(measure(run), E)])
    assert law[1] > 0.85 and law[2] < 1.15 and float(run.decay.min()) < 1


def test_chessboard_and_diagonal_run_at_the_authors_budget_in_every_profile():
    for profile in ("quick", "paper"):
        cfg = config.resolve(ch04.PARAMS, {"profile": profile})
        assert (cfg.chessboard_steps, cfg.diagonal_steps) == (100000, 40000)


def test_headline_says_what_does_not_reproduce_first():
    C = ch04.DECLARED
    rows = [
        C["small_init_robust"].interval(-1.0, -1.2, -0.8),
        C["universal_direction"].interval(0.3, 0.2, 0.4, norm=2.0, random=0.0),
        C["chessboard_small_init_gain"].tested(
            "inconclusive at this scale", "not measured: 1 of 4 seeds fitted", fitted=1, seeds=4
        ),
        C["frozen_orthogonal_weights"].tested("holds", "1e-6", 1e-6),
    ]
    reach = pd.DataFrame(
        [("chessboard", p, v, 4, r, 100000.0, 100000, m) for p, v, r, m in [("z=0.5", "vanilla", 4, 0.01)]]
        + [("chessboard", "z=0.5", "small init", 4, 1, 100000.0, 100000, -0.7)],
        columns=["figure", "plane", "variant", "runs", "reached", "median_steps", "max_steps", "median_final_margin"],
    ).set_index(["figure", "plane", "variant"])
    text = ch04.headline(rows, reach, _small_cfg())
    lines = text.splitlines()
    assert lines[0] == "**1 of the paper's 3 claims hold in this run.**" and lines[1] == "Not reproduced:"
    assert "does not hold" in lines[2] and "universal" in lines[2]  # refuted before undecided
    assert "1 of 4 small init networks on z=0.5 reached the margin within 100,000 steps" in lines[3]
    assert "Reproduced:" in text and "mechanism" not in text.lower() and "frozen" not in text


def test_evidence_conditions_are_not_the_same_run():
    """No two conditions of the evidence spec differ only by a radius and a step scaled to keep lr * radius^2
    (the radius sweep's rule): such runs repeat each other bit for bit."""
    spec = yaml.safe_load(open(ROOT / "sweeps" / "evidence" / "ch04.yaml"))
    base = config.resolve(ch04.PARAMS, {"profile": spec["parameters"]["profile"]})
    keys = []
    for point in spec["points"]:
        full = {**vars(base), **spec["parameters"], **point}
        r, lr = full.pop("radius"), full.pop("lr")
        keys.append(
            (tuple(sorted((k, str(v)) for k, v in full.items() if k not in ("generator", "device"))), lr * r * r)
        )
    assert len(set(keys)) == len(keys)


def test_findings_read_the_data_scale_and_the_figures_fit_from_the_run():
    flips = {"rel_perp": (0.52,), "rel_par": (2.1,), "rel_perp0": (0.047,), "delta_ratio": (0.25,)}
    flips |= {"flip_gain": (11.0, 9.0, 13.0), "grad_gain": (0.12, 0.1, 0.14)}
    by_d = {"levels": pd.DataFrame(index=[14, 62])}
    for col, v in (("rel_perp", -0.31), ("rel_par", 0.02), ("rel_perp0", -0.5), ("flip_gain", 0.2)):
        by_d |= {col: v, f"{col}_lo": v - 0.1, f"{col}_hi": v + 0.1}
    by_r = {"levels": pd.DataFrame({"rel_perp": [0.3, 0.6]}, index=[4.0, 16.0]), "rel_perp": 0.5}
    by_r |= {"perp_over_par": 0.4, "perp_over_par_lo": 0.3, "perp_over_par_hi": 0.5}
    reach = pd.DataFrame(
        [("diagonal", "line", "vanilla", 4, 4), ("chessboard", "z=0.5", "vanilla", 4, 1)],
        columns=["figure", "plane", "variant", "runs", "reached"],
    ).set_index(["figure", "plane", "variant"])
    cfg = _small_cfg()
    text = ch04.findings(flips, {"d": by_d, "radius": by_r}, reach, cfg)
    scale, fit = text.split("\n- **The two synthetic figures.** ")
    assert scale == "- **Against the data scale.** " + ch04.scale_sentences(flips, {"d": by_d, "radius": by_r}, cfg)
    assert fit == ch04.reach_sentences(reach, cfg)
    assert "slope -0.31 [-0.41, -0.21] in d - k" in scale and "1 of 4 vanilla runs on z=0.5" in fit
    assert "in the radius: it grows with the radius." in scale


def test_assert_mechanisms_stops_a_run_on_a_refuted_exponent_not_an_inconclusive_one():
    """An exponent row is an interval over n_seeds networks: inconclusive is reported, refuted raises;
    an exact check that fails raises whatever the exponents say."""
    d = ch04.DECLARED

    def exponent(verdict):
        return d["exponent_d"].tested(verdict, "v", 0.05, -0.08, 0.17)

    drift_ok = d["frozen_orthogonal_weights"].tested(claims.HOLDS, "0", 0.0, 0.0, 0.0)
    summary = ch04.assert_mechanisms([drift_ok, exponent(claims.INCONCLUSIVE)])
    assert summary.endswith("inconclusive in this run: exponent_d")
    assert "inconclusive" not in ch04.assert_mechanisms([drift_ok, exponent(claims.HOLDS)])
    with pytest.raises(claims.CheckFailed, match="ch04.exponent_d"):
        ch04.assert_mechanisms([drift_ok, exponent(claims.FAILS)])
    drift_bad = d["frozen_orthogonal_weights"].tested(claims.INCONCLUSIVE, "1", 1.0, 1.0, 1.0)
    with pytest.raises(claims.CheckFailed, match="frozen_orthogonal_weights"):
        ch04.assert_mechanisms([drift_bad, exponent(claims.HOLDS)])


# ---------------------------------------------------------------- the claims table and the scalars, planted


def _exp(sweep: str, diff=(0.02, -0.05, 0.05), delta=(-0.5, -0.6, -0.4)) -> dict:
    """One sweep's :func:`~lib.chapters.ch04.scaling.exponents` summary, planted."""
    return {
        "sweep": sweep,
        "measured": 0.5 + diff[0],
        "measured_lo": 0.4,
        "measured_hi": 0.6,
        "predicted": 0.5,
        "structural": 0.25,
        "diff": diff[0],
        "diff_lo": diff[1],
        "diff_hi": diff[2],
        "delta_measured": delta[0],
        "delta_measured_lo": delta[1],
        "delta_measured_hi": delta[2],
    }


def _claims_inputs(**over) -> dict:
    """Inputs of :func:`ch04.claims` under which every paper claim holds (the flip control does not)."""
    cfg = _small_cfg()
    optim = pd.DataFrame(
        {
            "optimizer": ["adam"] * 4 + ["gd"],
            "subspace": ["random", "random", "axis-aligned", "axis-aligned", "random"],
            "drift": [0.5, 0.3, 1e-5, 2e-5, 9.0],
        }
    )
    gains = pd.DataFrame({"small init": [3.0, 3.5, 2.8], "weight decay": [2.0, 2.2, 1.9]})
    inputs = dict(
        flips=ch04.flip_summary(_planted_points(0.3, x_norm=8.0, gain=1.5), 4, 0.5),
        law=(1.01, 0.97, 1.05),
        drift_gd=2e-5,
        optim=optim,
        exps=[_exp(name) for name in ch04.SWEEPS],
        gain=pd.DataFrame({"z=0": [2.0, 2.2, 1.9], ch04.AFFINE: [1.0, 1.1, 1.0]}),
        tol=DRIFT_TOL,
        figure_gains={"diagonal": gains, "chessboard": gains * 0.8},
        scale=_planted_scale(-0.5),
        cfg=cfg,
    )
    return inputs | over


def _verdicts(**over) -> dict[str, str]:
    return {r.id.split(".", 1)[1]: r.verdict for r in ch04.claims(**_claims_inputs(**over))}


HOLDS, FAILS, OPEN = "holds", "does not hold", "inconclusive at this scale"


def test_claims_table_holds_on_planted_effects():
    """Every row of the table, in order, decided from planted inputs where each claim holds."""
    rows = ch04.claims(**_claims_inputs())
    ids = [r.id.split(".", 1)[1] for r in rows]
    assert ids == [
        "frozen_orthogonal_weights",
        "adam_moves_orthogonal_weights",
        "orthogonal_gradient_law",
        "orthogonal_gradient_vs_untrained",
        "orthogonal_flip_small",
        "orthogonal_flip_vs_untrained",
        "universal_direction",
        "small_init_robust",
        "weight_decay_robust",
        "diagonal_small_init_gain",
        "diagonal_weight_decay_gain",
        "chessboard_small_init_gain",
        "chessboard_weight_decay_gain",
        "chessboard_linear_small_init_gain",
        "affine_plane_weaker",
    ] + [f"exponent_{sweep_key(s)}" for s in ch04.SWEEPS]
    verdicts = {i: r.verdict for i, r in zip(ids, rows)}
    assert verdicts.pop("orthogonal_flip_vs_untrained") == FAILS  # 3x the untrained network's flip distance
    assert set(verdicts.values()) == {HOLDS}, verdicts
    by = dict(zip(ids, rows))
    assert by["frozen_orthogonal_weights"].value == "2.0e-05" and by["frozen_orthogonal_weights"].estimate == 2e-5
    assert by["adam_moves_orthogonal_weights"].value == "0.4 / 2.0e-05"  # median over random P / max over axes
    assert by["adam_moves_orthogonal_weights"].estimate == pytest.approx(0.4)
    law = by["orthogonal_gradient_law"]
    assert (law.estimate, law.lo, law.hi) == (1.01, 0.97, 1.05) and law.value == "1.01 [0.97, 1.05]"
    univ = by["universal_direction"]
    assert (univ.estimate, univ.lo, univ.hi) == pytest.approx((1.0, 1.0, 1.0))  # every point flips
    assert (by["small_init_robust"].estimate, by["small_init_robust"].hi) == (-0.5, -0.4)
    gain = by["diagonal_small_init_gain"]
    assert gain.estimate == pytest.approx(np.exp(np.log([3.0, 3.5, 2.8]).mean()))
    assert by["chessboard_small_init_gain"].estimate == pytest.approx(0.8 * gain.estimate)
    weaker = by["affine_plane_weaker"].estimate
    assert weaker == pytest.approx(np.exp(np.log(np.array([1.0, 1.1, 1.0]) / [2.0, 2.2, 1.9]).mean()))
    assert by["chessboard_linear_small_init_gain"].estimate == pytest.approx(np.exp(np.log([2.0, 2.2, 1.9]).mean()))
    exp = by["exponent_d"]
    assert (exp.estimate, exp.lo, exp.hi) == (0.02, -0.05, 0.05)
    assert exp.value == "0.52 [0.4, 0.6] vs 0.50 (closed-form part 0.25)"


def test_claims_table_fails_on_planted_nulls():
    """Each claim against its planted null: the row that must fail does, the others are unchanged."""
    gains = pd.DataFrame({"small init": [0.5, 0.6, 0.4], "weight decay": [0.3, 0.4, 0.35]})
    cases = {
        "frozen_orthogonal_weights": dict(drift_gd=0.2),
        "orthogonal_gradient_law": dict(law=(1.5, 1.4, 1.6)),
        "small_init_robust": dict(exps=[_exp(s, delta=(0.5, 0.4, 0.6)) for s in ch04.SWEEPS]),
        "diagonal_small_init_gain": dict(figure_gains={"diagonal": gains, "chessboard": gains + 3}),
        "chessboard_weight_decay_gain": dict(figure_gains={"diagonal": gains + 3, "chessboard": gains}),
        "chessboard_linear_small_init_gain": dict(
            gain=pd.DataFrame({"z=0": [0.5, 0.6, 0.5], ch04.AFFINE: [1.0, 1.2, 1.0]})
        ),
    }
    for row, over in cases.items():
        v = _verdicts(**over)
        assert v[row] == FAILS, (row, v[row])
    v = _verdicts(figure_gains={"diagonal": gains, "chessboard": gains + 3})
    assert v["diagonal_weight_decay_gain"] == FAILS and v["chessboard_small_init_gain"] == HOLDS
    v = _verdicts(exps=[_exp(s, delta=(0.5, 0.4, 0.6)) for s in ch04.SWEEPS])
    assert v["weight_decay_robust"] == FAILS
    v = _verdicts(gain=pd.DataFrame({"z=0": [0.5, 0.6, 0.5], ch04.AFFINE: [1.0, 1.2, 1.0]}))
    assert v["affine_plane_weaker"] == FAILS  # the affine plane gains more than z=0
    v = _verdicts(exps=[_exp(s, diff=(0.5, 0.3, 0.7)) for s in ch04.SWEEPS])
    assert {v[f"exponent_{sweep_key(s)}"] for s in ch04.SWEEPS} == {FAILS}
    v = _verdicts(exps=[_exp(s, diff=(-0.5, -0.7, -0.3)) for s in ch04.SWEEPS])
    assert {v[f"exponent_{sweep_key(s)}"] for s in ch04.SWEEPS} == {FAILS}
    # Adam fails either way: it does not move the random-P weights, or it moves the axis-aligned ones
    still = _claims_inputs()["optim"].assign(drift=[1e-3, 2e-3, 1e-5, 1e-5, 9.0])
    assert _verdicts(optim=still)["adam_moves_orthogonal_weights"] == FAILS
    axis = _claims_inputs()["optim"].assign(drift=[0.5, 0.3, 0.1, 1e-5, 9.0])
    assert _verdicts(optim=axis)["adam_moves_orthogonal_weights"] == FAILS
    flips = ch04.flip_summary(_planted_points(0.3, x_norm=8.0, gain=1.5).assign(delta_univ=100.0), 4, 0.5)
    assert _verdicts(flips=flips)["universal_direction"] == FAILS  # a universal direction that flips no point


def test_claims_table_at_its_thresholds():
    """Boundaries: a drift equal to the tolerance is not frozen; an Adam drift equal to ADAM_MOVES has not moved;
    agreement within +-EQUIVALENCE includes its ends; intervals touching their threshold are inconclusive."""
    tol = DRIFT_TOL
    assert _verdicts(drift_gd=tol)["frozen_orthogonal_weights"] == FAILS
    assert _verdicts(drift_gd=tol * 0.999)["frozen_orthogonal_weights"] == HOLDS
    at = _claims_inputs()["optim"].assign(drift=[ADAM_MOVES] * 2 + [1e-5, 1e-5, 9.0])
    assert _verdicts(optim=at)["adam_moves_orthogonal_weights"] == FAILS
    axis_at_tol = _claims_inputs()["optim"].assign(drift=[0.5, 0.3, tol, 1e-5, 9.0])
    assert _verdicts(optim=axis_at_tol)["adam_moves_orthogonal_weights"] == FAILS
    assert _verdicts(law=(1.0, 0.9, 1.09))["orthogonal_gradient_law"] == HOLDS
    assert _verdicts(law=(1.0, 0.89, 1.0))["orthogonal_gradient_law"] == OPEN
    assert _verdicts(law=(1.2, 1.11, 1.3))["orthogonal_gradient_law"] == FAILS
    assert ch04.agreement_verdict(-0.125, 0.0625, tol=0.125) == HOLDS
    assert ch04.agreement_verdict(-0.125, 0.2, tol=0.125) == OPEN
    assert ch04.agreement_verdict(0.2, 0.3, tol=0.125) == FAILS and ch04.agreement_verdict(-0.3, -0.2, 0.125) == FAILS
    assert ch04.agreement_verdict(float("nan"), 0.0) == OPEN
    v = _verdicts(exps=[_exp(s, delta=(-0.1, -0.2, 0.0)) for s in ch04.SWEEPS])
    assert v["small_init_robust"] == OPEN and v["weight_decay_robust"] == OPEN
    one_seed = pd.DataFrame({"small init": [3.0, np.nan, np.nan], "weight decay": [2.0, 2.1, 2.2]})
    v = _verdicts(figure_gains={"diagonal": one_seed, "chessboard": one_seed})
    assert v["diagonal_small_init_gain"] == OPEN and v["diagonal_weight_decay_gain"] == HOLDS


def test_scalars_collect_every_descriptive_number():
    """:func:`ch04.scalars` on planted inputs: each number from where it is measured, keys as the ledger reads them."""
    inp = _claims_inputs()
    flips, scale = inp["flips"], inp["scale"]
    reach = pd.DataFrame(
        {"runs": [2, 2], "reached": [2, 1]},
        index=pd.MultiIndex.from_tuples(
            [("diagonal", "line", "small init"), ("chessboard", ch04.AFFINE, "weight decay")],
            names=["figure", "plane", "variant"],
        ),
    )
    gain = pd.DataFrame({"z=0": [2.0, 4.0, 1.0], ch04.AFFINE: [1.0, 1.0, np.nan]})
    out = ch04.scalars(flips, (1.2, 1.1, 1.3), 3e-6, inp["exps"], gain, reach, scale)
    assert out["orthogonal_drift"] == 3e-6 and out["law_ratio"] == 1.2
    assert out["universal_norm"] == flips["universal_norm"]
    for name in ch04.RATIOS:
        assert out[name] == flips[name][0]
        assert out[f"{name}_slope_d"] == scale["d"][name] and out[f"{name}_slope_radius"] == scale["radius"][name]
    for name in ("grad_ratio", "delta_ratio", "univ_flipped", "rand_flipped"):
        assert out[name] == flips[name][0]
    assert out["reached_diagonal_line_small_init"] == 2
    plane = ch04.AFFINE.replace(" ", "_").replace("=", "").replace(".", "")
    assert out[f"reached_chessboard_{plane}_weight_decay"] == 1
    assert "=" not in "".join(out) and " " not in "".join(out)
    exps = [_exp(s, delta=(-0.1 * i, 0, 0)) for i, s in enumerate(ch04.SWEEPS)]
    exps = [e | {"measured": i, "predicted": 10 + i} for i, e in enumerate(exps)]
    out = ch04.scalars(flips, (1.2, 1.1, 1.3), 3e-6, exps, gain, reach, scale)
    for i, s in enumerate(ch04.SWEEPS):
        k = sweep_key(s)
        assert (out[f"slope_{k}"], out[f"predicted_{k}"], out[f"delta_slope_{k}"]) == (i, 10 + i, -0.1 * i)
    assert out["affine_gain_ratio"] == pytest.approx(np.sqrt(0.5 * 0.25))  # the unfitted seed left out
    with warnings.catch_warnings():  # no seed fitted: NaN recorded, without numpy's empty-mean warning
        warnings.simplefilter("error")
        none = ch04.scalars(flips, (1.2, 1.1, 1.3), 3e-6, exps, gain.assign(**{ch04.AFFINE: np.nan}), reach, scale)
    assert np.isnan(none["affine_gain_ratio"])


def test_exponent_declarations_and_intervals_without_bounds():
    """Exponent rows are checks judged by agreement (smaller |measured - predicted| is better); a row whose
    interval is not finite shows its estimate alone; the radius row names the sweep's first and last radius."""
    for name in ch04.SWEEPS:
        d = ch04.DECLARED[f"exponent_{sweep_key(name)}"]
        assert d.id == f"ch04.exponent_{sweep_key(name)}" and d.kind == claims.CHECK
        assert d.above is False and d.threshold == ch04.EQUIVALENCE
    made = _exponent("x", "the planted value", "sweep_d", "steps")  # DECLARED is built at import: call it here
    assert made.id == "ch04.exponent_x" and made.kind == claims.CHECK and made.above is False
    assert made.threshold == ch04.EQUIVALENCE and made.settings == ("sweep_d", "steps")
    assert "||grad_perp f|| in the planted value follows the derivation" in made.claim
    assert made.section == "ch04-scaling"
    above_one = claims.Declared("ch04.x", claims.PAPER, "claim", "stat", threshold=1.0)
    c = _interval(above_one, (2.0, np.nan, np.nan))
    assert c.value == "2" and c.verdict == OPEN
    assert _interval(above_one, (2.0, 1.5, 2.5)).value == "2 [1.5, 2.5]"
    inp = _claims_inputs()
    grad = ch04.scale_rows(inp["flips"], inp["scale"], inp["cfg"])[0]
    levels = inp["scale"]["radius"]["levels"].grad_gain
    assert f"{levels.iloc[0]:.2f} at radius 2 to {levels.iloc[-1]:.2f} at 16" in grad.statistic


def test_agreement_at_the_lower_end_and_the_radius_levels_the_row_names():
    """An interval sitting exactly on -tol agrees (the ends belong to the band); the gradient row names the radius
    sweep's first and last level, planted distinct so that a neighbour cannot stand in for either."""
    assert ch04.agreement_verdict(-0.125, -0.125, tol=0.125) == HOLDS
    assert ch04.agreement_verdict(0.125, 0.125, tol=0.125) == HOLDS
    assert ch04.agreement_verdict(-0.25, -0.125 - 2**-20, tol=0.125) == FAILS
    inp = _claims_inputs()
    scale = {**inp["scale"]}
    levels = pd.DataFrame({c: [1.1, 1.2, 1.3, 1.4] for c in ch04.RATIOS}, index=[2.0, 4.0, 8.0, 16.0])
    scale["radius"] = {**scale["radius"], "levels": levels}
    grad = ch04.scale_rows(inp["flips"], scale, inp["cfg"])[0]
    assert "1.10 at radius 2 to 1.40 at 16" in grad.statistic
