"""Chapter 3 helpers: parameter checks, rank correlations with bootstrap intervals."""

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from lib import config, som
from lib.chapters import ch03
from lib.config import ParameterError


@pytest.mark.parametrize(
    "bad", [{"channels": [8, 16, 32]}, {"models": ["mlp", "mlp"]}, {"som_grid": 1}, {"epsilons": [0.1, 0.9]}]
)
def test_bad_parameter_combinations_fail_naming_the_parameter(bad):
    with pytest.raises(ParameterError, match=next(iter(bad)) if "epsilons" not in bad else "flip_eps_max"):
        ch03.check(config.resolve(ch03.PARAMS, {"profile": "quick", **bad}))  # resolve runs the check


@pytest.mark.parametrize("bad", [{"models": ["resnet"]}, {"som_lr": 0.0}, {"som_sigma": -1.0}, {"flip_attack": "cw"}])
def test_bad_single_parameters_fail_in_resolve(bad):
    with pytest.raises(ParameterError, match=next(iter(bad))):
        config.resolve(ch03.PARAMS, {"profile": "quick", **bad})


def test_bootstrap_spearman_matches_scipy_and_partials_out_a_common_cause():
    rng = np.random.default_rng(0)
    a = rng.normal(size=400)
    b = a + rng.normal(size=400)
    rho, lo, hi = ch03.bootstrap_spearman(a, b, 300, rng)
    assert rho == pytest.approx(stats.spearmanr(a, b)[0])
    assert lo < rho < hi
    # a and b correlate only through c: the partial correlation given c vanishes
    c = rng.normal(size=4000)
    a, b = c + rng.normal(size=4000), c + rng.normal(size=4000)
    assert ch03.bootstrap_spearman(a, b, 200, rng)[0] > 0.4
    _, plo, phi = ch03.bootstrap_spearman(a, b, 200, rng, control=c)
    assert plo < 0 < phi


def test_n_boot_has_a_floor_of_100_named_in_the_error():
    with pytest.raises(ParameterError, match="n_boot.*>= 100"):
        config.resolve(ch03.PARAMS, {"profile": "quick", "n_boot": 1})
    assert config.resolve(ch03.PARAMS, {"profile": "quick", "n_boot": 100}).n_boot == 100


def test_subsets_are_seeded_and_sized():
    cfg = config.resolve(ch03.PARAMS, {"profile": "quick", "n_train": 300, "n_test": 100, "n_attack": 100, "seed": 2})
    a, b = ch03.load_data(cfg), ch03.load_data(cfg)
    assert a.x_train.shape[0] == 300 and a.x_test.shape[0] == 100
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    with pytest.raises(ParameterError, match="n_train"):
        config.resolve(ch03.PARAMS, {"profile": "quick", "n_train": -1})


def test_step_schedule_stages():
    cfg = config.resolve(ch03.PARAMS, {"profile": "quick", "epochs": 20, "lr": 1e-2, "lr_drops": [0.5, 0.75]})
    assert ch03.lr_stages(cfg) == [(10, pytest.approx(1e-2)), (5, pytest.approx(1e-3)), (5, pytest.approx(1e-4))]
    cfg.lr_schedule = "constant"
    assert ch03.lr_stages(cfg) == [(20, 1e-2)]
    with pytest.raises(ParameterError, match="lr_drops"):
        config.resolve(ch03.PARAMS, {"profile": "quick", "lr_drops": [1.5]})


def test_convergence_tells_a_plateau_a_fitted_set_and_a_falling_loss_apart():
    acc = np.linspace(0.5, 0.9, 20)
    plateau = pd.DataFrame({"loss": np.r_[np.linspace(1, 0.2, 18), 0.2001, 0.2], "train_acc": acc})
    fitted = pd.DataFrame({"loss": np.geomspace(1, 0.004, 20), "train_acc": np.r_[acc[:-1], 0.995]})
    falling = pd.DataFrame({"loss": np.linspace(1, 0.2, 20), "train_acc": acc})
    assert ch03.convergence(plateau)["converged"] == "plateau"
    assert ch03.convergence(fitted)["converged"] == "fitted"
    out = ch03.convergence(falling)
    assert out["converged"] == "no" and out["loss fall, last 2 epochs"] == pytest.approx(0.0842 / 0.2, rel=1e-2)


