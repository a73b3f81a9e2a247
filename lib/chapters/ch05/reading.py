"""The run's reading: sentences generated from its numbers and its claims' verdicts."""

from __future__ import annotations

import pandas as pd

from ...claims import FAILS, HOLDS, INCONCLUSIVE, Claim
from .association import robustness_row
from .claims import DECLARED, PAPERS
from .lenses import LENSES, ROBUSTNESS_LABEL, SHORT
from .population import METHOD_TITLES, METHODS

__all__ = ["READING", "HOLD_WORD", "findings", "accuracy_note"]

READING = {HOLDS: "supports", FAILS: "weakens", INCONCLUSIVE: "neither supports nor weakens"}
HOLD_WORD = {HOLDS: "holds", FAILS: "is reversed", INCONCLUSIVE: "is not resolved"}


def findings(
    table: pd.DataFrame, corr: pd.DataFrame, matrix: pd.DataFrame, shift: pd.DataFrame, rows: list[Claim]
) -> str:
    """The run's reading in sentences built from its numbers: which paper's explanation each result supports."""
    verdict = {c.id.split(".", 1)[1]: c.verdict for c in rows}  # by short name
    lines = []
    for chapter, paper in PAPERS.items():
        parts = []
        for lens, (ch, label, sign) in LENSES.items():
            if ch != chapter or sign == 0:
                continue
            r = robustness_row(corr, lens)
            v = verdict[f"{lens}_predicts"]
            parts.append(
                f"the {label} has rho = {r.rho:+.2f} [{r.lo:+.2f}, {r.hi:+.2f}] with robustness (predicted sign "
                f"{'+' if sign > 0 else '-'}), which {READING[v]} the explanation; at equal clean accuracy the link "
                f"{HOLD_WORD[verdict[f'{lens}_beyond_accuracy']]} (partial rho {r['partial rho']:+.2f}), "
                f"within training methods it {HOLD_WORD[verdict[f'{lens}_within_methods']]} "
                f"(rho {r['within rho']:+.2f})"
            )
        lines.append(f"- **{paper}:** " + "; ".join(parts) + ".")
    t = next(c for c in rows if c.id == DECLARED["alpha_nonmonotonic"].id)
    shape = {
        HOLDS: "is borne out",
        FAILS: "is not borne out (the relation is monotonic)",
        INCONCLUSIVE: "is not decided",
    }[t.verdict]
    lines.append(
        f"- **Alpha's shape.** Robustness against alpha: {t.value.split(';')[0]} by chapter 1's test; the "
        f"non-monotonic reading of chapter 1's paper {shape} on these networks."
    )
    main = corr[(corr.robustness == ROBUSTNESS_LABEL) & (corr.lens != "clean_accuracy")]
    best, inside = main.loc[main.rho.abs().idxmax()], main.loc[main["within rho"].abs().idxmax()]
    acc = robustness_row(corr, "clean_accuracy")
    lines.append(
        f"- **Strongest lens** across all networks: the {best.measure} (rho {best.rho:+.2f}); within "
        f"training methods: the {inside.measure} (rho {inside['within rho']:+.2f}). Clean accuracy alone "
        f"has rho {acc.rho:+.2f} with robustness ({acc['within rho']:+.2f} within methods)."
    )
    chap = {k: v[0] for k, v in LENSES.items()}
    pairs = [
        (a, b, matrix.loc[a, b]) for i, a in enumerate(LENSES) for b in list(LENSES)[i + 1 :] if chap[a] != chap[b]
    ]
    hi_pair, lo_pair = max(pairs, key=lambda p: abs(p[2])), min(pairs, key=lambda p: abs(p[2]))
    lines.append(
        f"- **Do the lenses see the same thing?** Across papers the most related pair is the "
        f"{LENSES[hi_pair[0]][1]} and the {LENSES[hi_pair[1]][1]} (rho {hi_pair[2]:+.2f}), the least "
        f"related the {LENSES[lo_pair[0]][1]} and the {LENSES[lo_pair[1]][1]} (rho {lo_pair[2]:+.2f})."
    )
    moved = [f"{SHORT[c]} {'up' if shift.loc[c, 'mean change'] > 0 else 'down'}" for c in LENSES]
    lines.append(
        f"- **Adversarial training** (mean change over matched networks): {', '.join(moved)}; "
        f"{'every' if verdict['at_moves_all'] == HOLDS else 'not every'} lens moves significantly "
        f"in its paper's direction."
    )
    return "\n".join(lines)


def accuracy_note(table: pd.DataFrame) -> str:
    """Clean accuracy of each method's base networks against backprop's, in one sentence."""
    base = table[table.condition == "base"].groupby("method").clean_accuracy.mean()
    others = ", ".join(
        f"{METHOD_TITLES[m]} {base[m]:.3f} ({base[m] - base['backprop']:+.3f})" for m in METHODS if m != "backprop"
    )
    return (
        f"Base networks, mean clean test accuracy over seeds: backprop {base['backprop']:.3f}; {others}; "
        f"weakest configuration: {table.groupby('configuration').clean_accuracy.mean().idxmin()} "
        f"({table.groupby('configuration').clean_accuracy.mean().min():.3f})."
    )
