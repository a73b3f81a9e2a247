"""lib.evidence: the replication rule, the ledger from sweep records, declarations, staleness, forest plots,
the power table, and the recorded ledger (CI). The pooled rule itself is simulated in test_pooling.py."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lib import claims, evidence, pooling, results, sweep, verdicts
from lib.provenance import code_files, code_sha256, cpu_id

H, F, INC = claims.HOLDS, claims.FAILS, claims.INCONCLUSIVE
HEX = "ab" * 32


# ------------------------------------------------------- the old vote count (kept as a column)


@pytest.mark.parametrize(
    "shares, expected",
    [
        ([(1.0, 0.0, 5), (0.8, 0.2, 5)], evidence.HOLDS),  # >= 80% in every condition
        ([(0.0, 1.0, 5), (0.2, 0.8, 10)], evidence.FAILS),  # fails >= 80% everywhere
        ([(1.0, 0.0, 5), (0.0, 0.8, 5)], evidence.DEPENDS),  # one condition holds, one fails
        ([(1.0, 0.0, 5), (0.6, 0.4, 5)], evidence.NO_MAJORITY),  # a condition is split
        ([(0.2, 0.0, 5), (0.0, 0.2, 5)], evidence.NO_MAJORITY),  # mostly inconclusive
        ([(1.0, 0.0, 5), (0.0, 1.0, 5), (0.4, 0.4, 5)], evidence.DEPENDS),  # disagreement wins over a split
        ([(0.6, 0.4, 5)], evidence.NO_MAJORITY),  # one condition, split
        ([(1.0, 0.0, 5), (1.0, 0.0, 4)], evidence.TOO_FEW),  # a condition below 5 runs
        ([], evidence.TOO_FEW),
        ([(0.0, 0.0, 5, 1.0), (0.0, 0.0, 5, 0.8)], evidence.NOT_MEASURED),  # nothing measured anywhere
        ([(0.0, 0.0, 5, 1.0), (0.2, 0.0, 5, 0.6)], evidence.NO_MAJORITY),  # measured (inconclusively) in one
        ([(1.0, 0.0, 5), (0.0, 0.0, 5, 1.0)], evidence.NO_MAJORITY),  # holds where measured only
        ([(1.0, 0.0, 5), (0.0, 1.0, 5), (0.0, 0.0, 5, 1.0)], evidence.DEPENDS),
        ([(0.0, 0.0, 5, 1.0), (0.0, 0.0, 4, 1.0)], evidence.TOO_FEW),
    ],
)
def test_the_old_vote_count(shares, expected):
    assert evidence.replicated_verdict(shares) == expected


def test_rule_threshold_and_minimum_are_parameters():
    assert evidence.replicated_verdict([(0.79, 0.21, 5)]) == evidence.NO_MAJORITY
    assert evidence.replicated_verdict([(0.7, 0.3, 5)], threshold=0.7) == evidence.HOLDS
    assert evidence.replicated_verdict([(1.0, 0.0, 2)], min_replications=2) == evidence.HOLDS
    assert "80%" in evidence.RULE and str(evidence.MIN_REPLICATIONS) in evidence.RULE
    assert "fragile" not in evidence.RULE and "Hartung–Knapp" in evidence.RULE and evidence.NO_SESOI in evidence.RULE
    assert evidence.RULE.count(". ") == 1  # two sentences
    assert evidence.replicated_verdict([(0.0, 0.0, 5, 0.79)]) == evidence.NO_MAJORITY
    assert evidence.replicated_verdict([(0.0, 0.0, 5, 0.6)], threshold=0.6) == evidence.NOT_MEASURED
    assert evidence.NOT_MEASURED in evidence.RULE and evidence.NOT_MEASURED in evidence.REPLICATED


def test_not_measured_is_inconclusive_without_an_estimate():
    """Only an inconclusive run with no estimate measured nothing; one with an estimate was merely undecided."""
    recs = [
        record(
            f"d{s}",
            s,
            "digits",
            {
                "ch01.n": (None, None, None, INC),
                "ch01.u": (0.1, -0.2, 0.4, INC),
                "ch01.m": (None if s < 4 else 0.3, None, None, INC if s < 4 else H),
            },
        )
        for s in range(5)
    ]
    code, nb = evidence.current_hashes("01_local_errors.ipynb")  # current: no stale marks in the cells
    conditions, verdicts = evidence.aggregate(evidence.make_ledger(recs).assign(code_sha256=code, notebook_sha256=nb))
    c, v = conditions.set_index("claim_id"), verdicts.set_index("id")
    assert (c.at["ch01.n", "share_not_measured"], c.at["ch01.n", "verdict"]) == (1.0, evidence.NOT_MEASURED)
    assert (c.at["ch01.u", "share_not_measured"], c.at["ch01.u", "votes"]) == (0.0, evidence.NO_MAJORITY)
    assert c.at["ch01.u", "verdict"] == evidence.NO_SESOI  # measured, but no margin is declared to decide it
    assert (c.at["ch01.m", "share_not_measured"], c.at["ch01.m", "verdict"]) == (0.8, evidence.NOT_MEASURED)
    assert v.replicated.to_dict() == {
        "ch01.n": evidence.NOT_MEASURED,
        "ch01.u": evidence.NO_SESOI,
        "ch01.m": evidence.NOT_MEASURED,
    }
    assert json.loads(v.at["ch01.n", "by_condition"])["digits · quick"]["not_measured"] == 1.0


# --------------------------------------------------------- records -> ledger


def test_condition_labels():
    assert evidence.condition({"profile": "quick", "dataset": "digits", "seed": 3, "device": "cpu"}) == (
        "digits · quick",
        "digits",
        "quick",
    )
    label, dataset, scale = evidence.condition({"profile": "paper", "d": 256, "k": 2, "radius": 16.0, "seed": 1})
    assert (label, dataset, scale) == ("synthetic · d=256 · k=2 · radius=16.0 · paper", "synthetic", "paper")
    fashion = {"profile": "quick", "dataset": "fashion-mnist", "n_train": 8000, "widths": [64, 64], "seed": 0}
    assert evidence.condition(fashion)[0] == "fashion-mnist · n_train=8000 · widths=[64, 64] · quick"
    assert evidence.condition(fashion, varied=["widths"])[0] == "fashion-mnist · widths=[64, 64] · quick"


def test_conditions_are_what_varies_within_a_dataset():
    def rec(seed, dataset, **p):
        return {
            "notebook": "x.ipynb",
            "status": "done",
            "point": f"{dataset}{seed}{p}",
            "parameters": {"profile": "quick", "dataset": dataset, "n_train": 0, "seed": seed, **p},
            "results": {"claim:ch01.a:estimate": 1.0, "claim:ch01.a:verdict": H},
        }

    recs = [rec(s, "digits", epochs=5) for s in (0, 1)] + [
        rec(s, "fashion-mnist", n_train=8000, epochs=e) for s in (0, 1) for e in (5, 20)
    ]
    assert evidence.varied_parameters(recs) == {("x.ipynb", "digits"): [], ("x.ipynb", "fashion-mnist"): ["epochs"]}
    one_sets_lr = [
        {"notebook": "y", "parameters": {"d": 64, "seed": 0}},
        {"notebook": "y", "parameters": {"d": 64, "lr": 0.08, "seed": 0}},
    ]
    assert evidence.varied_parameters(one_sets_lr) == {("y", "synthetic"): ["lr"]}
    labels = sorted(set(evidence.make_ledger(recs).condition))
    assert labels == ["digits · quick", "fashion-mnist · epochs=20 · quick", "fashion-mnist · epochs=5 · quick"]


def provenance(**over) -> dict:
    return {
        "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "lib_sha256": HEX,
        "code_sha256": HEX,
        "notebook_sha256": HEX,
        "torch": "2.13.0",
        "device": "cpu",
        "threads": 1,
        "cpu": cpu_id(),
        "python": "3.11.2",
        "host": "box",
        "wall_s": 12.5,
        "date": "2025-01-02T03:04:05",
        **over,
    }


def record(point: str, seed: int, dataset: str, claims_: dict, status: str = "done", **prov) -> dict:
    results = {"accuracy": 0.9}
    for cid, (est, lo, hi, verdict) in claims_.items():
        results.update(
            {
                f"claim:{cid}:estimate": est,
                f"claim:{cid}:lo": lo,
                f"claim:{cid}:hi": hi,
                f"claim:{cid}:verdict": verdict,
                f"claim:{cid}:claim": f"text of {cid}",
            }
        )
    return {
        "point": point,
        "notebook": "01_local_errors.ipynb",
        "status": status,
        "error": None,
        "parameters": {"profile": "quick", "dataset": dataset, "seed": seed},
        "results": results,
        "seconds": 10.0,
        "finished": "2025-01-02T03:04:05",
        "host": "box",
        "provenance": provenance(**prov),
    }


def test_ledger_rows_carry_claims_and_provenance():
    rec = record("p0", 0, "digits", {"ch01.a": (0.5, 0.1, 0.9, H), "ch01.b": (None, None, None, INC)})
    rows = evidence.ledger_rows(rec)
    assert [r["claim_id"] for r in rows] == ["ch01.a", "ch01.b"]
    a, b = rows
    assert (a["chapter"], a["condition"], a["seed"], a["estimate"], a["verdict"]) == (
        "ch01",
        "digits · quick",
        0,
        0.5,
        H,
    )
    assert a["claim"] == "text of ch01.a" and json.loads(a["parameters"])["dataset"] == "digits"
    # rows recorded without a declaration leave its columns empty
    assert math.isnan(a["null"]) and math.isnan(a["sesoi"]) and (a["analysis_scale"], a["above"]) == ("", None)
    assert math.isnan(b["estimate"]) and math.isnan(b["hi"])
    assert all(a[k] == v for k, v in provenance().items())
    assert evidence.ledger_rows({**rec, "status": "failed"}) == []
    # Without a provenance dict the record's own host, seconds and finish time stand in; the rest stays empty.
    bare = evidence.ledger_rows({**rec, "provenance": None})[0]
    assert (bare["host"], bare["wall_s"], bare["date"], bare["git_commit"]) == (
        "box",
        10.0,
        "2025-01-02T03:04:05",
        None,
    )


def test_ledger_rows_carry_the_declaration():
    rec = record("p0", 0, "digits", {"ch01.a": (0.5, 0.1, 0.9, H)})
    rec["results"].update(
        {
            "claim:ch01.a:null": 0.0,
            "claim:ch01.a:sesoi": 0.1,
            "claim:ch01.a:scale": "fisher_z",
            "claim:ch01.a:above": False,
            "claim:ch01.a:depends": True,
        }
    )
    [row] = evidence.ledger_rows(rec)
    assert [row[k] for k in evidence.DECLARATION_FIELDS] == [0.0, 0.1, "fisher_z", False, True]
    assert list(evidence.LEDGER_COLUMNS[:8]) == ["claim_id", "chapter", "kind", *evidence.DECLARATION_FIELDS]


def hand_declarations(**sesoi: float) -> pd.DataFrame:
    """Hand-made declarations of the hand ledger's claims: null 0, above, SESOI 0.5 for ch01.a and 0.1 for ch01.b."""
    sesoi = {"ch01.a": 0.5, "ch01.b": 0.1, **sesoi}
    return evidence.declaration_table(
        claims.Declared(cid, claims.PAPER, f"text of {cid}", "a statistic", sesoi=s, why="hand-made")
        for cid, s in sesoi.items()
    )


