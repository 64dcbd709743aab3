"""Finding people and personal data: `find`, `intro`, `mydata`, `forget`."""

from __future__ import annotations

import heapq
import json
import secrets
from datetime import timedelta
from typing import Any

from bot.app.context import Context, Handlers, UserError
from bot.app.identity import mention_words
from bot.app.offering import offer_next
from bot.commands import Find, Forget, Intro, MyData
from bot.domain import ledger, privacy
from bot.domain.ids import CommunityId, MemberId
from bot.domain.records import OfferStatus, RequestStatus, Role
from bot.i18n import _, ngettext, number, sif
from bot.messages import Delivery, File, Outbound, say
from bot.ports import FindCandidate, UnitOfWork

FIND_LIMIT = 10


handlers = Handlers()


# Candidates are read in pages of this many: memory stays small however many match.
FIND_PAGE = 500


def _offers(profile: dict[str, Any]) -> str:
    """What a peer offers besides reviews, as `find` searches it (in English, whatever
    the language of the answer)."""
    offers = profile.get("offers")
    if isinstance(offers, dict):
        items = ", ".join(str(c) for c in offers.get("choices", []))
        note = str(offers.get("note") or "")
        return f"offers {items}" + (f" ({note})" if note else "") if items else ""
    return ""


def _offers_shown(profile: dict[str, Any]) -> str:
    """What a peer offers besides reviews, as the answer of `find` says it."""
    offers = profile.get("offers")
    if not isinstance(offers, dict):
        return ""
    items = ", ".join(_(str(c)) for c in offers.get("choices", []))
    if not items:
        return ""
    note = str(offers.get("note") or "")
    if note:
        return _("offers {items} ({note})").format(items=items, note=note)
    return _("offers {items}").format(items=items)


def _match(words: list[str], member: FindCandidate) -> tuple[int, str] | None:
    """The member's score for `words` and line in the answer, or None when nothing matches."""
    expertise = member.expertise
    offers = _offers(member.profile)
    haystack = " ".join([member.name, member.bio, offers, *expertise]).lower()
    score = sum(expertise.get(w, 0) * 10 + (w in haystack) for w in words)
    if not score:
        return None
    skills = ", ".join(f"{t}:{lv}" for t, lv in sorted(expertise.items())) or _("no tags")
    shown = _offers_shown(member.profile)
    extra = f"; {shown}" if shown else ""
    return score, f"{member.name} — {skills}{extra}"


async def search(
    uow: UnitOfWork, community: CommunityId, caller: MemberId, words: list[str], limit: int
) -> tuple[list[str], int]:
    """The lines of the `limit` best matches of `words` (highest score first, then oldest
    member), and how many members match in all.

    The store narrows the members down to those whose text may hold a word; the score
    is computed here, page by page, keeping only the best lines."""
    ids = await uow.find.search_ids(community, words, exclude=caller)
    best: list[tuple[int, int, str]] = []  # (-score, member id, line)
    found = 0
    for start in range(0, len(ids), FIND_PAGE):
        for member in await uow.find.find_candidates(ids[start : start + FIND_PAGE]):
            match = _match(words, member)
            if match is not None:
                found += 1
                best.append((-match[0], int(member.member), match[1]))
        best = heapq.nsmallest(limit, best)
    return [line for _, _, line in best], found


@handlers.on(Find)
async def find(ctx: Context, cmd: Find) -> None:
    words = [w.lower() for w in cmd.words.split() if w.strip()]
    lines, found = await search(ctx.uow, ctx.community.id, ctx.caller.id, words, FIND_LIMIT)
    if not found:
        raise UserError(
            say("Nobody matches '{words}'; try a tag from `tags`.", words=cmd.words[:40]),
            "no-match",
        )
    more = (
        "\n" + _("…and {count} more.").format(count=number(found - FIND_LIMIT))
        if found > FIND_LIMIT
        else ""
    )
    ctx.reply(
        say(
            "Members who match:\n{lines}{more}\n"
            "`intro @member I-n [note]` introduces one of them to your idea.",
            lines="\n".join(lines),
            more=more,
        ),
        topic="find",
    )


