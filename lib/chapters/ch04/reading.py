"""The sentences chapter 4 generates from its run."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from .params import CHESSBOARD, DIAGONAL

__all__ = ["reach_sentences"]


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
