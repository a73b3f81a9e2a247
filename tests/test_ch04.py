"""Chapter 4 helpers: parameter checks, planted scaling exponents, paired data, the affine invariant."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from lib import claims, config, data, ensemble
from lib.chapters import ch04
from lib.chapters.ch04.claims import _fitted_ratio, _interval
from lib.chapters.ch04.figures import _variant_title
from lib.chapters.ch04.scaling import sweep_key
from lib.config import ParameterError


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
    assert all(s in ch04.PARAMS for d in decl.values() for s in d.settings)


def test_expected_costs_cover_every_stage():
    cfg = config.resolve(ch04.PARAMS, {"profile": "quick"})
    st = ch04.stages(cfg)
    assert len(st) == 2 + len(ch04.SWEEPS) + 2
    assert st.set_index("stage").loc["chessboard figure", "networks"] == 5 * cfg.figure_seeds
    assert st.set_index("stage").loc["sweep: width", "width"] == max(cfg.sweep_width)
    assert ch04.format_duration(30) == "30 s" and ch04.format_duration(600) == "10 min"
    assert ch04.format_duration(3 * 3600) == "3.0 h"
