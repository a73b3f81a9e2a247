"""The claims table that closes every chapter: claim, statistic, measured value, computed verdict."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd

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

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


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


def table(claims: list[Claim]) -> ClaimsTable:
    """The claims as a table numbered from 1, ready to display in full."""
    df = ClaimsTable([asdict(c) for c in claims])
    df.index = range(1, len(df) + 1)
    return df
