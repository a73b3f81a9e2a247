"""The sweeps page (book/sweeps.ipynb): a small sweep of the toolkit tour over hidden widths."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import yaml

from ..config import Param
from ..sweep import ROOT

PARAMS: dict[str, Param] = {
    "widths": Param(
        (list, int),
        [16, 256],
        [16, 64, 256, 1024],
        check="positive",
        help="hidden widths of the example sweep (one hidden layer each)",
    ),
    "n_seeds": Param(int, 1, 3, check="positive", help="seeds per width (seed, seed + 1, ...)"),
    "workers": Param(int, 2, check="positive", help="local worker processes running the points"),
}

# How the page names the example's output folder, a temporary one it removes at its end
OUTPUT_SHOWN = "<temporary folder>"

# What the toolkit records: the L2 size of the perturbation that halves clean accuracy
MEASURES = {"noise_halving_l2": "Gaussian noise", "fgsm_halving_l2": "FGSM", "pgd_halving_l2": "PGD"}


def example_spec(cfg: SimpleNamespace, output: str | Path) -> dict:
    """The example sweep: the toolkit tour at this page's profile and device, one-hidden-layer widths x seeds."""
    return {
        "notebook": os.path.relpath(ROOT / "book" / "00_toolkit.ipynb"),
        "output": str(output),
        "name": "toolkit-width",
        "parameters": {"profile": cfg.profile, "device": str(cfg.device)},
        "grid": {"widths": [[w] for w in cfg.widths]},
        "seeds": list(range(cfg.seed, cfg.seed + cfg.n_seeds)),
    }


def shown(text: object, output: str | Path) -> str:
    """``str(text)`` with the example's temporary output folder named, not spelled out as a path."""
    return str(text).replace(str(output), OUTPUT_SHOWN)


class _SpecDumper(yaml.SafeDumper):
    """YAML as the book's spec files are written: a list of plain values (or of such lists) on one line."""


_SpecDumper.add_representer(
    list,
    lambda dumper, data: dumper.represent_sequence(
        "tag:yaml.org,2002:seq", data, flow_style=not any(isinstance(v, dict) for v in data)
    ),
)


def spec_yaml(spec: dict, output: str | Path) -> str:
    """The spec as its YAML file in the repository would hold it, in a Markdown code block: the notebook
    relative to the repository root, the output folder as :func:`shown` names it."""
    notebook = Path(spec["notebook"]).resolve()
    shown_spec = {
        **spec,
        "notebook": notebook.relative_to(ROOT).as_posix() if notebook.is_relative_to(ROOT) else str(notebook),
    }
    text = yaml.dump(shown_spec, Dumper=_SpecDumper, sort_keys=False, width=100)
    return f"```yaml\n{shown(text, output).rstrip()}\n```"


def halving_sizes(table: pd.DataFrame) -> pd.DataFrame:
    """The sweep table in long form: one row per point and perturbation, with the hidden width as a number."""
    done = table[table.status == "done"].assign(hidden_units=lambda t: t.widths.str.strip("[]").astype(int))
    long = done.melt(
        id_vars=["hidden_units", "seed", "status"],
        value_vars=list(MEASURES),
        var_name="perturbation",
        value_name="l2_size",
    )
    return long.assign(perturbation=long.perturbation.map(MEASURES))
