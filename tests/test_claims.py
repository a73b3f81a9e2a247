import math
from dataclasses import replace

import pandas as pd
import pytest

from lib import claims, results


def test_by_interval_sides():
    assert claims.by_interval(0.1, 0.2) == claims.HOLDS
    assert claims.by_interval(-0.3, -0.1) == claims.FAILS
    assert claims.by_interval(-0.1, 0.1) == claims.INCONCLUSIVE
    assert claims.by_interval(0.2, 0.4, 0.5, above=False) == claims.HOLDS
    assert claims.by_interval(0.6, 0.7, 0.5, above=False) == claims.FAILS
    assert claims.by_interval(math.nan, 1.0) == claims.INCONCLUSIVE


@pytest.mark.parametrize("threshold", [0.0, 0.5, -2.0])
def test_by_interval_an_interval_touching_its_threshold_decides_nothing(threshold):
    """ "Above t" holds only when the whole interval is strictly above t: an interval that ends at t straddles it."""
    t = threshold
    assert claims.by_interval(t, t + 1, t) == claims.INCONCLUSIVE  # lo == t: not above
    assert claims.by_interval(t - 1, t, t) == claims.INCONCLUSIVE  # hi == t: not below either
    assert claims.by_interval(t, t, t) == claims.INCONCLUSIVE
    assert claims.by_interval(t - 1, t, t, above=False) == claims.INCONCLUSIVE
    assert claims.by_interval(t, t + 1, t, above=False) == claims.INCONCLUSIVE
    eps = 1e-9
    assert claims.by_interval(t + eps, t + 1, t) == claims.HOLDS
    assert claims.by_interval(t - 1, t - eps, t) == claims.FAILS
    assert claims.by_interval(t - 1, t - eps, t, above=False) == claims.HOLDS
    assert claims.by_interval(t + eps, t + 1, t, above=False) == claims.FAILS
    assert claims.by_interval(t + 1, t + eps, t) == claims.HOLDS  # given in either order
    assert claims.by_interval(t + 1, math.nan, t) == claims.INCONCLUSIVE


def test_declared_interval_decides_by_its_threshold_and_side():
    above = claims.Declared("chX.grows", claims.PAPER, "{what} grows", "slope of {what}", threshold=1.0)
    row = above.interval(1.5, 1.0, 2.0, what="alpha")
    assert (row.verdict, row.claim, row.statistic, row.id, row.kind) == (
        claims.INCONCLUSIVE,
        "alpha grows",
        "slope of alpha",
        "chX.grows",
        claims.PAPER,
    )
    assert (row.estimate, row.lo, row.hi, row.value) == (1.5, 1.0, 2.0, "1.5 [1, 2]")
    assert above.interval(1.5, 1.01, 2.0, what="a").verdict == claims.HOLDS
    below = claims.Declared("chX.shrinks", claims.CONTROL, "c", "s", threshold=1.0, above=False)
    assert below.interval(0.5, 0.2, 0.99).verdict == claims.HOLDS
    assert below.interval(0.5, 0.2, 1.0).verdict == claims.INCONCLUSIVE
    assert below.interval(1.5, 1.01, 2.0).verdict == claims.FAILS


def test_declarations_keys_ids_and_failed_checks_are_named_in_full():
    d = claims.declared(
        claims.Declared("chX.a.b", claims.PAPER, "c", "s"), claims.Declared("chX.c", claims.PAPER, "c", "s")
    )
    assert list(d) == ["a.b", "c"]  # the short name is everything after the chapter
    with pytest.raises(ValueError, match=r"^claim id must read '<chapter>.<name>', got 'nodot'$"):
        claims.Declared("nodot", claims.PAPER, "c", "s")
    assert claims.Declared("chX.v", claims.PAPER, "c", "s").interval(1.23456, 1.0, 2.0, digits=2).value == "1.2 [1, 2]"
    check = claims.Declared("chX.k", claims.CHECK, "c", "slope")
    rows = [check.interval(-1.0, -2.0, -0.5), check.tested(claims.INCONCLUSIVE, "v")]
    with pytest.raises(claims.CheckFailed) as failed:
        claims.assert_checks(rows)
    assert str(failed.value) == (
        f"mechanism checks failed: chX.k (slope: -1 [-2, -0.5], {claims.FAILS}); "
        f"chX.k (slope: v, {claims.INCONCLUSIVE})"
    )


