"""How the book's pages show lib's tables: presentation only, every number is the table's own."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping

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


# ------------------------------------------------------------------ the banner at the top of an image chapter

# The run an image chapter's rendered page shows (lib.recorded copies it from the evidence recording).
PAGE_DATASET, PAGE_SEED = "fashion-mnist", 0
DATASET_NAMES = {
    "digits": "scikit-learn's 8x8 digits",
    "fashion-mnist": "Fashion-MNIST (28x28 images)",
    "mnist": "MNIST (28x28 images)",
}
SPECS = Path(__file__).resolve().parent.parent / "sweeps" / "evidence"


@dataclass(frozen=True)
class Banner:
    """A note at the top of a page (an admonition): which run the page shows and how to run it again."""

    title: str
    paragraphs: tuple[str, ...]  # HTML
    kind: str = "note"  # an admonition class: "note", or "warning" for a page that needs a second look

    def _repr_html_(self) -> str:
        body = "".join(f"<p>{p}</p>" for p in self.paragraphs)
        return (
            f'<div class="admonition {self.kind}"><p class="admonition-title">{html.escape(self.title)}</p>{body}</div>'
        )

    def __repr__(self) -> str:
        return "\n".join([self.title, *(re.sub(r"<[^>]+>", "", html.unescape(p)) for p in self.paragraphs)])


def chapter_notebook(chapter: str) -> str:
    """The notebook file (in book/) of a chapter name (``"ch02"``); a clear error for an unknown one."""
    from .chapters import NOTEBOOKS

    by_name = {name: nb for nb, name in NOTEBOOKS.items()}
    if chapter not in by_name:
        raise ValueError(f"chapter {chapter!r} is not one of the book's: {', '.join(sorted(by_name))}")
    return by_name[chapter]


def run_label(parameters: Mapping[str, Any]) -> str:
    """A run as a reader names it: dataset, training / test images, seed and profile."""
    from .config import DATASET_SIZES, dataset_sizes

    dataset = str(parameters.get("dataset"))
    what = DATASET_NAMES.get(dataset, dataset)
    if dataset in DATASET_SIZES:
        n_train, n_test = dataset_sizes(SimpleNamespace(**{"n_train": 0, "n_test": 0, **parameters}))
        what += f", {n_train:,} training / {n_test:,} test images"
    return f"{what}, seed {parameters.get('seed', 0)}, profile {parameters.get('profile', 'quick')}"


def rerun_command(chapter: str, parameters: Mapping[str, Any]) -> str:
    """The papermill command that executes ``chapter`` with ``parameters`` (lists as YAML), from the repository root."""
    notebook = chapter_notebook(chapter)
    args = []
    for name, value in parameters.items():
        if isinstance(value, (list, tuple)):
            args.append(f"-y '{name}: {json.dumps(list(value))}'")
        else:
            args.append(f"-p {name} {value}")
    out = notebook.replace(".ipynb", ".executed.ipynb")
    return " ".join(["papermill", f"book/{notebook}", out, *args])


def _code(text: str) -> str:
    return f"<code>{html.escape(text)}</code>"


def _evidence_command(chapter: str) -> str:
    spec = SPECS / f"{chapter}.yaml"
    if not spec.is_file():
        return ""
    return (
        f"Every run of the chapter's evidence (seeds and conditions): {_code(f'make sweep SPEC=sweeps/evidence/{spec.name}')}"
        f", or {_code('make evidence')}, which records the chapters whose code changed and then the ledger and these pages."
    )


def given_parameters(cfg: Any, chapter: str) -> dict[str, Any]:
    """The parameters of ``cfg`` that differ from what its profile resolves to on its dataset (dataset, seed and
    profile always): what a papermill command needs to run it again."""
    from . import config
    from .chapters import chapter as chapter_module

    spec = chapter_module(chapter_notebook(chapter)).PARAMS
    base = {"profile": cfg.profile, "dataset": cfg.dataset} if hasattr(cfg, "dataset") else {"profile": cfg.profile}
    try:  # values the profile derives from the dataset (a latent size, say) are no choice of this run
        default = vars(config.resolve_values(spec, base, check_device=False, check_data=False))
    except config.ParameterError:
        default = {name: p.default(cfg.profile) for name, p in {**config.COMMON, **spec}.items()}
    out: dict[str, Any] = {"profile": cfg.profile}
    for name in (*config.COMMON, *spec):
        value = getattr(cfg, name, None)
        if name != "device" and (name in ("dataset", "seed") or value != default.get(name)):
            out[name] = value
    return out


def banner(cfg: Any, chapter: str) -> Banner:
    """The banner of a chapter's page as executed: the run it shows and the command that runs it again.

    On scikit-learn's 8x8 digits it says that the page is the quick smoke test ``make test``
    executes, not evidence. A recorded page (:mod:`lib.recorded`) gets :func:`recorded_banner` instead.
    """
    given = given_parameters(cfg, chapter)
    rerun = f"Run it again: {_code(rerun_command(chapter, given))}."
    if cfg.dataset == "digits":
        return Banner(
            f"Quick run on 8x8 digits ({chapter_notebook(chapter)})",
            (
                f"This page was executed on {run_label(given)}, on {cfg.device}: the smoke test "
                f"{_code('make test')} runs, not evidence (on 8x8 digits a logistic regression on the pixels "
                f"ties the networks). The book shows the chapter's run on {DATASET_NAMES[PAGE_DATASET]} where "
                f"the evidence recording has it.",
                rerun,
            ),
        )
    return Banner(
        f"Run on {DATASET_NAMES.get(cfg.dataset, cfg.dataset)}",
        (f"This page was executed on {run_label(given)}, on {cfg.device}.", rerun),
    )


def recorded_banner(run: Mapping[str, Any], *, stale: str = "", other_run: str = "") -> Banner:
    """The banner of a recorded page: the evidence ledger's run it shows (provenance, the commands that re-run it).

    ``stale`` (the page was recorded with other code than the chapter's now) and ``other_run``
    (the ledger now records another run) are shown first, as a warning.
    """
    chapter, params = str(run["chapter"]), dict(run["parameters"])
    commit = str(run.get("git_commit") or "")[:7]
    how = ", ".join(
        part
        for part in (
            f"recorded {str(run.get('date') or '')[:10]}" if run.get("date") else "",
            f"on {run['device']}" if run.get("device") else "",
            f"{int(run['threads'])} CPU threads" if run.get("threads") not in (None, "") else "",
            f"at commit {_code(commit)}" if commit else "",
        )
        if part
    )
    shown = (
        f"This page is the evidence ledger's own run of the chapter on {run_label(params)} "
        f"(run {_code(str(run['point']))}, {how}): its numbers are the ledger's."
    )
    paragraphs = [p for p in (stale, other_run) if p]
    paragraphs += [shown, f"Run it again: {_code(rerun_command(chapter, params))}.", _evidence_command(chapter)]
    title = f"Recorded run on {DATASET_NAMES.get(str(params.get('dataset')), params.get('dataset'))}"
    if stale or other_run:
        return Banner(
            f"{title}: {'stale' if stale else 'not the ledger’s run'}", tuple(p for p in paragraphs if p), "warning"
        )
    return Banner(title, tuple(p for p in paragraphs if p))