def test_training_follows_the_schedule_and_is_deterministic():
    cfg = config.resolve(
        ch03.PARAMS,
        {
            "profile": "quick",
            "n_train": 200,
            "n_test": 100,
            "n_attack": 100,
            "epochs": 4,
            "widths": [16],
            "device": "cpu",
        },
    )
    ds = ch03.load_data(cfg)
    runs = []
    for _ in range(2):
        cfg = config.resolve(
            ch03.PARAMS,
            {
                "profile": "quick",
                "n_train": 200,
                "n_test": 100,
                "n_attack": 100,
                "epochs": 4,
                "widths": [16],
                "device": "cpu",
            },
        )
        net = ch03.build("mlp", cfg, ds)
        runs.append(ch03.train_model(cfg, net, ds, "test"))
    assert runs[0].epoch.tolist() == [1, 2, 3, 4]
    assert runs[0].lr.tolist() == pytest.approx([3e-3, 3e-3, 3e-4, 3e-5])
    pd.testing.assert_frame_equal(runs[0], runs[1])


def test_streamed_layers_equal_held_layers():
    cfg = config.resolve(
        ch03.PARAMS, {"profile": "quick", "n_train": 300, "n_test": 100, "n_attack": 100, "device": "cpu"}
    )
    ds = ch03.load_data(cfg)
    net = ch03.build("conv", cfg, ds)
    held = ch03.layer_batches(net, ds.x_train, budget_mb=1e6)
    streamed = ch03.layer_batches(net, ds.x_train, budget_mb=0, batch_size=64)
    full = ch03.activations(net, ds.x_train)
    for src in (held, streamed):
        parts = list(src())
        for k, a in enumerate(full):
            assert torch.allclose(torch.cat([p[k] for p in parts]), a, atol=1e-6)
    # the chosen layers only, and maps fitted on both sources agree
    assert [a.shape[1] for a in next(iter(ch03.layer_batches(net, ds.x_train, [1, 3])()))] == [
        full[1].shape[1],
        full[3].shape[1],
    ]
    planes = som.principal_planes(held)
    a = ch03.fit_maps(cfg, held, planes)
    b = ch03.fit_maps(cfg, streamed, planes)
    for ma, mb in zip(a, b):
        assert torch.allclose(ma.weights, mb.weights, atol=1e-4)


def test_training_text_states_the_computed_verdict():
    table = pd.DataFrame(
        {
            "train accuracy": [0.95, 0.99],
            "test accuracy": [0.86, 0.80],
            "pixel logistic regression (test)": [0.82, 0.82],
            "final train loss": [0.17, 0.3],
            "loss fall, last 2 epochs": [0.005, 0.2],
            "converged": ["plateau", "no"],
        },
        index=pd.Index(["MLP", "conv net"], name="model"),
    )
    text = ch03.training_text(table).splitlines()
    assert "MLP" in text[0] and "has converged at this schedule" in text[0] and "0.040 above" in text[0]
    assert "has not converged" in text[1] and "0.020 below" in text[1] and "2 epochs before" in text[1]


# ---------------------------------------------------------------- issue 29: every verdict can fail

from types import SimpleNamespace  # noqa: E402

from lib.claims import CHECK, CONTROL, FAILS, HOLDS, INCONCLUSIVE, PAPER, CheckFailed, assert_checks, by_interval  # noqa: E402
from lib.stats import bootstrap_ci  # noqa: E402

OLD_DECISION_BAR = 0.9  # the old claim: agreement at the last hidden layer, holds if CI > 0.9


def _cfg(**kw):
    return SimpleNamespace(seed=0, n_boot=400, **kw)


