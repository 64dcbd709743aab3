"""The simulation itself: synthetic members driving the real core on a manual clock.

:class:`_Simulation` keeps an event queue of member actions and sweeps, gives each action
to :meth:`bot.app.service.Bot.handle` as a line of console text, and lets each member react
to the bot's messages addressed to them (by topic, never by wording). :func:`simulate` runs
one on a fresh temporary database."""

from __future__ import annotations

import heapq
import math
import random
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from bot.app.jobs import OfferSweep, SweepResult, sweep_conversations, sweep_offers
from bot.domain.ids import CommunityId
from bot.entrypoints.simulate import measure
from bot.entrypoints.simulate.community import (
    ABANDON,
    FEEDBACK,
    KINDS,
    SIM_START,
    _community,
    _intake_script,
    _Member,
    _profile_script,
)
from bot.entrypoints.simulate.report import DaySnapshot, SimConfig, SimReport
from bot.entrypoints.simulate.rules import PLATFORM, STAFF, STAFF_CHANNEL, _settings
from bot.i18n import plural
from bot.messages import Delivery, Inbound, Outbound
from bot.ports import ManualClock

if TYPE_CHECKING:
    from bot.bootstrap import App

PATIENCE = timedelta(days=7)  # a requester cancels a request nobody took in this time
STAFF_ASSIGNS_PER_REQUEST = 2


def _number(message: Outbound) -> int:
    """The number of the request or idea a message is about ("R-7" → 7)."""
    assert message.subject is not None, message.topic
    return int(message.subject.split("-", 1)[1])


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


Action = Callable[[], Awaitable[None]]


class _Events:
    """The event queue: actions by moment, ties in the order planned. Nodes of a
    simulated network (``--nodes``) share one, as they share the clock."""

    def __init__(self) -> None:
        self.heap: list[tuple[datetime, int, Action]] = []
        self.seq = 0

    def token(self) -> int:
        self.seq += 1
        return self.seq

    def push(self, moment: datetime, action: Action) -> None:
        heapq.heappush(self.heap, (moment, self.token(), action))

    async def run(self, clock: ManualClock, end: datetime) -> None:
        """Do every action planned up to ``end`` in order, moving the clock to each."""
        while self.heap and self.heap[0][0] <= end:
            moment, _, action = heapq.heappop(self.heap)
            clock.advance_to(moment)
            await action()
        clock.advance_to(end)


# The topics of the bot's messages the synthetic members react to (never the wording).
GONE = frozenset({"offer.expired", "offer.taken", "offer.cancelled"})
OFFER_ENDED = frozenset({"declined", "taken"})  # answers that end the member's offer
OFFERS, CHATS = "offers", "conversations"  # the two sweeps


