"""Where a member stands: `requests` (and `status` outside a conversation), `idea I-n` and
`profile show`. They only read; every open request or review is shown with its status
and the next step in words, with the command to type."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.app.context import Context, Handlers, UserError
from bot.app.offering import reviewer_answers
from bot.commands import IdeaShow, ProfileShow, RequestsList, StatusOverview
from bot.domain.ledger import format_sif
from bot.domain.records import HelpRequest, Idea, Offer, RequestStatus, Role
from bot.messages import Parts, join, plain, say
from conversations.answers import format_answer

handlers = Handlers()

CLOSED_SHOWN = 5  # closed requests `requests` still lists, newest first
FOR_GOOD = timedelta(days=3650)  # `pause` without days pauses for a century
FINISHED = (RequestStatus.CONFIRMED, RequestStatus.CLOSED, RequestStatus.CANCELLED)


def ago(then: datetime | None, now: datetime) -> str:
    """How long ago, in the words of a chat: just now, 5 min ago, 3 h ago, 2 days ago."""
    if then is None:
        return ""
    minutes = int((now - then).total_seconds() // 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    if minutes < 48 * 60:
        return f"{minutes // 60} h ago"
    days = minutes // (24 * 60)
    return f"{days} days ago"


def _paid_automatically(r: HelpRequest) -> bool:
    # A thanks leaves no note on a confirmed request; the automatic release writes one.
    return r.note is not None


def _stars(r: HelpRequest) -> str:
    return f" ({r.rating}/5)" if r.rating else ""


def state_of(r: HelpRequest, now: datetime) -> Parts:
    """Where a request stands, as anyone looking at its idea reads it."""
    peer = r.peer_name or "the peer"
    match r.status:
        case RequestStatus.OPEN:
            return plain(f"asked {ago(r.created_at, now)}, waiting for a peer to accept")
        case RequestStatus.ESCALATED:
            return plain(
                f"asked {ago(r.created_at, now)}; no peer could take it yet, staff are finding one"
            )
        case RequestStatus.ASSIGNED:
            return plain(f"accepted by {peer} {ago(r.accepted_at, now)}")
        case RequestStatus.DELIVERED:
            return plain(f"delivered by {peer} {ago(r.delivered_at, now)}")
        case RequestStatus.DISPUTED:
            return plain("disputed; staff are looking at it")
        case RequestStatus.CONFIRMED if _paid_automatically(r):
            return plain(f"reviewed by {peer}, paid automatically {ago(r.closed_at, now)}")
        case RequestStatus.CONFIRMED:
            return plain(f"reviewed by {peer}, thanked {ago(r.closed_at, now)}{_stars(r)}")
        case RequestStatus.CLOSED:
            return plain(f"dispute resolved by staff {ago(r.closed_at, now)}")
        case _:
            return plain(f"cancelled {ago(r.closed_at, now)}")


def _as_requester(r: HelpRequest, now: datetime) -> Parts:
    line = plain(f"• {r.ref} {r.kind} of I-{r.idea_number} · ") + state_of(r, now)
    peer = r.peer_name or "the peer"
    match r.status:
        case RequestStatus.OPEN | RequestStatus.ESCALATED:
            return line + say(" · `cancel {ref}` withdraws it", ref=r.ref)
        case RequestStatus.ASSIGNED:
            return line + plain(f" · waiting for {peer}'s review")
        case RequestStatus.DELIVERED:
            paid = (
                plain(f"; without either it is paid to {peer} on {r.auto_release_at:%Y-%m-%d}")
                if r.auto_release_at is not None
                else ()
            )
            return (
                line
                + say(" · next: `thanks {ref} [1-5]` or `dispute {ref} <reason>`", ref=r.ref)
                + paid
            )
        case _:
            return line


def _as_peer(r: HelpRequest, now: datetime) -> Parts:
    head = f"• {r.ref} {r.kind} for {r.requester_name}'s I-{r.idea_number} · "
    match r.status:
        case RequestStatus.ASSIGNED:
            return plain(f"{head}you accepted {ago(r.accepted_at, now)} · ") + say(
                "next: `done {ref} <hours> <feedback>`", ref=r.ref
            )
        case RequestStatus.DELIVERED:
            paid = (
                f"; paid to you on {r.auto_release_at:%Y-%m-%d} at the latest unless disputed"
                if r.auto_release_at is not None
                else ""
            )
            return plain(
                f"{head}you delivered {ago(r.delivered_at, now)} · "
                f"waiting for {r.requester_name}'s thanks{paid}"
            )
        case RequestStatus.DISPUTED:
            return plain(f"{head}{r.requester_name} disputed it · staff will contact you")
        case RequestStatus.CONFIRMED if _paid_automatically(r):
            return plain(
                f"{head}{format_sif(r.price)} paid to you automatically {ago(r.closed_at, now)}"
            )
        case RequestStatus.CONFIRMED:
            return plain(
                f"{head}thanked {ago(r.closed_at, now)}{_stars(r)}; "
                f"{format_sif(r.price)} paid to you"
            )
        case RequestStatus.CLOSED:
            return plain(f"{head}dispute resolved by staff {ago(r.closed_at, now)}")
        case _:
            return plain(f"{head}cancelled by {r.requester_name} {ago(r.closed_at, now)}")


def _offered(offer: Offer, r: HelpRequest) -> Parts:
    return plain(
        f"• {r.ref} {r.kind} for {r.requester_name}'s I-{r.idea_number} · offered to you "
        f"until {offer.expires_at:%Y-%m-%d %H:%M} UTC · "
    ) + say("next: `accept {ref}` or `decline {ref} [reason]`", ref=r.ref)


def _section(title: str, lines: list[Parts]) -> list[Parts]:
    return [plain(title), *lines] if lines else []


@handlers.on(RequestsList)
async def requests(ctx: Context, cmd: RequestsList | StatusOverview) -> None:
    me, now = ctx.caller.id, ctx.clock.now()
    mine = await ctx.uow.requests.of_member(me)  # newest first
    offered: list[Parts] = []
    for offer in await ctx.uow.requests.open_offers(me):
        request = await ctx.uow.requests.get(offer.request)
        if request is not None and request.status.is_open:
            offered.append(_offered(offer, request))
    if not mine and not offered:
        ctx.reply(
            say(
                "You have no requests or reviews yet. `request <I-n>` asks the network about "
                "your idea; `offers` lists reviews offered to you."
            ),
            topic="requests",
        )
        return
    asked = [_as_requester(r, now) for r in mine if r.requester == me and r.status not in FINISHED]
    doing = [_as_peer(r, now) for r in mine if r.requester != me and r.status not in FINISHED]
    closed = [r for r in mine if r.status in FINISHED]
    lines = [
        *_section("Your requests:", asked),
        *_section("Reviews you do:", doing),
        *_section("Offered to you:", offered),
    ]
    if not lines:
        lines.append(plain("You have nothing open."))
    if closed:
        lines.append(plain("Closed lately:"))
        lines += [
            _as_requester(r, now) if r.requester == me else _as_peer(r, now)
            for r in closed[:CLOSED_SHOWN]
        ]
        if len(closed) > CLOSED_SHOWN:
            lines.append(
                say(
                    "…and {more} closed before; `history` lists the payments.",
                    more=len(closed) - CLOSED_SHOWN,
                )
            )
    ctx.reply(join("\n", lines), topic="requests")


@handlers.on(StatusOverview)
async def status(ctx: Context, cmd: StatusOverview) -> None:
    """`status` outside a conversation (inside one the conversation answers it)."""
    await requests(ctx, cmd)


async def _may_see(ctx: Context, idea: Idea, its: list[HelpRequest]) -> bool:
    if idea.owner == ctx.caller.id or ctx.caller.role.allows(Role.STAFF):
        return True
    return any(r.peer == ctx.caller.id for r in its)


def _answers(ctx: Context, idea: Idea) -> list[Parts]:
    """The intake's answers under their question labels, in the flow's order; a reviewer
    sees what the offer's acceptance showed (no contact details), the owner and staff all."""
    everything = idea.owner == ctx.caller.id or ctx.caller.role.allows(Role.STAFF)
    flow = ctx.flows.get("intake")
    return [plain(line) for line in reviewer_answers(flow, idea, everything=everything)]