def _kmeans_codes(x_train: np.ndarray, x_test: np.ndarray, cells: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A plain quantizer: k-means cells fitted on the training points."""
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=cells, n_init=1, random_state=0).fit(x_train)
    return torch.as_tensor(km.labels_).long(), torch.as_tensor(km.predict(x_test)).long()


def _verdict(short: str, row: dict) -> str:
    """The verdict of declared claim ``short`` on a table row (its ``{name}`` fields filled with placeholders)."""
    fields = {"title": "T", "layer": "L", "shallow": "S", "deep": "D"}
    return ch03.DECLARED[short].interval(row["difference"], row["lo"], row["hi"], **fields).verdict


def test_any_quantizer_of_a_linearly_read_layer_passes_the_old_decision_test_not_the_new_one():
    # planted null: the "last hidden layer" is the input itself, read out linearly; a plain 10 x 10 grid quantizer
    rng = np.random.default_rng(0)
    x_train, x_test = rng.normal(size=(3000, 2)), rng.normal(size=(1000, 2))
    w = np.array([[1.0, 0.0], [-0.5, 0.9], [-0.5, -0.9]])
    p_train, p_test = (torch.as_tensor((x @ w.T).argmax(1)) for x in (x_train, x_test))
    ctr, cte = _kmeans_codes(x_train, x_test, 100)
    agree = ch03.agreement(ctr, p_train, cte, p_test, 100, 3)
    res = SimpleNamespace(name="mlp", layers=["input", "dense 1"], agreement=[agree, agree.copy()])
    row = ch03.decisions_vs_input(_cfg(), res)
    old = by_interval(*bootstrap_ci(agree, n_boot=400, rng=0), OLD_DECISION_BAR)
    assert row["agreement"] > 0.93 and old == HOLDS  # the old test holds for a layer that adds nothing
    assert row["difference"] == 0 and row["lo"] <= 0 <= row["hi"]
    assert _verdict("mlp_decisions_beyond_input", row) != HOLDS
    # planted effect: the input's map agrees for 80% of the inputs, the last hidden layer's for 97%
    pixels = (rng.random(1000) < 0.8).astype(float)
    deep = np.maximum(pixels, rng.random(1000) < 0.85)
    row = ch03.decisions_vs_input(
        _cfg(), SimpleNamespace(name="mlp", layers=["input", "dense 1"], agreement=[pixels, deep])
    )
    assert row["lo"] > 0.1
    assert _verdict("mlp_decisions_beyond_input", row) == HOLDS


def test_the_untrained_control_sees_a_depth_trend_the_architecture_makes_alone():
    rng = np.random.default_rng(1)
    n = 800
    shallow, deep = rng.uniform(0.1, 0.3, n), rng.uniform(0.0, 0.2, n)  # trained: shallow 0.1 more mixed
    res = SimpleNamespace(
        name="conv", layers=["input", "conv 1", "conv 2", "dense"], homogeneity=[None, shallow, None, deep]
    )
    # planted null: the untrained network shows the same trend; the paper's raw difference holds regardless
    raw = ch03.shallow_vs_deep(_cfg(), res)
    assert raw["lo"] > 0
    same = [shallow + rng.normal(0, 0.01, n), deep + rng.normal(0, 0.01, n)]
    row = ch03.beyond_untrained(_cfg(), res, same)
    assert row["untrained difference"] == pytest.approx(0.1, abs=0.01)
    assert _verdict("conv_deep_diverse_beyond_untrained", row) == INCONCLUSIVE
    # planted effect: untrained, the deep codes are as mixed as the shallow ones
    flat = [shallow + rng.normal(0, 0.01, n), shallow + rng.normal(0, 0.01, n)]
    row = ch03.beyond_untrained(_cfg(), res, flat)
    assert row["lo"] > 0.08
    # unused codes (NaN) are left out, not counted
    nan = [np.where(np.arange(n) < 10, np.nan, f) for f in flat]
    assert np.isfinite(ch03.beyond_untrained(_cfg(), res, nan)["difference"])


def _vulnerability_table(title: str, homog: np.ndarray, eps: np.ndarray, margin: np.ndarray) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    r, lo, hi = ch03.bootstrap_spearman(homog, eps, 400, rng)
    pr, plo, phi = ch03.bootstrap_spearman(homog, eps, 400, rng, control=margin)
    m = ch03.bootstrap_spearman(margin, eps, 400, rng)
    row = {"model": title, "layer": "dense 1", "rho": r, "lo": lo, "hi": hi}
    return pd.DataFrame(
        [
            {**row, "partial rho (margin)": pr, "partial lo": plo, "partial hi": phi},
            {"model": title, "layer": "logit margin (control)", "rho": m[0], "lo": m[1], "hi": m[2]},
        ]
    )


def test_a_common_cause_passes_the_raw_correlation_not_the_paper_test():
    rng = np.random.default_rng(2)
    margin = rng.exponential(size=1500)
    eps = margin + rng.normal(0, 0.2, 1500)  # the budget follows the margin only
    homog = np.exp(-margin) + rng.normal(0, 0.1, 1500)  # so does homogeneity: a common cause, no link of its own
    corr = _vulnerability_table("MLP", homog, eps, margin)
    assert corr.hi.iloc[0] < -0.3  # the old paper test (raw Spearman CI < 0) holds
    rows = _claims_on(corr)
    vul = next(c for c in rows if c.id == "ch03.mlp_homogeneity_vulnerability_beyond_margin")
    assert vul.kind == PAPER and vul.verdict != HOLDS and vul.estimate == corr["partial rho (margin)"].iloc[0]
    assert not any(c.estimate == corr.rho.iloc[0] for c in rows)  # the raw rho decides nothing
    # planted effect: homogeneity lowers the budget beyond the margin
    eps = margin - 0.5 * homog + rng.normal(0, 0.1, 1500)
    corr = _vulnerability_table("MLP", homog, eps, margin)
    vul = next(c for c in _claims_on(corr) if c.id == "ch03.mlp_homogeneity_vulnerability_beyond_margin")
    assert vul.verdict == HOLDS


def _claims_on(corr, decision=(0.05, 0.02, 0.08), raw=(0.03, 0.01, 0.05), control=(0.1, 0.05, 0.15), **kw):
    """``claims`` for one planted MLP: (estimate, lo, hi) of each table's decisive row."""
    res = {"mlp": SimpleNamespace(name="mlp", layers=["input", "dense 1", "dense 2"])}
    base = {"model": "MLP", "layer": "dense 2", "shallow": "dense 1", "deep": "dense 2"}
    table = lambda e: pd.DataFrame([{**base, "difference": e[0], "lo": e[1], "hi": e[2]}])  # noqa: E731
    return ch03.claims(res, table(decision), table(raw), table(control), corr, **kw)


def test_claims_hold_fail_and_sit_on_the_boundary_as_planted():
    rng = np.random.default_rng(3)
    margin = rng.exponential(size=500)
    corr = _vulnerability_table("MLP", np.exp(-margin), margin + rng.normal(0, 0.3, 500), margin)
    corr.loc[0, ["partial rho (margin)", "partial lo", "partial hi"]] = [0.1, 0.02, 0.18]  # wholly above 0: fails
    rows = _claims_on(corr, decision=(0.04, 0.0, 0.08))  # decisions: the interval touches its threshold
    by = {c.id.split(".", 1)[1]: c for c in rows}
    assert [c.id for c in rows] == [
        d.id for d in ch03.DECLARED.values() if d.id.startswith("ch03.mlp_") and d.kind != CHECK
    ]
    assert by["mlp_decisions_beyond_input"].verdict == INCONCLUSIVE  # lo == 0: on the boundary
    assert by["mlp_shallow_homogeneous_deep_diverse"].verdict == HOLDS
    assert (
        by["mlp_deep_diverse_beyond_untrained"].verdict == HOLDS
        and by["mlp_deep_diverse_beyond_untrained"].kind == CONTROL
    )
    assert by["mlp_homogeneity_vulnerability_beyond_margin"].verdict == FAILS
    assert [c.kind for c in rows] == [PAPER, PAPER, CONTROL, PAPER]
    assert "dense 1" in by["mlp_homogeneity_vulnerability_beyond_margin"].statistic


def test_mechanism_checks_fail_when_the_mechanism_breaks():
    rng = np.random.default_rng(4)
    margin = rng.exponential(size=300)
    corr = _vulnerability_table("MLP", np.exp(-margin), margin + rng.normal(0, 0.3, 300), margin)
    good = {
        "share of codes equal": 1.0,
        "inputs checked": 300,
        "inputs fitted": 1000,
        "QE lib.som (batch)": 1.40,
        "QE MiniSom train (online)": 1.42,
    }
    rows = _claims_on(corr, check=good, flips={"mlp": np.ones(50, bool)})
    checks = [c for c in rows if c.kind == CHECK]
    assert [c.id for c in checks] == [
        "ch03.codes_equal_minisom",
        "ch03.batch_map_matches_minisom",
        "ch03.mlp_bisection_flips",
    ]
    assert "all 3 pass" in assert_checks(rows)
    bad = {**good, "share of codes equal": 299 / 300, "QE lib.som (batch)": 1.6}
    rows = _claims_on(corr, check=bad, flips={"mlp": np.r_[np.ones(49, bool), False]})
    assert all(c.verdict == FAILS for c in rows if c.kind == CHECK)
    with pytest.raises(CheckFailed, match="codes_equal_minisom.*batch_map_matches_minisom.*mlp_bisection_flips"):
        assert_checks(rows)


def test_controls_run_on_a_tiny_network_and_every_declared_claim_is_built_once():
    params = {
        "profile": "quick",
        "n_train": 300,
        "n_test": 120,
        "n_attack": 60,
        "epochs": 2,
        "widths": [16, 16],
        "models": ["mlp"],
        "som_grid": 4,
        "som_epochs": 3,
        "n_boot": 100,
        "bisection_steps": 3,
        "pgd_steps": 2,
        "device": "cpu",
    }
    cfg = config.resolve(ch03.PARAMS, dict(params))
    ds = ch03.load_data(cfg)
    nets, _, _, initial = ch03.train_models(cfg, ds)
    # the untrained copy holds the weights training started from (a network built in the same sequence)
    again = config.resolve(ch03.PARAMS, dict(params))
    fresh = ch03.build("mlp", again, ch03.load_data(again))
    assert all(torch.equal(a, b) for a, b in zip(initial["mlp"].parameters(), fresh.parameters()))
    assert not torch.equal(initial["mlp"].hidden[0].weight, nets["mlp"].hidden[0].weight)
    res = {"mlp": ch03.analyse_layers(cfg, nets["mlp"], ds, "mlp")}
    km = ch03.kmeans_agreement(cfg, nets["mlp"], ds, res["mlp"])
    assert 0 <= km <= 1
    decisions = pd.DataFrame([ch03.decisions_vs_input(cfg, res["mlp"], km)])
    assert decisions["agreement"].iloc[0] == pytest.approx(res["mlp"].table["decision agreement"].iloc[-1])
    assert decisions["input agreement"].iloc[0] == pytest.approx(res["mlp"].table["decision agreement"].iloc[0])
    h0 = ch03.untrained_homogeneity(cfg, initial["mlp"], ds, res["mlp"])
    assert [len(h) for h in h0] == [len(ds.y_test)] * 2
    untrained = pd.DataFrame([ch03.beyond_untrained(cfg, res["mlp"], h0)])
    diffs = pd.DataFrame([ch03.shallow_vs_deep(cfg, res["mlp"])])
    per, corr = ch03.vulnerability(cfg, nets["mlp"], res["mlp"], ds)
    flips = {"mlp": ch03.flips_at(cfg, nets["mlp"], ds, per)}
    check = {
        "share of codes equal": 1.0,
        "inputs checked": 10,
        "inputs fitted": 10,
        "QE lib.som (batch)": 1.0,
        "QE MiniSom train (online)": 1.0,
    }
    rows = ch03.claims(res, decisions, diffs, untrained, corr, check, flips)
    wanted = [d for d in ch03.DECLARED.values() if not d.id.startswith("ch03.conv_")]
    assert [(c.id, c.kind) for c in rows] == [(d.id, d.kind) for d in wanted]
    rec = ch03.scalars(res, decisions, diffs, untrained, corr, _accuracy_table())
    assert {
        "mlp_decision_agreement_input",
        "mlp_decision_agreement_kmeans",
        "mlp_homogeneity_difference_untrained",
        "mlp_rho_shallow_flip_eps",
    } <= set(rec)


def _accuracy_table():
    return pd.DataFrame(
        {
            "train accuracy": [0.9],
            "test accuracy": [0.8],
            "final train loss": [0.3],
            "pixel logistic regression (test)": [0.7],
        },
        index=pd.Index(["MLP"], name="model"),
    )


def test_headline_names_the_claims_that_do_not_reproduce_first():
    rng = np.random.default_rng(6)
    margin = rng.exponential(size=400)
    corr = _vulnerability_table("MLP", np.exp(-margin), margin + rng.normal(0, 0.3, 400), margin)
    corr.loc[0, ["partial rho (margin)", "partial lo", "partial hi"]] = [0.1, 0.02, 0.18]
    rows = _claims_on(corr)
    base = {"model": "MLP", "layer": "dense 2", "shallow": "dense 1", "deep": "dense 2"}
    decisions = pd.DataFrame(
        [{**base, "agreement": 0.97, "input agreement": 0.92, "k-means agreement": 0.98, "difference": 0.05}]
    )
    diffs = pd.DataFrame([{**base, "difference": 0.03, "lo": 0.01, "hi": 0.05}])
    text = ch03.headline(rows, decisions, diffs, corr)
    assert text.startswith("**2 of the paper's 3 claims hold in this run.**")
    missed, held = text.index("Not reproduced:"), text.index("Reproduced:")
    assert missed < text.index("beyond the clean logit margin: **does not hold**") < held
    assert "with the input layer's map for 0.920" in text and "+0.10 [+0.020, +0.180]" in text
    rows = [c for c in rows if "vulnerability" not in c.id]
    assert "Not reproduced" not in ch03.headline(rows, decisions, diffs, corr)


def test_per_model_declares_one_claim_per_network_with_its_id_and_kind():
    from lib.chapters.ch03.claims import _per_model

    out = _per_model("x_test", CHECK, "{title}: a claim", "a statistic", threshold=1.0)
    assert [(d.id, d.kind, d.claim, d.threshold) for d in out] == [
        ("ch03.mlp_x_test", CHECK, "{title}: a claim", 1.0),
        ("ch03.conv_x_test", CHECK, "{title}: a claim", 1.0),
    ]
    assert [d.id for d in _per_model("y", PAPER, "c", "s")] == ["ch03.mlp_y", "ch03.conv_y"]
    assert {d.kind for d in _per_model("y", CONTROL, "c", "s")} == {CONTROL}


@pytest.mark.parametrize(
    "batch, verdict, value",
    [
        (1.40, HOLDS, "0.986"),  # 1.40 / 1.42: the batch map fits better
        (1.05, HOLDS, "1.050"),  # 1.05 / 1.00: on the tolerance, which still passes (<=)
        (1.60, FAILS, "1.127"),  # 1.60 / 1.42: beyond the tolerance
    ],
)
def test_map_check_row_records_the_error_ratio(batch, verdict, value):
    online = 1.00 if batch == 1.05 else 1.42
    check = {
        "share of codes equal": 1.0,
        "inputs checked": 300,
        "inputs fitted": 1000,
        "QE lib.som (batch)": batch,
        "QE MiniSom train (online)": online,
    }
    row = next(c for c in ch03.claims({}, *[pd.DataFrame()] * 4, check) if c.id == "ch03.batch_map_matches_minisom")
    assert (row.verdict, row.value) == (verdict, value)
    assert row.estimate == row.lo == row.hi == pytest.approx(batch / online)
    assert "MiniSom's online map on 1000 inputs" in row.statistic
    check["share of codes equal"] = 0.75  # the codes row records its share as estimate and both bounds
    codes = next(c for c in ch03.claims({}, *[pd.DataFrame()] * 4, check) if c.id == "ch03.codes_equal_minisom")
    assert (codes.verdict, codes.value, codes.estimate, codes.lo, codes.hi) == (FAILS, "0.750", 0.75, 0.75, 0.75)


def test_bisection_check_row_records_the_flipped_share():
    flips = {"mlp": np.r_[np.ones(49, bool), False], "conv": np.ones(8, bool)}
    rows = {c.id: c for c in ch03.claims({}, *[pd.DataFrame()] * 4, flips=flips)}
    mlp, conv = rows["ch03.mlp_bisection_flips"], rows["ch03.conv_bisection_flips"]
    assert (mlp.verdict, mlp.value, mlp.estimate, mlp.lo, mlp.hi) == (FAILS, "0.980", 0.98, 0.98, 0.98)
    assert mlp.claim.startswith("MLP: ") and "share of the 50 inputs" in mlp.statistic
    assert (conv.verdict, conv.value, conv.hi) == (HOLDS, "1.000", 1.0) and conv.claim.startswith("conv net: ")


def test_an_empty_flip_search_gives_no_share_and_no_warning():
    """No input flipped in the search: the share is NaN, computed without numpy's empty-mean warning."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        row = ch03.claims({}, *[pd.DataFrame()] * 4, flips={"mlp": np.zeros(0, bool)})[0]
    assert np.isnan(row.estimate) and row.value == "nan" and "share of the 0 inputs" in row.statistic


def test_scalars_record_the_planted_numbers_under_their_names():
    """One planted MLP: homogeneity 0.9 at the input, 0.6 at the shallow (first hidden) layer, 0.3 at the deepest."""
    res = {
        "mlp": SimpleNamespace(
            layers=["input", "dense 1", "dense 2"], table=pd.DataFrame({"homogeneity": [0.9, 0.6, 0.3]})
        )
    }
    base = {"model": "MLP", "layer": "dense 2", "shallow": "dense 1", "deep": "dense 2"}
    decisions = pd.DataFrame(
        [{**base, "agreement": 0.97, "input agreement": 0.92, "k-means agreement": 0.95, "difference": 0.05}]
    )
    diffs = pd.DataFrame([{**base, "difference": 0.3, "lo": 0.2, "hi": 0.4}])
    untrained = pd.DataFrame([{**base, "difference": 0.1, "lo": 0.0, "hi": 0.2, "untrained difference": 0.2}])
    corr = pd.DataFrame(
        [
            {"model": "MLP", "layer": "dense 2", "rho": 0.5, "lo": 0.4, "hi": 0.6, "partial rho (margin)": 0.05},
            {"model": "MLP", "layer": "dense 1", "rho": -0.4, "lo": -0.5, "hi": -0.3, "partial rho (margin)": -0.2},
            {"model": "MLP", "layer": "logit margin (control)", "rho": 0.7, "lo": 0.6, "hi": 0.8},
        ]
    )
    rec = ch03.scalars(res, decisions, diffs, untrained, corr, _accuracy_table())
    assert rec == {
        "pixel_logreg_test_accuracy": 0.7,
        "mlp_train_accuracy": 0.9,
        "mlp_test_accuracy": 0.8,
        "mlp_final_train_loss": 0.3,
        "mlp_homogeneity_shallow": 0.6,
        "mlp_homogeneity_deep": 0.3,
        "mlp_homogeneity_difference": 0.3,
        "mlp_homogeneity_difference_untrained": 0.2,
        "mlp_decision_agreement": 0.97,
        "mlp_decision_agreement_input": 0.92,
        "mlp_decision_agreement_kmeans": 0.95,
        "mlp_rho_shallow_flip_eps": -0.4,  # the shallow layer's row (layers[1]), not the deepest's
        "mlp_rho_shallow_flip_eps_lo": -0.5,
        "mlp_rho_shallow_flip_eps_hi": -0.3,
        "mlp_rho_margin_flip_eps": 0.7,
        "mlp_partial_rho_margin": -0.2,
    }