def test_by_test_and_bad_verdict():
    assert claims.by_test(True, False) == claims.HOLDS
    assert claims.by_test(False, True) == claims.FAILS
    assert claims.by_test(True, True) == claims.INCONCLUSIVE
    with pytest.raises(ValueError, match="verdict must be one of"):
        claims.Claim("c", "s", "v", "probably")


def test_claims_table_shows_long_text_in_full():
    long = "a claim whose wording is much longer than pandas' default column width of fifty characters"
    t = claims.table([claims.Claim(long, "statistic", claims.fmt(1.0, (0.5, 1.5)), claims.by_interval(0.1, 0.2))])
    assert long in t._repr_html_() and long in repr(t)
    assert t.value.iloc[0] == "1 [0.5, 1.5]"
    assert t.verdict.iloc[0] == claims.HOLDS and list(t.index) == [1]
    assert isinstance(t[["claim", "verdict"]], claims.ClaimsTable)


def test_declared_null_sesoi_scale_and_their_checks():
    d = claims.Declared("ch09.a", claims.PAPER, "c", "s", threshold=0.5, above=False)
    assert (d.null_value, d.sesoi, d.scale, d.depends, d.why) == (0.5, None, claims.IDENTITY, True, "")
    assert replace(d, threshold=0.7).null_value == 0.7  # the null follows a threshold set per run
    assert replace(d, null=0.0, threshold=0.7).null_value == 0.0
    ratio = claims.Declared("ch09.r", claims.PAPER, "c", "s", threshold=1.0, sesoi=1.1, scale=claims.LOG, why="10%")
    assert ratio.sesoi == 1.1
    with pytest.raises(ValueError, match="ratio > 1"):
        claims.Declared("ch09.r", claims.PAPER, "c", "s", sesoi=0.1, scale=claims.LOG)
    with pytest.raises(ValueError, match="positive number"):
        claims.Declared("ch09.a", claims.PAPER, "c", "s", sesoi=-0.1)
    with pytest.raises(ValueError, match="scale must be one of"):
        claims.Declared("ch09.a", claims.PAPER, "c", "s", scale="logit")


def test_rows_carry_the_declaration_and_record_it_only_when_set():
    d = claims.Declared(
        "ch09.rho", claims.PAPER, "c", "rho", sesoi=0.1, scale=claims.FISHER_Z, depends=False, why="a tenth"
    )
    row = d.interval(0.3, 0.1, 0.5)
    assert (row.null, row.sesoi, row.scale, row.above, row.depends, row.why) == (
        0.0,
        0.1,
        claims.FISHER_Z,
        True,
        False,
        "a tenth",
    )
    shape = claims.Declared("ch09.shape", claims.PAPER, "c", "s", threshold=math.nan).tested(claims.HOLDS, "v")
    bare = claims.Claim("c", "s", "v", claims.HOLDS, id="ch09.bare")
    claims.record([row, shape, bare], "ch09")
    got = {k: v for k, v in results.RECORDED.items() if k.startswith("claim:ch09.")}
    recorded = {k.split(":")[2]: got[k] for k in got if k.startswith("claim:ch09.rho:")}
    assert {k: recorded[k] for k in ("null", "sesoi", "scale", "above", "depends")} == {
        "null": 0.0,
        "sesoi": 0.1,
        "scale": claims.FISHER_Z,
        "above": True,
        "depends": False,
    }
    assert "claim:ch09.shape:null" not in got and "claim:ch09.shape:sesoi" not in got  # NaN: not set
    assert got["claim:ch09.shape:scale"] == claims.IDENTITY and got["claim:ch09.shape:above"] is True
    assert not any(f"claim:ch09.bare:{k}" in got for k in ("null", "sesoi", "scale", "above", "depends"))


def test_declared_section_must_be_a_label_of_its_own_chapter():
    """The section label starts with the chapter (the id before its first dot): ``ch01.a`` may point at
    ``ch01-fidelity``, not at another chapter's section nor at one named after the claim."""
    ok = claims.Declared("ch01.a.b", claims.PAPER, "c", "s", section="ch01-fidelity-2")
    assert ok.section == "ch01-fidelity-2"
    for bad in ("ch02-fidelity", "a-fidelity", "ch01-Fidelity", "ch01_fidelity"):
        with pytest.raises(ValueError, match=r"section must be a label 'ch01-<name>'"):
            claims.Declared("ch01.a.b", claims.PAPER, "c", "s", section=bad)


