"""The synthetic community: who the members are, what they know and ask, and how they are drawn.

Everything here is data or pure drawing from a ``random.Random``: the archetypes and their
shares, the uneven supply and demand of expertise, what members type (titles, summary,
feedback, the intake answers), and :func:`_community`, which draws the members of one run.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

# A Monday, so simulated weeks start on Mondays.
SIM_START = datetime(2026, 1, 5, tzinfo=UTC)
INTAKE_SHARE = 0.1  # innovators who type the whole intake conversation
# Peers opt in as real ones do (SPEC §1): most with `expertise add`, this share through the
# `profile` conversation. Members without expertise (innovators, takers) never opt in, so
# they are never offered a review.
PROFILE_SHARE = 0.1
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
SUMMARY = "A service run with volunteers for households on a small budget."
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
    uses_profile: bool = False  # opts in through the profile conversation
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
    innovators = peers = 0
    for i, arch in enumerate(kinds):
        own = random.Random(rng.getrandbits(64))
        expertise = {t: _draw(own, LEVELS) for t in _pick(own, supply, own.randint(*arch.tags))}
        uses_intake = False
        if arch.has_idea:
            # Every tenth innovator types the whole intake; the others' ideas are stored
            # directly with the same answers, which keeps a 500-member run within minutes.
            uses_intake = innovators % round(1 / INTAKE_SHARE) == 0
            innovators += 1
        uses_profile = False
        if expertise:
            uses_profile = peers % round(1 / PROFILE_SHARE) == 0
            peers += 1
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
            uses_profile=uses_profile,
        )
        if arch.has_idea:
            member.idea_tags = _pick(own, demand, own.randint(1, 3))
        members.append(member)
    return members


def _intake_script(member: _Member) -> tuple[str, ...]:
    """What an innovator types in the intake conversation, prompt after prompt."""
    rng = member.rng
    return (
        "intake",
        rng.choice(TITLES),
        SUMMARY,
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


def _profile_script(member: _Member) -> tuple[str, ...]:
    """What a peer types in the profile conversation: expertise, languages, capacity, then
    skips the optional questions and confirms."""
    listed = " ".join(f"{t}:{lv}" for t, lv in member.expertise.items())
    return ("profile", listed, "English", str(member.capacity), "skip", "skip", "confirm")