@handlers.on(IdeaShow)
async def idea(ctx: Context, cmd: IdeaShow) -> None:
    found = await ctx.idea(cmd.idea)
    its = await ctx.uow.requests.of_idea(found.id)
    if not await _may_see(ctx, found, its):
        raise UserError(
            say(
                "{ref} is not your idea and you are not reviewing it, so you cannot see it; "
                "`ideas` lists yours.",
                ref=found.ref,
            ),
            "forbidden",
            found.ref,
        )
    now = ctx.clock.now()
    lines = [
        plain(
            f"{found.ref} {found.title} · {found.status.value} · by {found.owner_name}, "
            f"submitted {found.created_at:%Y-%m-%d}"
        ),
        *_answers(ctx, found),
    ]
    own = found.owner == ctx.caller.id
    if its:
        lines.append(plain("Requests:"))
        lines += [plain(f"• {r.ref} {r.kind} · ") + state_of(r, now) for r in its]
        if own:
            lines.append(say("`requests` shows what to do next for each."))
    elif own:
        lines.append(
            say("No requests yet; `request {ref} review` asks the network.", ref=found.ref)
        )
    else:
        lines.append(plain("No requests yet."))
    ctx.reply(join("\n", lines), topic="idea", subject=found.ref)


def _profile_values(ctx: Context, expertise: dict[str, int]) -> dict[str, Any]:
    """The member's profile as the profile flow's answers (by question id)."""
    me = ctx.caller
    values: dict[str, Any] = {
        "expertise": expertise,
        "languages": list(me.languages),
        "capacity": me.capacity,
        "offers": me.profile.get("offers"),
        "bio": me.bio,
    }
    return {key: value for key, value in values.items() if value not in (None, "", [], {})}


