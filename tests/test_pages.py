"""lib.pages: the Evidence page's tables as shown, the same numbers as lib.evidence's; the verdict boxes and the
landing page built from the ledger."""

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from lib import evidence, pages

BOOK = Path(__file__).resolve().parent.parent / "book"


# ------------------------------------------------------------------ the Evidence page

EVIDENCE_HEX = "ab" * 32


def _evidence_ledger(tmp_path: Path) -> dict[str, str]:
    """The ledger of a planted chapter 1 in ``tmp_path``, recorded with other code than the chapter's: a paper
    claim holding on digits and fashion, a control run on digits only, a mechanism check that fails in one
    fashion run, and a declared claim with no runs yet. Returns the ids."""
    from lib import claims

    paper = next(d for d in pages.chapter_declarations("ch01") if d.kind == claims.PAPER and d.section)
    ids = {"paper": paper.id, "control": "ch01.planted_control", "check": "ch01.planted_check", "new": "ch01.later"}
    records = []
    for dataset in ("digits", "fashion-mnist"):
        for seed in range(5):
            found = {
                ids["paper"]: (claims.PAPER, 2.0 + 0.1 * seed),
                ids["check"]: (claims.CHECK, 1.0),
                **({ids["control"]: (claims.CONTROL, 0.01 * seed)} if dataset == "digits" else {}),
            }
            results = {}
            for cid, (kind, estimate) in found.items():
                failed = cid == ids["check"] and dataset == "fashion-mnist" and seed == 0
                results.update(
                    {
                        f"claim:{cid}:estimate": estimate,
                        f"claim:{cid}:lo": estimate - 0.05,
                        f"claim:{cid}:hi": estimate + 0.05,
                        f"claim:{cid}:verdict": claims.FAILS if failed else claims.HOLDS,
                        f"claim:{cid}:claim": f"[book] statement of {cid}" if kind == claims.CONTROL else "a claim",
                        f"claim:{cid}:kind": kind,
                    }
                )
            records.append(
                {
                    "point": f"{dataset}-{seed}",
                    "notebook": "01_local_errors.ipynb",
                    "status": "done",
                    "parameters": {"profile": "quick", "dataset": dataset, "seed": seed},
                    "results": results,
                    "provenance": {
                        "git_commit": "0123456789abcdef",
                        "lib_sha256": EVIDENCE_HEX,
                        "code_sha256": EVIDENCE_HEX,
                        "notebook_sha256": EVIDENCE_HEX,
                        "torch": "2.13.0",
                        "device": "cpu",
                        "threads": 1,
                        "cpu": "a cpu",
                        "python": "3.11",
                        "host": "box",
                        "wall_s": 1.0,
                        "date": "2025-01-02T03:04:05",
                    },
                }
            )
    declared = [
        claims.Declared(ids["paper"], claims.PAPER, "a claim", "a statistic", sesoi=0.5, why="planted"),
        claims.Declared(ids["control"], claims.CONTROL, "a control", "another statistic", sesoi=0.5, why="planted"),
        claims.Declared(ids["check"], claims.CHECK, "a check", "a third statistic"),
        claims.Declared(ids["new"], claims.PAPER, "a claim not run yet", "a statistic", sesoi=0.5, why="planted"),
    ]
    evidence.write_declarations(tmp_path, evidence.declaration_table(declared))
    evidence.write(evidence.make_ledger(records), tmp_path)
    return {**ids, "section": paper.section}


