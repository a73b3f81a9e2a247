"""The evidence ledger: every claim replicated over seeds and conditions, and its replicated verdict.

A chapter run records, for each claim, ``claim:<id>:estimate|lo|hi|verdict`` (see
:func:`lib.claims.record`). The evidence specs in ``sweeps/evidence/`` run every chapter
over seeds x conditions (dataset x scale; chapter 4's synthetic settings) with
:mod:`lib.sweep`. This module turns the point records of those sweeps into

- ``evidence/ledger.csv``: the tidy table of every replication, one row per claim and
  run (claim id, chapter, condition, seed, estimate, interval, verdict), with the run's
  provenance on every row (git commit, hash of ``lib/``, hash of the notebook, torch,
  device, python, host, wall time, date);
- ``evidence/conditions.csv``: per claim and condition, the runs pooled over seeds
  (:mod:`lib.pooling`: random-effects estimate, Hartung-Knapp and t intervals, tau, I^2)
  and its verdict against the claim's declared SESOI, beside the shares of runs that
  hold / do not hold / are inconclusive / measured nothing (the old vote count, for reference);
- ``evidence/verdicts.csv``: one row per claim, its replicated verdict under
  :data:`RULE` with each condition's verdict named, the old vote-count verdict, the
  declaration it was decided with, the number of replications, the ``lib/`` hash the
  evidence was recorded with, and the rule's parameters.

The declaration a verdict needs (null, SESOI, analysis scale, direction, whether the
claim depends on the condition) comes from each run's records (``claim:<id>:null`` ...),
else from ``evidence/claims.csv``, written from the chapters' ``DECLARED`` by
``python -m lib.evidence declarations``.

Evidence recorded with another ``lib/`` than the current one is *stale*; every reader
of the ledger (the claims tables, the Evidence page) says so.

Run as ``python -m lib.evidence build SPEC.yaml [SPEC.yaml ...] [--out evidence]``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import re
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from . import claims, pooling, sweep
from .provenance import code_sha256, cpu_id, lib_sha256, notebook_sha256, torch_version  # noqa: F401  (interface)
from .verdicts import BOOK, EVIDENCE_DIR, STALE, current_hashes, is_stale, replicated, stale_column  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "sweeps" / "evidence"
LEDGER, CONDITIONS, VERDICTS = "ledger.csv", "conditions.csv", "verdicts.csv"  # in EVIDENCE_DIR

# The provenance every sweep point records (lib.sweep's ``provenance`` dict).
PROVENANCE = (
    "git_commit",
    "lib_sha256",
    "code_sha256",
    "notebook_sha256",
    "torch",
    "device",
    "threads",
    "cpu",
    "python",
    "host",
    "wall_s",
    "date",
)
# A digest of each run's rows (every other column), written with them: an edited, added or deleted row is named.
RUN_DIGEST = "run_sha256"
# The declaration a run recorded with each claim (empty on rows recorded before it was): null, SESOI,
# the scale the runs are pooled on (analysis_scale: "scale" is the profile), direction, condition-dependence.
DECLARATION_FIELDS = ("null", "sesoi", "analysis_scale", "above", "depends")
LEDGER_COLUMNS = (
    "claim_id",
    "chapter",
    "kind",
    *DECLARATION_FIELDS,
    "claim",
    "condition",
    "dataset",
    "scale",
    "seed",
    "estimate",
    "lo",
    "hi",
    "verdict",
    "point",
    "notebook",
    "parameters",
    *PROVENANCE,
    RUN_DIGEST,
)
# Parameters that never define a condition: replications differ by seed; the device is provenance.
NOT_CONDITION = ("seed", "device")
CLAIM_KEY = re.compile(
    r"^claim:(?P<id>[a-z][a-z0-9]*\.[a-z0-9_]+):"
    r"(?P<field>estimate|lo|hi|verdict|claim|rank|kind|null|sesoi|scale|above|depends)$"
)

# The replicated verdicts and the rule that decides them (lib.pooling).
THRESHOLD = 0.8  # the share of runs without an estimate that makes a condition "not measured" (and the old vote)
MIN_REPLICATIONS = 5
LEVEL = pooling.LEVEL
HOLDS, OPPOSITE, NO_EFFECT, WEAK = pooling.HOLDS, pooling.OPPOSITE, pooling.NO_EFFECT, pooling.WEAK
WEAK_OPPOSITE, INCONCLUSIVE, DEPENDS = pooling.WEAK_OPPOSITE, pooling.INCONCLUSIVE, pooling.DEPENDS
NOT_MEASURED = pooling.NOT_MEASURED
TOO_FEW = "too few replications"
NO_SESOI = "no SESOI declared"
NO_NULL = "no null declared"
REPLICATED = (
    HOLDS,
    WEAK,
    NO_EFFECT,
    WEAK_OPPOSITE,
    OPPOSITE,
    INCONCLUSIVE,
    DEPENDS,
    NOT_MEASURED,
    TOO_FEW,
    NO_SESOI,
    NO_NULL,
)
RULE = (
    f"Per claim and condition (a dataset or setting) the runs are pooled over seeds, the seed being the unit (a "
    f"random-effects mean with a Hartung–Knapp {LEVEL:.0%} interval), and the claim **holds** there when the "
    f"interval lies beyond its declared smallest effect of interest (SESOI) in the predicted direction, is the "
    f"**opposite** beyond it the other way, shows **no effect** inside null ± SESOI, is **weak** when it "
    f"excludes the null but not the SESOI (**{WEAK_OPPOSITE}** on the other side), **inconclusive** otherwise, "
    f"and **not measured** when {THRESHOLD:.0%} of the runs have no estimate. "
    f"Across conditions a claim gets the verdict every condition gives, else **depends on the data**, each "
    f"condition's verdict named (runs of different conditions are never pooled, even for a claim declared "
    f"general), with **too few replications** below {MIN_REPLICATIONS} runs in a condition and **{NO_SESOI}** "
    f"where no SESOI was declared: no undeclared margin decides."
)

# The old rule, kept as a column for reference: a condition's verdict by the share of its runs that vote for it.
FAILS = "does not hold"
NO_MAJORITY = "no majority"
VOTES = (HOLDS, FAILS, DEPENDS, NO_MAJORITY, NOT_MEASURED, TOO_FEW)


class EvidenceError(ValueError):
    """A ledger or sweep record that cannot be used; the message names the culprit."""


# ------------------------------------------------------------------- hashes


# ----------------------------------------------------------- records -> ledger


def condition(parameters: Mapping[str, Any], varied: Iterable[str] | None = None) -> tuple[str, str, str]:
    """A run's condition from its parameters: (label, dataset, scale).

    A condition is a dataset (``synthetic`` for a chapter without a ``dataset``
    parameter) at a scale (the profile), plus the parameters in ``varied``: those that
    differ between the runs of that dataset (by default every parameter). Seed and
    device never define a condition. The label reads ``dataset · name=value ... · profile``.
    """
    p = {k: v for k, v in parameters.items() if k not in NOT_CONDITION and v is not None}
    scale = str(p.pop("profile", "quick"))
    dataset = str(p.pop("dataset")) if "dataset" in p else "synthetic"
    keys = sorted(p) if varied is None else sorted(k for k in varied if k in p)
    rest = [f"{k}={json.dumps(p[k]) if isinstance(p[k], (list, dict)) else p[k]}" for k in keys]
    return " · ".join([dataset, *rest, scale]), dataset, scale


def varied_parameters(records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], list[str]]:
    """Per (notebook, dataset): the parameters whose values differ between its runs (not seed, device, profile)."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in records:
        groups.setdefault((r.get("notebook"), str(r["parameters"].get("dataset", "synthetic"))), []).append(
            r["parameters"]
        )
    out = {}
    for key, params in groups.items():
        names = sorted({k for p in params for k in p} - {*NOT_CONDITION, "profile"})
        # A parameter one run sets and another leaves out differs too (absent is a value of its own).
        out[key] = [k for k in names if len({json.dumps(p.get(k, "<absent>"), sort_keys=True) for p in params}) > 1]
    return out


