"""The claims table that closes every chapter: claim, statistic, measured value, computed verdict.

Every claim carries a stable ``id`` (``"ch01.clean_alpha"``: chapter, dot, short name,
never renumbered) and its statistic as numbers (``estimate``, interval ``lo``-``hi``).
:func:`table` with ``chapter=`` records those numbers and the verdict of this run
through :func:`lib.results.record` (keys ``claim:<id>:estimate|lo|hi|verdict``, and the
declaration the replicated verdict needs: ``null|sesoi|scale|above|depends``), so a
sweep collects per-run claim records from the same rows the reader sees, and adds the
replicated verdict of each claim from the evidence ledger's verdict table.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from . import results
from .verdicts import EVIDENCE_DIR, FAILS, HOLDS, INCONCLUSIVE, VERDICTS, VERDICTS_FILE, shown  # noqa: F401  (part of this module's interface)
from .verdicts import replicated as _replicated


@dataclass
class Claim:
    """One row of a claims table. ``verdict`` must come from a computation, e.g. :func:`by_interval`."""

    claim: str
    statistic: str
    value: str
    verdict: str
    id: str = ""
    estimate: float = math.nan
    lo: float = math.nan
    hi: float = math.nan
    kind: str = ""
    # The declaration the pooled verdict reads (see Declared); empty for a claim built without one.
    null: float = math.nan
    sesoi: float = math.nan
    scale: str = ""
    above: bool | None = None
    depends: bool | None = None
    why: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        for name in ("estimate", "lo", "hi", "null", "sesoi"):
            value = getattr(self, name)
            setattr(self, name, math.nan if value is None else float(value))


PAPER = "paper"  # a claim of the paper
CONTROL = "control"  # the book's control or extension that qualifies a paper claim
CHECK = "check"  # a mechanism any correct implementation must show: asserted and tested, never a finding
DESCRIPTIVE = "descriptive"  # a number worth showing that decides nothing
KINDS = (PAPER, CONTROL, CHECK, DESCRIPTIVE)
# The scales a claim's statistic is pooled on (lib.pooling): as it is, correlations on Fisher's z, ratios on logs.
IDENTITY, FISHER_Z, LOG = "identity", "fisher_z", "log"
SCALES = (IDENTITY, FISHER_Z, LOG)


@dataclass(frozen=True)
class Declared:
    """A claim declared once: what the claims table, the ledger, the Evidence page and the tests read.

    ``claim`` and ``statistic`` may hold ``{name}`` fields that :meth:`interval` and
    :meth:`tested` fill from their keyword arguments (a run's sizes, a lens's label).
    ``threshold`` and ``above`` are the decision: the claim holds when the statistic's
    interval lies above (``above=True``) or below ``threshold``. ``settings`` names the
    book-chosen parameters the claim depends on.

    The replicated verdict pools the runs (:mod:`lib.pooling`) and reads: ``null``, the
    statistic's value under no effect (``threshold`` when left None); ``sesoi``, the
    smallest effect of interest in the statistic's units (a ratio > 1 on the ``log``
    scale), None until declared; ``scale``, where the runs are pooled (``identity``,
    ``fisher_z`` for correlations, ``log`` for ratios); ``depends``, whether the claim is
    expected to depend on the condition (False: its distinct runs are pooled across
    conditions); ``why``, the reason for the SESOI.

    ``section`` names the MyST label (``"ch01-fidelity"``: the chapter, a hyphen, a name) of the
    section of the chapter's notebook that tests the claim: the verdict box and the landing page link to it.
    """

    id: str
    kind: str
    claim: str
    statistic: str
    threshold: float = 0.0
    above: bool = True
    settings: tuple[str, ...] = ()
    null: float | None = None
    sesoi: float | None = None
    scale: str = IDENTITY
    depends: bool = True
    why: str = ""
    section: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"claim {self.id!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if "." not in self.id:
            raise ValueError(f"claim id must read '<chapter>.<name>', got {self.id!r}")
        if self.scale not in SCALES:
            raise ValueError(f"claim {self.id!r}: scale must be one of {SCALES}, got {self.scale!r}")
        chapter = self.id.split(".", 1)[0]
        if self.section and not re.fullmatch(rf"{re.escape(chapter)}-[a-z0-9]+(-[a-z0-9]+)*", self.section):
            raise ValueError(
                f"claim {self.id!r}: section must be a label '{chapter}-<name>' (lower-case letters, digits and "
                f"hyphens), got {self.section!r}"
            )
        if self.sesoi is not None:
            least = 1.0 if self.scale == LOG else 0.0
            if not (math.isfinite(self.sesoi) and self.sesoi > least):
                what = "a ratio > 1 on the log scale" if self.scale == LOG else "a positive number"
                raise ValueError(f"claim {self.id!r}: sesoi must be {what}, got {self.sesoi!r}")

    @property
    def null_value(self) -> float:
        """The statistic's value under no effect: ``null``, else ``threshold``."""
        return float(self.threshold if self.null is None else self.null)

    def _declaration(self) -> dict[str, Any]:
        """The fields a :class:`Claim` row copies from this declaration."""
        return dict(
            kind=self.kind,
            null=self.null_value,
            sesoi=math.nan if self.sesoi is None else self.sesoi,
            scale=self.scale,
            above=self.above,
            depends=self.depends,
            why=self.why,
        )

    def words(self, **fields: Any) -> tuple[str, str]:
        """The claim's statement and statistic with their ``{name}`` fields filled."""
        return self.claim.format(**fields), self.statistic.format(**fields)

    def interval(
        self, estimate: float, lo: float, hi: float, *, value: str | None = None, digits: int = 3, **fields: Any
    ) -> Claim:
        """This run's row, decided by which side of ``threshold`` the interval ``lo``-``hi`` lies (:func:`by_interval`)."""
        claim, statistic = self.words(**fields)
        if value is None:
            value = fmt(estimate, (lo, hi), digits)
        return Claim(
            claim,
            statistic,
            value,
            by_interval(lo, hi, self.threshold, above=self.above),
            id=self.id,
            estimate=estimate,
            lo=lo,
            hi=hi,
            **self._declaration(),
        )

    def tested(
        self,
        verdict: str,
        value: str,
        estimate: float = math.nan,
        lo: float = math.nan,
        hi: float = math.nan,
        **fields: Any,
    ) -> Claim:
        """This run's row with a verdict computed elsewhere (:func:`by_test`, a shape test)."""
        claim, statistic = self.words(**fields)
        return Claim(
            claim, statistic, value, verdict, id=self.id, estimate=estimate, lo=lo, hi=hi, **self._declaration()
        )


