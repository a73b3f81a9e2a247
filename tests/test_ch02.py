"""Chapter 2's parameter checks, mislabelled-training budgets and verdicts, and flip-norm display."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from lib import config, data, manifold, results
from lib.chapters import ch02
from lib.claims import FAILS, HOLDS, INCONCLUSIVE
from lib.config import ParameterError


def resolve(**kw):
    cfg = config.resolve(ch02.PARAMS, {"profile": "quick"}, device="cpu", **kw)
    ch02.check(cfg)
    return cfg


@pytest.mark.parametrize("dataset, k", [("digits", 8), ("fashion-mnist", 16), ("mnist", 16)])
def test_latent_dim_zero_takes_the_book_choice_for_the_image_size(dataset, k, mnist_here):
    assert resolve(dataset=dataset).latent_dim == k
    assert resolve(dataset=dataset, latent_dim=5).latent_dim == 5


@pytest.mark.parametrize(
    "kw, name",
    [
        ({"mislabel_rms": [0.2, 0.1]}, "mislabel_rms"),
        ({"mislabel_fractions": [0.5, 1.0]}, "mislabel_fractions"),
        ({"latent_dim": 64}, "latent_dim"),
        ({"ae_channels": [8, 16, 32]}, "ae_channels"),
        ({"attack_eps": 9.0}, "flip_eps_max"),
    ],
)
def test_bad_parameter_combinations_fail_before_compute(kw, name):
    with pytest.raises(ParameterError, match=name):
        resolve(**kw)


@pytest.mark.parametrize(
    "kw, name",
    [({"ae_kind": "vae"}, "ae_kind"), ({"n_test": -1}, "n_test"), ({"mislabel_rms": [-0.1]}, "mislabel_rms")],
)
def test_bad_values_are_rejected_by_resolve(kw, name):
    with pytest.raises(ParameterError, match=name):
        config.resolve(ch02.PARAMS, {"profile": "quick"}, device="cpu", **kw)


def test_mislabel_budget_scales_with_sqrt_of_pixels():
    assert ch02.mislabel_budget(0.1, 64) == pytest.approx(0.8)
    assert ch02.mislabel_budget(0.1, 784) == pytest.approx(2.8)
    assert ch02.mislabel_budget(0.3, 784) / ch02.mislabel_budget(0.3, 64) == pytest.approx(math.sqrt(784 / 64))


def test_mislabelled_verdict_needs_the_attacks_to_succeed():
    assert ch02.mislabelled_verdict(0.99, 0.6, 0.7) == HOLDS
    assert ch02.mislabelled_verdict(0.99, 0.2, 0.3) == FAILS
    assert ch02.mislabelled_verdict(0.99, 0.45, 0.55) == INCONCLUSIVE
    assert ch02.mislabelled_verdict(0.90, 0.6, 0.7) == INCONCLUSIVE  # a tenth of the set is not adversarial
    assert ch02.mislabelled_verdict(0.90, 0.2, 0.3) == INCONCLUSIVE


def test_manifold_gate_makes_poor_manifold_models_inconclusive():
    assert ch02.manifold_gate(HOLDS, 0.8) == HOLDS
    assert ch02.manifold_gate(FAILS, 0.5) == FAILS
    assert ch02.manifold_gate(HOLDS, 0.4) == INCONCLUSIVE
    assert ch02.manifold_gate(FAILS, -0.2) == INCONCLUSIVE


def test_flip_text_never_shows_a_bare_inf():
    assert ch02.flip_text([0.5, 1.0, 2.0], 8.0) == "1"
    assert ch02.flip_text([0.5, 1.0, 2.0, math.inf], 8.0) == "1.5 (25% not flipped within L2 <= 8)"
    text = ch02.flip_text([0.5, math.inf, math.inf], 8.0)
    assert text == "no flip within L2 <= 8 (67% of points)"
    assert ch02.flip_text(np.full(4, np.inf), 2.5) == "no flip within L2 <= 2.5 (100% of points)"
    for t in (text, ch02.flip_text([math.inf, 1.0], 8.0)):
        assert "inf" not in t


def test_summary_shows_no_flip_text():
    cfg = resolve()
    geo = {
        kind: pd.DataFrame(
            {
                "normal_tangent": [0.3, 0.4],
                "normal_random": [0.3, 0.3],
                "pgd_tangent": [0.5, 0.5],
                "pgd_random": [0.35, 0.35],
                **{n: [1.0, 2.0] for n in ch02.RESTRICTIONS},
            }
        )
        for kind in ("standard", "adversarial")
    }
    geo["adversarial"]["on-manifold"] = [math.inf, math.inf]
    table = ch02.summary(cfg, geo, 64)
    assert table.loc["median flip: on-manifold", "adversarial"] == "no flip within L2 <= 8 (100% of points)"
    assert table.loc["median flip: on-manifold", "standard"] == "1.5"
    assert not table.apply(lambda col: col.str.contains("inf")).any().any()


def test_size_slope_is_gain_per_doubling():
    sizes = pd.DataFrame({"images": [100, 200, 400], "clean_accuracy": [0.2, 0.25, 0.3]})
    assert ch02.size_slope(sizes) == pytest.approx(0.05)


def _mis(success, acc, lo, hi, shifted=0.05):
    return pd.DataFrame(
        {
            "rms": [0.1],
            "l2_budget": [0.8],
            "attack_success": [success],
            "clean_accuracy": [acc],
            "shifted_accuracy": [shifted],
            "clean_lo": [lo],
            "clean_hi": [hi],
            "verdict here": [ch02.mislabelled_verdict(success, lo, hi)],
            "judged": [True],
        }
    )


def test_mislabelled_reading_follows_the_numbers():
    grow = pd.DataFrame({"images": [250, 500, 1000], "clean_accuracy": [0.2, 0.3, 0.4]})
    flat = pd.DataFrame({"images": [250, 500, 1000], "clean_accuracy": [0.4, 0.4, 0.4]})
    text = ch02.mislabelled_reading(_mis(0.99, 0.4, 0.37, 0.43), grow, 0.1)
    assert "above chance" in text and "larger datasets" in text and "2 times" in text
    text = ch02.mislabelled_reading(_mis(0.99, 0.4, 0.37, 0.43), flat, 0.1)
    assert "hardly raise it" in text and "would not close the gap" in text
    slow = pd.DataFrame({"images": [2000, 4000, 8000], "clean_accuracy": [0.06, 0.11, 0.09]})
    text = ch02.mislabelled_reading(_mis(0.97, 0.09, 0.078, 0.103, shifted=0.55), slow, 0.1)
    assert "not above chance" in text and "more often than the true class" in text
    assert "more data alone would not close the gap" in text and "consistent with" not in text
    text = ch02.mislabelled_reading(_mis(0.90, 0.7, 0.67, 0.73), flat, 0.1)
    assert "short of the 0.95 needed" in text
    assert "as the claim says" in ch02.mislabelled_reading(_mis(0.99, 0.7, 0.67, 0.73), flat, 0.1)


def test_mislabelled_sweep_uses_scaled_budgets_and_reports_success():
    cfg = resolve(n_train=300, epochs=2, mislabel_steps=5, mislabel_rms=[0.02, 0.5], mislabel_fractions=[0.5])
    ds = data.load("digits", n_train=300, seed=0)
    net, _ = ch02.train_classifier(cfg, ds, ds.x_train, ds.y_train)
    mis, sizes = ch02.mislabelled_sweep(cfg, ds, net)
    assert mis.l2_budget.tolist() == pytest.approx([0.02 * 8, 0.5 * 8])
    assert (mis.mean_norm <= mis.l2_budget + 1e-4).all()
    assert mis.attack_success.between(0, 1).all() and mis.attack_success.iloc[1] > mis.attack_success.iloc[0]
    assert mis.judged.sum() == 1
    assert list(sizes.images) == [150, 300]
    for _, r in mis.iterrows():
        assert r["verdict here"] == ch02.mislabelled_verdict(r.attack_success, r.clean_lo, r.clean_hi)


def test_quality_reading_follows_the_snapshots():
    def table(shares):
        return pd.DataFrame(
            {
                "manifold": "conv autoencoder",
                "epoch": [0, 1, 3, 10],
                "explained variance": [-1, 0.3, 0.6, 0.8],
                "RMS share: pgd": shares,
            }
        )

    pca = pd.Series({"explained variance": 0.7, "RMS share: pgd": 0.5})
    text = ch02.quality_reading(table([0.1, 0.4, 0.5, 0.6]), pca, "RMS share: pgd")
    assert (
        "rises with the explained variance" in text and "untrained decoder (epoch 0) gives a PGD share of 0.10" in text
    )
    assert "falls as" in ch02.quality_reading(table([0.1, 0.6, 0.5, 0.4]), pca, "RMS share: pgd")
    assert "not follow" in ch02.quality_reading(table([0.1, 0.5, 0.6, 0.5]), pca, "RMS share: pgd")


def test_censored_flip_pairs_are_read_both_ways_and_decide_nothing_alone():
    on = np.array([2.0, 2.2, 1.8, 2.1, math.inf, 1.9])
    off = np.array([1.0, 1.0, 1.0, 1.0, 1.0, math.inf])
    c = ch02.censored_log_growth([on, off], 8.0, np.subtract)
    assert (c.n_censored, c.n) == (2, 6)
    np.testing.assert_allclose(c.dropped, np.log(on[:4] / off[:4]))
    np.testing.assert_allclose(c.capped, np.log(np.array([2.0, 2.2, 1.8, 2.1, 8.0, 1.9]) / [1, 1, 1, 1, 1, 8.0]))
    assert "2 of 6 pairs had a search that did not flip within L2 <= 8" in c.note(lambda v: math.exp(v.mean()))

    def positive_mean(v):
        return HOLDS if v.mean() > 0 else FAILS

    assert c.verdict(positive_mean(c.dropped), positive_mean) == HOLDS  # both readings agree
    assert c.verdict(HOLDS, lambda v: FAILS) == INCONCLUSIVE  # the readings disagree
    clean = ch02.censored_log_growth([on[:4], off[:4]], 8.0, np.subtract)
    assert clean.n_censored == 0 and clean.note(np.mean) == ""

    def never(v):
        raise AssertionError("the capped reading is read only when a pair is censored")

    assert clean.verdict(FAILS, never) == FAILS  # nothing censored: the dropped reading decides


def test_parameter_bounds_and_the_learned_manifold_in_place():
    with pytest.raises(ParameterError, match=r"parameter 'synth_dim' must be >= 3, got 2"):
        config.resolve(ch02.PARAMS, {"profile": "quick"}, device="cpu", synth_dim=2)
    with pytest.raises(ParameterError, match=r"parameter 'widths' must be <= 65536"):
        config.resolve(ch02.PARAMS, {"profile": "quick"}, device="cpu", widths=[10**6])
    names = list(ch02.PARAMS)
    assert names[names.index("lr") + 1 : names.index("ae_snapshots")] == list(manifold.LEARNED_PARAMS)


def _claim_inputs(seed=0, n=40):
    rng = np.random.default_rng(seed)

    def geo(scale):
        return pd.DataFrame(
            {
                "normal_tangent": rng.uniform(0.2, 0.4, n),
                "normal_random": rng.uniform(0.3, 0.4, n),
                "pgd_tangent": rng.uniform(0.3, 0.5, n),
                "pgd_random": rng.uniform(0.3, 0.4, n),
                "unrestricted": rng.uniform(0.5, 1.0, n),
                "on-manifold": rng.uniform(2, 3, n),
                "off-manifold": scale * rng.uniform(0.8, 1.2, n),
                "random k-dim": rng.uniform(3, 4, n),
                "random (n-k)-dim": rng.uniform(0.8, 1.2, n),
            }
        )

    crit = pd.DataFrame({"seen": [False, True, False, False]})
    return crit, {"standard": geo(1.0), "adversarial": geo(2.0)}, 64, torch.full((n,), 4.0), _mis(0.99, 0.6, 0.55, 0.65)


def test_claims_follow_their_declarations_without_side_effects(monkeypatch):
    def no_record(**_):
        raise AssertionError("claims() must not record anything")

    monkeypatch.setattr(results, "record", no_record)
    cfg = resolve()
    crit, geo, n, nn_other, mis = _claim_inputs()
    rows = ch02.claims(cfg, crit, geo, n, nn_other, mis, 0.1, 0.8)
    assert [r.id for r in rows] == [d.id for d in ch02.DECLARED.values()]
    assert all(r.kind == d.kind for r, d in zip(rows, ch02.DECLARED.values()))
    by_id = {r.id.split(".")[1]: r for r in rows}
    assert by_id["clinging_dimpling"].value == "1 of 4" and by_id["clinging_dimpling"].verdict == INCONCLUSIVE
    assert by_id["pgd_mostly_off"].statistic.endswith("; autoencoder explains 0.80 of the variance")
    assert by_id["pgd_below_random"].statistic.startswith("same, vs sqrt(k/n) = 0.354 (random subspace: 0.3")
    assert by_id["tiny_perturbations"].verdict == HOLDS  # flip norms <= 1, half the distance 2
    assert by_id["on_larger_than_off"].verdict == HOLDS and by_id["on_larger_than_random"].verdict == FAILS
    assert by_id["mislabelled_accuracy"].verdict == HOLDS
    assert by_id["at_deepens_dimples"].verdict == HOLDS  # off-manifold norms doubled, on-manifold ones not
    s = ch02.scalars(cfg, crit, geo, n, mis, 0.1, 0.8)
    assert s["on_off_flip_ratio"] == by_id["on_larger_than_off"].estimate
    assert s["at_off_growth"] / s["at_on_growth"] == pytest.approx(by_id["at_deepens_dimples"].estimate)
    assert s["clinging_dimpling_settings"] == 1
    gated = {r.id: r.verdict for r in ch02.claims(cfg, crit, geo, n, nn_other, mis, 0.1, 0.3)}
    assert {i for i, v in gated.items() if v == INCONCLUSIVE} == {
        "ch02.clinging_dimpling",
        "ch02.pgd_mostly_off",
        "ch02.pgd_below_random",
        "ch02.on_larger_than_off",
        "ch02.on_larger_than_random",
        "ch02.at_deepens_dimples",
    }
