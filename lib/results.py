"""Scalar results of a chapter run, recorded in one call so sweeps can collect them.

:func:`record` stores the values in the notebook's output as a JSON bundle under
``MIME_TYPE`` (a reader sees one short line, :func:`summary`); ``lib.sweep`` reads them
back from each executed notebook.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

MIME_TYPE = "application/vnd.advgeom.results+json"
RECORDED: dict[str, Any] = {}


def _scalar(name: str, v: Any) -> Any:
    if isinstance(v, (np.generic,)):
        v = v.item()
    if hasattr(v, "item") and getattr(v, "numel", lambda: 2)() == 1:
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise TypeError(f"result {name!r} must be a scalar (number, bool or string), got {type(v).__name__}")


def record(**values: Any) -> None:
    """Record scalar results of this run (and display them so the executed notebook keeps them)."""
    clean = {k: _scalar(k, v) for k, v in values.items()}
    RECORDED.update(clean)
    try:
        from IPython.display import display

        display({MIME_TYPE: clean, "text/plain": summary(clean)}, raw=True)
    except ImportError:  # outside IPython: the module-level dict is enough
        pass


def summary(values: dict[str, Any]) -> str:
    """The one line a reader sees where results were recorded: how many, not the values (they are in the
    tables and sentences around it, and in the notebook's output for the ledger)."""
    claims = {k.split(":")[1] for k in values if k.startswith("claim:")}
    others = [k for k in values if not k.startswith("claim:")]
    parts = [f"{len(claims)} claim{'s' * (len(claims) != 1)}"] if claims else []
    parts += [f"{len(others)} number{'s' * (len(others) != 1)}"] if others else []
    return f"(recorded for the evidence ledger: {' and '.join(parts) or 'nothing'})"


def from_notebook(nb: Any) -> dict[str, Any]:
    """All values recorded in an executed notebook (a nbformat node or a path)."""
    if not hasattr(nb, "cells"):
        import nbformat

        nb = nbformat.read(str(nb), as_version=4)
    out: dict[str, Any] = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            if MIME_TYPE in data:
                payload = data[MIME_TYPE]
                out.update(json.loads(payload) if isinstance(payload, str) else dict(payload))
    return out
