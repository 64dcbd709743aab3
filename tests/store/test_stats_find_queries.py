"""The store's queries behind `stats` and `find`, on SQLite and PostgreSQL.

Each query is pinned on a small hand-made network, and both commands are compared, on a
random network, with the straightforward Python computations they replaced (every
request, offer, member and balance loaded and counted in Python): same data, same answer.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from bot.app.charts import ChartData
from bot.app.handlers import people
from bot.app.handlers.people import _offers, search
from bot.app.handlers.stats import (
    BUSIEST,
    StatsResult,
    _Buckets,
    _hours,
    compute_stats,
    window_start,
)
from bot.domain import ledger
from bot.domain.ids import CommunityId, MemberId
from bot.domain.ledger import NETWORK, EntryKind
from bot.domain.records import Member, OfferStatus, RequestStatus, Role
from bot.ports import UnitOfWork
from tests.conftest import Store

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LIMIT = -100_000
TAGS = ("finance", "legal", "design", "marketing", "governance")


# -- the computations that the queries replaced, kept here as the reference -----------------


async def reference_stats(
    uow: UnitOfWork, community_id: CommunityId, now: datetime, days: int
) -> StatsResult:
    """`stats` as it was computed before the store aggregated it."""
    since = window_start(now, days)
    requests = [r for r in await uow.requests.all(community_id) if r.created_at >= since]
    accepted = [r for r in requests if r.accepted_at is not None]
    delivered = [r for r in requests if r.delivered_at is not None]
    confirmed = [r for r in requests if r.status is RequestStatus.CONFIRMED]
    escalated = [r for r in requests if r.escalated_at is not None]
    answered = declined = 0
    asked: Counter[str] = Counter()
    for request in requests:
        for offer in await uow.requests.offers(request.id):
            asked[offer.peer_name] += 1
            if offer.status in (OfferStatus.ACCEPTED, OfferStatus.DECLINED):
                answered += 1
                declined += offer.status is OfferStatus.DECLINED
    accept_median, accept_p90 = _hours(
        [r.accepted_at - r.created_at for r in accepted if r.accepted_at]
    )
    deliver_median, deliver_p90 = _hours(
        [r.delivered_at - r.accepted_at for r in delivered if r.delivered_at and r.accepted_at]
    )
    rate = f"{(answered - declined) / answered:.0%}" if answered else "–"
    granted = -await uow.ledger.balance(community_id, NETWORK)
    balances = await uow.ledger.all_balances(community_id)
    circulation = sum(b.balance for b in balances if b.balance > 0)
    both = sum(1 for b in balances if b.given > 0 and b.received > 0)
    reviews = Counter(r.peer_name for r in delivered if r.peer_name)
    facts = await uow.routing.peer_facts(community_id, since)
    peers = [f for f in facts if f.expertise and f.capacity > 0]
    wanted: Counter[str] = Counter(tag for r in requests for tag in r.tags)
    offered_tags = {tag for f in peers for tag in f.expertise}
    moves = [
        (e["at"], EntryKind(e["kind"]), e["amount"])
        for e in await uow.ledger.entries(community_id, since=since)
        if e["amount"] > 0 and since <= e["at"] <= now
    ]
    released = [(at, amount) for at, kind, amount in moves if kind is EntryKind.RELEASE]
    held = [(at, amount) for at, kind, amount in moves if kind is EntryKind.HOLD]
    buckets = _Buckets(since, now, days)
    series = ChartData(
        community="",
        window="",
        days=buckets.days,
        released=buckets.tally(released),
        held=buckets.tally(held),
        opened=buckets.tally((r.created_at, 1) for r in requests),
        accepted=buckets.tally((r.accepted_at, 1) for r in accepted if r.accepted_at),
        delivered=buckets.tally((r.delivered_at, 1) for r in delivered if r.delivered_at),
        confirmed=buckets.tally(
            (r.closed_at or r.delivered_at or r.created_at, 1) for r in confirmed
        ),
    )
    return StatsResult(
        days=days,
        since=since,
        now=now,
        opened=len(requests),
        accepted=len(accepted),
        delivered=len(delivered),
        confirmed=len(confirmed),
        escalated=len(escalated),
        answered=answered,
        acceptance_rate=rate,
        accept_median=accept_median,
        accept_p90=accept_p90,
        deliver_median=deliver_median,
        deliver_p90=deliver_p90,
        circulation=circulation,
        released=sum(amount for _, amount in released),
        held=sum(amount for _, amount in held),
        share_both=f"{both / len(balances):.0%}" if balances else "–",
        busiest=", ".join(f"{name} ({n})" for name, n in reviews.most_common(BUSIEST))
        or "none yet",
        never_asked=tuple(sorted(f.name for f in peers if f.name not in asked)),
        top_tags=", ".join(f"{t} ({n})" for t, n in wanted.most_common(3)) or "none yet",
        gaps=tuple(sorted(tag for tag in wanted if tag not in offered_tags)),
        series=series,
        introductions=await uow.stats.count_introductions(community_id, since),
        granted=granted,
        escrow=await uow.ledger.balance(community_id, ledger.ESCROW),
        delivery_times=len(delivered),
    )


async def everyone(uow: UnitOfWork, community: CommunityId) -> list[tuple[Member, dict[str, int]]]:
    """Every member with their expertise, as `find` used to read them (one query each)."""
    return [
        (member, {e.tag: e.level for e in await uow.members.expertise(member.id)})
        for member in await uow.members.all(community)
    ]


def reference_find(
    members: list[tuple[Member, dict[str, int]]], caller: MemberId, words: list[str], limit: int
) -> tuple[list[str], int]:
    """`find` as it was computed before, over every member."""
    found: list[tuple[int, str]] = []
    for member, expertise in members:
        if member.id == caller or not member.identities:
            continue
        offers = _offers(member.profile)
        haystack = " ".join([member.name, member.bio, offers, *expertise]).lower()
        score = sum(expertise.get(w, 0) * 10 + (w in haystack) for w in words)
        if score:
            skills = ", ".join(f"{t}:{lv}" for t, lv in sorted(expertise.items())) or "no tags"
            extra = f"; {offers}" if offers else ""
            found.append((score, f"{member.name} — {skills}{extra}"))
    found.sort(key=lambda item: -item[0])
    return [line for _, line in found[:limit]], len(found)


# -- a small network by hand -----------------------------------------------------------------


async def _network(store: Store) -> dict[str, Any]:
    """ann asks; bob, cleo, dan and eve (twice: two members share the name) may review."""
    async with store.uow() as uow:
        community = await uow.communities.get_or_create("console", "Test", TAGS, NOW)
        cid = community.id
        ids: dict[str, MemberId] = {}
        for key, name in (
            ("ann", "ann"),
            ("bob", "Bob"),
            ("cleo", "cleo"),
            ("dan", "dan"),
            ("eve", "eve"),
            ("eve2", "eve"),
            ("zed", "Zed"),
        ):
            member = await uow.members.create(cid, name, Role.MEMBER, "console", key, NOW)
            ids[key] = member.id
        for key, tag, level in (
            ("bob", "finance", 3),
            ("bob", "legal", 1),
            ("cleo", "finance", 1),
            ("dan", "design", 2),
            ("eve", "legal", 2),
            ("eve2", "marketing", 1),
            ("zed", "governance", 3),  # capacity 0: takes no reviews
        ):
            await uow.members.set_expertise(ids[key], tag, level)
        await uow.members.set_capacity(ids["zed"], 0)
        await uow.ledger.post(cid, ledger.grant(ids["ann"], 1000, "welcome", None), LIMIT, NOW)
        idea = await uow.ideas.create(cid, ids["ann"], "Repair café", {}, NOW)
        await uow.commit()
    return {"cid": cid, "ids": ids, "idea": idea.id}


async def _request(
    uow: UnitOfWork, net: dict[str, Any], at: datetime, tags: list[str]
) -> tuple[Any, Any]:
    ids = net["ids"]
    request = await uow.requests.create(
        net["cid"], net["idea"], ids["ann"], "review", 200, tags, at
    )
    return request.id, request.number


async def test_window_offer_counts_busiest_and_never_offered(store: Store) -> None:
    net = await _network(store)
    cid, ids = net["cid"], net["ids"]
    since = NOW - timedelta(days=7)
    async with store.uow() as uow:
        old, _ = await _request(uow, net, since - timedelta(microseconds=1), ["finance"])
        first, _ = await _request(uow, net, since, ["legal", "finance"])  # on the boundary
        second, _ = await _request(uow, net, NOW - timedelta(days=1), ["design"])
        third, _ = await _request(uow, net, NOW, [])
        later = NOW + timedelta(hours=1)
        # the old request: delivered by dan, offered to cleo (outside the window)
        await uow.requests.transition(
            old, [RequestStatus.OPEN], RequestStatus.DELIVERED, peer_id=ids["dan"], delivered_at=NOW
        )
        await uow.requests.add_offer(old, ids["cleo"], 1, "x", since, later, None)
        # in the window: bob delivers the first and third, eve (the second) the second
        for request, peer, status in (
            (first, "bob", RequestStatus.CONFIRMED),
            (second, "eve2", RequestStatus.DELIVERED),
            (third, "bob", RequestStatus.DELIVERED),
        ):
            await uow.requests.transition(
                request,
                [RequestStatus.OPEN],
                status,
                peer_id=ids[peer],
                accepted_at=NOW,
                delivered_at=later,
                closed_at=later if status is RequestStatus.CONFIRMED else None,
            )
        for request, peer, answer in (
            (first, "bob", OfferStatus.ACCEPTED),
            (first, "cleo", OfferStatus.DECLINED),
            (second, "eve2", OfferStatus.ACCEPTED),
            (second, "dan", OfferStatus.EXPIRED),
            (third, "bob", None),
        ):
            offer = await uow.requests.add_offer(request, ids[peer], 1, "x", NOW, later, None)
            if answer is not None:
                await uow.requests.answer_offer(offer.id, answer, NOW)
        await uow.commit()
    async with store.uow() as uow:
        window = await uow.stats.window(cid, since)
        assert [r.number for r in window] == [2, 3, 4]
        assert window[0].tags == ("legal", "finance") and window[0].created_at == since
        assert window[0].status is RequestStatus.CONFIRMED and window[0].closed_at == later
        assert window[2].tags == () and window[2].escalated_at is None
        assert await uow.stats.window(cid, NOW + timedelta(seconds=1)) == []
        assert await uow.stats.offer_counts(cid, since) == {
            OfferStatus.ACCEPTED: 2,
            OfferStatus.DECLINED: 1,
            OfferStatus.EXPIRED: 1,
            OfferStatus.OFFERED: 1,
        }
        assert await uow.stats.busiest_peers(cid, since, 3) == [("Bob", 2), ("eve", 1)]
        assert await uow.stats.busiest_peers(cid, since, 1) == [("Bob", 2)]
        # dan's delivery is older than the window
        assert await uow.stats.busiest_peers(cid, NOW - timedelta(days=30), 3) == [
            ("Bob", 2),
            ("dan", 1),
            ("eve", 1),
        ]
        # names, not members: eve2 was offered one, so neither eve is "never asked";
        # zed takes no reviews and ann has no expertise
        assert await uow.stats.never_offered(cid, since) == []
        assert await uow.stats.never_offered(cid, NOW) == ["cleo", "dan", "eve", "eve"]
        assert sorted(await uow.stats.never_offered(cid, NOW + timedelta(days=1))) == [
            "Bob",
            "cleo",
            "dan",
            "eve",
            "eve",
        ]
        assert await uow.stats.reviewing_tags(cid) == {"finance", "legal", "design", "marketing"}


async def test_busiest_peers_break_ties_by_their_first_request(store: Store) -> None:
    net = await _network(store)
    cid, ids = net["cid"], net["ids"]
    async with store.uow() as uow:
        for peer in ("dan", "cleo", "Bob", "cleo", "dan", "eve"):
            request, _ = await _request(uow, net, NOW, ["finance"])
            key = {"Bob": "bob"}.get(peer, peer)
            await uow.requests.transition(
                request, [RequestStatus.OPEN], RequestStatus.DELIVERED,
                peer_id=ids[key], delivered_at=NOW,
            )  # fmt: skip
        await uow.commit()
    async with store.uow() as uow:
        assert await uow.stats.busiest_peers(cid, NOW, 3) == [
            ("dan", 2),
            ("cleo", 2),
            ("Bob", 1),
        ]


async def test_credits_and_sharing(store: Store) -> None:
    net = await _network(store)
    cid, ids = net["cid"], net["ids"]
    since, until = NOW - timedelta(days=7), NOW
    ann, bob, cleo = ids["ann"], ids["bob"], ids["cleo"]
    async with store.uow() as uow:
        for at, draft in (
            (since - timedelta(microseconds=1), ledger.hold(ann, 100, None, "too early")),
            (since, ledger.hold(ann, 200, None, "first")),
            (since, ledger.release(ann, bob, 150, None, "paid")),
            (NOW, ledger.transfer(ann, cleo, 50, "gift", ann)),
            (NOW, ledger.hold(ann, 10, None, "last")),
            (NOW + timedelta(microseconds=1), ledger.hold(ann, 5, None, "too late")),
        ):
            await uow.ledger.post(cid, draft, LIMIT, at)
        await uow.commit()
    async with store.uow() as uow:
        kinds = (EntryKind.RELEASE, EntryKind.HOLD)
        assert await uow.stats.credits(cid, kinds, since, until) == [
            (since, EntryKind.HOLD, 200),
            (since, EntryKind.RELEASE, 150),
            (NOW, EntryKind.HOLD, 10),
        ]
        assert await uow.stats.credits(cid, [EntryKind.TRANSFER], since, until) == [
            (NOW, EntryKind.TRANSFER, 50)
        ]
        # bob gave (was paid for a review), ann received one: nobody did both yet
        assert await uow.stats.sharing(cid) == (7, 0)
        await uow.ledger.post(cid, ledger.hold(bob, 100, None, "bob asks"), LIMIT, NOW)
        await uow.ledger.post(cid, ledger.release(bob, cleo, 100, None, "paid"), LIMIT, NOW)
        assert await uow.stats.sharing(cid) == (7, 1)  # bob
        await uow.ledger.post(cid, ledger.hold(cleo, 30, None, "cleo asks"), LIMIT, NOW)
        await uow.ledger.post(cid, ledger.release(cleo, ann, 30, None, "paid"), LIMIT, NOW)
        assert await uow.stats.sharing(cid) == (7, 3)
        other = await uow.communities.get_or_create("slack:T2", "Other", [], NOW)
        assert await uow.stats.sharing(other.id) == (0, 0)


async def test_find_searches_names_bios_tags_and_profiles(store: Store) -> None:
    net = await _network(store)
    cid, ids = net["cid"], net["ids"]
    async with store.uow() as uow:
        await uow.members.set_profile(
            ids["dan"],
            languages=[],
            bio="Kärcher veteran",
            profile={"offers": {"choices": ["funding"], "note": "Foundation X"}},
        )
        await uow.commit()
    async with store.engine.begin() as conn:  # zed has no chat account any more
        await conn.execute(text("DELETE FROM identities WHERE member_id = :m"), {"m": ids["zed"]})

    async def names(words: list[str]) -> list[str]:
        async with store.uow() as uow:
            found = await uow.find.search_ids(cid, words, exclude=ids["ann"])
            return [c.name for c in await uow.find.find_candidates(found)]

    assert await names(["finance"]) == ["Bob", "cleo"]
    assert await names(["fin"]) == ["Bob", "cleo"]
    assert await names(["foundation"]) == ["dan"]  # in the profile's note
    assert await names(["veteran", "marketing"]) == ["dan", "eve"]
    assert await names(["governance"]) == []  # zed cannot be reached
    assert await names(["ann"]) == []  # the caller is left out
    assert await names([]) == []
    assert await names(["100%"]) == []  # LIKE's wildcards are plain characters
    assert await names(["b_b"]) == []
    # A word SQL cannot judge exactly ("é", punctuation) rules nobody out.
    assert len(await names(["kärcher"])) == 5
    async with store.uow() as uow:
        assert await uow.find.search_ids(cid, ["design"], exclude=ids["ann"]) == [ids["dan"]]
        [dan] = await uow.find.find_candidates([ids["dan"]])
        assert await uow.find.find_candidates([]) == []
    assert dan.expertise == {"design": 2} and dan.bio == "Kärcher veteran"
    assert dan.profile == {"offers": {"choices": ["funding"], "note": "Foundation X"}}


async def test_find_candidates_see_letters_as_python_lowers_them(store: Store) -> None:
    """str.lower() turns the Kelvin sign into k and İ into i (and a combining dot)."""
    net = await _network(store)
    cid, ids = net["cid"], net["ids"]
    async with store.uow() as uow:
        for key, bio, note in (
            ("bob", "Ma\u212aer", ""),  # bio: "maker"
            ("cleo", "", "\u0130zmir"),  # profile (a \\u escape in JSON): "i̇zmir"
            ("dan", "MIXED Case", "PLAIN"),
        ):
            await uow.members.set_profile(
                ids[key],
                languages=[],
                bio=bio,
                profile={"offers": {"choices": ["funding"], "note": note}},
            )
        await uow.commit()

    async def names(*words: str) -> list[str]:
        async with store.uow() as uow:
            found = await uow.find.search_ids(cid, words, exclude=ids["ann"])
            return [c.name for c in await uow.find.find_candidates(found)]

    assert await names("maker") == ["Bob"]
    assert await names("ker") == ["Bob"]
    assert await names("izm") == ["cleo"]
    assert await names("mixed", "plain") == ["dan"]


# -- the same answers as before on a random network ------------------------------------------

NAMES = (
    "ann", "Bob", "cleo", "Dan Kelvin", "Eve", "eve", "İlker", "Café Owner", "Zoë",
    "Fin Ance", "o'Brien", "Mentor Ltd", "100% Legal", "a_b",
)  # fmt: skip
BIOS = (
    "", "Finance, legal (mostly) and design.", "Kärcher veteran; likes marketing",
    "Twenty years in governance", "Says \"hi\" a lot", "İstanbul based", "offers nothing",
)  # fmt: skip
NOTES = ("", "ask me", 'Foundation X, "quoted" (é)', "Kelvin \u212a", "100%", "(fin)")
WORDS = (
    "finance", "legal", "design", "fin", "offers", "mentoring", "mentoring,", "(ask",
    "me)", "k", "i", "ki", "é", "café", "kärcher", "%", "_", "a_b", "100%", "x,",
    "\"quoted\"", "\"hi\"", "eve", "o'brien", "ann", "zz", "i̇", "ö", "-", "governance",
)  # fmt: skip


async def _random_network(store: Store, seed: int) -> tuple[CommunityId, list[MemberId]]:
    rng = random.Random(seed)
    async with store.uow() as uow:
        community = await uow.communities.get_or_create("console", "Test", TAGS, NOW)
        cid = community.id
        members = []
        for i in range(24):
            name = rng.choice(NAMES)
            member = await uow.members.create(cid, name, Role.MEMBER, "console", f"m{i}", NOW)
            members.append(member.id)
            await uow.members.set_capacity(member.id, rng.choice((0, 1, 2)))
            for tag in rng.sample(TAGS, rng.randint(0, 3)):
                await uow.members.set_expertise(member.id, tag, rng.randint(1, 3))
            choices = rng.sample(("funding", "partnership", "mentoring"), rng.randint(0, 2))
            profile: dict[str, Any] = rng.choice(
                (
                    {},
                    {"offers": {"choices": choices, "note": rng.choice(NOTES)}},
                    {"offers": {"choices": choices, "note": None}},
                    {"org": "Kärcher"},
                )
            )
            await uow.members.set_profile(
                member.id, languages=["English"], bio=rng.choice(BIOS), profile=profile
            )
            await uow.ledger.post(cid, ledger.grant(member.id, 1000, "welcome", None), LIMIT, NOW)
        ideas = [
            (await uow.ideas.create(cid, owner, f"Idea {n}", {}, NOW)).id
            for n, owner in enumerate(members[:6])
        ]
        for _ in range(40):
            idea = rng.randrange(len(ideas))
            requester = members[idea]
            # seconds apart, some on the window's first instant
            at = NOW - timedelta(days=rng.choice((0, 1, 3, 7, 7, 20, 30, 45)))
            at -= timedelta(minutes=rng.randint(0, 600) * rng.randint(0, 1))
            tags = rng.sample(TAGS, rng.randint(0, 2))
            request = await uow.requests.create(
                cid, ideas[idea], requester, "review", 200, tags, at
            )
            peers = rng.sample([m for m in members if m != requester], rng.randint(0, 3))
            for peer in peers:
                offer = await uow.requests.add_offer(
                    request.id, peer, 1, "x", at, at + timedelta(days=1), None
                )
                answer = rng.choice((None, *OfferStatus))
                if answer not in (None, OfferStatus.OFFERED):
                    await uow.requests.answer_offer(offer.id, answer, at)
            stage = rng.choice(("open", "escalated", "assigned", "delivered", "confirmed"))
            if stage == "escalated":
                await uow.requests.transition(
                    request.id, [RequestStatus.OPEN], RequestStatus.ESCALATED, escalated_at=at
                )
            elif stage != "open" and peers:
                peer = peers[0]
                accepted = at + timedelta(minutes=rng.randint(1, 3000))
                delivered = accepted + timedelta(minutes=rng.randint(1, 9000))
                fields: dict[str, Any] = {"peer_id": peer, "accepted_at": accepted}
                status = RequestStatus.ASSIGNED
                await uow.ledger.post(
                    cid, ledger.hold(requester, 200, request.id, "held"), LIMIT, accepted
                )
                if stage in ("delivered", "confirmed"):
                    fields["delivered_at"] = delivered
                    status = RequestStatus.DELIVERED
                if stage == "confirmed":
                    status = RequestStatus.CONFIRMED
                    fields["closed_at"] = rng.choice((None, delivered + timedelta(hours=5)))
                    await uow.ledger.post(
                        cid,
                        ledger.release(requester, peer, 200, request.id, "paid"),
                        LIMIT,
                        delivered,
                    )
                await uow.requests.transition(request.id, [RequestStatus.OPEN], status, **fields)
        for _ in range(30):
            a, b = rng.sample(members, 2)
            at = NOW - timedelta(days=rng.randint(0, 60), minutes=rng.randint(0, 900))
            await uow.ledger.post(cid, ledger.transfer(a, b, rng.randint(1, 99), "t", a), LIMIT, at)
        for _ in range(3):
            owner, to = rng.sample(members, 2)
            await uow.introductions.add(cid, ideas[0], owner, to, "", NOW - timedelta(days=3))
        await uow.commit()
    async with store.engine.begin() as conn:  # a member without a chat account
        await conn.execute(text("DELETE FROM identities WHERE member_id = :m"), {"m": members[5]})
    return cid, members


@pytest.mark.parametrize("seed", [1, 2])
async def test_stats_equal_the_python_computation(store: Store, seed: int) -> None:
    cid, _ = await _random_network(store, seed)
    async with store.uow() as uow:
        for days in (1, 7, 30, 90):
            for now in (NOW, NOW - timedelta(days=2, hours=3)):
                new = await compute_stats(uow, cid, now, days)
                assert new == await reference_stats(uow, cid, now, days), (days, now)
        # the network is not trivial: the comparison means something
        result = await compute_stats(uow, cid, NOW, 30)
        assert result.opened > 10 and result.answered > 0 and result.delivered > 0
        assert result.busiest != "none yet" and result.released > 0


@pytest.mark.parametrize("seed", [1, 2])
async def test_find_equals_the_python_computation(
    store: Store, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(people, "FIND_PAGE", 4)  # several pages
    cid, members = await _random_network(store, seed)
    rng = random.Random(seed)
    queries = [[w] for w in WORDS] + [
        ["finance", "legal"],
        ["finance", "finance"],
        ["offers", "k"],
        ["é", "design"],
    ]
    async with store.uow() as uow:
        members_now = await everyone(uow, cid)
        # and pieces of the members' own text
        for member, expertise in members_now:
            haystack = " ".join([member.name, member.bio, _offers(member.profile), *expertise])
            words = haystack.lower().split()
            if words:
                word = rng.choice(words)
                start = rng.randrange(len(word))
                queries.append([word[start : start + rng.randint(1, 4)]])
        for words in queries:
            caller = rng.choice(members)
            for limit in (3, 10):
                expected = reference_find(members_now, caller, words, limit)
                assert await search(uow, cid, caller, words, limit) == expected, words
        lines, found = await search(uow, cid, members[0], ["finance"], 10)
        assert found > 3 and len(lines) == min(found, 10)


def test_hours_reads_durations_as_before() -> None:
    hours = [timedelta(hours=h) for h in (5, 1, 3)]
    assert _hours(hours) == (f"{statistics.median([1, 3, 5]):.1f} h", "5.0 h")
