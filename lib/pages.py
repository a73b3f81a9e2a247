"""How the book's pages show lib's tables: presentation only, every number is the table's own."""

from __future__ import annotations

import html
import importlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping

import pandas as pd

from . import claims, config, evidence

# ------------------------------------------------------------------ the Evidence page

NOT_RUN = "not run"  # a condition a claim's chapter was not run in: a blank, light grey cell
NOT_RUN_STYLE = "background-color:#f2f4f7;color:#667085"
# The Evidence page's tables, per chapter: the paper's claims, then the book's controls; mechanism checks in a line.
EVIDENCE_TABLES = ((claims.PAPER, "The paper's claims"), (claims.CONTROL, "The book's controls"))
CHECKS_LINE = "Mechanism checks (identities any correct implementation shows, asserted in the chapter; not findings)"


@dataclass(frozen=True)
class Block:
    """HTML set in the page's text (a Markdown output, one HTML block), not in an output box: the Evidence page's
    tables are as narrow as the page and as long as they are, never cut by a box that scrolls."""

    html: str
    text: str

    def _repr_markdown_(self) -> str:
        return re.sub(r"\s*\n\s*", " ", self.html)  # a blank line would end the HTML block

    def __repr__(self) -> str:
        return self.text


def _evidence_tables(out: str | Path | None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None] | None:
    """verdicts.csv and conditions.csv of ``out`` (default: the committed evidence) and claims.csv, or None
    without a ledger."""
    verdicts, conditions = evidence.read(evidence.VERDICTS, out), evidence.read(evidence.CONDITIONS, out)
    if verdicts is None or conditions is None or verdicts.empty:
        return None
    return verdicts, conditions, evidence.read_declarations(out)


def _kinds(verdicts: pd.DataFrame, declarations: pd.DataFrame | None) -> pd.Series:
    """Each claim's kind: as its runs recorded it, else as ``claims.csv`` declares it."""
    declared = {} if declarations is None else dict(zip(declarations.id, declarations.kind))
    return pd.Series(
        [
            k if isinstance(k, str) and k and not k.startswith("mixed") else declared.get(i, "")
            for i, k in zip(verdicts.id, verdicts.kind)
        ],
        index=verdicts.index,
    )


def _sections(chapter: str) -> dict[str, str]:
    """The MyST label of the section that tests each of ``chapter``'s declared claims (none for an unknown chapter)."""
    try:
        return {d.id: d.section for d in chapter_declarations(chapter) if getattr(d, "section", "")}
    except (ValueError, ModuleNotFoundError, AttributeError):
        return {}


def _runs(n: list[int]) -> str:
    """A claim's replications: ``"2 × 5"`` (conditions × seeds), or ``"9 in 2"`` when the conditions differ."""
    return f"{len(n)} × {n[0]}" if len(set(n)) == 1 else f"{sum(n)} in {len(n)}"


CELL = "padding:0.4em 0.5em;vertical-align:top;border-top:1px solid #eaecf0;text-align:left"