def hand_ledger() -> pd.DataFrame:
    """ch01.a holds on digits and fails on fashion; ch01.b holds everywhere (5 seeds per dataset)."""
    recs = []
    for seed in range(5):
        recs.append(
            record(f"d{seed}", seed, "digits", {"ch01.a": (1.0 + seed, 0.5, 2.0, H), "ch01.b": (0.3, 0.1, 0.5, H)})
        )
        recs.append(
            record(
                f"f{seed}",
                seed,
                "fashion-mnist",
                {"ch01.a": (-1.0, -2.0, -0.5, F if seed else INC), "ch01.b": (0.4, 0.2, 0.6, H)},
            )
        )
    return evidence.make_ledger(recs)


def test_aggregate_pools_decides_and_keeps_the_votes():
    ledger = hand_ledger()
    assert len(ledger) == 20 and list(ledger.columns) == list(evidence.LEDGER_COLUMNS)
    conditions, verdicts = evidence.aggregate(ledger, declarations=hand_declarations())
    a_digits = conditions[(conditions.claim_id == "ch01.a") & (conditions.condition == "digits · quick")].iloc[0]
    assert (a_digits.n, a_digits.share_holds, a_digits.votes) == (5, 1.0, evidence.HOLDS)
    x = np.arange(1.0, 6.0)
    half = stats.t.ppf(0.975, 4) * x.std(ddof=1) / math.sqrt(5)
    assert (a_digits.t_lo, a_digits.t_hi) == pytest.approx((3.0 - half, 3.0 + half))
    p = pooling.pool(x, [0.5] * 5, [2.0] * 5)  # every run's own interval is 0.5-2.0
    assert (a_digits.method, a_digits.pooled, a_digits.pooled_lo, a_digits.pooled_hi) == ("HK", p.mean, p.lo, p.hi)
    assert (a_digits.tau, a_digits.i2, a_digits.seed_sd) == pytest.approx((p.tau, p.i2, x.std(ddof=1)))
    assert a_digits.verdict == evidence.HOLDS  # beyond 0 + 0.5
    a_fashion = conditions[(conditions.claim_id == "ch01.a") & (conditions.dataset == "fashion-mnist")].iloc[0]
    assert (a_fashion.share_fails, a_fashion.share_inconclusive, a_fashion.votes) == (0.8, 0.2, evidence.FAILS)
    assert (a_fashion.tau, a_fashion.verdict) == (0.0, evidence.OPPOSITE)  # identical runs, below -0.5
    v = verdicts.set_index("id")
    assert v.at["ch01.a", "replicated"] == evidence.DEPENDS and v.at["ch01.b", "replicated"] == evidence.HOLDS
    assert v.at["ch01.a", "verdicts_by_condition"] == "holds on digits · quick; opposite on fashion-mnist · quick"
    assert v.at["ch01.a", "votes"] == evidence.DEPENDS and v.at["ch01.b", "votes"] == evidence.HOLDS
    assert math.isnan(v.at["ch01.a", "pooled"])  # no estimate across conditions
    assert (v.at["ch01.a", "threshold"], v.at["ch01.a", "min_replications"], v.at["ch01.a", "level"]) == (0.8, 5, 0.95)
    assert v.at["ch01.a", "n"] == 10 and v.at["ch01.a", "conditions"] == 2 and v.at["ch01.a", "lib_sha256"] == HEX
    assert (v.at["ch01.a", "sesoi"], v.at["ch01.a", "null"], v.at["ch01.a", "above"]) == (0.5, 0.0, True)
    assert json.loads(v.at["ch01.a", "by_condition"])["fashion-mnist · quick"] == {
        "holds": 0.0,
        "fails": 0.8,
        "inconclusive": 0.2,
        "not_measured": 0.0,
        "n": 5,
        "votes": evidence.FAILS,
        "verdict": evidence.OPPOSITE,
    }
    # Undeclared, nothing is decided: the votes stay for reference
    _, undeclared = evidence.aggregate(ledger)
    assert set(undeclared.replicated) == {evidence.NO_SESOI} and list(undeclared.votes) == list(v.votes)
    # A run's recorded declaration wins over claims.csv; a condition without a usable null is not decided
    recorded = ledger.assign(sesoi=np.where(ledger.claim_id == "ch01.b", 5.0, np.nan))
    _, wide = evidence.aggregate(recorded, declarations=hand_declarations())
    assert wide.set_index("id").at["ch01.b", "replicated"] == evidence.NO_EFFECT
    no_null = hand_declarations().assign(null=np.nan)
    assert set(evidence.aggregate(ledger, declarations=no_null)[1].replicated) == {evidence.NO_NULL}


