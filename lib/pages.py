"""How the book's pages show lib's tables: presentation only, every number is the table's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from . import evidence

# The Evidence heat table's columns a reader looks for first: right after the claim
KEY_COLUMNS = ("replicated verdict", "n")


def key_columns_first(table: pd.DataFrame, key: tuple[str, ...] = KEY_COLUMNS) -> pd.DataFrame:
    """``table`` with the ``key`` columns it has moved to the front, the others after them in their order."""
    first = [c for c in key if c in table.columns]
    return table[first + [c for c in table.columns if c not in first]]


def heat(out: str | Path | None = None) -> Any:
    """The Evidence page's heat table (:func:`lib.evidence.heat`) with the replicated verdict and ``n``
    next to the claim, where a 1280-pixel page shows them without scrolling sideways; None without a ledger."""
    conditions, verdicts = evidence.read(evidence.CONDITIONS, out), evidence.read(evidence.VERDICTS, out)
    if conditions is None or verdicts is None or verdicts.empty:
        return None
    table = key_columns_first(evidence.matrix(conditions, verdicts))
    styler = evidence.heat_table(table, evidence.not_measured_cells(conditions, verdicts, table))
    verdict = [c for c in KEY_COLUMNS[:1] if c in table.columns]
    return styler.set_properties(subset=verdict, **{"min-width": "11em", "text-align": "left"})
