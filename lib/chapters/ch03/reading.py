"""The sentences generated from a run: the training verdicts, the main numbers and the findings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ... import som
from ...claims import FAILS, HOLDS, INCONCLUSIVE, PAPER, Claim, reproduction_lines
from .claims import DECLARED
from .params import CONVERGED_FALL, FITTED_ACCURACY, MODEL_TITLES, MODELS

__all__ = ["findings", "headline", "summary_text", "training_text"]


def training_text(table: pd.DataFrame) -> str:
    """Whether each network converged and clears the pixel baseline, in sentences built from ``table``."""
    fall = next(c for c in table.columns if c.startswith("loss fall"))
    lines = []
    for model, r in table.iterrows():
        margin = r["test accuracy"] - r["pixel logistic regression (test)"]
        k = fall.split()[-2]
        verdict = {
            "plateau": f"it has converged at this schedule (a plateau: less than {CONVERGED_FALL:.0%})",
            "fitted": f"it has converged (the training set is fitted: at least {FITTED_ACCURACY:.0%} "
            "of it classified correctly)",
            "no": "it has not converged by the book's test",
        }[r.converged]
        lines.append(
            f"{model}: training loss {r['final train loss']:.4f} at the end, {r[fall]:.2%} lower than "
            f"{k} epochs before, so {verdict}; train accuracy {r['train accuracy']:.3f}, test accuracy "
            f"{r['test accuracy']:.3f}, {abs(margin):.3f} {'above' if margin > 0 else 'below'} a logistic "
            f"regression on the pixels."
        )
    return "\n".join(lines)


def _verdicts(rows: list[Claim], short: str) -> dict[str, Claim]:
    """The rows of one claim (its short name without the model), by model title."""
    return {MODEL_TITLES[name]: c for c in rows for name in MODELS if c.id == DECLARED[f"{name}_{short}"].id}


def _landed(landing: pd.DataFrame, title: str, eps: float, layer: str) -> pd.Series:
    """Where the successful PGD inputs of budget ``eps`` land at ``layer``: fraction by category."""
    la = landing[(landing.model == title) & (landing.attack == "PGD") & np.isclose(landing.eps, eps)]
    return la[la.layer == layer].set_index("lands in")["fraction"]


def _names(titles: list[str]) -> str:
    return " and ".join(titles) if titles else "no network"


def _ci(lo: float, hi: float) -> str:
    return f"[{lo:+.3f}, {hi:+.3f}]"


def _why(c: Claim, title: str, decisions: pd.DataFrame, diffs: pd.DataFrame, corr: pd.DataFrame) -> str:
    """The numbers behind a paper claim's verdict, in a clause."""
    short = c.id.split(".", 1)[1].split("_", 1)[1]
    if short == "decisions_beyond_input":
        d = decisions[decisions.model == title].iloc[0]
        return (
            f"predictions agree with the {d.layer} code's majority for {d.agreement:.3f} of the test inputs, "
            f"with the input layer's map for {d['input agreement']:.3f} (difference {c.estimate:+.3f} "
            f"{_ci(c.lo, c.hi)}); k-means with as many cells on {d.layer} agrees for {d['k-means agreement']:.3f}"
        )
    if short == "shallow_homogeneous_deep_diverse":
        d = diffs[diffs.model == title].iloc[0]
        return f"homogeneity {d.shallow} minus {d.deep} {c.estimate:+.3f} {_ci(c.lo, c.hi)}"
    m = corr[(corr.model == title) & (corr.layer == "logit margin (control)")].iloc[0]
    shallow = diffs[diffs.model == title].iloc[0].shallow
    raw = corr[(corr.model == title) & (corr.layer == shallow)].iloc[0]
    return (
        f"the raw rank correlation of {raw.layer} homogeneity with the flipping budget is {raw.rho:+.2f} "
        f"{_ci(raw.lo, raw.hi)}, the clean logit margin's {m.rho:+.2f}; given the margin it is "
        f"{c.estimate:+.2f} {_ci(c.lo, c.hi)}"
    )