def test_declarations_file(tmp_path, monkeypatch, capsys):
    table = hand_declarations()
    path = evidence.write_declarations(tmp_path, table)
    assert path == tmp_path / evidence.DECLARATIONS
    back = evidence.read_declarations(tmp_path)
    assert list(back.columns) == list(evidence.DECLARATION_COLUMNS)
    assert evidence.declarations_csv(back) == evidence.declarations_csv(table) == path.read_text()
    assert evidence.declarations_by_id(back)["ch01.a"] == {
        "null": 0.0,
        "sesoi": 0.5,
        "scale": "identity",
        "above": True,
        "depends": True,
        "statistic": "a statistic",
    }
    assert evidence.read_declarations(tmp_path / "none") is None
    monkeypatch.setattr(evidence, "chapter_declarations", lambda: table.assign(sesoi=[0.5, np.nan]))
    assert evidence.main(["declarations", "--out", str(tmp_path)]) == 0
    assert "2 claims, 1 without a SESOI" in capsys.readouterr().out
    # write() decides with the declarations in its folder, and check recomputes with them
    evidence.write_declarations(tmp_path, table)
    evidence.write(hand_ledger(), tmp_path)
    assert evidence.read(evidence.VERDICTS, tmp_path).replicated.tolist() == [evidence.DEPENDS, evidence.HOLDS]
    assert evidence.check_tables(tmp_path) == []
    evidence.write_declarations(tmp_path, hand_declarations(**{"ch01.b": 1.0}))  # a SESOI moved afterwards
    assert "verdicts.csv: ch01.b replicated reads 'holds'" in "\n".join(evidence.check_tables(tmp_path))


def test_the_committed_declarations_are_the_chapters():
    """evidence/claims.csv is what the chapters declare; until any claim declares a SESOI it need not exist."""
    declared = evidence.chapter_declarations()
    assert declared.id.is_unique and set(declared.scale) <= set(claims.SCALES)
    committed = claims.EVIDENCE_DIR / evidence.DECLARATIONS
    if not committed.exists():
        assert declared.sesoi.isna().all(), (
            f"claims declare SESOIs but {committed} is not written: run `python -m lib.evidence declarations`"
        )
        return
    assert committed.read_text() == evidence.declarations_csv(declared), (
        f"{committed} differs from the chapters' declarations: run `python -m lib.evidence declarations`"
    )


def test_a_ledger_without_the_declaration_columns_gets_them_empty(tmp_path):
    old = hand_ledger().drop(columns=list(evidence.DECLARATION_FIELDS))
    evidence.write(old, tmp_path)
    back = evidence.read(evidence.LEDGER, tmp_path)
    assert list(back.columns) == list(evidence.LEDGER_COLUMNS)
    assert back[list(evidence.DECLARATION_FIELDS)].isna().all().all() and evidence.check_tables(tmp_path) == []


def test_forest_plot_is_readable(tmp_path):
    from matplotlib.text import Text

    evidence.write_declarations(tmp_path, hand_declarations())
    evidence.write(hand_ledger(), tmp_path)
    fig = evidence.forest("ch01.a", tmp_path)
    ax = fig.axes[0]
    fig.canvas.draw()
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    assert texts and min(t.get_fontsize() for t in texts) >= evidence.FOREST_FONT
    labels = [t.get_text() for t in ax.texts]  # each condition named with its verdict, the common "quick" left out
    assert labels == ["digits: holds", "fashion-mnist: opposite"]
    assert ax.get_title(loc="left") == "ch01.a\ndepends on the data" and ax.get_xlabel() == "a statistic"
    diamonds = [line for line in ax.lines if line.get_marker() == "D"]
    pooled = evidence.read(evidence.CONDITIONS, tmp_path).query("claim_id == 'ch01.a'").pooled
    assert [d.get_xdata()[0] for d in diamonds] == pytest.approx(list(pooled))  # one per condition, at its estimate
    assert sum(line.get_marker() == "o" for line in ax.lines) == 10  # every run
    assert any(t.get_text() == "null ± SESOI" for t in fig.legends[0].get_texts())
    assert fig.get_size_inches()[0] <= 6.5
    with pytest.raises(evidence.EvidenceError, match="not in the ledger"):
        evidence.forest("ch01.zz", tmp_path)
    import matplotlib.pyplot as plt

    plt.close("all")


def test_forests_put_claims_in_panels_at_most_three_a_row(tmp_path):
    import matplotlib.pyplot as plt

    evidence.write_declarations(tmp_path, hand_declarations())
    evidence.write(hand_ledger(), tmp_path)
    fig = evidence.forests(["ch01.a", "ch01.b", "ch01.a"], tmp_path, per_row=3, title="two claims")
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(shown) == 2 and fig.get_suptitle() == "two claims"  # a claim named twice is drawn once
    assert [ax.get_title(loc="left").split("\n")[0] for ax in shown] == ["ch01.a", "ch01.b"]
    fig = evidence.forests(["ch01.a", "ch01.b"], tmp_path, per_row=1)
    assert len(fig.axes) == 2 and fig.axes[0].get_position().y0 > fig.axes[1].get_position().y1  # one a row
    for bad in (0, 4):
        with pytest.raises(ValueError, match="per_row must be 1 to 3"):
            evidence.forests(["ch01.a"], tmp_path, per_row=bad)
    with pytest.raises(evidence.EvidenceError, match="at least one claim"):
        evidence.forests([], tmp_path)
    plt.close("all")


def test_short_condition_labels_and_statistics():
    assert evidence.short_conditions(["digits · quick", "fashion-mnist · quick"]) == {
        "digits · quick": "digits",
        "fashion-mnist · quick": "fashion-mnist",
    }
    four = ["synthetic · d=64 · k=2 · quick", "synthetic · d=64 · k=8 · quick", "synthetic · d=256 · k=2 · quick"]
    assert list(evidence.short_conditions(four).values()) == ["d=64 · k=2", "d=64 · k=8", "d=256 · k=2"]
    assert evidence.short_conditions(["digits · quick"]) == {"digits · quick": "digits · quick"}
    base, wider = "synthetic · d=64 · quick", "synthetic · d=64 · width=256 · quick"
    assert evidence.short_conditions([base, wider]) == {base: base, wider: "width=256"}
    assert evidence.short_statistic("Spearman(alpha, accuracy) over {n} networks; estimate: rho") == (
        "Spearman(alpha, accuracy) over … networks"
    )
    assert evidence.short_statistic("test accuracy, local minus pixels (paired bootstrap)") == (
        "test accuracy, local minus pixels"
    )
    assert len(evidence.short_statistic("x" * 200)) == 70


def test_power_table_from_the_recorded_spreads():
    conditions, _ = evidence.aggregate(hand_ledger(), declarations=hand_declarations())
    table = evidence.power_table(conditions)
    assert len(table) == 4
    row = table.loc[("ch01.a", "digits · quick")]
    sd = np.arange(1.0, 6.0).std(ddof=1)
    assert row["seed SD"] == pytest.approx(sd) and row["SESOI"] == 0.5
    assert row["seeds to detect"] == pooling.seeds_needed(sd, 0.5)
    assert row["seeds for no effect"] == pooling.seeds_needed(sd, 0.5, equivalence=True)
    assert evidence.power_table(evidence.aggregate(hand_ledger())[0]).empty  # no SESOI, no power


