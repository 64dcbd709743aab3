"""PNG charts of one simulation, or of several overlaid (`--compare`).

matplotlib is imported only when charts are written, and only its object-oriented API
is used (Figure on the Agg canvas), so the simulator runs without it and leaves no state."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from bot.entrypoints.simulate.report import (
    GOAL_WITHIN_48H,
    SimReport,
    _pct,
    _percentile,
    circulation,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def write_charts(reports: Sequence[SimReport], out: Path) -> list[Path]:
    """PNG charts of one run, or of several overlaid (`--compare`); returns the files."""
    # Figures without pyplot render on the Agg canvas and leave no global state behind.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out.mkdir(parents=True, exist_ok=True)
    labelled = _labels(reports)
    layouts: list[tuple[str, tuple[int, int], list[Callable[[Axes], None]]]] = [
        (
            "overview.png",
            (2, 2),
            [
                partial(_plot_acceptance, runs=labelled),
                partial(_plot_lorenz, runs=labelled),
                partial(_plot_balances, runs=labelled),
                partial(_plot_tags, runs=labelled),
            ],
        ),
        ("acceptance.png", (1, 1), [partial(_plot_acceptance, runs=labelled)]),
        (
            "load.png",
            (1, 2),
            [partial(_plot_load_histogram, runs=labelled), partial(_plot_lorenz, runs=labelled)],
        ),
        (
            "balances.png",
            (1, 2),
            [partial(_plot_balances, runs=labelled), partial(_plot_circulation, runs=labelled)],
        ),
        ("tags.png", (1, 1), [partial(_plot_tags, runs=labelled)]),
    ]
    written = []
    for name, (rows, cols), plots in layouts:
        fig = Figure(figsize=(6.4 * cols, 4.6 * rows), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(rows, cols, squeeze=False).flatten()
        for ax, plot in zip(axes, plots, strict=True):
            plot(ax)
        config = reports[0].config
        changed = f"; changed: {config.label}" if len(reports) == 1 and config.overrides else ""
        fig.suptitle(
            f"sif-bot simulation: {config.members} members, {config.weeks} weeks, "
            f"seed {config.seed}{changed}",
            fontsize="large",
        )
        path = out / name
        fig.savefig(path, dpi=100)
        written.append(path)
    return written


def _labels(reports: Sequence[SimReport]) -> list[tuple[str, SimReport]]:
    """Each run's name in the legends: none for a single run (the title says its rules),
    "A: defaults", "B: fanout=2" when runs are compared."""
    if len(reports) == 1:
        return [("", reports[0])]
    return [(f"{chr(65 + i)}: {r.config.label}", r) for i, r in enumerate(reports)]


def _named(label: str, what: str) -> str:
    """A legend entry: "median", or "B: fanout=2: median" when runs are compared."""
    return f"{label}: {what}" if label else what


def _noted(label: str, note: str) -> str:
    """A run's legend entry with a figure: "97.0% by 48 h", or "A: defaults (97.0% by 48 h)"."""
    return f"{label} ({note})" if label else note


def _color(i: int) -> str:
    return f"C{i}"


def _plot_acceptance(ax: Axes, runs: Sequence[tuple[str, SimReport]]) -> None:
    horizon = 24 * 7
    for i, (label, report) in enumerate(runs):
        accepted = sorted(h for h in report.judged_hours if h is not None)
        n = max(1, report.judged)
        xs = [0.0, *accepted, float(horizon)]
        ys = [0.0, *(100 * (k + 1) / n for k in range(len(accepted)))]
        ys.append(ys[-1])
        ax.step(
            xs,
            ys,
            where="post",
            color=_color(i),
            label=_noted(label, f"{_pct(report.within_48h)} by 48 h"),
        )
    ax.axvline(24, color="grey", linestyle=":", label="24 h")
    ax.axvline(48, color="grey", linestyle="--", label="48 h")
    ax.axhline(
        100 * GOAL_WITHIN_48H,
        color="red",
        linestyle="--",
        linewidth=1,
        label=f"goal: {GOAL_WITHIN_48H:.0%} by 48 h",
    )
    ax.set_xlim(0, horizon)
    ax.set_ylim(0, 100)
    ax.set_xticks(range(0, horizon + 1, 24))
    ax.set_title("Time until a peer accepts a request")
    ax.set_xlabel("hours after the request")
    ax.set_ylabel("requests accepted (% of requests)")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(alpha=0.3)


