"""`sif-bot simulate`: try a factory's rules on a synthetic community before living with them.

The simulator builds a community of synthetic members in a temporary SQLite database
(through :func:`bot.bootstrap.build`, exactly as the command line does) and drives the
*real* core through the weeks: every member action is a line of text given to
:meth:`bot.app.service.Bot.handle` on the console platform, and the scheduler's sweeps
(:func:`bot.app.jobs.sweep_offers`, :func:`bot.app.jobs.sweep_conversations`) run on a
:class:`ManualClock` the simulator moves. Members only learn what the bot tells them:
a recording messenger on the console platform receives every message, and each
synthetic member reacts to the ones addressed to them (an offer, a reminder, a
delivered review) according to their profile. Figures are read back from the
database at the end, plus one snapshot of the balances per simulated day.

The community (shares of ``--members``, plus one staff member who takes no reviews):

==================  =====  =======================================================
archetype           share  behaviour
==================  =====  =======================================================
peer                40 %   1-3 expertise tags, answers offers, accepts 55-90 %
innovator-peer      20 %   an idea and 1-2 tags; asks every 3-6 weeks, accepts 40-80 %
innovator           22 %   an idea, no expertise; asks every 2-5 weeks, accepts 5-25 %
taker                8 %   an idea; asks every 10-21 days, never answers offers,
                           thanks only 30 % of reviews
ghost               10 %   signed up with 1-2 tags, never answers anything
==================  =====  =======================================================

Everyone joins during the first week: peers type `expertise add` (and `availability`
when they take other than two reviews at once); one innovator in ten types the whole
intake conversation, and a quarter of those stop halfway until the bot's reminder (or
for good); the other ideas are stored directly with the same answers, to keep a
500-member run within minutes. Answers to offers come after a delay drawn per member
(median 5 h, some members much slower); the bot's reminder brings half of those who
had not answered yet to answer soon; nobody acts between 22:00 and 08:00. Reviews are
delivered 1-5 days after accepting and thanked (or paid automatically) a day or so
later. A request nobody accepted within a week is cancelled by its requester. Staff
look at escalations every morning at 10:00 and `assign` each (at most twice) to the
matching peer who is not busy and has delivered before. Expertise is supplied and demanded
unevenly: many peers know marketing, communication and technology; innovators most
often ask for business-model, finance and fundraising.

The sweeps run on the hour, in every hour in which something falls due (an offer's
reminder or expiry, an auto-release, a conversation's reminder or expiry: the
simulator knows each from what the bot said), and at midnight for anything else.

Everything random comes from one ``random.Random(seed)``: it draws the community, and
gives each member their own generator for their later choices, so two runs with the
same seed but different rules (``--compare``) face the same people making the same
decisions as far as the rules let them. There is no wall-clock time and no iteration
over sets, so the same seed and settings give the same report.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import re
import statistics
import sys
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.app.jobs import OfferSweep, SweepResult, sweep_conversations, sweep_offers
from bot.domain.ids import CommunityId, MemberId
from bot.domain.ledger import ESCROW, format_sif
from bot.domain.records import OfferStatus
from bot.messages import Delivery, Inbound, Outbound
from bot.settings import Settings, load_settings

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from bot.bootstrap import App

# A Monday, so simulated weeks start on Mondays.
SIM_START = datetime(2026, 1, 5, tzinfo=UTC)
STAFF = "staff"
STAFF_CHANNEL = "staff"
PLATFORM = "console"
# Settings the simulator needs for itself: staff must be staff, escalations must land
# in the channel the simulated staff read.
RESERVED = frozenset({"admins", "staff_channel"})
GOAL_WITHIN_48H = 0.95
GOAL_GINI = 0.30
GOAL_DAYS_AT_LIMIT = 28
PATIENCE = timedelta(days=7)  # a requester cancels a request nobody took in this time
STAFF_ASSIGNS_PER_REQUEST = 2
INTAKE_SHARE = 0.1  # innovators who type the whole intake conversation
ABANDON = 0.25  # of those, who stop halfway and fall silent

# Relative popularity of the default tags: what peers know and what innovators ask for.
# Tags a community adds through SIF_TAGS get weight 1 on both sides.
SUPPLY = {
    "business-model": 6,
    "finance": 5,
    "fundraising": 3,
    "legal": 3,
    "marketing": 8,
    "communication": 8,
    "impact-measurement": 2,
    "design": 6,
    "technology": 8,
    "governance": 3,
    "partnerships": 4,
    "public-sector": 3,
}
DEMAND = {
    "business-model": 10,
    "finance": 9,
    "fundraising": 8,
    "legal": 5,
    "marketing": 5,
    "communication": 4,
    "impact-measurement": 6,
    "design": 3,
    "technology": 3,
    "governance": 3,
    "partnerships": 4,
    "public-sector": 3,
}
KINDS = {"advice": 0.4, "feedback": 0.3, "review": 0.3}
LEVELS = {1: 0.3, 2: 0.45, 3: 0.25}
CAPACITIES = {1: 0.3, 2: 0.5, 3: 0.2}
TITLES = (
    "Repair café on wheels",
    "Community solar cooperative",
    "Neighbourhood tool library",
    "Buddy system for newcomers",
    "Food surplus kitchen",
    "Green roofs for social housing",
    "Digital skills for seniors",
    "Car-free school streets",
    "Shared care for family carers",
    "Second-hand school uniforms",
    "Urban beekeeping for youth",
    "Library of things",
)
FEEDBACK = (
    "Start with a cost model per site and test the price with ten households.",
    "Your impact story is strong; measure one outcome from the first month on.",
    "Talk to the city's social economy desk before you apply for the grant.",
    "Split the pilot in two phases so the first one can pay for itself.",
)


class Kind(StrEnum):
    PEER = "peer"
    BOTH = "innovator-peer"
    INNOVATOR = "innovator"
    TAKER = "taker"
    GHOST = "ghost"


@dataclass(frozen=True)
class Archetype:
    kind: Kind
    share: float
    has_idea: bool
    tags: tuple[int, int]  # fewest and most expertise tags
    answers: bool  # whether they ever answer an offer
    accept: tuple[float, float]  # range of the chance to accept an offer they answer
    ask_every_days: tuple[float, float] | None  # range of the mean time between requests
    thanks: float  # chance to thank for a delivered review


ARCHETYPES = (
    Archetype(Kind.PEER, 0.40, False, (1, 3), True, (0.55, 0.90), None, 0.0),
    Archetype(Kind.BOTH, 0.20, True, (1, 2), True, (0.40, 0.80), (21.0, 42.0), 0.85),
    Archetype(Kind.INNOVATOR, 0.22, True, (0, 0), True, (0.05, 0.25), (14.0, 35.0), 0.85),
    Archetype(Kind.TAKER, 0.08, True, (0, 0), False, (0.0, 0.0), (10.0, 21.0), 0.30),
    Archetype(Kind.GHOST, 0.10, False, (1, 2), False, (0.0, 0.0), None, 0.0),
)


class ManualClock:
    """The simulator's clock: time moves only when the simulator moves it (never back)."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance_to(self, moment: datetime) -> None:
        if moment < self.current:
            raise ValueError(f"the clock cannot go back from {self.current} to {moment}")
        self.current = moment


