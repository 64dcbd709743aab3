"""Where a member stands: `requests` (and `status` outside a conversation), `idea I-n` and
`profile show`. They only read; every open request or review is shown with its status
and the next step in words, with the command to type."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.app.context import Context, Handlers, UserError
from bot.app.offering import kind_name, reviewer_answers, shown_date, shown_moment
from bot.app.similar import findable
from bot.commands import IdeaShow, ProfileShow, RequestsList, StatusOverview
from bot.domain.records import HelpRequest, Idea, IdeaStatus, Offer, RequestStatus, Role
from bot.i18n import N_, _, ngettext, number, sif
from bot.messages import Parts, join, plain, say
from conversations.answers import format_answer

handlers = Handlers()

CLOSED_SHOWN = 5  # closed requests `requests` still lists, newest first
FOR_GOOD = timedelta(days=3650)  # `pause` without days pauses for a century
FINISHED = (RequestStatus.CONFIRMED, RequestStatus.CLOSED, RequestStatus.CANCELLED)
# An idea's status as people read it (IdeaStatus keeps the English word).
IDEA_STATUS = {
    IdeaStatus.SUBMITTED: N_("submitted"),
    IdeaStatus.IN_REVIEW: N_("in review"),
    IdeaStatus.REVIEWED: N_("reviewed"),
}


def ago(then: datetime | None, now: datetime) -> str:
    """How long ago, in the words of a chat: just now, 5 min ago, 3 h ago, 2 days ago."""
    if then is None:
        return ""
    minutes = int((now - then).total_seconds() // 60)
    if minutes < 1:
        return _("just now")
    if minutes < 60:
        return _("{minutes} min ago").format(minutes=number(minutes))
    if minutes < 48 * 60:
        return _("{hours} h ago").format(hours=number(minutes // 60))
    days = minutes // (24 * 60)
    # never fewer than two days: the hours say it before
    return ngettext("{days} day ago", "{days} days ago", days).format(days=number(days))


def _paid_automatically(r: HelpRequest) -> bool:
    # A thanks leaves no note on a confirmed request; the automatic release writes one.
    return r.note is not None


def _stars(r: HelpRequest) -> str:
    # a rating reads the same in every language
    return f" ({r.rating}/5)" if r.rating else ""


def state_of(r: HelpRequest, now: datetime) -> Parts:
    """Where a request stands, as anyone looking at its idea reads it."""
    peer = r.peer_name or _("the peer")
    match r.status:
        case RequestStatus.OPEN:
            text = _("asked {ago}, waiting for a peer to accept").format(ago=ago(r.created_at, now))
        case RequestStatus.ESCALATED:
            text = _("asked {ago}; no peer could take it yet, staff are finding one").format(
                ago=ago(r.created_at, now)
            )
        case RequestStatus.ASSIGNED:
            text = _("accepted by {peer} {ago}").format(peer=peer, ago=ago(r.accepted_at, now))
        case RequestStatus.DELIVERED:
            text = _("delivered by {peer} {ago}").format(peer=peer, ago=ago(r.delivered_at, now))
        case RequestStatus.DISPUTED:
            text = _("disputed; staff are looking at it")
        case RequestStatus.CONFIRMED if _paid_automatically(r):
            text = _("reviewed by {peer}, paid automatically {ago}").format(
                peer=peer, ago=ago(r.closed_at, now)
            )
        case RequestStatus.CONFIRMED:
            text = _("reviewed by {peer}, thanked {ago}").format(
                peer=peer, ago=ago(r.closed_at, now)
            ) + _stars(r)
        case RequestStatus.CLOSED:
            text = _("dispute resolved by staff {ago}").format(ago=ago(r.closed_at, now))
        case _:
            text = _("cancelled {ago}").format(ago=ago(r.closed_at, now))
    return plain(text)


def _as_requester(r: HelpRequest, now: datetime) -> Parts:
    mine = _("{ref} {kind} of I-{idea}").format(
        ref=r.ref, kind=kind_name(r.kind), idea=r.idea_number
    )
    line = plain(f"• {mine} · ") + state_of(r, now)
    peer = r.peer_name or _("the peer")
    match r.status:
        case RequestStatus.OPEN | RequestStatus.ESCALATED:
            return line + plain(" · ") + say("`cancel {ref}` withdraws it", ref=r.ref)
        case RequestStatus.ASSIGNED:
            return line + plain(" · " + _("waiting for {peer}'s review").format(peer=peer))
        case RequestStatus.DELIVERED if r.auto_release_at is not None:
            return (
                line
                + plain(" · ")
                + say(
                    "next: `thanks {ref} [1-5]` or `dispute {ref} <reason>`; without either it "
                    "is paid to {peer} on {date}",
                    ref=r.ref,
                    peer=peer,
                    date=shown_date(r.auto_release_at),
                )
            )
        case RequestStatus.DELIVERED:
            return (
                line
                + plain(" · ")
                + say("next: `thanks {ref} [1-5]` or `dispute {ref} <reason>`", ref=r.ref)
            )
        case _:
            return line


def _theirs(r: HelpRequest) -> str:
    """A request someone else asked, as its peer reads it: "R-3 review for Ann's I-2"."""
    return _("{ref} {kind} for {requester}'s I-{idea}").format(
        ref=r.ref, kind=kind_name(r.kind), requester=r.requester_name, idea=r.idea_number
    )


def _as_peer(r: HelpRequest, now: datetime) -> Parts:
    head = f"• {_theirs(r)} · "
    match r.status:
        case RequestStatus.ASSIGNED:
            accepted = _("you accepted {ago}").format(ago=ago(r.accepted_at, now))
            return plain(f"{head}{accepted} · ") + say(
                "next: `done {ref} <hours> <feedback>`", ref=r.ref
            )
        case RequestStatus.DELIVERED:
            delivered = _("you delivered {ago}").format(ago=ago(r.delivered_at, now))
            if r.auto_release_at is not None:
                waiting = _(
                    "waiting for {requester}'s thanks; paid to you on {date} at the latest "
                    "unless disputed"
                ).format(requester=r.requester_name, date=shown_date(r.auto_release_at))
            else:
                waiting = _("waiting for {requester}'s thanks").format(requester=r.requester_name)
            return plain(f"{head}{delivered} · {waiting}")
        case RequestStatus.DISPUTED:
            disputed = _("{requester} disputed it").format(requester=r.requester_name)
            return plain(f"{head}{disputed} · " + _("staff will contact you"))
        case RequestStatus.CONFIRMED if _paid_automatically(r):
            text = _("{price} paid to you automatically {ago}").format(
                price=sif(r.price), ago=ago(r.closed_at, now)
            )
        case RequestStatus.CONFIRMED if r.rating:
            text = _("thanked {ago} ({rating}/5); {price} paid to you").format(
                ago=ago(r.closed_at, now), rating=r.rating, price=sif(r.price)
            )
        case RequestStatus.CONFIRMED:
            text = _("thanked {ago}; {price} paid to you").format(
                ago=ago(r.closed_at, now), price=sif(r.price)
            )
        case RequestStatus.CLOSED:
            text = _("dispute resolved by staff {ago}").format(ago=ago(r.closed_at, now))
        case _:
            text = _("cancelled by {requester} {ago}").format(
                requester=r.requester_name, ago=ago(r.closed_at, now)
            )
    return plain(head + text)


def _offered(offer: Offer, r: HelpRequest) -> Parts:
    until = _("offered to you until {until} UTC").format(until=shown_moment(offer.expires_at))
    return plain(f"• {_theirs(r)} · {until} · ") + say(
        "next: `accept {ref}` or `decline {ref} [reason]`", ref=r.ref
    )


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
        *_section(_("Your requests:"), asked),
        *_section(_("Reviews you do:"), doing),
        *_section(_("Offered to you:"), offered),
    ]
    if not lines:
        lines.append(plain(_("You have nothing open.")))
    if closed:
        lines.append(plain(_("Closed lately:")))
        lines += [
            _as_requester(r, now) if r.requester == me else _as_peer(r, now)
            for r in closed[:CLOSED_SHOWN]
        ]
        if len(closed) > CLOSED_SHOWN:
            lines.append(
                say(
                    "…and {more} closed before; `history` lists the payments.",
                    more=number(len(closed) - CLOSED_SHOWN),
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
    status = IDEA_STATUS.get(found.status)
    lines = [
        plain(
            _("{ref} {title} · {status} · by {owner}, submitted {date}").format(
                ref=found.ref,
                title=found.title,
                status=_(status) if status is not None else found.status.value,
                owner=found.owner_name,
                date=shown_date(found.created_at),
            )
        ),
        *_answers(ctx, found),
    ]
    own = found.owner == ctx.caller.id
    if its:
        lines.append(plain(_("Requests:")))
        lines += [plain(f"• {r.ref} {kind_name(r.kind)} · ") + state_of(r, now) for r in its]
        if own:
            lines.append(say("`requests` shows what to do next for each."))
    elif own:
        lines.append(
            say("No requests yet; `request {ref} review` asks the network.", ref=found.ref)
        )
    else:
        lines.append(plain(_("No requests yet.")))
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
    hidden = (
        ()
        if findable(me)
        else say("Your ideas are not shown to others as similar ideas; `similar show` shows them.")
    )
    if set(values) <= {"capacity"}:
        ctx.reply(
            say(
                "You have no peer profile yet: `profile` sets one up (expertise, languages, "
                "how many reviews at once), or `expertise add <tag>` adds your expertise."
            )
            + ((*plain("\n"), *hidden) if hidden else ()),
            topic="profile.show",
        )
        return
    accepted = sum(
        1
        for r in await ctx.uow.requests.of_member(me.id)
        if r.peer == me.id and r.status is RequestStatus.ASSIGNED
    )
    busy = accepted + len(await ctx.uow.requests.open_offers(me.id))
    lines = [plain(_("Your peer profile:"))]
    flow = ctx.flows.get("profile")
    for q in flow.questions if flow is not None else ():
        if q.id in values:
            shown = format_answer(q, values[q.id]).replace("\n", "\n    ")
            if q.id == "capacity":
                line = _("{label}: {shown} ({busy} open now)").format(
                    label=_(q.label), shown=shown, busy=number(busy)
                )
            else:
                line = _("{label}: {shown}").format(label=_(q.label), shown=shown)
            lines.append(plain(line))
    if me.paused_until is not None and me.paused_until - now > FOR_GOOD:
        lines.append(say("Paused: no review offers until you type `resume`."))
    elif me.paused_until is not None and me.paused_until > now:
        lines.append(
            say(
                "Paused until {until}: no review offers; `resume` turns them back on.",
                until=shown_date(me.paused_until),
            )
        )
    elif me.capacity == 0:
        lines.append(say("Availability 0: no review offers; `availability 2` turns them on."))
    if hidden:
        lines.append(hidden)
    lines.append(
        say("`profile` changes it; `expertise add|remove` and `availability <n>` change one part.")
    )
    ctx.reply(join("\n", lines), topic="profile.show")
