"""Chapter 1's parameter checks and conditions (no training)."""
import pytest

from lib import config
from lib.chapters import ch01
from lib.config import ParameterError


def resolve(**kw):
    return config.resolve(ch01.PARAMS, {"profile": "quick"}, device="cpu", **kw)


@pytest.mark.parametrize("kw, name", [
    ({"alpha_window": [11, 300]}, "alpha_window"),    # beyond the narrowest layer
    ({"alpha_window": [11]}, "alpha_window"),
    ({"alpha_window": [20, 21]}, "alpha_window"),
    ({"epoch_grid": [1, 40]}, "epoch_grid"),
    ({"epsilons": [0.1, 0.2]}, "epsilons"),             # no clean point
])
def test_bad_parameters_fail_before_training(kw, name):
    with pytest.raises(ParameterError, match=name):
        ch01.load_data(resolve(**kw))


def test_window_must_fit_the_test_set():
    with pytest.raises(ParameterError, match="test set"):
        ch01.load_data(resolve(n_test=50))


@pytest.mark.parametrize("kw, name", [({"widths": [0]}, "widths"), ({"dataset": "cifar"}, "dataset"),
                                      ({"weight_decays": [-1.0]}, "weight_decays")])
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