@handlers.on(Intro)
async def intro(ctx: Context, cmd: Intro) -> None:
    idea = await ctx.idea(cmd.idea)
    if idea.owner != ctx.caller.id and not ctx.caller.role.allows(Role.STAFF):
        raise UserError(
            _("{idea} is not your idea; you can introduce people to your own.").format(
                idea=idea.ref
            ),
            subject=idea.ref,
        )
    other = await ctx.resolve(cmd.member)
    if other.id == ctx.caller.id:
        raise UserError(_("You cannot introduce yourself to yourself."), subject=idea.ref)
    if await ctx.uow.introductions.exists(idea.id, ctx.caller.id, other.id):
        raise UserError(
            _("You already introduced {name} to {idea}; one introduction is enough.").format(
                name=other.name, idea=idea.ref
            ),
            "already-introduced",
            subject=idea.ref,
        )
    per_day = ctx.settings.sif_rate_intros_per_day
    since = ctx.clock.now() - timedelta(days=1)
    if per_day and await ctx.uow.introductions.made_since(ctx.caller.id, since) >= per_day:
        raise UserError(
            ngettext(
                "You have made {count} introduction in the last 24 hours, the most a day; "
                "nothing was sent. Please try again tomorrow.",
                "You have made {count} introductions in the last 24 hours, the most a day; "
                "nothing was sent. Please try again tomorrow.",
                per_day,
            ).format(count=number(per_day)),
            "intro-limit",
            subject=idea.ref,
        )
    summary = str(idea.answers.get("summary", ""))[:400]
    caller, note = ctx.caller.name, cmd.note

    def to_them() -> str:
        adds = "\n" + _("{name} adds: {note}").format(name=caller, note=note) if note else ""
        return _(
            "{name} would like to introduce you to {idea} \u201c{title}\u201d by {owner}.\n"
            "{summary}{note}\nReply to them directly if you would like to talk; if not, you "
            "can simply let it be."
        ).format(
            name=caller,
            idea=idea.ref,
            title=idea.title,
            owner=idea.owner_name,
            summary=summary,
            note=adds,
        )

    ctx.notices.dm(other, to_them, topic="intro.received", subject=idea.ref)
    if idea.owner != ctx.caller.id and idea.owner != other.id:
        # Both sides are told (`help intro`): when staff introduce, the owner is the other side.

        def to_owner() -> str:
            if note:
                text = _(
                    "{name} introduced {other} to your idea {idea} \u201c{title}\u201d "
                    "({name} adds: {note}). {other} has its summary and may get in touch "
                    "with you."
                )
            else:
                text = _(
                    "{name} introduced {other} to your idea {idea} \u201c{title}\u201d. "
                    "{other} has its summary and may get in touch with you."
                )
            return text.format(
                name=caller, other=other.name, idea=idea.ref, title=idea.title, note=note
            )

        await ctx.notices.dm_id(idea.owner, to_owner, topic="intro.owner", subject=idea.ref)
    await ctx.uow.introductions.add(
        ctx.community.id, idea.id, ctx.caller.id, other.id, cmd.note, ctx.clock.now()
    )
    ctx.reply(
        _("Introduced {name} to {idea}; they have the idea's summary.").format(
            name=other.name, idea=idea.ref
        ),
        topic="intro",
        subject=idea.ref,
    )
    await ctx.tell_staff(
        lambda: _("Introduction: {name} introduced {other} to {idea}.").format(
            name=caller, other=other.name, idea=idea.ref
        ),
        topic="intro.made",
        subject=idea.ref,
    )


@handlers.on(MyData)
async def mydata(ctx: Context, cmd: MyData) -> None:
    uow, me = ctx.uow, ctx.caller
    info = await uow.ledger.balance_info(me)
    conversation = await uow.conversations.get(me.id)
    data: dict[str, Any] = {
        "member": {
            "name": me.name,
            "role": me.role.value,
            "identities": [f"{i.platform}:{i.external_id}" for i in me.identities],
            "languages": list(me.languages),
            "capacity": me.capacity,
            "bio": me.bio,
            "profile": me.profile,
            "expertise": {e.tag: e.level for e in await uow.members.expertise(me.id)},
        },
        "balance_sif": info.balance / 100,
        "held_sif": info.held / 100,
        "ideas": [
            {"idea": i.ref, "title": i.title, "status": i.status.value, "answers": i.answers}
            for i in await uow.ideas.of_owner(me.id)
        ],
        "requests": [
            {
                "request": r.ref,
                "kind": r.kind,
                "status": r.status.label,
                "role": "requester" if r.requester == me.id else "reviewer",
                "feedback": r.feedback,
            }
            for r in await uow.requests.of_member(me.id)
        ],
        "ledger": [
            {
                "at": line.at.isoformat(),
                "kind": line.kind.value,
                "amount_sif": line.amount / 100,
                "reason": line.reason,
            }
            for line in await uow.ledger.history(me.id, 10_000)
        ],
        "conversation": conversation.state if conversation else None,
    }
    content = json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")
    text = say(
        "Here is everything sif-bot stores about you. `forget` erases your profile and answers."
    )
    file = File("sif-mydata.json", content, "application/json")
    ctx.outbound.append(
        Outbound(ctx.inbound.platform, Delivery.DM, ctx.inbound.user, "mydata", (*text, file))
    )


