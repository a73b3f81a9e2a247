"""The verdicts a claim can get: of one run (:mod:`lib.claims`) and over replications (:mod:`lib.evidence`).

One module, imported by both, so neither needs the other for its words.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .provenance import code_sha256, notebook_sha256

HOLDS = "holds"
FAILS = "does not hold"
INCONCLUSIVE = "inconclusive at this scale"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE)

# The evidence ledger's folder (lib.evidence writes it); its verdicts.csv has one row per claim id.
EVIDENCE_DIR = Path(os.environ.get("BOOK_EVIDENCE_DIR", Path(__file__).resolve().parent.parent / "evidence"))
VERDICTS_FILE = EVIDENCE_DIR / "verdicts.csv"
BOOK = Path(__file__).resolve().parent.parent / "book"
STALE = "stale: recorded with other code"


def current_hashes(notebook: str, notebook_dir: str | Path = BOOK) -> tuple[str, str]:
    """(code, notebook) hashes of the chapter ``notebook`` as it is now; ``("", "")`` when it is not there."""
    path = Path(notebook_dir) / str(notebook)
    if not path.is_file():
        return "", ""
    return code_sha256(path), notebook_sha256(path)


def is_stale(code: str, notebook_hash: str, current: tuple[str, str]) -> bool:
    """Whether evidence recorded with these code and notebook hashes was made with other code than ``current``."""
    return not (
        isinstance(code, str) and isinstance(notebook_hash, str) and current[0] and (code, notebook_hash) == current
    )


def stale_column(table: pd.DataFrame, notebook_dir: str | Path = BOOK) -> list[bool]:
    """Per row of a verdicts table (columns ``notebook``, ``code_sha256``, ``notebook_sha256``): stale or not.

    A table from before code hashes were recorded is stale throughout.
    """
    if not {"notebook", "code_sha256", "notebook_sha256"} <= set(table.columns):
        return [True] * len(table)
    now = {nb: current_hashes(nb, notebook_dir) for nb in set(table["notebook"].astype(str))}
    return [
        is_stale(c, h, now[str(nb)])
        for nb, c, h in zip(table["notebook"], table["code_sha256"], table["notebook_sha256"])
    ]


def replicated(
    path: str | Path | None = None, notebook_dir: str | Path = BOOK, chapter: str | None = None
) -> pd.DataFrame:
    """The replicated verdicts by claim id with a ``stale`` column (empty when none is recorded);
    with ``chapter`` (e.g. ``"ch03"``) only that chapter's claims, so only its code is hashed."""
    path = Path(path or VERDICTS_FILE)
    if not path.exists():
        return pd.DataFrame(columns=["replicated", "stale"]).rename_axis("id")
    table = pd.read_csv(path, dtype=str, keep_default_na=False).set_index("id")
    if chapter is not None:
        table = table[table.index.str.startswith(f"{chapter}.")]
    table["stale"] = stale_column(table, notebook_dir)
    return table


def shown(verdict: str, stale: bool) -> str:
    """A replicated verdict as a table cell: stale evidence says so in the cell itself."""
    return f"{verdict} ({STALE})" if stale else verdict
