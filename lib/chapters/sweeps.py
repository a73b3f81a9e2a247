"""The sweeps page (book/sweeps.ipynb): a small sweep of the toolkit tour over hidden widths."""
from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from ..config import Param
from ..sweep import ROOT

PARAMS: dict[str, Param] = {
    "widths": Param((list, int), [16, 256], [16, 64, 256, 1024], check="positive",
                    help="hidden widths of the example sweep (one hidden layer each)"),
    "n_seeds": Param(int, 1, 3, check="positive", help="seeds per width (seed, seed + 1, ...)"),
    "workers": Param(int, 2, check="positive", help="local worker processes running the points"),
}

MEASURES = {"clean_accuracy": "clean", "fgsm_accuracy_mid": "FGSM", "pgd_accuracy_mid": "PGD"}


def example_spec(cfg: SimpleNamespace, output: str | Path) -> dict:
    """The example sweep: the toolkit tour at this profile, one-hidden-layer widths x seeds."""
    return {"notebook": os.path.relpath(ROOT / "book" / "00_toolkit.ipynb"), "output": str(output), "name": "toolkit-width",
            "parameters": {"profile": cfg.profile}, "grid": {"widths": [[w] for w in cfg.widths]},
            "seeds": list(range(cfg.seed, cfg.seed + cfg.n_seeds))}


def accuracies(table: pd.DataFrame) -> pd.DataFrame:
    """The sweep table in long form: one row per point and measure, with the hidden width as a number."""
    done = table[table.status == "done"].assign(hidden_units=lambda t: t.widths.str.strip("[]").astype(int))
    long = done.melt(id_vars=["hidden_units", "seed", "eps_mid", "status"], value_vars=list(MEASURES),
                     var_name="measure", value_name="accuracy")
    return long.assign(measure=long.measure.map(MEASURES))