def test_a_chapters_evidence_has_its_paper_claims_then_its_controls_then_one_line_of_checks(tmp_path):
    ids = _evidence_ledger(tmp_path)
    shown = pages.paper_evidence("ch01", tmp_path)
    html = shown._repr_markdown_()
    assert "\n" not in html  # one HTML block of the page's text: a blank line would end it
    tables = re.findall(r"<table.*?</table>", html)
    assert len(tables) == 2 and ids["paper"] in tables[0] and ids["control"] in tables[1]
    assert ids["check"] not in "".join(tables)
    assert html.index("The paper's claims") < html.index("The book's controls")
    # the paper claim: holds on both datasets (2.0-2.4 against SESOI 0.5), 2 conditions x 5 seeds, linked to its section
    assert f'href="01_local_errors.html#{ids["section"]}"' in tables[0] and ">2 × 5<" in tables[0]
    assert tables[0].count(pages.VERDICT_COLOURS[evidence.HOLDS][1]) == 3  # the claim's verdict and each condition's
    assert "digits: <span" in tables[0] and "fashion-mnist: <span" in tables[0]
    # the control was not run on fashion: a light grey "not run", never an empty or black cell
    assert tables[1].count(pages.NOT_RUN) == 1 and pages.NOT_RUN_STYLE in tables[1]
    assert "[book]" not in tables[1] and f"statement of {ids['control']}" in tables[1]
    assert ">1 × 5<" in tables[1] and "background-color:#000" not in html and "rgb(0, 0, 0)" not in html
    assert f"0 of 1 hold in every run; {ids['check']} holds in 80% of its runs on fashion-mnist." in html
    assert f"{ids['new']}." in html and "not in the ledger yet (1;" in html
    # recorded with other code than the chapter's, every claim: flagged once, above the tables
    assert html.count(pages.STALE_NOTE) == 1 and 'class="verdict-stale"' not in html
    assert repr(shown).splitlines()[1] == f"The paper's claims: {ids['paper']} holds"
    # ... and where only some claims are stale, each of those is flagged in its verdict
    from lib.verdicts import current_hashes

    verdicts = evidence.read(evidence.VERDICTS, tmp_path)
    verdicts.loc[verdicts.id == ids["control"], ["code_sha256", "notebook_sha256"]] = current_hashes(
        "01_local_errors.ipynb"
    )
    verdicts.to_csv(tmp_path / evidence.VERDICTS, index=False)
    html = pages.paper_evidence("ch01", tmp_path)._repr_markdown_()
    assert html.count('class="verdict-stale"') == 1 and html.index("verdict-stale") < html.index(ids["control"])


def test_the_evidence_overview_flags_stale_chapters_and_tallies_each_kind(tmp_path):
    _evidence_ledger(tmp_path)
    shown = pages.evidence_overview(tmp_path)
    lines = repr(shown).splitlines()
    assert lines[0].startswith("Stale evidence: ch01 was recorded with other code than the chapter runs now")
    assert lines[1:] == [
        "The papers' claims: 1, of which 1 holds.",
        "The book's controls: 1, of which 1 no effect.",
        f"{pages.CHECKS_LINE}: 0 of 1 hold in every run.",
    ]
    assert 'class="admonition warning"' in shown._repr_markdown_()


def test_forest_figure_draws_a_chapters_claims_and_controls_two_a_row(tmp_path):
    import matplotlib.pyplot as plt

    ids = _evidence_ledger(tmp_path)
    fig = pages.forest_figure("ch01", tmp_path)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title(loc="left").split("\n")[0] for ax in shown] == [ids["paper"], ids["control"]]
    assert len(fig.axes) == 2 and fig.get_suptitle() == "Chapter 1: the replications of 2 claims"
    assert pages.forest_figure("ch02", tmp_path) is None  # no run of chapter 2 in this ledger
    plt.close("all")


def test_the_evidence_page_without_a_ledger(tmp_path):
    assert repr(pages.paper_evidence("ch01", tmp_path)) == "No evidence is recorded yet."
    assert "No evidence is recorded yet" in repr(pages.evidence_overview(tmp_path))
    assert pages.forest_figure("ch01", tmp_path) is None


# ------------------------------------------------------------------ sections, verdict boxes and the landing page

CHAPTERS = ("ch01", "ch02", "ch03", "ch04", "ch05")


