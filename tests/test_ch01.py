"""Chapter 1's parameter checks and conditions (no training)."""

import numpy as np
import pandas as pd
import pytest
import torch

from lib import claims, config, data, monotonicity
from lib.chapters import ch01
from lib.chapters.ch01 import networks
from lib.chapters.ch01.claims import SHAPES, shape_row, sides_text
from lib.config import ParameterError


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
    per_method = 1 + len(cfg.epoch_grid) + len(cfg.width_grid) + len(cfg.weight_decays) + 1  # + group's settings
    assert len(conds) == 2 * per_method
    assert {c.method for c in conds} == set(ch01.METHODS)
    labels = [c.label for c in conds if c.method == "local"]
    assert len(set(labels)) == per_method
    assert all(len(c.widths) == len(cfg.widths) for c in conds)
    group = [c for c in conds if c.kind == "group"]
    assert [(c.readout_scale, c.anneal_epochs) for c in group] == [(0.01, 0), (0.01, 0)]  # the group's public code
    assert {c.kind for c in conds} - set(ch01.TRAINED) == {"epochs"}  # snapshots are the only untrained networks


def test_annealing_and_snapshots_must_fit_in_the_training():
    with pytest.raises(ParameterError, match="anneal_epochs"):
        ch01.load_data(resolve(anneal_epochs=20))
    with pytest.raises(ParameterError, match="epoch_grid"):
        ch01.load_data(resolve(epoch_grid=[1, 16]))  # 20 epochs, the last 5 annealed


def fake_fidelity(local=0.85, logistic=0.83, backprop=0.855, lo=None):
    lm = local - logistic
    return ch01.Fidelity(
        logistic,
        1e-2,
        local,
        backprop,
        [0.86, 0.85, 0.855],
        (lm, (lm - 0.01 if lo is None else lo, lm + 0.01)),
        (backprop - local, (backprop - local - 0.01, backprop - local + 0.01)),
        0.80,
        (-0.03, (-0.05, -0.01)),
    )


NAN_SPLIT = (float("nan"), (float("nan"), float("nan")), 36, 0)