def test_readme_block_states_the_rule_and_the_seeds_each_condition_needs(tmp_path, capsys):
    evidence.write_declarations(tmp_path, hand_declarations())
    evidence.write(hand_ledger(), tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{evidence.README_START}\nold text\n{evidence.README_END}\nafter\n")
    assert evidence.main(["readme", "--out", str(tmp_path), "--readme", str(readme)]) == 0
    assert "evidence block rewritten" in capsys.readouterr().out
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n") and text.endswith(f"{evidence.README_END}\nafter\n")
    assert "old text" not in text and evidence.RULE in text
    table = evidence.power_table(evidence.read(evidence.CONDITIONS, tmp_path))
    a = table.loc["ch01.a"]
    cells = ", ".join(f"{c.split(' · ')[0]} {int(a.at[c, 'seeds to detect'])}" for c in a.index)
    assert f"| `ch01.a` | 0.5 | {cells} |" in text  # digits and fashion-mnist, "quick" left out
    assert "Of the 4 claim-conditions with a declared SESOI and estimates, the 5 seeds recorded" in text
    assert not evidence.write_readme(readme, tmp_path)  # written again: the same
    readme.write_text("no markers\n")
    assert evidence.main(["readme", "--out", str(tmp_path), "--readme", str(readme)]) == 2
    assert "must hold the lines" in capsys.readouterr().err and readme.read_text() == "no markers\n"
    assert "no table of seeds" in evidence.readme_block(tmp_path / "none")


def test_mixed_code_hashes_are_not_one_hash():
    recs = [
        record(f"p{s}", s, "digits", {"ch01.a": (1.0, 0.5, 2.0, H)}, code_sha256=h)
        for s, h in enumerate([HEX] * 4 + ["cd" * 32])
    ]
    _, verdicts = evidence.aggregate(evidence.make_ledger(recs))
    assert verdicts.code_sha256.iloc[0] == "mixed:2" and verdicts.notebook_sha256.iloc[0] == HEX
    now = (HEX, HEX)
    assert evidence.is_stale("mixed:2", HEX, now) and not evidence.is_stale(HEX, HEX, now)
    assert evidence.is_stale(math.nan, HEX, now) and evidence.is_stale(HEX, "cd" * 32, now)
    assert evidence.is_stale(HEX, HEX, ("", ""))  # the chapter's notebook is gone


def test_mean_interval_edge_cases():
    assert all(math.isnan(v) for v in evidence.mean_interval([]))
    m, lo, hi = evidence.mean_interval([2.0, math.nan])
    assert m == 2.0 and math.isnan(lo) and math.isnan(hi)


def test_mean_interval_is_the_t_interval_at_its_level():
    """1, 2, 3: mean 2, SD 1, so the half-width is t(df=2) / sqrt(3) at the level asked for."""
    for level in (0.95, 0.5):
        half = stats.t.ppf(0.5 + level / 2, 2) / math.sqrt(3)
        assert evidence.mean_interval([1.0, 2.0, 3.0], level) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert evidence.mean_interval([1.0, 2.0, 3.0])[1] == pytest.approx(2.0 - 4.302653 / math.sqrt(3))  # 95%


def test_condition_null_is_the_one_recorded_else_the_default():
    assert evidence.condition_null(pd.DataFrame({"estimate": [1.0, 2.0]}), 0.5) == 0.5  # no null column
    assert evidence.condition_null(pd.DataFrame({"null": ["", None]}), 0.5) == 0.5  # none recorded
    assert evidence.condition_null(pd.DataFrame({"null": ["1.0", "", 1.0]}), 0.5) == 1.0
    assert math.isnan(evidence.condition_null(pd.DataFrame({"null": [1.0, 2.0]}), 0.5))  # several: no one null


def five_runs(*estimates: float) -> pd.DataFrame:
    """Runs with an estimate and no interval of their own (pooled by the t interval)."""
    return pd.DataFrame({"estimate": estimates, "lo": math.nan, "hi": math.nan})


def test_judge_pools_at_the_level_asked_for():
    """1..5: mean 3, SD sqrt(2.5). At 95% the t interval (3 -+ 1.96) reaches inside null 0 +- SESOI 1.5 (weak);
    at 50% (3 -+ 0.52) it lies beyond the band (holds)."""
    rows, decl = five_runs(1.0, 2.0, 3.0, 4.0, 5.0), {"scale": claims.IDENTITY, "sesoi": 1.5, "above": True}
    se = math.sqrt(2.5) / math.sqrt(5)
    p, verdict = evidence.judge(rows, decl, 0.0)
    assert (p.lo, p.hi) == pytest.approx((3 - stats.t.ppf(0.975, 4) * se, 3 + stats.t.ppf(0.975, 4) * se))
    assert verdict == evidence.WEAK
    p, verdict = evidence.judge(rows, decl, 0.0, level=0.5)
    assert (p.lo, p.hi) == pytest.approx((3 - stats.t.ppf(0.75, 4) * se, 3 + stats.t.ppf(0.75, 4) * se))
    assert verdict == evidence.HOLDS


@pytest.mark.parametrize("null, usable", [(0.0, True), (0.99, True), (-0.99, True), (1.0, False), (-1.0, False)])
def test_a_correlation_null_must_lie_inside_minus_one_to_one(null, usable):
    """On Fisher's z a null of +-1 has no finite z: the claim gets "no null declared"; just inside it is judged."""
    rows = five_runs(0.3, 0.4, 0.5, 0.4, 0.3)
    _, verdict = evidence.judge(rows, {"scale": claims.FISHER_Z, "sesoi": 0.005, "above": True}, null)
    assert (verdict != evidence.NO_NULL) == usable


def test_write_read_round_trip_and_check(tmp_path):
    ledger = hand_ledger()
    ledger.loc[0, "estimate"] = 0.1 + 0.2  # a float whose shortest repr has 17 digits
    evidence.write(ledger, tmp_path)
    back = evidence.read(evidence.LEDGER, tmp_path)
    assert back.estimate.iloc[0] == 0.1 + 0.2
    assert evidence.check_ledger(back) == []
    assert evidence.read(evidence.LEDGER, tmp_path / "none") is None


def test_check_ledger_finds_schema_and_provenance_problems():
    ledger = hand_ledger()
    assert evidence.check_ledger(ledger.drop(columns=["torch"]))[0].startswith("ledger lacks column(s): torch")
    bad = ledger.copy()
    bad.loc[0, "verdict"] = "probably"
    bad.loc[1, "git_commit"] = None
    bad.loc[2, "lib_sha256"] = "not-a-hash"
    bad.loc[3, "wall_s"] = -1.0
    problems = "\n".join(evidence.check_ledger(bad))
    for part in ("'probably'", "'git_commit' is missing on 1 of 20", "'lib_sha256' is not a hex digest", "wall_s"):
        assert part in problems
    assert evidence.check_ledger(ledger.iloc[:0]) == ["the ledger has no rows"]


# ------------------------------------------------- claims tables and the page


def write_verdicts(folder: Path, current: bool) -> None:
    """Verdicts of chapter 1 recorded with its code as it is now (``current``) or with other code."""
    code, nb = evidence.current_hashes("01_local_errors.ipynb") if current else (HEX, HEX)
    evidence.write_declarations(folder, hand_declarations())
    evidence.write(hand_ledger().assign(code_sha256=code, notebook_sha256=nb), folder)


def rows() -> list[claims.Claim]:
    return [
        claims.Claim("a claim", "s", "1", H, id="ch01.a", estimate=1.0, lo=0.5, hi=2.0),
        claims.Claim("another", "s", "1", H, id="ch01.c", estimate=1.0, lo=0.5, hi=2.0),
    ]


def test_claims_table_shows_replicated_verdicts(tmp_path, monkeypatch):
    monkeypatch.setattr(claims, "VERDICTS_FILE", tmp_path / evidence.VERDICTS)
    assert list(claims.table(rows(), chapter="ch01")["replicated verdict"]) == [claims.NOT_REPLICATED] * 2
    write_verdicts(tmp_path, current=True)
    t = claims.table(rows(), chapter="ch01")
    assert list(t["replicated verdict"]) == [evidence.DEPENDS, claims.NOT_REPLICATED]
    assert "Stale" not in t._repr_html_()


def test_replicated_for_one_chapter_hashes_only_its_code(tmp_path, monkeypatch):
    """A chapter's table reads its own rows of verdicts.csv, and only its notebook's code is hashed."""
    write_verdicts(tmp_path, current=True)
    path = tmp_path / evidence.VERDICTS
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    other = table.iloc[:1].assign(id="ch03.other", notebook="03_som_codes.ipynb")  # another chapter's claim
    pd.concat([table, other]).to_csv(path, index=False)
    every = verdicts.replicated(path)
    assert "ch03.other" in every.index
    hashed = []
    real = verdicts.current_hashes
    monkeypatch.setattr(verdicts, "current_hashes", lambda nb, *a: hashed.append(nb) or real(nb, *a))
    mine = verdicts.replicated(path, chapter="ch01")
    assert list(mine.index) == [i for i in every.index if i.startswith("ch01.")] and len(mine) >= 1
    assert mine.equals(every.loc[mine.index])
    assert set(hashed) == {"01_local_errors.ipynb"}
    assert verdicts.replicated(path, chapter="ch09").empty


def test_no_ledger_reads_as_an_empty_table_of_the_same_shape(tmp_path):
    """Without verdicts.csv the table is empty but has the columns and index a chapter's table reads."""
    empty = verdicts.replicated(tmp_path / "none.csv")
    assert empty.empty and list(empty.columns) == ["replicated", "stale"] and empty.index.name == "id"
    assert verdicts.current_hashes("gone.ipynb", tmp_path) == ("", "")  # no notebook there: nothing to hash


def test_a_ledger_without_code_hashes_is_stale_throughout(tmp_path):
    """A verdicts.csv from before the hashes were recorded cannot be current: every row is stale."""
    old = pd.DataFrame({"id": ["ch01.a", "ch01.b"], "replicated": [H, F]})
    assert verdicts.stale_column(old.set_index("id")) == [True, True]
    old.to_csv(tmp_path / "verdicts.csv", index=False)
    assert verdicts.replicated(tmp_path / "verdicts.csv").stale.tolist() == [True, True]
    assert verdicts.stale_column(old.iloc[:0]) == []


def test_an_empty_code_hash_is_never_current():
    """Evidence matches ``current`` only when the code could be hashed: an empty code hash (no notebook,
    no code to hash) is stale even when the recorded pair equals it; the same non-empty pair is current."""
    assert verdicts.is_stale("", HEX, ("", HEX))
    assert verdicts.is_stale("", "", ("", ""))
    assert not verdicts.is_stale(HEX, "cd" * 32, (HEX, "cd" * 32))


def test_hashes_that_read_as_numbers_stay_text(tmp_path, monkeypatch):
    """The ledger is read as text: a hex digest made only of decimal digits is still that digest, so
    evidence recorded with it is current when the code hashes to it now (and stale when it does not)."""
    digits, other = "20240101" * 8, "0123456789" * 6 + "0123"
    pd.DataFrame(
        {
            "id": ["ch01.a"],
            "replicated": [H],
            "notebook": ["01_local_errors.ipynb"],
            "code_sha256": [digits],
            "notebook_sha256": [other],
        }
    ).to_csv(tmp_path / "verdicts.csv", index=False)
    monkeypatch.setattr(verdicts, "current_hashes", lambda nb, *a: (digits, other))
    table = verdicts.replicated(tmp_path / "verdicts.csv")
    assert table.at["ch01.a", "code_sha256"] == digits and table.stale.tolist() == [False]
    monkeypatch.setattr(verdicts, "current_hashes", lambda nb, *a: (digits, HEX))
    assert verdicts.replicated(tmp_path / "verdicts.csv").stale.tolist() == [True]


def test_stale_evidence_is_marked_in_the_cell_and_above_the_table(tmp_path, monkeypatch):
    monkeypatch.setattr(claims, "VERDICTS_FILE", tmp_path / evidence.VERDICTS)
    write_verdicts(tmp_path, current=False)  # other code than chapter 1 has now
    t = claims.table(rows(), chapter="ch01")
    assert t["replicated verdict"].iloc[0] == f"{evidence.DEPENDS} ({evidence.STALE})"
    assert claims.STALE_WARNING in repr(t) and "Stale evidence" in t._repr_html_()


def test_record_stores_the_claim_text():
    claims.table(rows(), chapter="ch01")
    assert results.RECORDED["claim:ch01.a:claim"] == "a claim"
    assert results.RECORDED["claim:ch01.a:verdict"] == H
    assert (results.RECORDED["claim:ch01.a:rank"], results.RECORDED["claim:ch01.c:rank"]) == (1, 2)


def test_ledger_keeps_the_chapter_table_order():
    rec = record(
        "p0",
        0,
        "digits",
        {
            "ch01.z_first": (1.0, 0.5, 2.0, H),
            "ch01.a_second": (1.0, 0.5, 2.0, H),
            "ch01.b_unranked": (1.0, 0.5, 2.0, H),
        },
    )
    rec["results"].update({"claim:ch01.z_first:rank": 1, "claim:ch01.a_second:rank": 2})
    assert list(evidence.make_ledger([rec]).claim_id) == ["ch01.z_first", "ch01.a_second", "ch01.b_unranked"]


def test_page_summary_without_and_with_a_ledger(tmp_path):
    assert "No evidence is recorded yet" in evidence.summary(tmp_path)
    write_verdicts(tmp_path, current=False)
    text = evidence.summary(tmp_path)
    assert "Stale evidence" in text and "ch01 was recorded" in text and "2 claims" in text
    assert "1 holds, 1 depends on the data" in text
    assert evidence.provenance_table(tmp_path).at["code", "value"] == "stale: ch01 (code or notebook changed)"
    write_verdicts(tmp_path, current=True)
    assert "Stale" not in evidence.summary(tmp_path)
    assert evidence.provenance_table(tmp_path).at["code", "value"] == "every chapter current"
    empty = tmp_path / "none"
    assert evidence.provenance_table(empty) is None


def test_lib_and_notebook_hashes(tmp_path):
    (tmp_path / "lib" / "sub").mkdir(parents=True)
    (tmp_path / "lib" / "a.py").write_text("x = 1\n")
    (tmp_path / "lib" / "sub" / "b.py").write_text("y = 2\n")
    first = evidence.lib_sha256(tmp_path)
    (tmp_path / "lib" / "notes.txt").write_text("not code")
    assert evidence.lib_sha256(tmp_path) == first and len(first) == 64
    (tmp_path / "lib" / "sub" / "b.py").write_text("y = 3\n")
    assert evidence.lib_sha256(tmp_path) != first
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nbformat.write(nb, str(tmp_path / "n.ipynb"))
    before = evidence.notebook_sha256(tmp_path / "n.ipynb")
    nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)]
    nbformat.write(nb, str(tmp_path / "n.ipynb"))
    assert evidence.notebook_sha256(tmp_path / "n.ipynb") == before  # outputs do not count
    nb.cells[0].source = "1 + 2"
    nbformat.write(nb, str(tmp_path / "n.ipynb"))
    assert evidence.notebook_sha256(tmp_path / "n.ipynb") != before


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_a_chapter_goes_stale_only_when_code_it_executes_changes(tmp_path):
    shutil.copytree(sweep.ROOT / "lib", tmp_path / "lib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        sweep.ROOT / "book", tmp_path / "book", ignore=shutil.ignore_patterns("_build", "*.ipynb_checkpoints")
    )
    ch02, ch04 = tmp_path / "book" / "02_dimpled_manifold.ipynb", tmp_path / "book" / "04_two_layer_subspace.ipynb"
    files = {p.relative_to(tmp_path).as_posix() for p in code_files(ch02, tmp_path)}
    assert {"lib/chapters/ch02/claims.py", "lib/manifold.py", "lib/claims.py"} <= files
    assert "lib/chapters/ch02/figures.py" not in files and "lib/plots.py" not in files
    # the pages' layout of the ledger (imported by the notebook for its verdict box) is presentation too
    assert "lib/pages.py" not in files
    assert not any(f.startswith(("lib/chapters/ch01", "lib/chapters/ch04", "lib/sweep", "lib/evidence")) for f in files)
    before = {nb: code_sha256(nb, tmp_path) for nb in (ch02, ch04)}
    claims_py = tmp_path / "lib" / "chapters" / "ch02" / "claims.py"
    _edit(claims_py, "MIN_SLOPE = 0.01", "# a comment a reader added\nMIN_SLOPE  =  0.01")  # comment, layout
    _edit(
        claims_py,
        '"""',
        '"""A docstring reworded. ',
    )  # the module's docstring
    _edit(tmp_path / "lib" / "chapters" / "ch02" / "figures.py", 'color="0.5", lw=0.8', 'color="0.3", lw=0.8')
    _edit(tmp_path / "lib" / "plots.py", "def ", "def _unused_helper():\n    return 1\n\n\ndef ")
    _edit(tmp_path / "lib" / "pages.py", "def ", "def _a_layout_helper():\n    return 3\n\n\ndef ")
    _edit(tmp_path / "lib" / "evidence.py", "def ", "def _a_ledger_helper():\n    return 4\n\n\ndef ")
    assert {nb: code_sha256(nb, tmp_path) for nb in (ch02, ch04)} == before  # still current
    _edit(claims_py, "MIN_SLOPE  =  0.01", "MIN_SLOPE  =  0.02")  # a constant a claim uses
    after = {nb: code_sha256(nb, tmp_path) for nb in (ch02, ch04)}
    assert after[ch02] != before[ch02] and after[ch04] == before[ch04]  # chapter 2 alone goes stale
    _edit(tmp_path / "lib" / "attacks.py", "def ", "def added():\n    return 2\n\n\ndef ")  # shared code
    assert all(code_sha256(nb, tmp_path) != after[nb] for nb in (ch02, ch04))