def test_a_section_must_be_a_label_of_the_claims_chapter():
    from lib.claims import PAPER, Declared

    assert Declared("ch01.x", PAPER, "c", "s", section="ch01-fidelity").section == "ch01-fidelity"
    for bad in ("ch02-fidelity", "ch01_fidelity", "ch01-Fidelity", "fidelity", "ch01-"):
        with pytest.raises(ValueError, match=r"claim 'ch01.x': section must be a label 'ch01-<name>'"):
            Declared("ch01.x", PAPER, "c", "s", section=bad)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_claim_names_its_section(chapter):
    missing = [d.id for d in pages.chapter_declarations(chapter) if not d.section]
    assert not missing, f"claims without a section: {missing}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_section_a_claim_names_is_a_label_above_a_heading_of_its_notebook(chapter):
    notebook = json.loads((BOOK / pages.notebook_of(chapter)).read_text())
    markdown = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown")
    labels = set(re.findall(r"^\(([a-z0-9-]+)\)=\n#+ ", markdown, re.M))
    named = {d.section for d in pages.chapter_declarations(chapter)}
    assert named <= labels, f"sections without a label above a heading: {sorted(named - labels)}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_verdict_box_comes_right_after_the_title(chapter):
    cells = json.loads((BOOK / pages.notebook_of(chapter)).read_text())["cells"]
    title, imports, box = cells[:3]
    assert "".join(title["source"]).startswith("# ") and "\n" not in "".join(title["source"]).strip()
    assert "".join(imports["source"]) == "from lib import pages" and imports["metadata"]["tags"] == ["remove-cell"]
    assert "".join(box["source"]) == f'pages.verdict_box("{chapter}")'
    assert {"from-ledger", "remove-input"} <= set(box["metadata"]["tags"])


def test_statement_leaves_out_one_runs_numbers_and_fills_the_rest_from_a_recorded_wording():
    template = "{title}: alpha > 1 + 2/d = {bound:.3g} (TwoNN d = {d:.3g}) is within {tol:g} of it"
    recorded = "MLP: alpha > 1 + 2/d = 1.18 (TwoNN d = 11.1) is within 0.02 of it"
    assert pages.statement(template, recorded) == "MLP: alpha > 1 + 2/d is within 0.02 of it"
    assert pages.statement(template, "", label="mlp") == "mlp: alpha > 1 + 2/d is within … of it"
    assert pages.statement("[book] ... also at equal accuracy") == "... also at equal accuracy"
    assert pages.statement("{title}: shallow", "another wording") == "shallow"


def test_siblings_of_one_template_are_told_apart_by_their_ids():
    from lib.claims import PAPER, Declared

    same = [Declared(f"ch03.{m}_decisions", PAPER, "{title}: codes", "s") for m in ("mlp", "conv")]
    other = Declared("ch03.alone", PAPER, "{title}: other", "s")
    assert pages.sibling_labels([*same, other]) == {"ch03.mlp_decisions": "mlp", "ch03.conv_decisions": "conv"}


def test_tally_counts_each_word_in_the_rules_order():
    words = ["opposite", "holds", "holds", "not replicated yet", "depends on the data", "depends on the data"]
    assert pages.tally(words) == "2 hold, 1 opposite, 2 depend on the data, 1 not replicated yet"
    assert pages.tally(["holds", "depends on the data"]) == "1 holds, 1 depends on the data"
    assert pages.tally([]) == ""


def test_every_decided_verdict_has_a_colour_of_its_own_and_the_rest_are_grey():
    decided = [evidence.HOLDS, evidence.WEAK, evidence.OPPOSITE, evidence.WEAK_OPPOSITE, evidence.NO_EFFECT]
    decided += [evidence.INCONCLUSIVE, evidence.DEPENDS]
    colours = [pages.VERDICT_COLOURS[w] for w in decided]
    assert len(set(colours)) == len(colours) and pages.GREY not in colours
    for word in (evidence.NOT_MEASURED, evidence.NO_SESOI, evidence.TOO_FEW, "not replicated yet"):
        assert pages.GREY[1] in pages.verdict_chip(word)
    assert "stale" in pages.verdict_chip(evidence.HOLDS, stale=True)
    assert "stale" not in pages.verdict_chip(evidence.HOLDS)


