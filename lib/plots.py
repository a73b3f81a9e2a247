"""One look for every figure of the book, sized for the page that shows it.

The book's content column is :data:`COLUMN_PX` CSS pixels wide in a 1280-pixel window
(sphinx-book-theme, with both sidebars). A figure is drawn at most that wide in inches
(:func:`subplots`: at most :data:`MAX_PER_ROW` panels a row), shown at its size in
inches (96 CSS pixels an inch), and rendered at :data:`DPI` so that it stays sharp on
dense screens and when opened at full size. :func:`figure_png`, which :func:`set_theme`
makes the notebook's PNG renderer, raises any text that would show smaller than
:data:`MIN_PT` points at that size, and writes the figure's titles into the PNG as its
description (the book's alt text) with the size of its smallest text, which the
render check reads back.
"""

from __future__ import annotations

import base64
import io
import math
import re
import struct
from typing import Iterable

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

PALETTE = "colorblind"
COLUMN_PX = 688  # CSS px: the content column's width at a 1280-px window
CSS_PX_PER_INCH = 96
COLUMN_IN = COLUMN_PX / CSS_PX_PER_INCH  # 7.17 in: a figure this wide is shown at its size
PAD_IN = 0.1  # savefig's margin around the tight box, each side
MIN_PT = 9.0  # the smallest text a reader should meet, at the size the page shows it
MAX_PER_ROW = 3  # panels in one row of a figure
DPI = 2 * CSS_PX_PER_INCH  # two image pixels a CSS pixel
# PNG text keys: the alt text, and the smallest text's size in points at the figure's size in inches
DESCRIPTION_KEY = "Description"
MIN_FONT_KEY = "min font pt"
FONT_SIZES = {  # points; every one of them at least MIN_PT, so a figure at its size needs no raising
    "font.size": 10,
    "axes.labelsize": 10,
    "axes.titlesize": 10,
    "figure.titlesize": 11,
    "figure.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
}


def set_theme() -> None:
    """The book's look: seaborn's white grid and colour-blind palette, the font sizes of
    :data:`FONT_SIZES`, figures rendered by :func:`figure_png` in a notebook, and pandas
    tables shown whole (every row up to 500, every column, every character of a cell)."""
    _use_figure_png()  # first: loading the inline backend resets the formats it knows
    sns.set_theme(
        context="notebook",
        style="whitegrid",
        palette=PALETTE,
        rc={
            **FONT_SIZES,
            "figure.dpi": DPI,
            "savefig.dpi": DPI,
            "figure.figsize": (6.4, 4.0),
            "legend.frameon": False,
        },
    )
    matplotlib.rcParams["figure.constrained_layout.use"] = True
    import pandas as pd

    pd.set_option("display.max_rows", 500)
    pd.set_option("display.max_columns", None)
    pd.set_option("display.max_colwidth", None)


def _use_figure_png() -> None:
    """In IPython with the inline backend, render figures with :func:`figure_png`."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or "inline" not in str(matplotlib.get_backend(auto_select=False) or ""):
        return
    import matplotlib_inline.backend_inline  # noqa: F401  its import registers its own formats

    shell.display_formatter.formatters["image/png"].for_type(Figure, figure_png)


def per_row(ncols: int, most: int = MAX_PER_ROW) -> int:
    """Panels in one row when a row of ``ncols`` panels is split: at most ``most``, as even as can be."""
    return ncols if ncols <= most else math.ceil(ncols / math.ceil(ncols / most))


def subplots(
    nrows: int = 1, ncols: int = 1, *, width: float = 4.0, height: float = 3.2, max_per_row: int = MAX_PER_ROW, **kw
):
    """``plt.subplots`` sized per panel, at most :data:`MAX_PER_ROW` panels a row, at most the column wide.

    Returns ``(fig, axes)`` with ``axes`` of shape ``(nrows, ncols)`` as asked; a row of more
    than three panels is laid out over several rows (:func:`per_row` panels each), so
    ``axes[i, j]`` is still row ``i``'s panel ``j``. ``sharex`` / ``sharey`` (``True``,
    ``"row"``, ``"col"``) keep that meaning; only the outermost tick labels of axes that
    share are drawn. Panels wider than the column allows shrink, their height less than their width.
    ``max_per_row`` is for tiles of images with no text but a title: a row of them reads as one.
    """
    k = per_row(ncols, max_per_row)
    blocks = math.ceil(ncols / k)  # rows of the figure for one row of panels
    shrink = min(1.0, (COLUMN_IN - 2 * PAD_IN) / (width * k))
    # text keeps its size, so a shrunk panel keeps more of its height than of its width
    w, h = width * shrink, height * (1 + shrink) / 2
    figsize = (w * k, h * nrows * blocks)
    if blocks == 1:
        return plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, **kw)
    sharex, sharey = kw.pop("sharex", False), kw.pop("sharey", False)
    subplot_kw = kw.pop("subplot_kw", None) or {}
    gridspec_kw = kw.pop("gridspec_kw", None) or {}
    fig = plt.figure(figsize=figsize, **kw)
    grid = fig.add_gridspec(nrows * blocks, k, **gridspec_kw)
    axes = np.empty((nrows, ncols), dtype=object)
    where = {}
    for i in range(nrows):
        for j in range(ncols):
            spot = (i * blocks + j // k, j % k)
            axes[i, j] = fig.add_subplot(
                grid[spot],
                sharex=_sharing(axes, i, j, sharex),
                sharey=_sharing(axes, i, j, sharey),
                **subplot_kw,
            )
            where[axes[i, j]] = spot
    for ax, (r, c) in where.items():
        if any(rr > r and cc == c and ax.get_shared_x_axes().joined(ax, o) for o, (rr, cc) in where.items()):
            ax.xaxis.set_tick_params(which="both", labelbottom=False)
        if any(rr == r and cc < c and ax.get_shared_y_axes().joined(ax, o) for o, (rr, cc) in where.items()):
            ax.yaxis.set_tick_params(which="both", labelleft=False)
    return fig, axes


def _sharing(axes: np.ndarray, i: int, j: int, share: bool | str):
    """The axes that panel ``(i, j)`` shares an axis with under ``plt.subplots``' ``share`` value, or None."""
    if share in (True, "all"):
        return axes[0, 0] if (i, j) != (0, 0) else None
    if share == "row":
        return axes[i, 0] if j else None
    if share == "col":
        return axes[0, j] if i else None
    if share in (False, "none"):
        return None
    raise ValueError(f"sharex/sharey must be True, False, 'all', 'none', 'row' or 'col', not {share!r}")


