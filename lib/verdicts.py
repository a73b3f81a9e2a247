"""The verdicts a claim can get: of one run (:mod:`lib.claims`) and over replications (:mod:`lib.evidence`).

One module, imported by both, so neither needs the other for its words.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .provenance import lib_sha256

HOLDS = "holds"
FAILS = "does not hold"
INCONCLUSIVE = "inconclusive at this scale"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE)

# The evidence ledger's folder (lib.evidence writes it); its verdicts.csv has one row per claim id.
EVIDENCE_DIR = Path(os.environ.get("BOOK_EVIDENCE_DIR", Path(__file__).resolve().parent.parent / "evidence"))
VERDICTS_FILE = EVIDENCE_DIR / "verdicts.csv"
STALE = "stale: recorded with another lib/"


def is_stale(recorded: str, current: str | None = None) -> bool:
    """Whether evidence recorded with lib hash ``recorded`` was made with another ``lib/`` than now."""
    return not (isinstance(recorded, str) and recorded == (current or lib_sha256()))


def replicated(path: str | Path | None = None) -> pd.DataFrame:
    """The replicated verdicts by claim id with a ``stale`` column (empty when none is recorded)."""
    path = Path(path or VERDICTS_FILE)
    if not path.exists():
        return pd.DataFrame(columns=["replicated", "stale"]).rename_axis("id")
    table = pd.read_csv(path, dtype={"lib_sha256": str}).set_index("id")
    current = lib_sha256()
    table["stale"] = [is_stale(h, current) for h in table["lib_sha256"]]
    return table


def shown(verdict: str, stale: bool) -> str:
    """A replicated verdict as a table cell: stale evidence says so in the cell itself."""
    return f"{verdict} ({STALE})" if stale else verdict