def declared(*claims: Declared) -> dict[str, Declared]:
    """A chapter's declarations by their short name (the id after the dot); ids must be unique."""
    out: dict[str, Declared] = {}
    for c in claims:
        short = c.id.split(".", 1)[1]
        if short in out:
            raise ValueError(f"claim {c.id!r} is declared twice")
        out[short] = c
    return out


def by_interval(lo: float, hi: float, threshold: float = 0.0, *, above: bool = True) -> str:
    """Verdict for "the statistic is above (or below) ``threshold``" from its confidence interval.

    Holds when the whole interval is on the claimed side, does not hold when the whole
    interval is on the other side, inconclusive when it straddles the threshold.
    """
    if any(math.isnan(v) for v in (lo, hi)):
        return INCONCLUSIVE
    if lo > hi:
        lo, hi = hi, lo
    if above:
        return HOLDS if lo > threshold else FAILS if hi < threshold else INCONCLUSIVE
    return HOLDS if hi < threshold else FAILS if lo > threshold else INCONCLUSIVE


def by_test(holds: bool, refuted: bool) -> str:
    """Verdict from two computed conditions: evidence for the claim, evidence against it."""
    if holds and not refuted:
        return HOLDS
    if refuted and not holds:
        return FAILS
    return INCONCLUSIVE


def fmt(value: float, ci: tuple[float, float] | None = None, digits: int = 3) -> str:
    """A value with an optional confidence interval, for the table's value column."""
    s = f"{value:.{digits}g}"
    return s if ci is None else f"{s} [{ci[0]:.{digits}g}, {ci[1]:.{digits}g}]"


class ClaimsTable(pd.DataFrame):
    """A DataFrame that displays every claim and statistic in full (no '...' truncation)."""

    @property
    def _constructor(self):
        return ClaimsTable

    def _repr_html_(self):
        with pd.option_context("display.max_colwidth", None):
            body = super()._repr_html_()
        warning, checks = self.attrs.get("warning"), self.attrs.get("checks")
        if checks:
            body += f'<p class="mechanism-checks">{html.escape(checks)}</p>'
        return body if not warning else f'<p class="evidence-stale"><strong>{html.escape(warning)}</strong></p>' + body

    def __repr__(self) -> str:
        with pd.option_context("display.max_colwidth", None, "display.width", 200):
            body = super().__repr__()
        warning, checks = self.attrs.get("warning"), self.attrs.get("checks")
        return "\n".join(part for part in (warning, body, checks) if part)


SHOWN = ("kind", "claim", "statistic", "value", "verdict")
KIND_SHOWN = {PAPER: "paper", CONTROL: "book", DESCRIPTIVE: "descriptive", "": ""}


class CheckFailed(AssertionError):
    """A mechanism check failed: the implementation is wrong, not the paper."""


def check_summary(claims: list[Claim]) -> str:
    """One line on the run's mechanism checks (kind :data:`CHECK`): all pass, or which do not."""
    checks = [c for c in claims if c.kind == CHECK]
    if not checks:
        return ""
    failed = [c.id for c in checks if c.verdict != HOLDS]
    if not failed:
        return f"Mechanism checks: all {len(checks)} pass (identities any correct implementation shows; not findings)."
    return f"Mechanism checks: {len(failed)} of {len(checks)} FAIL: {', '.join(failed)}."


