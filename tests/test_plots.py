"""lib.plots: readable log axes."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from lib import plots  # noqa: E402


def labelled_ticks(axis, lo: float, hi: float) -> list[str]:
    """The non-empty major tick labels within ``[lo, hi]`` once the figure is drawn."""
    axis.figure.canvas.draw()
    at = 0 if axis.axis_name == "x" else 1
    return [t.get_text() for t in axis.get_ticklabels() if t.get_text() and lo <= t.get_position()[at] <= hi]


def test_a_log_axis_within_one_decade_gets_plain_labels():
    fig, ax = plt.subplots()
    ax.plot([0.6, 1.6], [0.35, 2.8])
    ax.set(xscale="log", yscale="log", xlim=(0.6, 1.6), ylim=(0.35, 2.8))
    plots.log_ticks(ax.xaxis)
    plots.log_ticks(ax.yaxis)
    assert labelled_ticks(ax.xaxis, 0.6, 1.6) == ["0.7", "1", "1.5"]
    assert labelled_ticks(ax.yaxis, 0.35, 2.8) == ["0.4", "0.5", "0.7", "1", "1.5", "2"]
    assert all(t.get_text() == "" for t in ax.yaxis.get_minorticklabels())
    plt.close(fig)


def test_log_ticks_at_given_values_skip_crowded_ones():
    fig, ax = plt.subplots()
    ax.set(xscale="log", xlim=(0.1, 3))
    plots.log_ticks(ax.xaxis, [0.165, 0.301, 0.549, 0.6, 0.835, 0.835])
    assert [round(t, 3) for t in ax.get_xticks()] == [0.165, 0.301, 0.549, 0.835]  # 0.6 is within 1.3x of 0.549
    assert labelled_ticks(ax.xaxis, 0.1, 3) == ["0.165", "0.301", "0.549", "0.835"]
    plt.close(fig)


def test_wider_log_axes_get_fewer_ticks_per_decade():
    fig, ax = plt.subplots()
    ax.set(xscale="log", yscale="log", xlim=(0.15, 12), ylim=(0.05, 400))
    plots.log_ticks(ax.xaxis)
    plots.log_ticks(ax.yaxis)
    assert labelled_ticks(ax.xaxis, 0.15, 12) == ["0.2", "0.5", "1", "2", "5", "10"]
    assert labelled_ticks(ax.yaxis, 0.05, 400) == ["0.1", "1", "10", "100"]
    plt.close(fig)


def test_a_row_of_panels_is_split_into_rows_of_at_most_three():
    assert [plots.per_row(n) for n in range(1, 10)] == [1, 2, 3, 2, 3, 3, 3, 3, 3]
    assert plots.per_row(6, most=6) == 6 and plots.subplots(2, 6, max_per_row=6)[1].shape == (2, 6)
    fig, axes = plots.subplots(2, 4, width=4.0, height=3.4)
    assert axes.shape == (2, 4)
    rows = [[ax.get_subplotspec().rowspan.start for ax in row] for row in axes]
    cols = [[ax.get_subplotspec().colspan.start for ax in row] for row in axes]
    assert rows == [[0, 0, 1, 1], [2, 2, 3, 3]] and cols == [[0, 1, 0, 1]] * 2  # row i's panels stay together
    assert fig.get_size_inches()[0] <= plots.COLUMN_IN
    plt.close(fig)


def test_panels_shrink_to_the_column_their_height_less_than_their_width():
    fig, _ = plots.subplots(1, 3, width=4.0, height=3.0)
    w, h = fig.get_size_inches()
    shrink = w / 12.0
    assert w <= plots.COLUMN_IN and abs(h - 3.0 * (1 + shrink) / 2) < 1e-9  # text keeps its size: room for it
    plt.close(fig)
    fig, _ = plots.subplots(1, 2, width=3.0, height=2.0)
    assert tuple(fig.get_size_inches()) == (6.0, 2.0)  # fits: left as asked
    plt.close(fig)


def test_split_rows_keep_what_shares_an_axis():
    fig, axes = plots.subplots(2, 4, sharey="row")
    shared = axes[0, 0].get_shared_y_axes()
    assert shared.joined(axes[0, 0], axes[0, 3]) and not shared.joined(axes[0, 0], axes[1, 0])
    fig.canvas.draw()
    # a panel shows y tick labels only where no panel it shares with sits to its left in the same row of the figure
    shows = [[any(t.get_visible() and t.get_text() for t in ax.get_yticklabels()) for ax in row] for row in axes]
    assert shows == [[True, False, True, False]] * 2
    plt.close(fig)
    fig, axes = plots.subplots(1, 5, sharex=True)
    assert axes[0, 0].get_shared_x_axes().joined(axes[0, 0], axes[0, 4])
    fig.canvas.draw()
    shows = [any(t.get_visible() and t.get_text() for t in ax.get_xticklabels()) for ax in axes[0]]
    assert shows == [False, False, True, True, True]  # the lower row's panels and the one with none below
    plt.close(fig)


@pytest.fixture
def theme():
    """The book's theme for one test: rcParams and pandas options restored after it."""
    import pandas as pd

    with matplotlib.rc_context(), pd.option_context("display.max_colwidth", 50, "display.max_rows", 60):
        plots.set_theme()
        yield
    plt.close("all")


