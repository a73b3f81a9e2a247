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