def fake_table(measures, n_nets=12, method="local", kind="base", alpha=(1.9, 2.5), seed=0, noise=0.002):
    """(network, layer) rows of ``n_nets`` networks, 3 layers each; ``measures`` maps a column to f(alpha)."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, a in enumerate(np.linspace(*alpha, n_nets)):
        for layer, da in enumerate((-0.02, 0.0, 0.02), start=1):
            row = dict(method=method, kind=kind, condition=f"{kind} {k}", network=f"{method} / {kind} {k}")
            row.update(layer=layer, alpha=a + da)
            row.update({m: f(a + da) + rng.normal(0, noise) for m, f in measures.items()})
            rows.append(row)
    return pd.DataFrame(rows)


FLAT = {"clean": lambda a: 0.97, "gaussian_rel": lambda a: 0.9, "fgsm_rel": lambda a: 0.4}


def cloud_of(table, population="local"):
    return ch01.trends(resolve(n_boot=300), table, population)


def rows_of(table, fid=None, split=NAN_SPLIT):
    clouds = {p: cloud_of(table, p) for p in ch01.POPULATIONS}
    got = ch01.claims(resolve(n_boot=300), clouds, fid or fake_fidelity(), 10.0, split, 1.8)
    return {r.id.split(".", 1)[1]: r for r in got}


def test_clean_alpha_is_tested_on_trained_networks_by_network():
    """Planted null of the old test: trained networks show no trend; snapshots at low alpha are untrained."""
    trained = fake_table({**FLAT, "clean": lambda a: 0.97}, n_nets=6, noise=0.005)
    snaps = fake_table({**FLAT, "clean": lambda a: 0.1 + (a - 1.5)}, n_nets=5, kind="epochs", alpha=(1.5, 1.8))
    table = pd.concat([trained, snaps], ignore_index=True)
    old = monotonicity.trend(table.alpha, table.clean, n_boot=300, rng=0)  # all points, points resampled
    assert old.spearman_ci[0] > 0  # the old statistic "holds"
    assert rows_of(table)["clean_alpha_trained_local"].verdict != claims.HOLDS
    effect = fake_table({**FLAT, "clean": lambda a: 0.9 + 0.1 * (a - 1.9)}, noise=0.002)
    row = rows_of(effect)["clean_alpha_trained_local"]
    assert row.verdict == claims.HOLDS and row.kind == claims.PAPER and row.lo > 0


def test_gaussian_robustness_is_relative_to_clean_accuracy():
    """Planted null of the old test: noisy accuracy only repeats clean accuracy, which rises with alpha."""
    clean = lambda a: 0.8 + 0.3 * (a - 1.9)  # noqa: E731
    table = fake_table({**FLAT, "clean": clean, "gaussian": lambda a: 0.93 * clean(a), "gaussian_rel": lambda a: 0.93})
    old = monotonicity.trend(table.alpha, table.gaussian, n_boot=300, rng=0)
    assert monotonicity.direction_verdict(old, "increasing") == claims.HOLDS  # raw noisy accuracy "rises"
    assert rows_of(table)["gaussian_monotonic_trained_local"].verdict != claims.HOLDS
    rising = fake_table({**FLAT, "gaussian_rel": lambda a: 0.8 + 0.2 * (a - 1.9)})
    row = rows_of(rising)["gaussian_monotonic_trained_local"]
    assert row.verdict == claims.HOLDS and row.lo > 0
    est, lo, hi = monotonicity.shape_statistic(cloud_of(rising).trends["gaussian_rel"], "monotonic")
    assert (row.estimate, row.lo, row.hi) == (est, lo, hi)  # the recorded number is the deciding slope


def test_fgsm_no_extremum_is_inconclusive_not_refutation():
    """Planted null of the old scoring: a rise that saturates has no extremum and was scored 'does not hold'."""
    table = fake_table({**FLAT, "fgsm_rel": lambda a: 0.3 + 0.5 * min(a - 1.9, 0.1)})
    t = cloud_of(table).trends["fgsm_rel"]
    assert monotonicity.direction_verdict(t, "non-monotonic") == claims.FAILS  # the old scoring
    assert rows_of(table)["fgsm_nonmonotonic_trained_local"].verdict == claims.INCONCLUSIVE
    peak = rows_of(fake_table({**FLAT, "fgsm_rel": lambda a: 0.5 - 2 * (a - 2.2) ** 2}))
    assert peak["fgsm_nonmonotonic_trained_local"].verdict == claims.HOLDS
    assert peak["gaussian_monotonic_trained_local"].verdict != claims.HOLDS
    line = rows_of(fake_table({**FLAT, "fgsm_rel": lambda a: 0.3 + 0.2 * (a - 1.9)}))
    assert line["fgsm_nonmonotonic_trained_local"].verdict == claims.FAILS  # monotonic on both sides
    assert line["fgsm_nonmonotonic_trained_local"].lo > 0


def test_pooled_rows_are_the_books_controls_and_the_statistic_reads_its_range():
    table = pd.concat([fake_table(FLAT), fake_table(FLAT, method="backprop", seed=1)], ignore_index=True)
    rows = rows_of(table)
    assert all(rows[f"{c}_trained_pooled"].kind == claims.CONTROL for c in ("clean_alpha", *SHAPES))
    assert "12 networks, alpha 1.88-2.52" in rows["clean_alpha_trained_local"].statistic
    assert "24 networks" in rows["clean_alpha_trained_pooled"].statistic


def test_claims_on_planted_inputs_hold_fail_and_touch_the_boundary():
    table = fake_table({**FLAT, "fgsm_rel": lambda a: 0.3 + 0.2 * (a - 1.9)})
    cfg = resolve(n_boot=300)
    clouds = {p: cloud_of(table, p) for p in ch01.POPULATIONS}
    rows = ch01.claims(cfg, clouds, fake_fidelity(), 10.0, NAN_SPLIT, 1.8)
    assert [r.id for r in rows] == [d.id for d in ch01.DECLARED.values() if d.kind != claims.CHECK]
    by = {r.id.split(".", 1)[1]: r for r in rows}
    assert by["local_vs_backprop"].verdict == claims.HOLDS  # 0.005 [-0.005, 0.015] within 0.02
    assert by["fgsm_nonmonotonic_trained_local"].verdict == claims.FAILS
    assert by["smoothness_bound_trained"].verdict == claims.INCONCLUSIVE
    assert ch01.UNTESTABLE in by["smoothness_bound_trained"].value
    touching = ch01.claims(cfg, clouds, fake_fidelity(local=0.84, lo=0.0), 10.0, NAN_SPLIT, 1.8)[-1]
    assert (touching.lo, touching.verdict) == (0.0, claims.INCONCLUSIVE)  # an interval touching its threshold
    boundary = monotonicity.Trend(36, 0, (0, 0), 2, (2, 2), 0, 0.2, (0.1, 0.3), 0.05, (0.0, 0.1), "")
    row = shape_row("fgsm_nonmonotonic", "local", ch01.Cloud({"fgsm_rel": boundary}, (1.9, 2.5), 12))
    assert (row.lo, row.verdict) == (0.0, claims.INCONCLUSIVE)
    assert "(12 networks, alpha 1.90-2.50;" in row.statistic  # the population the interval resamples


def test_smoothness_bound_uses_trained_networks_only():
    """Planted null of the old test: only untrained snapshots lie below the bound, and they are less robust."""
    trained = fake_table({**FLAT, "fgsm_rel": lambda a: 0.4}, n_nets=6)
    snaps = fake_table({**FLAT, "fgsm_rel": lambda a: 0.1}, n_nets=5, kind="epochs", alpha=(1.0, 1.2))
    table = pd.concat([trained, snaps], ignore_index=True)
    below = table.alpha <= 1.25
    assert table.fgsm_rel[~below].mean() - table.fgsm_rel[below].mean() > 0.2  # what the old claim compared
    diff, ci, n_above, n_below = ch01.bound_split(resolve(n_boot=200), table, 1.25)
    assert (n_above, n_below) == (18, 0) and np.isnan(diff)
    mixed = fake_table({**FLAT, "fgsm_rel": lambda a: 0.1 + 0.3 * (a > 1.25)}, alpha=(1.0, 1.6))
    diff, ci, n_above, n_below = ch01.bound_split(resolve(n_boot=200), mixed, 1.25)
    assert n_below > 0 and ci[0] > 0.2


def test_one_readout_kind_for_both_methods():
    cfg = resolve(readout_epochs=1)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 8, generator=g) * 2 - 1, torch.arange(64) % 3
    ds = data.Dataset("toy", x, y, x, y, (8,), (-1.0, 1.0), ["a", "b", "c"])
    for method in ch01.METHODS:
        cond = networks.Condition(method, "base", [16, 16], 1)
        run = networks.with_readouts(cfg, ds, cond, networks.build(cfg, ds, method, [16, 16]))
        assert all(isinstance(r, torch.nn.Linear) for r in run.readouts)  # fitted, never the fixed B_l


def test_relative_accuracy_divides_by_the_same_readouts_clean_accuracy():
    rows = []
    for net, clean in (("a", 0.9), ("b", 0.6)):
        for eps, f in ((0.0, 1.0), (0.1, 0.5), (0.2, 0.25)):
            for attack in ("gaussian", "fgsm"):
                rows.append(dict(method="local", kind="base", condition=net, network=net, layer=1, alpha=2.0))
                rows[-1].update(r2=1, pr=1, rank=1, rms=1, class_top=1, top_accuracy=clean)
                rows[-1].update(attack=attack, eps=eps, accuracy=clean * f)
    table = ch01.pairs(resolve(), pd.DataFrame(rows)).set_index("network")
    assert table.gaussian_rel.tolist() == pytest.approx([0.375, 0.375])  # same robustness, different clean
    assert table.gaussian.tolist() == pytest.approx([0.3375, 0.225])


def test_mechanism_checks_fail_when_a_gradient_crosses_or_a_readout_moves():
    ok = torch.diag(torch.tensor([0.1, 0.2, 0.3]))
    assert [c.verdict for c in ch01.mechanism_checks(ok, True)] == [claims.HOLDS, claims.HOLDS]
    assert claims.assert_checks(ch01.mechanism_checks(ok, True)).startswith("Mechanism checks: all 2 pass")
    crossed = ok.clone()
    crossed[0, 1] = 1e-6
    with pytest.raises(claims.CheckFailed, match="no_gradient_crosses_layers"):
        claims.assert_checks(ch01.mechanism_checks(crossed, True))
    with pytest.raises(claims.CheckFailed, match="readouts_stay_fixed"):
        claims.assert_checks(ch01.mechanism_checks(ok, False))
    dead = torch.diag(torch.tensor([0.1, 0.0, 0.3]))
    assert ch01.mechanism_checks(dead, True)[0].verdict == claims.FAILS  # a block its own loss does not move


def test_claims_record_nothing_and_checks_are_declared_last(monkeypatch):
    recorded = []
    monkeypatch.setattr(claims.results, "record", lambda **kw: recorded.append(kw))
    table = fake_table(FLAT)
    rows = rows_of(table)
    assert not recorded  # building the rows records nothing; the notebook records them
    checks = ch01.mechanism_checks(torch.eye(3), True)
    ids = [r.id for r in [*rows.values(), *checks]]
    assert ids == [d.id for d in ch01.DECLARED.values()]
    assert {r.kind for r in checks} == {claims.CHECK}


def test_class_share_finds_where_the_class_means_lie():
    g = torch.Generator().manual_seed(0)
    half = torch.randn(100, 5, generator=g) * torch.tensor([10.0, 9, 8, 7, 6])
    loud = torch.cat([half, half])  # both classes have the same loud rows: equal class means there
    y = torch.cat([torch.zeros(100, dtype=torch.long), torch.ones(100, dtype=torch.long)])
    signal = (2.0 * y - 1)[:, None]
    in_top = torch.cat([loud[:, :1] + 20 * signal, loud[:, 1:]], 1)
    quiet = torch.cat([loud, 0.5 * signal], 1)  # the classes differ only along the quietest direction
    assert ch01.class_share(in_top, y, 1) > 0.9
    assert ch01.class_share(quiet, y, 5) < 0.01


def test_epoch_movement_compares_constant_and_annealed_epochs():
    cfg = resolve(epochs=6, anneal_epochs=2, epoch_grid=[1])
    hist = pd.DataFrame({"val_acc": [0.5, 0.6, 0.5, 0.6, 0.61, 0.61]})  # epochs 1..4 constant, 5..6 annealed
    cond = networks.Condition("local", "base", [8], 6)
    run = networks.Trained(cond, None, [], 1.0, 1.0, history=hist)
    group = networks.Trained(networks.Condition("local", "group", [8], 6), None, [], 1.0, 1.0, history=hist)
    mv = ch01.epoch_movement(cfg, [run, group])
    assert mv.loc["local"].tolist() == pytest.approx([0.1, 0.005, 0.005])
    assert "0.100 at the constant rate" in ch01.movement_text(mv)


def test_result_sentences_follow_the_numbers():
    cfg = resolve()
    assert "beats the raw-pixel logistic regression" in ch01.fidelity_text(cfg, fake_fidelity())
    assert "below the raw-pixel" in ch01.fidelity_text(cfg, fake_fidelity(local=0.70))
    assert "cannot be told apart" in ch01.fidelity_text(cfg, fake_fidelity(local=0.835))
    assert "(0.800) is below the raw-pixel logistic regression" in ch01.fidelity_text(cfg, fake_fidelity())
    checks = ch01.fidelity_table(cfg, fake_fidelity(local=0.70))
    assert list(checks.passes) == [False, False, True]
    table = pd.DataFrame(
        {
            "alpha": [1.5, 2.0, 1.1],
            "method": ["local"] * 3,
            "kind": ["base", "base", "width"],
            "network": ["a", "a", "b"],
            "condition": ["base", "base", "width 8"],
        }
    )
    assert ch01.bound_text(table, 1.2, 1.3).startswith("1 of the 3")
    assert "untestable" in ch01.bound_text(table, 1.05, 1.3)
    snaps = table.assign(kind=["base", "base", "epochs"])
    assert "untestable" in ch01.bound_text(snaps, 1.2, 1.3)  # a snapshot below the bound does not count


def test_headline_says_first_what_does_not_reproduce():
    table = fake_table({**FLAT, "fgsm_rel": lambda a: 0.3 + 0.2 * (a - 1.9)})
    rows = list(rows_of(table).values())
    text = ch01.headline(rows)
    assert text.startswith("Of the paper's 5 claims tested here, 1 holds, 1 does not hold and 3 are inconclusive")
    fgsm = next(r for r in rows if r.id == "ch01.fgsm_nonmonotonic_trained_local")
    assert fgsm.verdict == claims.FAILS
    assert f"\n- {fgsm.claim}: **does not hold**; {fgsm.value}." in text  # lib.claims.reproduction_lines' form
    assert text.index("Not reproduced:") < text.index(f"- {fgsm.claim}") < text.index("Reproduced:")
    assert text.index("Reproduced:") < text.index("- A deep MLP")
    undecided = [r for r in rows if r.kind == claims.PAPER and r.verdict == claims.INCONCLUSIVE]
    assert all(text.index(f"- {r.claim}") < text.index("Reproduced:") for r in undecided)  # refuted, then undecided
    assert text.index(f"- {fgsm.claim}") < min(text.index(f"- {r.claim}") for r in undecided)
    assert not [r for r in rows if r.kind != claims.PAPER and f"- {r.claim}" in text]  # the paper's claims only


def test_findings_say_what_each_populations_verdicts_rest_on():
    table = fake_table(FLAT, n_nets=6)
    clouds = {p: cloud_of(table, p) for p in ch01.POPULATIONS}
    lines = ch01.findings(clouds).splitlines()
    assert len(lines) == len(clouds)
    for line, (p, c) in zip(lines, clouds.items()):
        assert line.startswith(f"- **{ch01.POPULATIONS[p]}**: {c.n_networks} networks, 18 (network, layer) points")
        assert line.endswith(f"alpha {c.alpha_range[0]:.2f} to {c.alpha_range[1]:.2f}.")


def test_trajectory_is_described_apart_from_trained_networks():
    trained = fake_table({**FLAT, "clean": lambda a: 1.2 - 0.1 * a}, n_nets=6, kind="width")
    snaps = fake_table({**FLAT, "clean": lambda a: a - 1.0}, n_nets=5, kind="epochs", alpha=(1.5, 1.8))
    traj = ch01.trajectory(pd.concat([trained, snaps], ignore_index=True))
    assert (
        traj.loc["local", "Spearman along the trajectory"] > 0 > traj.loc["local", "Spearman across trained networks"]
    )
    assert "along the base training" in ch01.trajectory_text(traj)


def planted_trend(spearman=0.5, left=0.2, right=0.1, breakpoint=2.2):
    """A trend with planted slopes and tight intervals (no bootstrap): both sides rise, spearman CI above 0."""
    return monotonicity.Trend(
        36, spearman, (spearman - 0.1, spearman + 0.1), breakpoint, (2.0, 2.4), 0.0,
        left, (left - 0.05, left + 0.05), right, (right - 0.05, right + 0.05), "increasing",
    )  # fmt: skip


def planted_clouds():
    return {p: ch01.Cloud({m: planted_trend() for m in ch01.MEASURES}, (1.9, 2.5), 12) for p in ch01.POPULATIONS}


@pytest.mark.parametrize(
    "split, verdict, value",
    [
        ((0.05, (0.02, 0.08), 30, 6), claims.HOLDS, "0.05 [0.02, 0.08]"),  # above layers more robust
        ((-0.05, (-0.08, -0.02), 30, 6), claims.FAILS, "-0.05 [-0.08, -0.02]"),  # above layers less robust
        ((0.03, (0.0, 0.06), 30, 6), claims.INCONCLUSIVE, "0.03 [0, 0.06]"),  # the interval touches 0
        ((float("nan"), (float("nan"), float("nan")), 0, 36), claims.INCONCLUSIVE, "no layer above the bound"),
    ],
)
def test_smoothness_row_reads_the_split_and_states_the_bound(split, verdict, value):
    """Planted splits at d = 10 (bound 1 + 2/10 = 1.2): the row's verdict, value and words follow the split."""
    rows = ch01.claims(resolve(n_boot=300), planted_clouds(), fake_fidelity(), 10.0, split, 1.8)
    row = next(r for r in rows if r.id == "ch01.smoothness_bound_trained")
    assert (row.verdict, row.value) == (verdict, value)
    assert "alpha > 1 + 2/d = 1.2 (TwoNN d = 10)" in row.claim
    assert f"({split[2]} vs {split[3]};" in row.statistic