def assert_checks(claims: list[Claim]) -> str:
    """Raise :class:`CheckFailed` naming every mechanism check that does not hold; else return :func:`check_summary`."""
    failed = [
        f"{c.id} ({c.statistic}: {c.value}, {c.verdict})" for c in claims if c.kind == CHECK and c.verdict != HOLDS
    ]
    if failed:
        raise CheckFailed("mechanism checks failed: " + "; ".join(failed))
    return check_summary(claims)


NOT_REPLICATED = "not replicated yet"
STALE_WARNING = (
    "Stale evidence: the replicated verdicts below were recorded with other code than ran this "
    "chapter (code it executes, or its notebook, changed since); re-record them with `make evidence`."
)


def reproduction_lines(
    missed: list[Claim],
    held: list[Claim],
    why: Callable[[Claim], str],
    *,
    verdict: Callable[[Claim], str] = lambda c: c.verdict,
    labels: tuple[str, str] = ("Not reproduced:", "Reproduced:"),
) -> list[str]:
    """A chapter headline's lists: the claims that do not hold first, each with its verdict and ``why(claim)``
    (the numbers that show it), then those that hold."""
    lines = []
    if missed:
        lines.append(labels[0])
        lines += [f"- {c.claim}: **{verdict(c)}**; {why(c)}." for c in missed]
    if held:
        lines.append(labels[1])
        lines += [f"- {c.claim}: {why(c)}." for c in held]
    return lines


def record(claims: list[Claim], chapter: str) -> None:
    """Record every claim's estimate, interval and verdict of this run, with its wording and row (:func:`lib.results.record`).

    The declaration the pooled verdict reads is recorded where the row has it:
    ``claim:<id>:null|sesoi`` (finite), ``scale`` (non-empty), ``above|depends`` (not None).
    """
    ids = [c.id for c in claims]
    bad = [i for i in ids if not i.startswith(chapter + ".") or len(i) <= len(chapter) + 1]
    if bad:
        raise ValueError(f"claim ids must read '{chapter}.<name>', got {bad}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"claim ids must be unique, got {ids}")
    values = {}
    for rank, c in enumerate(claims, start=1):
        values.update(
            {
                f"claim:{c.id}:estimate": c.estimate,
                f"claim:{c.id}:lo": c.lo,
                f"claim:{c.id}:hi": c.hi,
                f"claim:{c.id}:verdict": c.verdict,
                f"claim:{c.id}:claim": c.claim,
                f"claim:{c.id}:rank": rank,
            }
        )
        if c.kind:
            values[f"claim:{c.id}:kind"] = c.kind
        for name in ("null", "sesoi"):
            if math.isfinite(getattr(c, name)):
                values[f"claim:{c.id}:{name}"] = getattr(c, name)
        if c.scale:
            values[f"claim:{c.id}:scale"] = c.scale
        for name in ("above", "depends"):
            if getattr(c, name) is not None:
                values[f"claim:{c.id}:{name}"] = bool(getattr(c, name))
    results.record(**values)


def replicated(path: Path | None = None, chapter: str | None = None) -> pd.DataFrame:
    """The ledger's replicated verdicts indexed by claim id, with ``stale`` (empty when no ledger exists);
    with ``chapter`` only that chapter's."""
    return _replicated(Path(path or VERDICTS_FILE), chapter=chapter)


def table(claims: list[Claim], chapter: str | None = None) -> ClaimsTable:
    """The claims as a table numbered from 1, ready to display in full.

    Each row says its kind (``paper``: the paper's claim; ``book``: the book's control or
    extension). Mechanism checks (kind :data:`CHECK`) are no findings: they are summed up
    in one line under the table (:func:`check_summary`), and recorded like the rest. With ``chapter`` the run's claim records are stored (:func:`record`) and a column
    gives each claim's replicated verdict from the evidence ledger next to this run's;
    a verdict recorded with another ``lib/`` is marked stale in its cell and above the table.
    """
    shown_rows = [c for c in claims if c.kind != CHECK]
    df = ClaimsTable(
        [
            {k: (KIND_SHOWN.get(v, v) if k == "kind" else v) for k, v in asdict(c).items() if k in SHOWN}
            for c in shown_rows
        ],
        columns=list(SHOWN),
    )
    if not any(c.kind for c in claims):
        df = df.drop(columns="kind")
    df.index = range(1, len(df) + 1)
    df.attrs["checks"] = check_summary(claims)
    if chapter is not None:
        record(claims, chapter)
        rep = replicated(chapter=chapter)
        cells, stale = [], False
        for c in shown_rows:
            if c.id in rep.index:
                stale |= bool(rep.at[c.id, "stale"])
                cells.append(shown(rep.at[c.id, "replicated"], bool(rep.at[c.id, "stale"])))
            else:
                cells.append(NOT_REPLICATED)
        df["replicated verdict"] = cells
        if stale:
            df.attrs["warning"] = STALE_WARNING
    return df