def _conditions(claim: str, rows: list[tuple], **decl) -> pd.DataFrame:
    """conditions.csv rows of one claim: (condition, dataset, n, estimate, lo, hi, verdict)."""
    cols = ("condition", "dataset", "n", "pooled", "pooled_lo", "pooled_hi", "verdict")
    frame = pd.DataFrame([dict(zip(cols, r)) for r in rows]).assign(claim_id=claim, chapter=claim[:4], **decl)
    return frame.reindex(columns=list(evidence.CONDITION_COLUMNS))


def test_reason_gives_each_conditions_estimate_against_the_sesoi_and_names_verdicts_only_where_they_differ():
    decl = dict(null=0.0, sesoi=0.1, analysis_scale="identity")
    agree = _conditions(
        "ch01.a",
        [
            ("digits · quick", "digits", 5, 0.5, 0.4, 0.6, "holds"),
            ("fashion · quick", "fashion", 5, 0.3, 0.2, 0.4, "holds"),
        ],
        **decl,
    )
    assert (
        pages.reason(decl, agree) == "digits 0.5 [0.4, 0.6]; fashion 0.3 [0.2, 0.4] vs SESOI 0.1 (5 seeds × 2 datasets)"
    )
    differ = agree.assign(verdict=["holds", "weak"])
    assert "digits 0.5 [0.4, 0.6] (holds); fashion 0.3 [0.2, 0.4] (weak)" in pages.reason(decl, differ)
    ratio = dict(null=1.0, sesoi=1.1, analysis_scale="log")
    assert "vs SESOI ×1.1" in pages.reason(ratio, agree)
    assert "vs null 0.02, SESOI 0.01" in pages.reason(dict(null=0.02, sesoi=0.01, analysis_scale="identity"), agree)
    many = _conditions(
        "ch04.a",
        [
            (f"synthetic · d={d}", "synthetic", 5, e, e - 0.1, e + 0.1, "holds")
            for d, e in ((64, 1.0), (128, 2.0), (256, 1.5))
        ],
        **decl,
    )
    assert pages.reason(decl, many) == (
        "1 to 2 in every setting, each interval within [0.9, 2.1] vs SESOI 0.1 (5 seeds × 3 settings)"
    )
    one = many.iloc[:1]
    assert pages.reason(decl, one) == "1 [0.9, 1.1] vs SESOI 0.1 (5 seeds, synthetic · d=64)"
    assert pages.reason(None, None) == "no run recorded yet"
    # a SESOI that is a fraction reads in three digits; no estimate anywhere is said once
    assert "vs SESOI 0.167 " in pages.reason(dict(decl, sesoi=1 / 6), agree)
    none = many.assign(pooled=math.nan, pooled_lo=math.nan, pooled_hi=math.nan, verdict="not measured")
    assert pages.reason(decl, none) == "no estimate in any setting vs SESOI 0.1 (5 seeds × 3 settings)"


