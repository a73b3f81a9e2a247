import json
from types import SimpleNamespace as NS

import pytest
import torch

from lib import config, data
from lib.chapters import ch01, ch02, ch03, ch04, ch05, toolkit
from lib.config import Param, ParameterError, resolve

SPEC = {
    "dataset": Param(str, "digits", "mnist", choices=config.DATASETS),
    "widths": Param((list, int), [8, 8], [1000], check="positive"),
    "eps": Param(float, 0.1, check="nonnegative"),
    "epochs": Param(int, 2, 20, check="positive"),
}


def test_profile_defaults_and_overrides(mnist_here):
    cfg = resolve(SPEC, {"profile": "quick", "dataset": None, "epochs": 5})
    assert (cfg.dataset, cfg.widths, cfg.epochs, cfg.eps) == ("digits", [8, 8], 5, 0.1)
    paper = resolve(SPEC, profile="paper")
    assert (paper.dataset, paper.widths, paper.epochs, paper.eps) == ("mnist", [1000], 20, 0.1)


def test_profile_from_environment(monkeypatch, mnist_here):
    monkeypatch.setenv("BOOK_PROFILE", "paper")
    assert resolve(SPEC).dataset == "mnist"
    monkeypatch.setenv("BOOK_PROFILE", "nosuch")
    with pytest.raises(ParameterError, match="'profile'.*'quick', 'paper'"):
        resolve(SPEC)


@pytest.mark.parametrize(
    "kw, match",
    [
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
    ],
)
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


def test_toolkit_spec_resolves_for_both_profiles(mnist_here):
    for profile in config.PROFILES:
        cfg = resolve(toolkit.PARAMS, profile=profile)
        assert cfg.profile == profile and cfg.epochs > 0
    assert list(config.describe(toolkit.PARAMS, cfg).index[:2]) == ["seed", "device"]


def test_upper_bounds_name_the_parameter():
    spec = {
        "steps": Param(int, 10, check="positive", max=1000),
        "rates": Param((list, float), [0.1], check="positive", max=1.0),
    }
    assert resolve(spec, steps=1000).steps == 1000
    with pytest.raises(ParameterError, match=r"'steps' must be <= 1000, got 100000000"):
        resolve(spec, steps=100_000_000)
    with pytest.raises(ParameterError, match=r"'rates' must be <= 1, got 5.0"):
        resolve(spec, rates=[0.1, 5.0])


def test_huge_seed_is_refused_naming_seed():
    assert resolve(SPEC, seed=config.SEED_MAX).seed == config.SEED_MAX
    with pytest.raises(ParameterError, match=r"'seed' must be <= "):
        resolve(SPEC, seed=99999999999999999999999)


def test_unknown_name_injected_by_papermill_is_refused():
    # papermill injects `-p epoch 1` as a cell "# Parameters\nepoch = 1\n"; the kernel's
    # input history (_ih) holds it even though `epoch` is no parameter of the chapter.
    namespace = {
        "profile": "quick",
        "epochs": None,
        "epoch": 1,
        "_ih": ["", "import os\nepochs = None", "# Parameters\nepoch = 1\nseed = 3\n"],
    }
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) 'epoch' \(given to papermill\); known: "):
        resolve(SPEC, namespace)
    namespace["_ih"][2] = "# Parameters\nepochs = 4\nseed = 3\n"
    namespace["epochs"], namespace["seed"] = 4, 3
    assert resolve(SPEC, namespace).epochs == 4


def test_registered_checks_run_in_resolve():
    spec = {
        "dataset": Param(str, "digits", choices=config.DATASETS),
        "n_train": Param(int, 0, check="nonnegative"),
        "n_attack": Param(int, 100, check="positive"),
        "lo": Param(int, 1),
        "hi": Param(int, 2),
    }

    def check(cfg):
        if cfg.hi <= cfg.lo:
            raise ParameterError(f"parameter 'hi' must exceed lo ({cfg.lo}), got {cfg.hi}")

    config.register("test-checks", spec, check, min_per_class=5, within={"n_attack": "test"})
    assert resolve(spec).hi == 2
    with pytest.raises(ParameterError, match=r"'hi' must exceed lo"):
        resolve(spec, hi=0)
    with pytest.raises(ParameterError, match=r"'n_train' gives a train set of 3 points; .* at least 50"):
        resolve(spec, n_train=3)
    assert resolve(spec, n_train=50).n_train == 50
    with pytest.raises(ParameterError, match=r"'n_attack' is 100000 but the test set of digits has 450"):
        resolve(spec, n_attack=100000)
    assert config.dataset_sizes(resolve(spec, n_train=50)) == (50, 450)


