"""Ranking of peers for a review request (bot.domain.routing): eligibility, order, explanations."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.ids import MemberId
from bot.domain.routing import (
    Activity,
    Candidate,
    Need,
    Peer,
    PeerIndex,
    PeerTable,
    Policy,
    rank,
    why_not_eligible,
)

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
REQUESTER = MemberId(100)


def peer(member: int, **fields: Any) -> Peer:
    values: dict[str, Any] = {
        "member": MemberId(member),
        "name": f"peer {member}",
        "expertise": {},
        "languages": frozenset(),
        "capacity": 2,
        "open_reviews": 0,
        "paused": False,
        "reviews_90d": 0,
        "last_offer_at": None,
        "given": 0,
        "received": 0,
    }
    values.update(fields)
    return Peer(**values)


def need(**fields: Any) -> Need:
    values: dict[str, Any] = {
        "requester": REQUESTER,
        "co_owners": frozenset(),
        "tags": (),
        "languages": frozenset(),
        "excluded": frozenset(),
    }
    values.update(fields)
    return Need(**values)


def members(candidates: Sequence[Candidate]) -> list[int]:
    return [c.member for c in candidates]


def ranked(peers: Sequence[Peer], a_need: Need, limit: int = 100) -> list[int]:
    return members(rank(peers, a_need, NOW, limit))


def assert_ineligible(peers: Sequence[Peer], a_need: Need, member: int, reason: str) -> None:
    index = PeerIndex(peers)
    assert index.why_not(MemberId(member), a_need) == reason
    assert member not in members(index.rank(a_need, NOW, len(peers) + 1))


# eligibility, one rule at a time (peer 1 is always an eligible control)


def test_an_eligible_peer_is_ranked_and_has_no_reason() -> None:
    index = PeerIndex([peer(1)])
    assert index.why_not(MemberId(1), need()) is None
    assert members(index.rank(need(), NOW, 3)) == [1]


def test_the_requester_is_not_offered_their_own_request() -> None:
    assert_ineligible([peer(1), peer(100)], need(), 100, "is the requester")


def test_a_co_owner_is_not_offered() -> None:
    a_need = need(co_owners=frozenset({MemberId(2)}))
    assert_ineligible([peer(1), peer(2)], a_need, 2, "is a co-owner of the idea")


def test_a_peer_already_offered_declined_or_expired_is_not_offered_again() -> None:
    a_need = need(excluded=frozenset({MemberId(2)}))
    assert_ineligible([peer(1), peer(2)], a_need, 2, "declined or already offered")


def test_a_paused_peer_is_not_offered() -> None:
    assert_ineligible([peer(1), peer(2, paused=True)], need(), 2, "paused")


def test_a_peer_at_capacity_is_not_offered() -> None:
    full = peer(2, capacity=2, open_reviews=2)
    assert_ineligible([peer(1), full], need(), 2, "at capacity (2 of 2 open)")
    over = peer(3, capacity=1, open_reviews=3)  # capacity lowered after accepting
    assert_ineligible([peer(1), over], need(), 3, "at capacity (3 of 1 open)")
    room = peer(4, capacity=2, open_reviews=1)
    assert ranked([room], need()) == [4]


def test_a_peer_with_capacity_zero_is_not_offered() -> None:
    assert_ineligible([peer(1), peer(2, capacity=0)], need(), 2, "takes no reviews (capacity 0)")


def test_a_peer_who_declared_a_conflict_with_the_requester_is_not_offered() -> None:
    conflicted = peer(2, conflicts=frozenset({REQUESTER}))
    assert_ineligible([peer(1), conflicted], need(), 2, "declared a conflict with the requester")
    # A conflict with someone else does not matter for this request.
    other = peer(3, conflicts=frozenset({MemberId(55)}))
    assert ranked([other], need()) == [3]


def test_a_peer_who_speaks_none_of_the_ideas_languages_is_not_offered() -> None:
    a_need = need(languages=frozenset({"dutch"}))
    french = peer(2, languages=frozenset({"french", "german"}))
    assert_ineligible([peer(1), french], a_need, 2, "speaks none of the idea's languages")


def test_a_member_outside_the_snapshot_has_a_reason_too() -> None:
    assert PeerIndex([peer(1)]).why_not(MemberId(9), need()) == "not a member of this snapshot"


def test_reasons_come_in_a_fixed_order() -> None:
    everything = peer(
        2, paused=True, capacity=0, conflicts=frozenset({REQUESTER}), languages=frozenset({"x"})
    )
    a_need = need(excluded=frozenset({MemberId(2)}), languages=frozenset({"y"}))
    assert PeerIndex([everything]).why_not(MemberId(2), a_need) == "declined or already offered"
    assert why_not_eligible(everything, need(languages=frozenset({"y"}))) == "paused"


# languages


def test_one_shared_language_is_enough() -> None:
    bilingual = peer(1, languages=frozenset({"dutch", "english"}))
    assert ranked([bilingual], need(languages=frozenset({"english", "french"}))) == [1]


def test_a_peer_with_unknown_languages_may_review_any_idea() -> None:
    unknown = peer(1, languages=frozenset())
    assert ranked([unknown], need(languages=frozenset({"dutch"}))) == [1]


def test_an_idea_with_unknown_languages_may_go_to_anyone() -> None:
    peers = [peer(1, languages=frozenset({"dutch"})), peer(2, languages=frozenset({"french"}))]
    assert ranked(peers, need(languages=frozenset())) == [1, 2]


def test_an_idea_language_nobody_lists_reaches_only_peers_with_unknown_languages() -> None:
    peers = [peer(1, languages=frozenset({"dutch"})), peer(2)]
    assert ranked(peers, need(languages=frozenset({"swahili"}))) == [2]


def test_more_than_64_distinct_languages_still_match() -> None:
    # The index keeps languages as 64-bit masks; past 64 it needs several words.
    peers = [peer(i, languages=frozenset({f"lang{i:03d}"})) for i in range(1, 80)]
    a_need = need(languages=frozenset({"lang070", "lang003"}))
    assert ranked(peers, a_need) == [3, 70]
    assert PeerIndex(peers).why_not(MemberId(71), a_need) == "speaks none of the idea's languages"


# order


def test_match_is_the_sum_of_levels_over_the_needed_tags() -> None:
    expert = peer(1, expertise={"business-model": 3, "finance": 2, "legal": 1})
    [candidate] = rank([expert], need(tags=("business-model", "finance")), NOW, 1)
    assert candidate.match == 5


def test_among_qualified_peers_fewer_reviews_come_first_whatever_the_level() -> None:
    busy_expert = peer(1, expertise={"finance": 3}, reviews_90d=4)
    idle_novice = peer(2, expertise={"finance": 1}, reviews_90d=1)
    candidates = rank([busy_expert, idle_novice], need(tags=("finance",)), NOW, 2)
    assert [(c.member, c.qualified, c.match) for c in candidates] == [(2, True, 1), (1, True, 3)]


def test_a_second_matching_tag_gives_no_advantage() -> None:
    both = peer(1, expertise={"finance": 3, "legal": 3}, reviews_90d=2)
    one = peer(2, expertise={"legal": 1}, reviews_90d=1)
    assert ranked([both, one], need(tags=("finance", "legal"))) == [2, 1]


def test_a_peer_without_matching_expertise_never_beats_a_qualified_one() -> None:
    busy_expert = peer(
        1,
        expertise={"finance": 1},
        reviews_90d=9,
        last_offer_at=NOW - timedelta(hours=1),
        given=9000,
    )
    idle_generalist = peer(2, expertise={"design": 3}, received=9000)
    idle_newcomer = peer(3)
    candidates = rank(
        [idle_generalist, idle_newcomer, busy_expert], need(tags=("finance",)), NOW, 3
    )
    assert [(c.member, c.qualified) for c in candidates] == [(1, True), (2, False), (3, False)]


def test_a_peer_without_a_needed_tag_is_offered_when_nobody_qualified_is_eligible() -> None:
    expert = peer(1, expertise={"finance": 2}, paused=True)
    generalist = peer(2, expertise={"design": 3})
    [candidate] = rank([expert, generalist], need(tags=("finance",)), NOW, 3)
    assert (candidate.member, candidate.qualified, candidate.match) == (2, False, 0)
    # ...and comes after everyone who qualifies.
    assert ranked([generalist, replace(expert, paused=False)], need(tags=("finance",))) == [1, 2]


def test_the_qualifying_level_is_a_policy() -> None:
    novice = peer(1, expertise={"finance": 1})
    expert = peer(2, expertise={"finance": 2}, reviews_90d=5)
    policy = Policy(qualifying_level=2)
    first, second = rank([novice, expert], need(tags=("finance",)), NOW, 2, policy)
    assert (first.member, first.qualified) == (2, True)
    assert (second.member, second.qualified) == (1, False)
    assert second.explanation.startswith("matches only finance:1 (level 2 wanted); ")
    assert ranked([novice, expert], need(tags=("finance",))) == [1, 2]


def test_fewer_reviews_in_the_window_first_at_equal_match() -> None:
    peers = [peer(1, reviews_90d=3), peer(2, reviews_90d=0), peer(3, reviews_90d=1)]
    assert ranked(peers, need()) == [2, 3, 1]


def test_longer_since_the_last_offer_first_and_never_offered_before_everyone() -> None:
    peers = [
        peer(1, last_offer_at=NOW - timedelta(days=1)),
        peer(2, last_offer_at=NOW - timedelta(days=5)),
        peer(3, last_offer_at=None),
        peer(4, last_offer_at=NOW - timedelta(minutes=5)),
    ]
    assert ranked(peers, need()) == [3, 2, 1, 4]


def test_who_was_asked_within_the_rest_days_waits_behind_rested_peers() -> None:
    recently_offered = peer(1, reviews_90d=0, last_offer_at=NOW - timedelta(days=1))
    rested = peer(2, reviews_90d=3, last_offer_at=NOW - timedelta(days=3))
    assert ranked([recently_offered, rested], need()) == [2, 1]
    # Rest 0: fairness alone decides.
    assert members(rank([recently_offered, rested], need(), NOW, 2, Policy(rest_days=0))) == [1, 2]


def test_the_default_rest_is_two_days() -> None:
    assert Policy().rest_days == 2
    rested = peer(1, reviews_90d=2, last_offer_at=NOW - timedelta(days=2))
    resting = peer(2, reviews_90d=0, last_offer_at=NOW - timedelta(days=2) + timedelta(seconds=1))
    assert ranked([resting, rested], need()) == [1, 2]


def test_among_rested_peers_reviews_count_before_the_last_offer() -> None:
    offered_recently = peer(1, reviews_90d=0, last_offer_at=NOW - timedelta(days=8))
    long_ago = peer(2, reviews_90d=1, last_offer_at=NOW - timedelta(days=60))
    never = peer(3, reviews_90d=2)
    assert ranked([long_ago, never, offered_recently], need()) == [1, 2, 3]


def test_among_peers_asked_within_the_rest_days_the_oldest_offer_comes_first() -> None:
    peers = [
        peer(1, reviews_90d=0, last_offer_at=NOW - timedelta(hours=2)),
        peer(2, reviews_90d=5, last_offer_at=NOW - timedelta(days=3)),
        peer(3, reviews_90d=1, last_offer_at=NOW - timedelta(hours=2)),
        peer(4, reviews_90d=0, last_offer_at=NOW - timedelta(hours=2)),
    ]
    # Equal last offers (one round of a fan-out): fewer reviews, then member id.
    assert ranked(peers, need()) == [2, 1, 4, 3]


def test_who_received_more_than_they_gave_is_asked_sooner() -> None:
    peers = [peer(1), peer(2, received=600, given=200), peer(3, received=300, given=100)]
    assert ranked(peers, need()) == [2, 3, 1]


def test_reciprocity_counts_only_after_fairness() -> None:
    owes_a_lot = peer(1, received=5000, reviews_90d=1)
    assert ranked([owes_a_lot, peer(2)], need()) == [2, 1]


def test_reciprocity_beyond_the_cap_counts_no_more() -> None:
    # Both are past the default cap of 10.00 SIF: they tie, and the member id decides.
    peers = [peer(5, received=5000), peer(4, received=1200), peer(3, received=900)]
    assert ranked(peers, need()) == [4, 5, 3]
    assert ranked(peers, need(), limit=3) == ranked(list(reversed(peers)), need(), limit=3)


def test_the_cap_is_a_policy() -> None:
    peers = [peer(2, received=300), peer(1, received=200)]
    assert members(rank(peers, need(), NOW, 5, Policy(reciprocity_cap=1000))) == [2, 1]
    assert members(rank(peers, need(), NOW, 5, Policy(reciprocity_cap=100))) == [1, 2]
    assert members(rank(peers, need(), NOW, 5, Policy(reciprocity_cap=0))) == [1, 2]


def test_who_gave_more_than_they_received_counts_as_balanced() -> None:
    peers = [peer(2, given=5000), peer(1), peer(3, received=100)]
    assert ranked(peers, need()) == [3, 1, 2]


def test_full_ties_are_broken_by_member_id() -> None:
    peers = [peer(9), peer(3), peer(7)]
    assert ranked(peers, need()) == [3, 7, 9]


# limit and determinism


def test_at_most_limit_candidates_best_first() -> None:
    peers = [peer(i, reviews_90d=i) for i in range(1, 11)]
    assert ranked(peers, need(), limit=3) == [1, 2, 3]
    assert ranked(peers, need(), limit=1) == [1]
    assert ranked(peers, need(), limit=0) == []
    assert ranked(peers, need(), limit=50) == list(range(1, 11))


def test_limit_spans_qualification_and_rest() -> None:
    recently = NOW - timedelta(days=1)
    peers = [
        peer(1, expertise={"a": 1}, last_offer_at=recently),
        peer(2, expertise={"a": 3}, reviews_90d=2),
        peer(3),
        peer(4, expertise={"a": 2}),
        peer(5, expertise={"a": 3}, last_offer_at=recently - timedelta(hours=1)),
        peer(6, last_offer_at=recently),
    ]
    assert ranked(peers, need(tags=("a",)), limit=3) == [4, 2, 5]
    assert ranked(peers, need(tags=("a",)), limit=6) == [4, 2, 5, 1, 3, 6]


def test_a_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        rank([peer(1)], need(), NOW, -1)


def test_the_order_does_not_depend_on_the_input_order_or_on_repetition() -> None:
    rng = random.Random(7)
    peers = [
        peer(
            i,
            expertise={"a": rng.randint(1, 3)} if rng.random() < 0.5 else {},
            reviews_90d=rng.randint(0, 2),
            last_offer_at=rng.choice([None, NOW - timedelta(days=1), NOW - timedelta(days=2)]),
            received=rng.choice([0, 500, 2000]),
        )
        for i in range(1, 60)
    ]
    a_need = need(tags=("a",))
    expected = ranked(peers, a_need, limit=20)
    for _ in range(5):
        rng.shuffle(peers)
        index = PeerIndex(peers)
        assert members(index.rank(a_need, NOW, 20)) == expected
        assert members(index.rank(a_need, NOW, 20)) == expected


def test_an_empty_snapshot_ranks_nobody() -> None:
    index = PeerIndex([])
    assert len(index) == 0
    assert index.rank(need(tags=("a",)), NOW, 3) == []
    assert index.why_not(MemberId(1), need()) == "not a member of this snapshot"


def test_the_convenience_function_equals_the_index() -> None:
    peers = [peer(1, expertise={"a": 2}), peer(2, reviews_90d=1), peer(3)]
    a_need = need(tags=("a",))
    index = PeerIndex(peers, Policy(reciprocity_cap=5))
    assert len(index) == 3
    assert rank(peers, a_need, NOW, 2, Policy(reciprocity_cap=5)) == index.rank(a_need, NOW, 2)


# tags


def test_with_no_tags_needed_everyone_matches_zero_and_fairness_decides() -> None:
    peers = [peer(1, expertise={"a": 3}, reviews_90d=2), peer(2, reviews_90d=1)]
    candidates = rank(peers, need(tags=()), NOW, 5)
    assert [(c.member, c.match) for c in candidates] == [(2, 0), (1, 0)]


def test_a_repeated_tag_counts_once() -> None:
    [candidate] = rank([peer(1, expertise={"a": 2})], need(tags=("a", "a")), NOW, 1)
    assert candidate.match == 2
    assert candidate.explanation.startswith("matches a:2;")


def test_rare_and_common_tags_qualify_the_same() -> None:
    # With many peers a rare tag is stored sparse and a common one dense; both qualify.
    peers = [peer(i, expertise={"common": 1 + i % 3}) for i in range(1, 200)]
    peers[10] = peer(11, expertise={"common": 1, "rare": 3})
    candidates = rank(peers, need(tags=("rare",)), NOW, 2)
    assert [(c.member, c.qualified, c.match) for c in candidates] == [(11, True, 3), (1, False, 0)]
    candidates = rank(peers, need(tags=("rare", "common")), NOW, 2)
    assert [(c.member, c.match) for c in candidates] == [(1, 2), (2, 3)]
    strict = Policy(qualifying_level=3)
    candidates = rank(peers, need(tags=("rare", "common")), NOW, 5, strict)
    assert [(c.member, c.match) for c in candidates] == [(2, 3), (5, 3), (8, 3), (11, 4), (14, 3)]
    assert members(rank(peers, need(tags=("rare",)), NOW, 2, strict)) == [11, 1]


# explanations


def test_the_explanation_names_tags_reviews_and_last_offer() -> None:
    expert = peer(
        1,
        expertise={"finance": 2, "business-model": 3, "legal": 1},
        reviews_90d=1,
        last_offer_at=NOW - timedelta(days=3, hours=2),
    )
    [candidate] = rank([expert], need(tags=("business-model", "finance", "design")), NOW, 1)
    assert candidate == Candidate(
        member=MemberId(1),
        name="peer 1",
        qualified=True,
        match=5,
        explanation=(
            "matches business-model:3, finance:2; 1 review in 90 days; last offer 3 days ago"
        ),
    )


@pytest.mark.parametrize(
    ("last_offer_at", "phrase"),
    [
        (None, "never offered"),
        (NOW - timedelta(seconds=20), "last offer just now"),
        (NOW + timedelta(seconds=5), "last offer just now"),
        (NOW - timedelta(minutes=1), "last offer 1 minute ago"),
        (NOW - timedelta(minutes=42), "last offer 42 minutes ago"),
        (NOW - timedelta(hours=5, minutes=59), "last offer 5 hours ago"),
        (NOW - timedelta(days=1), "last offer 1 day ago"),
        (NOW - timedelta(days=40), "last offer 40 days ago"),
    ],
)
def test_the_explanation_says_how_long_since_the_last_offer(
    last_offer_at: datetime | None, phrase: str
) -> None:
    [candidate] = rank([peer(1, last_offer_at=last_offer_at)], need(), NOW, 1)
    assert candidate.explanation == f"no expertise asked for; 0 reviews in 90 days; {phrase}"


def test_the_explanation_says_when_no_needed_tag_matched() -> None:
    [candidate] = rank([peer(1, reviews_90d=2)], need(tags=("legal", "design")), NOW, 1)
    assert candidate.explanation == (
        "matches none of legal, design; 2 reviews in 90 days; never offered"
    )


def test_the_explanation_names_the_policys_window() -> None:
    policy = Policy(fairness_window_days=30)
    [candidate] = rank([peer(1)], need(), NOW, 1, policy)
    assert "0 reviews in 30 days" in candidate.explanation


def test_reciprocity_is_mentioned_when_it_decided_the_order() -> None:
    owes = peer(2, received=600, given=200)
    [first, second] = rank([peer(1), owes], need(), NOW, 2)
    assert first.member == 2
    assert first.explanation.endswith("; received 4.00 SIF more than given")
    assert "received" not in second.explanation


def test_reciprocity_is_mentioned_even_when_the_peer_it_beat_is_past_the_limit() -> None:
    [first] = rank([peer(1), peer(2, received=2150)], need(), NOW, 1)
    assert first.explanation.endswith("; received 21.50 SIF more than given")


@pytest.mark.parametrize(
    ("owes_received", "others"),
    [
        pytest.param(900, [], id="alone"),
        pytest.param(900, [peer(1, reviews_90d=1)], id="fairness decided"),
        pytest.param(900, [peer(1, last_offer_at=NOW - timedelta(days=1))], id="last offer"),
        pytest.param(900, [peer(1, expertise={"a": 1})], id="other qualified"),
        pytest.param(900, [peer(1, last_offer_at=NOW - timedelta(days=9))], id="both rested"),
        pytest.param(900, [peer(1, paused=True)], id="other not eligible"),
        pytest.param(900, [peer(3, received=900)], id="equal balance, member id decided"),
        pytest.param(1500, [peer(3, received=5000)], id="both past the cap"),
    ],
)
def test_reciprocity_is_not_mentioned_when_it_did_not_matter(
    owes_received: int, others: list[Peer]
) -> None:
    candidates = rank([peer(2, received=owes_received), *others], need(tags=("a",)), NOW, 5)
    assert "received" not in candidates[members(candidates).index(2)].explanation


# validation


def test_a_member_may_appear_only_once() -> None:
    with pytest.raises(ValueError, match="once"):
        PeerIndex([peer(1), peer(1)])


def test_levels_must_be_1_to_3() -> None:
    with pytest.raises(ValueError, match=re.escape("member 2: level of 'a' must be 1..3, not 4")):
        PeerIndex([peer(1, expertise={"a": 1}), peer(2, expertise={"b": 2, "a": 4})])


def test_datetimes_must_be_timezone_aware() -> None:
    naive = datetime(2026, 3, 1, 12)
    with pytest.raises(ValueError, match="timezone-aware"):
        PeerIndex([peer(1, last_offer_at=naive)])
    with pytest.raises(ValueError, match="timezone-aware"):
        PeerIndex([peer(1)]).rank(need(), naive, 1)


def test_a_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        Policy(reciprocity_cap=-1)
    with pytest.raises(ValueError):
        Policy(fairness_window_days=0)
    with pytest.raises(ValueError, match="qualifying_level"):
        Policy(qualifying_level=0)
    with pytest.raises(ValueError, match="qualifying_level"):
        Policy(qualifying_level=4)
    with pytest.raises(ValueError, match="rest_days"):
        Policy(rest_days=-1)


# the index against a straightforward reference

MEMBER_IDS = st.integers(1, 14).map(MemberId)
TAGS = ("a", "b", "c")
LANGUAGES = ("en", "nl", "fr")
WHEN = (None, NOW - timedelta(hours=1), NOW - timedelta(days=2), NOW - timedelta(days=9))
AMOUNTS = (0, 300, 1000, 1500, 2500)


class Bits:
    """Reads small fields off one integer, lowest bits first."""

    def __init__(self, code: int) -> None:
        self.code = code

    def take(self, width: int) -> int:
        value = self.code & ((1 << width) - 1)
        self.code >>= width
        return value


def decode_peer(member: MemberId, code: int) -> Peer:
    """A peer from the bits of ``code``; zero bits give the plainest peer.

    Hypothesis draws one integer per peer instead of a dozen fields: generating and
    shrinking examples is then several times faster, and a shrunk code is a simple peer.
    """
    bits = Bits(code)
    expertise = {tag: level for tag in TAGS if (level := bits.take(2))}  # 0: lacks the tag
    if bits.take(3) == 7:  # one peer in 8 holds the rare tag, which the index keeps sparse
        expertise["rare"] = 1 + bits.take(2) % 3
    return Peer(
        member=member,
        name=f"peer {member}",
        expertise=expertise,
        languages=frozenset(lang for lang in LANGUAGES if bits.take(1)),
        capacity=bits.take(2),
        open_reviews=bits.take(2),
        paused=bits.take(3) == 7,
        reviews_90d=bits.take(2) % 3,
        last_offer_at=WHEN[bits.take(2)],
        given=AMOUNTS[bits.take(3) % len(AMOUNTS)],
        received=AMOUNTS[bits.take(3) % len(AMOUNTS)],
        conflicts=frozenset(MemberId(m) for _ in range(2) if 0 < (m := bits.take(4)) < 15),
    )


# Random bytes rather than st.integers: hypothesis favours small integers, which would
# leave the high fields (reciprocity, conflicts) at zero in most examples.
PEER_CODES = st.binary(min_size=5, max_size=5).map(lambda raw: int.from_bytes(raw, "little"))
peers_strategy = st.dictionaries(MEMBER_IDS, PEER_CODES, max_size=12).map(
    lambda codes: [decode_peer(member, code) for member, code in codes.items()]
)


needs_strategy = st.builds(
    Need,
    requester=MEMBER_IDS,
    co_owners=st.frozensets(MEMBER_IDS, max_size=2),
    tags=st.lists(st.sampled_from((*TAGS, "rare", "unknown")), max_size=4).map(tuple),
    languages=st.frozensets(st.sampled_from((*LANGUAGES, "de")), max_size=2),
    excluded=st.frozensets(MEMBER_IDS, max_size=3),
)


def reference_eligible(p: Peer, n: Need) -> bool:
    return (
        p.member != n.requester
        and p.member not in n.co_owners
        and p.member not in n.excluded
        and not p.paused
        and p.open_reviews < p.capacity
        and n.requester not in p.conflicts
        and (not p.languages or not n.languages or bool(p.languages & n.languages))
    )


def reference_match(p: Peer, n: Need) -> int:
    return sum(p.expertise.get(tag, 0) for tag in set(n.tags))


def reference_qualified(p: Peer, n: Need, policy: Policy) -> bool:
    return not n.tags or any(p.expertise.get(tag, 0) >= policy.qualifying_level for tag in n.tags)


def reference_owed(p: Peer, policy: Policy) -> int:
    return min(max(p.received - p.given, 0), policy.reciprocity_cap)


def reference_rank(peers: list[Peer], n: Need, policy: Policy) -> list[Peer]:
    never = datetime.min.replace(tzinfo=UTC)
    rested_since = NOW - timedelta(days=policy.rest_days)

    def key(p: Peer) -> tuple[bool, datetime, int, datetime, int, int]:
        last = never if p.last_offer_at is None else p.last_offer_at
        return (
            not reference_qualified(p, n, policy),
            max(last, rested_since),  # longer since the last offer, counted up to the rest
            p.reviews_90d,
            last,
            -reference_owed(p, policy),
            p.member,
        )

    return sorted((p for p in peers if reference_eligible(p, n)), key=key)


@settings(max_examples=400, deadline=None)
@given(
    peers=peers_strategy,
    a_need=needs_strategy,
    limit=st.integers(0, 14),
    cap=st.sampled_from((0, 500, 1000)),
    level=st.sampled_from((1, 2, 3)),
    rest_days=st.sampled_from((0, 1, 7)),
)
def test_the_index_ranks_like_a_plain_sort(
    peers: list[Peer], a_need: Need, limit: int, cap: int, level: int, rest_days: int
) -> None:
    policy = Policy(reciprocity_cap=cap, qualifying_level=level, rest_days=rest_days)
    index = PeerIndex(peers, policy)
    expected = reference_rank(peers, a_need, policy)
    got = index.rank(a_need, NOW, limit)

    assert members(got) == [p.member for p in expected[:limit]]
    assert [c.match for c in got] == [reference_match(p, a_need) for p in expected[:limit]]
    assert [c.qualified for c in got] == [
        reference_qualified(p, a_need, policy) for p in expected[:limit]
    ]
    for p in peers:
        assert (index.why_not(p.member, a_need) is None) == reference_eligible(p, a_need)
    # Reciprocity is mentioned exactly when it put the peer ahead of an eligible one that
    # was equal on qualification, rest and fairness.
    for candidate, p in zip(got, expected, strict=False):
        mattered = reference_owed(p, policy) > 0 and any(
            (reference_qualified(q, a_need, policy), q.reviews_90d, q.last_offer_at)
            == (reference_qualified(p, a_need, policy), p.reviews_90d, p.last_offer_at)
            and reference_owed(q, policy) < reference_owed(p, policy)
            for q in expected
        )
        assert ("more than given" in candidate.explanation) == mattered


# -- text affinity (SPEC §14) ------------------------------------------------------------


def test_affinity_breaks_ties_among_qualified_rested_peers_with_as_many_reviews() -> None:
    finance = {"finance": 2}
    week_ago = NOW - timedelta(days=7)
    peers = [
        peer(1, expertise=finance),  # never offered, no affinity
        peer(2, expertise=finance, last_offer_at=week_ago),  # offered before, close
        peer(3, expertise=finance, reviews_90d=1),  # one review more: still behind
        peer(4, expertise={"legal": 2}),  # not qualified: affinity does not lift it
        peer(5, expertise=finance, last_offer_at=NOW - timedelta(hours=1)),  # not rested
    ]
    wanted = need(tags=("finance",))
    plain = rank(peers, wanted, NOW, 5)
    assert members(plain) == [1, 2, 3, 5, 4]
    close = {MemberId(2): 0.4, MemberId(3): 0.9, MemberId(4): 0.9, MemberId(5): 0.9}
    close[MemberId(999)] = 1.0  # not a peer of this snapshot: ignored
    ranked = rank(peers, wanted, NOW, 5, affinity=close)
    assert members(ranked) == [2, 1, 3, 5, 4]
    assert [c.affinity for c in ranked] == [0.4, 0.0, 0.9, 0.9, 0.9]
    # the same order whatever the limit (the first rows of the best level only)
    assert members(rank(peers, wanted, NOW, 1, affinity=close)) == [2]
    assert members(rank(peers, wanted, NOW, 2, affinity=close)) == [2, 1]


def test_without_affinity_the_ranking_is_unchanged() -> None:
    rng = random.Random(7)
    peers = [
        peer(m, expertise={"finance": rng.randint(1, 3)}, reviews_90d=rng.randint(0, 3))
        for m in range(1, 60)
    ]
    wanted = need(tags=("finance",))
    assert rank(peers, wanted, NOW, 10) == rank(peers, wanted, NOW, 10, affinity={})


# the table kept from round to round (PeerTable) ranks as an index built afresh


def _facts(rng: random.Random, member: int) -> dict[str, Any]:
    tags = ("finance", "legal", "design", "impact", "rare")
    return {
        "name": f"peer {member}",
        "expertise": {
            t: rng.randint(1, 3) for t in rng.sample(tags, rng.randint(0, 3)) if t != "rare"
        }
        | ({"rare": 2} if rng.random() < 0.03 else {}),
        "languages": frozenset(rng.sample(["dutch", "english", "french"], rng.randint(0, 2))),
        "capacity": rng.randint(0, 3),
        "paused_until": NOW + timedelta(days=1) if rng.random() < 0.1 else None,
    }


def _activity(rng: random.Random, ids: Sequence[int]) -> Activity:
    some = rng.sample(list(ids), min(len(ids), 40))
    return Activity(
        open_reviews={m: rng.randint(0, 3) for m in some[:10]},
        reviews={m: rng.randint(0, 4) for m in some[5:25]},
        last_offer_at={m: NOW - timedelta(hours=rng.randint(0, 200)) for m in some[10:35]},
        given={m: rng.choice([0, 300, 900]) for m in some[:20]},
        received={m: rng.choice([0, 300, 1500]) for m in some[15:40]},
    )


def _fresh(facts: dict[int, dict[str, Any]], activity: Activity) -> list[Peer]:
    """The peers a routing round may offer to, as the store used to give them."""
    peers = []
    for member, f in facts.items():
        open_reviews = activity.open_reviews.get(member, 0)
        paused = f["paused_until"] is not None and f["paused_until"] > NOW
        if not f["expertise"] or paused or open_reviews >= f["capacity"]:
            continue
        peers.append(
            peer(
                member,
                name=f["name"],
                expertise=f["expertise"],
                languages=f["languages"],
                capacity=f["capacity"],
                open_reviews=open_reviews,
                reviews_90d=activity.reviews.get(member, 0),
                last_offer_at=activity.last_offer_at.get(member),
                given=activity.given.get(member, 0),
                received=activity.received.get(member, 0),
            )
        )
    return peers


@pytest.mark.parametrize("seed", range(8))
def test_a_table_changed_peer_by_peer_ranks_as_an_index_built_afresh(seed: int) -> None:
    rng = random.Random(seed)
    table = PeerTable()
    facts: dict[int, dict[str, Any]] = {}
    for member in range(1, 120):
        facts[member] = _facts(rng, member)
        table.put(MemberId(member), **facts[member])
    for step in range(40):
        # a few peers change, join or leave between rounds
        for _ in range(rng.randint(1, 30)):
            member = rng.randint(1, 160)
            if rng.random() < 0.2:
                facts.pop(member, None)
                table.drop(MemberId(member))
            else:
                facts[member] = _facts(rng, member)
                table.put(MemberId(member), **facts[member])
        activity = _activity(rng, list(facts) or [1])
        a_need = need(
            requester=MemberId(rng.randint(1, 160)),
            tags=tuple(rng.sample(["finance", "legal", "design", "rare"], rng.randint(0, 2))),
            languages=frozenset(rng.sample(["dutch", "english", "german"], rng.randint(0, 1))),
            excluded=frozenset(MemberId(rng.randint(1, 160)) for _ in range(3)),
        )
        affinity = {MemberId(m): rng.random() for m in rng.sample(range(1, 160), 20)}
        expected = PeerIndex(_fresh(facts, activity))
        got = table.index(activity, NOW)
        assert len(got) == len(expected), step
        for close in (None, affinity):
            assert got.rank(a_need, NOW, 5, close) == expected.rank(a_need, NOW, 5, close), step
        for member in rng.sample(range(1, 160), 5):
            assert got.why_not(MemberId(member), a_need) == expected.why_not(
                MemberId(member), a_need
            )


def test_a_table_refuses_a_level_out_of_range_and_drops_who_is_no_peer() -> None:
    table = PeerTable()
    with pytest.raises(ValueError, match=r"level of 'a' must be 1\.\.3, not 4"):
        table.put(MemberId(1), "a", {"a": 4}, frozenset(), 2, None)
    table.put(MemberId(1), "a", {"a": 2}, frozenset(), 2, None)
    table.put(MemberId(2), "b", {"a": 2}, frozenset(), 2, None)
    assert len(table) == 2
    table.put(MemberId(1), "a", {"a": 2}, frozenset(), 0, None)  # capacity 0: no peer
    table.put(MemberId(2), "b", {}, frozenset(), 2, None)  # no expertise: no peer
    assert len(table) == 0
    empty = Activity({}, {}, {}, {}, {})
    assert table.index(empty, NOW).rank(need(), NOW, 3) == []


def test_a_table_keeps_its_peers_through_many_drops() -> None:
    table = PeerTable()
    for member in range(1, 3001):
        table.put(MemberId(member), f"p{member}", {"a": 1}, frozenset(), 1, None)
    for member in range(1, 2900):  # more than half: the table closes its gaps
        table.drop(MemberId(member))
    empty = Activity({}, {}, {}, {}, {})
    assert members(table.index(empty, NOW).rank(need(), NOW, 200)) == list(range(2900, 3001))
