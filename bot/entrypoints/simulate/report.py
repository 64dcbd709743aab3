"""What one simulation measured, and its deterministic text: the run's configuration, the
daily balance snapshots, the per-tag rows, the report with its figures and goals, the
side-by-side comparison of two runs, and the formatting helpers they share."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from bot.domain.ledger import format_sif
from bot.i18n import plural

GOAL_WITHIN_48H = 0.95
GOAL_GINI = 0.30
GOAL_DAYS_AT_LIMIT = 28
# Below these the report says a share is too few to judge (a tag's row, the whole run).
TOO_FEW_FOR_A_TAG = 5
TOO_FEW_REQUESTS = 20
SPREAD_MEANS = "0 = every peer the same number of reviews, 1 = one peer does them all"
# The balances table: (heading, width).
BALANCE_COLUMNS = (
    ("week", 4),
    ("lowest", 9),
    ("bottom 10%", 12),
    ("median", 9),
    ("top 10%", 9),
    ("highest", 9),
    ("in circulation", 16),
    ("at the limit", 14),
)
# The synthetic archetypes (simulate.community.Kind) as the report names them.
KIND_NAMES = {
    "peer": ("peer", "peers"),
    "innovator-peer": ("innovator who also reviews", "innovators who also review"),
    "innovator": ("innovator", "innovators"),
    "taker": ("member who only asks", "members who only ask"),
    "ghost": ("member who never answers", "members who never answer"),
}


@dataclass(frozen=True)
class SimConfig:
    members: int = 500
    weeks: int = 12
    seed: int = 1
    # Settings field names without the sif_ prefix, with values as typed (`--set`).
    overrides: tuple[tuple[str, str], ...] = ()
    progress: TextIO | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.overrides) or "defaults"


@dataclass(frozen=True)
class DaySnapshot:
    day: int
    balances: tuple[int, ...]  # every simulated member, in member order (hundredths)
    escrow: int
    at_limit: int  # members who cannot afford the cheapest request


@dataclass(frozen=True)
class TagRow:
    tag: str
    requests: int  # requests that needed the tag (among those judged)
    within_48h: int
    never: int
    peers: int  # eligible peers who hold the tag


@dataclass(frozen=True)
class SimReport:
    """What one simulation measured; `text()` is its deterministic rendering."""

    config: SimConfig
    rules: tuple[tuple[str, str], ...]
    population: tuple[tuple[str, int], ...]
    counts: tuple[tuple[str, int], ...]
    judged_hours: tuple[float | None, ...]  # per judged request: hours to accept, or None
    escalated_requests: int
    load: tuple[int, ...]  # reviews delivered per eligible peer
    snapshots: tuple[DaySnapshot, ...]
    credit_limit: int
    cheapest: int
    longest_at_limit_days: int
    over_limit_weeks: int  # members at the limit for more than GOAL_DAYS_AT_LIMIT days
    ever_at_limit: int
    tags: tuple[TagRow, ...]
    invariant_problems: tuple[str, ...]
    # Delivered reviews whose reviewer works in the idea's topic (community.TOPICS), and
    # the share expected by chance: on average over those reviews, the share of eligible
    # peers in the idea's topic.
    topic_reviews: int = 0
    topic_by_chance: float = 0.0
    topics: tuple[tuple[str, int, int], ...] = ()  # (topic, ideas, eligible peers)

    # -- figures ----------------------------------------------------------------------

    def count(self, name: str) -> int:
        return dict(self.counts).get(name, 0)

    @property
    def judged(self) -> int:
        return len(self.judged_hours)

    def _share(self, accepted: Callable[[float], bool]) -> float:
        if not self.judged_hours:
            return 0.0
        hits = sum(1 for h in self.judged_hours if h is not None and accepted(h))
        return hits / len(self.judged_hours)

    @property
    def within_24h(self) -> float:
        return self._share(lambda h: h <= 24)

    @property
    def within_48h(self) -> float:
        return self._share(lambda h: h <= 48)

    @property
    def never(self) -> float:
        if not self.judged_hours:
            return 0.0
        return sum(1 for h in self.judged_hours if h is None) / len(self.judged_hours)

    @property
    def median_hours(self) -> float | None:
        accepted = [h for h in self.judged_hours if h is not None]
        return statistics.median(accepted) if accepted else None

    @property
    def gini(self) -> float:
        return gini(self.load)

    @property
    def topic_share(self) -> float:
        """Delivered reviews done by a peer of the idea's topic, of all delivered (0..1)."""
        delivered = self.count("reviews delivered")
        return self.topic_reviews / delivered if delivered else 0.0

    @property
    def circulation(self) -> int:
        return circulation(self.snapshots[-1]) if self.snapshots else 0

    def goals(self) -> list[tuple[str, str, bool]]:
        return [
            (
                f"at least {GOAL_WITHIN_48H:.0%} of requests accepted within 48 h",
                _pct(self.within_48h),
                self.within_48h >= GOAL_WITHIN_48H,
            ),
            (
                f"reviews shared fairly: load spread (Gini) at most {GOAL_GINI:.2f}",
                f"{self.gini:.3f}",
                self.gini <= GOAL_GINI,
            ),
            (
                f"nobody at the credit limit for more than {GOAL_DAYS_AT_LIMIT // 7} weeks",
                f"longest {self.longest_at_limit_days} days",
                self.longest_at_limit_days <= GOAL_DAYS_AT_LIMIT,
            ),
        ]

    def figures(self) -> list[tuple[str, float, str]]:
        """The headline figures (name, value, format) that `--compare` sets side by side."""
        median = self.median_hours
        return [
            ("requests", self.count("requests"), "{:.0f}"),
            ("accepted within 24 h (%)", 100 * self.within_24h, "{:.1f}"),
            ("accepted within 48 h (%)", 100 * self.within_48h, "{:.1f}"),
            ("never accepted (%)", 100 * self.never, "{:.1f}"),
            ("median time to accept (h)", median if median is not None else math.nan, "{:.1f}"),
            ("escalated requests", self.escalated_requests, "{:.0f}"),
            ("offers expired unanswered", self.count("offers expired"), "{:.0f}"),
            ("reviews delivered", self.count("reviews delivered"), "{:.0f}"),
            ("load spread (Gini; 0 = even)", self.gini, "{:.3f}"),
            ("most reviews by one peer", max(self.load, default=0), "{:.0f}"),
            ("eligible peers without a review", sum(1 for x in self.load if x == 0), "{:.0f}"),
            ("reviews by a peer of the idea's topic (%)", 100 * self.topic_share, "{:.1f}"),
            ("SIF in circulation at the end", self.circulation / 100, "{:.2f}"),
            ("requests refused at the credit limit", self.count("refused"), "{:.0f}"),
            ("members at the credit limit at the end", self._at_limit_end(), "{:.0f}"),
            ("longest time at the credit limit (days)", self.longest_at_limit_days, "{:.0f}"),
        ]

    def _affinity(self) -> str:
        return dict(self.rules).get("text affinity", "-")

    def _at_limit_end(self) -> int:
        return self.snapshots[-1].at_limit if self.snapshots else 0

    # -- text -------------------------------------------------------------------------

    def text(self) -> str:
        c = self.config
        requests = self.count("requests")
        lines = [
            f"sif-bot simulation: {c.members} members, {c.weeks} weeks, seed {c.seed}",
            "Rules: " + ", ".join(f"{name} {value}" for name, value in self.rules),
            f"Changed from the defaults: {c.label if c.overrides else 'nothing'}",
            "",
            "Community",
            "  " + ", ".join(_kind(k, n) for k, n in self.population) + " (+ 1 staff member)",
            f"  ideas {self.count('ideas')} ({self.count('intakes')} through the intake "
            f"conversation); eligible peers (expertise, capacity > 0) {len(self.load)}",
            "",
            "Activity",
            f"  requests {requests} (advice {self.count('advice')}, feedback "
            f"{self.count('feedback')}, review {self.count('review')}); refused at the credit "
            f"limit {self.count('refused')}; cancelled unanswered {self.count('cancelled')}",
            f"  offers {self.count('offers')}: accepted {self.count('offers accepted')}, "
            f"declined {self.count('offers declined')}, expired unanswered "
            f"{self.count('offers expired')}, withdrawn {self.count('offers withdrawn')}; "
            f"reminders {self.count('reminders')}",
            f"  reviews delivered {self.count('reviews delivered')}: thanked "
            f"{self.count('thanked')}, paid automatically {self.count('paid automatically')}, "
            f"waiting {self.count('waiting for payment')}",
            f"  requests escalated to staff {self.escalated_requests} of {requests} "
            f"({_pct(self.escalated_requests / max(1, requests))}), in "
            f"{plural(self.count('escalations'), 'post', grouping=False)} to staff; staff assigned "
            f"{self.count('staff assigns')}; 'something went wrong' answers "
            f"{self.count('errors')}",
            "",
            f"Acceptance ({plural(self.judged, 'request', grouping=False)} opened at least 48 h "
            "before the end"
            + (", too few to judge the rules)" if self.judged < TOO_FEW_REQUESTS else ")"),
            f"  accepted within 24 h      {_pct(self.within_24h):>7}",
            f"  accepted within 48 h      {_pct(self.within_48h):>7}",
            f"  accepted after 48 h       {_pct(1 - self.within_48h - self.never):>7}",
            f"  never accepted            {_pct(self.never):>7}",
            f"  median time to accept     {_hours(self.median_hours):>7}",
            "",
            "Load (reviews delivered per eligible peer)",
            f"  mean {statistics.fmean(self.load) if self.load else 0:.2f}, median "
            f"{statistics.median(self.load) if self.load else 0:g}, most "
            f"{max(self.load, default=0)}; without a review "
            f"{sum(1 for x in self.load if x == 0)} of {len(self.load)}",
            f"  load spread (Gini) {self.gini:.3f}: {SPREAD_MEANS}",
            f"  reviews by members without expertise {self.count('reviews by non-experts')}",
            "",
            f"Topics (what ideas are about and peers work in; text affinity {self._affinity()})",
            f"  reviews by a peer of the idea's topic {self.topic_reviews} of "
            f"{self.count('reviews delivered')} ({_pct(self.topic_share)}; by chance "
            f"{_pct(self.topic_by_chance)}, the share of eligible peers in the idea's topic)",
            "  ideas / eligible peers: "
            + ", ".join(f"{topic} {ideas}/{peers}" for topic, ideas, peers in self.topics),
            "",
            "SIF",
            f"  in circulation at the end {format_sif(self.circulation)} (the sum of positive "
            f"balances); held in escrow {format_sif(self.snapshots[-1].escrow)}",
            f"  at the credit limit (less than {format_sif(self.cheapest)}, the cheapest request, "
            f"above {format_sif(self.credit_limit)}): {self._at_limit_end()} at the end, "
            f"{self.ever_at_limit} ever, longest "
            f"{plural(self.longest_at_limit_days, 'day', grouping=False)}, "
            f"for more than {GOAL_DAYS_AT_LIMIT // 7} weeks {self.over_limit_weeks}",
            "  balances by week (SIF; bottom 10%: a tenth of the members have this or less, "
            "top 10%: a tenth have this or more):",
            "    " + "".join(f"{h:>{w}}" for h, w in BALANCE_COLUMNS),
        ]
        for snap in self.snapshots:
            if snap.day % 7 and snap is not self.snapshots[-1]:
                continue
            b = sorted(snap.balances)
            values = [f"{snap.day / 7:.0f}"]
            values += [f"{_percentile(b, q) / 100:.2f}" for q in (0.0, 0.1, 0.5, 0.9, 1.0)]
            values += [f"{circulation(snap) / 100:.2f}", str(snap.at_limit)]
            lines.append(
                "    "
                + "".join(f"{v:>{w}}" for v, (_, w) in zip(values, BALANCE_COLUMNS, strict=True))
            )
        lines += [
            "",
            "Tags (requests that needed them)",
            "  tag                   requests  within 48 h  never  eligible peers",
        ]
        for row in self.tags:
            if not row.requests:
                share = "-"
            elif row.requests < TOO_FEW_FOR_A_TAG:
                share = "too few"
            else:
                share = _pct(row.within_48h / row.requests)
            lines.append(
                f"  {row.tag:<20}  {row.requests:8d}  {share:>11}  {row.never:5d}  {row.peers:14d}"
            )
        if any(0 < row.requests < TOO_FEW_FOR_A_TAG for row in self.tags):
            lines.append(
                f"  (too few: fewer than {TOO_FEW_FOR_A_TAG} requests, not enough for a share)"
            )
        unmet = sorted(
            (r for r in self.tags if r.never or r.within_48h < r.requests),
            key=lambda r: (-(r.requests - r.within_48h), r.tag),
        )
        lines.append(
            "  tags with unmet demand (requests not accepted within 48 h / never accepted): "
            + (", ".join(f"{r.tag} {r.requests - r.within_48h}/{r.never}" for r in unmet) or "none")
        )
        lines += [
            "",
            "Ledger invariants: "
            + ("sound" if not self.invariant_problems else "; ".join(self.invariant_problems)),
            "",
            "Goals for the rules",
        ]
        for goal, value, met in self.goals():
            lines.append(f"  {goal}: {value} - {'met' if met else 'MISSED'}")
        if self.judged < TOO_FEW_REQUESTS:
            lines.append(
                f"  (only {plural(self.judged, 'request', grouping=False)} to judge by: too few "
                "to trust these results; simulate more members or weeks)"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()


def compare_text(a: SimReport, b: SimReport) -> str:
    """The headline figures of two runs side by side, with B - A."""
    lines = [
        "Comparison (same community and seed)",
        f"  A: {a.config.label}",
        f"  B: {b.config.label}",
        f"  {'figure':<42}{'A':>10}{'B':>10}{'B - A':>10}",
    ]
    for (name, x, fmt), (_, y, _) in zip(a.figures(), b.figures(), strict=True):
        diff = y - x
        shown = fmt.format(diff) if not math.isnan(diff) else "-"
        if not shown.startswith("-") and shown != "-":
            shown = "+" + shown
        lines.append(
            f"  {name:<42}{_fmt(fmt, x):>10}{_fmt(fmt, y):>10}{shown:>10}",
        )
    for (goal, va, ma), (_, vb, mb) in zip(a.goals(), b.goals(), strict=True):
        lines.append(
            f"  goal {goal}: A {va} {'met' if ma else 'MISSED'}, B {vb} {'met' if mb else 'MISSED'}"
        )
    return "\n".join(lines)


def _fmt(fmt: str, value: float) -> str:
    return "-" if math.isnan(value) else fmt.format(value)


def _kind(kind: str, count: int) -> str:
    one, other = KIND_NAMES.get(kind, (kind, f"{kind}s"))
    return plural(count, one, other)


def _pct(share: float) -> str:
    return f"{100 * share:.1f}%"


def _hours(hours: float | None) -> str:
    return "-" if hours is None else f"{hours:.1f} h"


def _percentile(ordered: Sequence[int], q: float) -> int:
    """Nearest-rank percentile of sorted values (exact integers, so the text is stable)."""
    if not ordered:
        return 0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def circulation(snap: DaySnapshot) -> int:
    """SIF members can spend: the sum of positive balances (mutual credit creates it)."""
    return sum(b for b in snap.balances if b > 0)


def gini(values: Sequence[int]) -> float:
    """Gini coefficient of non-negative values: 0 all equal, towards 1 all on one."""
    n, total = len(values), sum(values)
    if n == 0 or total == 0:
        return 0.0
    ordered = sorted(values)
    weighted = sum((i + 1) * x for i, x in enumerate(ordered))
    return (2 * weighted) / (n * total) - (n + 1) / n