# -------------------------------------- end to end: a tiny chapter swept, ledger, re-run

PARAMETERS = 'dataset = "a"\nseed = 0\n'
BODY = """\
import numpy as np
from lib import claims, config
cfg = config.resolve({}, seed=seed)  # as a chapter does: seeds, picks the device, tells lib.sweep which
x = np.random.default_rng(seed).normal({"a": 1.0, "b": -1.0}[dataset], 1.0, 40)
m, h = float(x.mean()), float(2 * x.std() / np.sqrt(len(x)))
rows = [claims.Claim("the mean is positive", "mean", claims.fmt(m, (m - h, m + h)), claims.by_interval(m - h, m + h),
                     id="ch09.positive_mean", estimate=m, lo=m - h, hi=m + h)]
claims.table(rows, chapter="ch09")
"""


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("evidence")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(BODY),
    ]
    (root / "book").mkdir()
    nbformat.write(nb, str(root / "book" / "09_tiny.ipynb"))
    spec = root / "ch09.yaml"
    spec.write_text(
        f"notebook: {root / 'book' / '09_tiny.ipynb'}\noutput: {root / 'out'}\ngrid: {{dataset: [a, b]}}\nseeds: [0]\n"
    )
    summary = sweep.run(sweep.load_spec(spec), progress=False)
    assert summary.done == 2
    rec = json.loads(next((root / "out" / "points").glob("*.json")).read_text())
    assert rec["provenance"]["device"] and rec["provenance"]["lib_sha256"] == evidence.lib_sha256()
    stray = dict(rec, point="0000000000000000")  # a point of an older version of the spec
    (root / "out" / "points" / "0000000000000000.json").write_text(json.dumps(stray))
    return {"root": root, "spec": spec}


