"""Chapter 1's parameter checks and conditions (no training)."""

import pandas as pd
import pytest

from lib import claims, config
from lib.chapters import ch01
from lib.config import ParameterError
from lib.monotonicity import Trend, direction_verdict


def resolve(**kw):
    return config.resolve(ch01.PARAMS, {"profile": "quick"}, device="cpu", **kw)


@pytest.mark.parametrize(
    "kw, name",
    [
        ({"alpha_window": [11, 300]}, "alpha_window"),  # beyond the narrowest layer
        ({"alpha_window": [11]}, "alpha_window"),
        ({"alpha_window": [20, 21]}, "alpha_window"),
        ({"epoch_grid": [1, 40]}, "epoch_grid"),
        ({"epsilons": [0.1, 0.2]}, "epsilons"),  # no clean point
    ],
)
def test_bad_parameters_fail_before_training(kw, name):
    with pytest.raises(ParameterError, match=name):
        ch01.load_data(resolve(**kw))


def test_window_must_fit_the_test_set():
    with pytest.raises(ParameterError, match="test set"):
        ch01.load_data(resolve(n_test=50))


@pytest.mark.parametrize(
    "kw, name",
    [
        ({"widths": [0]}, "widths"),
        ({"dataset": "cifar"}, "dataset"),
        ({"weight_decays": [-1.0]}, "weight_decays"),
        ({"n_boot": 50}, "'n_boot' must be >= 100, got 50"),
        ({"width_grid": [10**6]}, "'width_grid' must be <= 65536"),
    ],
)
def test_bad_values_are_rejected_by_resolve(kw, name):
    with pytest.raises(ParameterError, match=name):
        resolve(**kw)


def test_conditions_cover_every_grid_for_both_methods():
    cfg = resolve()
    conds = ch01.conditions(cfg)
    per_method = 1 + len(cfg.epoch_grid) + len(cfg.width_grid) + len(cfg.weight_decays)
    assert len(conds) == 2 * per_method
    assert {c.method for c in conds} == set(ch01.METHODS)
    labels = [c.label for c in conds if c.method == "local"]
    assert len(set(labels)) == per_method
    assert all(len(c.widths) == len(cfg.widths) for c in conds)


def test_annealing_and_snapshots_must_fit_in_the_training():
    with pytest.raises(ParameterError, match="anneal_epochs"):
        ch01.load_data(resolve(anneal_epochs=20))
    with pytest.raises(ParameterError, match="epoch_grid"):
        ch01.load_data(resolve(epoch_grid=[1, 16]))  # 20 epochs, the last 5 annealed


def trend_of(shape, rho=0.5, ci=(0.2, 0.8)):
    nan = float("nan")
    return Trend(20, rho, ci, nan, (nan, nan), nan, nan, (nan, nan), nan, (nan, nan), shape)


@pytest.mark.parametrize(
    "shape, want, verdict",
    [
        ("increasing", "increasing", claims.HOLDS),
        ("decreasing", "increasing", claims.FAILS),  # the paper's direction, not any direction
        ("interior maximum", "increasing", claims.FAILS),
        ("undetermined", "increasing", claims.INCONCLUSIVE),
        ("interior minimum", "non-monotonic", claims.HOLDS),
        ("decreasing", "non-monotonic", claims.FAILS),
    ],
)
def test_direction_verdicts(shape, want, verdict):
    assert direction_verdict(trend_of(shape), want) == verdict


def fake_fidelity(local=0.85, logistic=0.83, backprop=0.855):
    return ch01.Fidelity(
        logistic,
        1e-2,
        local,
        backprop,
        [0.86, 0.85, 0.855],
        [0.85] * 3,
        (local - logistic, (local - logistic - 0.01, local - logistic + 0.01)),
        (backprop - local, (backprop - local - 0.01, backprop - local + 0.01)),
    )


def test_claims_have_ids_numbers_and_an_untestable_bound(monkeypatch):
    recorded = []
    monkeypatch.setattr(claims.results, "record", lambda **kw: recorded.append(kw))
    cfg = resolve()
    trs = {p: {m: trend_of("increasing") for m in ch01.MEASURES} for p in ch01.POPULATIONS}
    nan = float("nan")
    declared = ch01.claims(cfg, trs, fake_fidelity(), 10.0, (nan, (nan, nan), 54, 0), 1.8)
    assert not recorded  # building the rows records nothing; the notebook records them
    assert [c.id for c in declared] == [d.id for d in ch01.DECLARED.values()]
    assert {c.kind for c in declared} == {claims.PAPER, claims.CONTROL}
    assert declared[-1].kind == claims.CONTROL  # the book's fidelity control
    rows = claims.table(declared)
    bound = rows.claim.str.startswith("Smoothness")
    assert rows.verdict[bound].item() == claims.INCONCLUSIVE
    assert ch01.UNTESTABLE in rows.value[bound].item()
    assert rows.verdict.iloc[0] == claims.HOLDS  # gap 0.005 [-0.005, 0.015] within 0.02
    assert rows.verdict.iloc[3] == claims.FAILS  # FGSM "increasing" is not non-monotonic
    assert rows.verdict.iloc[-1] == claims.HOLDS  # the book's fidelity claim, last: 0.02 [0.01, 0.03] above 0
    split = (0.1, (0.05, 0.15), 40, 14)
    rows = claims.table(ch01.claims(cfg, trs, fake_fidelity(), 10.0, split, 1.0))
    assert rows.verdict[rows.claim.str.startswith("Smoothness")].item() == claims.HOLDS
    rows = claims.table(ch01.claims(cfg, trs, fake_fidelity(local=0.835), 10.0, split, 1.0))
    assert rows.verdict.iloc[-1] == claims.INCONCLUSIVE  # 0.005 [-0.005, 0.015] straddles 0


def test_result_sentences_follow_the_numbers():
    cfg = resolve()
    assert "beats the raw-pixel logistic regression" in ch01.fidelity_text(cfg, fake_fidelity())
    assert "below the raw-pixel" in ch01.fidelity_text(cfg, fake_fidelity(local=0.70))
    assert "cannot be told apart" in ch01.fidelity_text(cfg, fake_fidelity(local=0.835))
    checks = ch01.fidelity_table(cfg, fake_fidelity(local=0.70))
    assert list(checks.passes) == [False, False, True]
    table = pd.DataFrame(
        {"alpha": [1.5, 2.0, 1.1], "method": ["local"] * 3, "condition": ["base", "base", "0.05 epochs"]}
    )
    assert ch01.bound_text(table, 1.2, 1.3).startswith("1 of the 3")
    assert "untestable" in ch01.bound_text(table, 1.05, 1.3)
