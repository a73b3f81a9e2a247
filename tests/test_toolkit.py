"""The toolkit tour's summary: clean accuracy is measured on clean inputs whatever the strength grid."""

import math

import pytest
import torch

from lib import config, data, models, train
from lib.chapters import toolkit


@pytest.fixture(scope="module")
def tour():
    cfg = config.resolve(
        toolkit.PARAMS,
        profile="quick",
        widths=[32],
        epochs=3,
        pgd_steps=3,
        epsilons=[0.0, 0.1, 0.2, 0.3],
        noise_stds=[0.0, 0.3, 0.8],
        device="cpu",
    )
    ds = data.load(cfg.dataset, device=cfg.device, seed=cfg.seed)
    net, _ = toolkit.train_mlp(cfg, ds)
    return cfg, ds, net, toolkit.robustness(cfg, net, ds)


def test_clean_accuracy_does_not_depend_on_the_grid(tour):
    cfg, ds, net, curves = tour
    with_zero = toolkit.summarise(cfg, curves, net, ds)
    without_zero = toolkit.summarise(cfg, curves[curves.strength > 0], net, ds)
    clean = train.accuracy(net, ds.x_test, ds.y_test)
    assert with_zero["clean_accuracy"] == without_zero["clean_accuracy"] == clean
    fgsm = curves[curves.attack == "FGSM"].set_index("strength").accuracy
    assert clean > fgsm[0.1]  # the accuracy at the smallest non-zero strength is not the clean one
    for key, value in with_zero.items():
        other = without_zero[key]
        assert (math.isnan(value) and math.isnan(other)) or value == pytest.approx(other), key


def test_diverging_training_warns():
    torch.manual_seed(0)
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    with pytest.warns(RuntimeWarning, match=r"training diverges, lower 'lr'"):
        train.fit(models.MLP(8, [16], 3), x, y, epochs=5, lr=1e6, progress=False)
    assert train.divergence([1.0, 0.5, 6.0]) and train.divergence([1.0, float("nan")])
    assert train.divergence([1.0, 0.5, 0.7]) is None