def _planted_ledger(tmp_path, chapter: str, verdicts: dict[str, str], current: bool | set) -> None:
    """verdicts.csv and conditions.csv in ``tmp_path`` for some of ``chapter``'s claims, recorded with the
    chapter's code as it is now (``current``: all, or the ids in it) or with other code."""
    from lib.verdicts import current_hashes

    notebook = pages.notebook_of(chapter)
    now, other = current_hashes(notebook), ("0" * 64, "0" * 64)
    rows = [
        {
            "id": cid,
            "chapter": chapter,
            "kind": "paper",
            "claim": "",
            "replicated": word,
            "n": 10,
            "conditions": 2,
            "notebook": notebook,
            "code_sha256": (now if current is True or cid in (current or ()) else other)[0],
            "notebook_sha256": (now if current is True or cid in (current or ()) else other)[1],
            "sesoi": 0.1,
            "null": 0.0,
            "analysis_scale": "identity",
        }
        for cid, word in verdicts.items()
    ]
    pd.DataFrame(rows).reindex(columns=list(evidence.VERDICT_COLUMNS)).to_csv(tmp_path / evidence.VERDICTS, index=False)
    conditions = pd.concat(
        [
            _conditions(
                cid,
                [
                    ("digits · quick", "digits", 5, 0.5, 0.4, 0.6, word),
                    ("fashion-mnist · quick", "fashion-mnist", 5, 0.5, 0.4, 0.6, word),
                ],
            )
            for cid, word in verdicts.items()
        ]
    )
    conditions.to_csv(tmp_path / evidence.CONDITIONS, index=False)


def test_verdict_box_colours_links_and_flags_the_planted_verdicts(tmp_path):
    paper = [d for d in pages.chapter_declarations("ch02") if d.kind == "paper"]
    planted = {paper[0].id: evidence.HOLDS, paper[1].id: evidence.OPPOSITE}
    _planted_ledger(tmp_path, "ch02", planted, current=False)
    box = pages.verdict_box("ch02", tmp_path)
    html = box._repr_html_()
    assert repr(box).split("\n")[0] == (
        f"Replicated verdicts of the paper's claims: 1 holds, 1 opposite, {len(paper) - 2} not replicated yet."
    )
    for word in (evidence.HOLDS, evidence.OPPOSITE):
        assert pages.VERDICT_COLOURS[word][1] in html
    assert 'class="verdict-stale"' not in html and html.count(pages.STALE_NOTE) == 1  # every one stale: said once
    assert f'href="#{paper[0].section}"' in html and f'href="#{paper[1].section}"' in html
    assert 'href="02_dimpled_manifold.html#' not in html  # on its own page a link is its anchor
    assert sum(1 for line in repr(box).splitlines() if line.startswith("- ")) == len(paper)
    assert pages.VERDICT_WORDS in html

    _planted_ledger(tmp_path, "ch02", planted, current=True)
    assert "verdict-stale" not in pages.verdict_box("ch02", tmp_path)._repr_html_()

    _planted_ledger(tmp_path, "ch02", planted, current={paper[1].id})  # one stale, one current: the chip says which
    html = pages.verdict_box("ch02", tmp_path)._repr_html_()
    assert html.count('class="verdict-stale"') == 1 and html.count(pages.STALE_NOTE) == 1
    stale_chip = html.index('class="verdict-stale"')
    assert html.rindex(pages.VERDICT_COLOURS[evidence.HOLDS][1], 0, stale_chip) > html.find(pages.STALE_NOTE)
    assert html.index(pages.VERDICT_COLOURS[evidence.OPPOSITE][1]) > stale_chip  # the current one is not flagged


def test_verdict_box_of_a_chapter_without_paper_claims_shows_the_books_and_folds_qualifiers(tmp_path):
    box = pages.verdict_box("ch05", tmp_path)  # no ledger: nothing replicated yet
    shown = [d for d in pages.chapter_declarations("ch05") if d.kind == "control"]
    assert repr(box).startswith("Replicated verdicts of the book's claims")
    assert f"{len(shown)} not replicated yet" in repr(box)
    html = box._repr_html_()
    also = sum(1 for d in shown if pages.statement(d.claim).startswith("..."))
    leads = len(shown) - also
    assert leads > pages.BOX_FOLD  # chapter 5 has more lead claims than a box shows open
    # each "... also" claim sits in its lead's item; the leads after the first BOX_OPEN fold under one more item
    assert html.count("<li") == leads + 1 and html.count('class="verdict-more"') == 1
    folded = html.split('class="verdict-more"')[1]
    assert f"{leads - pages.BOX_OPEN} more claims: {leads - pages.BOX_OPEN} not replicated yet" in folded
    assert folded.count("<li") == leads - pages.BOX_OPEN and "<details>" in folded
    for chapter in ("ch02", "ch04"):  # 6 and 9 leads: all open
        assert 'class="verdict-more"' not in pages.verdict_box(chapter, tmp_path)._repr_html_()