@handlers.on(Forget)
async def forget(ctx: Context, cmd: Forget) -> None:
    """SPEC §13: settle first (no debt, nothing held, nothing open), give a positive
    balance to the network, then erase the person everywhere but the ledger's amounts."""
    uow, me = ctx.uow, ctx.caller
    busy = [
        r.ref
        for r in await uow.requests.of_member(me.id)
        if r.status in (RequestStatus.OPEN, RequestStatus.ESCALATED, RequestStatus.ASSIGNED,
                        RequestStatus.DELIVERED, RequestStatus.DISPUTED)
    ]  # fmt: skip
    if busy:
        raise UserError(
            say(
                "Finish or cancel {busy} first; then `forget` can erase your data.",
                busy=", ".join(busy),
            ),
            "still-busy",
        )
    info = await uow.ledger.balance_info(me)
    if info.held:
        raise UserError(
            say(
                "{held} of yours is still held in escrow; ask staff to settle it, "
                "then `forget` can erase your data.",
                held=sif(info.held),
            ),
            "still-held",
        )
    if info.balance < 0:
        raise UserError(
            say(
                "Your balance is {balance}: settle it before `forget`. Earn SIF by reviewing "
                "for others (`profile`, then `accept` the offers you get), or ask staff to "
                "settle it with `adjust`.",
                balance=sif(info.balance),
            ),
            "in-debt",
        )
    given = (
        say(" Your {balance} go to the network.", balance=sif(info.balance))
        if info.balance > 0
        else ()
    )
    if cmd.confirm is None:
        ctx.reply(
            say(
                "This erases your profile, expertise, ideas' answers, conversation, the texts "
                "you wrote and the messages sif-bot sent you, and your chat accounts. Your "
                "ledger entries stay, without your name, so the network's totals stay true."
            )
            + given
            + say(" Type `forget confirm` to go ahead."),
            topic="forget",
        )
        return
    now = ctx.clock.now()
    name = privacy.placeholder(me.id)
    if info.balance > 0:
        await ctx.post(
            ledger.adjust(
                me.id, -info.balance, "balance given to the network on leaving", me.id,
                key=f"forget:{me.id}",
            )
        )  # fmt: skip
    for offer in await uow.requests.open_offers(me.id):  # offers pass on to other peers
        await uow.requests.answer_offer(offer.id, OfferStatus.DECLINED, now)
        request = await uow.requests.get(offer.request)
        if request is not None and request.status.is_open:
            await offer_next(uow, ctx.notices, ctx.settings, request, now)
    # What names them, found before it is erased: their names, their ideas' titles.
    words = {me.name: name}
    words |= {w: name for i in me.identities for w in mention_words(i.platform, i.external_id)}
    words |= {idea.title: privacy.REMOVED for idea in await uow.ideas.of_owner(me.id)}
    salt = await uow.communities.salt(me.community, secrets.token_hex(16))
    assert salt is not None
    await uow.members.remember_forgotten(
        [privacy.identity_digest(salt, i.platform, i.external_id) for i in me.identities], now
    )
    await uow.members.forget(me.id, name)
    await uow.members.erase_writings(me.id)
    await uow.ledger.redact_reasons(me.community, words)
    await uow.outbox.erase_person([(i.platform, i.external_id) for i in me.identities], words)
    await uow.outbox.drop_delivered_files()
    ctx.reply(
        say("Done: your data is erased.")
        + (
            say(" Your {balance} went to the network.", balance=sif(info.balance))
            if info.balance > 0
            else ()
        )
        + say(" Thank you for being part of the network."),
        topic="forgotten",
    )
    await ctx.tell_staff(
        lambda: say(
            "A member asked to be forgotten: now {name}; {balance} went to the network.",
            name=name,
            balance=sif(info.balance),
        ),
        topic="member.forgotten",
    )