def test_untestable_smoothness_row_still_states_the_bound():
    """No trained layer below the bound (n_below = 0): inconclusive, with the bound 1 + 2/4 = 1.5 in its words."""
    rows = ch01.claims(resolve(n_boot=300), planted_clouds(), fake_fidelity(), 4.0, NAN_SPLIT, 1.8)
    row = next(r for r in rows if r.id == "ch01.smoothness_bound_trained")
    assert row.verdict == claims.INCONCLUSIVE and row.value == f"{ch01.UNTESTABLE} (lowest alpha 1.8)"
    assert "= 1.5 (TwoNN d = 4)" in row.claim and "(36 vs 0;" in row.statistic


def test_mechanism_check_value_names_the_largest_crossing_and_the_weakest_own_gradient():
    ok = torch.diag(torch.tensor([0.1, 0.2, 0.3]))
    row = ch01.mechanism_checks(ok, True)[0]
    assert (row.value, row.estimate) == ("off-block 0, own blocks >= 0.1", 0.0)
    crossed = ok.clone()
    crossed[2, 0] = -2e-6  # a negative gradient crosses: its size counts
    row = ch01.mechanism_checks(crossed, True)[0]
    assert row.value == "off-block 2e-06, own blocks >= 0.1" and row.estimate == pytest.approx(2e-6)


