"""The verdicts a claim can get: of one run (:mod:`lib.claims`) and over replications (:mod:`lib.evidence`).

One module, imported by both, so neither needs the other for its words.
"""
from __future__ import annotations

HOLDS = "holds"
FAILS = "does not hold"
INCONCLUSIVE = "inconclusive at this scale"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE)