def test_verdict_box_refuses_an_unknown_chapter():
    with pytest.raises(ValueError, match=r"chapter must be one of ch01, ch02, ch03, ch04, ch05, got 'ch9'"):
        pages.verdict_box("ch9")


def test_landing_has_every_chapter_its_tally_and_reasons(tmp_path):
    paper = [d for d in pages.chapter_declarations("ch01") if d.kind == "paper"]
    _planted_ledger(tmp_path, "ch01", {paper[0].id: evidence.HOLDS}, current=True)
    page = pages.landing(tmp_path)
    html, text = page._repr_html_(), repr(page)
    n_paper = sum(1 for ch in CHAPTERS[:4] for d in pages.chapter_declarations(ch) if d.kind == "paper")
    assert text.startswith(
        f"Of the four papers' {n_paper} claims tested here: 1 holds, {n_paper - 1} not replicated yet."
    )
    assert '<table class="landing-results"' in html and html.count('class="landing-chapter"') == 5
    assert f'href="01_local_errors.html#{paper[0].section}"' in html
    assert "digits 0.5 [0.4, 0.6]; fashion-mnist 0.5 [0.4, 0.6] vs SESOI 0.1 (5 seeds × 2 datasets)" in html
    assert "Jiang, Zhou &amp; Huang (2021)" not in html and "Jiang et al. (2021)" in html
    assert "No evidence is recorded yet" in html  # no ledger.csv planted: no scale to state


def test_landing_states_the_scale_of_the_committed_ledger():
    ledger = evidence.read(evidence.LEDGER)
    if ledger is None:
        pytest.skip("no evidence ledger recorded")
    text = repr(pages.landing())
    runs = ledger.drop_duplicates("point")
    assert f"The evidence: {len(runs)} runs, " in text
    for dataset in set(runs.dataset):
        assert str(dataset) in text.split("\n")[1]


def test_cited_names_a_reference_as_the_text_does(tmp_path):
    bib = tmp_path / "r.bib"
    bib.write_text(
        "@misc{one,\n  author = {Lee, Jung Hoon and Vijayan, Sujith},\n  year = {2022}\n}\n"
        "@misc{three,\n  author = {A, B and C, D and E, F},\n  year   = {2021},\n}\n"
    )
    assert pages.cited("one", bib) == "Lee & Vijayan (2022)"
    assert pages.cited("three", bib) == "A et al. (2021)"
    assert pages.cited("missing", bib) == "missing"


def test_citation_comes_from_the_citation_file(tmp_path):
    cff = tmp_path / "CITATION.cff"
    cff.write_text(
        "cff-version: 1.2.0\ntitle: A book\nauthors:\n  - family-names: Doe\n    given-names: Jane\n"
        "version: 2.0\ndate-released: 2027-01-02\nurl: https://example.org/book\nlicense: MIT\n"
    )
    text = repr(pages.citation(cff))
    assert text.startswith("Jane Doe (2027). A book. Version 2.0. https://example.org/book.")
    assert "MIT licence" in text
    with pytest.raises(FileNotFoundError, match="no citation file"):
        pages.citation(tmp_path / "none.cff")


def test_the_citation_files_version_is_the_packages():
    import yaml

    root = BOOK.parent
    version = re.search(r'^version = "([^"]+)"$', (root / "pyproject.toml").read_text(), re.M).group(1)
    assert yaml.safe_load((root / "CITATION.cff").read_text())["version"] == version
    assert (root / "LICENSE").read_text().startswith("MIT License")
