"""The claims table that closes every chapter: claim, statistic, measured value, computed verdict.

Every claim carries a stable ``id`` (``"ch01.clean_alpha"``: chapter, dot, short name,
never renumbered) and its statistic as numbers (``estimate``, interval ``lo``-``hi``).
:func:`table` with ``chapter=`` records those numbers and the verdict of this run
through :func:`lib.results.record` (keys ``claim:<id>:estimate|lo|hi|verdict``), so a
sweep collects per-run claim records from the same rows the reader sees, and adds the
replicated verdict of each claim from the evidence ledger's verdict table.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from . import results

HOLDS = "holds"
FAILS = "does not hold"
INCONCLUSIVE = "inconclusive at this scale"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE)


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

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        for name in ("estimate", "lo", "hi"):
            setattr(self, name, float(getattr(self, name)))


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
            return super()._repr_html_()

    def __repr__(self) -> str:
        with pd.option_context("display.max_colwidth", None, "display.width", 200):
            return super().__repr__()


SHOWN = ("claim", "statistic", "value", "verdict")
# The evidence ledger's aggregated verdicts (one row per claim id), written by lib.evidence.
VERDICTS_FILE = Path(os.environ.get("BOOK_EVIDENCE_DIR", Path(__file__).resolve().parent.parent / "evidence")) / "verdicts.csv"
NOT_REPLICATED = "not replicated yet"


def record(claims: list[Claim], chapter: str) -> None:
    """Record every claim's id, estimate, interval and verdict of this run (:func:`lib.results.record`)."""
    ids = [c.id for c in claims]
    bad = [i for i in ids if not i.startswith(chapter + ".") or len(i) <= len(chapter) + 1]
    if bad:
        raise ValueError(f"claim ids must read '{chapter}.<name>', got {bad}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"claim ids must be unique, got {ids}")
    values = {}
    for c in claims:
        values.update({f"claim:{c.id}:estimate": c.estimate, f"claim:{c.id}:lo": c.lo,
                       f"claim:{c.id}:hi": c.hi, f"claim:{c.id}:verdict": c.verdict})
    results.record(**values)


def replicated(path: Path | None = None) -> pd.DataFrame:
    """The ledger's replicated verdicts indexed by claim id (empty when no ledger exists)."""
    path = Path(path or VERDICTS_FILE)
    if not path.exists():
        return pd.DataFrame(columns=["replicated"]).rename_axis("id")
    return pd.read_csv(path).set_index("id")


def table(claims: list[Claim], chapter: str | None = None) -> ClaimsTable:
    """The claims as a table numbered from 1, ready to display in full.

    With ``chapter`` the run's claim records are stored (:func:`record`) and a column
    gives each claim's replicated verdict from the evidence ledger next to this run's.
    """
    df = ClaimsTable([{k: v for k, v in asdict(c).items() if k in SHOWN} for c in claims])
    df.index = range(1, len(df) + 1)
    if chapter is not None:
        record(claims, chapter)
        rep = replicated()
        df["replicated verdict"] = [rep["replicated"].get(c.id, NOT_REPLICATED) for c in claims]
    return df
