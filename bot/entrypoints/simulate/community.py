"""The synthetic community: who the members are, what they know and ask, and how they are drawn.

Everything here is data or pure drawing from a ``random.Random``: the archetypes and their
shares, the uneven supply and demand of expertise, the topics ideas are about and peers
work in, what members type (ideas and bios in their topic's words, feedback, the intake
answers), and :func:`_community`, which draws the members of one run.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Mapping, Sequence
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
# Topics: the field an idea is about and a peer works in, as the words they write (the
# intake's title, summary, need, impact and uncertainties; a peer's bio). A member has one
# topic, drawn uniformly and independently of their expertise tags: tags are skills
# (finance, legal, design) that apply in any field, so a finance expert is as likely to
# know food as care. An innovator who also reviews works in the field of their own idea.
# No phrase starts with a command's name (texts are typed as answers in conversations).
# fmt: off
TOPICS: dict[str, tuple[str, ...]] = {
    "repair and reuse": (
        "repair café", "repairs", "second-hand", "reuse", "refurbished laptops",
        "spare parts", "broken appliances", "electronics", "furniture", "upcycling",
        "textile waste", "sewing machines", "bicycle repair", "tool library", "landfill",
        "circular economy", "recycling", "zero waste", "soldering", "lending",
        "sharing economy", "deposit scheme", "packaging", "durable goods", "fixers",
        "e-waste", "clothes swap", "menders", "remanufacturing", "washing machines",
    ),
    "food and urban farming": (
        "urban farming", "allotments", "vegetable gardens", "compost", "seeds", "harvest",
        "food surplus", "community kitchen", "food bank", "rooftop greenhouse",
        "beekeeping", "honey", "orchards", "soil", "organic produce", "farmers market",
        "hydroponics", "cooking classes", "school meals", "fresh vegetables", "food waste",
        "fruit trees", "chickens", "mushrooms", "short supply chains", "local growers",
        "nutrition", "pantry", "herbs", "seasonal recipes",
    ),
    "elderly care": (
        "elderly", "seniors", "loneliness", "isolation", "care homes", "house calls",
        "family carers", "dementia", "befriending", "telephone circle", "pensioners",
        "wellbeing", "intergenerational", "grandparents", "nursing", "retirement",
        "frailty", "companionship", "memory cafés", "respite care", "walking groups",
        "caregivers", "hearing loss", "walkers", "volunteer visitors", "widowed",
        "social prescribing", "falls prevention", "meals on wheels",
    ),
    "energy and housing": (
        "solar panels", "insulation", "heat pumps", "energy poverty", "energy cooperative",
        "retrofit", "social housing", "tenants", "landlords", "heating bills",
        "draught proofing", "double glazing", "renewable energy", "wind turbines",
        "batteries", "energy coaching", "mould", "damp", "housing association",
        "cooperative housing", "rent", "renovation", "thermostats", "electricity",
        "smart meters", "low-carbon homes", "building permits", "district heating",
    ),
    "mobility": (
        "cycling", "bike lanes", "cargo bikes", "car sharing", "public transport",
        "bus routes", "school streets", "pedestrians", "commuting", "ride sharing",
        "electric scooters", "parking", "traffic safety", "rural transport",
        "wheelchair access", "carpooling", "mobility hub", "train stations", "timetables",
        "road safety", "delivery bikes", "walking routes", "congestion", "e-bikes",
        "bicycle parking", "shuttle vans", "travel training",
    ),
    "education and youth": (
        "youth", "teenagers", "pupils", "schools", "teachers", "tutoring",
        "homework club", "mentors", "dropouts", "apprenticeships", "coding club",
        "literacy", "after-school", "youth workers", "scholarships", "classrooms",
        "career guidance", "internships", "preschool", "playgrounds", "students",
        "reading", "mathematics", "vocational training", "summer camps", "exams",
        "school absence",
    ),
    "newcomers and inclusion": (
        "refugees", "newcomers", "asylum seekers", "conversation cafés", "integration",
        "interpreters", "residence permits", "job coaching", "translation",
        "cultural mediators", "discrimination", "welcome centres", "buddy system",
        "citizenship", "diversity", "inclusion", "minorities", "intercultural",
        "legal aid", "host families", "migrants", "paperwork", "work permits",
        "recognition of diplomas", "mother tongue", "shared meals",
    ),
}
# Words any idea or bio may hold, whatever its topic.
GROUPS = (
    "households", "residents", "families", "neighbours", "volunteers", "local shops",
    "small charities", "the municipality", "people on a small budget", "local businesses",
)
# fmt: on
PLACES = ("neighbourhood", "district", "village", "city", "town", "region")
TITLE_FORMS = (
    "{a} for {group}",
    "{a} and {b}",
    "{a} in every {place}",
    "{place} {a}",
    "{a} network",
)
SUMMARY_FORMS = (
    "A {place} initiative that brings {a}, {b} and {c} to {group}. Volunteers start with {d}.",
    "We connect {group} with {a} and {b}, and run {c} together with the {place}'s {d}.",
)
NEED_FORMS = (
    "{group} in our {place} lack {a} and {b}, and nobody links them to {c}.",
    "Too little {a} reaches {group}; {b} and {c} are expensive or far away.",
)
IMPACT_FORMS = (
    "More {a} and better {b} for {group}; we count {c} every month.",
    "Less {a}, more {b}; we measure {c} with {group} twice a year.",
)
UNCERTAINTY_FORMS = (
    "Whether {group} keep coming, and whether {a} can pay for itself.",
    "Whether the {place} will fund {a}, and how to find volunteers for {b}.",
)
BIO_FORMS = (
    "I have worked on {a} and {b} for {years} years, lately with {group} in a {place}. "
    "I know {c}, {d} and {e} well.",
    "Former coordinator of a {place} project on {a}; I now advise {group} on {b}, {c} and {d}.",
    "Volunteer and professional in {a} and {b} for {years} years. Ask me about {c}, {d} or {e}.",
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
    topic: str = ""  # the field of their idea and of their reviewing (TOPICS)
    bio: str = ""  # a peer's bio, in their topic's words ("" without expertise)
    # An innovator's idea in their topic's words: title, summary, need, impact, uncertainties.
    idea_answers: dict[str, str] = field(default_factory=dict)
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


def _community(
    rng: random.Random, size: int, tags: Sequence[str], lacking: Collection[str] = ()
) -> list[_Member]:
    """The members of one run; nobody holds the ``lacking`` tags (innovators still ask
    for them): a factory without those experts."""
    supply = {t: float(SUPPLY.get(t, 1)) for t in tags if t not in lacking}
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
        _write(member, random.Random(own.getrandbits(64)))
        members.append(member)
    return members


def _write(member: _Member, rng: random.Random) -> None:
    """Draw the member's topic and write what they say in its words: a peer's bio, an
    innovator's idea. ``rng`` is the member's own for texts, so the rest of their choices
    do not depend on how long the texts are."""
    member.topic = rng.choice(list(TOPICS))
    vocabulary = TOPICS[member.topic]
    if member.expertise:
        words = rng.sample(vocabulary, 5)
        member.bio = rng.choice(BIO_FORMS).format(
            a=words[0],
            b=words[1],
            c=words[2],
            d=words[3],
            e=words[4],
            group=rng.choice(GROUPS),
            place=rng.choice(PLACES),
            years=rng.randint(3, 25),
        )
    if not member.idea_tags:
        return
    words = rng.sample(vocabulary, 13)  # no word twice in one idea

    def fill(forms: Sequence[str], at: int) -> str:
        text = rng.choice(forms).format(
            a=words[at],
            b=words[at + 1],
            c=words[at + 2],
            d=words[at + 3],
            group=rng.choice(GROUPS),
            place=rng.choice(PLACES),
        )
        return text[0].upper() + text[1:]

    member.idea_answers = {
        "title": fill(TITLE_FORMS, 0),
        "summary": fill(SUMMARY_FORMS, 2),
        "need": fill(NEED_FORMS, 6),
        "impact": fill(IMPACT_FORMS, 9),
        # what they are unsure of is about the same things as the idea itself
        "uncertainties": fill(UNCERTAINTY_FORMS, rng.randint(0, 9)),
    }


def _intake_script(member: _Member) -> tuple[str, ...]:
    """What an innovator types in the intake conversation, prompt after prompt."""
    rng = member.rng
    answers = member.idea_answers
    return (
        "intake",
        answers["title"],
        answers["summary"],
        answers["need"],
        answers["impact"],
        rng.choice(("grants, services", "sales", "donations, grants", "don't know yet")),
        rng.choice(("5000 EUR", "10-20k euro", "don't know")),
        rng.choice(("idea", "prototype", "pilot")),
        answers["uncertainties"],
        rng.choice(("civil society", "civil society, government", "business")),
        ", ".join(member.idea_tags),
        "skip",
        "English",
        "confirm",
    )


def _profile_script(member: _Member) -> tuple[str, ...]:
    """What a peer types in the profile conversation: expertise, languages, capacity, skips
    what else they offer, types their bio and confirms."""
    listed = " ".join(f"{t}:{lv}" for t, lv in member.expertise.items())
    bio = member.bio or "skip"
    return ("profile", listed, "English", str(member.capacity), "skip", bio, "confirm")
