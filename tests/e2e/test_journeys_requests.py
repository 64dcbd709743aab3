"""Journeys around review requests, played as console scripts through the real `sif-bot`:
who is offered a review, duplicate requests, what the reviewer sees, hours and price, and
the staff steps that used to end nowhere (merge, assign, hints, introductions)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.console import lines_to, play

INTAKE = [
    "intake",
    "Repair cafe network",
    "Volunteer-run repair cafes in every neighbourhood.",
    "Too much waste and lonely neighbours.",
    "Fewer things thrown away; we count repairs every month.",
    "grants, donations - city grants",
    "5000 EUR",
    "prototype",
    "Whether volunteers stay longer than a few months.",
    "civil society, government",
    "finance, legal",
    "skip",
    "English",
    "confirm",
]


def ann_with_an_idea() -> list[str]:
    """ann types the whole intake: idea I-1, needing finance and legal."""
    return [f"ann: {line}" for line in INTAKE]


def offers_to(out: str, name: str) -> list[str]:
    return [line for line in lines_to(out, name) if "Can you help?" in line]


# -- finding 3: only peers are offered reviews ---------------------------------------------


def test_only_members_who_opted_in_as_peers_are_offered_a_review(tmp_path: Path) -> None:
    out = play(
        tmp_path,
        [
            *ann_with_an_idea(),  # an innovator without a profile
            "dan: hi",  # a newcomer still at the welcome menu
            "staff: tags",  # staff who did not opt in
            "hal: expertise add legal:2",
            "hal: availability 0",  # added expertise but takes no reviews
            "bob: expertise add finance:3",  # a peer by adding expertise
            "gil: profile",  # a peer by the profile conversation
            "gil: legal:3",
            "gil: English",
            "gil: 2",
            "gil: skip",
            "gil: Lawyer for cooperatives.",
            "gil: confirm",
            "ann: request I-1 review",
            "staff: expertise add finance:1",  # staff opt in the same way
            "ann: request I-1 advice",
        ],
    )
    for name in ("ann", "dan", "hal"):
        assert offers_to(out, name) == [], name
    assert [line[:35] for line in offers_to(out, "bob")] == [
        "[to bob] Can you help? R-1: review ",
        "[to bob] Can you help? R-2: advice ",
    ]
    assert len(offers_to(out, "gil")) == 2
    assert "Offered to 2 peers" in out
    assert [line[:30] for line in offers_to(out, "staff")] == ["[to staff] Can you help? R-2: "]


def test_with_no_peer_at_all_the_request_goes_to_staff(tmp_path: Path) -> None:
    out = play(tmp_path, [*ann_with_an_idea(), "dan: hi", "staff: tags", "ann: request I-1"])
    assert "Can you help?" not in out
    assert "[#staff] Escalation: R-1: review of I-1" in out
    assert "because no peer is eligible" in out
    assert any("staff have been asked to find one" in line for line in lines_to(out, "ann"))


# -- finding 4: one open request of a kind per idea ----------------------------------------


def test_a_second_open_request_of_the_same_kind_is_refused(tmp_path: Path) -> None:
    out = play(
        tmp_path,
        [
            *ann_with_an_idea(),
            "bob: expertise add finance:3",
            "ann: request I1 review",
            "ann: request i-1 review",
            "ann: request I-1",
            "ann: request I-1 advice",
            "ann: request I-1 advice legal",
            "ann: cancel R-1",
            "ann: request I-1 review",
        ],
    )
    ann = lines_to(out, "ann")
    asked = [line for line in ann if line.startswith("[to ann] Asked the network: ")]
    assert [line.split(":")[1].strip() for line in asked] == ["R-1", "R-2", "R-3"]
    assert "R-2: advice of I-1" in asked[1] and "R-3: review of I-1" in asked[2]
    refusal = (
        "[to ann] R-1 already asks for a review of I-1 (open); `cancel R-1` first if you "
        "want a new one."
    )
    assert ann.count(refusal) == 2
    assert (
        "[to ann] R-2 already asks for advice on I-1 (open); `cancel R-2` first if you "
        "want a new one."
    ) in ann
    assert "[to ann] Cancelled R-1; nothing was charged." in ann


# -- finding 5: the reviewer sees the idea -------------------------------------------------


def test_the_offer_shows_a_short_version_and_accepting_shows_every_answer(
    tmp_path: Path,
) -> None:
    out = play(
        tmp_path,
        [
            *ann_with_an_idea(),
            "bob: expertise add finance:3",
            "ann: request I-1 review",
            "bob: accept R-1",
        ],
    )
    offer = out.split("[to bob] Can you help? R-1")[1].split("[to ")[0]
    assert "Stage: prototype" in offer
    assert "Volunteer-run repair cafes in every neighbourhood." in offer
    accepted = out.split("[to bob] You accepted R-1")[1].split("[to ")[0]
    for answer in (
        "Summary: Volunteer-run repair cafes in every neighbourhood.",
        "Societal need: Too much waste and lonely neighbours.",
        "Intended impact: Fewer things thrown away; we count repairs every month.",
        "Income: grants, donations — city grants",
        "Development cost: 5,000 EUR",
        "Stage: prototype",
        "Biggest uncertainties: Whether volunteers stay longer than a few months.",
        "Partners: civil society, government",
        "Languages: English",
    ):
        assert answer in accepted, answer


# -- finding 7: hours are recorded, the price is fixed -------------------------------------


def test_hours_are_bounded_and_recorded_and_the_price_is_fixed_per_kind(tmp_path: Path) -> None:
    out = play(
        tmp_path,
        [
            "dan: hi",
            *ann_with_an_idea(),
            "bob: expertise add finance:3",
            "ann: request I-1 review",
            "bob: accept R-1",
            "bob: done R-1 0.001 quick look",
            "bob: done R-1 41 a whole week",
            "bob: done R-1 1.3 odd minutes",
            "bob: done R-1 8 a long look at the cost model",
            "ann: thanks R-1 5",
            "bob: balance",
            "bob: help done",
        ],
    )
    assert "one hour" not in out
    welcome = lines_to(out, "dan")[0]
    assert "a review costs 2 SIF, advice and feedback 1 SIF" in welcome
    ann, bob = lines_to(out, "ann"), lines_to(out, "bob")
    asked = next(line for line in ann if line.startswith("[to ann] Asked the network: R-1"))
    assert "A review costs 2.00 SIF, however long it takes" in asked
    assert "It pays 2.00 SIF, the fixed price of a review." in out.split("Can you help? R-1")[1]
    assert "It pays you 2.00 SIF, the fixed price of a review" in out.split("You accepted R-1")[1]
    refusals = [line for line in bob if "quarter hours" in line]
    assert len(refusals) == 3
    assert refusals[0] == (
        "[to bob] Hours are the time you spent, in quarter hours from 0.25 to 40 (like 1.5); "
        "they are recorded, and the price of the request stays as it is. "
        "Usage: `done <R-n> <hours> <feedback text>`."
    )
    delivered = next(line for line in bob if line.startswith("[to bob] Delivered R-1"))
    assert delivered.startswith("[to bob] Delivered R-1 (8 h recorded).")
    assert "2.00 SIF (the price of a review)" in delivered
    assert "[to bob] Your balance: 2.00 SIF" in bob
    assert "for the record" in out.split("[to bob] Your balance: 2.00 SIF")[1]


# -- finding 8: staff dead ends ------------------------------------------------------------


def test_staff_merge_two_members_of_one_person_after_confirming(tmp_path: Path) -> None:
    out = play(
        tmp_path,
        [
            "bob: expertise add finance:2",
            "staff: grant @bob 3 welcome",
            "bob2: expertise add legal:3",
            "staff: grant @bob2 4 event prize",
            "staff: merge @bob @staff",
            "staff: merge @bob @bob",
            "staff: merge @bob @nobody",
            "staff: merge @bob @bob2",
            "bob2: balance",
            "staff: merge confirm @bob @bob2",
            "bob: balance",
            "bob2: balance",
            "bob2: expertise add design",
            "staff: history @bob",
            "staff #staff: balances",
            "staff: merge confirm @bob @bob2",
        ],
    )
    staff = lines_to(out, "staff")
    assert "[to staff] bob is member and staff is admin; merging never changes a role" in out
    assert "[to staff] bob and bob are the same member; name two members to merge." in staff
    assert any("I don't know a member @nobody" in line for line in staff)
    ask = next(line for line in staff if "needs a second look" in line)
    assert ask.startswith("[to staff] Merging bob2 into bob: bob2's chat accounts (console:bob2)")
    assert "`merge confirm @bob @bob2`" in ask
    bob2 = lines_to(out, "bob2")
    assert "[to bob2] Your balance: 4.00 SIF" in bob2  # nothing changed before confirming
    assert any(line.startswith("[to staff] Merged bob2 into bob:") for line in staff)
    assert "[#staff] staff merged bob2 into bob" in out
    assert "[to bob] Your balance: 7.00 SIF" in lines_to(out, "bob")
    assert bob2[-2] == "[to bob2] Your balance: 7.00 SIF"  # the same member now
    assert bob2[-1] == "[to bob2] Your expertise: design:2, finance:2, legal:3."
    history = out.split("Latest entries on bob's account")[1]
    assert "transfer +4.00 SIF — merged from another account of the same person (by staff)" in (
        history
    )
    assert "I don't know a member @bob2 here" not in out  # bob2 now names bob's account
    balances = out.split("[#staff] Balances, lowest first")[1]
    assert balances.startswith(" (3 members, sum 7.00 SIF)")
    assert "merged member 3  0.00 SIF" in balances  # keeps bob2's old entries, nameless
    assert staff[-1] == "[to staff] bob and bob are the same member; name two members to merge."


def test_merge_is_refused_while_either_member_has_a_request_in_flight(tmp_path: Path) -> None:
    out = play(
        tmp_path,
        [
            *ann_with_an_idea(),
            "bob: expertise add finance:3",
            "bob2: tags",
            "ann: request I-1 review",
            "bob: accept R-1",
            "staff: merge @bob @bob2",
            "staff: merge confirm @bob2 @bob",
            "staff: merge @ann @bob2",
        ],
    )
    staff = lines_to(out, "staff")
    assert staff[-3] == (
        "[to staff] bob has R-1 (reviewing, accepted) under way; merging waits until it is "
        "paid, refunded or cancelled."
    )
    assert staff[-2] == staff[-3]
    assert staff[-1] == (
        "[to staff] ann has R-1 (requester, accepted) under way; merging waits until it is "
        "paid, refunded or cancelled."
    )


def test_staff_assign_a_peer_who_was_offered_and_done_before_accept(tmp_path: Path) -> None:
    out = play(
        tmp_path,
        [
            *ann_with_an_idea(),
            "erin: expertise add finance:2",
            "ann: request I-1 review",
            "erin: done R-1 1 my notes",
            "staff: assign R-1 @erin",
            "erin: accept R-1",
            "staff: resolve R-99 pay",
            "staff: assign R-99 @erin",
            "erin: accept R-99",
        ],
    )
    erin, staff = lines_to(out, "erin"), lines_to(out, "staff")
    assert "[to erin] R-1 is offered to you but not accepted yet; `accept R-1` first." in erin
    assert any(line.startswith("[to staff] Offered R-1 to erin until") for line in staff)
    assert sum("Can you help? R-1" in line for line in erin) == 2
    assert "chosen by staff (staff)" in out.split("[to erin] Can you help? R-1")[2]
    assert any(line.startswith("[to erin] You accepted R-1") for line in erin)
    hint = "[to staff] There is no request R-99 here; `export requests` lists every request."
    assert staff[-2:] == [hint, hint]
    assert erin[-1] == "[to erin] There is no request R-99 here; `requests` lists yours."


def test_an_introduction_by_staff_tells_the_ideas_owner(tmp_path: Path) -> None:
    out = play(
        tmp_path,
        [*ann_with_an_idea(), "carol: hi", "staff: intro @carol I-1 she ran a repair cafe"],
    )
    assert "[to carol] staff would like to introduce you to I-1" in out
    owner = lines_to(out, "ann")[-1]
    assert owner.startswith("[to ann] staff introduced carol to your idea I-1")
    assert "she ran a repair cafe" in owner
