"""The sentences chapter 4 generates from its run."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from ...claims import CONTROL, FAILS, HOLDS, PAPER, Claim, reproduction_lines
from .params import CHESSBOARD, DIAGONAL

__all__ = ["findings", "headline", "reach_sentences", "scale_sentences"]


def reach_sentences(reach: pd.DataFrame, cfg: SimpleNamespace) -> str:
    """One computed sentence per figure: how many runs of each variant reached the stop margin."""
    out = []
    for fig, spec in (("diagonal", DIAGONAL), ("chessboard", CHESSBOARD)):
        items = [
            f"{int(r.reached)} of {int(r.runs)} {variant} runs" + (f" on {plane}" if fig == "chessboard" else "")
            for (plane, variant), r in reach.loc[fig].iterrows()
        ]
        out.append(
            f"{fig.capitalize()} (stop at margin {spec['margin']:g}, budget "
            f"{getattr(cfg, fig + '_steps'):,} steps): " + ", ".join(items) + " reached the margin."
        )
    return "\n".join(out)


def scale_sentences(flips: dict, scale: dict, cfg: SimpleNamespace) -> str:
    """What the flip distances are against the data scale and the untrained network, from the run."""
    rel, par, rel0 = (flips[k][0] for k in ("rel_perp", "rel_par", "rel_perp0"))
    by_d, by_r = scale["d"], scale["radius"]
    radii = by_r["levels"].index
    lv = by_r["levels"].rel_perp
    return (
        f"At d = {cfg.d}, radius {cfg.radius:g}, the median label flips along the orthogonal gradient at "
        f"{rel:.2f} ||x|| and along the in-subspace gradient at {par:.2f} ||x|| (geometric means over "
        f"{cfg.n_seeds} seeds); the untrained network of the same width flips along its orthogonal "
        f"gradient at {rel0:.3f} ||x||, so training multiplies the orthogonal flip distance by "
        f"{flips['flip_gain'][0]:.2g} [{flips['flip_gain'][1]:.2g}, {flips['flip_gain'][2]:.2g}] and the "
        f"orthogonal gradient by {flips['grad_gain'][0]:.2g} [{flips['grad_gain'][1]:.2g}, "
        f"{flips['grad_gain'][2]:.2g}].\n"
        f"With the radius growing as sqrt(d) (d from {int(by_d['levels'].index.min()) + cfg.k} to "
        f"{int(by_d['levels'].index.max()) + cfg.k}), the orthogonal flip distance over ||x|| has log-log "
        f"slope {by_d['rel_perp']:+.2f} [{by_d['rel_perp_lo']:+.2f}, {by_d['rel_perp_hi']:+.2f}] in d - k; "
        f"within P {by_d['rel_par']:+.2f} [{by_d['rel_par_lo']:+.2f}, {by_d['rel_par_hi']:+.2f}]; for the "
        f"untrained network {by_d['rel_perp0']:+.2f} [{by_d['rel_perp0_lo']:+.2f}, {by_d['rel_perp0_hi']:+.2f}]; "
        f"the trained / untrained ratio {by_d['flip_gain']:+.2f} [{by_d['flip_gain_lo']:+.2f}, "
        f"{by_d['flip_gain_hi']:+.2f}].\n"
        f"At fixed d the data radius moves it: {lv.iloc[0]:.2f} ||x|| at radius {radii[0]:g}, "
        f"{lv.iloc[-1]:.2f} ||x|| at radius {radii[-1]:g} (slope {by_r['rel_perp']:+.2f} in the radius). The "
        f"ratio of the orthogonal to the in-subspace flip distance, the comparison this chapter once judged "
        f"'small' by, is {flips['delta_ratio'][0]:.2f} at radius {cfg.radius:g}, with log-log slope "
        f"{by_r['perp_over_par']:+.2f} [{by_r['perp_over_par_lo']:+.2f}, {by_r['perp_over_par_hi']:+.2f}] "
        f"in the radius: {_dependence(by_r, 'perp_over_par')}."
    )


def _dependence(sl: dict, col: str) -> str:
    """Whether a slope's interval says the ratio grows, shrinks or is not shown to move."""
    lo, hi = sl[col + "_lo"], sl[col + "_hi"]
    return "it grows with the radius" if lo > 0 else "it shrinks with the radius" if hi < 0 else "no trend is shown"


def _fit_reason(c: Claim, reach: pd.DataFrame, cfg: SimpleNamespace) -> str:
    """For a figure claim: how many networks of each variant it compares reached the margin, and where they ended."""
    short = c.id.split(".", 1)[1]
    fig = "diagonal" if short.startswith("diagonal") else "chessboard"
    variants = ["vanilla", "weight decay" if "weight_decay" in short else "small init"]
    planes = {"diagonal": ["line"], "chessboard": ["z=0.5", "z=0"]}[fig]
    if short == "chessboard_linear_small_init_gain":
        planes = ["z=0"]
    elif fig == "chessboard" and short != "affine_plane_weaker":
        planes = ["z=0.5"]
    parts = []
    for plane in planes:
        for v in variants:
            if (fig, plane, v) in reach.index:
                r = reach.loc[(fig, plane, v)]
                on = f" on {plane}" if fig == "chessboard" else ""
                parts.append(
                    f"{int(r.reached)} of {int(r.runs)} {v} networks{on} reached the margin within "
                    f"{getattr(cfg, fig + '_steps'):,} steps (median final minimum margin {r.median_final_margin:.2f})"
                )
    return "; ".join(parts)


def _why(c: Claim, reach: pd.DataFrame, cfg: SimpleNamespace) -> str:
    """The numbers behind a verdict, in a clause: the statistic's value, and for a figure claim its networks' fit."""
    why = f"{c.value}"
    if "gain" in c.id or "affine" in c.id:
        why += f"; {_fit_reason(c, reach, cfg)}"
    return why


def headline(rows: list[Claim], reach: pd.DataFrame, cfg: SimpleNamespace) -> str:
    """The paper claims this run does not reproduce first (with the numbers that show why), then those it does;
    then the book's controls. Mechanism checks are no findings and are left out."""
    out = []
    for kind, who, what in ((PAPER, "the paper's", "claims"), (CONTROL, "the book's", "control claims")):
        mine = [c for c in rows if c.kind == kind]
        held = [c for c in mine if c.verdict == HOLDS]
        missed = [c for c in mine if c.verdict != HOLDS]
        missed.sort(key=lambda c: c.verdict != FAILS)  # refuted before undecided
        out.append(f"**{len(held)} of {who} {len(mine)} {what} hold in this run.**")
        labels = ("Not reproduced:", "Reproduced:") if kind == PAPER else ("Not shown:", "Shown:")
        out += reproduction_lines(missed, held, lambda c: _why(c, reach, cfg), labels=labels)
    return "\n".join(out)


def findings(flips: dict, scale: dict, reach: pd.DataFrame, cfg: SimpleNamespace) -> str:
    """The run's reading in sentences built from its numbers: the flip distances against the data scale and the
    untrained network (:func:`scale_sentences`), and how many networks of the two figures fit (:func:`reach_sentences`)."""
    return (
        f"- **Against the data scale.** {scale_sentences(flips, scale, cfg)}\n"
        f"- **The two synthetic figures.** {reach_sentences(reach, cfg)}"
    )