def _record(data: str):
    import base64
    import io

    from PIL import Image

    im = Image.open(io.BytesIO(base64.b64decode(data)))
    return im, im.text


def test_figure_png_raises_text_to_nine_points_at_the_size_shown():
    fig, ax = plt.subplots(figsize=(14, 3))  # twice the column: shown at half its size
    ax.plot([0, 1], [0, 1])
    ax.set_title("one wide panel")
    ax.text(0.5, 0.5, "tiny", fontsize=4)
    data, meta = plots.figure_png(fig)
    im, text = _record(data)
    shown = min(meta["width"], plots.COLUMN_PX)
    assert meta["width"] == round(im.width * plots.CSS_PX_PER_INCH / plots.DPI)
    smallest = float(text[plots.MIN_FONT_KEY])
    assert smallest * shown / meta["width"] >= plots.MIN_PT - 0.05  # what the reader sees
    assert text[plots.DESCRIPTION_KEY] == "Figure: one wide panel"
    plt.close(fig)


def test_figure_png_leaves_a_figure_that_fits_as_it_is(theme):
    fig, axes = plots.subplots(1, 2, width=3.0, height=2.5)
    for ax in axes[0]:
        ax.plot([1, 2], [1, 3])
        ax.set(xlabel="x", ylabel="y")
    fig.suptitle("two panels")
    data, meta = plots.figure_png(fig)
    _, text = _record(data)
    assert meta["width"] <= plots.COLUMN_PX
    assert float(text[plots.MIN_FONT_KEY]) == min(plots.FONT_SIZES.values())  # nothing raised
    assert text[plots.DESCRIPTION_KEY] == "Figure: two panels. Panels: y against x"
    plt.close(fig)
    assert plots.figure_png(plt.figure()) is None  # an empty figure shows nothing
    plt.close("all")


def test_set_theme_shows_tables_whole(theme):
    import pandas as pd

    assert pd.get_option("display.max_colwidth") is None and pd.get_option("display.max_columns") is None
    assert pd.get_option("display.max_rows") >= 500


def test_a_figure_legend_wider_than_the_figure_gets_fewer_columns(theme):
    fig, axes = plots.subplots(1, 2, width=3.4, height=2.8)
    for i, ax in enumerate(axes[0]):
        for k in range(4):
            ax.plot([0, 1], [k, k + i], label=f"a rather long description of curve number {k}")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=4)
    data, meta = plots.figure_png(fig)
    (legend,) = fig.legends
    assert legend._ncols < 4 and legend.get_window_extent().width <= fig.bbox.width
    assert [t.get_text() for t in legend.texts] == [f"a rather long description of curve number {k}" for k in range(4)]
    assert meta["width"] <= plots.COLUMN_PX  # so shown at its size: nothing shrinks


def test_a_title_wider_than_its_panel_is_broken_into_lines_math_kept_whole(theme):
    fig, axes = plots.subplots(1, 3, width=2.3, height=2.3)
    title = "price of using one direction for all the points, against $\\sqrt{\\sum_j v_j^2 / S(x)}$ as predicted"
    axes[0, 1].set_title(title)
    plots.figure_png(fig)
    shown = axes[0, 1].title.get_text()
    assert "\n" in shown and shown.replace("\n", " ") == title
    assert all(line.count("$") % 2 == 0 for line in shown.split("\n"))  # no line break within math
    fig.draw_without_rendering()
    assert axes[0, 1].title.get_window_extent().width <= axes[0, 1].bbox.width
