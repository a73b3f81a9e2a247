"""Chapter 3 helpers: parameter checks, rank correlations with bootstrap intervals."""
import numpy as np
import pytest
from scipy import stats

from lib import config
from lib.chapters import ch03
from lib.config import ParameterError


@pytest.mark.parametrize("bad", [{"channels": [8, 16, 32]}, {"models": ["mlp", "mlp"]}, {"som_grid": 1},
                                 {"epsilons": [0.1, 0.9]}])
def test_bad_parameter_combinations_fail_naming_the_parameter(bad):
    with pytest.raises(ParameterError, match=next(iter(bad)) if "epsilons" not in bad else "flip_eps_max"):
        ch03.check(config.resolve(ch03.PARAMS, {"profile": "quick", **bad}))  # resolve runs the check


@pytest.mark.parametrize("bad", [{"models": ["resnet"]}, {"som_lr": 0.0}, {"som_sigma": -1.0},
                                 {"flip_attack": "cw"}])
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
