"""The stats chart: a deterministic PNG whose panels, labels and lines show the input."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from matplotlib.dates import date2num

from bot.app import charts
from bot.app.charts import ChartData, ChartError, render_png, stats_chart, stats_figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DAYS = tuple(date(2026, 3, 1) + timedelta(days=i) for i in range(8))


def data(**overrides: object) -> ChartData:
    values: dict[str, object] = {
        "community": "Repair Factory",
        "window": "last 7 days to 2026-03-08 (per day)",
        "days": DAYS,
        "released": (0, 200, 0, 100, 0, 0, 350, 0),
        "held": (200, 100, 0, 0, 350, 0, 0, 100),
        "opened": (2, 1, 0, 0, 3, 0, 0, 1),
        "accepted": (1, 1, 0, 0, 1, 0, 0, 1),
        "delivered": (0, 1, 0, 1, 0, 0, 1, 0),
        "confirmed": (0, 1, 0, 1, 0, 0, 1, 0),
    }
    values.update(overrides)
    return ChartData(**values)  # type: ignore[arg-type]


def test_png_is_nonempty_small_and_deterministic() -> None:
    first = stats_chart(data())
    assert first.startswith(PNG_SIGNATURE)
    assert len(first) > 1000
    assert stats_chart(data()) == first
    assert stats_chart(data(opened=(2, 1, 0, 0, 3, 0, 0, 2))) != first
    # IHDR holds width and height right after the signature and chunk header
    width = int.from_bytes(first[16:20], "big")
    height = int.from_bytes(first[20:24], "big")
    assert (width, height) == (900, 600)


def test_panels_have_titles_axis_labels_and_legends() -> None:
    fig = stats_figure(data())
    assert fig.get_suptitle() == "Repair Factory: last 7 days to 2026-03-08 (per day)"
    flow, funnel = fig.axes
    assert flow.get_title() == "SIF moved"
    assert funnel.get_title() == "Request funnel"
    assert flow.get_ylabel() == "SIF" and funnel.get_ylabel() == "requests"
    assert "date" in flow.get_xlabel() and "date" in funnel.get_xlabel()
    flow_legend, funnel_legend = flow.get_legend(), funnel.get_legend()
    assert flow_legend is not None and funnel_legend is not None
    assert [t.get_text() for t in flow_legend.get_texts()] == [
        "paid out to peers",
        "into escrow (accepted)",
    ]
    assert [t.get_text() for t in funnel_legend.get_texts()] == [
        "opened",
        "accepted",
        "delivered",
        "confirmed",
    ]


def test_lines_and_bars_draw_the_input_numbers() -> None:
    series = data()
    flow, funnel = stats_figure(series).axes
    released, held = flow.get_lines()
    assert list(released.get_ydata()) == [v / 100 for v in series.released]
    assert list(held.get_ydata()) == [v / 100 for v in series.held]
    assert list(released.get_xdata()) == list(DAYS)
    expected = [series.opened, series.accepted, series.delivered, series.confirmed]
    groups = funnel.containers
    assert [[bar.get_height() for bar in group] for group in groups] == [list(e) for e in expected]
    # each group of bars sits around its day: opened left of the day, confirmed right of it
    opened_x = [bar.get_x() + bar.get_width() / 2 for bar in groups[0]]
    confirmed_x = [bar.get_x() + bar.get_width() / 2 for bar in groups[3]]
    days = [float(d) for d in date2num(list(DAYS))]
    assert all(o < d < c for o, d, c in zip(opened_x, days, confirmed_x, strict=True))
    assert all(c - o < 1 for o, c in zip(opened_x, confirmed_x, strict=True))


def test_series_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="one value per day"):
        data(held=(1, 2))


def test_the_child_process_draws_the_same_bytes_as_this_process() -> None:
    series = data(community="Café Ünal", window="last 7 days to 2026-03-08 (per day)")
    assert stats_chart(series) == render_png(series)


def test_drawing_a_chart_leaves_matplotlib_out_of_the_bot() -> None:
    root = str(Path(__file__).resolve().parents[2])
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from datetime import date; from bot.app.charts import ChartData, stats_chart;"
        "png = stats_chart(ChartData('c', 'w', (date(2026, 3, 1),), *[(1,)] * 6));"
        "print(png[:4] == b'\\x89PNG', 'matplotlib' in sys.modules, 'numpy' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, root], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["True", "False", "False"]


def test_a_failing_child_process_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(charts, "_CHILD", "raise SystemExit('no matplotlib here')")
    with pytest.raises(ChartError, match="no matplotlib here"):
        stats_chart(data())


def test_an_empty_window_counts_in_whole_requests() -> None:
    zeros = (0,) * 7
    empty = data(
        days=DAYS[:7], released=zeros, held=zeros, opened=zeros, accepted=zeros,
        delivered=zeros, confirmed=zeros,
    )  # fmt: skip
    fig = stats_figure(empty)
    fig.canvas.draw()
    flow, funnel = fig.axes
    for axes in (flow, funnel):
        assert axes.get_ylim() == (0.0, 1.0)
        assert all(float(t).is_integer() for t in axes.get_yticks())
    assert len(funnel.get_xticks()) == 7  # one date per day of a 7-day window
