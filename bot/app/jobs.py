"""Scheduled sweeps: plain functions over the store that the scheduler calls.

Each sweep claims what is due inside one transaction (PostgreSQL: FOR UPDATE SKIP
LOCKED), acts, records that it acted, and commits before anything is sent, so a
restart or a second process neither loses nor doubles an action.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.app import lifecycle, network
from bot.app.notices import Notices, language_of, platform_of
from bot.app.offering import describe, offer_next, shown_moment, what_next, with_offer_buttons
from bot.app.outbox import Relay
from bot.domain.ids import CommunityId, MemberId
from bot.domain.records import Community, Conversation, HelpRequest, OfferStatus
from bot.i18n import N_, _, plural, sif, speaking
from bot.messages import Delivery, Outbound, Parts, from_spans, plain, say
from bot.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bot.settings import Settings
from conversations.engine import Context as FlowContext
from conversations.engine import Flow, State, resume

BATCH = 200
# What a member's conversation is called in a sentence ("your intake is paused").
_FLOW_NAMES = {"intake": N_("intake"), "profile": N_("profile")}


def _flow_name(flow: str) -> str:
    return _(_FLOW_NAMES[flow]) if flow in _FLOW_NAMES else flow


@dataclass(frozen=True)
class SweepResult:
    reminded: int = 0
    expired: int = 0


async def sweep_conversations(
    uow_factory: UnitOfWorkFactory,
    settings: Settings,
    clock: Clock,
    flows: dict[str, Flow],
    relay: Relay | None = None,
) -> SweepResult:
    """Remind members silent for `SIF_CONVERSATION_REMINDER_DAYS` once; end conversations
    silent for `SIF_CONVERSATION_EXPIRY_DAYS`."""
    now = clock.now()
    expire_before = now - timedelta(days=settings.sif_conversation_expiry_days)
    remind_before = now - timedelta(days=settings.sif_conversation_reminder_days)
    reminded = expired = 0
    async with uow_factory() as uow:
        due = await uow.conversations.claim_due(expire_before, reminded=None, limit=BATCH)
        languages = await _languages(uow, settings, due)
        for conversation in due:
            await uow.conversations.delete(conversation.member)
            known = conversation.flow in flows
            name = conversation.flow if known else "conversation"
            with speaking(languages[conversation.member]):
                ended = say(
                    "Your unfinished {name} ended after {days} of silence. "
                    "Type `{command}` to start again whenever you like.",
                    name=_flow_name(name) if known else _("conversation"),
                    days=plural(settings.sif_conversation_expiry_days, "day", "days"),
                    command=conversation.flow if known else "help",
                )
            await uow.outbox.add(
                Outbound(
                    conversation.platform,
                    Delivery.DM,
                    conversation.external_id,
                    f"{name}.ended",
                    ended,
                ),
                now,
            )
            expired += 1
        due = await uow.conversations.claim_due(remind_before, reminded=False, limit=BATCH)
        languages = await _languages(uow, settings, due)
        for conversation in due:
            flow = flows.get(conversation.flow)
            tags = (
                tuple(await uow.communities.tags(conversation.community))
                if flow is not None and conversation.state.get("paused") is not True
                else ()
            )
            with speaking(languages[conversation.member]):
                topic, text = _reminder(conversation, flow, tags)
            await uow.outbox.add(
                Outbound(conversation.platform, Delivery.DM, conversation.external_id, topic, text),
                now,
            )
            await uow.conversations.mark_reminded(conversation.member, now)
            reminded += 1
        await uow.commit()
    if relay is not None and (reminded or expired):
        await relay.flush()
    return SweepResult(reminded, expired)


async def _languages(
    uow: UnitOfWork, settings: Settings, conversations: list[Conversation]
) -> dict[MemberId, str]:
    """The language each conversation's member reads (one lookup for all of them)."""
    members = await uow.members.get_many([c.member for c in conversations])
    return {c.member: language_of(members.get(c.member), settings) for c in conversations}


def _reminder(
    conversation: Conversation, flow: Flow | None, tags: tuple[str, ...]
) -> tuple[str, Parts]:
    """A silent conversation's reminder (topic and text), in the language being written in."""
    if flow is None:  # onboarding: a gentle nudge is enough
        return "welcome.reminder", plain(
            _("Still there? Type 1 to describe your idea, or 2 to offer your experience.")
        )
    if conversation.state.get("paused") is True:  # the member said `stop`
        return f"{flow.id}.reminder", say(
            "A reminder: your {name} is paused. Type `{flow}` to go on where you "
            "stopped, or `cancel` to stop it.",
            name=_flow_name(flow.id),
            flow=flow.id,
        )
    step = resume(flow, State.from_dict(conversation.state), FlowContext(tags=tags))
    return f"{flow.id}.reminder", say(
        "A reminder: your {name} is waiting for you. Reply to continue, "
        "or type `cancel` to stop.\n",
        name=_flow_name(flow.id),
    ) + from_spans(step.body)


@dataclass(frozen=True)
class OfferSweep:
    reminded: int = 0
    expired: int = 0
    released: int = 0


async def _community(uow: UnitOfWork, cache: dict[int, Community], community_id: int) -> Community:
    if community_id not in cache:
        found = await uow.communities.get(CommunityId(community_id))
        assert found is not None
        cache[community_id] = found
    return cache[community_id]