def test_checks_are_registered_by_chapter_name(monkeypatch):
    monkeypatch.setattr(config, "_CHECKS_OF", {})

    def refuse(cfg):
        raise ParameterError("old check")

    old, new = {"a": Param(int, 1)}, {"a": Param(int, 1)}
    config.register("chX", old, refuse)
    with pytest.raises(ParameterError, match="old check"):
        resolve(old)
    config.register("chX", new)  # the chapter's module imported again: its new PARAMS replace the old
    assert list(config._CHECKS_OF) == ["chX"] and resolve(new).a == 1 and resolve(old).a == 1
    with pytest.raises(ValueError, match=r"registered as chapter 'chX' already, not 'chY'"):
        config.register("chY", new)


def test_sizes_above_the_dataset_are_refused_and_the_whole_split_is_one_value():
    spec = {
        "dataset": Param(str, "digits", choices=config.DATASETS),
        "n_train": Param(int, 0, check="nonnegative"),
        "n_test": Param(int, 0, check="nonnegative"),
    }
    config.register("test-sizes", spec)
    with pytest.raises(
        ParameterError,
        match=r"'n_test' is 100000 but the test set of digits has 450 points; "
        r"use at most 450",
    ):
        resolve(spec, n_test=100000)
    with pytest.raises(ParameterError, match=r"'n_train' is 1348 but the train set of digits has 1347"):
        resolve(spec, n_train=1348)
    whole = resolve(spec, n_train=1347, n_test=450)
    assert (whole.n_train, whole.n_test) == (0, 0) and config.dataset_sizes(whole) == (1347, 450)
    assert resolve(spec, n_test=449).n_test == 449


def test_dataset_sizes_caps_each_request_at_its_split_and_check_sizes_refuses_beyond_it():
    assert config.dataset_sizes(NS(dataset="digits", n_train=100, n_test=30)) == (100, 30)
    assert config.dataset_sizes(NS(dataset="digits", n_train=0, n_test=None)) == (1347, 450)  # 0 / None: all
    assert config.dataset_sizes(NS(dataset="digits")) == (1347, 450)  # a chapter without the parameters
    assert config.dataset_sizes(NS(dataset="digits", n_train=5000, n_test=451)) == (1347, 450)  # capped
    assert config.dataset_sizes(NS(dataset="digits", n_train=1347, n_test=449)) == (1347, 449)
    assert config.dataset_sizes(NS(dataset="mnist", n_train=60001, n_test=1)) == (60000, 1)
    checks = config.Checks(min_per_class=5)
    for split, full in (("train", 1347), ("test", 450)):
        cfg = NS(**{"dataset": "digits", "n_train": 0, "n_test": 0, f"n_{split}": full + 1})
        with pytest.raises(
            ParameterError, match=rf"'n_{split}' is {full + 1} but the {split} set of digits has {full}"
        ):
            config.check_sizes(cfg, checks)
        whole = NS(**{"dataset": "digits", "n_train": 0, "n_test": 0, f"n_{split}": full})
        config.check_sizes(whole, checks)
        assert getattr(whole, f"n_{split}") == 0  # the whole split is asked for as 0
    config.check_sizes(NS(dataset="digits", n_train=50, n_test=50), checks)  # 5 per class of 10: enough
    with pytest.raises(ParameterError, match=r"'n_test' gives a test set of 49 points; .* at least 50"):
        config.check_sizes(NS(dataset="digits", n_train=50, n_test=49), checks)


def test_min_and_max_bound_every_item():
    spec = {"k": Param(int, 3, min=2, max=5), "ws": Param((list, int), [4], min=1, max=8)}
    assert resolve(spec).k == 3 and resolve(spec, k=2).k == 2 and resolve(spec, k=5).k == 5
    with pytest.raises(ParameterError, match=r"parameter 'k' must be >= 2, got 1"):
        resolve(spec, k=1)
    with pytest.raises(ParameterError, match=r"parameter 'k' must be <= 5, got 6"):
        resolve(spec, k=6)
    with pytest.raises(ParameterError, match=r"parameter 'ws' must be >= 1, got 0"):
        resolve(spec, ws=[3, 0])
    with pytest.raises(ParameterError, match=r"parameter 'ws' must be <= 8, got 9"):
        resolve(spec, ws=[9])


def test_resolve_writes_the_device_and_thread_count_for_a_sweep(monkeypatch, tmp_path):
    monkeypatch.setenv(config.RUN_INFO_ENV, str(tmp_path / "info.json"))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        resolve(SPEC, device="cpu")
        assert json.loads((tmp_path / "info.json").read_text()) == {"device": "cpu", "threads": 1}
    finally:
        torch.set_num_threads(before)