def _condition_line(name: str, row: Mapping[str, Any] | None) -> str:
    """A claim in one condition: its name, the pooled estimate [95% interval] and the verdict there; a condition
    its chapter was not run in reads ``not run`` on light grey."""
    if row is None:
        return f'<div class="not-run" style="{NOT_RUN_STYLE};padding:0 0.3em">{html.escape(name)}: {NOT_RUN}</div>'
    m, lo, hi = (_number(row.get(k)) for k in ("pooled", "pooled_lo", "pooled_hi"))
    value = (
        "no estimate"
        if not math.isfinite(m)
        else claims.fmt(m, (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None, 2)
    )
    return (
        f'<div class="condition">{html.escape(name)}: <span style="white-space:nowrap">{html.escape(value)}</span> '
        f"{verdict_chip(str(row['verdict']))}</div>"
    )


def evidence_table(
    verdicts: pd.DataFrame,
    conditions: pd.DataFrame,
    stale: Mapping[str, bool],
    href: Mapping[str, str],
    labels: list[str] | None = None,
) -> str:
    """One table of the Evidence page, as narrow as the page: per claim (``verdicts``' rows, in order) its id and
    statement linked to its chapter section (``href``), its replicated verdict (coloured, flagged ``stale``), its
    runs (conditions × seeds) and, in every condition of ``conditions``, the pooled estimate [95% interval] and
    the verdict there (``not run`` where the claim was not run). ``labels``: the conditions to show, in order
    (default: those of ``conditions``)."""
    labels = list(dict.fromkeys(conditions.condition)) if labels is None else labels
    names = evidence.short_conditions(labels)
    by = {(r["claim_id"], r["condition"]): r for r in conditions.to_dict("records")}
    rows = []
    for v in verdicts.to_dict("records"):
        cid = v["id"]
        text = BOOK_PREFIX.sub("", v["claim"] if isinstance(v["claim"], str) else "")
        n = [int(r["n"]) for (c, _), r in by.items() if c == cid]
        rows.append(
            f'<tr><td class="claim" style="{CELL}">'
            f'<a href="{html.escape(href.get(cid, "#"))}"><code style="overflow-wrap:anywhere">{html.escape(cid)}'
            f"</code></a><br>{html.escape(text)}</td>"
            f'<td class="verdict" style="{CELL}">{verdict_chip(str(v["replicated"]), bool(stale.get(cid)))}</td>'
            f'<td class="runs" style="{CELL};white-space:nowrap">{_runs(n)}</td>'
            f'<td class="conditions" style="{CELL};font-size:0.92em">'
            + "".join(_condition_line(names[c], by.get((cid, c))) for c in labels)
            + "</td></tr>"
        )
    head = "".join(
        f'<th class="{cls}" style="{CELL};border-top:none;width:{width}">{text}</th>'
        for cls, text, width in (
            ("claim", "claim", "30%"),
            ("verdict", "verdict", "10.5em"),
            ("runs", "n", "3.2em"),
            ("conditions", "per condition: pooled estimate [95% interval], verdict", "auto"),
        )
    )
    return (
        '<table class="evidence-claims" style="width:100%;table-layout:fixed;border-collapse:collapse;font-size:0.9em">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _checks_line(verdicts: pd.DataFrame, conditions: pd.DataFrame, named: bool = True) -> str:
    """How many mechanism checks hold in every run; with ``named``, the others with their share of runs that
    hold in each condition where it falls short."""
    if verdicts.empty:
        return ""
    short = {}
    for cid in verdicts.id:
        c = conditions[conditions.claim_id == cid]
        names = evidence.short_conditions(c.condition)
        where = [
            f"{r.share_holds:.0%} of its runs on {names[r.condition]}" for r in c.itertuples() if r.share_holds < 1
        ]
        if where:
            short[cid] = f"{cid} holds in " + ", ".join(where)
    line = f"{CHECKS_LINE}: {len(verdicts) - len(short)} of {len(verdicts)} hold in every run"
    return line + ("; " + "; ".join(short.values()) if named and short else "") + "."


def paper_evidence(chapter: str, out: str | Path | None = None, notebook_dir: str | Path = evidence.BOOK) -> Block:
    """A chapter's part of the Evidence page: its paper claims, then the book's controls, each with its replicated
    verdict, runs and per condition the pooled estimate and verdict (:func:`evidence_table`), the mechanism
    checks in one line, and the claims declared since the recording; stale evidence flagged."""
    tables = _evidence_tables(out)
    if tables is None:
        return Block("<p>No evidence is recorded yet.</p>", "No evidence is recorded yet.")
    verdicts, conditions, declarations = tables
    mine = verdicts[verdicts.chapter == chapter]
    if mine.empty:
        text = f"The ledger holds no run of {chapter}."
        return Block(f"<p>{html.escape(text)}</p>", text)
    kinds = _kinds(mine, declarations)
    stale = dict(zip(mine.id, evidence.stale_column(mine, notebook_dir)))
    page = str(mine.notebook.iloc[0]).replace(".ipynb", ".html")
    sections = _sections(chapter)
    href = {cid: page + (f"#{sections[cid]}" if cid in sections else "") for cid in mine.id}
    parts, text = [], []
    if any(stale.values()):
        parts.append(f'<p class="evidence-stale" style="color:#b54708">{STALE_NOTE}</p>')
        text.append(re.sub(r"<[^>]+>", "", STALE_NOTE))
    if all(stale.values()):  # said once above the tables; a chip is flagged only where the chapter's claims differ
        stale = {}
    labels = list(dict.fromkeys(conditions[conditions.claim_id.isin(mine.id)].condition))  # the chapter's
    for kind, title in EVIDENCE_TABLES:
        rows = mine[kinds == kind]
        if rows.empty:
            continue
        c = conditions[conditions.claim_id.isin(rows.id)]
        parts.append(f"<p><strong>{html.escape(title, quote=False)}</strong> ({tally(list(rows.replicated))})</p>")
        parts.append(evidence_table(rows, c, stale, href, labels))
        text.append(f"{title}: " + "; ".join(f"{i} {v}" for i, v in zip(rows.id, rows.replicated)))
    checks = mine[kinds == claims.CHECK]
    line = _checks_line(checks, conditions)
    if line:
        parts.append(f'<p class="mechanism-checks">{html.escape(line)}</p>')
        text.append(line)
    if declarations is not None:
        new = [i for i, ch in zip(declarations.id, declarations.chapter) if ch == chapter and i not in set(mine.id)]
        if new:
            note = (
                f"Declared by the chapter but not in the ledger yet ({len(new)}; `make evidence` records them): "
                + ", ".join(new)
                + "."
            )
            parts.append(f'<p class="evidence-unrecorded" style="font-size:0.9em">{html.escape(note)}</p>')
            text.append(note)
    return Block("".join(parts), "\n".join(text))


def evidence_overview(out: str | Path | None = None, notebook_dir: str | Path = evidence.BOOK) -> Block:
    """The Evidence page's first lines after the rule: stale evidence first, then the tallies of the papers'
    claims, the book's controls and the mechanism checks."""
    tables = _evidence_tables(out)
    if tables is None:
        return Block(evidence.summary(out), evidence.summary(out))
    verdicts, conditions, declarations = tables
    kinds = _kinds(verdicts, declarations)
    stale = sorted({ch for ch, s in zip(verdicts.chapter, evidence.stale_column(verdicts, notebook_dir)) if s})
    lines = []
    for kind, title in ((claims.PAPER, "The papers' claims"), (claims.CONTROL, "The book's controls")):
        v = list(verdicts[kinds == kind].replicated)
        if v:
            lines.append(f"{title}: {len(v)}, of which {tally(v)}.")
    checks = _checks_line(verdicts[kinds == claims.CHECK], conditions, named=False)
    if checks:
        lines.append(checks)
    body = "".join(f"<p>{html.escape(x)}</p>" for x in lines)
    if stale:
        warning = (
            f"{', '.join(stale)} {'was' if len(stale) == 1 else 'were'} recorded with other code than the chapter "
            "runs now (the code it executes, or its notebook, changed since): the verdicts below describe that code. "
            "<code>make evidence</code> re-records the stale chapters only."
        )
        body = (
            '<div class="admonition warning"><p class="admonition-title">Stale evidence</p>'
            f"<p>{warning}</p></div>" + body
        )
        lines.insert(0, "Stale evidence: " + re.sub(r"<[^>]+>", "", warning))
    return Block(body, "\n".join(lines))


def forest_figure(chapter: str, out: str | Path | None = None) -> Any:
    """The forest plots of a chapter's paper claims and the book's controls (:func:`lib.evidence.forests`), two
    panels a row; None when the ledger holds none."""
    tables = _evidence_tables(out)
    if tables is None:
        return None
    verdicts, _, declarations = tables
    mine = verdicts[verdicts.chapter == chapter]
    kinds = _kinds(mine, declarations)
    ids = [i for kind, _ in EVIDENCE_TABLES for i in mine[kinds == kind].id]
    if not ids:
        return None
    title = f"Chapter {int(chapter[2:])}: the replications of {len(ids)} claim{'s' * (len(ids) != 1)}"
    return evidence.forests(ids, out, title=title)


# ------------------------------------------------------------------ the banner at the top of an image chapter

# The run an image chapter's rendered page shows (lib.recorded copies it from the evidence recording).
PAGE_DATASET, PAGE_SEED = "fashion-mnist", 0
DATASET_NAMES = {
    "digits": "scikit-learn's 8x8 digits",
    "fashion-mnist": "Fashion-MNIST (28x28 images)",
    "mnist": "MNIST (28x28 images)",
}
SPECS = Path(__file__).resolve().parent.parent / "sweeps" / "evidence"


@dataclass(frozen=True)
class Banner:
    """A note at the top of a page (an admonition): which run the page shows and how to run it again."""

    title: str
    paragraphs: tuple[str, ...]  # HTML
    kind: str = "note"  # an admonition class: "note", or "warning" for a page that needs a second look

    def _repr_html_(self) -> str:
        body = "".join(f"<p>{p}</p>" for p in self.paragraphs)
        return (
            f'<div class="admonition {self.kind}"><p class="admonition-title">{html.escape(self.title)}</p>{body}</div>'
        )

    def __repr__(self) -> str:
        return "\n".join([self.title, *(re.sub(r"<[^>]+>", "", html.unescape(p)) for p in self.paragraphs)])


def run_label(parameters: Mapping[str, Any]) -> str:
    """A run as a reader names it: dataset, training / test images, seed and profile."""
    from .config import DATASET_SIZES, dataset_sizes

    dataset = str(parameters.get("dataset"))
    what = DATASET_NAMES.get(dataset, dataset)
    if dataset in DATASET_SIZES:
        n_train, n_test = dataset_sizes(SimpleNamespace(**{"n_train": 0, "n_test": 0, **parameters}))
        what += f", {n_train:,} training / {n_test:,} test images"
    return f"{what}, seed {parameters.get('seed', 0)}, profile {parameters.get('profile', 'quick')}"


def rerun_command(chapter: str, parameters: Mapping[str, Any]) -> str:
    """The papermill command that executes ``chapter`` with ``parameters`` (lists as YAML), from the repository root."""
    notebook = notebook_of(chapter)
    args = []
    for name, value in parameters.items():
        if isinstance(value, (list, tuple)):
            args.append(f"-y '{name}: {json.dumps(list(value))}'")
        else:
            args.append(f"-p {name} {value}")
    out = notebook.replace(".ipynb", ".executed.ipynb")
    return " ".join(["papermill", f"book/{notebook}", out, *args])


def _code(text: str) -> str:
    return f"<code>{html.escape(text)}</code>"


def _evidence_command(chapter: str) -> str:
    spec = SPECS / f"{chapter}.yaml"
    if not spec.is_file():
        return ""
    return (
        f"Every run of the chapter's evidence (seeds and conditions): {_code(f'make sweep SPEC=sweeps/evidence/{spec.name}')}"
        f", or {_code('make evidence')}, which records the chapters whose code changed and then the ledger and these pages."
    )


def given_parameters(cfg: Any, chapter: str) -> dict[str, Any]:
    """The parameters of ``cfg`` that differ from what its profile resolves to on its dataset (dataset, seed and
    profile always): what a papermill command needs to run it again."""
    from . import config
    from .chapters import chapter as chapter_module

    spec = chapter_module(notebook_of(chapter)).PARAMS
    base = {"profile": cfg.profile, "dataset": cfg.dataset} if hasattr(cfg, "dataset") else {"profile": cfg.profile}
    try:  # values the profile derives from the dataset (a latent size, say) are no choice of this run
        default = vars(config.resolve_values(spec, base, check_device=False, check_data=False))
    except config.ParameterError:
        default = {name: p.default(cfg.profile) for name, p in {**config.COMMON, **spec}.items()}
    out: dict[str, Any] = {"profile": cfg.profile}
    for name in (*config.COMMON, *spec):
        value = getattr(cfg, name, None)
        if name != "device" and (name in ("dataset", "seed") or value != default.get(name)):
            out[name] = value
    return out


def banner(cfg: Any, chapter: str) -> Banner:
    """The banner of a chapter's page as executed: the run it shows and the command that runs it again.

    On scikit-learn's 8x8 digits it says that the page is the quick smoke test ``make test``
    executes, not evidence. A recorded page (:mod:`lib.recorded`) gets :func:`recorded_banner` instead.
    """
    given = given_parameters(cfg, chapter)
    rerun = f"Run it again: {_code(rerun_command(chapter, given))}"
    if cfg.dataset == "digits":
        return Banner(
            f"Quick run on 8x8 digits ({notebook_of(chapter)})",
            (
                f"This page was executed on {run_label(given)}, on {cfg.device}: the smoke test "
                f"{_code('make test')} runs, not evidence (on 8x8 digits a logistic regression on the pixels "
                f"ties the networks). The book shows the chapter's run on {DATASET_NAMES[PAGE_DATASET]} where "
                f"the evidence recording has it.",
                rerun,
            ),
        )
    return Banner(
        f"Run on {DATASET_NAMES.get(cfg.dataset, cfg.dataset)}",
        (f"This page was executed on {run_label(given)}, on {cfg.device}.", rerun),
    )


def recorded_banner(run: Mapping[str, Any], *, stale: str = "", other_run: str = "", short: bool = False) -> Banner:
    """The banner of a recorded page: the evidence ledger's run it shows (provenance, the commands that re-run it).

    ``stale`` (the page was recorded with other code than the chapter's now) and ``other_run``
    (the ledger now records another run) are shown first, as a warning. ``short``: the note at the
    top of the page, naming the run only (its banner further down says the rest).
    """
    chapter, params = str(run["chapter"]), dict(run["parameters"])
    commit = str(run.get("git_commit") or "")[:7]
    threads = run.get("threads")
    how = ", ".join(
        part
        for part in (
            f"recorded {str(run.get('date') or '')[:10]}" if run.get("date") else "",
            f"on {run['device']}" if run.get("device") else "",
            f"{int(threads)} CPU thread{'s' if int(threads) != 1 else ''}" if threads not in (None, "") else "",
            f"at commit {_code(commit)}" if commit else "",
        )
        if part and not (short and "commit" in part)
    )
    whose = "a run the evidence ledger recorded" if other_run else "the evidence ledger's own run"
    shown = f"This page is {whose} of the chapter on {run_label(params)} (run {_code(str(run['point']))}, {how})"
    warnings = [p for p in (stale, other_run) if p]
    if short:
        if stale:  # the top of the page says it in a line; the banner says what it means
            warnings[0] = "<strong>Stale page:</strong> recorded with other code than the chapter's now."
        paragraphs = [*warnings, shown + ". Its banner below says more, and how to run it again."]
    else:
        shown += "." if other_run else ": its numbers are the ledger's."
        rerun = f"Run it again: {_code(rerun_command(chapter, params))}"
        paragraphs = [*warnings, shown, rerun, _evidence_command(chapter)]
    title = f"Recorded run on {DATASET_NAMES.get(str(params.get('dataset')), params.get('dataset'))}"
    if warnings:
        title += ": stale" if stale else ": not the ledger’s run"
    return Banner(title, tuple(p for p in paragraphs if p), "warning" if warnings else "note")


# ------------------------------------------------------------------ verdicts at a glance: the landing page, chapter boxes

# One colour per replicated verdict, (text, background), the same on every page: green for a claim that
# holds, red for one the evidence contradicts, pale for partial or open ones, grey where nothing decided.
GREY = ("#344054", "#eaecf0")
VERDICT_COLOURS: dict[str, tuple[str, str]] = {
    evidence.HOLDS: ("#ffffff", "#1a7f37"),
    evidence.WEAK: ("#14532d", "#d3f5dd"),
    evidence.OPPOSITE: ("#ffffff", "#b42318"),
    evidence.WEAK_OPPOSITE: ("#7a271a", "#fee4e2"),
    evidence.NO_EFFECT: ("#7a2e0e", "#fddcab"),
    evidence.INCONCLUSIVE: ("#5b4a00", "#fef3c7"),
    evidence.DEPENDS: ("#ffffff", "#6941c6"),
}
VERDICT_WORDS = (
    "A claim's runs are pooled over seeds in each dataset or setting and compared with the smallest effect of "
    "interest (SESOI) declared for it: <em>holds</em> or <em>opposite</em>, beyond the SESOI in or against the "
    "claimed direction; <em>weak</em>, an effect not shown to reach the SESOI; <em>no effect</em>, within it; "
    "<em>inconclusive</em>, neither; <em>depends on the data</em>, datasets or settings disagree; <em>not "
    "measured</em>, no run could compute the statistic; <em>stale</em>, recorded with other code than the chapter's."
)
STALE_NOTE = (
    "Stale evidence: these verdicts were recorded with other code than the chapter runs now; "
    "<code>make evidence</code> records them again."
)
ROOT = Path(__file__).resolve().parent.parent
BIB = ROOT / "references.bib"
CITATION = ROOT / "CITATION.cff"
BOOK_PREFIX = re.compile(r"^\[book[^\]]*\]\s*")  # "[book] ", "[book, fidelity] ": the book's claim, marked apart
FIELD = re.compile(r"\{(\w+)(?::[^{}]*)?\}")


@dataclass(frozen=True)
class Shown:
    """What a ``from-ledger`` cell returns: HTML for the page, plain text for a terminal."""

    html: str
    text: str

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Line:
    """One claim as the landing page and a chapter's box show it."""

    id: str
    statement: str
    verdict: str
    stale: bool
    reason: str
    href: str
    follows: bool = False  # a "... also" claim that qualifies the line before it


def verdict_chip(verdict: str, stale: bool = False) -> str:
    """A replicated verdict as a coloured label (:data:`VERDICT_COLOURS`), flagged when stale."""
    fg, bg = VERDICT_COLOURS.get(verdict, GREY)
    chip = (
        f'<span class="verdict-chip" style="color:{fg};background:{bg};border-radius:0.6em;padding:0.05em 0.55em;'
        f'white-space:nowrap;font-size:0.9em">{html.escape(verdict)}</span>'
    )
    if stale:
        chip += (
            ' <span class="verdict-stale" title="recorded with other code than the chapter runs now" '
            'style="color:#b54708;font-size:0.8em;white-space:nowrap">stale</span>'
        )
    return chip


def tally(verdicts: list[str]) -> str:
    """How many of the verdicts say each word, in the rule's order: ``"3 hold, 1 opposite, 2 inconclusive"``."""
    order = [*evidence.REPLICATED, claims.NOT_REPLICATED]
    counts = {w: verdicts.count(w) for w in dict.fromkeys([*order, *verdicts])}
    plural = {evidence.HOLDS: "hold", evidence.DEPENDS: "depend on the data"}
    return ", ".join(f"{n} {w if n == 1 else plural.get(w, w)}" for w, n in counts.items() if n)


def statement(template: str, recorded: str = "", label: str = "") -> str:
    """A declared claim's statement for a reader, without the book's ``[book]`` mark.

    The numbers of one run (a parenthesis or ``= {field}`` holding a ``{field}``) are left out:
    they differ from run to run. The other fields are filled from ``recorded``, a run's wording of
    the claim, where it matches the template. A leading ``{field}: `` still unfilled becomes
    ``label: `` (what tells the claim from its siblings of the same template), any other one "…".
    """
    template, recorded = BOOK_PREFIX.sub("", template), BOOK_PREFIX.sub("", recorded or "")
    text = re.sub(r"\s*\([^()]*\{\w+[^{}]*\}[^()]*\)", "", template)
    text = re.sub(r"\s*=\s*\{\w+[^{}]*\}", "", text)
    values: dict[str, str] = {}
    if FIELD.search(text) and recorded:
        names, pattern, at = [], "", 0
        for m in FIELD.finditer(template):
            pattern += re.escape(template[at : m.start()])
            pattern += f"(?P<{m.group(1)}>.+?)" if m.group(1) not in names else f"(?P={m.group(1)})"
            names.append(m.group(1))
            at = m.end()
        found = re.fullmatch(pattern + re.escape(template[at:]), recorded)
        values = found.groupdict() if found else {}
    text = FIELD.sub(lambda m: values.get(m.group(1), "\0"), text)
    text = re.sub(r"^\0:\s*", f"{label}: " if label else "", text).replace("\0", "…")
    return text.strip()


def sibling_labels(declared: list[claims.Declared]) -> dict[str, str]:
    """For claims declared with the same statement (one per network, say): the words of each one's id that the
    others' lack (``ch03.mlp_decisions`` and ``ch03.conv_decisions``: ``mlp``, ``conv``)."""
    out: dict[str, str] = {}
    by_template: dict[str, list[claims.Declared]] = {}
    for d in declared:
        by_template.setdefault(d.claim, []).append(d)
    for group in by_template.values():
        words = [d.id.split(".", 1)[1].split("_") for d in group]
        common = set.intersection(*(set(w) for w in words))
        for d, w in zip(group, words):
            if len(group) > 1:
                out[d.id] = " ".join(x for x in w if x not in common)
    return out


def _number(v: Any) -> float:
    """A table cell as a float, NaN where it holds none."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _band(row: Mapping[str, Any]) -> str:
    """The smallest effect of interest a verdict was decided with, around its null where that is not 0 (1 for a ratio)."""
    sesoi, null = _number(row.get("sesoi")), _number(row.get("null"))
    ratio = str(row.get("analysis_scale")) == claims.LOG
    if not math.isfinite(sesoi):
        return "no SESOI declared"
    band = f"SESOI ×{sesoi:.3g}" if ratio else f"SESOI {sesoi:.3g}"
    return band if not math.isfinite(null) or null == (1.0 if ratio else 0.0) else f"null {null:.3g}, {band}"


def reason(verdict: Mapping[str, Any] | None, conditions: pd.DataFrame | None) -> str:
    """Why a claim got its replicated verdict, in one line: each condition's pooled estimate and interval (their
    range where more than two conditions agree), each condition's verdict where they differ, against the SESOI,
    and the runs."""
    if verdict is None or conditions is None or conditions.empty:
        return "no run recorded yet"
    rows = conditions.to_dict("records")
    n = [int(r["n"]) for r in rows]
    labels = [str(r["condition"]) for r in rows]
    datasets = [str(r.get("dataset", "")) for r in rows]
    unit = "datasets" if len(set(datasets)) == len(rows) and "synthetic" not in datasets else "settings"
    runs = f"{n[0]} seeds × {len(n)} {unit}" if len(set(n)) == 1 else f"{sum(n)} runs in {len(n)} {unit}"
    est, lo, hi = ([_number(r.get(k)) for r in rows] for k in ("pooled", "pooled_lo", "pooled_hi"))

    def estimate(i: int) -> str:
        if not math.isfinite(est[i]):
            return "no estimate"
        return claims.fmt(est[i], (lo[i], hi[i]) if math.isfinite(lo[i]) and math.isfinite(hi[i]) else None, 2)

    words = [str(r.get("verdict", "")) for r in rows]
    same = len(set(words)) == 1
    if len(rows) == 1:
        return f"{estimate(0)} vs {_band(verdict)} ({n[0]} seeds, {labels[0]})"
    if not any(map(math.isfinite, est)):
        shown = f"no estimate in any {unit[:-1]}"
    elif same and len(rows) > 2 and all(map(math.isfinite, est + lo + hi)):
        shown = (
            f"{_decimals(min(est))} to {_decimals(max(est))} in every {unit[:-1]}, each interval within "
            f"[{_decimals(min(lo))}, {_decimals(max(hi))}]"
        )
    else:
        names = evidence.short_conditions(labels)
        shown = "; ".join(
            f"{names[label]} {estimate(i)}" + ("" if same else f" ({words[i]})") for i, label in enumerate(labels)
        )
    return f"{shown} vs {_band(verdict)} ({runs})"


def _decimals(x: float) -> str:
    return claims.fmt(x, None, 2)


def notebook_of(chapter: str) -> str:
    """The notebook (in book/) of a chapter that declares claims (``"ch02"``); a clear error for any other name."""
    from .chapters import NOTEBOOKS

    found = {name: nb for nb, name in NOTEBOOKS.items() if re.fullmatch(r"ch\d\d", name)}
    if chapter not in found:
        raise ValueError(f"chapter must be one of {', '.join(sorted(found))}, got {chapter!r}")
    return found[chapter]


def chapter_declarations(chapter: str) -> list[claims.Declared]:
    """Chapter ``chapter``'s declared claims, in their order (imports the chapter)."""
    notebook_of(chapter)  # a clear error for a name that is no chapter
    module = importlib.import_module(f"{__package__}.chapters.{chapter}.claims")
    return list(module.DECLARED.values())


def headline_claims(declared: list[claims.Declared]) -> list[claims.Declared]:
    """The claims a chapter is read by: the paper's, or the book's own where the chapter states none of a paper."""
    paper = [d for d in declared if d.kind == claims.PAPER]
    return paper or [d for d in declared if d.kind == claims.CONTROL]


def _ledger(out: str | Path | None, notebook_dir: str | Path) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """The ledger's verdicts by claim id (with ``stale``) and its conditions by claim id; empty without a ledger."""
    verdicts, conditions = evidence.read(evidence.VERDICTS, out), evidence.read(evidence.CONDITIONS, out)
    if verdicts is None or verdicts.empty:
        return pd.DataFrame(columns=["replicated", "stale"]).rename_axis("id"), {}
    verdicts = verdicts.assign(stale=evidence.stale_column(verdicts, notebook_dir)).set_index("id")
    by_claim = {} if conditions is None else {c: g for c, g in conditions.groupby("claim_id", sort=False)}
    return verdicts, by_claim


def chapter_lines(
    chapter: str, out: str | Path | None = None, notebook_dir: str | Path = evidence.BOOK, page: str = ""
) -> list[Line]:
    """Chapter ``chapter``'s headline claims (:func:`headline_claims`) with their replicated verdicts from the
    ledger in ``out`` (default: the committed one), each linked to its section; links are relative to ``page``
    (a notebook's file name: on that page a link is its anchor alone)."""
    verdicts, conditions = _ledger(out, notebook_dir)
    notebook = notebook_of(chapter)
    base = "" if page == notebook else notebook.replace(".ipynb", ".html")
    lines = []
    shown = headline_claims(chapter_declarations(chapter))
    labels = sibling_labels(shown)
    for d in shown:
        row = verdicts.loc[d.id].to_dict() if d.id in verdicts.index else None
        text = statement(d.claim, str(row.get("claim") or "") if row else "", labels.get(d.id, ""))
        lines.append(
            Line(
                id=d.id,
                statement=text,
                verdict=str(row["replicated"]) if row else claims.NOT_REPLICATED,
                stale=bool(row["stale"]) if row else False,
                reason=reason(row, conditions.get(d.id)),
                href=f"{base}#{d.section}" if d.section else (base or "#"),
                follows=text.startswith("..."),
            )
        )
    return lines


def _grouped(lines: list[Line]) -> list[tuple[Line, list[Line]]]:
    """Each line with the "... also" lines that follow it."""
    out: list[tuple[Line, list[Line]]] = []
    for line in lines:
        if line.follows and out:
            out[-1][1].append(line)
        else:
            out.append((line, []))
    return out


def _also(subs: list[Line], flag: bool = True) -> str:
    """The "... also" claims that qualify a line, on one line of their own under it."""
    if not subs:
        return ""
    parts = [f"{html.escape(s.statement.lstrip('. '))} {verdict_chip(s.verdict, s.stale and flag)}" for s in subs]
    return f'<br><span class="verdict-also" style="font-size:0.9em">{" · ".join(parts)}</span>'


def _words_html() -> str:
    return f'<p class="verdict-words" style="font-size:0.85em;color:#475467;margin:0.4em 0 0">{VERDICT_WORDS}</p>'


# A verdict box of more than BOX_FOLD lead claims (chapter 5's 16) shows the first BOX_OPEN open and folds the rest
# under their tally, so it stays about a screen tall; chapter 4's 9 stay open.
BOX_FOLD, BOX_OPEN = 10, 7


def verdict_box(chapter: str, out: str | Path | None = None, notebook_dir: str | Path = evidence.BOOK) -> Shown:
    """The box at the top of a chapter: its paper's claims (the book's own for chapter 5), each coloured by its
    replicated verdict from the ledger, flagged when stale (once for the box when every one is) and linked to the
    section that tests it, and what the verdict words mean. Needs only the chapter name and the ledger's files."""
    lines = chapter_lines(chapter, out, notebook_dir, page=notebook_of(chapter))
    book = not any(d.kind == claims.PAPER for d in chapter_declarations(chapter))
    head = (
        f"Replicated verdicts of {'the book' if book else 'the paper'}'s claims: {tally([x.verdict for x in lines])}."
    )
    every = all(x.stale for x in lines if x.verdict != claims.NOT_REPLICATED)  # then the note says it once
    groups = _grouped(lines)
    item = [
        f'<li style="margin:0.2em 0">{verdict_chip(x.verdict, x.stale and not every)} '
        f'<a href="{html.escape(x.href)}" title="{html.escape(x.reason)}">{html.escape(x.statement)}</a>'
        f"{_also(subs, not every)}</li>"
        for x, subs in groups
    ]
    items = "".join(item if len(item) <= BOX_FOLD else item[:BOX_OPEN])
    if len(item) > BOX_FOLD:
        rest = [x.verdict for x, _ in groups[BOX_OPEN:]]
        items += (
            f'<li class="verdict-more" style="margin:0.2em 0"><details><summary>{len(rest)} more claims: '
            f'{html.escape(tally(rest))}</summary><ul style="list-style:none;padding-left:1em;margin:0">'
            f"{''.join(item[BOX_OPEN:])}</ul></details></li>"
        )
    stale = any(x.stale for x in lines)
    body = (
        '<div class="verdict-box" style="border:1px solid #d0d5dd;border-radius:6px;padding:0.5em 0.8em;'
        'margin:0 0 1em;font-size:0.9em;line-height:1.4">'
        f'<p style="margin:0 0 0.2em"><strong>{html.escape(head)}</strong></p>'
        + (f'<p class="verdict-box-stale" style="margin:0 0 0.2em;color:#b54708">{STALE_NOTE}</p>' if stale else "")
        + f'<ul style="list-style:none;padding-left:0;margin:0">{items}</ul>{_words_html()}</div>'
    )
    text = "\n".join([head, *(f"- [{x.verdict}{', stale' if x.stale else ''}] {x.statement}" for x in lines)])
    return Shown(body, text)


def chapter_title(notebook: str, notebook_dir: str | Path = evidence.BOOK) -> tuple[str, str]:
    """A chapter notebook's title (its first ``# `` heading) and the first paper it cites ``{cite:t}`` (a bib key)."""
    nb = json.loads((Path(notebook_dir) / notebook).read_text())
    title, key = notebook, ""
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        heading = re.search(r"^# (.+)$", text, re.M)
        if heading and title == notebook:
            title = heading.group(1).strip()
        cite = re.search(r"\{cite:t\}`([^`]+)`", text)
        if cite and not key:
            key = cite.group(1)
        if key and title != notebook:
            break
    return title, key


def cited(key: str, bib: Path = BIB) -> str:
    """A reference as the text names it, from ``references.bib``: ``"Jiang, Zhou & Huang (2021)"``, or the key."""
    entry = re.search(r"@\w+\{" + re.escape(key) + r",(.*?)\n\}", bib.read_text() if bib.exists() else "", re.S)
    if not entry:
        return key
    author, year = (re.search(rf"\b{f}\s*=\s*\{{(.*?)\}}\s*,?\s*$", entry.group(1), re.M) for f in ("author", "year"))
    if not author:
        return key
    names = [a.split(",")[0].strip() for a in author.group(1).split(" and ")]
    who = names[0] if len(names) == 1 else " & ".join(names) if len(names) == 2 else f"{names[0]} et al."
    return f"{who} ({year.group(1)})" if year else who


def _scale_line(out: str | Path | None = None) -> str:
    """What the evidence was recorded on, in one line: runs, seeds, datasets and their sizes, dates, devices."""
    ledger = evidence.read(evidence.LEDGER, out)
    if ledger is None or ledger.empty:
        return "No evidence is recorded yet: <code>make evidence</code> records it."
    s = evidence.provenance_summary(ledger)
    runs = ledger.drop_duplicates("point")
    seeds = runs.groupby(["chapter", "condition"]).seed.nunique()
    per = f"{seeds.min()}" if seeds.min() == seeds.max() else f"{seeds.min()}-{seeds.max()}"
    data = []
    for dataset, g in runs.groupby("dataset", sort=True):
        params = [json.loads(p) if isinstance(p, str) and p.startswith("{") else {} for p in g.parameters]
        chapters = ", ".join(sorted({c.replace("ch0", "chapter ") for c in g.chapter}))
        if dataset in config.DATASET_SIZES:
            sizes = sorted(
                {
                    config.dataset_sizes(
                        SimpleNamespace(dataset=dataset, n_train=p.get("n_train"), n_test=p.get("n_test"))
                    )
                    for p in params
                }
            )
            shown = " or ".join(f"{a:,} training / {b:,} test images" for a, b in sizes)
            h, w = config.IMAGE_SHAPES[dataset]
            data.append(f"{dataset} ({h}x{w} images; {shown})")
        else:
            varied = sorted(
                {k for p in params for k in p if k not in ("seed", "profile") and isinstance(p[k], (int, float))}
            )
            ranges = ", ".join(
                f"{k} "
                + "-".join(
                    f"{v:g}" for v in sorted({min(p[k] for p in params if k in p), max(p[k] for p in params if k in p)})
                )
                for k in varied
            )
            data.append(f"{dataset} data ({chapters}{': ' + ranges if ranges else ''})")
    profiles = ", ".join(sorted(set(runs.scale.astype(str))))
    when = s["first"][:10] if s["first"][:10] == s["last"][:10] else f"{s['first'][:10]} to {s['last'][:10]}"
    return (
        f"The evidence: {s['runs']} runs, {per} seeds per dataset or setting, at the {profiles} profile, on "
        f"{'; '.join(data)}; recorded {when} on {', '.join(s['devices'])}."
    )


# The book's CSS lets a wide or tall output table scroll in its own box, its first column narrow and pinned: the
# landing page's results table is read down the page instead, its claim column as wide as the page allows.
LANDING_CSS = (
    "div.cell_output div.output.text_html:has(table.landing-results){max-height:none;overflow:visible}"
    "div.cell_output div.output.text_html table.landing-results tr > :first-child"
    "{position:static;max-width:none;box-shadow:none}"
)


def landing(out: str | Path | None = None, notebook_dir: str | Path = evidence.BOOK) -> Shown:
    """The landing page's answer: per paper (chapters 1-4) its claims with their replicated verdicts, a reason
    each and links to the sections that test them, chapter 5's claims (the book's own) apart, a tally, and the
    scale of the evidence, all from the ledger in ``out`` (default: the committed one)."""
    from .chapters import NOTEBOOKS

    groups, papers, book = [], [], []
    for notebook, chapter in NOTEBOOKS.items():
        if not chapter.startswith("ch"):
            continue
        lines = chapter_lines(chapter, out, notebook_dir)
        title, key = chapter_title(notebook, notebook_dir)
        is_paper = any(d.kind == claims.PAPER for d in chapter_declarations(chapter))
        (papers if is_paper else book).extend(lines)
        who = cited(key) if is_paper and key else "the four papers together: every claim is the book's own"
        groups.append((notebook, f"Chapter {int(notebook[:2])}: {title}", who, lines))
    head = f"Of the four papers' {len(papers)} claims tested here: {tally([x.verdict for x in papers])}."
    if book:
        head += f" The book's own {len(book)} claims of chapter 5: {tally([x.verdict for x in book])}."
    every = all(x.stale for x in papers + book if x.verdict != claims.NOT_REPLICATED)  # said once, not per chip
    rows = []
    for notebook, title, who, lines in groups:
        link = notebook.replace(".ipynb", ".html")
        rows.append(
            f'<tr class="landing-chapter"><th colspan="2" style="text-align:left;padding-top:0.8em">'
            f'<a href="{link}">{html.escape(title)}</a> <span style="font-weight:normal">· {html.escape(who)}</span>'
            "</th></tr>"
        )
        for x, subs in _grouped(lines):
            rows.append(
                f'<tr><td><a href="{html.escape(x.href)}">{html.escape(x.statement)}</a><br>'
                f'<span class="landing-reason" style="font-size:0.85em;color:#475467">{html.escape(x.reason)}</span>'
                f'{_also(subs, not every)}</td><td style="vertical-align:top;white-space:nowrap">'
                f"{verdict_chip(x.verdict, x.stale and not every)}</td></tr>"
            )
    stale, scale = any(x.stale for x in papers + book), _scale_line(out)
    table = (
        f"<style>{LANDING_CSS}</style>"
        '<table class="landing-results" style="width:100%">'
        '<thead><tr><th style="text-align:left">claim, and why: pooled estimate [95% interval] against its SESOI</th>'
        '<th style="text-align:left;white-space:nowrap;width:1%">replicated verdict</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    body = (
        f'<div class="landing"><p><strong>{html.escape(head)}</strong></p>'
        f'<p class="landing-scale">{scale}</p>'
        + (f'<p class="verdict-box-stale" style="color:#b54708">{STALE_NOTE}</p>' if stale else "")
        + f"{table}{_words_html()}</div>"
    )
    text = "\n".join(
        [head, re.sub(r"<[^>]+>", "", scale)]
        + [
            line
            for _, title, who, lines in groups
            for line in [f"{title} ({who})"]
            + [f"- [{x.verdict}{', stale' if x.stale else ''}] {x.statement}: {x.reason}" for x in lines]
        ]
    )
    return Shown(body, text)


def citation(path: Path = CITATION) -> Shown:
    """How to cite the book, from ``CITATION.cff``: authors, year (when released), title, version, its address
    (when it has one) and licence."""
    import yaml

    if not path.exists():
        raise FileNotFoundError(f"no citation file at {path}")
    cff = yaml.safe_load(path.read_text())
    authors = ", ".join(
        a.get("name") or f"{a.get('given-names', '')} {a.get('family-names', '')}".strip()
        for a in cff.get("authors", [])
    )
    year = str(cff.get("date-released", ""))[:4]
    parts = [html.escape(authors) + (f" ({year})." if year else "."), f"<em>{html.escape(cff['title'])}</em>."]
    if cff.get("version"):
        parts.append(f"Version {html.escape(str(cff['version']))}.")
    url = cff.get("url") or cff.get("repository-code")
    if url:
        parts.append(f'<a href="{html.escape(str(url))}">{html.escape(str(url))}</a>.')
    licence = f" The code is under the {html.escape(str(cff['license']))} licence." if cff.get("license") else ""
    body = (
        f'<p class="citation">{" ".join(parts)} The citation file <code>CITATION.cff</code> at the root of the '
        f"repository has this entry for reference managers.{licence}</p>"
    )
    return Shown(body, re.sub(r"<[^>]+>", "", html.unescape(body)))
