"""lib.plots: readable log axes."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

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