def test_a_bad_sesoi_is_named_with_what_it_must_be():
    """The error says what the SESOI must be on the claim's scale, in full."""
    with pytest.raises(ValueError, match=r"^claim 'ch09.a': sesoi must be a positive number, got -0.1$"):
        claims.Declared("ch09.a", claims.PAPER, "c", "s", sesoi=-0.1)
    with pytest.raises(ValueError, match=r"^claim 'ch09.a': sesoi must be a positive number, got 0.0$"):
        claims.Declared("ch09.a", claims.PAPER, "c", "s", sesoi=0.0)  # the boundary: zero is no margin
    with pytest.raises(ValueError, match=r"^claim 'ch09.r': sesoi must be a ratio > 1 on the log scale, got 1.0$"):
        claims.Declared("ch09.r", claims.PAPER, "c", "s", sesoi=1.0, scale=claims.LOG)


def test_reproduction_lines_list_the_missed_claims_first_under_their_labels():
    """Two planted rows, one that does not hold and one that does: each goes under its own label."""
    missed = claims.Claim("alpha grows", "s", "v", claims.FAILS)
    held = claims.Claim("beta shrinks", "s", "v", claims.HOLDS)

    def why(c):
        return f"why {c.claim}"

    assert claims.reproduction_lines([missed], [held], why) == [
        "Not reproduced:",
        f"- alpha grows: **{claims.FAILS}**; why alpha grows.",
        "Reproduced:",
        "- beta shrinks: why beta shrinks.",
    ]
    assert claims.reproduction_lines([missed], [], why, verdict=lambda c: "v?", labels=("Missed", "Held")) == [
        "Missed",
        "- alpha grows: **v?**; why alpha grows.",
    ]
    assert claims.reproduction_lines([], [held], why, labels=("Missed", "Held")) == [
        "Held",
        "- beta shrinks: why beta shrinks.",
    ]
    assert claims.reproduction_lines([], [], why) == []


def test_claims_table_names_the_kinds_and_sums_up_the_checks_under_it():
    """A control is shown as the book's, a check is left out of the rows and summed up under the table."""
    rows = [
        claims.Declared("chX.p", claims.PAPER, "the paper's", "s").interval(1.0, 0.5, 1.5),
        claims.Declared("chX.c", claims.CONTROL, "the book's", "s").interval(1.0, 0.5, 1.5),
        claims.Declared("chX.k", claims.CHECK, "a mechanism", "s").interval(1.0, 0.5, 1.5),
    ]
    t = claims.table(rows)
    assert list(t.kind) == ["paper", "book"] and list(t.claim) == ["the paper's", "the book's"]
    summary = "Mechanism checks: all 1 pass (identities any correct implementation shows; not findings)."
    assert t.attrs["checks"] == summary
    text = repr(t)
    assert text.endswith("\n" + summary) and text.split("\n")[-2].startswith("2 ")  # the last row, then the line
    html_text = t._repr_html_()
    assert html_text.endswith(f'<p class="mechanism-checks">{summary}</p>')
    plain = claims.table(rows[:2])
    assert "mechanism-checks" not in plain._repr_html_() and repr(plain).split("\n")[-1].startswith("2 ")


def test_a_tested_row_records_its_estimate_and_bounds():
    """A verdict computed elsewhere still records the numbers it was computed from."""
    d = claims.Declared("ch01.x", claims.PAPER, "claim", "statistic")
    row = d.tested(claims.HOLDS, "1.5 [1, 2]", 1.5, 1.0, 2.0)
    assert (row.estimate, row.lo, row.hi, row.value, row.verdict) == (1.5, 1.0, 2.0, "1.5 [1, 2]", claims.HOLDS)
    with pytest.raises(ValueError, match=r"claim 'ch01.y': kind must be one of .*, got 'finding'"):
        claims.Declared("ch01.y", "finding", "claim", "statistic")


def test_replicated_verdicts_of_one_chapter(tmp_path):
    """``chapter`` keeps that chapter's claims only; without it every chapter's are read."""
    path = tmp_path / "verdicts.csv"
    pd.DataFrame(
        {"id": ["ch01.a", "ch02.b", "ch01.c"], "replicated": ["holds", "opposite", ""], "notebook": ["x"] * 3}
    ).to_csv(path, index=False)
    one = claims.replicated(path, chapter="ch01")
    assert list(one.index) == ["ch01.a", "ch01.c"] and one.loc["ch01.c", "replicated"] == ""  # empty stays text
    assert list(claims.replicated(path).index) == ["ch01.a", "ch02.b", "ch01.c"]