class _Simulation:
    def __init__(
        self,
        config: SimConfig,
        app: App,
        clock: ManualClock,
        inbox: _Inbox,
        cid: CommunityId,
        *,
        events: _Events | None = None,
        rng: random.Random | None = None,
        lacking: tuple[str, ...] = (),
        label: str = "",
    ) -> None:
        """One community on its own database. In a network (`bot.entrypoints.simulate.
        network`) the nodes share ``events`` and the clock, each draws its community from
        its own ``rng``, may have no peer holding the ``lacking`` tags, and reads every
        node's messages after each action (`nodes`), since an action on one node can
        make another's bot speak."""
        self.config = config
        self.app = app
        self.settings = app.settings
        self.clock = clock
        self.inbox = inbox
        self.cid = cid
        self.end = SIM_START + timedelta(weeks=config.weeks)
        self.rng = rng if rng is not None else random.Random(config.seed)
        self.members = _community(self.rng, config.members, self.settings.sif_tags, lacking)
        self.label = label
        self.nodes: list[_Simulation] = [self]
        self.by_name = {m.name: m for m in self.members}
        self.requests: dict[int, _Request] = {}
        self.events = events if events is not None else _Events()
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
        self.events.push(moment, action)

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

    def start(self) -> None:
        """Plan the first midnight, staff's first round and every member's joining."""
        self.at(SIM_START, self.midnight)
        self.at(SIM_START + timedelta(hours=10), self.staff_round)
        for member in self.members:
            self.at(self.awake(member, member.joins_at), partial(self.join, member))

    async def run(self) -> None:
        self.start()
        await self.events.run(self.clock, self.end)

    # -- talking to the bot -----------------------------------------------------------

    async def say_as(self, name: str, text: str, channel: str | None = None) -> None:
        inbound = Inbound(PLATFORM, PLATFORM, name, text, display_name=name, channel=channel)
        await self.app.bot.handle(inbound)
        self.read_messages()

    async def say(self, member: _Member, text: str) -> None:
        await self.say_as(member.name, text)

    def read_messages(self) -> None:
        """React to what the bots sent (this node's, and in a network every node's)."""
        for node in self.nodes:
            node.read_inbox()

    def read_inbox(self) -> None:
        """React to what this node's bot sent: each message goes to the member it was for."""
        for message in self.inbox.take():
            if message.topic == "error":
                self.bump("errors")
            if message.delivery is Delivery.CHANNEL:
                if message.topic == "escalated":
                    self.bump("escalations")
                    self.escalated[_number(message)] = None
                continue
            member = self.by_name.get(message.to)
            if member is not None:
                self.on_message(member, message)

    def on_message(self, member: _Member, message: Outbound) -> None:
        now = self.clock.now()
        topic = message.topic
        if topic == "offer":
            number = _number(message)
            request = self.requests.get(number)
            if request is not None:
                request.offered.append(member.name)
            self.open_offers[(number, member.name)] = _OfferDue(now + self.ttl / 2, now + self.ttl)
            self.due(now + self.ttl / 2, OFFERS)  # the reminder
            self.due(now + self.ttl, OFFERS)  # the expiry
            if member.answers:
                self.plan_answer(member, number, self.later(member, member.response_hours, 0.7))
        elif topic == "offer.reminder":
            number = _number(message)
            self.bump("reminders")
            if (offer := self.open_offers.get((number, member.name))) is not None:
                offer.reminder = None
            # A reminder gets half of those who had not answered yet to answer soon.
            if number in member.planned and member.rng.random() < 0.5:
                self.plan_answer(member, number, self.later(member, 1.0, 0.8))
        elif topic in GONE:
            number = _number(message)
            member.planned.pop(number, None)  # nothing left to answer
            self.open_offers.pop((number, member.name), None)
        elif topic in OFFER_ENDED:
            number = _number(message)
            self.open_offers.pop((number, member.name), None)
        elif topic == "accepted":
            number = _number(message)
            self.open_offers.pop((number, member.name), None)
            member.working += 1
            self.at(
                self.later(member, member.delivery_days * 24, 0.5),
                partial(self.deliver, member, number),
            )
        elif topic == "request.accepted":
            request = self.requests.get(_number(message))
            if request is not None:
                request.accepted = True
                if request.requester.waiting == request.number:
                    request.requester.waiting = None
        elif topic == "request.delivered":
            number = _number(message)
            release = now + timedelta(days=self.settings.sif_auto_release_days)
            self.releases[number] = release
            self.due(release, OFFERS)
            if member.rng.random() < member.thanks:
                self.at(self.later(member, 24, 0.8), partial(self.thank, member, number))
        elif topic == "request.paid-automatically":
            number = _number(message)
            self.releases.pop(number, None)
            request = self.requests.get(number)
            if request is not None:
                request.paid = True
        elif topic == "thanked":
            self.releases.pop(_number(message), None)
        elif topic in ("asked", "asked.escalated"):
            number = _number(message)
            tags = self.pending_tags.pop(member.name, ())
            self.requests[number] = _Request(number, member, tags, now)
            member.waiting = number
            self.at(now + PATIENCE, partial(self.give_up, member, number))
        elif topic == "credit-limit":
            self.bump("refused")
        elif topic == "idea.saved":
            member.idea = _number(message)
        elif topic == "intake.reminder":
            self.bump("intake reminders")
            if member.rng.random() < 0.6:  # the reminder brings most of them back
                self.at(self.later(member, 3, 0.8), partial(self.type_intake, member))
        elif topic == "intake.ended":
            self.bump("intakes expired")
            member.typed = 0
            if member.rng.random() < 0.5:  # half start again a few days later
                self.at(self.later(member, 72, 0.5), partial(self.type_intake, member))

    def plan_answer(self, member: _Member, number: int, moment: datetime) -> None:
        """Plan a member's answer to an offer, or bring a planned one forward."""
        current = member.planned.get(number)
        if current is not None and current[1] <= moment:
            return
        token = self.events.token()
        member.planned[number] = (token, moment)
        self.at(moment, partial(self.answer, member, number, token))

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
        """Peers opt in as real ones do: the profile conversation or `expertise add`."""
        if member.uses_profile:
            for answer in _profile_script(member):
                await self.say(member, answer)
        elif member.expertise:
            listed = " ".join(f"{t}:{lv}" for t, lv in member.expertise.items())
            await self.say(member, f"expertise add {listed}")
            if member.capacity != 2:
                await self.say(member, f"availability {member.capacity}")
            await self.stored_bio(member)
        if member.idea_tags:
            if member.uses_intake:
                member.script = _intake_script(member)
                await self.type_intake(member)
            else:
                await self.stored_idea(member)

    def idea_ready(self, member: _Member) -> None:
        """With an idea saved, the first request comes a day or two later."""
        self.at(self.later(member, 36, 0.8), partial(self.ask, member))

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

    async def stored_bio(self, member: _Member) -> None:
        """A peer who opted in with `expertise add` gets their bio stored as the profile
        conversation would (its other answers unchanged), to keep large runs quick."""
        async with self.app.bot.uow_factory() as uow:
            found = await uow.members.by_identity(PLATFORM, member.name)
            assert found is not None
            await uow.members.set_profile(
                found.id, languages=found.languages, bio=member.bio, profile=found.profile
            )
            await uow.commit()

    async def stored_idea(self, member: _Member) -> None:
        """The member says hello with a command, and their idea is stored as intake would."""
        await self.say(member, "tags")
        title = member.idea_answers["title"]
        async with self.app.bot.uow_factory() as uow:
            found = await uow.members.by_identity(PLATFORM, member.name)
            assert found is not None
            answers: dict[str, object] = {
                **member.idea_answers,
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
        if member.rng.random() < await self.accept_chance(member, number):
            await self.say(member, f"accept R-{number}")
        else:
            reason = member.rng.choice(("too busy this week", "not my field", "travelling", ""))
            await self.say(member, f"decline R-{number} {reason}".strip())

    async def accept_chance(self, member: _Member, number: int) -> float:
        """The chance that ``member`` accepts the offer of request ``number`` they answer:
        their own, whatever the request (a network's nodes make it depend on its tags)."""
        return member.accept

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
        """The day's balances; at the end of a week, a line of progress."""
        snap = await measure.snapshot(self)
        self.snapshots.append(snap)
        day = snap.day
        if day % 7 == 0 and day and self.config.progress is not None:
            print(
                f"simulate: {self.label}week {day // 7}/{self.config.weeks}: "
                f"{plural(self.counts.get('requests', 0), 'request')}, "
                f"{sum(1 for r in self.requests.values() if r.accepted)} accepted, "
                f"{plural(self.counts.get('escalations', 0), 'escalation')}",
                file=self.config.progress,
                flush=True,
            )


async def simulate(config: SimConfig) -> SimReport:
    """Run one simulation on a fresh temporary database and measure it."""
    from bot.bootstrap import build

    with tempfile.TemporaryDirectory(prefix="sif-simulate-") as tmp:
        settings = _settings(f"sqlite+aiosqlite:///{Path(tmp) / 'sim.db'}", config.overrides)
        clock = ManualClock(SIM_START)
        app = await build(settings, clock)
        try:
            inbox, cid = await _open(app)
            sim = _Simulation(config, app, clock, inbox, cid)
            await sim.run()
            return await measure.report(sim)
        finally:
            await app.close()


async def _open(app: App) -> tuple[_Inbox, CommunityId]:
    """Register the simulation's inbox and have staff say hello, which makes the
    community; its id and the inbox."""
    inbox = _Inbox()
    app.relay.register(inbox)
    await app.bot.handle(Inbound(PLATFORM, PLATFORM, STAFF, "tags", display_name=STAFF))
    inbox.take()
    async with app.bot.uow_factory() as uow:
        staff = await uow.members.by_identity(PLATFORM, STAFF)
        assert staff is not None
        return inbox, staff.community