@handlers.on(ProfileShow)
async def profile_show(ctx: Context, cmd: ProfileShow) -> None:
    me, now = ctx.caller, ctx.clock.now()
    expertise = {e.tag: e.level for e in await ctx.uow.members.expertise(me.id)}
    values = _profile_values(ctx, expertise)
    if set(values) <= {"capacity"}:
        ctx.reply(
            say(
                "You have no peer profile yet: `profile` sets one up (expertise, languages, "
                "how many reviews at once), or `expertise add <tag>` adds your expertise."
            ),
            topic="profile.show",
        )
        return
    accepted = sum(
        1
        for r in await ctx.uow.requests.of_member(me.id)
        if r.peer == me.id and r.status is RequestStatus.ASSIGNED
    )
    busy = accepted + len(await ctx.uow.requests.open_offers(me.id))
    lines = [plain("Your peer profile:")]
    flow = ctx.flows.get("profile")
    for q in flow.questions if flow is not None else ():
        if q.id in values:
            extra = f" ({busy} open now)" if q.id == "capacity" else ""
            shown = format_answer(q, values[q.id]).replace("\n", "\n    ")
            lines.append(plain(f"{q.label}: {shown}{extra}"))
    if me.paused_until is not None and me.paused_until - now > FOR_GOOD:
        lines.append(say("Paused: no review offers until you type `resume`."))
    elif me.paused_until is not None and me.paused_until > now:
        lines.append(
            say(
                "Paused until {until:%Y-%m-%d}: no review offers; `resume` turns them back on.",
                until=me.paused_until,
            )
        )
    elif me.capacity == 0:
        lines.append(say("Availability 0: no review offers; `availability 2` turns them on."))
    lines.append(
        say("`profile` changes it; `expertise add|remove` and `availability <n>` change one part.")
    )
    ctx.reply(join("\n", lines), topic="profile.show")