class _Inbox:
    """The console messenger of the simulation: keeps what the bot sent until read."""

    platform = PLATFORM

    def __init__(self) -> None:
        self.messages: list[Outbound] = []

    async def send(self, message: Outbound) -> None:
        self.messages.append(message)

    def take(self) -> list[Outbound]:
        taken, self.messages = self.messages, []
        return taken


# -- configuration and report -----------------------------------------------------------


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
    def circulation(self) -> int:
        return circulation(self.snapshots[-1]) if self.snapshots else 0

    def goals(self) -> list[tuple[str, str, bool]]:
        return [
            (
                f"at least {GOAL_WITHIN_48H:.0%} of requests accepted within 48 h",
                _pct(self.within_48h),
                self.within_48h >= GOAL_WITHIN_48H,
            ),
            (f"load Gini at most {GOAL_GINI:.2f}", f"{self.gini:.3f}", self.gini <= GOAL_GINI),
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
            ("load Gini", self.gini, "{:.3f}"),
            ("most reviews by one peer", max(self.load, default=0), "{:.0f}"),
            ("eligible peers without a review", sum(1 for x in self.load if x == 0), "{:.0f}"),
            ("SIF in circulation at the end", self.circulation / 100, "{:.2f}"),
            ("requests refused at the credit limit", self.count("refused"), "{:.0f}"),
            ("members at the credit limit at the end", self._at_limit_end(), "{:.0f}"),
            ("longest time at the credit limit (days)", self.longest_at_limit_days, "{:.0f}"),
        ]

    def _at_limit_end(self) -> int:
        return self.snapshots[-1].at_limit if self.snapshots else 0

    # -- text -------------------------------------------------------------------------

    def text(self) -> str:
        c = self.config
        lines = [
            f"sif-bot simulation: {c.members} members, {c.weeks} weeks, seed {c.seed}",
            "Rules: " + ", ".join(f"{name} {value}" for name, value in self.rules),
            f"Changed from the defaults: {c.label if c.overrides else 'nothing'}",
            "",
            "Community",
            "  "
            + ", ".join(f"{n} {k}s" if n != 1 else f"{n} {k}" for k, n in self.population)
            + " (+ 1 staff member)",
            f"  ideas {self.count('ideas')} ({self.count('intakes')} through the intake "
            f"conversation); eligible peers (expertise, capacity > 0) {len(self.load)}",
            "",
            "Activity",
            f"  requests {self.count('requests')} (advice {self.count('advice')}, feedback "
            f"{self.count('feedback')}, review {self.count('review')}); refused at the credit "
            f"limit {self.count('refused')}; cancelled unanswered {self.count('cancelled')}",
            f"  offers {self.count('offers')}: accepted {self.count('offers accepted')}, "
            f"declined {self.count('offers declined')}, expired unanswered "
            f"{self.count('offers expired')}, withdrawn {self.count('offers withdrawn')}; "
            f"reminders {self.count('reminders')}",
            f"  reviews delivered {self.count('reviews delivered')}: thanked "
            f"{self.count('thanked')}, paid automatically {self.count('paid automatically')}, "
            f"waiting {self.count('waiting for payment')}",
            f"  escalations posted to staff {self.count('escalations')}; staff assigned "
            f"{self.count('staff assigns')}; 'something went wrong' answers "
            f"{self.count('errors')}",
            "",
            f"Acceptance ({self.judged} requests opened at least 48 h before the end)",
            f"  accepted within 24 h      {_pct(self.within_24h):>7}",
            f"  accepted within 48 h      {_pct(self.within_48h):>7}",
            f"  accepted after 48 h       {_pct(1 - self.within_48h - self.never):>7}",
            f"  never accepted            {_pct(self.never):>7}",
            f"  median time to accept     {_hours(self.median_hours):>7}",
            f"  escalated to staff        {self.escalated_requests} requests "
            f"({_pct(self.escalated_requests / max(1, self.count('requests')))})",
            "",
            "Load (reviews delivered per eligible peer)",
            f"  mean {statistics.fmean(self.load) if self.load else 0:.2f}, median "
            f"{statistics.median(self.load) if self.load else 0:g}, most "
            f"{max(self.load, default=0)}; without a review "
            f"{sum(1 for x in self.load if x == 0)} of {len(self.load)}; Gini {self.gini:.3f}",
            f"  reviews by members without expertise {self.count('reviews by non-experts')}",
            "",
            "SIF",
            f"  in circulation at the end {format_sif(self.circulation)} (sum of positive "
            f"balances); held in escrow {format_sif(self.snapshots[-1].escrow)}",
            f"  at the credit limit (balance - {format_sif(self.cheapest)} below "
            f"{format_sif(self.credit_limit)}): {self._at_limit_end()} at the end, "
            f"{self.ever_at_limit} ever, longest {self.longest_at_limit_days} days, more than "
            f"{GOAL_DAYS_AT_LIMIT // 7} weeks {self.over_limit_weeks}",
            "  balances by week (SIF):",
            "    week     min     p10  median     p90     max  circulation  at limit",
        ]
        for snap in self.snapshots:
            if snap.day % 7 and snap is not self.snapshots[-1]:
                continue
            b = sorted(snap.balances)
            lines.append(
                f"    {snap.day / 7:4.0f}"
                + "".join(f"{_percentile(b, q) / 100:8.2f}" for q in (0.0, 0.1, 0.5, 0.9, 1.0))
                + f"{circulation(snap) / 100:13.2f}{snap.at_limit:10d}"
            )
        lines += [
            "",
            "Tags (requests that needed them)",
            "  tag                   requests  within 48 h  never  eligible peers",
        ]
        for row in self.tags:
            share = _pct(row.within_48h / row.requests) if row.requests else "-"
            lines.append(
                f"  {row.tag:<20}  {row.requests:8d}  {share:>11}  {row.never:5d}  {row.peers:14d}"
            )
        unmet = sorted(
            (r for r in self.tags if r.never or r.within_48h < r.requests),
            key=lambda r: (-(r.requests - r.within_48h), r.tag),
        )
        lines.append(
            "  tags with unmet demand (not accepted within 48 h / never): "
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


# -- the synthetic community --------------------------------------------------------------


@dataclass
class _Member:
    name: str
    kind: Kind
    rng: random.Random
    expertise: dict[str, int]
    capacity: int
    answers: bool
    accept: float
    response_hours: float  # median delay before answering an offer
    delivery_days: float  # median delay between accepting and delivering
    thanks: float
    ask_every_days: float | None
    joins_at: datetime
    uses_intake: bool
    script: tuple[str, ...] = ()  # what they type in the intake conversation
    typed: int = 0  # how much of it so far
    intake_tries: int = 0
    idea: int | None = None
    idea_tags: tuple[str, ...] = ()
    waiting: int | None = None  # own request not yet accepted
    # request number -> (token, when) of the answer planned to an offer
    planned: dict[int, tuple[int, datetime]] = field(default_factory=dict)
    delivered: int = 0
    working: int = 0


@dataclass
class _OfferDue:
    reminder: datetime | None  # None once sent
    expires: datetime


@dataclass
class _Request:
    number: int
    requester: _Member
    tags: tuple[str, ...]
    created: datetime
    accepted: bool = False
    closed: bool = False
    paid: bool = False
    staff_assigns: int = 0
    offered: list[str] = field(default_factory=list)


def _apportion(total: int, shares: Sequence[float]) -> list[int]:
    """Whole counts for shares of `total` (largest remainder; ties to the earlier share)."""
    exact = [total * s / sum(shares) for s in shares]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(shares)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _pick(rng: random.Random, weights: Mapping[str, float], k: int) -> tuple[str, ...]:
    """k distinct keys drawn by weight, in the order drawn (dict order keeps it stable)."""
    left = dict(weights)
    chosen: list[str] = []
    for _ in range(min(k, len(left))):
        key = rng.choices(list(left), weights=list(left.values()))[0]
        chosen.append(key)
        del left[key]
    return tuple(chosen)


def _draw(rng: random.Random, weights: Mapping[int, float]) -> int:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _community(rng: random.Random, size: int, tags: Sequence[str]) -> list[_Member]:
    supply = {t: float(SUPPLY.get(t, 1)) for t in tags}
    demand = {t: float(DEMAND.get(t, 1)) for t in tags}
    kinds = [
        a
        for a, n in zip(ARCHETYPES, _apportion(size, [a.share for a in ARCHETYPES]), strict=True)
        for _ in range(n)
    ]
    # Shuffled so archetypes interleave in member ids (routing breaks ties by id).
    rng.shuffle(kinds)
    members: list[_Member] = []
    innovators = 0
    for i, arch in enumerate(kinds):
        own = random.Random(rng.getrandbits(64))
        expertise = {t: _draw(own, LEVELS) for t in _pick(own, supply, own.randint(*arch.tags))}
        uses_intake = False
        if arch.has_idea:
            # Every tenth innovator types the whole intake; the others' ideas are stored
            # directly with the same answers, which keeps a 500-member run within minutes.
            uses_intake = innovators % round(1 / INTAKE_SHARE) == 0
            innovators += 1
        member = _Member(
            name=f"m{i + 1:04d}",
            kind=arch.kind,
            rng=own,
            expertise=expertise,
            capacity=_draw(own, CAPACITIES) if expertise else 2,
            answers=arch.answers,
            accept=own.uniform(*arch.accept),
            response_hours=min(48.0, max(0.5, own.lognormvariate(math.log(5), 0.8))),
            delivery_days=own.uniform(1, 5),
            thanks=arch.thanks,
            ask_every_days=own.uniform(*arch.ask_every_days) if arch.ask_every_days else None,
            joins_at=SIM_START + timedelta(seconds=round(own.uniform(0, 7 * 86400))),
            uses_intake=uses_intake,
        )
        if arch.has_idea:
            member.idea_tags = _pick(own, demand, own.randint(1, 3))
        members.append(member)
    return members


# -- settings ------------------------------------------------------------------------------


def setting_names() -> list[str]:
    """The rule settings `--set` accepts: Settings fields without the sif_ prefix."""
    return sorted(
        name.removeprefix("sif_")
        for name in Settings.model_fields
        if name.startswith("sif_") and name.removeprefix("sif_") not in RESERVED
    )


def parse_overrides(pairs: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """`KEY=VALUE` strings as ordered pairs; a later value for a key replaces an earlier."""
    known = setting_names()
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().lower().removeprefix("sif_")
        if not sep or not key:
            raise ValueError(f"'{pair}' should be KEY=VALUE, like offer_ttl_hours=12")
        if key not in known:
            raise ValueError(f"unknown setting '{key}'; settable: {', '.join(known)}")
        found[key] = value.strip()
    return tuple(found.items())


def _settings(database_url: str, overrides: Sequence[tuple[str, str]]) -> Settings:
    return load_settings(
        _env_file=None,
        database_url=database_url,
        sif_staff_channel=STAFF_CHANNEL,
        sif_admins=f"{PLATFORM}:{STAFF}",
        **{f"sif_{k}": v for k, v in overrides},
    )


def _rules(settings: Settings) -> tuple[tuple[str, str], ...]:
    prices = settings.prices
    return (
        ("offer TTL", f"{settings.sif_offer_ttl_hours:g} h"),
        ("fan-out", str(settings.sif_fanout)),
        ("max rounds", str(settings.sif_max_rounds)),
        ("credit limit", format_sif(settings.credit_limit)),
        (
            "prices",
            "/".join(f"{k} {prices[k] / 100:g}" for k in ("advice", "feedback", "review")) + " SIF",
        ),
        ("auto-release", f"{settings.sif_auto_release_days:g} days"),
        ("welcome grant", format_sif(settings.welcome_grant)),
    )


# -- the driver ------------------------------------------------------------------------------

Action = Callable[[], Awaitable[None]]

OFFER = re.compile(r"^Can you help\? R-(\d+):")
REMINDER = re.compile(r"^A reminder: R-(\d+):")
YOU_ACCEPTED = re.compile(r"^You accepted R-(\d+):")
ACCEPTED = re.compile(r"^\S+ accepted R-(\d+) ")
DELIVERED = re.compile(r"^\S+ delivered R-(\d+) ")
ASKED = re.compile(r"^Asked the network: R-(\d+):")
REFUSED = re.compile(r"^A \w+ costs .* credit limit")
IDEA_SAVED = re.compile(r"Your idea is saved as I-(\d+)")
GONE = re.compile(
    r"^(?:Your offer for R-(\d+) expired|R-(\d+) was taken by another peer"
    r"|R-(\d+) was cancelled by its requester)"
)
PAID_AUTOMATICALLY = re.compile(r"^R-(\d+) was paid to \S+ automatically")
# Answers that end an offer for the member who gets them (with GONE and YOU_ACCEPTED).
OFFER_ENDED = re.compile(r"^(?:Declined R-(\d+);|Sorry, R-(\d+) was just taken)")
THANKED = re.compile(r"^Thanks sent: .* for R-(\d+)\.$")
ESCALATION = re.compile(r"^Escalation: R-(\d+):")
INTAKE_REMINDER = re.compile(r"^A reminder: your intake is waiting")
INTAKE_ENDED = re.compile(r"^Your unfinished intake ended")
OFFERS, CHATS = "offers", "conversations"  # the two sweeps
SORRY = "Sorry, something went wrong on my side"


class _Simulation:
    def __init__(
        self, config: SimConfig, app: App, clock: ManualClock, inbox: _Inbox, cid: CommunityId
    ) -> None:
        self.config = config
        self.app = app
        self.settings = app.settings
        self.clock = clock
        self.inbox = inbox
        self.cid = cid
        self.end = SIM_START + timedelta(weeks=config.weeks)
        self.rng = random.Random(config.seed)
        self.members = _community(self.rng, config.members, self.settings.sif_tags)
        self.by_name = {m.name: m for m in self.members}
        self.requests: dict[int, _Request] = {}
        self.queue: list[tuple[datetime, int, Action]] = []
        self.seq = 0
        self.sweeps_due: set[tuple[datetime, str]] = set()  # only asked "is it in"
        # What an offer sweep may find due, as far as the bot told: each offer not known to
        # have ended, and each delivered request not known to be paid (its auto-release).
        self.open_offers: dict[tuple[int, str], _OfferDue] = {}
        self.releases: dict[int, datetime] = {}
        self.escalated: dict[int, None] = {}  # staff's to-do list, in arrival order
        self.snapshots: list[DaySnapshot] = []
        self.counts: dict[str, int] = {}
        self.pending_tags: dict[str, tuple[str, ...]] = {}  # tags of a request being typed
        self.ttl = timedelta(hours=self.settings.sif_offer_ttl_hours)
        self.cheapest = min(self.settings.prices.values())

    # -- the event queue ----------------------------------------------------------------

    def at(self, moment: datetime, action: Action) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (moment, self.seq, action))

    def bump(self, name: str, by: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + by

    def awake(self, member: _Member, moment: datetime) -> datetime:
        """People act between 08:00 and 22:00; a later moment moves to the next morning."""
        if 8 <= moment.hour < 22:
            return moment
        day = moment.date() if moment.hour < 8 else moment.date() + timedelta(days=1)
        morning = datetime(day.year, day.month, day.day, 8, tzinfo=UTC)
        return morning + timedelta(seconds=round(member.rng.uniform(0, 2 * 3600)))

    def later(self, member: _Member, median_hours: float, sigma: float) -> datetime:
        delay = member.rng.lognormvariate(math.log(median_hours), sigma)
        return self.awake(member, self.clock.now() + timedelta(seconds=round(delay * 3600)))

    async def run(self) -> None:
        self.at(SIM_START, self.midnight)
        self.at(SIM_START + timedelta(hours=10), self.staff_round)
        self.at(SIM_START, partial(self.say_as, STAFF, "availability 0"))
        for member in self.members:
            self.at(self.awake(member, member.joins_at), partial(self.join, member))
        while self.queue and self.queue[0][0] <= self.end:
            moment, _, action = heapq.heappop(self.queue)
            self.clock.advance_to(moment)
            await action()
        self.clock.advance_to(self.end)

    # -- talking to the bot -----------------------------------------------------------

    async def say_as(self, name: str, text: str, channel: str | None = None) -> None:
        inbound = Inbound(PLATFORM, PLATFORM, name, text, display_name=name, channel=channel)
        await self.app.bot.handle(inbound)
        self.read_messages()

    async def say(self, member: _Member, text: str) -> None:
        await self.say_as(member.name, text)

    def read_messages(self) -> None:
        """React to what the bot sent: each message goes to the member it was for."""
        for message in self.inbox.take():
            text = message.text
            if text.startswith(SORRY):
                self.bump("errors")
            if message.delivery is Delivery.CHANNEL:
                if found := ESCALATION.match(text):
                    self.bump("escalations")
                    self.escalated[int(found.group(1))] = None
                continue
            member = self.by_name.get(message.to)
            if member is not None:
                self.on_message(member, text)

    def on_message(self, member: _Member, text: str) -> None:
        now = self.clock.now()
        if found := OFFER.match(text):
            number = int(found.group(1))
            request = self.requests.get(number)
            if request is not None:
                request.offered.append(member.name)
            self.open_offers[(number, member.name)] = _OfferDue(now + self.ttl / 2, now + self.ttl)
            self.due(now + self.ttl / 2, OFFERS)  # the reminder
            self.due(now + self.ttl, OFFERS)  # the expiry
            if member.answers:
                self.plan_answer(member, number, self.later(member, member.response_hours, 0.7))
        elif found := REMINDER.match(text):
            number = int(found.group(1))
            self.bump("reminders")
            if (offer := self.open_offers.get((number, member.name))) is not None:
                offer.reminder = None
            # A reminder gets half of those who had not answered yet to answer soon.
            if number in member.planned and member.rng.random() < 0.5:
                self.plan_answer(member, number, self.later(member, 1.0, 0.8))
        elif found := GONE.match(text):
            number = int(next(g for g in found.groups() if g))
            member.planned.pop(number, None)  # nothing left to answer
            self.open_offers.pop((number, member.name), None)
        elif found := OFFER_ENDED.match(text):
            number = int(next(g for g in found.groups() if g))
            self.open_offers.pop((number, member.name), None)
        elif found := YOU_ACCEPTED.match(text):
            number = int(found.group(1))
            self.open_offers.pop((number, member.name), None)
            member.working += 1
            self.at(
                self.later(member, member.delivery_days * 24, 0.5),
                partial(self.deliver, member, number),
            )
        elif found := ACCEPTED.match(text):
            request = self.requests.get(int(found.group(1)))
            if request is not None:
                request.accepted = True
                if request.requester.waiting == request.number:
                    request.requester.waiting = None
        elif found := DELIVERED.match(text):
            number = int(found.group(1))
            release = now + timedelta(days=self.settings.sif_auto_release_days)
            self.releases[number] = release
            self.due(release, OFFERS)
            if member.rng.random() < member.thanks:
                self.at(self.later(member, 24, 0.8), partial(self.thank, member, number))
        elif found := PAID_AUTOMATICALLY.match(text):
            number = int(found.group(1))
            self.releases.pop(number, None)
            request = self.requests.get(number)
            if request is not None:
                request.paid = True
        elif found := THANKED.match(text):
            self.releases.pop(int(found.group(1)), None)
        elif found := ASKED.match(text):
            number = int(found.group(1))
            tags = self.pending_tags.pop(member.name, ())
            self.requests[number] = _Request(number, member, tags, now)
            member.waiting = number
            self.at(now + PATIENCE, partial(self.give_up, member, number))
        elif REFUSED.match(text):
            self.bump("refused")
        elif found := IDEA_SAVED.search(text):
            member.idea = int(found.group(1))
        elif INTAKE_REMINDER.match(text):
            self.bump("intake reminders")
            if member.rng.random() < 0.6:  # the reminder brings most of them back
                self.at(self.later(member, 3, 0.8), partial(self.type_intake, member))
        elif INTAKE_ENDED.match(text):
            self.bump("intakes expired")
            member.typed = 0
            if member.rng.random() < 0.5:  # half start again a few days later
                self.at(self.later(member, 72, 0.5), partial(self.type_intake, member))

    def plan_answer(self, member: _Member, number: int, moment: datetime) -> None:
        """Plan a member's answer to an offer, or bring a planned one forward."""
        current = member.planned.get(number)
        if current is not None and current[1] <= moment:
            return
        self.seq += 1
        member.planned[number] = (self.seq, moment)
        self.at(moment, partial(self.answer, member, number, self.seq))

    def due(self, moment: datetime, job: str) -> None:
        """Have `job` swept on the first full hour after something falls due at `moment`.

        The real scheduler sweeps offers every minute and conversations every 15 minutes;
        the simulation sweeps hourly but skips the hours in which a sweep would find
        nothing (it knows every due moment from what the bot said), which saves thousands
        of empty sweeps and changes nothing else. A sweep at midnight catches the rest.
        """
        # A second past the moment: conversation sweeps take only rows silent *before*.
        hour = (moment + timedelta(seconds=1)).replace(minute=0, second=0, microsecond=0)
        hour += timedelta(hours=1)
        if hour <= self.end and (hour, job) not in self.sweeps_due:
            self.sweeps_due.add((hour, job))
            self.at(hour, partial(self.sweep_if_due, job))

    def offers_due(self) -> bool:
        """Whether an offer sweep now could find anything to do (a reminder, an expiry or
        an auto-release), judged from what the bot said; when in doubt, yes."""
        now = self.clock.now()
        offers = self.open_offers.values()
        return any((o.reminder or o.expires) <= now for o in offers) or any(
            moment <= now for moment in self.releases.values()
        )

    # -- member actions -------------------------------------------------------------

    async def join(self, member: _Member) -> None:
        if member.expertise:
            listed = " ".join(f"{t}:{lv}" for t, lv in member.expertise.items())
            await self.say(member, f"expertise add {listed}")
            if member.capacity != 2:
                await self.say(member, f"availability {member.capacity}")
        if member.idea_tags:
            if member.uses_intake:
                member.script = self.intake_script(member)
                await self.type_intake(member)
            else:
                await self.stored_idea(member)

    def idea_ready(self, member: _Member) -> None:
        """With an idea saved, the first request comes a day or two later."""
        self.at(self.later(member, 36, 0.8), partial(self.ask, member))

    def intake_script(self, member: _Member) -> tuple[str, ...]:
        rng = member.rng
        return (
            "intake",
            rng.choice(TITLES),
            "A service run with volunteers for households on a small budget.",
            "People on a small budget throw away what could be repaired.",
            "Fewer things thrown away; we count repairs every month.",
            rng.choice(("grants, services", "sales", "donations, grants", "don't know yet")),
            rng.choice(("5000 EUR", "10-20k euro", "don't know")),
            rng.choice(("idea", "prototype", "pilot")),
            "Whether volunteers stay longer than a few months.",
            rng.choice(("civil society", "civil society, government", "business")),
            ", ".join(member.idea_tags),
            "skip",
            "English",
            "confirm",
        )

    async def type_intake(self, member: _Member) -> None:
        """Type the intake from where it stopped; a quarter stop halfway the first time."""
        stop = len(member.script)
        if member.typed == 0:
            member.intake_tries += 1
            if member.intake_tries == 1 and member.rng.random() < ABANDON:
                stop = member.rng.randint(3, 9)
        for answer in member.script[member.typed : stop]:
            await self.say(member, answer)
            member.typed += 1
        if member.typed < len(member.script):
            self.bump("intakes abandoned")
            now = self.clock.now()
            self.due(now + timedelta(days=self.settings.sif_conversation_reminder_days), CHATS)
            self.due(now + timedelta(days=self.settings.sif_conversation_expiry_days), CHATS)
            return
        if member.idea is None:
            raise RuntimeError(f"{member.name}'s intake did not create an idea")
        self.bump("intakes")
        self.idea_ready(member)

    async def stored_idea(self, member: _Member) -> None:
        """The member says hello with a command, and their idea is stored as intake would."""
        await self.say(member, "tags")
        title = member.rng.choice(TITLES)
        async with self.app.bot.uow_factory() as uow:
            found = await uow.members.by_identity(PLATFORM, member.name)
            assert found is not None
            answers = {
                "title": title,
                "summary": "A service run with volunteers for households on a small budget.",
                "help": list(member.idea_tags),
                "language": {"choices": ["English"], "note": ""},
            }
            idea = await uow.ideas.create(self.cid, found.id, title, answers, self.clock.now())
            await uow.commit()
        member.idea = idea.number
        self.idea_ready(member)

    async def ask(self, member: _Member) -> None:
        assert member.ask_every_days is not None and member.idea is not None
        rng = member.rng
        if member.waiting is not None:  # one open question at a time
            self.at(self.later(member, 48, 0.3), partial(self.ask, member))
            return
        kind = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
        tags = member.idea_tags
        if len(tags) > 1:  # mostly one question at a time, sometimes two topics
            tags = tuple(rng.sample(tags, 2)) if rng.random() < 0.3 else (rng.choice(tags),)
        before = len(self.requests)
        self.pending_tags[member.name] = tags
        await self.say(member, f"request I-{member.idea} {kind} {' '.join(tags)}")
        self.pending_tags.pop(member.name, None)
        if len(self.requests) > before:
            self.bump("requests")
            self.bump(kind)
        gap = max(1.0, rng.expovariate(1 / member.ask_every_days))
        self.at(self.later(member, gap * 24, 0.1), partial(self.ask, member))

    async def answer(self, member: _Member, number: int, token: int) -> None:
        planned = member.planned.get(number)
        if planned is None or planned[0] != token:
            return  # brought forward, or the offer is gone
        del member.planned[number]
        if member.rng.random() < member.accept:
            await self.say(member, f"accept R-{number}")
        else:
            reason = member.rng.choice(("too busy this week", "not my field", "travelling", ""))
            await self.say(member, f"decline R-{number} {reason}".strip())

    async def deliver(self, member: _Member, number: int) -> None:
        member.working -= 1
        member.delivered += 1
        hours = round(member.rng.uniform(0.5, 3.0) * 4) / 4
        await self.say(member, f"done R-{number} {hours:g} {member.rng.choice(FEEDBACK)}")

    async def thank(self, member: _Member, number: int) -> None:
        request = self.requests.get(number)
        if request is None or request.paid:
            return
        rating = member.rng.choices((3, 4, 5), weights=(1, 3, 4))[0]
        await self.say(member, f"thanks R-{number} {rating} thank you, very useful")
        request.paid = True

    async def give_up(self, member: _Member, number: int) -> None:
        request = self.requests[number]
        if request.accepted or request.closed:
            return
        request.closed = True
        if member.waiting == number:
            member.waiting = None
        self.bump("cancelled")
        await self.say(member, f"cancel R-{number}")

    # -- staff ----------------------------------------------------------------------------

    async def staff_round(self) -> None:
        """Every morning staff offer each escalated request to a peer they choose."""
        todo, self.escalated = list(self.escalated), {}
        for number in todo:
            request = self.requests.get(number)
            if request is None or request.accepted or request.closed:
                continue
            if request.staff_assigns >= STAFF_ASSIGNS_PER_REQUEST:
                continue
            peer = self.staff_choice(request)
            if peer is None:
                continue
            request.staff_assigns += 1
            self.bump("staff assigns")
            await self.say_as(STAFF, f"assign R-{number} @{peer.name}", STAFF_CHANNEL)
        self.at(self.clock.now() + timedelta(days=1), self.staff_round)

    def staff_choice(self, request: _Request) -> _Member | None:
        """Whom staff ask: a matching peer not busy with a review, preferably one who has
        delivered before, then the best match, then the one with the fewest reviews."""
        best: tuple[tuple[int, bool, int, int, int], _Member] | None = None
        for index, member in enumerate(self.members):
            if member is request.requester or member.name in request.offered:
                continue
            match = sum(member.expertise.get(t, 0) for t in request.tags)
            if not match or member.capacity == 0:
                continue
            key = (member.working, member.delivered == 0, -match, member.delivered, index)
            if best is None or key < best[0]:
                best = (key, member)
        return best[1] if best else None

    # -- sweeps and measurements ------------------------------------------------------------

    async def sweep_if_due(self, job: str) -> None:
        """A sweep planned for something that fell due; an offer sweep is left out when
        that has ended meanwhile (an answered offer, a thanked review), since it would
        find nothing, change nothing and say nothing. About half of them are."""
        if job != OFFERS or self.offers_due():
            await self.sweep(job)

    async def sweep(self, job: str) -> OfferSweep | SweepResult:
        bot = self.app.bot
        result: OfferSweep | SweepResult
        if job == OFFERS:
            result = await sweep_offers(bot.uow_factory, self.settings, self.clock, bot.relay)
        else:
            result = await sweep_conversations(
                bot.uow_factory, self.settings, self.clock, bot.flows, bot.relay
            )
        self.bump("sweeps")
        self.read_messages()
        return result

    async def midnight(self) -> None:
        """Both sweeps (whatever was not foreseen), then the day's balance snapshot."""
        await self.sweep(OFFERS)
        await self.sweep(CHATS)
        await self.snapshot()
        if self.clock.now() < self.end:
            self.at(self.clock.now() + timedelta(days=1), self.midnight)

    async def snapshot(self) -> None:
        async with self.app.bot.uow_factory() as uow:
            infos = {i.name: i.balance for i in await uow.ledger.all_balances(self.cid)}
            escrow = await uow.ledger.balance(self.cid, ESCROW)
        balances = tuple(infos.get(m.name, 0) for m in self.members)
        floor = self.settings.credit_limit
        day = round((self.clock.now() - SIM_START).total_seconds() / 86400)
        self.snapshots.append(
            DaySnapshot(
                day=day,
                balances=balances,
                escrow=escrow,
                at_limit=sum(1 for b in balances if b - self.cheapest < floor),
            )
        )
        if day % 7 == 0 and day and self.config.progress is not None:
            print(
                f"simulate: week {day // 7}/{self.config.weeks}: "
                f"{self.counts.get('requests', 0)} requests, "
                f"{sum(1 for r in self.requests.values() if r.accepted)} accepted, "
                f"{self.counts.get('escalations', 0)} escalations",
                file=self.config.progress,
                flush=True,
            )

    async def report(self) -> SimReport:
        judged_before = self.end - timedelta(hours=48)
        async with self.app.bot.uow_factory() as uow:
            requests = await uow.requests.all(self.cid)
            offers = [o for r in requests for o in await uow.requests.offers(r.id)]
            facts = await uow.requests.peer_facts(self.cid, SIM_START)
            problems = await uow.ledger.check_invariants(self.cid)
            ideas = await uow.ideas.all(self.cid)
        eligible: list[MemberId] = [
            f.member for f in facts if f.expertise and f.capacity > 0 and f.name in self.by_name
        ]
        expertise = {f.member: f.expertise for f in facts}
        delivered: dict[MemberId, int] = {}
        for r in requests:
            if r.delivered_at is not None and r.peer is not None:
                delivered[r.peer] = delivered.get(r.peer, 0) + 1
        eligible_set = dict.fromkeys(eligible)
        non_experts = sum(n for peer, n in delivered.items() if peer not in eligible_set)
        judged = [r for r in requests if r.created_at <= judged_before]
        hours: list[float | None] = [
            (r.accepted_at - r.created_at).total_seconds() / 3600 if r.accepted_at else None
            for r in judged
        ]
        tag_rows = []
        for tag in self.settings.sif_tags:
            needing = [h for r, h in zip(judged, hours, strict=True) if tag in r.tags]
            tag_rows.append(
                TagRow(
                    tag=tag,
                    requests=len(needing),
                    within_48h=sum(1 for h in needing if h is not None and h <= 48),
                    never=sum(1 for h in needing if h is None),
                    peers=sum(1 for m in eligible if tag in expertise[m]),
                )
            )
        tag_rows.sort(key=lambda row: (-row.requests, row.tag))
        status = [o.status for o in offers]
        counts = dict(self.counts)
        counts.update(
            {
                "ideas": len(ideas),
                "offers": len(offers),
                "offers accepted": status.count(OfferStatus.ACCEPTED),
                "offers declined": status.count(OfferStatus.DECLINED),
                "offers expired": status.count(OfferStatus.EXPIRED),
                "offers withdrawn": status.count(OfferStatus.WITHDRAWN),
                "reminders": counts.get("reminders", 0),
                "reviews delivered": sum(delivered.values()),
                "reviews by non-experts": non_experts,
                "thanked": sum(1 for r in requests if r.rating is not None),
                "paid automatically": sum(1 for r in requests if r.note == "paid automatically"),
                "waiting for payment": sum(1 for r in requests if r.status.value == "delivered"),
            }
        )
        floor = self.settings.credit_limit
        streaks = _longest_streaks(self.snapshots, lambda b: b - self.cheapest < floor)
        population = [
            (a.kind.value, sum(1 for m in self.members if m.kind is a.kind)) for a in ARCHETYPES
        ]
        return SimReport(
            config=self.config,
            rules=_rules(self.settings),
            population=tuple(population),
            counts=tuple(counts.items()),
            judged_hours=tuple(hours),
            escalated_requests=sum(1 for r in requests if r.escalated_at is not None),
            load=tuple(delivered.get(m, 0) for m in eligible),
            snapshots=tuple(self.snapshots),
            credit_limit=self.settings.credit_limit,
            cheapest=self.cheapest,
            longest_at_limit_days=max(streaks, default=0),
            over_limit_weeks=sum(1 for s in streaks if s > GOAL_DAYS_AT_LIMIT),
            ever_at_limit=sum(1 for s in streaks if s > 0),
            tags=tuple(tag_rows),
            invariant_problems=tuple(problems),
        )


def _longest_streaks(
    snapshots: Sequence[DaySnapshot], at_limit: Callable[[int], bool]
) -> list[int]:
    """Per member, the most consecutive daily snapshots at the credit limit (days)."""
    if not snapshots:
        return []
    longest = [0] * len(snapshots[0].balances)
    current = [0] * len(longest)
    for snap in snapshots:
        for i, balance in enumerate(snap.balances):
            current[i] = current[i] + 1 if at_limit(balance) else 0
            longest[i] = max(longest[i], current[i])
    return longest


async def simulate(config: SimConfig) -> SimReport:
    """Run one simulation on a fresh temporary database and measure it."""
    from bot.bootstrap import build

    with tempfile.TemporaryDirectory(prefix="sif-simulate-") as tmp:
        settings = _settings(f"sqlite+aiosqlite:///{Path(tmp) / 'sim.db'}", config.overrides)
        clock = ManualClock(SIM_START)
        app = await build(settings, clock)
        inbox = _Inbox()
        app.relay.register(inbox)
        try:
            await app.bot.handle(Inbound(PLATFORM, PLATFORM, STAFF, "tags", display_name=STAFF))
            inbox.take()
            async with app.bot.uow_factory() as uow:
                staff = await uow.members.by_identity(PLATFORM, STAFF)
                assert staff is not None
                cid = staff.community
            sim = _Simulation(config, app, clock, inbox, cid)
            await sim.run()
            return await sim.report()
        finally:
            await app.close()


# -- charts ------------------------------------------------------------------------------


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
        fig.suptitle(
            f"sif-bot simulation: {config.members} members, {config.weeks} weeks, "
            f"seed {config.seed}",
            fontsize="large",
        )
        path = out / name
        fig.savefig(path, dpi=100)
        written.append(path)
    return written


def _labels(reports: Sequence[SimReport]) -> list[tuple[str, SimReport]]:
    if len(reports) == 1:
        return [(reports[0].config.label, reports[0])]
    return [(f"{chr(65 + i)}: {r.config.label}", r) for i, r in enumerate(reports)]


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
            label=f"{label} ({_pct(report.within_48h)} by 48 h)",
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
        ax.plot(xs, ys, color=_color(i), label=f"{label} (Gini {report.gini:.2f})")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_title("Review load across eligible peers (Lorenz curve)")
    ax.set_xlabel("eligible peers, least loaded first (%)")
    ax.set_ylabel("reviews delivered (cumulative %)")
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(alpha=0.3)


def _plot_load_histogram(ax: Axes, runs: Sequence[tuple[str, SimReport]]) -> None:
    most = max((max(r.load, default=0) for _, r in runs), default=0)
    width = 0.8 / len(runs)
    for i, (label, report) in enumerate(runs):
        counts = [sum(1 for x in report.load if x == k) for k in range(most + 1)]
        ax.bar(
            [k - 0.4 + width * (i + 0.5) for k in range(most + 1)],
            counts,
            width=width,
            color=_color(i),
            label=label,
        )
    ax.set_title("Reviews delivered per eligible peer")
    ax.set_xlabel("reviews delivered during the simulation")
    ax.set_ylabel("eligible peers")
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
            label=f"{label}: 10th-90th percentile",
        )
        ax.plot(weeks, line(0.5), color=_color(i), label=f"{label}: median")
        ax.plot(weeks, line(0.0), color=_color(i), linestyle=":", label=f"{label}: lowest")
        ax.plot(
            weeks,
            line(1.0),
            color=_color(i),
            linestyle="--",
            linewidth=1,
            label=f"{label}: highest",
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
            label=f"{label}: in circulation (SIF)",
        )
        ax.plot(
            weeks,
            [s.escrow / 100 for s in report.snapshots],
            color=_color(i),
            linestyle="--",
            label=f"{label}: held in escrow (SIF)",
        )
        ax.plot(
            weeks,
            [s.at_limit for s in report.snapshots],
            color=_color(i),
            linestyle=":",
            label=f"{label}: members at the credit limit",
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
            label=f"{label}: requests",
        )
        ax.barh(
            ys,
            [rows[t].requests - rows[t].within_48h for t in tags],
            height=height,
            color=_color(i),
            label=f"{label}: not accepted within 48 h",
        )
    ax.set_yticks(range(len(tags)), tags)
    ax.invert_yaxis()
    ax.set_title("Demand per expertise tag")
    ax.set_xlabel("requests needing the tag")
    ax.set_ylabel("tag")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(alpha=0.3, axis="x")


# -- command line --------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `sif-bot simulate`."""
    parser.add_argument("--members", type=int, default=500, help="community size (default 500)")
    parser.add_argument("--weeks", type=int, default=12, help="weeks to simulate (default 12)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a rule setting without the sif_ prefix, e.g. offer_ttl_hours=12 (repeatable)",
    )
    parser.add_argument(
        "--compare",
        nargs="+",
        default=None,
        metavar="KEY=VALUE",
        help="also run with these settings on top, same seed, and print the differences",
    )
    parser.add_argument("--out", type=Path, default=None, help="write PNG charts to DIR")


async def run(args: argparse.Namespace) -> int:
    """`sif-bot simulate`: print the report (or two and their differences); charts to --out."""
    from bot.settings import SettingsError

    try:
        if not 5 <= args.members <= 20_000:
            raise ValueError("--members must be between 5 and 20000")
        if not 1 <= args.weeks <= 104:
            raise ValueError("--weeks must be between 1 and 104")
        base = parse_overrides(args.overrides)
        configs = [SimConfig(args.members, args.weeks, args.seed, base, sys.stderr)]
        if args.compare is not None:
            merged = dict(base)
            merged.update(parse_overrides(args.compare))
            configs.append(
                SimConfig(args.members, args.weeks, args.seed, tuple(merged.items()), sys.stderr)
            )
        for config in configs:  # a bad value stops before minutes of simulation
            _settings("sqlite+aiosqlite:///:memory:", config.overrides)
    except (ValueError, SettingsError) as exc:
        print(f"sif-bot simulate: {exc}", file=sys.stderr)
        return 2
    reports = []
    for config in configs:
        print(f"simulate: running {config.label} ...", file=sys.stderr, flush=True)
        reports.append(await simulate(config))
    if len(reports) == 1:
        print(reports[0].text())
    else:
        for name, report in zip("AB", reports, strict=True):
            print(f"== {name} ==\n{report.text()}\n")
        print(compare_text(reports[0], reports[1]))
    if args.out is not None:
        for path in write_charts(reports, args.out):
            print(f"chart: {path}", file=sys.stderr)
    return 0
