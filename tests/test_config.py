import pytest
import torch

from lib import config
from lib.chapters import toolkit
from lib.config import Param, ParameterError, resolve

SPEC = {
    "dataset": Param(str, "digits", "mnist", choices=config.DATASETS),
    "widths": Param((list, int), [8, 8], [1000], check="positive"),
    "eps": Param(float, 0.1, check="nonnegative"),
    "epochs": Param(int, 2, 20, check="positive"),
}


def test_profile_defaults_and_overrides():
    cfg = resolve(SPEC, {"profile": "quick", "dataset": None, "epochs": 5})
    assert (cfg.dataset, cfg.widths, cfg.epochs, cfg.eps) == ("digits", [8, 8], 5, 0.1)
    paper = resolve(SPEC, profile="paper")
    assert (paper.dataset, paper.widths, paper.epochs, paper.eps) == ("mnist", [1000], 20, 0.1)


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("BOOK_PROFILE", "paper")
    assert resolve(SPEC).dataset == "mnist"
    monkeypatch.setenv("BOOK_PROFILE", "nosuch")
    with pytest.raises(ParameterError, match="'profile'.*'quick', 'paper'"):
        resolve(SPEC)


@pytest.mark.parametrize("kw, match", [
    ({"dataset": "nosuch"}, r"'dataset' is 'nosuch'; allowed values: 'digits', 'mnist', 'fashion-mnist'"),
    ({"eps": -0.5}, r"'eps' must be >= 0"),
    ({"widths": [8, 0]}, r"'widths' must be > 0"),
    ({"widths": []}, r"'widths' must be a non-empty list"),
    ({"epochs": 2.5}, r"'epochs' must be int"),
    ({"epochs": "3"}, r"'epochs' must be int"),
    ({"eps": float("nan")}, r"'eps' must be finite"),
    ({"device": "tpu"}, r"'device'.*allowed values"),
    ({"seed": -1}, r"'seed' must be >= 0"),
    ({"nosuch": 1}, r"unknown parameter\(s\) 'nosuch'"),
])
def test_bad_values_name_the_parameter(kw, match):
    with pytest.raises(ParameterError, match=match):
        resolve(SPEC, profile="quick", **kw)


def test_list_given_as_text_is_parsed():
    assert resolve(SPEC, widths="[4, 5]").widths == [4, 5]
    with pytest.raises(ParameterError, match="'widths'"):
        resolve(SPEC, widths="[4, ")


def test_cuda_refused_when_absent():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ParameterError, match="CUDA is not available"):
        resolve(SPEC, device="cuda")


def test_device_and_seeding_are_deterministic(monkeypatch):
    monkeypatch.setenv("BOOK_DEVICE", "cpu")
    a = resolve(SPEC, seed=3)
    x = torch.rand(3)
    b = resolve(SPEC, seed=3)
    y = torch.rand(3)
    assert a.device == torch.device("cpu")
    assert torch.equal(x, y)
    assert torch.equal(torch.rand(2, generator=a.generator), torch.rand(2, generator=b.generator))


def test_toolkit_spec_resolves_for_both_profiles():
    for profile in config.PROFILES:
        cfg = resolve(toolkit.PARAMS, profile=profile)
        assert cfg.profile == profile and cfg.epochs > 0
    assert list(config.describe(toolkit.PARAMS, cfg).index[:2]) == ["seed", "device"]

