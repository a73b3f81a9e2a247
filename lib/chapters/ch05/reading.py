"""The run's reading: sentences generated from its numbers and its claims' verdicts."""

from __future__ import annotations

import pandas as pd

from ...claims import CONTROL, FAILS, HOLDS, INCONCLUSIVE, Claim, reproduction_lines
from .association import robustness_row
from .claims import BEAT, DECLARED, PAPERS, lens_moves
from .lenses import BASIS_LENSES, DIRECTED, FIRST_ORDER, LENSES, ROBUSTNESS_LABEL, SHORT
from .population import METHOD_TITLES, METHODS

__all__ = ["READING", "HOLD_WORD", "headline", "findings", "accuracy_note"]

READING = {HOLDS: "supports", FAILS: "weakens", INCONCLUSIVE: "neither supports nor weakens"}
HOLD_WORD = {HOLDS: "holds", FAILS: "is reversed", INCONCLUSIVE: "is not resolved"}
BEATS = {HOLDS: "beats", FAILS: "does worse than", INCONCLUSIVE: "is not told apart from"}


def _count(rows: list[Claim], ids: list[str], verdict: str) -> int:
    return sum(1 for c in rows if c.id in ids and c.verdict == verdict)


def headline(rows: list[Claim]) -> str:
    """The book's claims this run does not show first (refuted before undecided), with their values, then those it
    shows. Every claim of the chapter is the book's; the mechanism check is left out."""
    mine = [c for c in rows if c.kind == CONTROL]
    held = [c for c in mine if c.verdict == HOLDS]
    missed = sorted((c for c in mine if c.verdict != HOLDS), key=lambda c: c.verdict != FAILS)
    lines = [f"**{len(held)} of the book's {len(mine)} claims hold in this run.**"]
    return "\n".join(lines + reproduction_lines(missed, held, lambda c: c.value, labels=("Not shown:", "Shown:")))


def findings(
    table: pd.DataFrame,
    corr: pd.DataFrame,
    matrix: pd.DataFrame,
    shift: pd.DataFrame,
    rows: list[Claim],
    versus: pd.DataFrame | None = None,
) -> str:
    """The run's reading in sentences built from its numbers: which paper's explanation each result supports.

    ``versus`` is :func:`lib.chapters.ch05.association.comparisons` of the basis lenses against
    their permutation nulls and the first-order distance (the numbers of the comparisons)."""
    verdict = {c.id.split(".", 1)[1]: c.verdict for c in rows}  # by short name
    value = {c.id.split(".", 1)[1]: c for c in rows}
    lines = []
    first = robustness_row(corr, FIRST_ORDER)
    predicts = [DECLARED[f"{lens}_predicts"].id for lens in DIRECTED]
    beaten = [DECLARED[f"{lens}_beats_first_order"].id for lens in BEAT]
    lines.append(
        f"- **In short.** Of the {len(DIRECTED)} lenses whose paper predicts a direction, "
        f"{_count(rows, predicts, HOLDS)} go with robustness (measured on the other half of the test set) in that "
        f"direction, {_count(rows, predicts, FAILS)} in the opposite one. The book's baseline, the first-order "
        f"distance |margin| / ||grad margin|| on the lens images, has rho = {first.rho:+.2f} "
        f"[{first.lo:+.2f}, {first.hi:+.2f}]; {_count(rows, beaten, HOLDS)} of the {len(BEAT)} shares predict "
        f"robustness better than it, {_count(rows, beaten, FAILS)} worse."
    )
    for chapter, paper in PAPERS.items():
        parts = []
        for lens in DIRECTED:
            if LENSES[lens][0] != chapter:
                continue
            label, sign = LENSES[lens][1], LENSES[lens][2]
            r = robustness_row(corr, lens)
            v = verdict[f"{lens}_predicts"]
            part = (
                f"the {label} has rho = {r.rho:+.2f} [{r.lo:+.2f}, {r.hi:+.2f}] with robustness (predicted sign "
                f"{'+' if sign > 0 else '-'}), which {READING[v]} the explanation; at equal clean accuracy the link "
                f"{HOLD_WORD[verdict[f'{lens}_beyond_accuracy']]} (partial rho {r['partial rho']:+.2f}), "
                f"within training methods it {HOLD_WORD[verdict[f'{lens}_within_methods']]} "
                f"(rho {r['within rho']:+.2f})"
            )
            if lens in BASIS_LENSES and versus is not None:
                n = versus[(versus.lens == lens) & (versus.against == "permutation null")].iloc[0]
                part += (
                    f"; it {BEATS[verdict[f'{lens}_beats_null']]} its permutation null (the same lens in a random "
                    f"basis: rho {n['rho against']:+.2f}, gain {n.gain:+.2f} [{n.lo:+.2f}, {n.hi:+.2f}])"
                )
            parts.append(part)
        lines.append(f"- **{paper}:** " + "; ".join(parts) + ".")
    t = value["alpha_interior_extremum"]
    shape = {
        HOLDS: "is borne out: both side slopes are significant, with opposite signs",
        FAILS: "is not borne out: both side slopes are significant, with one sign (the relation is monotonic)",
        INCONCLUSIVE: "is not decided: at least one side slope could be 0 (no extremum detected, and no "
        "monotonicity established either)",
    }[t.verdict]
    lines.append(
        f"- **Alpha's shape.** The non-monotonic reading of chapter 1's paper {shape}; two-lines test of robustness "
        f"on alpha: {t.value.split('; ', 1)[1]}."
    )
    main = corr[(corr.robustness == ROBUSTNESS_LABEL) & corr.lens.isin(DIRECTED)]
    best, inside = main.loc[main.rho.abs().idxmax()], main.loc[main["within rho"].abs().idxmax()]
    acc = robustness_row(corr, "clean_accuracy")
    lines.append(
        f"- **Strongest paper lens** across all networks: the {best.measure} (rho {best.rho:+.2f}; the first-order "
        f"distance: {first.rho:+.2f}); within training methods: the {inside.measure} (rho "
        f"{inside['within rho']:+.2f}; the first-order distance: {first['within rho']:+.2f}). Clean accuracy alone "
        f"has rho {acc.rho:+.2f} with robustness ({acc['within rho']:+.2f} within methods)."
    )
    chap = {k: v[0] for k, v in LENSES.items()}
    papers = [lens for lens in LENSES if chap[lens]]
    pairs = [(a, b, matrix.loc[a, b]) for i, a in enumerate(papers) for b in papers[i + 1 :] if chap[a] != chap[b]]
    hi_pair, lo_pair = max(pairs, key=lambda p: abs(p[2])), min(pairs, key=lambda p: abs(p[2]))
    lines.append(
        f"- **Do the lenses see the same thing?** Across papers the most related pair is the "
        f"{LENSES[hi_pair[0]][1]} and the {LENSES[hi_pair[1]][1]} (rho {hi_pair[2]:+.2f}), the least "
        f"related the {LENSES[lo_pair[0]][1]} and the {LENSES[lo_pair[1]][1]} (rho {lo_pair[2]:+.2f})."
    )
    n_ok, n_bad, n = lens_moves(shift)
    moved = [f"{SHORT[c]} {'up' if shift.loc[c, 'mean change'] > 0 else 'down'}" for c in DIRECTED]
    lines.append(
        f"- **Adversarial training** (mean change over matched networks): {', '.join(moved)}; "
        f"{n_ok} of the {n} lenses whose sign a paper predicts move significantly in that direction, {n_bad} against it."
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