def headline(rows: list[Claim], decisions: pd.DataFrame, diffs: pd.DataFrame, corr: pd.DataFrame) -> str:
    """The paper claims this run does not reproduce first, with the numbers that show why, then those it does."""
    paper = [c for c in rows if c.kind == PAPER]
    titles = {c.id: t for name, t in MODEL_TITLES.items() for c in paper if c.id.startswith(f"ch03.{name}_")}
    missed = [c for c in paper if c.verdict != HOLDS]
    held = [c for c in paper if c.verdict == HOLDS]
    lines = [f"**{len(held)} of the paper's {len(paper)} claims hold in this run.**"]
    lines += reproduction_lines(missed, held, lambda c: _why(c, titles[c.id], decisions, diffs, corr))
    return "\n".join(lines)


def findings(
    rows: list[Claim],
    res: dict,
    grids: pd.DataFrame,
    untrained: pd.DataFrame,
    corr: pd.DataFrame,
    landing: pd.DataFrame,
    eps: float,
) -> str:
    """A Markdown reading of this run (each sentence chosen by the computed numbers, none typed in advance)."""
    dec, sd = _verdicts(rows, "decisions_beyond_input"), _verdicts(rows, "shallow_homogeneous_deep_diverse")
    ctrl = _verdicts(rows, "deep_diverse_beyond_untrained")
    beyond = _verdicts(rows, "homogeneity_vulnerability_beyond_margin")
    track = [t for t, c in dec.items() if c.verdict == HOLDS]
    worse = [t for t, c in dec.items() if c.verdict == FAILS]
    lines = [
        f"- **Decisions.** The last hidden layer's codes carry more of the decision than the input layer's "
        f"map for {_names(track)}"
        + (f", less for {_names(worse)}" if worse else "")
        + " (agreement minus the input layer's: "
        + ", ".join(f"{t} {c.estimate:+.3f} {_ci(c.lo, c.hi)}" for t, c in dec.items())
        + ")."
    ]
    parts = []
    for t, c in sd.items():
        g, u = grids[grids.model == t], untrained[untrained.model == t].iloc[0]
        pos = int((g.lo > 0).sum())
        side = {
            HOLDS: "more class-mixed than",
            FAILS: "less class-mixed than",
            INCONCLUSIVE: "not distinguishable from",
        }[c.verdict]
        than = {
            HOLDS: "more than",
            FAILS: "less than",
            INCONCLUSIVE: "not distinguishably more than",
        }[ctrl[t].verdict]
        parts.append(
            f"the {t}'s first hidden layer has codes {side} its last (difference {c.estimate:+.3f} "
            f"{_ci(c.lo, c.hi)}; interval above 0 for {pos} of {len(g)} map sizes), {than} in the same "
            f"network untrained ({u['untrained difference']:+.3f}; trained minus untrained "
            f"{ctrl[t].estimate:+.3f} {_ci(ctrl[t].lo, ctrl[t].hi)})"
        )
    text = "; ".join(parts)
    lines.append("- **Shallow against deep.** " + text[0].upper() + text[1:] + ".")
    eff = pd.concat([r.table for r in res.values()])["effective_codes"]
    spread = (eff.max() - eff.min()) / eff.max()
    lines.append(
        f"- **Diversity as code usage.** The effective number of codes ranges from {eff.min():.0f} to "
        f"{eff.max():.0f} over all layers (a spread of {spread:.0%} of the largest): "
        + (
            "it hardly depends on depth, since a map spreads its units over whatever data it is given."
            if spread < 0.25
            else "it changes with depth."
        )
    )
    parts, raw_neg, better = [], [], []
    for name, r in res.items():
        t = MODEL_TITLES[name]
        c = corr[corr.model == t].set_index("layer")
        if c.loc[r.layers[1], "hi"] < 0:
            raw_neg.append(t)
        if abs(c.loc["logit margin (control)", "rho"]) > abs(c.loc[r.layers[1], "rho"]):
            better.append(t)
        parts.append(
            f"{t}: {beyond[t].estimate:+.2f} {_ci(beyond[t].lo, beyond[t].hi)} at {r.layers[1]} given the "
            f"margin ({beyond[t].verdict}), {c.loc[r.layers[0], 'partial rho (margin)']:+.2f} at the input layer's "
            f"map given the margin; raw {c.loc[r.layers[1], 'rho']:+.2f} at {r.layers[1]}, "
            f"{c.loc[r.layers[0], 'rho']:+.2f} at the input, the margin itself "
            f"{c.loc['logit margin (control)', 'rho']:+.2f}"
        )
    neg = [t for t, c in beyond.items() if c.verdict == HOLDS]
    lines.append(
        f"- **Homogeneity and vulnerability.** Given the clean logit margin, inputs with more homogeneous "
        f"shallow codes are easier to flip for {_names(neg)}. Without the margin (descriptive: inputs near the "
        f"decision boundary may be both easy to flip and class-mixed), the rank correlation is negative for "
        f"{_names(raw_neg)}; the margin alone ranks the flipping budgets more closely than homogeneity does "
        f"for {_names(better)}. " + "; ".join(parts) + "."
    )
    parts = []
    for name, r in res.items():
        t = MODEL_TITLES[name]
        deep, inp = _landed(landing, t, eps, r.layers[-1]), _landed(landing, t, eps, r.layers[0])
        parts.append(
            f"{t}: at {r.layers[-1]} {deep.get(som.LANDING[1], 0):.0%} in codes of the class now "
            f"predicted, {deep.get(som.LANDING[3], 0):.0%} in codes no clean input uses; at the input "
            f"{inp.get(som.LANDING[0], 0):.0%} keep a code of their true class"
        )
    lines.append(f"- **Where adversarial codes land** (PGD, eps = {eps:g}). " + "; ".join(parts) + ".")
    return "\n".join(lines)


