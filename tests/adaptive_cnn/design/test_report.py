"""The plane plot of acnn report reads: no label collides, the legend covers no point.

Checked with matplotlib's own renderer on the drawn figure: bounding boxes in pixels.
"""

from __future__ import annotations

import itertools

import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from adaptive_cnn.design.report import baseline_groups, plane_figure, write_plots  # noqa: E402


def _result(baselines, energy_mj=1.76, accuracy=0.939):
    return {
        "energy_source": "estimated",
        "energy_mj": energy_mj,
        "test_accuracy": accuracy,
        "oracle": {"energy_mj": 2.0, "test_accuracy": 0.964},
        "budget_mj": 2.0,
        "config": {"strategy": "bo", "mode": "inner"},
        "baselines": baselines,
    }


def _journal(points):
    return [{"feasible": e <= 2.0, "metrics": {"energy_mj": e, "accuracy": a}} for e, a in points]


# the digits run's baselines: two of them are the same network (one point), the others
# lie close together near the design
DIGITS_BASELINES = [
    {"system": "single:small", "energy_mj": 2.83, "test_accuracy": 0.783},
    {"system": "single:medium", "energy_mj": 3.20, "test_accuracy": 0.869},
    {"system": "single:large", "energy_mj": 7.30, "test_accuracy": 0.953},
    {"system": "big/little", "energy_mj": 3.09, "test_accuracy": 0.802},
    {"system": "all-local-largest", "energy_mj": 7.30, "test_accuracy": 0.953},
]
JOURNAL = _journal([(1.6, 0.896), (1.78, 0.896), (1.9, 0.882), (1.9, 0.778)])
WIDE = [  # energies over five decades, accuracies all close: crowded ticks, crowded marks
    {"system": f"system-{i}", "energy_mj": 10.0 ** (i / 2 - 2), "test_accuracy": 0.9 + i / 1e3}
    for i in range(11)
]


def _drawn(result, journal):
    fig = plane_figure(result, journal)
    fig.canvas.draw()
    return fig, fig.axes[0], fig.canvas.get_renderer()


def _overlap(a, b) -> bool:
    """Whether two pixel boxes share area (touching edges do not count)."""
    return min(a.x1, b.x1) - max(a.x0, b.x0) > 0.5 and min(a.y1, b.y1) - max(a.y0, b.y0) > 0.5


@pytest.mark.parametrize(
    "result, journal",
    [
        (_result(DIGITS_BASELINES), JOURNAL),
        (_result(WIDE, energy_mj=0.05), JOURNAL),
        (_result([]), []),
    ],
    ids=["digits", "wide", "empty"],
)
def test_the_legend_lies_outside_the_axes_and_inside_the_figure(result, journal):
    fig, ax, renderer = _drawn(result, journal)
    try:
        legend = ax.get_legend().get_window_extent(renderer)
        frame = ax.get_window_extent(renderer)
        assert not _overlap(legend, frame)  # so it covers no data point
        assert legend.x0 >= frame.x1  # to the right of the axes
        page = fig.bbox
        assert page.x0 <= legend.x0 and legend.x1 <= page.x1  # not cut off
        assert page.y0 <= legend.y0 and legend.y1 <= page.y1
    finally:
        plt.close(fig)


@pytest.mark.parametrize("baselines", [DIGITS_BASELINES, WIDE], ids=["digits", "wide"])
def test_no_two_labels_collide(baselines):
    fig, ax, renderer = _drawn(_result(baselines), JOURNAL)
    try:
        labels = [t for t in ax.texts if t.get_text()]  # annotations on the data, if any
        for axis in (ax.xaxis, ax.yaxis):
            ticks = [t for t in axis.get_ticklabels(which="both") if t.get_text()]
            labels += [t for t in ticks if t.get_visible()]
        shown = [t for t in labels if ax.bbox.expanded(1.3, 1.3).overlaps(t.get_window_extent())]
        boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in shown]
        for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
            assert not _overlap(box_a, box_b), f"{a!r} collides with {b!r}"
        # and the legend's own entries do not overlap one another
        entries = [t.get_window_extent(renderer) for t in ax.get_legend().get_texts()]
        for box_a, box_b in itertools.combinations(entries, 2):
            assert not _overlap(box_a, box_b)
    finally:
        plt.close(fig)


def test_every_baseline_is_named_once_in_the_legend():
    fig, ax, _ = _drawn(_result(DIGITS_BASELINES), JOURNAL)
    try:
        texts = [t.get_text() for t in ax.get_legend().get_texts()]
    finally:
        plt.close(fig)
    for row in DIGITS_BASELINES:
        assert sum(row["system"] in t for t in texts) == 1, row["system"]
    # the two systems on one point share one marker and one entry
    assert any("single:large = all-local-largest" in t for t in texts)
    assert len(baseline_groups(DIGITS_BASELINES)) == 4


def test_write_plots_writes_both_pngs(tmp_path):
    paths = write_plots(tmp_path, _result(DIGITS_BASELINES), JOURNAL)
    assert [p.name for p in paths] == ["search.png", "plane.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)