def claim_values(results: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``claim:<id>:<field>`` entries of a run's results, grouped by claim id."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in results.items():
        m = CLAIM_KEY.match(key)
        if m:
            out.setdefault(m["id"], {})[m["field"]] = value
    return out


def _number(v: Any) -> float:
    return math.nan if v is None else float(v)


def ledger_rows(record: Mapping[str, Any], varied: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The ledger rows of one finished sweep point: one per claim, with the point's provenance.

    ``varied`` names the parameters that set this run's condition apart (see :func:`condition`).
    """
    if record.get("status") != "done":
        return []
    params = dict(record["parameters"])
    label, dataset, scale = condition(params, varied)
    prov = dict(record.get("provenance") or {})
    # Facts the point record itself states stand in where the provenance dict is missing.
    prov.setdefault("host", record.get("host"))
    prov.setdefault("wall_s", record.get("seconds"))
    prov.setdefault("date", record.get("finished"))
    rows = []
    for cid, fields in claim_values(record.get("results") or {}).items():
        rows.append(
            {
                "claim_id": cid,
                "chapter": cid.split(".")[0],
                "kind": fields.get("kind", ""),
                "null": _number(fields.get("null")),
                "sesoi": _number(fields.get("sesoi")),
                "analysis_scale": fields.get("scale", ""),
                "above": fields.get("above"),
                "depends": fields.get("depends"),
                "claim": fields.get("claim", ""),
                "condition": label,
                "dataset": dataset,
                "scale": scale,
                "seed": params.get("seed"),
                "estimate": _number(fields.get("estimate")),
                "lo": _number(fields.get("lo")),
                "hi": _number(fields.get("hi")),
                "verdict": fields.get("verdict"),
                "point": record["point"],
                "notebook": record.get("notebook"),
                "parameters": json.dumps(params, sort_keys=True),
                **{k: prov.get(k) for k in PROVENANCE},
            }
        )
    return rows


def spec_records(spec_path: str | Path) -> tuple[list[dict], list[dict]]:
    """The point records of one evidence spec: (finished records, points not finished).

    Only the spec's own points count (a point left in the folder by an older version of
    the spec does not), so a ledger always has exactly the spec's rows.
    """
    spec = sweep.load_spec(spec_path)
    points = sweep.validate(spec, check_device=False)
    done, missing = [], []
    for p in points:
        rec = sweep.read_record(Path(spec.output) / "points" / f"{p.id}.json")
        if rec and rec.get("status") == "done":
            done.append(rec)
        else:
            missing.append(
                {
                    "point": p.id,
                    "parameters": p.parameters,
                    "status": rec.get("status") if rec else "not run",
                    "error": rec and rec.get("error"),
                }
            )
    return done, missing


def spec_points(specs: Iterable[str | Path]) -> dict[str, dict[str, Any]]:
    """Every point of the evidence specs: id -> parameters (checked against the chapters, nothing run)."""
    return {p.id: p.parameters for s in specs for p in sweep.validate(sweep.load_spec(s), check_device=False)}


def make_ledger(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The tidy ledger of many point records, in :data:`LEDGER_COLUMNS` order."""
    records = [r for r in records if r.get("status") == "done"]
    varied = varied_parameters(records)
    rows = [
        row
        for rec in records
        for row in ledger_rows(rec, varied[(rec.get("notebook"), str(rec["parameters"].get("dataset", "synthetic")))])
    ]
    ledger = pd.DataFrame(rows, columns=list(LEDGER_COLUMNS))
    # Claims keep their row in the chapter's claims table (its recorded rank), then their id.
    rank = {}
    for rec in records:
        for cid, fields in claim_values(rec.get("results") or {}).items():
            rank.setdefault(cid, fields.get("rank", math.inf))
    return _sorted(ledger, rank)


def _sorted(ledger: pd.DataFrame, rank: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Rows by chapter, claim (in the order of its chapter's claims table: ``rank``, else as they come), condition, seed."""
    if rank is None:
        rank = {cid: i for i, cid in enumerate(dict.fromkeys(ledger.claim_id))}
    ledger = ledger.assign(_rank=ledger.claim_id.map(rank))
    return (
        ledger.sort_values(["chapter", "_rank", "claim_id", "condition", "seed"], kind="stable")
        .drop(columns="_rank")
        .reset_index(drop=True)
    )


# ------------------------------------------------------------------ aggregation


def mean_interval(values: Iterable[float], level: float = LEVEL) -> tuple[float, float, float]:
    """Mean of the finite values and its Student-t interval across them (NaN interval below 2 values)."""
    m, lo, hi, _ = pooling.t_interval(values, level)
    return m, lo, hi


def condition_votes(holds: float, fails: float, threshold: float = THRESHOLD, not_measured: float = 0.0) -> str:
    """The old vote count in one condition, from the shares of its replications that hold, do not hold and
    measured nothing (:func:`measured_nothing`): the first of holds / does not hold / not measured whose
    share reaches ``threshold``, else no majority."""
    if holds >= threshold:
        return HOLDS
    if fails >= threshold:
        return FAILS
    if not_measured >= threshold:
        return NOT_MEASURED
    return NO_MAJORITY


def replicated_verdict(
    shares: Iterable[tuple[float, ...]], threshold: float = THRESHOLD, min_replications: int = MIN_REPLICATIONS
) -> str:
    """The old 80%-of-runs rule (kept for reference as the ``votes`` column): a verdict from each condition's shares.

    One tuple per condition: ``(share holds, share does not hold, n)``, optionally followed
    by the share of replications that measured nothing (:func:`measured_nothing`; 0 when left out).
    It counts votes, so a real effect that each run detects with probability 0.7 reads
    *holds* the less often the more seeds are run; :data:`RULE` pools the runs instead.
    """
    shares = [(*t, 0.0)[:4] for t in shares]
    if not shares or any(n < min_replications for _, _, n, _ in shares):
        return TOO_FEW
    per = [condition_votes(h, f, threshold, u) for h, f, _, u in shares]
    if all(v == HOLDS for v in per):
        return HOLDS
    if all(v == FAILS for v in per):
        return FAILS
    if HOLDS in per and FAILS in per:
        return DEPENDS
    if all(v == NOT_MEASURED for v in per):
        return NOT_MEASURED
    return NO_MAJORITY


def measured_nothing(rows: pd.DataFrame) -> pd.Series:
    """Which replications measured nothing: inconclusive with no finite estimate.

    A chapter gives such a row when its statistic cannot be computed in that run (e.g. no
    network fitted its points); an inconclusive row with an estimate measured a value too
    uncertain to decide.
    """
    est = pd.to_numeric(rows.estimate, errors="coerce")
    return (rows.verdict == claims.INCONCLUSIVE) & ~np.isfinite(est.to_numpy(dtype=float))


def _one_hash(hashes: Iterable[Any]) -> str:
    """The single value (a hash, a notebook) of a set of rows, or ``mixed:<n>`` when they hold several."""
    found = sorted({str(h) for h in hashes if isinstance(h, str) and h})
    return found[0] if len(found) == 1 else f"mixed:{len(found)}" if found else ""


# ------------------------------------------------------------ declarations

DECLARATIONS = "claims.csv"  # in EVIDENCE_DIR: the chapters' declarations, for rows recorded without them
DECLARATION_COLUMNS = (
    "id",
    "chapter",
    "kind",
    "statement",
    "statistic",
    "null",
    "above",
    "sesoi",
    "scale",
    "depends",
    "why",
)


def declaration_table(declared: Iterable[claims.Declared]) -> pd.DataFrame:
    """The rows of ``claims.csv`` for these declarations (the statement and statistic as declared, with their fields)."""
    rows = [
        {
            "id": d.id,
            "chapter": d.id.split(".")[0],
            "kind": d.kind,
            "statement": d.claim,
            "statistic": d.statistic,
            "null": d.null_value,
            "above": bool(d.above),
            "sesoi": math.nan if d.sesoi is None else float(d.sesoi),
            "scale": d.scale,
            "depends": bool(d.depends),
            "why": d.why,
        }
        for d in declared
    ]
    return pd.DataFrame(rows, columns=list(DECLARATION_COLUMNS))


def chapter_declarations() -> pd.DataFrame:
    """Every chapter's ``DECLARED`` claims as the rows of ``claims.csv`` (imports every chapter, and torch)."""
    import importlib

    from . import chapters

    found: list[claims.Declared] = []
    for notebook in chapters.NOTEBOOKS:
        module = chapters.chapter(notebook)
        table = getattr(module, "DECLARED", None)
        if table is None and hasattr(module, "__path__"):  # a package keeps them in its claims module
            try:
                table = getattr(importlib.import_module(f"{module.__name__}.claims"), "DECLARED", None)
            except ModuleNotFoundError:
                table = None
        found += list((table or {}).values())
    return declaration_table(found)


def declarations_csv(table: pd.DataFrame) -> str:
    """``claims.csv``'s text for a declarations table (what the command writes and the test compares)."""
    return table[list(DECLARATION_COLUMNS)].to_csv(index=False)


def write_declarations(out: str | Path | None = None, table: pd.DataFrame | None = None) -> Path:
    """Write ``claims.csv`` into ``out`` (default: the ledger's folder) from ``table`` (default: the chapters')."""
    path = Path(out or EVIDENCE_DIR) / DECLARATIONS
    text = declarations_csv(chapter_declarations() if table is None else table)
    sweep.atomic_write(path, lambda p: p.write_text(text))
    return path


def read_declarations(out: str | Path | None = None) -> pd.DataFrame | None:
    """``claims.csv`` of ``out`` (default: the ledger's folder), or None when it is not written."""
    path = Path(out or EVIDENCE_DIR) / DECLARATIONS
    if not path.exists():
        return None
    return pd.read_csv(path, dtype={"statement": str, "statistic": str, "scale": str, "why": str})


def _flag(v: Any) -> bool | None:
    """A recorded True/False (bool, "True"/"False", 1/0), or None when nothing is recorded."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, str):
        return {"true": True, "1": True, "false": False, "0": False}.get(v.strip().lower())
    if isinstance(v, (int, float, np.number)) and math.isfinite(float(v)):
        return bool(v)
    return None


def _float(v: Any) -> float:
    try:
        return math.nan if v is None or (isinstance(v, str) and not v.strip()) else float(v)
    except (TypeError, ValueError):
        return math.nan


def _text(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def _recorded(values: Iterable[Any], parse) -> list[Any]:
    """The values the rows recorded (parsed; empty ones left out)."""
    out = [parse(v) for v in values]
    return [v for v in out if v is not None and v != "" and not (isinstance(v, float) and math.isnan(v))]


def _most(values: list[Any], default: Any) -> Any:
    """The most frequent recorded value (the first of equally frequent ones), else ``default``."""
    return max(dict.fromkeys(values), key=values.count) if values else default


def declarations_by_id(declarations: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    """``claims.csv`` rows by claim id, parsed: null and sesoi floats, scale, above and depends flags."""
    if declarations is None or declarations.empty:
        return {}
    return {
        str(r["id"]): {
            "null": _float(r.get("null")),
            "sesoi": _float(r.get("sesoi")),
            "scale": _text(r.get("scale")),
            "above": _flag(r.get("above")),
            "depends": _flag(r.get("depends")),
            "statistic": _text(r.get("statistic")),
        }
        for r in declarations.to_dict("records")
    }


def claim_declaration(rows: pd.DataFrame, declared: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One claim's declaration: what its runs recorded (the most frequent value), else ``declared``
    (its parsed ``claims.csv`` row). ``null`` is the claim-wide default; :func:`condition_null` is per condition."""
    declared = declared or {}

    def col(name: str) -> pd.Series:
        return rows[name] if name in rows else pd.Series([], dtype=object)

    scale = _most(_recorded(col("analysis_scale"), _text), declared.get("scale") or claims.IDENTITY)
    return {
        "null": _most(_recorded(col("null"), _float), declared.get("null", math.nan)),
        "sesoi": _most(_recorded(col("sesoi"), _float), declared.get("sesoi", math.nan)),
        "scale": scale if scale in claims.SCALES else claims.IDENTITY,
        "above": _most(_recorded(col("above"), _flag), declared.get("above")),
        "depends": _most(_recorded(col("depends"), _flag), declared.get("depends")),
    }


def condition_null(rows: pd.DataFrame, default: float) -> float:
    """The null of one condition's runs: the one they recorded, else ``default``; NaN when they recorded several."""
    found = set(_recorded(rows["null"], _float)) if "null" in rows else set()
    return found.pop() if len(found) == 1 else math.nan if found else default


def judge(
    rows: pd.DataFrame,
    declaration: Mapping[str, Any],
    null: float,
    *,
    threshold: float = THRESHOLD,
    min_replications: int = MIN_REPLICATIONS,
    level: float = LEVEL,
) -> tuple[pooling.Pooled, str]:
    """Runs pooled (:func:`lib.pooling.pool`) and their verdict: too few replications, not measured (at least
    ``threshold`` of them without an estimate), no SESOI declared, no null declared, else :func:`lib.pooling.decide`."""
    scale = declaration["scale"]
    p = pooling.pool(rows.estimate, rows.lo, rows.hi, scale, level)
    if p.n < min_replications:
        return p, TOO_FEW
    if p.n == 0 or (p.n - p.k) / p.n >= threshold:
        return p, NOT_MEASURED
    if not math.isfinite(declaration["sesoi"]):
        return p, NO_SESOI
    usable = math.isfinite(null) and (scale != claims.LOG or null > 0) and (scale != claims.FISHER_Z or abs(null) < 1)
    if not usable or declaration["above"] is None:
        return p, NO_NULL
    return p, pooling.decide(p.lo, p.hi, null, declaration["sesoi"], scale, declaration["above"])


def combine(verdicts: Mapping[str, str]) -> tuple[str, str]:
    """A claim's verdict from its conditions' (label -> verdict), with each condition's named
    (:func:`lib.pooling.across`); too few, not measured everywhere, no SESOI and no null come first."""
    named = pooling.across(verdicts)[1]
    found = set(verdicts.values())
    if not found:
        return TOO_FEW, named
    for word in (TOO_FEW, NO_SESOI, NO_NULL):
        if word in found:
            return word, named
    return pooling.across(verdicts)[0], named


# verdicts.csv's ``declared_general``: the claim's declaration that it does not depend on the condition, and
# whether the ledger bears it out (a general claim whose conditions disagree is flagged, not pooled).
GENERAL, GENERAL_BUT_DEPENDS, NOT_GENERAL = "yes", f"yes, but {DEPENDS}", "no"


def declared_general(depends: bool | None, verdict: str) -> str:
    """The ``declared_general`` cell: ``"no"`` (declared to depend on the condition), ``"yes"`` (declared
    general), ``"yes, but depends on the data"`` (declared general, and its conditions disagree), or ``""``
    (nothing declared)."""
    if depends is None:
        return ""
    if depends:
        return NOT_GENERAL
    return GENERAL_BUT_DEPENDS if verdict == DEPENDS else GENERAL


def _shown(p: pooling.Pooled) -> dict[str, float]:
    out = p.shown()
    return {
        "pooled": out["estimate"],
        "pooled_lo": out["lo"],
        "pooled_hi": out["hi"],
        "t_lo": out["t_lo"],
        "t_hi": out["t_hi"],
    }


CONDITION_COLUMNS = (
    "claim_id",
    "chapter",
    "condition",
    "dataset",
    "scale",
    "n",
    "k",
    "share_holds",
    "share_fails",
    "share_inconclusive",
    "share_not_measured",
    "votes",
    "null",
    "sesoi",
    "analysis_scale",
    "above",
    "method",
    "pooled",
    "pooled_lo",
    "pooled_hi",
    "t_lo",
    "t_hi",
    "tau",
    "i2",
    "seed_sd",
    "verdict",
)
VERDICT_COLUMNS = (
    "id",
    "chapter",
    "kind",
    "claim",
    "replicated",
    "verdicts_by_condition",
    "votes",
    "null",
    "sesoi",
    "analysis_scale",
    "above",
    "depends",
    "declared_general",
    "pooled",
    "pooled_lo",
    "pooled_hi",
    "tau",
    "i2",
    "n",
    "conditions",
    "by_condition",
    "notebook",
    "code_sha256",
    "notebook_sha256",
    "lib_sha256",
    "threshold",
    "min_replications",
    "level",
)


def aggregate(
    ledger: pd.DataFrame,
    threshold: float = THRESHOLD,
    min_replications: int = MIN_REPLICATIONS,
    level: float = LEVEL,
    declarations: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per claim and condition the runs pooled and decided (:func:`judge`); per claim the verdict across
    conditions (:data:`RULE`), with the old vote shares and vote verdict beside them for reference.

    ``declarations`` (``claims.csv``, :func:`read_declarations`) stands in for the declaration
    fields a run did not record. Returns ``(conditions, verdicts)``; every condition a claim
    was run in is kept, whatever it shows. Every claim is decided per condition, a claim
    declared not to depend on the condition (``depends`` False) too: runs of different
    conditions are never pooled, and where such a claim's conditions disagree its
    ``declared_general`` cell says so. The claim-level estimate is given for a single
    condition only (no mean across conditions).
    """
    declared = declarations_by_id(declarations)
    rule = dict(threshold=threshold, min_replications=min_replications, level=level)
    cond_rows, verdict_rows = [], []
    for cid, rows in ledger.groupby("claim_id", sort=False):
        decl = claim_declaration(rows, declared.get(cid))
        by_condition, decided, pools, nulls = {}, {}, {}, {}
        for cond, g in rows.groupby("condition", sort=False):
            n = len(g)
            share = {v: float((g.verdict == v).mean()) for v in claims.VERDICTS}
            share_nothing = float(measured_nothing(g).mean())
            votes = condition_votes(share[claims.HOLDS], share[claims.FAILS], threshold, share_nothing)
            null = condition_null(g, decl["null"])
            p, verdict = judge(g, decl, null, **rule)
            decided[cond], pools[cond], nulls[cond] = verdict, p, null
            by_condition[cond] = {
                "holds": share[claims.HOLDS],
                "fails": share[claims.FAILS],
                "inconclusive": share[claims.INCONCLUSIVE],
                "not_measured": share_nothing,
                "n": n,
                "votes": votes,
                "verdict": verdict,
            }
            cond_rows.append(
                {
                    "claim_id": cid,
                    "chapter": g.chapter.iloc[0],
                    "condition": cond,
                    "dataset": g.dataset.iloc[0],
                    "scale": g.scale.iloc[0],
                    "n": n,
                    "k": p.k,
                    "share_holds": share[claims.HOLDS],
                    "share_fails": share[claims.FAILS],
                    "share_inconclusive": share[claims.INCONCLUSIVE],
                    "share_not_measured": share_nothing,
                    "votes": votes,
                    "null": null,
                    "sesoi": decl["sesoi"],
                    "analysis_scale": decl["scale"],
                    "above": decl["above"],
                    "method": p.method,
                    **_shown(p),
                    "tau": p.tau,
                    "i2": p.i2,
                    "seed_sd": p.sd,
                    "verdict": verdict,
                }
            )
        verdict, named = combine(decided)
        pooled = next(iter(pools.values())) if len(pools) == 1 else None
        shown = _shown(pooled) if pooled is not None else dict.fromkeys(("pooled", "pooled_lo", "pooled_hi"), math.nan)
        text = next((t for t in rows.claim if isinstance(t, str) and t), "")
        nulls_found = {x for x in nulls.values() if math.isfinite(x)}
        verdict_rows.append(
            {
                "id": cid,
                "chapter": rows.chapter.iloc[0],
                "kind": _one_hash(rows.kind),
                "claim": text,
                "replicated": verdict,
                "verdicts_by_condition": named,
                "votes": replicated_verdict(
                    ((c["holds"], c["fails"], c["n"], c["not_measured"]) for c in by_condition.values()),
                    threshold,
                    min_replications,
                ),
                "null": nulls_found.pop() if len(nulls_found) == 1 else math.nan,
                "sesoi": decl["sesoi"],
                "analysis_scale": decl["scale"],
                "above": decl["above"],
                "depends": decl["depends"],
                "declared_general": declared_general(decl["depends"], verdict),
                "pooled": shown["pooled"],
                "pooled_lo": shown["pooled_lo"],
                "pooled_hi": shown["pooled_hi"],
                "tau": math.nan if pooled is None else pooled.tau,
                "i2": math.nan if pooled is None else pooled.i2,
                "n": len(rows),
                "conditions": len(by_condition),
                "by_condition": json.dumps(by_condition),
                "notebook": _one_hash(rows.notebook),
                "code_sha256": _one_hash(rows.code_sha256),
                "notebook_sha256": _one_hash(rows.notebook_sha256),
                "lib_sha256": _one_hash(rows.lib_sha256),
                "threshold": threshold,
                "min_replications": min_replications,
                "level": level,
            }
        )
    conditions = pd.DataFrame(cond_rows, columns=list(CONDITION_COLUMNS))
    verdicts = pd.DataFrame(verdict_rows, columns=list(VERDICT_COLUMNS))
    return conditions, verdicts


# --------------------------------------------------------------- files, checks


def run_digests(ledger: pd.DataFrame) -> dict[str, str]:
    """Per run (``point``): the SHA-256 of its rows as CSV text (every column but the digest), rows by claim id."""
    cols = [c for c in LEDGER_COLUMNS if c != RUN_DIGEST]
    return {
        point: hashlib.sha256(
            rows[cols].sort_values("claim_id", kind="stable").to_csv(index=False, header=False).encode()
        ).hexdigest()
        for point, rows in ledger.groupby("point", sort=False)
    }


def _write_tables(
    ledger: pd.DataFrame, out: Path, declarations: pd.DataFrame | None = None, **rule: Any
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write the three tables into ``out``, the ledger with each run's digest of its rows as read back
    (a ledger read before the declaration columns existed gets them empty)."""
    missing = {c: math.nan for c in DECLARATION_FIELDS if c not in ledger}
    ledger = ledger.assign(**missing, **{RUN_DIGEST: ""})[list(LEDGER_COLUMNS)]
    sweep.atomic_write(out / LEDGER, lambda p: ledger.to_csv(p, index=False))
    back = read(LEDGER, out)  # digest what a reader gets back, so a check recomputes exactly this
    back[RUN_DIGEST] = back.point.map(run_digests(back))
    sweep.atomic_write(out / LEDGER, lambda p: back.to_csv(p, index=False))
    conditions, verdicts = aggregate(read(LEDGER, out), declarations=declarations, **rule)
    for name, table in ((CONDITIONS, conditions), (VERDICTS, verdicts)):
        sweep.atomic_write(out / name, lambda p, t=table: t.to_csv(p, index=False))
    return conditions, verdicts


def write(ledger: pd.DataFrame, out: str | Path | None = None, **rule: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write ``ledger.csv``, ``conditions.csv`` and ``verdicts.csv`` into ``out`` (default: the ledger's).

    They are written into a folder beside ``out``, checked (:func:`check_tables`), and only
    then moved into place, so a failure leaves the tables already in ``out`` untouched. The
    verdicts read the declarations in ``out`` (``claims.csv``) where the runs recorded none.
    """
    out = Path(out or EVIDENCE_DIR)
    out.mkdir(parents=True, exist_ok=True)
    declarations = read_declarations(out)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=out))
    try:
        conditions, verdicts = _write_tables(ledger, tmp, declarations, **rule)
        problems = check_tables(tmp, declarations=declarations)
        if problems:
            raise EvidenceError("the new ledger failed its check, nothing replaced: " + "; ".join(problems[:5]))
        for name in (LEDGER, CONDITIONS, VERDICTS):
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return conditions, verdicts


def read(name: str, out: str | Path | None = None) -> pd.DataFrame | None:
    """One of the ledger's tables, or None when it is not recorded."""
    path = Path(out or EVIDENCE_DIR) / name
    if not path.exists():
        return None
    # pandas reads back exactly the floats it wrote (tested), so a re-run compares exactly
    return pd.read_csv(
        path,
        dtype={
            "claim": str,
            "by_condition": str,
            "lib_sha256": str,
            "git_commit": str,
            "code_sha256": str,
            "notebook_sha256": str,
            "analysis_scale": str,
            "verdicts_by_condition": str,
            "declared_general": str,
        },
    )


_HEX = re.compile(r"^[0-9a-f]{7,64}$")


def check_ledger(ledger: pd.DataFrame) -> list[str]:
    """Problems with a ledger's schema and provenance (an empty list when it is sound)."""
    missing = [c for c in LEDGER_COLUMNS if c not in ledger.columns]
    if missing:
        return [f"ledger lacks column(s): {', '.join(missing)}"]
    if ledger.empty:
        return ["the ledger has no rows"]
    problems = []
    bad_ids = sorted({i for i in ledger.claim_id if not CLAIM_KEY.match(f"claim:{i}:estimate")})
    if bad_ids:
        problems.append(f"claim ids not of the form chNN.name: {bad_ids[:5]}")
    bad = sorted({str(v) for v in ledger.verdict if v not in claims.VERDICTS})
    if bad:
        problems.append(f"verdicts not among {claims.VERDICTS}: {bad[:5]}")
    if ledger.duplicated(["claim_id", "point"]).any():
        problems.append("a claim appears twice for one run (claim_id, point)")
    if not pd.api.types.is_integer_dtype(ledger.seed) or (ledger.seed < 0).any():
        problems.append("seeds must be non-negative integers")
    for col in PROVENANCE:
        empty = ledger[col].isna() | (ledger[col].astype(str).str.strip() == "")
        if empty.any():
            problems.append(f"provenance {col!r} is missing on {int(empty.sum())} of {len(ledger)} rows")
    for col in ("git_commit", "lib_sha256", "code_sha256", "notebook_sha256"):
        wrong = sorted({str(v) for v in ledger[col].dropna() if not _HEX.match(str(v))})
        if wrong:
            problems.append(f"provenance {col!r} is not a hex digest: {wrong[:3]}")
    threads = pd.to_numeric(ledger.threads, errors="coerce")
    if (threads.isna() | (threads < 1) | (threads != threads.round())).any():
        problems.append("provenance 'threads' must be a positive whole number of CPU threads")
    wall = pd.to_numeric(ledger.wall_s, errors="coerce")
    if (wall.isna() | (wall <= 0)).any():
        problems.append("provenance 'wall_s' must be a positive number of seconds")
    if pd.to_datetime(ledger.date, errors="coerce").isna().any():
        problems.append("provenance 'date' is not a date on every row")
    return problems


def _csv_frame(table: pd.DataFrame) -> pd.DataFrame:
    """A table as a reader of its CSV file gets it back."""
    return pd.read_csv(io.StringIO(table.to_csv(index=False)), dtype=str, keep_default_na=False)


def _table_differences(name: str, recorded: pd.DataFrame, again: pd.DataFrame, keys: list[str]) -> list[str]:
    """Rows of ``recorded`` (a CSV table as read) that differ from ``again`` (recomputed), named by ``keys``."""
    again = _csv_frame(again)
    if list(recorded.columns) != list(again.columns):
        return [f"{name}: columns {list(recorded.columns)} differ from those recomputed: {list(again.columns)}"]
    rec, new = recorded.set_index(keys), again.set_index(keys)
    problems = [f"{name}: row {k} is not recomputed from ledger.csv" for k in rec.index.difference(new.index)]
    problems += [f"{name}: row {k} is missing (ledger.csv gives it)" for k in new.index.difference(rec.index)]
    for k in rec.index.intersection(new.index):
        a, b = rec.loc[[k]].iloc[0], new.loc[[k]].iloc[0]
        for col in rec.columns:
            if a[col] != b[col]:
                problems.append(f"{name}: {k} {col} reads {a[col]!r}; ledger.csv gives {b[col]!r}")
    return problems


def check_tables(
    out: str | Path | None = None,
    specs: Iterable[str | Path] | None = None,
    declarations: pd.DataFrame | None = None,
    notebook_dir: str | Path = BOOK,
) -> list[str]:
    """Every problem of the evidence in ``out``; an empty list when it is sound.

    The ledger's schema and provenance (:func:`check_ledger`); each run's rows against the
    digest recorded with them (an edited, added or deleted row names its run);
    ``conditions.csv`` and ``verdicts.csv`` recomputed from ``ledger.csv`` (and the
    declarations: ``claims.csv`` in ``out`` unless given) and required equal; with
    ``specs``, exactly the runs those evidence specs define.
    """
    out = Path(out or EVIDENCE_DIR)
    ledger = read(LEDGER, out)
    if ledger is None:
        return [f"no ledger in {out}"]
    problems = check_ledger(ledger)
    if problems:
        return problems
    digests = run_digests(ledger)
    for point, rows in ledger.groupby("point", sort=False):
        recorded = set(rows[RUN_DIGEST].astype(str))
        if recorded != {digests[point]}:
            r = rows.iloc[0]
            problems.append(
                f"run {point} ({r.chapter}, {r.condition}, seed {r.seed}): its {len(rows)} rows do not "
                "match the digest recorded with them (a row was edited, added or deleted)"
            )
    tables = {
        name: pd.read_csv(out / name, dtype=str, keep_default_na=False) if (out / name).exists() else None
        for name in (CONDITIONS, VERDICTS)
    }
    if any(t is None for t in tables.values()):
        return problems + [f"{name} is missing in {out}" for name, t in tables.items() if t is None]
    verdicts = tables[VERDICTS]
    try:
        rule = {
            "threshold": float(verdicts.threshold.iloc[0]),
            "min_replications": int(verdicts.min_replications.iloc[0]),
            "level": float(verdicts.level.iloc[0]),
        }
    except (AttributeError, IndexError, ValueError):
        return problems + [f"{VERDICTS} does not state its rule (threshold, min_replications, level)"]
    if declarations is None:
        declarations = read_declarations(out)
    conditions, again = aggregate(ledger, declarations=declarations, **rule)
    problems += _table_differences(CONDITIONS, tables[CONDITIONS], conditions, ["claim_id", "condition"])
    problems += _table_differences(VERDICTS, verdicts, again, ["id"])
    if specs is not None:
        problems += spec_differences(ledger, specs, notebook_dir)
    return problems


def spec_differences(ledger: pd.DataFrame, specs: Iterable[str | Path], notebook_dir: str | Path = BOOK) -> list[str]:
    """Runs the ledger holds that the specs do not define, and runs of the specs it lacks, for every chapter whose
    evidence is current. A stale chapter (its code or notebook changed since its runs were recorded) is said to be
    stale instead: its spec may have changed with its code, and `make evidence` records it again."""
    stale = set(stale_chapters(ledger, notebook_dir))
    expected: dict[str, dict[str, Any]] = {}
    chapter_of: dict[str, str] = {}
    for s in specs:
        spec = sweep.load_spec(s)
        for p in sweep.validate(spec, check_device=False):
            expected[p.id] = p.parameters
            chapter_of[p.id] = Path(spec.notebook).name
    recorded_chapter = dict(zip(ledger.point, ledger.chapter))
    notebook_chapter = dict(zip(ledger.notebook, ledger.chapter))

    def chapter(point: str) -> str:
        return recorded_chapter.get(point) or notebook_chapter.get(chapter_of.get(point, ""), chapter_of.get(point, ""))

    extra = sorted(p for p in set(ledger.point) - set(expected) if chapter(p) not in stale)
    missing = [p for p in expected if p not in recorded_chapter and chapter(p) not in stale]
    problems = [f"run {p} is not a run of the evidence specs" for p in extra[:10]]
    problems += [
        f"run {p} of the evidence specs is not in the ledger ({sweep.short(expected[p])})" for p in missing[:10]
    ]
    if len(extra) + len(missing) > 20:
        problems.append(f"({len(extra)} runs not in the specs, {len(missing)} runs of the specs missing in all)")
    return problems


def provenance_summary(ledger: pd.DataFrame) -> dict[str, Any]:
    """What the ledger was recorded with: commits, lib hashes, devices, torch, dates, runs, total wall time."""
    runs = ledger.drop_duplicates("point")

    def values(col: str) -> list[str]:
        return sorted({str(v) for v in runs[col].dropna() if str(v)})

    dates = pd.to_datetime(runs.date, errors="coerce").dropna()
    return {
        "runs": len(runs),
        "rows": len(ledger),
        "claims": ledger.claim_id.nunique(),
        "conditions": ledger.condition.nunique(),
        "git_commits": values("git_commit"),
        "lib_sha256": values("lib_sha256"),
        "devices": values("device"),
        "torch": values("torch"),
        "threads": values("threads"),
        "cpus": values("cpu"),
        "hosts": values("host"),
        "first": dates.min().isoformat() if len(dates) else "",
        "last": dates.max().isoformat() if len(dates) else "",
        "wall_s": float(pd.to_numeric(runs.wall_s, errors="coerce").sum()),
    }


# ------------------------------------------------------------ the Evidence page


def stale_chapters(ledger: pd.DataFrame, notebook_dir: str | Path = BOOK) -> list[str]:
    """The chapters whose ledger rows were recorded with other code or another notebook than they have now."""
    out = []
    for (chapter, notebook), rows in ledger.groupby(["chapter", "notebook"], sort=True):
        now = current_hashes(notebook, notebook_dir)
        if any(
            is_stale(c, h, now) for c, h in set(zip(rows.get("code_sha256", [None] * len(rows)), rows.notebook_sha256))
        ):
            out.append(chapter)
    return sorted(set(out))


def summary(out: str | Path | None = None) -> str:
    """The Evidence page's account of the ledger as Markdown: staleness first, then what it holds."""
    ledger, verdicts = read(LEDGER, out), read(VERDICTS, out)
    if ledger is None or verdicts is None or ledger.empty:
        return (
            "**No evidence is recorded yet.** `make evidence` runs the specs in `sweeps/evidence/` "
            "and writes the ledger to `evidence/`; until then every claim reads *not replicated yet*."
        )
    s = provenance_summary(ledger)
    lines = []
    stale = stale_chapters(ledger)
    if stale:
        lines.append(
            f"> **Stale evidence.** {', '.join(stale)} {'was' if len(stale) == 1 else 'were'} recorded "
            "with other code than built this page (code the chapter executes, or its notebook, changed "
            "since). Their verdicts below describe that code, not this one; `make evidence` re-records "
            "the stale chapters only.\n"
        )
    is_check = verdicts.get("kind", pd.Series("", index=verdicts.index)).astype(str) == "check"
    counts = verdicts[~is_check].replicated.value_counts()
    tally = ", ".join(f"{counts[v]} {v}" for v in REPLICATED if v in counts)
    checks = verdicts[is_check]
    undeclared = int((checks.replicated == NO_SESOI).sum())
    check_note = (
        f" ({undeclared} with no SESOI declared; by the old vote count {int((checks.votes == HOLDS).sum())} hold)"
        if undeclared and "votes" in checks
        else ""
    )
    lines.append(
        f"The ledger holds {s['rows']} claim records from {s['runs']} runs: {s['claims']} claims in "
        f"{s['conditions']} condition{'s' * (s['conditions'] != 1)}, {s['wall_s'] / 60:.1f} minutes of runs in all. "
        f"Replicated verdicts: {tally}."
        + (
            f" Mechanism checks (identities any correct implementation shows, not findings): "
            f"{int((checks.replicated == HOLDS).sum())} of {int(is_check.sum())} hold{check_note}."
            if is_check.any()
            else ""
        )
    )
    return "\n".join(lines)


def provenance_table(out: str | Path | None = None) -> pd.DataFrame | None:
    """What the ledger was recorded with, one row per item (None when no ledger is recorded)."""
    ledger = read(LEDGER, out)
    if ledger is None or ledger.empty:
        return None
    s = provenance_summary(ledger)
    stale = stale_chapters(ledger)

    def listed(values: list[str], width: int = 0) -> str:
        return ", ".join(v[:width] if width else v for v in values) or "(not recorded)"

    rows = {
        "git commits": listed(s["git_commits"], 10),
        "code": "every chapter current" if not stale else f"stale: {', '.join(stale)} (code or notebook changed)",
        "lib/ hashes": listed(s["lib_sha256"], 12),
        "devices": listed(s["devices"]),
        "torch": listed(s["torch"]),
        "CPUs": listed(s["cpus"]),
        "hosts": listed(s["hosts"]),
        "recorded": f"{s['first'][:16].replace('T', ' ')} to {s['last'][:16].replace('T', ' ')}",
        "runs": str(s["runs"]),
        "total wall time of the runs": f"{s['wall_s'] / 60:.1f} min",
    }
    return pd.DataFrame({"value": rows}).rename_axis("provenance")


def power_table(
    conditions: pd.DataFrame | str | Path | None = None, *, power: float = 0.8, level: float = LEVEL
) -> pd.DataFrame | None:
    """Per claim and condition with a declared SESOI: how many seeds decide an effect of the SESOI.

    From the recorded between-seed SD of the runs' estimates (``seed_sd``, analysis scale)
    and the distance from the null to the nearer edge of the SESOI band:
    ``seeds to detect``, the seeds whose t interval excludes the null with probability
    ``power`` when the effect is one SESOI (the same seeds let an effect of two SESOIs
    read *holds*); ``seeds for no effect``, those whose interval lies inside the band
    with that probability when there is none (:func:`lib.pooling.seeds_needed`).
    ``conditions``: a conditions table, or the folder of ``conditions.csv``.
    """
    if not isinstance(conditions, pd.DataFrame):
        conditions = read(CONDITIONS, conditions)
    if conditions is None:
        return None
    rows = []
    for r in conditions.itertuples():
        scale = r.analysis_scale if isinstance(r.analysis_scale, str) and r.analysis_scale else claims.IDENTITY
        if not (math.isfinite(r.sesoi) and math.isfinite(r.null)):
            continue
        try:
            b_lo, b_hi = pooling.band(r.null, r.sesoi, scale)
        except ValueError:
            continue
        centre = float(pooling.to_scale(r.null, scale)[0])
        delta = min(centre - b_lo, b_hi - centre)
        rows.append(
            {
                "claim": r.claim_id,
                "condition": r.condition,
                "runs": int(r.n),
                "scale": scale,
                "SESOI": r.sesoi,
                "seed SD": r.seed_sd,
                "seeds to detect": pooling.seeds_needed(r.seed_sd, delta, power=power, level=level),
                "seeds for no effect": pooling.seeds_needed(
                    r.seed_sd, delta, power=power, level=level, equivalence=True
                ),
            }
        )
    columns = ["claim", "condition", "runs", "scale", "SESOI", "seed SD", "seeds to detect", "seeds for no effect"]
    return pd.DataFrame(rows, columns=columns).set_index(["claim", "condition"])


FOREST_FONT = 10  # points: the smallest text of a figure at book width (9 pt showed at 8.9 pt in the page)
FOREST_PER_ROW, FOREST_MAX_PER_ROW = 2, 3  # forest panels a row on the Evidence page, and at most (lib.plots')
# A forest panel's layout, in inches: a line of a condition's label, a run's row, the pooled row (with the
# space around it), the space between conditions; and the panel's frame (title, axis and its label).
LINE_IN, RUN_IN, POOLED_IN, BLOCK_GAP_IN, FRAME_IN = 0.17, 0.09, 0.3, 0.22, 1.2


def short_conditions(labels: Iterable[str]) -> dict[str, str]:
    """Condition labels without the parts every one of them shares (``"digits · quick"`` and
    ``"fashion-mnist · quick"`` -> ``"digits"``, ``"fashion-mnist"``); a label made only of shared parts
    (a single label, or the base condition the others extend) is kept whole."""
    labels = list(dict.fromkeys(labels))
    parts = {label: label.split(" · ") for label in labels}
    common = set.intersection(*(set(p) for p in parts.values())) if len(labels) > 1 else set()
    out = {}
    for label, p in parts.items():
        kept = [x for x in p if x not in common] or p
        out[label] = " · ".join(kept)
    return out


def short_statistic(statistic: str, limit: int = 70) -> str:
    """A claim's statistic as an axis label: its run-time fields elided, up to its first ``;`` or
    parenthesised aside, at most ``limit`` characters."""
    text = re.sub(r"\{[^}]*\}", "…", statistic or "").strip()  # a run's own numbers: not one value here
    text = re.split(r";| \(", text, maxsplit=1)[0].strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _forest_panel(
    ax: Any,
    rows: pd.DataFrame,
    pooled: pd.DataFrame,
    decl: Mapping[str, Any],
    names: Mapping[str, str],
    chars: int = 40,
) -> None:
    """One claim's forest on ``ax``: per condition (``pooled``: its rows of conditions.csv by label) its runs
    with their own intervals, the pooled estimate and interval, null ± SESOI shaded and the null dashed;
    each condition named (``names``) with its verdict above its runs, in lines of at most ``chars`` characters."""
    from matplotlib.ticker import MaxNLocator

    from . import plots

    scale, sesoi = decl["scale"], decl["sesoi"]
    y, seen = 0.0, [*rows.estimate, *pooled.pooled_lo, *pooled.pooled_hi, *pooled.null]
    for cond, g in rows.groupby("condition", sort=False):  # y in inches from the top, as _forest_height has it
        c = pooled.loc[cond]
        null, top = float(c["null"]), y
        label = _forest_label(names.get(cond, cond), c["verdict"], chars)
        ax.text(
            0.01,
            y,
            label,
            transform=ax.get_yaxis_transform(),
            fontsize=FOREST_FONT,
            fontweight="bold",
            va="top",
            clip_on=True,
            in_layout=False,  # inside the panel: wrapped to its width, never widening the figure
        )
        y -= LINE_IN * (label.count("\n") + 1) + RUN_IN
        for r in g.sort_values("seed", kind="stable").itertuples():
            if math.isfinite(r.estimate):  # the run's interval as a segment: it need not contain its estimate
                if math.isfinite(r.lo + r.hi):
                    ax.plot([r.lo, r.hi], [y, y], color="0.55", lw=0.8)
                ax.plot([r.estimate], [y], "o", ms=2.5, color="0.35")
            y -= RUN_IN
        y -= POOLED_IN / 2 - RUN_IN
        m, lo, hi = float(c["pooled"]), float(c["pooled_lo"]), float(c["pooled_hi"])
        if math.isfinite(m):
            if math.isfinite(lo + hi):
                ax.plot([lo, hi], [y, y], color="C0", lw=2.2)
            ax.plot([m], [y], "D", ms=6, color="C0")
        y -= POOLED_IN / 2
        if math.isfinite(null):
            span = (top - LINE_IN * (label.count("\n") + 1), y)
            if math.isfinite(sesoi):
                try:
                    b_lo, b_hi = pooling.from_scale(pooling.band(null, sesoi, scale), scale)
                    ax.fill_betweenx(span, b_lo, b_hi, color="0.88", zorder=0, lw=0)
                    seen += [b_lo, b_hi]
                except ValueError:
                    pass
            ax.plot([null, null], span, color="0.2", lw=1, ls="--", zorder=1)
        y -= BLOCK_GAP_IN
    # The view spans the estimates, pooled intervals and band; a run's wider interval runs off its edge.
    seen = np.asarray([v for v in seen if math.isfinite(v) and (scale != claims.LOG or v > 0)], dtype=float)
    axis_scale = scale if scale == claims.LOG else claims.IDENTITY
    if scale == claims.LOG:
        ax.set_xscale("log")
        plots.log_ticks(ax.xaxis)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    if len(seen):
        lo, hi = pooling.to_scale([seen.min(), seen.max()], axis_scale)
        pad = 0.08 * (hi - lo) if hi > lo else 0.1 * max(abs(lo), 1.0)
        ax.set_xlim(*pooling.from_scale([lo - pad, hi + pad], axis_scale))
    else:
        ax.text(0.5, 0.5, NOT_MEASURED, transform=ax.transAxes, ha="center", va="center", fontsize=FOREST_FONT)
        ax.set_xticks([])
    ax.set_ylim(y + BLOCK_GAP_IN / 2, 0.05)
    ax.set_yticks([])
    ax.grid(axis="y", visible=False)
    ax.tick_params(labelsize=FOREST_FONT)


def _forest_label(name: str, verdict: str, chars: int) -> str:
    """A condition's label in a forest panel: its name and verdict in lines of at most ``chars`` characters."""
    return textwrap.fill(f"{name}: {verdict}", chars, break_on_hyphens=False)


def _forest_height(rows: pd.DataFrame, verdicts: Mapping[str, str], names: Mapping[str, str], chars: int) -> float:
    """The height in inches of one claim's forest panel (:func:`_forest_panel`), its frame included."""
    height = FRAME_IN
    for cond, g in rows.groupby("condition", sort=False):
        lines = _forest_label(names.get(cond, cond), verdicts.get(cond, ""), chars).count("\n") + 1
        height += LINE_IN * lines + RUN_IN * len(g) + POOLED_IN + BLOCK_GAP_IN
    return height


def _title(claim_id: str, verdict: str, width: int) -> str:
    """A panel's title: the claim id, broken after an underscore where it is wider than ``width`` characters,
    then its verdict."""
    lines, line = [], ""
    for part in re.split(r"(?<=_)", claim_id):
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        line += part
    return "\n".join([*lines, line, verdict])


def forests(
    claim_ids: Iterable[str],
    out: str | Path | None = None,
    *,
    ledger: pd.DataFrame | None = None,
    declarations: pd.DataFrame | None = None,
    per_row: int = FOREST_PER_ROW,
    width: float | None = None,
    title: str = "",
    level: float = LEVEL,
    min_replications: int = MIN_REPLICATIONS,
) -> Any:
    """Forest plots of several claims, one panel each, ``per_row`` (at most three) a row: per condition the
    claim's runs with their own intervals, the pooled estimate with its Hartung-Knapp interval (a diamond),
    the band null +- SESOI shaded and the null as a dashed line, on the statistic's own axis (a log axis
    for ratios), each condition named with its verdict.

    ``ledger`` and ``declarations`` default to those in ``out``; ``title`` is the figure's. Returns the
    matplotlib figure, ``width`` inches wide (default: the book's column); every text is at least
    :data:`FOREST_FONT` points.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from . import plots

    # room for labels that reach past the panels: the page shows output 672 px wide (its column less padding)
    width = plots.COLUMN_IN - 0.8 if width is None else width

    ids = list(dict.fromkeys(claim_ids))
    if not ids:
        raise EvidenceError("forests needs at least one claim id")
    if not 1 <= per_row <= FOREST_MAX_PER_ROW:
        raise ValueError(f"per_row must be 1 to {FOREST_MAX_PER_ROW}, got {per_row!r}")
    ledger = read(LEDGER, out) if ledger is None else ledger
    if declarations is None:
        declarations = read_declarations(out)
    rows = None if ledger is None else ledger[ledger.claim_id.isin(ids)]
    missing = [i for i in ids if rows is None or i not in set(rows.claim_id)]
    if missing:
        raise EvidenceError(f"claim {missing[0]!r} is not in the ledger")
    conditions, verdicts = aggregate(rows, level=level, min_replications=min_replications, declarations=declarations)
    declared = declarations_by_id(declarations)
    names = short_conditions(rows.condition)
    k = min(per_row, len(ids))
    panel = width / k
    chars = int(panel * 72 / (0.55 * (FOREST_FONT + 1)))  # characters of the title's size a panel holds
    label_chars = int(0.9 * panel * 72 / (0.62 * FOREST_FONT))  # of a condition's bold label
    by_condition = {cid: dict(zip(g.condition, g.verdict)) for cid, g in conditions.groupby("claim_id", sort=False)}
    heights = [_forest_height(rows[rows.claim_id == i], by_condition[i], names, label_chars) for i in ids]
    rows_in = [max(heights[r * k : (r + 1) * k]) for r in range(math.ceil(len(ids) / k))]
    fig, axes = plots.subplots(
        len(rows_in), k, width=panel, height=float(np.mean(rows_in)), gridspec_kw={"height_ratios": rows_in}
    )
    verdict_of = dict(zip(verdicts.id, verdicts.replicated))
    for n, ax in enumerate(axes.flat):
        if n >= len(ids):
            ax.set_visible(False)
            continue
        cid = ids[n]
        one = rows[rows.claim_id == cid]
        decl = claim_declaration(one, declared.get(cid))
        pooled = conditions[conditions.claim_id == cid].set_index("condition")
        _forest_panel(ax, one, pooled, decl, names, label_chars)
        statistic = short_statistic((declared.get(cid) or {}).get("statistic") or "the claim's statistic")
        ax.set_xlabel(textwrap.fill(statistic, max(20, int(chars * 1.1))), fontsize=FOREST_FONT)
        ax.set_title(_title(cid, verdict_of.get(cid, ""), chars), fontsize=FOREST_FONT + 1, loc="left")
    if title:
        fig.suptitle(title, fontsize=FOREST_FONT + 2)
    handles = [
        Line2D([], [], marker="o", color="0.35", ls="-", lw=0.8, ms=2.5, label="run (its own 95% interval)"),
        Line2D([], [], marker="D", color="C0", ls="-", lw=2.2, ms=6, label=f"pooled (Hartung–Knapp {level:.0%})"),
        Line2D([], [], color="0.2", ls="--", lw=1, label="null"),
        Patch(color="0.88", label="null ± SESOI"),
    ]
    fig.legend(handles=handles, fontsize=FOREST_FONT, loc="outside lower center", ncol=2)
    return fig


def forest(claim_id: str, out: str | Path | None = None, *, width: float = 6.4, **kw: Any) -> Any:
    """The forest plot of one claim (:func:`forests` of that claim alone), ``width`` inches wide."""
    return forests([claim_id], out, per_row=1, width=width, **kw)


# ------------------------------------------------------------------ the README's evidence block

README = ROOT / "README.md"
README_START = "<!-- evidence-rule: start (written by `python -m lib.evidence readme` from evidence/; do not edit) -->"
README_END = "<!-- evidence-rule: end -->"
POWER = 0.8  # the power (and the probability of showing no effect) the README's table of seeds is computed for


def _seeds(v: float) -> str:
    """A number of seeds as the README gives it: whole, or ``> 1,000`` beyond the search."""
    return "> 1,000" if math.isinf(v) else f"{int(v):,}"


def _sesoi(sesoi: float, scale: str) -> str:
    return (
        f"×{sesoi:.3g}" if scale == claims.LOG else f"{sesoi:.3g}" + (" (Fisher z)" if scale == claims.FISHER_Z else "")
    )


def readme_block(out: str | Path | None = None, power: float = POWER) -> str:
    """The README's evidence block (Markdown, between :data:`README_START` and :data:`README_END`): the rule
    (:data:`RULE`) and, from the between-seed spreads of the ledger in ``out``, how many seeds per condition
    each claim with a declared SESOI needs to decide an effect of its SESOI (:func:`power_table`)."""
    lines = [README_START, "", f"**The rule.** {RULE}", ""]
    conditions, ledger = read(CONDITIONS, out), read(LEDGER, out)
    table = None if conditions is None else power_table(conditions, power=power)
    spread = table.dropna(subset=["seed SD"]).reset_index() if table is not None else None
    if spread is None or spread.empty:
        lines += ["No claim of the ledger declares a SESOI and has estimates yet: no table of seeds.", "", README_END]
        return "\n".join(lines) + "\n"
    lo, hi = int(spread.runs.min()), int(spread.runs.max())
    recorded = f"{lo}" if lo == hi else f"{lo} to {hi}"
    done = {c: int((spread[c] <= spread.runs).sum()) for c in ("seeds to detect", "seeds for no effect")}
    worst = spread.loc[spread["seeds to detect"].idxmax()]
    dates = sorted({str(d)[:10] for d in ledger.date}) if ledger is not None else []
    when = "" if not dates else f", recorded {dates[0]}" + (f" to {dates[-1]}" if dates[-1] != dates[0] else "")
    unmeasured = len(table) - len(spread)
    names = {
        cid: short_conditions(g.condition) for cid, g in spread.groupby("claim", sort=False)
    }  # a claim's own conditions, without what they share
    lines += [
        f"**Seeds a condition needs.** From the spread between seeds in the ledger's "
        f"{0 if ledger is None else ledger.point.nunique()} runs{when} (the SD of a condition's run estimates on "
        f"the claim's analysis scale): *to detect* is the number of seeds whose {LEVEL:.0%} t interval excludes "
        f"the null with probability {power:.0%} when the true effect is one SESOI (an effect of two SESOIs then "
        f"reads *holds*), *for no effect* the number whose interval lies inside null ± SESOI with that probability "
        f"when there is no effect (`lib.evidence.power_table`, `lib.pooling.seeds_needed`). Of the {len(spread)} "
        f"claim-conditions with a declared SESOI and estimates"
        + (f" ({unmeasured} more have none: not measured)" if unmeasured else "")
        + f", the {recorded} seeds recorded per condition suffice to detect an effect of the SESOI in "
        f"{done['seeds to detect']} and to show no effect in {done['seeds for no effect']}; the most a condition "
        f"needs is {_seeds(worst['seeds to detect'])} seeds (`{worst.claim}`, {names[worst.claim][worst.condition]}).",
        "",
        "| claim | SESOI | seeds to detect | seeds for no effect |",
        "|---|---|---|---|",
    ]
    for cid, g in spread.groupby("claim", sort=False):

        def per(col: str, g: pd.DataFrame = g, cid: str = cid) -> str:
            return ", ".join(f"{names[cid][r.condition]} {_seeds(r[col])}" for _, r in g.iterrows())

        lines.append(
            f"| `{cid}` | {_sesoi(g.SESOI.iloc[0], g.scale.iloc[0])} | {per('seeds to detect')} | "
            f"{per('seeds for no effect')} |"
        )
    return "\n".join([*lines, "", README_END]) + "\n"


def write_readme(path: str | Path = README, out: str | Path | None = None) -> bool:
    """Replace the evidence block of the README at ``path`` by :func:`readme_block`; True when it changed.
    The README must hold the two markers, once each, in order."""
    path = Path(path)
    text = path.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start or text.count(README_START) != 1 or text.count(README_END) != 1:
        raise EvidenceError(
            f"{path} must hold the lines {README_START!r} and {README_END!r} once each, in that order: "
            "the evidence block goes between them"
        )
    new = text[:start] + readme_block(out) + text[end + len(README_END) + 1 :]
    if new != text:
        sweep.atomic_write(path, lambda p: p.write_text(new))
    return new != text


# ---------------------------------------------------------- re-running a point


def default_point(notebook: str | Path) -> sweep.Point:
    """The point of a plain run of ``notebook``: every parameter at its default, the profile
    ``$BOOK_PROFILE`` (what ``make book`` and nbval execute)."""
    return sweep.validate(sweep.Spec(notebook=Path(notebook), output=Path("."), points=[{}]))[0]


def exact_why_not(rows: pd.DataFrame, *, device: str, threads: int | None = None, cpu: str | None = None) -> str:
    """Why a run on ``device`` with ``threads`` CPU threads (None: any) on the processor ``cpu`` need not
    reproduce the ledger ``rows`` of one point bit for bit (another torch, device, processor or thread
    count: each rounds differently), or ``""`` when it must."""
    r = rows.iloc[0]
    if r.torch != torch_version():
        return f"recorded with torch {r.torch}, this is torch {torch_version()}"
    if r.device != device:
        return f"recorded on {r.device}, this run is on {device}"
    here = cpu or cpu_id()
    if device == "cpu" and getattr(r, "cpu", None) != here:  # other kernels (MKL, oneDNN) round differently
        return f"recorded on the CPU {getattr(r, 'cpu', None)!r}, this one is {here!r}"
    recorded = _int_or(r.threads, None)
    if threads is not None and recorded != threads:
        return f"recorded with {recorded} CPU thread(s), this run had {threads}"
    return ""


# Where a run cannot be repeated bit for bit (another processor, torch or thread count), its estimates
# must stay within this many between-seed standard deviations of the recorded ones (of the claim in the
# run's condition), and every verdict must be the same. Rounding differences perturb training the way a
# change of seed does, and at most as much: on the recording processor the same code and seed repeat bit
# for bit, and no second processor was at hand to measure its spread directly.
TOLERANCE_SDS = 2.0


def tolerances(ledger: pd.DataFrame, rows: pd.DataFrame, sds: float = TOLERANCE_SDS) -> dict[str, float]:
    """Per claim of one run's ``rows``: the largest difference of an estimate or bound a repeat may show,
    ``sds`` between-seed standard deviations of that claim's estimate in the run's condition (0 if unknown)."""
    out = {}
    for r in rows.itertuples():
        same = ledger[(ledger.claim_id == r.claim_id) & (ledger.condition == r.condition)].estimate
        sd = float(pd.to_numeric(same, errors="coerce").std(ddof=1)) if len(same) > 1 else math.nan
        out[r.claim_id] = sds * sd if math.isfinite(sd) else 0.0
    return out


def recheck_captured(
    ledger: pd.DataFrame, captured: str | Path, *, threads: int, notebook_dir: str | Path = BOOK
) -> list[dict[str, Any]]:
    """Compare chapters already executed (e.g. by nbval in ``make test``) with their recorded runs.

    A chapter executed at its defaults is the ledger's run of :func:`default_point`. Its
    claims must come out identical (``kind`` ``exact``) where the run can be repeated bit
    for bit (:func:`exact_why_not`: same torch, device, processor and thread count), else
    with identical verdicts and estimates within :func:`tolerances` (``kind``
    ``tolerance``). A stale chapter (its code or notebook changed since the recording) is
    compared all the same: a change that moves no number keeps its evidence, one that does
    fails here until the chapter is re-recorded. ``captured`` holds the executed notebooks
    under their own names. One entry per chapter in the ledger: ``notebook, point, status``
    (``reproduced``, ``differs``, ``not executed`` or ``not recorded``), ``kind``, ``stale``,
    ``why`` (why not exact), ``details`` (the differences) and ``claims`` (rows recorded).
    """
    from . import config, results

    out, here = [], cpu_id()
    for name in sorted(set(ledger.notebook)):
        default = default_point(Path(notebook_dir) / name)
        point = default.id
        rows = ledger[ledger.point == point]
        entry = {
            "notebook": name,
            "point": point,
            "status": "not recorded",
            "kind": "",
            "why": "",
            "stale": False,
            "details": [],
            "claims": len(rows),
        }
        out.append(entry)
        r = (rows if not rows.empty else ledger[ledger.notebook == name]).iloc[0]
        entry["stale"] = is_stale(
            getattr(r, "code_sha256", None), r.notebook_sha256, current_hashes(name, notebook_dir)
        )
        if rows.empty:  # a stale chapter's defaults may have changed with its code: its next recording has them
            entry["details"] = ["the ledger has no run at the chapter's defaults"]
            continue
        executed = Path(captured) / name
        if not executed.is_file():
            entry.update(
                status="not executed", details=[f"no executed copy in {captured} (a cell failed or was skipped)"]
            )
            continue
        device = config.device_name(config.pick_device(default.resolved.get("device")))
        why = exact_why_not(rows, device=device, threads=threads, cpu=here)
        entry.update(kind="tolerance" if why else "exact", why=why)
        record = {
            "status": "done",
            "point": point,
            "notebook": name,
            "results": results.from_notebook(executed),
            "parameters": json.loads(rows.parameters.iloc[0]),
        }
        diffs = compare(rows, record, tolerances(ledger, rows) if why else None)
        entry.update(status="differs" if diffs else "reproduced", details=diffs)
    return out


def _int_or(v: Any, default: int | None) -> int | None:
    v = pd.to_numeric(pd.Series([v]), errors="coerce").iloc[0]
    return default if pd.isna(v) else int(v)


def rerun(
    ledger: pd.DataFrame,
    point: str,
    output: str | Path,
    notebook_dir: str | Path = ROOT / "book",
    timeout: float | None = None,
) -> list[str]:
    """Re-execute one recorded run and compare its claim records with the ledger's, exactly.

    Returns the differences (an empty list when every estimate, interval and verdict
    is reproduced bit for bit). The run gets the recorded CPU thread count: reductions
    split across threads round differently, and training amplifies the difference.
    """
    rows = ledger[ledger.point == point]
    if rows.empty:
        raise EvidenceError(f"point {point!r} is not in the ledger")
    notebook = Path(notebook_dir) / rows.notebook.iloc[0]
    task = {
        "id": point,
        "parameters": json.loads(rows.parameters.iloc[0]),
        "notebook": str(notebook),
        "notebook_name": notebook.name,
        "output": str(output),
        "kernel": "python3",
        "timeout": timeout,
        "root": str(ROOT),
    }
    threads = _int_or(rows["threads"].iloc[0], None) if "threads" in rows else None
    if threads is not None:  # a ledger recorded before threads were provenance lacks them
        task["env"] = {"OMP_NUM_THREADS": str(threads)}
    (Path(output) / "points").mkdir(parents=True, exist_ok=True)
    return compare(rows, sweep.run_point(task))


def compare(rows: pd.DataFrame, record: Mapping[str, Any], tolerance: Mapping[str, float] | None = None) -> list[str]:
    """Differences between a run's ledger rows and a (re-run) point record's claims; empty when they agree.

    Without ``tolerance`` every estimate, bound and verdict must be identical; with it
    (claim id -> largest difference) verdicts must be identical and numbers that close.
    """
    if record["status"] != "done":
        return [f"the re-run failed: {record['error']}"]
    again = {r["claim_id"]: r for r in ledger_rows(record)}
    diffs = []
    for r in rows.itertuples():
        new = again.get(r.claim_id)
        if new is None:
            diffs.append(f"{r.claim_id}: not recorded by the re-run")
            continue
        for field in ("estimate", "lo", "hi", "verdict"):
            old, now = getattr(r, field), new[field]
            if isinstance(old, float) and math.isnan(old):
                same = isinstance(now, float) and math.isnan(now)
            elif tolerance is None or field == "verdict":
                same = old == now
            else:
                same = abs(float(now) - float(old)) <= tolerance.get(r.claim_id, 0.0)
            if not same:
                within = (
                    ""
                    if tolerance is None or field == "verdict"
                    else f" (more than the tolerance {tolerance.get(r.claim_id, 0.0):.3g} apart)"
                )
                diffs.append(f"{r.claim_id}.{field}: recorded {old!r}, re-run {now!r}{within}")
    return diffs


# ---------------------------------------------------------------------- CLI


def current_rows(ledger: pd.DataFrame | None, points: Iterable[str], notebook_dir: str | Path = BOOK) -> pd.DataFrame:
    """The rows of ``ledger`` for ``points`` that its chapters' current code and notebooks would record again
    (neither changed since): a build keeps them instead of asking for those runs again."""
    if ledger is None or ledger.empty or "code_sha256" not in ledger:
        return pd.DataFrame(columns=list(LEDGER_COLUMNS))
    rows = ledger[ledger.point.isin(set(points))]
    now = {nb: current_hashes(nb, notebook_dir) for nb in set(rows.notebook)}
    fresh = [not is_stale(c, h, now[nb]) for nb, c, h in zip(rows.notebook, rows.code_sha256, rows.notebook_sha256)]
    return rows[np.array(fresh, dtype=bool)]


def spec_is_current(
    spec: str | Path, out: str | Path | None = None, notebook_dir: str | Path = BOOK
) -> tuple[bool, str]:
    """Whether the ledger in ``out`` holds every run of ``spec`` recorded with its chapter's current code."""
    ledger = read(LEDGER, out)
    points = list(spec_points([spec]))
    kept = current_rows(ledger, points, notebook_dir)
    missing = [p for p in points if p not in set(kept.point)]
    if not missing:
        return True, f"{spec}: all {len(points)} runs in the ledger are current"
    stale = [p for p in missing if ledger is not None and p in set(ledger.point)]
    return False, (
        f"{spec}: {len(missing)} of {len(points)} runs to record ({len(stale)} stale in the ledger, "
        f"{len(missing) - len(stale)} not in it)"
    )


RECORDING = "recording.json"


def read_recording(out: str | Path | None = None) -> dict[str, Any]:
    """``recording.json``: every ``make evidence`` invocation that built the ledger, and their total wall time."""
    path = Path(out or EVIDENCE_DIR) / RECORDING
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    if "invocations" not in data:  # the format of one invocation per file, before totals were kept
        data = {"invocations": [data] if data.get("wall_s") else []}
    data["total_wall_s"] = float(sum(i.get("wall_s", 0) for i in data["invocations"]))
    return data


def _still_in_the_ledger(invocations: list[dict], out: str | Path | None) -> list[dict]:
    """The invocations that recorded a run the ledger still holds: those that finished at or after its
    oldest run (an invocation finishes after every run it records). One that finished before has had
    every run replaced since, and its time built nothing in this ledger."""
    ledger = read(LEDGER, out)
    if ledger is None or ledger.empty or "date" not in ledger:
        return list(invocations)
    oldest = pd.to_datetime(ledger["date"], utc=True, errors="coerce").min()
    if pd.isna(oldest):
        return list(invocations)
    kept = []
    for inv in invocations:
        finished = pd.to_datetime(inv.get("finished"), utc=True, errors="coerce")
        if pd.isna(finished) or finished >= oldest.floor("s"):
            kept.append(inv)
    return kept


def log_recording(
    out: str | Path | None, *, workers: int, wall_s: float, specs: Mapping[str, float], interrupted: bool = False
) -> dict:
    """Add one invocation (its workers, wall time and per-spec times) to ``recording.json``; return it.
    Invocations whose runs the ledger no longer holds (:func:`_still_in_the_ledger`) are dropped. An invocation
    stopped by a signal (``make evidence`` logs it from its trap) is marked ``interrupted``: the runs it finished
    are kept by the sweep and the resumed invocation skips them, so its time counts towards the ledger's."""
    data = read_recording(out)
    entry = {
        "command": f"make evidence WORKERS={workers}",
        "workers": workers,
        "cpu_count": os.cpu_count(),
        "wall_s": wall_s,
        "specs": dict(specs),
        "finished": pd.Timestamp.now("UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if interrupted:
        entry["interrupted"] = True
    data["invocations"] = [*_still_in_the_ledger(data["invocations"], out), entry]
    data["total_wall_s"] = float(sum(i.get("wall_s", 0) for i in data["invocations"]))
    sweep.atomic_write(Path(out or EVIDENCE_DIR) / RECORDING, lambda p: p.write_text(json.dumps(data, indent=1) + "\n"))
    return entry


REPLICATION = ("chapter", "condition", "seed")  # what a run replicates, whatever its spec's parameters


def build(
    specs: Iterable[str | Path],
    out: str | Path | None = None,
    *,
    partial: bool = False,
    notebook_dir: str | Path = BOOK,
    **rule: Any,
) -> tuple[pd.DataFrame, list[dict]]:
    """Collect the finished points of every spec into the ledger and write the three tables.

    A point the sweep has not finished keeps its rows from the ledger in ``out`` when they
    are current (:func:`current_rows`: its chapter's code and notebook unchanged since), so
    only stale chapters need running again. The ledger is replaced only by a complete one:
    every point of the specs recorded, and no recorded run dropped (a run of the same chapter, condition and
    seed recorded with changed parameters replaces it; :func:`_dropped`). Otherwise
    :class:`EvidenceError` says what is missing and nothing is written, unless ``partial``
    (then the missing points and the recorded runs it drops are returned and reported, and
    an empty ledger is still refused).
    """
    out = Path(out or EVIDENCE_DIR)
    old = read(LEDGER, out)
    records, missing = [], []
    for s in specs:
        done, left = spec_records(s)
        records += done
        missing += [{**m, "spec": str(s)} for m in left]
    kept = current_rows(old, [m["point"] for m in missing], notebook_dir)
    missing = [m for m in missing if m["point"] not in set(kept.point)]
    ledger = make_ledger(records)
    if not kept.empty:
        ledger = _sorted(pd.concat([ledger, kept[list(ledger.columns)]], ignore_index=True))
    dropped = _dropped(old, ledger)
    if ledger.empty:
        raise EvidenceError(
            f"no run of {len(missing)} has finished: nothing to build, {out} left as it is "
            "(run the specs first: `make evidence`)"
        )
    if (missing or not dropped.empty) and not partial:
        why = []
        if missing:
            total = len(missing) + ledger.point.nunique()
            why.append(
                f"{len(missing)} of {total} runs of the specs have not finished "
                f"(e.g. {missing[0]['spec']} {sweep.short(missing[0]['parameters'])}: {missing[0]['status']})"
            )
        if not dropped.empty:
            why.append(f"it would drop {len(dropped)} of the {old.point.nunique()} runs recorded in {out / LEDGER}")
        raise EvidenceError(
            "; ".join(why) + f"; {out} left as it is. Finish the runs (`make evidence` resumes) "
            "or pass --partial to write the ledger of the finished runs only"
        )
    write(ledger, out, **rule)
    return ledger, missing + [
        {
            "point": was["point"],
            "parameters": {k: was[k] for k in REPLICATION},
            "status": "dropped from the ledger",
            "error": None,
            "spec": "recorded before",
        }
        for _, was in dropped.iterrows()
    ]


def _dropped(old: pd.DataFrame | None, ledger: pd.DataFrame) -> pd.DataFrame:
    """The recorded runs a new ledger loses, one row per point of ``old`` that it neither holds nor replaces. A
    run is replaced when the new ledger holds a run of the same :data:`REPLICATION` (its spec's parameters changed,
    so its point did); a run of a chapter, condition or seed the specs no longer hold is lost."""
    if old is None or old.empty or "point" not in old or "point" not in ledger:
        return pd.DataFrame(columns=["point", *REPLICATION])
    runs = old.drop_duplicates("point")
    held = pd.MultiIndex.from_frame(ledger[list(REPLICATION)].astype(str))
    replaced = pd.MultiIndex.from_frame(runs[list(REPLICATION)].astype(str)).isin(held)
    return runs[~runs.point.isin(ledger.point) & ~replaced].sort_values("point")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.evidence", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="collect evidence sweeps into the ledger and its verdicts")
    b.add_argument("specs", nargs="+", help="evidence sweep specs (YAML)")
    b.add_argument("--out", default=str(EVIDENCE_DIR), help="ledger folder (default: evidence/)")
    b.add_argument(
        "--partial",
        action="store_true",
        help="write the ledger of the finished runs even when runs are missing or recorded runs are dropped",
    )
    b.add_argument(
        "--min-replications",
        type=int,
        default=MIN_REPLICATIONS,
        help=f"replications a condition needs before a verdict (default {MIN_REPLICATIONS})",
    )
    d = sub.add_parser(
        "declarations",
        help=f"write {DECLARATIONS} (every claim's null, direction, SESOI, scale, condition-dependence and why) "
        "from the chapters' declarations",
    )
    d.add_argument("--out", default=str(EVIDENCE_DIR), help="ledger folder (default: evidence/)")
    q = sub.add_parser(
        "current",
        help="exit 0 when the ledger holds every run of the spec recorded with its "
        "chapter's current code, 1 when some run must be recorded (make evidence skips current specs)",
    )
    q.add_argument("spec", help="an evidence spec (YAML)")
    q.add_argument("--out", default=str(EVIDENCE_DIR), help="ledger folder (default: evidence/)")
    g = sub.add_parser(
        "log-recording", help="add one `make evidence` invocation to evidence/recording.json and print the times"
    )
    g.add_argument("--workers", type=int, required=True)
    g.add_argument("--wall-s", type=float, required=True, help="wall time of the whole invocation")
    g.add_argument("times", nargs="*", help="SPEC=SECONDS for each spec")
    g.add_argument("--interrupted", action="store_true", help="the invocation was stopped by a signal")
    g.add_argument("--out", default=str(EVIDENCE_DIR), help="ledger folder (default: evidence/)")
    c = sub.add_parser(
        "check",
        help="check the evidence: schema, provenance, each run's digest, the verdict tables "
        "recomputed from the ledger, and exactly the specs' runs",
    )
    c.add_argument("--out", default=str(EVIDENCE_DIR), help="ledger folder (default: evidence/)")
    c.add_argument(
        "--specs",
        nargs="*",
        default=None,
        help="the evidence specs whose runs the ledger must hold (default: sweeps/evidence/*.yaml "
        "for the default folder; none for another)",
    )
    c.add_argument("--notebooks", default=str(BOOK), help="folder of the chapter notebooks (default: book/)")
    r = sub.add_parser(
        "recheck",
        help="compare chapters already executed at their defaults with their recorded runs "
        "(exactly where they can repeat bit for bit, else within a tolerance)",
    )
    r.add_argument("executed", help="folder of the executed chapter notebooks (make test: _build/nbval/book)")
    r.add_argument("--threads", type=int, required=True, help="the CPU thread count they were executed with")
    r.add_argument("--out", default=str(EVIDENCE_DIR), help="ledger folder (default: evidence/)")
    r.add_argument("--notebooks", default=str(ROOT / "book"), help="folder of the chapter notebooks (default: book/)")
    w = sub.add_parser(
        "readme",
        help="write the README's evidence block (the rule, and the seeds each claim needs per condition) "
        "from the ledger",
    )
    w.add_argument("--out", default=str(EVIDENCE_DIR), help="ledger folder (default: evidence/)")
    w.add_argument("--readme", default=str(README), help="the README to write into (default: README.md)")
    args = parser.parse_args(argv)
    if args.command == "readme":
        try:
            changed = write_readme(args.readme, args.out)
        except EvidenceError as err:
            print(f"evidence: error: {err}", file=sys.stderr)
            return 2
        print(f"{args.readme}: evidence block {'rewritten' if changed else 'unchanged'}")
        return 0
    if args.command == "recheck":
        return _recheck(args)
    if args.command == "declarations":
        path = write_declarations(args.out)
        table = read_declarations(args.out)
        missing = int(table.sesoi.isna().sum())
        print(
            f"{path}: {len(table)} claims" + (f", {missing} without a SESOI" if missing else ", every one with a SESOI")
        )
        return 0
    if args.command == "log-recording":
        entry = log_recording(
            args.out,
            workers=args.workers,
            wall_s=args.wall_s,
            specs={t.split("=", 1)[0]: float(t.split("=", 1)[1]) for t in args.times},
            interrupted=args.interrupted,
        )
        for spec, secs in entry["specs"].items():
            print(f"  {spec}: {secs:.0f} s")
        total = read_recording(args.out)["total_wall_s"]
        print(
            f"make evidence: {entry['wall_s']:.0f} s this time; {total:.0f} s over every invocation that "
            f"built the ledger ({Path(args.out) / RECORDING})"
        )
        return 0
    if args.command == "current":
        ok, text = spec_is_current(args.spec, args.out)
        print(text)
        return 0 if ok else 1
    if args.command == "check":
        ledger = read(LEDGER, args.out)
        if ledger is None:
            print(f"evidence: no ledger in {args.out}", file=sys.stderr)
            return 2
        specs = args.specs
        if specs is None and Path(args.out).resolve() == Path(EVIDENCE_DIR).resolve():
            specs = sorted(SPECS.glob("*.yaml"))
        problems = check_tables(args.out, specs, notebook_dir=args.notebooks)
        print(
            "\n".join(problems)
            or f"evidence sound: {len(ledger)} rows of {ledger.point.nunique()} runs, each "
            f"matching its digest; conditions.csv and verdicts.csv follow from them"
            + (f"; exactly the runs of {len(specs)} specs" if specs else "")
        )
        return 1 if problems else 0
    try:
        ledger, missing = build(args.specs, args.out, partial=args.partial, min_replications=args.min_replications)
    except (sweep.SpecError, EvidenceError) as err:
        print(f"evidence: error: {err}", file=sys.stderr)
        return 2
    s = provenance_summary(ledger)
    print(
        f"ledger {Path(args.out) / LEDGER}: {s['rows']} rows, {s['claims']} claims, {s['runs']} runs, "
        f"{s['conditions']} conditions, {s['wall_s']:.0f} s of runs"
    )
    for m in missing:
        print(
            f"  not in the ledger ({m['status']}): {m['spec']} {sweep.short(m['parameters'])}"
            + (f": {m['error']}" if m.get("error") else "")
        )
    problems = check_ledger(ledger)
    for p in problems:
        print(f"  ledger problem: {p}")
    return 1 if missing or problems else 0


def _recheck(args: argparse.Namespace) -> int:
    ledger = read(LEDGER, args.out)
    if ledger is None:
        print(f"evidence: no ledger in {args.out}: nothing to check")
        return 0
    entries = recheck_captured(ledger, args.executed, threads=args.threads, notebook_dir=args.notebooks)
    for e in entries:
        head = f"{e['notebook']} (run {e['point']})"
        stale = " [stale: its code or notebook changed since the recording]" if e["stale"] else ""
        if e["status"] == "reproduced":
            how = (
                "identical (estimates, intervals, verdicts)"
                if e["kind"] == "exact"
                else f"verdicts identical, estimates within {TOLERANCE_SDS:g} between-seed SDs ({e['why']})"
            )
            print(f"{head}: {e['kind']} check: all {e['claims']} recorded claims {how}{stale}")
        else:
            kind = f"{e['kind']} check: " if e["kind"] else ""
            more = f" (and {len(e['details']) - 10} more)" if len(e["details"]) > 10 else ""
            advice = "; re-record it with `make evidence`" if e["stale"] and e["status"] == "differs" else ""
            print(f"{head}: {kind}{e['status']}: " + "; ".join(e["details"][:10]) + more + advice + stale)
    kinds = sorted({e["kind"] for e in entries if e["kind"]})
    print(f"kind of check: {' and '.join(kinds) or 'none'}")
    failed = [e["notebook"] for e in entries if not recheck_passed(e)]
    if failed:
        print(f"recheck failed: {', '.join(failed)}")
    return 0 if entries and not failed else 1


def recheck_passed(entry: Mapping[str, Any]) -> bool:
    """Whether a :func:`recheck_captured` entry passes. A current chapter must reproduce its recorded run; a
    stale one (its code changed since) may differ, since its claims tables and the Evidence page already say
    its evidence describes other code, and its defaults may have changed with it (then the ledger has no run at
    them yet); every chapter must have been executed, and a current one recorded."""
    return entry["status"] == "reproduced" or (entry["status"] in ("differs", "not recorded") and entry["stale"])


if __name__ == "__main__":
    raise SystemExit(main())