def test_build_from_sweep_records(tiny_sweep):
    out = tiny_sweep["root"] / "ledger"
    ledger, missing = evidence.build([tiny_sweep["spec"]], out, min_replications=1)
    assert missing == [] and len(ledger) == 2  # exactly the spec's points: the stray one is left out
    assert set(ledger.point) == set(evidence.spec_points([tiny_sweep["spec"]]))
    assert sorted(ledger.condition.unique()) == ["a · quick", "b · quick"]
    assert set(ledger.verdict) == {H, F}
    verdicts = evidence.read(evidence.VERDICTS, out)
    assert verdicts.replicated.tolist() == [evidence.NO_SESOI] and verdicts.claim.tolist() == ["the mean is positive"]
    assert verdicts.votes.tolist() == [evidence.DEPENDS]
    assert evidence.check_ledger(evidence.read(evidence.LEDGER, out)) == []
    assert evidence.main(["check", "--out", str(out)]) == 0
    # declared, one run per condition still decides nothing: one seed gives no interval across seeds
    decl = claims.Declared("ch09.positive_mean", claims.CONTROL, "the mean is positive", "mean", sesoi=0.1)
    evidence.write_declarations(out, evidence.declaration_table([decl]))
    evidence.build([tiny_sweep["spec"]], out, min_replications=1)
    verdicts = evidence.read(evidence.VERDICTS, out)
    assert verdicts.replicated.tolist() == [evidence.INCONCLUSIVE]
    assert verdicts.verdicts_by_condition.tolist() == ["inconclusive on a · quick, b · quick"]
    assert evidence.main(["check", "--out", str(out)]) == 0


def test_build_reports_points_not_run(tiny_sweep, tmp_path):
    spec = tmp_path / "more.yaml"
    spec.write_text(tiny_sweep["spec"].read_text().replace("seeds: [0]", "seeds: [0, 1]"))
    with pytest.raises(evidence.EvidenceError, match="2 of 4 runs of the specs have not finished"):
        evidence.build([spec], tmp_path / "ledger")
    assert not (tmp_path / "ledger" / evidence.LEDGER).exists()
    ledger, missing = evidence.build([spec], tmp_path / "ledger", partial=True)
    assert len(ledger) == 2 and [m["status"] for m in missing] == ["not run", "not run"]
    assert evidence.read(evidence.VERDICTS, tmp_path / "ledger").replicated.tolist() == [evidence.TOO_FEW]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_build_never_replaces_a_ledger_with_fewer_runs(tiny_sweep, tmp_path, capsys):
    out = tmp_path / "ledger"
    evidence.build([tiny_sweep["spec"]], out, min_replications=1)
    before = _files(out)
    assert set(before) == {evidence.LEDGER, evidence.CONDITIONS, evidence.VERDICTS}
    # A clone without the sweep's results: nothing finished. The documented rebuild refuses, files untouched.
    empty = tmp_path / "empty.yaml"
    empty.write_text(tiny_sweep["spec"].read_text().replace(str(tiny_sweep["root"] / "out"), str(tmp_path / "none")))
    assert evidence.main(["build", str(empty), "--out", str(out)]) == 2
    assert "nothing to build" in capsys.readouterr().err and _files(out) == before
    # Some runs failed or never ran (a dataset missing, say): refused too, unless --partial.
    more = tmp_path / "more.yaml"
    more.write_text(tiny_sweep["spec"].read_text().replace("seeds: [0]", "seeds: [0, 1]"))
    assert evidence.main(["build", str(more), "--out", str(out)]) == 2
    assert "have not finished" in capsys.readouterr().err and _files(out) == before
    # A spec that no longer holds a recorded run would drop it: refused, and --partial says what it drops.
    one = tmp_path / "one.yaml"
    one.write_text(tiny_sweep["spec"].read_text().replace("grid: {dataset: [a, b]}", "grid: {dataset: [a]}"))
    with pytest.raises(evidence.EvidenceError, match="it would drop 1 of the 2 runs recorded"):
        evidence.build([one], out)
    assert _files(out) == before
    _, missing = evidence.build([one], out, partial=True, min_replications=1)
    assert [m["status"] for m in missing] == ["dropped from the ledger"]
    assert missing[0]["parameters"]["condition"] == "b · quick" and missing[0]["spec"] == "recorded before"
    assert evidence.read(evidence.LEDGER, out).point.nunique() == 1
    # A run recorded with parameters the spec has since changed (a new point, same chapter, condition and
    # seed) is replaced, not dropped: the rebuild goes through and holds the spec's runs only.
    evidence.build([tiny_sweep["spec"]], out, min_replications=1)
    ledger = evidence.read(evidence.LEDGER, out)
    renamed = ledger.copy()
    renamed.loc[renamed.condition == "a · quick", "point"] = "ffffffffffffffff"
    renamed.to_csv(out / evidence.LEDGER, index=False)
    rebuilt, missing = evidence.build([tiny_sweep["spec"]], out, min_replications=1)
    assert missing == [] and set(rebuilt.point) == set(evidence.spec_points([tiny_sweep["spec"]]))


def test_only_stale_chapters_are_recorded_again(tiny_sweep, tmp_path, capsys):
    out, book = tmp_path / "ledger", tiny_sweep["root"] / "book"
    evidence.build([tiny_sweep["spec"]], out, min_replications=1)
    # A fresh clone: no sweep results, a ledger recorded with the current code. Nothing needs running.
    clone = tmp_path / "clone.yaml"
    clone.write_text(tiny_sweep["spec"].read_text().replace(str(tiny_sweep["root"] / "out"), str(tmp_path / "none")))
    assert evidence.spec_is_current(clone, out, book)[0]
    before = evidence.read(evidence.LEDGER, out)
    ledger, missing = evidence.build([clone], out, min_replications=1, notebook_dir=book)
    assert missing == [] and set(ledger.point) == set(before.point)
    assert (
        evidence.read(evidence.LEDGER, out)
        .drop(columns=[evidence.RUN_DIGEST])
        .equals(before.drop(columns=[evidence.RUN_DIGEST]))
    )
    # Its chapter's code changed since: every run is stale, the spec must run again, nothing is kept.
    stale = before.assign(code_sha256="0" * 64)
    evidence.write(stale, out, min_replications=1)
    ok, text = evidence.spec_is_current(clone, out, book)
    assert not ok and "2 of 2 runs to record (2 stale in the ledger, 0 not in it)" in text
    with pytest.raises(evidence.EvidenceError, match="no run of 2 has finished: nothing to build"):
        evidence.build([clone], out, notebook_dir=book)
    assert evidence.current_rows(stale, stale.point, book).empty
    assert len(evidence.current_rows(before, [before.point.iloc[0]], book)) == 1