def summary_text(
    res: dict, diffs: pd.DataFrame, corr: pd.DataFrame, changes: pd.DataFrame, landing: pd.DataFrame, eps: float
) -> str:
    """The run's main numbers in sentences (so the text never states a number the run did not produce)."""
    lines = []
    for name, r in res.items():
        title = MODEL_TITLES[name]
        d = diffs[diffs.model == title].iloc[0]
        c = corr[corr.model == title].set_index("layer")
        ch = changes[(changes.model == title) & (changes.attack == "PGD") & np.isclose(changes.eps, eps)]
        ch = ch.set_index("layer")["code changed"]
        deep, inp = _landed(landing, title, eps, r.layers[-1]), _landed(landing, title, eps, r.layers[0])
        lines.append(
            f"{title}: homogeneity {d.shallow} {r.table.homogeneity.iloc[1]:.3f} vs {d.deep} "
            f"{r.table.homogeneity.iloc[-1]:.3f} (difference {d.difference:+.3f} [{d.lo:+.3f}, {d.hi:+.3f}]). "
            f"Rank correlation of homogeneity with the flipping budget: {d.shallow} {c.loc[d.shallow, 'rho']:.2f}, "
            f"{d.deep} {c.loc[d.deep, 'rho']:.2f}, clean logit margin {c.loc['logit margin (control)', 'rho']:.2f}; "
            f"{d.shallow} given the margin {c.loc[d.shallow, 'partial rho (margin)']:.2f}. "
            f"PGD at eps = {eps:g} changes the code of {ch.iloc[0]:.0%} of inputs at the input layer and "
            f"{ch.iloc[-1]:.0%} at {r.layers[-1]}; at {r.layers[-1]}, {deep.get(som.LANDING[1], 0):.0%} of the "
            f"successful adversarial inputs land in codes of the adversarial class, "
            f"{deep.get(som.LANDING[0], 0):.0%} in codes of their true class and "
            f"{deep.get(som.LANDING[3], 0):.0%} in codes no clean training input uses "
            f"(at the input layer: {inp.get(som.LANDING[0], 0):.0%} keep a code of their true class)."
        )
    return "\n\n".join(lines)