def _plot_lorenz(ax: Axes, runs: Sequence[tuple[str, SimReport]]) -> None:
    ax.plot([0, 100], [0, 100], color="grey", linestyle="--", label="every peer the same load")
    for i, (label, report) in enumerate(runs):
        load = sorted(report.load)
        total = sum(load) or 1
        xs = [100 * k / max(1, len(load)) for k in range(len(load) + 1)]
        ys = [0.0]
        for x in load:
            ys.append(ys[-1] + 100 * x / total)
        ax.plot(xs, ys, color=_color(i), label=_noted(label, f"spread {report.gini:.2f}"))
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    # A Lorenz curve, in words: the closer to the diagonal, the more evenly shared.
    ax.set_title("How evenly reviews are shared (closer to the diagonal: fairer)")
    ax.set_xlabel("eligible peers, least busy first (%)")
    ax.set_ylabel("share of all reviews they delivered (%)")
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(alpha=0.3)


def _plot_load_histogram(ax: Axes, runs: Sequence[tuple[str, SimReport]]) -> None:
    from matplotlib.ticker import MaxNLocator

    most = max((max(r.load, default=0) for _, r in runs), default=0)
    width = 0.8 / len(runs)
    for i, (label, report) in enumerate(runs):
        counts = [sum(1 for x in report.load if x == k) for k in range(most + 1)]
        ax.bar(
            [k - 0.4 + width * (i + 0.5) for k in range(most + 1)],
            counts,
            width=width,
            color=_color(i),
            label=label or None,
        )
    ax.set_title("Reviews delivered per eligible peer")
    ax.set_xlabel("reviews delivered during the simulation")
    ax.set_ylabel("eligible peers")
    # Peers and reviews are counted: whole-number ticks, never 2.5 peers.
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if len(runs) > 1:
        ax.legend(fontsize="small")
    ax.grid(alpha=0.3, axis="y")


def _plot_balances(ax: Axes, runs: Sequence[tuple[str, SimReport]]) -> None:
    for i, (label, report) in enumerate(runs):
        weeks = [s.day / 7 for s in report.snapshots]
        ordered = [sorted(s.balances) for s in report.snapshots]

        def line(q: float, rows: list[list[int]] = ordered) -> list[float]:
            return [_percentile(b, q) / 100 for b in rows]

        ax.fill_between(
            weeks,
            line(0.1),
            line(0.9),
            color=_color(i),
            alpha=0.2,
            label=_named(label, "middle 80% of members"),
        )
        ax.plot(weeks, line(0.5), color=_color(i), label=_named(label, "median"))
        ax.plot(weeks, line(0.0), color=_color(i), linestyle=":", label=_named(label, "lowest"))
        ax.plot(
            weeks,
            line(1.0),
            color=_color(i),
            linestyle="--",
            linewidth=1,
            label=_named(label, "highest"),
        )
    limit = runs[0][1].credit_limit / 100
    ax.axhline(limit, color="red", linewidth=1, label=f"credit limit ({limit:g} SIF)")
    ax.set_title("Member balances over time")
    ax.set_xlabel("week")
    ax.set_ylabel("balance (SIF)")
    ax.legend(loc="upper left", fontsize="x-small", ncol=2)
    ax.grid(alpha=0.3)


def _plot_circulation(ax: Axes, runs: Sequence[tuple[str, SimReport]]) -> None:
    for i, (label, report) in enumerate(runs):
        weeks = [s.day / 7 for s in report.snapshots]
        ax.plot(
            weeks,
            [circulation(s) / 100 for s in report.snapshots],
            color=_color(i),
            label=_named(label, "in circulation: sum of positive balances (SIF)"),
        )
        ax.plot(
            weeks,
            [s.escrow / 100 for s in report.snapshots],
            color=_color(i),
            linestyle="--",
            label=_named(label, "held in escrow (SIF)"),
        )
        ax.plot(
            weeks,
            [s.at_limit for s in report.snapshots],
            color=_color(i),
            linestyle=":",
            label=_named(label, "members at the credit limit"),
        )
    ax.set_title("SIF in circulation and members at the credit limit")
    ax.set_xlabel("week")
    ax.set_ylabel("SIF, or members")
    ax.legend(loc="upper left", fontsize="x-small")
    ax.grid(alpha=0.3)


def _plot_tags(ax: Axes, runs: Sequence[tuple[str, SimReport]]) -> None:
    tags = [row.tag for row in runs[0][1].tags]
    height = 0.8 / len(runs)
    for i, (label, report) in enumerate(runs):
        rows = {row.tag: row for row in report.tags}
        ys = [k - 0.4 + height * (i + 0.5) for k in range(len(tags))]
        ax.barh(
            ys,
            [rows[t].requests for t in tags],
            height=height,
            color=_color(i),
            alpha=0.3,
            label=_named(label, "requests"),
        )
        ax.barh(
            ys,
            [rows[t].requests - rows[t].within_48h for t in tags],
            height=height,
            color=_color(i),
            label=_named(label, "not accepted within 48 h"),
        )
    ax.set_yticks(range(len(tags)), tags)
    ax.invert_yaxis()
    ax.set_title("Demand per expertise tag")
    ax.set_xlabel("requests needing the tag")
    ax.set_ylabel("tag")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(alpha=0.3, axis="x")