async def sweep_offers(
    uow_factory: UnitOfWorkFactory,
    settings: Settings,
    clock: Clock,
    relay: Relay | None = None,
) -> OfferSweep:
    """Remind peers at half the offer's time, expire unanswered offers (the request moves
    on to the next peer, or to staff), and pay out delivered reviews after
    `SIF_AUTO_RELEASE_DAYS` without thanks or dispute."""
    now = clock.now()
    reminded = expired = released = 0
    communities: dict[int, Community] = {}
    async with uow_factory() as uow:
        outbound: list[Outbound] = []

        async def notices_for(community_id: int) -> Notices:
            community = await _community(uow, communities, community_id)
            return Notices(uow, settings, community, platform_of(community.key), outbound)

        for offer in await uow.requests.claim_offers_to_remind(now, BATCH):
            request = await uow.requests.get(offer.request)
            await uow.requests.clear_reminder(offer.id)
            if request is None or not request.status.is_open:
                continue
            notices = await notices_for(request.community)
            await notices.dm_id(
                offer.peer,
                _offer_reminder(request, offer.expires_at),
                topic="offer.reminder",
                subject=request.ref,
            )
            reminded += 1
        for offer in await uow.requests.claim_expired_offers(now, BATCH):
            if not await uow.requests.answer_offer(offer.id, OfferStatus.EXPIRED, now, "no answer"):
                continue
            expired += 1
            request = await uow.requests.get(offer.request)
            if request is None or not request.status.is_open:
                continue
            notices = await notices_for(request.community)
            made = await offer_next(uow, notices, settings, request, now)
            after = await uow.requests.get(request.id)
            await notices.dm_id(
                offer.peer,
                _offer_expired(request, made, after),
                topic="offer.expired",
                subject=request.ref,
            )
        for request in await uow.requests.claim_auto_release(now, BATCH):
            notices = await notices_for(request.community)
            if request.peer is None or await network.is_hosted(notices, request):
                continue  # a request from the network is paid when its origin says so
            post = lifecycle.poster(uow, request.community, settings.credit_limit, now)
            reason = f"{request.ref} {request.kind}, paid automatically"
            if not await lifecycle.confirm(
                uow, post, request, now, reason, note="paid automatically"
            ):
                continue
            await network.confirmed_here(notices, request, None, "")
            await notices.dm_id(
                request.peer,
                _paid_to_peer(request),
                topic="request.paid",
                subject=request.ref,
            )
            await notices.dm_id(
                request.requester,
                _paid_for_requester(request, settings.sif_auto_release_days),
                topic="request.paid-automatically",
                subject=request.ref,
            )
            released += 1
        for message in outbound:
            await uow.outbox.add(message, now)
        await uow.commit()
    if relay is not None and outbound:
        await relay.flush()
    return OfferSweep(reminded, expired, released)


# What the offer sweep tells people, each written in its reader's language.


def _offer_reminder(request: HelpRequest, until: datetime) -> Callable[[], Parts]:
    return lambda: with_offer_buttons(
        say(
            "A reminder: {request} waits for your answer until "
            "{until} UTC. `accept {ref}` or `decline {ref}`.",
            request=describe(request),
            until=shown_moment(until),
            ref=request.ref,
        ),
        request,
    )


def _offer_expired(request: HelpRequest, made: int, after: HelpRequest | None) -> Callable[[], str]:
    return lambda: _("Your offer for {ref} expired; {what_next}").format(
        ref=request.ref, what_next=what_next(made, after)
    )


def _paid_to_peer(request: HelpRequest) -> Callable[[], str]:
    return lambda: _("{ref} was paid automatically: you received {price}.").format(
        ref=request.ref, price=sif(request.price)
    )


def _paid_for_requester(request: HelpRequest, days: float) -> Callable[[], str]:
    return lambda: _(
        "{ref} was paid to {peer} automatically after {days} without thanks or dispute."
    ).format(ref=request.ref, peer=request.peer_name, days=plural(days, "day", "days"))


@dataclass(frozen=True)
class Retention:
    erased: int = 0  # delivered messages whose text was erased
    files: int = 0  # delivered messages whose attached file was dropped
    events: int = 0  # processed-event keys pruned
    links: int = 0  # expired link codes pruned


# How long processed-event keys and expired link codes are kept (SPEC §13).
PRUNE_AFTER = timedelta(days=30)


async def keep_for_retention(
    uow_factory: UnitOfWorkFactory, settings: Settings, clock: Clock
) -> Retention:
    """SPEC §13: delivered messages keep their text `SIF_OUTBOX_RETENTION_DAYS` at most
    and their attached files not past the next run; processed-event keys and link codes
    expired 30 days ago are pruned. Rows only lose what they say: running twice, or in
    two processes, changes nothing more."""
    now = clock.now()
    async with uow_factory() as uow:
        files = await uow.outbox.drop_delivered_files()
        erased = await uow.outbox.erase_delivered(
            now - timedelta(days=settings.sif_outbox_retention_days)
        )
        events = await uow.events.prune(now - PRUNE_AFTER)
        links = await uow.links.prune(now - PRUNE_AFTER)
        await uow.commit()
    return Retention(erased, files, events, links)
