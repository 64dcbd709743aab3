"""The store contract for forgetting and retention (SPEC §13): the same tests on the
in-memory store, SQLite and PostgreSQL (the fixtures of tests/store/test_contract.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.domain import ledger
from bot.domain.ids import CommunityId
from bot.domain.records import OfferStatus, Role
from bot.messages import Actions, Button, Delivery, File, Outbound, Strong, Table, Text
from store.models import IntroductionRow, OutboxRow, RequestRow
from store.rows import as_outbound
from tests.store import test_contract
from tests.store.test_contract import LIMIT, NOW, AnyStore, MemoryStore, _setup

# The contract's fixtures: the in-memory store, SQLite and PostgreSQL.
db_url, store = test_contract.db_url, test_contract.store

LONG_AGO = NOW - timedelta(days=40)


async def _outbox(store: AnyStore) -> dict[int, tuple[str, Outbound]]:
    """Every outbox row as the table holds it: id -> (text column, message)."""
    if isinstance(store, MemoryStore):
        rows = store.uow.database.tables.outbox.items()
        return {i: (r.message.text, replace(r.message, outbox_id=i)) for i, r in rows}
    async with store.engine.connect() as conn:
        found = await conn.execute(select(OutboxRow.__table__).order_by(OutboxRow.id))
        return {r.id: (r.text, as_outbound(r)) for r in found}


async def _writings(store: AnyStore) -> dict[str, list[Any]]:
    """The request comments and introduction notes the table holds, in id order."""
    if isinstance(store, MemoryStore):
        t = store.uow.database.tables
        return {
            "comments": [r.comment for r in t.requests.values()],
            "intro notes": [i.note for i in t.introductions.values()],
        }
    async with store.engine.connect() as conn:
        comments = await conn.scalars(select(RequestRow.comment).order_by(RequestRow.id))
        notes = await conn.scalars(select(IntroductionRow.note).order_by(IntroductionRow.id))
        return {"comments": list(comments), "intro notes": list(notes)}


def dm(to: str, *parts: Any, subject: str | None = None, platform: str = "console") -> Outbound:
    return Outbound(platform, Delivery.DM, to, "test", tuple(parts), subject=subject)


async def test_expertise_of_community_is_expertise_of_each_member(store: AnyStore) -> None:
    cid, ann, bob = await _setup(store)
    async with store.uow() as uow:
        other = await uow.communities.get_or_create("slack:T9", "Other", [], NOW)
        eve = await uow.members.create(other.id, "eve", Role.MEMBER, "slack", "T9:U1", NOW)
        cy = await uow.members.create(cid, "cy", Role.MEMBER, "console", "cy", NOW)
        for member, tag, level in [(bob, "legal", 1), (bob, "finance", 3), (ann, "finance", 2)]:
            await uow.members.set_expertise(member, tag, level)
        await uow.members.set_expertise(eve.id, "finance", 3)
        await uow.commit()
    async with store.uow() as uow:
        found = await uow.members.expertise_of_community(cid)
        assert found == {m: await uow.members.expertise(m) for m in (ann, bob)}
        assert [e.tag for e in found[bob]] == ["finance", "legal"]  # tags in order
        assert cy.id not in found  # no expertise, no entry
        assert await uow.members.expertise_of_community(other.id) == {
            eve.id: await uow.members.expertise(eve.id)
        }
        assert await uow.members.expertise_of_community(CommunityId(999_999)) == {}


async def test_the_salt_of_a_community_is_set_once(store: AnyStore) -> None:
    cid, _, _ = await _setup(store)
    async with store.uow() as uow:
        other = await uow.communities.get_or_create("slack:T9", "Other", [], NOW)
        assert await uow.communities.salt(cid) is None
        assert await uow.communities.salt(cid, "first") == "first"
        assert await uow.communities.salt(cid, "second") == "first"
        await uow.commit()
    async with store.uow() as uow:
        assert await uow.communities.salt(cid) == "first"
        assert await uow.communities.salt(other.id) is None


async def test_forgotten_digests_are_remembered(store: AnyStore) -> None:
    async with store.uow() as uow:
        assert not await uow.members.was_forgotten("a" * 64)
        await uow.members.remember_forgotten(["a" * 64, "b" * 64, "a" * 64], NOW)
        await uow.members.remember_forgotten([], NOW)
        await uow.commit()
    async with store.uow() as uow:
        await uow.members.remember_forgotten(["b" * 64], NOW)  # kept already: no error
        assert await uow.members.was_forgotten("a" * 64)
        assert await uow.members.was_forgotten("b" * 64)
        assert not await uow.members.was_forgotten("c" * 64)
        await uow.commit()


async def test_erase_writings_blanks_what_the_member_wrote(store: AnyStore) -> None:
    cid, ann, bob = await _setup(store)
    async with store.uow() as uow:
        idea = await uow.ideas.create(cid, ann, "Idea", {}, NOW)
        bobs_idea = await uow.ideas.create(cid, bob, "Other", {}, NOW)
        asked = await uow.requests.create(cid, idea.id, ann, "review", 200, [], NOW)
        reviewed = await uow.requests.create(cid, bobs_idea.id, bob, "review", 200, [], NOW)
        declined = await uow.requests.create(cid, bobs_idea.id, bob, "advice", 100, [], NOW)
        for request, fields in [
            (asked, {"peer_id": bob, "feedback": "bob's", "comment": "thanks", "note": "why"}),
            (reviewed, {"peer_id": ann, "feedback": "ann's review", "comment": "bob's comment"}),
        ]:
            await uow.requests.transition(request.id, [request.status], request.status, **fields)
        until = NOW + timedelta(hours=12)
        offer = await uow.requests.add_offer(declined.id, ann, 1, "why", NOW, until, None)
        await uow.requests.answer_offer(offer.id, OfferStatus.DECLINED, NOW, "too busy, ann")
        await uow.introductions.add(cid, idea.id, ann, bob, "ann's note", NOW)
        await uow.introductions.add(cid, bobs_idea.id, bob, ann, "note about ann", NOW)
        cy = await uow.members.create(cid, "cy", Role.MEMBER, "console", "cy", NOW)
        await uow.introductions.add(cid, bobs_idea.id, bob, cy.id, "bob to cy", NOW)
        await uow.commit()
    async with store.uow() as uow:
        await uow.members.erase_writings(ann)
        await uow.commit()
    async with store.uow() as uow:
        mine = await uow.requests.get(asked.id)
        theirs = await uow.requests.get(reviewed.id)
        assert mine is not None and theirs is not None
        assert (mine.note, mine.feedback) == (None, "bob's")  # bob's feedback is bob's
        assert theirs.feedback is None  # what ann delivered
        offers = await uow.requests.offers(declined.id)
        assert [(o.status, o.reason) for o in offers] == [(OfferStatus.DECLINED, None)]
    assert await _writings(store) == {
        "comments": [None, "bob's comment", None],
        "intro notes": ["", "", "bob to cy"],
    }


async def test_redact_reasons_replaces_whole_words_in_one_community(store: AnyStore) -> None:
    cid, _, bob = await _setup(store)
    async with store.uow() as uow:
        other = await uow.communities.get_or_create("slack:T9", "Other", [], NOW)
        eve = await uow.members.create(other.id, "eve", Role.MEMBER, "slack", "T9:U1", NOW)
        for reason in ("welcome Ann!", "R-1 review by ann", "annual prize", "for ANN and bob"):
            await uow.ledger.post(cid, ledger.grant(bob, 100, reason, None), LIMIT, NOW)
        await uow.ledger.post(other.id, ledger.grant(eve.id, 100, "ann", None), LIMIT, NOW)
        await uow.commit()
    async with store.uow() as uow:
        replacements = {"ann": "former member 1", "a": "never (one letter)"}
        assert await uow.ledger.redact_reasons(cid, replacements) == 3
        await uow.commit()
    async with store.uow() as uow:
        reasons = [e["reason"] for e in await uow.ledger.entries(cid) if e["amount"] > 0]
        assert reasons == [
            "welcome former member 1!",
            "R-1 review by former member 1",
            "annual prize",
            "for former member 1 and bob",
        ]
        assert [e["reason"] for e in await uow.ledger.entries(other.id)] == ["ann", "ann"]
        assert await uow.ledger.check_invariants(cid) == []
        assert await uow.ledger.redact_reasons(cid, {"ann": "x"}) == 0  # nothing left


async def test_erase_person_erases_their_copies_and_still_sends_to_others(
    store: AnyStore,
) -> None:
    file = File("sif-mydata.json", b'{"name": "ann"}', "application/json")
    words = {"ann": "former member 1", "Repair café": "(removed on request)"}
    async with store.uow() as uow:
        add = uow.outbox.add
        sent_to_ann = await add(dm("ann", Text("Here is your data"), file, subject="I-1"), NOW)
        unsent_to_ann = await add(dm("ann", Text("A reminder")), NOW)
        on_slack = await add(dm("T1:U1", Text("hi"), platform="slack"), NOW)
        sent_naming = await add(dm("bob", Text("ann would like to introduce you")), NOW)
        aside_naming = await add(dm("cy", Strong("Repair café"), Text(" by ann")), NOW)
        unsent_naming = await add(
            dm(
                "bob",
                Text("Offer: Repair café by Ann. "),
                Table(("idea", "by"), (("Repair café", "ann"),)),
                Actions((Button("Thank ann", "thanks R-1"),)),
                file,
            ),
            NOW,
        )
        untouched = await add(dm("bob", Text("annabel and joanne say hi")), NOW)
        await uow.outbox.mark_all_sent(
            [(sent_to_ann, "ts1"), (sent_naming, None), (untouched, None)], NOW
        )
        await uow.outbox.set_aside([(aside_naming, "channel_not_found")], NOW)
        await uow.commit()
    before = await _outbox(store)
    async with store.uow() as uow:
        changed = await uow.outbox.erase_person([("console", "ann"), ("slack", "T9:U9")], words)
        assert changed == 5
        await uow.commit()
    after = await _outbox(store)
    assert unsent_to_ann not in after  # nothing waits for someone who is gone
    for erased, to in [(sent_to_ann, ""), (sent_naming, "bob"), (aside_naming, "cy")]:
        text, message = after[erased]
        assert (text, message.parts, message.to) == ("", (), to)
        assert message.topic == "test" and message.outbox_id == erased
    assert after[sent_to_ann][1].subject == "I-1"
    text, message = after[unsent_naming]  # still goes out, without the words
    assert text == message.text
    assert message.text.startswith("Offer: (removed on request) by former member 1. ")
    assert message.table == Table(("idea", "by"), (("(removed on request)", "former member 1"),))
    assert message.buttons == (Button("Thank former member 1", "thanks R-1"),)
    assert message.file == file
    assert after[untouched] == before[untouched]  # no whole word of theirs
    assert after[on_slack] == before[on_slack]
    async with store.uow() as uow:
        pending = await uow.outbox.pending(["console", "slack"], 10)
        assert [m.outbox_id for m in pending] == [on_slack, unsent_naming]


async def test_delivered_messages_lose_files_at_once_and_text_after_retention(
    store: AnyStore,
) -> None:
    file = File("export.csv", b"member,name\n1,ann\n")
    async with store.uow() as uow:
        old = await uow.outbox.add(dm("ann", Text("old "), file, subject="R-1"), LONG_AGO)
        recent = await uow.outbox.add(dm("ann", Text("recent"), file), NOW)
        unsent = await uow.outbox.add(dm("bob", Text("waiting"), file), LONG_AGO)
        aside = await uow.outbox.add(dm("cy", Text("refused")), LONG_AGO)
        await uow.outbox.mark_all_sent([(old, None)], LONG_AGO)
        await uow.outbox.mark_all_sent([(recent, None)], NOW)
        await uow.outbox.set_aside([(aside, "user_not_found")], LONG_AGO)
        await uow.commit()
    async with store.uow() as uow:
        assert await uow.outbox.drop_delivered_files() == 2
        assert await uow.outbox.drop_delivered_files() == 0
        await uow.commit()
    rows = await _outbox(store)
    assert rows[recent][1].parts == (Text("recent"),) and rows[recent][0] == "recent"
    assert rows[old][1].parts == (Text("old "),)
    assert rows[unsent][1].file == file  # it still has to go out
    async with store.uow() as uow:
        assert await uow.outbox.erase_delivered(NOW - timedelta(days=7)) == 2
        assert await uow.outbox.erase_delivered(NOW - timedelta(days=7)) == 0
        await uow.commit()
    rows = await _outbox(store)
    for erased in (old, aside):
        text, message = rows[erased]
        assert (text, message.parts, message.topic) == ("", (), "test")
    assert rows[old][1].subject == "R-1" and rows[old][1].to == "ann"
    assert rows[recent][0] == "recent" and rows[unsent][0] == "waiting"
    async with store.uow() as uow:
        assert [m.outbox_id for m in await uow.outbox.pending(["console"], 10)] == [unsent]


async def test_old_event_keys_and_expired_link_codes_are_pruned(store: AnyStore) -> None:
    _, ann, _ = await _setup(store)
    async with store.uow() as uow:
        assert await uow.events.first_time("old", LONG_AGO)
        assert await uow.events.first_time("new", NOW)
        await uow.links.create(ann, "OLDCODE", LONG_AGO, LONG_AGO + timedelta(hours=1))
        await uow.links.create(ann, "NEWCODE", NOW, NOW + timedelta(hours=1))
        await uow.commit()
    async with store.uow() as uow:
        cutoff = NOW - timedelta(days=30)
        assert await uow.events.prune(cutoff) == 1
        assert await uow.links.prune(cutoff) == 1
        assert await uow.events.prune(cutoff) == 0
        await uow.commit()
    async with store.uow() as uow:
        assert await uow.events.first_time("old", NOW)  # forgotten: new again
        assert not await uow.events.first_time("new", NOW)
        assert await uow.links.claim("OLDCODE", NOW) == ("unknown", None)
        assert await uow.links.claim("NEWCODE", NOW) == ("ok", ann)