def test_recording_json_keeps_every_invocation_and_their_total(tmp_path, capsys):
    (tmp_path / evidence.RECORDING).write_text('{"command": "make evidence WORKERS=2", "workers": 2, "wall_s": 82}')
    assert evidence.read_recording(tmp_path)["total_wall_s"] == 82  # the older one-invocation format
    assert (
        evidence.main(
            ["log-recording", "--workers", "2", "--wall-s", "100", "a.yaml=60", "b.yaml=40", "--out", str(tmp_path)]
        )
        == 0
    )
    assert "100 s this time; 182 s over every invocation" in capsys.readouterr().out
    data = evidence.read_recording(tmp_path)
    assert [i["wall_s"] for i in data["invocations"]] == [82, 100] and data["invocations"][1]["specs"] == {
        "a.yaml": 60.0,
        "b.yaml": 40.0,
    }
    assert "interrupted" not in data["invocations"][1]
    # make evidence's trap logs an invocation stopped by a signal, marked as such, and its time counts
    args = ["log-recording", "--interrupted", "--workers", "2", "--wall-s", "30", "a.yaml=30", "--out", str(tmp_path)]
    assert evidence.main(args) == 0
    data = evidence.read_recording(tmp_path)
    assert data["invocations"][2]["interrupted"] is True and data["total_wall_s"] == 212


def test_recording_json_drops_invocations_whose_runs_the_ledger_no_longer_holds(tmp_path):
    """An invocation that finished before the ledger's oldest run built nothing the ledger holds."""
    evidence.write_declarations(tmp_path, hand_declarations())
    evidence.write(hand_ledger().assign(date="2026-12-05T22:40:00+0000"), tmp_path)
    old = {"wall_s": 3000, "finished": "2026-12-03T05:16:01Z"}  # the previous ledger's recording
    resumed = {"wall_s": 50, "finished": "2026-12-05T23:10:00Z"}  # recorded some of these runs
    (tmp_path / evidence.RECORDING).write_text(json.dumps({"invocations": [old, resumed]}))
    evidence.log_recording(tmp_path, workers=2, wall_s=100, specs={})
    data = evidence.read_recording(tmp_path)
    assert [i["wall_s"] for i in data["invocations"]] == [50, 100] and data["total_wall_s"] == 150


def test_a_new_ledger_that_fails_its_check_replaces_nothing(tiny_sweep, tmp_path, monkeypatch):
    out = tmp_path / "ledger"
    evidence.build([tiny_sweep["spec"]], out, min_replications=1)
    before = _files(out)
    monkeypatch.setattr(evidence, "check_tables", lambda folder, specs=None, declarations=None: ["planted problem"])
    with pytest.raises(evidence.EvidenceError, match="planted problem"):
        evidence.build([tiny_sweep["spec"]], out, min_replications=1)
    assert _files(out) == before and not list(out.glob(".building-*"))


def test_check_names_every_edit_of_the_evidence(tiny_sweep, tmp_path, capsys):
    out = tmp_path / "ledger"
    evidence.build([tiny_sweep["spec"]], out, min_replications=1)
    book = tiny_sweep["root"] / "book"
    assert evidence.check_tables(out, [tiny_sweep["spec"]], notebook_dir=book) == []
    cli = ["check", "--out", str(out), "--specs", str(tiny_sweep["spec"]), "--notebooks", str(book)]
    assert evidence.main(cli) == 0
    assert "evidence sound: 2 rows of 2 runs" in capsys.readouterr().out
    good = _files(out)
    ledger = evidence.read(evidence.LEDGER, out)
    point = ledger.point.iloc[0]

    def problems_after(edit) -> str:
        for name, data in good.items():
            (out / name).write_bytes(data)
        edit()
        found = evidence.check_tables(out, [tiny_sweep["spec"]], notebook_dir=book)
        assert evidence.main(cli) == 1
        return "\n".join(found)

    def edit_ledger(change) -> None:
        led = evidence.read(evidence.LEDGER, out)
        change(led).to_csv(out / evidence.LEDGER, index=False)

    def nudged(led):
        led.loc[0, "estimate"] += 1e-9
        return led

    assert f"run {point} " in problems_after(lambda: edit_ledger(nudged))
    found = problems_after(lambda: edit_ledger(lambda led: led.iloc[1:]))
    assert f"run {point} of the evidence specs is not in the ledger" in found
    assert f"run {point} " in problems_after(lambda: edit_ledger(lambda led: led.assign(lib_sha256="ab" * 32)))
    assert "appears twice" in problems_after(
        lambda: edit_ledger(lambda led: pd.concat([led, led.iloc[[0]].assign(seed=1)]))
    )

    def edit_table(name, col, value) -> None:
        t = pd.read_csv(out / name, dtype=str, keep_default_na=False)
        t.loc[0, col] = value
        t.to_csv(out / name, index=False)

    found = problems_after(lambda: edit_table(evidence.VERDICTS, "replicated", evidence.HOLDS))
    assert "verdicts.csv: ch09.positive_mean replicated reads 'holds'" in found
    assert "conditions.csv" in problems_after(lambda: edit_table(evidence.CONDITIONS, "share_holds", "0.5"))
    assert "verdicts.csv is missing" in problems_after(lambda: (out / evidence.VERDICTS).unlink())


def test_rerun_reproduces_a_recorded_point_exactly(tiny_sweep, tmp_path):
    out = tiny_sweep["root"] / "ledger-rerun"
    evidence.build([tiny_sweep["spec"]], out, min_replications=1)
    ledger = evidence.read(evidence.LEDGER, out)
    point = ledger.point.iloc[0]
    book = tiny_sweep["root"] / "book"
    assert evidence.rerun(ledger, point, tmp_path / "again", notebook_dir=book) == []
    again = json.loads((tmp_path / "again" / "points" / f"{point}.json").read_text())
    tampered = ledger.copy()
    tampered.loc[tampered.point == point, "estimate"] += 1e-12
    diffs = evidence.compare(tampered[tampered.point == point], again)
    assert len(diffs) == 1 and diffs[0].startswith("ch09.positive_mean.estimate: recorded")
    assert evidence.compare(ledger[ledger.point == point], {**again, "status": "failed", "error": "boom"}) == [
        "the re-run failed: boom"
    ]
    with pytest.raises(evidence.EvidenceError, match="not in the ledger"):
        evidence.rerun(ledger, "nope", tmp_path, notebook_dir=book)


def _executed_copy(tiny_sweep, ledger, folder: Path) -> tuple[str, int]:
    """The sweep's executed notebook of the tiny chapter's default run, as nbval would leave it."""
    book = tiny_sweep["root"] / "book"
    point = evidence.default_point(book / "09_tiny.ipynb").id
    assert point in set(ledger.point)  # dataset "a", seed 0: the defaults are one of the swept runs
    folder.mkdir(parents=True, exist_ok=True)
    executed = tiny_sweep["root"] / "out" / "points" / f"{point}.ipynb"
    (folder / "09_tiny.ipynb").write_bytes(executed.read_bytes())
    return point, int(ledger[ledger.point == point].threads.iloc[0])