def test_sides_text_gives_both_slopes_to_two_digits_and_the_breakpoint():
    t = monotonicity.Trend(
        36, 0.5, (0.4, 0.6), 2.25, (2.0, 2.5), 0.0, 0.1234, (0.0567, 0.1891), -0.4321, (-0.5512, -0.3), ""
    )
    assert sides_text(t) == "left 0.12 [0.057, 0.19], right -0.43 [-0.55, -0.3] (break at alpha 2.25)"


def test_scalars_record_the_planted_numbers_under_their_names():
    """Planted inputs at d = 4 (bound 1 + 2/4 = 1.5): one layer sits on the bound and is not above it."""
    table = pd.DataFrame(
        {
            "alpha": [1.0, 1.5, 2.0, 2.5, 1.7],
            "kind": ["base", "base", "base", "width", "epochs"],
            "class_top": [0.9, 0.7, 0.8, 0.2, 0.1],  # the lowest base share is 0.7
        }
    )
    clouds = {
        "local": ch01.Cloud(
            {m: planted_trend(spearman=0.1 * k, left=k, right=-k) for k, m in enumerate(ch01.MEASURES, 1)},
            (1.9, 2.5),
            12,
        ),
        "pooled": ch01.Cloud({m: planted_trend(spearman=-0.3) for m in ch01.MEASURES}, (1.6, 2.7), 24),
    }
    trajectory = pd.DataFrame({"Spearman along the trajectory": [0.8, -0.2]}, index=["local", "backprop"])
    movement = pd.DataFrame(
        {"base_constant": [0.01, 0.02], "base_annealed": [0.003, np.nan]}, index=pd.Index(["local", "backprop"])
    )
    rec = ch01.scalars(table, fake_fidelity(), clouds, 4.0, trajectory, movement)
    assert rec["intrinsic_dimension"] == 4.0 and rec["smoothness_bound"] == 1.5
    assert rec["fraction_above_bound"] == pytest.approx(3 / 5)  # 2.0, 2.5 and 1.7 of 5 layers; 1.5 is on the bound
    assert (rec["alpha_min"], rec["alpha_max"]) == (1.0, 2.5)
    assert rec["class_share_top_min"] == 0.7  # base layers only
    assert (rec["logistic_accuracy"], rec["local_top_accuracy"], rec["backprop_top_accuracy"]) == (0.83, 0.85, 0.855)
    assert rec["backprop_best_refit_accuracy"] == 0.86
    assert (rec["group_local_top_accuracy"], rec["group_local_minus_logistic"]) == (0.80, -0.03)
    assert (rec["trained_alpha_min_local"], rec["trained_alpha_max_local"]) == (1.9, 2.5)
    assert (rec["trained_alpha_min_pooled"], rec["trained_alpha_max_pooled"]) == (1.6, 2.7)
    assert rec["spearman_fgsm_rel_local"] == pytest.approx(0.3) and rec["spearman_clean_pooled"] == -0.3
    assert (rec["slope_left_gaussian_rel_local"], rec["slope_right_gaussian_rel_local"]) == (2, -2)
    assert (rec["trajectory_spearman_local"], rec["trajectory_spearman_backprop"]) == (0.8, -0.2)
    changes = {k: v for k, v in rec.items() if k.startswith("epoch_change_")}
    assert changes == {  # the missing change (NaN) is left out
        "epoch_change_local_base_constant": 0.01,
        "epoch_change_local_base_annealed": 0.003,
        "epoch_change_backprop_base_constant": 0.02,
    }
    assert len(rec) == 12 + 4 + 3 * 6 + 2 + 3