def test_chapter_bounds_and_checks_stop_bad_values_in_resolve():
    for module, kw, match in (
        (toolkit, {"pgd_steps": 100_000_000}, r"'pgd_steps' must be <= 10000"),
        (toolkit, {"lr": 1e6}, r"'lr' must be <= 1, got"),
        (ch03, {"n_attack": 100_000}, r"'n_attack' is 100000 but the test set of digits has 450 points"),
        (ch04, {"lr": 1000}, r"'lr' must be <= 10"),
        (ch04, {"lr": 5.0, "sweep_weight_decay": [0.0, 0.3]}, r"parameter 'lr' \(5.0\) times the largest"),
        (ch04, {"k": 64}, r"'k' must be < d"),
        (ch01, {"n_train": 3}, r"'n_train' gives a train set of 3 points"),
        (ch01, {"n_train": 1}, r"'n_train' gives a train set of 1 points"),
        (
            ch01,
            {"alpha_window": [11, 500], "widths": [512] * 3, "width_grid": [512]},
            r"'alpha_window' ends at rank 500 but the test set has only 450 points",
        ),
    ):
        with pytest.raises(ParameterError, match=match):
            resolve(module.PARAMS, profile="quick", device="cpu", **kw)


# Every parameter that sets a layer's width, per chapter (chapter 4 has one width, not a list).
WIDTHS = [
    (toolkit, "widths"),
    (ch01, "widths"),
    (ch01, "width_grid"),
    (ch02, "widths"),
    (ch02, "synth_widths"),
    (ch02, "ae_widths"),
    (ch02, "ae_channels"),
    (ch03, "widths"),
    (ch03, "channels"),
    (ch03, "conv_hidden"),
    (ch04, "width"),
    (ch04, "sweep_width"),
    (ch05, "widths"),
    (ch05, "width_grid"),
    (ch05, "ae_widths"),
    (ch05, "ae_channels"),
]


@pytest.mark.parametrize("module, name", WIDTHS, ids=[f"{m.__name__.split('.')[-1]}-{n}" for m, n in WIDTHS])
def test_a_width_beyond_the_bound_is_refused_in_resolve_before_anything_is_allocated(module, name, monkeypatch):
    def no_allocation(*args, **kwargs):
        raise AssertionError("a tensor was allocated")

    for factory in ("empty", "zeros", "randn", "rand"):
        monkeypatch.setattr(torch, factory, no_allocation)
    single = module.PARAMS[name].kind is int
    text = "1000000000" if single else "[1000000000]"  # as `papermill -p widths "[1000000000]"` passes it
    with pytest.raises(ParameterError, match=rf"^parameter '{name}' must be <= {config.MAX_WIDTH}, got 1000000000$"):
        resolve(module.PARAMS, profile="quick", device="cpu", **{name: int(text) if single else text})
    assert module.PARAMS[name].max == config.MAX_WIDTH


@pytest.fixture
def offline_without_data(tmp_path, monkeypatch):
    """No file of any image dataset on disk, and no mirror reachable."""
    monkeypatch.setattr(data, "PROJECT_ROOT", tmp_path / "project")
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setattr(data, "_host_resolves", lambda host: False)
    monkeypatch.setenv("BOOK_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


@pytest.mark.parametrize("module", [toolkit, ch01, ch02, ch03, ch05], ids=lambda m: m.__name__.split(".")[-1])
def test_a_dataset_that_cannot_be_had_is_refused_in_resolve(module, offline_without_data, monkeypatch):
    with pytest.raises(ParameterError) as err:
        resolve(module.PARAMS, profile="quick", device="cpu", dataset="mnist")
    message = str(err.value)
    assert message.startswith(
        "parameter 'dataset' is 'mnist', but mnist is not on this machine and cannot be "
        "downloaded (no mirror can be reached: ossci-datasets.s3.amazonaws.com does not resolve"
    )
    assert f"\n  {offline_without_data / 'system' / 'mnist'}\n" in message and "To get them:" in message
    a_file = offline_without_data / "notes.txt"
    a_file.write_text("")
    monkeypatch.setenv("BOOK_DATA_DIR", str(a_file))
    with pytest.raises(
        ParameterError,
        match=rf"^parameter 'dataset' is 'fashion-mnist', but fashion-mnist cannot "
        rf"be looked for: BOOK_DATA_DIR is {a_file}, a file, not a folder",
    ):
        resolve(module.PARAMS, profile="quick", device="cpu", dataset="fashion-mnist")
    assert resolve(module.PARAMS, profile="quick", device="cpu").dataset == "digits"


def test_a_dataset_to_download_is_announced_and_a_cluster_is_not_asked(offline_without_data, monkeypatch, capsys):
    spec = {"dataset": Param(str, "mnist", choices=config.DATASETS)}
    # lib.sweep checks points for a cluster (check_device=False) without asking this machine for the data
    assert config.resolve_values(spec, {}, check_device=False).dataset == "mnist"
    with pytest.raises(ParameterError, match="'dataset' is 'mnist', but"):
        config.resolve_values(spec, {})
    monkeypatch.setattr(data, "_host_resolves", lambda host: True)
    assert resolve(spec, device="cpu").dataset == "mnist"
    assert capsys.readouterr().out.startswith(
        f"mnist is not on this machine: it will be downloaded into {offline_without_data / 'data' / 'mnist'}/"
    )