# ------------------------------------------------------------ rendering for the page


def _texts(fig: Figure) -> list[Text]:
    """The figure's drawn, non-empty texts."""
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and _shown(t)]


def _shown(artist) -> bool:
    """Whether ``artist`` and every artist it belongs to are visible."""
    axes = getattr(artist, "axes", None)
    return axes is None or axes.get_visible()


def smallest_font(fig: Figure, *, draw: bool = True) -> float:
    """The size in points of the figure's smallest drawn text (draws the figure's layout first, unless
    ``draw`` is False because it was just drawn: tick labels exist only once drawn)."""
    if draw:
        fig.draw_without_rendering()
    return min((t.get_fontsize() for t in _texts(fig)), default=math.inf)


def raise_fonts(fig: Figure, floor: float) -> None:
    """Every text of ``fig`` smaller than ``floor`` points set to ``floor``, tick labels to come included."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = axis.get_ticklabels() + axis.get_ticklabels(minor=True)
            if any(t.get_fontsize() < floor for t in labels):
                axis.set_tick_params(which="both", labelsize=floor)
    for t in fig.findobj(Text):
        if t.get_fontsize() < floor:
            t.set_fontsize(floor)


def fit_legends(fig: Figure) -> None:
    """A figure legend above or below the panels (``loc="outside lower ..."``) that is wider than the
    figure made again with fewer columns, until it fits or has one: the layout makes room for its height only."""
    from matplotlib.legend import Legend

    names = {code: name for name, code in Legend.codes.items()}
    for legend in list(fig.legends):
        if getattr(legend, "_outside_loc", None) not in ("lower", "upper"):
            continue  # beside the panels, the layout makes room for its width
        fig.draw_without_rendering()
        if legend.get_window_extent().width <= fig.bbox.width:
            continue
        entries = (legend.legend_handles, [t.get_text() for t in legend.texts])
        size, title, ncols = legend.texts[0].get_fontsize(), legend.get_title().get_text(), legend._ncols
        while ncols > 1:
            ncols -= 1
            legend.remove()
            legend = fig.legend(
                *entries, loc=f"outside {names[legend._loc]}", ncols=ncols, fontsize=size, title=title or None
            )
            fig.draw_without_rendering()
            if legend.get_window_extent().width <= fig.bbox.width:
                break


def wrap_titles(fig: Figure) -> None:
    """Titles wider than their panel (the figure's title: than the figure) broken into lines that fit,
    never inside ``$...$``: with ``bbox_inches="tight"`` a title running out of the figure would widen
    the image, and the page would shrink all of it."""
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    titles = [(fig._suptitle, fig.bbox.width)] if getattr(fig, "_suptitle", None) else []
    for ax in fig.axes:
        if ax.get_visible():
            titles += [(getattr(ax, a), ax.bbox.width) for a in ("_left_title", "title", "_right_title")]
    for text, room in titles:
        if text.get_text() and text.get_window_extent(renderer).width > room:
            _wrap(text, 0.9 * room, renderer)  # some room to spare: the layout moves once titles take more lines


def _wrap(text: Text, room: float, renderer) -> None:
    """``text`` broken at spaces into lines at most ``room`` display units wide, a word wider kept whole;
    its own line breaks are kept, ``$...$`` is one word."""
    parts = re.split(r"(\$[^$]*\$)", text.get_text())
    kept = "".join(p.replace(" ", "\0") if p.startswith("$") else p for p in parts)
    lines = []
    for paragraph in kept.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            trial = f"{line} {word}" if line else word
            text.set_text(trial.replace("\0", " "))
            if line and text.get_window_extent(renderer).width > room:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
    text.set_text("\n".join(lines).replace("\0", " "))


def shown_width_in(fig: Figure) -> float:
    """The width in inches of the figure as saved with ``bbox_inches="tight"`` (layout as last drawn)."""
    bbox = fig.get_tightbbox(fig.canvas.get_renderer())
    return bbox.width + 2 * PAD_IN


def display_factor(width_in: float, column_px: float = COLUMN_PX) -> float:
    """Shown size over size in inches of a figure ``width_in`` wide: 1, or less where the column shrinks it."""
    return min(1.0, column_px / (width_in * CSS_PX_PER_INCH))


def describe(fig: Figure, limit: int = 600) -> str:
    """Alt text for a figure: its title and its panels' titles, else what its axes plot against what."""
    sup = fig.get_suptitle() if hasattr(fig, "get_suptitle") else ""
    titles = []
    for ax in fig.axes:
        t = " ".join(s for s in (ax.get_title(loc) for loc in ("left", "center", "right")) if s)
        if t and t not in titles:
            titles.append(t)
    if not titles:
        pairs = (
            f"{ax.get_ylabel()} against {ax.get_xlabel()}" for ax in fig.axes if ax.get_xlabel() and ax.get_ylabel()
        )
        titles = list(dict.fromkeys(pairs))
    panels = "; ".join(titles)
    text = f"Figure: {sup}" + (f". Panels: {panels}" if panels else "") if sup else f"Figure: {panels or 'a plot'}"
    text = re.sub(r"\s+", " ", re.sub(r"[$\\{}]", "", text)).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height in pixels of a PNG, from its header."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    return struct.unpack(">II", data[16:24])


def figure_png(fig: Figure, *, dpi: float = DPI, column_px: float = COLUMN_PX, min_pt: float = MIN_PT):
    """A figure as the book shows it: ``(base64 PNG, {"width": CSS px})``, or None for an empty figure.

    Shown ``width`` CSS pixels wide (its size in inches, at most the column); any text
    that would show smaller than ``min_pt`` points at that size is raised to it first.
    The PNG carries the alt text (:func:`describe`) and the smallest text's size.
    """
    if not fig.axes and not fig.lines:
        return None
    for _ in range(4):  # larger text can widen the figure, which can shrink it: a few rounds settle it
        fit_legends(fig)
        wrap_titles(fig)  # draws the layout
        smallest = smallest_font(fig, draw=False)
        floor = min_pt / display_factor(shown_width_in(fig), column_px)
        # a figure shown at under half its size has something wider than any text size can mend: left as it is
        if smallest >= floor - 1e-6 or floor > 2 * min_pt:
            break
        raise_fonts(fig, floor)
    else:
        smallest = smallest_font(fig)  # the sizes the last round raised them to
    buf = io.BytesIO()
    fig.savefig(
        buf,
        format="png",
        dpi=dpi,
        bbox_inches="tight",
        pad_inches=PAD_IN,
        facecolor=fig.get_facecolor(),
        edgecolor=fig.get_edgecolor(),
        metadata={DESCRIPTION_KEY: describe(fig), MIN_FONT_KEY: f"{smallest:.2f}"},
    )
    data = buf.getvalue()
    width_px, _ = png_size(data)
    return base64.b64encode(data).decode("ascii"), {"width": round(width_px * CSS_PX_PER_INCH / dpi)}


class ReadableLogLocator(LogLocator):
    """Major ticks of a log axis, more per decade the fewer decades the view spans: 1, 1.5, 2, 3, 4, 5
    and 7 times the powers of ten within a decade, 1, 2 and 5 within two, the powers alone beyond."""

    def tick_values(self, vmin: float, vmax: float):
        lo, hi = sorted((vmin, vmax))
        decades = math.log10(hi / lo) if lo > 0 else math.inf
        self.set_params(
            subs=(1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0) if decades <= 1 else (1.0, 2.0, 5.0) if decades <= 2 else (1.0,)
        )
        return super().tick_values(vmin, vmax)


def log_ticks(axis, values: Iterable[float] | None = None) -> None:
    """Readable log axis: plain-number labels at ``values`` (skipping one too close to the previous),
    or where :class:`ReadableLogLocator` puts them, so a view within one decade is labelled too; no minor labels."""
    if values is None:
        axis.set_major_locator(ReadableLogLocator())
    else:
        ticks: list[float] = []
        for v in sorted(set(float(v) for v in values)):
            if not ticks or v / ticks[-1] > 1.3:  # skip a tick too close to the previous one
                ticks.append(v)
        axis.set_ticks(ticks)
    axis.set_major_formatter(FormatStrFormatter("%.3g"))
    axis.set_minor_formatter(NullFormatter())
