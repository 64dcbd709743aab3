"""The `stats` chart: plain numbers in, PNG bytes out (matplotlib, no other I/O).

Two panels over the stats window — SIF moved (lines: paid out to peers, moved into
escrow as peers accepted) and
the request funnel (grouped bars: opened, accepted, delivered, confirmed) — one
point per day, or per week for long windows. The same numbers always give the same
bytes, so a digest sent twice (or a test) sees one picture.

The bot draws in a short-lived child process (:func:`stats_chart`): matplotlib with
numpy takes some 45 MB that a Python process never gives back once it has imported
them, for a picture a staff member asks for now and then.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.i18n import DEFAULT, N_, _, current, speaking

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FUNNEL = ("opened", "accepted", "delivered", "confirmed")
# The funnel's bars as the legend names them, in the language being written in.
FUNNEL_LABELS = (N_("opened"), N_("accepted"), N_("delivered"), N_("confirmed"))
WIDTH_IN, HEIGHT_IN, DPI = 9, 6, 100  # 900×600 px: readable in a chat preview, small file
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHILD_TIMEOUT_S = 120  # importing matplotlib and drawing take a second or two
# The child imports this module by its package path: run as a script from bot/, its
# neighbours (bot/http.py...) would shadow standard modules.
_CHILD = "import sys; sys.path.insert(0, sys.argv[1]); from bot.app.charts import _child; _child()"


class ChartError(RuntimeError):
    """The child process could not draw the chart."""


@dataclass(frozen=True)
class ChartData:
    """One value per bucket (a day, or a week): SIF amounts in hundredths, requests counted."""

    community: str
    window: str  # e.g. "last 30 days, 2026-02-08 to 2026-03-09 (per day)"
    days: tuple[date, ...]  # the first day of each bucket
    released: tuple[int, ...]
    held: tuple[int, ...]
    opened: tuple[int, ...]
    accepted: tuple[int, ...]
    delivered: tuple[int, ...]
    confirmed: tuple[int, ...]

    def __post_init__(self) -> None:
        n = len(self.days)
        series = (
            self.released,
            self.held,
            self.opened,
            self.accepted,
            self.delivered,
            self.confirmed,
        )
        if any(len(s) != n for s in series):
            raise ValueError("every series needs one value per day")


def stats_figure(series: ChartData) -> Figure:
    """The chart as a Figure (tests inspect its axes; `stats_chart` renders it), its titles
    and labels in the language being written in."""
    # matplotlib (with numpy, about 45 MB) is imported on the first chart, not when the
    # bot starts: most processes never draw one.
    import matplotlib

    # Agg draws without a display; it must be chosen before pyplot is imported, and the
    # bot runs on servers without one.
    matplotlib.use("Agg")
    from matplotlib.dates import DateFormatter, num2date
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    # A bare Figure rather than pyplot: no global figure registry to leak or to clean up.
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    flow, funnel = fig.subplots(2, 1, sharex=True)
    x = list(series.days)
    flow.plot(x, [v / 100 for v in series.released], marker="o", label=_("paid out to peers"))
    flow.plot(x, [v / 100 for v in series.held], marker="s", label=_("into escrow (accepted)"))
    flow.set_title(_("SIF moved"))
    flow.set_ylabel("SIF")
    # Grouped bars, one group per bucket: lines of small counts hide one another.
    step = (series.days[1] - series.days[0]).days if len(series.days) > 1 else 1
    width = 0.8 * step / len(FUNNEL)
    counts = (series.opened, series.accepted, series.delivered, series.confirmed)
    for i, (name, values) in enumerate(zip(FUNNEL_LABELS, counts, strict=True)):
        offset = (i - (len(FUNNEL) - 1) / 2) * width
        starts = [datetime.combine(day, time()) + timedelta(days=offset) for day in series.days]
        funnel.bar(starts, list(values), width, label=_(name))  # width in days on a date axis
    funnel.set_title(_("Request funnel"))
    funnel.set_ylabel(_("requests"))
    funnel.set_xlabel(_("date (UTC)"))
    flow.set_xlabel(_("date (UTC)"))
    code = current()
    if code == DEFAULT:
        # matplotlib leaves DateFormatter.__init__ unannotated
        dates: Any = DateFormatter("%d %b")  # type: ignore[no-untyped-call]
    else:
        from babel.dates import format_skeleton

        def day(value: float, _position: object) -> str:
            # "9 mrt", "9 mars", "9. März": the month in the language being written in
            moment = num2date(value)  # type: ignore[no-untyped-call]
            return str(format_skeleton("MMMd", moment, locale=code))

        dates = FuncFormatter(day)
    for axes in (flow, funnel):
        # At least 0 to 1: an empty week would otherwise be drawn in steps of 0.006 requests.
        axes.set_ylim(bottom=0, top=max(1.0, axes.get_ylim()[1]))
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(True, alpha=0.3)
        # beside the plot, so it never covers a point
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
        axes.xaxis.set_major_formatter(dates)
    # sharex hides the upper panel's tick labels; dates on both read more easily.
    flow.tick_params(labelbottom=True)
    fig.suptitle(
        _("{community}: {window}").format(community=series.community, window=series.window)
    )
    return fig


def render_png(series: ChartData) -> bytes:
    """PNG bytes of the chart, drawn in this process."""
    buffer = io.BytesIO()
    # No "Software" entry: it names the matplotlib version, which would change the bytes
    # between installs; Agg writes no timestamp into PNGs.
    stats_figure(series).savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _encode(series: ChartData) -> bytes:
    values = asdict(series)
    values["days"] = [day.isoformat() for day in series.days]
    values["language"] = current()  # the child draws in the language being written in
    return json.dumps(values).encode()


def _decode(data: bytes) -> tuple[ChartData, str]:
    values: dict[str, Any] = json.loads(data)
    return ChartData(
        community=values["community"],
        window=values["window"],
        days=tuple(date.fromisoformat(day) for day in values["days"]),
        released=tuple(values["released"]),
        held=tuple(values["held"]),
        opened=tuple(values["opened"]),
        accepted=tuple(values["accepted"]),
        delivered=tuple(values["delivered"]),
        confirmed=tuple(values["confirmed"]),
    ), values.get("language", DEFAULT)


def stats_chart(series: ChartData) -> bytes:
    """PNG bytes of the chart, drawn by a child process (the same bytes as
    :func:`render_png`) in the language being written in; identical input gives identical
    bytes."""
    root = str(Path(__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, root],
        input=_encode(series),
        capture_output=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.startswith(PNG_SIGNATURE):
        problem = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ChartError(f"the chart process failed ({done.returncode}): {problem[-1:]}")
    return done.stdout


def _child() -> None:
    """The child's side of :func:`stats_chart`: chart data on stdin, PNG bytes on stdout."""
    series, language = _decode(sys.stdin.buffer.read())
    with speaking(language):
        png = render_png(series)
    sys.stdout.buffer.write(png)
    sys.stdout.flush()