def test_recheck_compares_an_executed_chapter_with_its_recorded_run(tiny_sweep, tmp_path, capsys):
    out = tiny_sweep["root"] / "ledger-recheck"
    evidence.build([tiny_sweep["spec"]], out, min_replications=1)
    ledger = evidence.read(evidence.LEDGER, out)
    book = tiny_sweep["root"] / "book"
    point, threads = _executed_copy(tiny_sweep, ledger, tmp_path / "executed")

    def check(led=ledger, folder=tmp_path / "executed", t=threads):
        return evidence.recheck_captured(led, folder, threads=t, notebook_dir=book)

    def cli(t=threads, folder=tmp_path / "executed") -> tuple[int, str]:
        rc = evidence.main(["recheck", str(folder), "--threads", str(t), "--out", str(out), "--notebooks", str(book)])
        return rc, capsys.readouterr().out

    [entry] = check()
    assert (entry["notebook"], entry["point"], entry["status"], entry["kind"], entry["details"]) == (
        "09_tiny.ipynb",
        point,
        "reproduced",
        "exact",
        [],
    )
    rc, text = cli()
    assert rc == 0 and "exact check: all 1 recorded claims identical" in text and "kind of check: exact" in text
    # Another thread count or processor rounds differently: compared within the tolerance, never skipped.
    [entry] = check(t=threads + 1)
    assert (entry["status"], entry["kind"]) == ("reproduced", "tolerance") and "CPU thread(s)" in entry["why"]
    rc, text = cli(t=threads + 1)
    assert rc == 0 and "kind of check: tolerance" in text and "verdicts identical" in text
    [entry] = check(led=ledger.assign(cpu="Other CPU; family 6 model 85; sse4_2 avx avx2 fma avx512f"))
    assert entry["kind"] == "tolerance" and "recorded on the CPU 'Other CPU" in entry["why"]
    # Stale code is compared all the same: the evidence stands while the numbers do.
    [entry] = check(led=ledger.assign(code_sha256="0" * 64))
    assert entry["stale"] and entry["status"] == "reproduced"
    [entry] = check(folder=tmp_path / "nothing")
    assert entry["status"] == "not executed"
    other = ledger[ledger.point != point]  # no run at the chapter's defaults
    [entry] = check(led=other)
    assert entry["status"] == "not recorded" and not entry["stale"] and not evidence.recheck_passed(entry)
    [entry] = check(led=other.assign(code_sha256="0" * 64))  # stale: its defaults may have changed with its code
    assert entry["status"] == "not recorded" and entry["stale"] and evidence.recheck_passed(entry)
    assert cli(folder=tmp_path / "nothing")[0] == 1

    nb = nbformat.read(str(tmp_path / "executed" / "09_tiny.ipynb"), as_version=4)
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            payload = o.get("data", {}).get(results.MIME_TYPE)
            if payload and "claim:ch09.positive_mean:estimate" in payload:
                payload["claim:ch09.positive_mean:estimate"] += 1e-12
    nbformat.write(nb, str(tmp_path / "executed" / "09_tiny.ipynb"))
    [entry] = check()
    assert entry["status"] == "differs" and entry["details"][0].startswith("ch09.positive_mean.estimate: recorded")
    [entry] = check(led=ledger.assign(code_sha256="0" * 64))
    assert entry["status"] == "differs" and entry["stale"] and evidence.recheck_passed(entry)  # stale: said, not failed
    rc, text = cli()
    assert rc == 1 and "differs" in text and "recheck failed: 09_tiny.ipynb" in text


def test_tolerance_is_the_between_seed_spread_and_verdicts_must_agree():
    recs = [record(f"p{s}", s, "digits", {"ch01.a": (float(s + 1), 0.0, 9.0, H)}) for s in range(3)]
    ledger = evidence.make_ledger(recs)
    rows = ledger[ledger.point == "p0"]
    tol = evidence.tolerances(ledger, rows)
    assert tol == {"ch01.a": pytest.approx(evidence.TOLERANCE_SDS * 1.0)}  # estimates 1, 2, 3: SD 1
    near = record("p0", 0, "digits", {"ch01.a": (1.0 + 1.9, 0.0, 9.0, H)})
    far = record("p0", 0, "digits", {"ch01.a": (1.0 + 2.1, 0.0, 9.0, H)})
    flipped = record("p0", 0, "digits", {"ch01.a": (1.0, 0.0, 9.0, F)})
    assert evidence.compare(rows, near, tol) == [] and evidence.compare(rows, near) != []
    assert evidence.compare(rows, far, tol)[0].startswith("ch01.a.estimate: recorded 1.0, re-run 3.1 (more than")
    assert evidence.compare(rows, flipped, tol) == [f"ch01.a.verdict: recorded {H!r}, re-run {F!r}"]
    assert evidence.tolerances(ledger.iloc[:1], rows) == {"ch01.a": 0.0}  # one seed: no spread, exact


# ----------------------------------------------------- CI: the recorded ledger

RECORDED = evidence.read(evidence.LEDGER)
NO_LEDGER = f"no evidence ledger is recorded yet ({claims.EVIDENCE_DIR / evidence.LEDGER}); `make evidence` records it"


@pytest.mark.skipif(RECORDED is None, reason=NO_LEDGER)
def test_recorded_ledger_schema_and_provenance():
    assert evidence.check_tables() == []
    verdicts = evidence.read(evidence.VERDICTS)
    assert verdicts is not None, "the ledger has no verdicts.csv: rebuild it with `python -m lib.evidence build`"
    rule = {
        "threshold": float(verdicts.threshold.iloc[0]),
        "min_replications": int(verdicts.min_replications.iloc[0]),
        "level": float(verdicts.level.iloc[0]),
    }
    _, again = evidence.aggregate(RECORDED, declarations=evidence.read_declarations(), **rule)
    assert verdicts.replicated.tolist() == again.replicated.tolist(), "verdicts.csv does not follow from ledger.csv"


@pytest.mark.skipif(RECORDED is None, reason=NO_LEDGER)
def test_the_readme_states_the_rule_and_seeds_of_the_committed_ledger():
    text = evidence.README.read_text()
    start, end = text.index(evidence.README_START), text.index(evidence.README_END) + len(evidence.README_END) + 1
    assert text[start:end] == evidence.readme_block(), (
        "README.md's evidence block differs from the committed ledger's: run `python -m lib.evidence readme`"
    )


@pytest.mark.skipif(RECORDED is None, reason=NO_LEDGER)
def test_recorded_ledger_has_exactly_the_specs_runs():
    """Every current chapter's runs are exactly its spec's; a stale chapter is marked stale everywhere instead."""
    specs = sorted(evidence.SPECS.glob("*.yaml"))
    assert evidence.spec_differences(RECORDED, specs) == []
    stale = set(evidence.stale_chapters(RECORDED))
    assert stale <= set(RECORDED.chapter)
    verdicts = evidence.replicated(evidence.EVIDENCE_DIR / evidence.VERDICTS)
    assert all(verdicts.loc[[i for i in verdicts.index if i.split(".")[0] in stale], "stale"])


def test_spec_differences_name_runs_of_current_chapters_only(tiny_sweep, tmp_path):
    out, book = tmp_path / "ledger", tiny_sweep["root"] / "book"
    evidence.build([tiny_sweep["spec"]], out, min_replications=1)
    ledger = evidence.read(evidence.LEDGER, out)
    more = tmp_path / "more.yaml"
    more.write_text(tiny_sweep["spec"].read_text().replace("seeds: [0]", "seeds: [0, 1]"))
    found = evidence.spec_differences(ledger, [more], book)
    assert len(found) == 2 and all("of the evidence specs is not in the ledger" in f for f in found)
    assert evidence.spec_differences(ledger.iloc[:1], [tiny_sweep["spec"]], book)[0].endswith(
        "not in the ledger (dataset='b', seed=0)"
    )
    assert evidence.spec_differences(ledger.assign(code_sha256="0" * 64), [more], book) == []  # stale: re-recorded


def test_cpu_id_names_the_processor_and_its_kernel_flags(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text(
        "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n"
        "model name\t: Intel(R) Xeon(R) Gold\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f ht\n\n"
        "processor\t: 1\nmodel name\t: another\nflags\t\t: amx_tile\n"
    )
    assert cpu_id(x86) == "Intel(R) Xeon(R) Gold; family 6 model 85; sse4_2 avx avx2 fma avx512f"
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd sve\nCPU part\t: 0xd40\n")
    assert cpu_id(arm) == "0xd40; asimd sve"
    assert cpu_id(tmp_path / "absent")  # no /proc/cpuinfo: platform's description


@pytest.mark.parametrize("null, usable", [(1.0, True), (1e-9, True), (0.0, False), (-1.0, False)])
def test_a_ratio_null_must_be_positive(null, usable):
    """On the log scale a null of 0 or below has no logarithm: "no null declared"; any positive null is judged."""
    rows = five_runs(1.3, 1.4, 1.5, 1.4, 1.3)
    _, verdict = evidence.judge(rows, {"scale": claims.LOG, "sesoi": 1.1, "above": True}, null)
    assert (verdict != evidence.NO_NULL) == usable
