"""Where a member stands, through the core with the real store and a fake clock:
`requests`/`status`, `idea I-n`, `profile show`, `offers` after an accept, and the idea
status that follows its requests (submitted → in review → reviewed)."""

from __future__ import annotations

from datetime import timedelta

from bot.bootstrap import App
from bot.domain.records import IdeaStatus
from tests.fakes import FakeClock, RecordingMessenger, said

IDEA = {
    "title": "Repair café network",
    "summary": "Volunteer-run repair cafés in every neighbourhood.",
    "need": "Too much waste.",
    "cost": {"low": 5000, "high": 8000, "currency": "EUR", "text": "5-8k euro"},
    "stage": {"choice": "pilot"},
    "help": ["finance"],
    "language": {"choices": ["English"], "note": ""},
}


def messenger(app: App) -> RecordingMessenger:
    return app.messenger  # type: ignore[attr-defined,no-any-return]


async def ask(app: App, who: str, text: str) -> str:
    """What the bot answered `who` (their messages only, joined)."""
    messenger(app).clear()
    await app.bot.handle(said(who, text))
    return "\n".join(messenger(app).to(who))


async def setup(app: App) -> None:
    """staff and carl (not reviewing), ann with idea I-1 and 10 SIF, peer bob."""
    bot = app.bot
    await bot.handle(said("staff", "availability 0"))
    await bot.handle(said("bob", "expertise add finance:3"))
    await bot.handle(said("carl", "availability 0"))  # a member who reviews nothing
    await bot.handle(said("ann", "balance"))
    await bot.handle(said("staff", "grant @ann 10 welcome"))
    async with bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None
        await uow.ideas.create(ann.community, ann.id, IDEA["title"], IDEA, bot.clock.now())
        await uow.commit()
    messenger(app).clear()


async def status_of(app: App, number: int = 1) -> IdeaStatus:
    async with app.bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None
        idea = await uow.ideas.by_number(ann.community, number)
        assert idea is not None
        return idea.status


async def test_the_idea_status_follows_its_requests(app: App, clock: FakeClock) -> None:
    await setup(app)
    await app.bot.handle(said("ann", "request I-1 review"))
    assert await status_of(app) is IdeaStatus.SUBMITTED  # offered, nobody has it yet
    await app.bot.handle(said("bob", "accept R-1"))
    assert await status_of(app) is IdeaStatus.IN_REVIEW
    await app.bot.handle(said("ann", "cancel R-1"))
    assert await status_of(app) is IdeaStatus.SUBMITTED  # the only peer at work stopped
    await app.bot.handle(said("ann", "request I-1 review"))
    await app.bot.handle(said("bob", "accept R-2"))
    await app.bot.handle(said("ann", "dispute R-2 nothing happened"))
    assert await status_of(app) is IdeaStatus.IN_REVIEW  # with staff, still bob's
    await app.bot.handle(said("staff", "resolve R-2 refund"))
    assert await status_of(app) is IdeaStatus.SUBMITTED
    await app.bot.handle(said("ann", "request I-1 review"))
    await app.bot.handle(said("bob", "accept R-3"))
    await app.bot.handle(said("bob", "done R-3 2 Check the grant deadlines."))
    assert await status_of(app) is IdeaStatus.REVIEWED
    assert "I-1 Repair café network · reviewed ·" in await ask(app, "ann", "ideas")
    await app.bot.handle(said("ann", "thanks R-3 4"))
    assert await status_of(app) is IdeaStatus.REVIEWED
    assert "I-1 Repair café network · reviewed ·" in await ask(app, "staff", "ideas all")
    messenger(app).clear()
    await app.bot.handle(said("ann", "mydata"))
    file = next(m.file for m in messenger(app).sent if m.file is not None)
    assert '"status": "reviewed"' in file.content.decode()


async def test_requests_shows_each_side_with_times_and_next_steps(
    app: App, clock: FakeClock
) -> None:
    await setup(app)
    await app.bot.handle(said("ann", "request I-1 review"))
    clock.advance(minutes=20)
    mine = await ask(app, "ann", "requests")
    assert mine.startswith("Your requests:\n")
    assert "• R-1 review of I-1 · asked 20 min ago, waiting for a peer to accept" in mine
    assert "· `cancel R-1` withdraws it" in mine
    offered = await ask(app, "bob", "requests")
    assert offered.startswith("Offered to you:\n• R-1 review for ann's I-1 · offered to you")
    assert "next: `accept R-1` or `decline R-1 [reason]`" in offered

    await app.bot.handle(said("bob", "accept R-1"))
    clock.advance(hours=2)
    assert "R-1 review of I-1 · accepted by bob 2 h ago · waiting for bob's review" in (
        await ask(app, "ann", "requests")
    )
    assert (
        "• R-1 review for ann's I-1 · you accepted 2 h ago · next: "
        "`done R-1 <hours> <feedback>`" in await ask(app, "bob", "requests")
    )
    await app.bot.handle(said("bob", "done R-1 1.5 Good plan."))
    clock.advance(hours=3)
    release = (clock.now() - timedelta(hours=3) + timedelta(days=7)).strftime("%Y-%m-%d")
    delivered = await ask(app, "ann", "requests")
    assert (
        "R-1 review of I-1 · delivered by bob 3 h ago · next: `thanks R-1 [1-5]` or "
        f"`dispute R-1 <reason>`; without either it is paid to bob on {release}" in delivered
    )
    assert (
        "R-1 review for ann's I-1 · you delivered 3 h ago · waiting for ann's thanks; "
        f"paid to you on {release} at the latest unless disputed"
        in await ask(app, "bob", "requests")
    )
    # `status` is the same answer as `requests` outside a conversation.
    assert await ask(app, "ann", "status") == delivered


async def test_closed_requests_come_last_and_only_the_latest_few(
    app: App, clock: FakeClock
) -> None:
    await setup(app)
    for number in range(1, 8):
        await app.bot.handle(said("ann", "request I-1 advice"))
        await app.bot.handle(said("ann", f"cancel R-{number}"))
        clock.advance(minutes=1)
    await app.bot.handle(said("ann", "request I-1 review"))
    answer = await ask(app, "ann", "requests")
    lines = answer.splitlines()
    assert lines[:2] == [
        "Your requests:",
        "• R-8 review of I-1 · asked just now, waiting for a peer to accept · "
        "`cancel R-8` withdraws it",
    ]
    assert lines[2] == "Closed lately:"
    assert [line.split()[1] for line in lines[3:8]] == ["R-7", "R-6", "R-5", "R-4", "R-3"]
    assert lines[3] == "• R-7 advice of I-1 · cancelled 1 min ago"
    assert lines[8] == "…and 2 closed before; `history` lists the payments."
    assert len(lines) == 9


async def test_requests_with_nothing(app: App) -> None:
    await setup(app)
    assert await ask(app, "carl", "requests") == (
        "You have no requests or reviews yet. `request <I-n>` asks the network about your "
        "idea; `offers` lists reviews offered to you."
    )


async def test_status_inside_a_conversation_stays_the_conversations(app: App) -> None:
    await setup(app)
    await app.bot.handle(said("carl", "intake"))
    await app.bot.handle(said("carl", "Food bank on wheels"))
    answer = await ask(app, "carl", "status")
    assert answer.startswith("Question 2 of 12: summary.")
    assert "requests" not in answer


async def test_idea_is_for_its_owner_its_reviewers_and_staff(app: App) -> None:
    await setup(app)
    await app.bot.handle(said("ann", "request I-1 review"))
    refusal = (
        "I-1 is not your idea and you are not reviewing it, so you cannot see it; "
        "`ideas` lists yours."
    )
    assert await ask(app, "bob", "idea I-1") == refusal  # only offered so far
    await app.bot.handle(said("bob", "accept R-1"))
    owner = await ask(app, "ann", "idea I-1")
    lines = owner.splitlines()
    assert lines[0].startswith("I-1 Repair café network · in review · by ann, submitted ")
    assert lines[1:6] == [
        "Summary: Volunteer-run repair cafés in every neighbourhood.",
        "Societal need: Too much waste.",
        "Development cost: 5,000–8,000 EUR",
        "Stage: pilot",
        "Expertise needed: finance",
    ]
    assert "Requests:\n• R-1 review · accepted by bob just now" in owner
    assert owner.endswith("`requests` shows what to do next for each.")
    reviewer = await ask(app, "bob", "idea I-1")
    assert reviewer.splitlines()[:6] == lines[:6]
    assert "`requests` shows" not in reviewer
    assert (await ask(app, "staff", "idea 1")).splitlines()[:6] == lines[:6]
    assert await ask(app, "carl", "idea I-1") == refusal
    assert await ask(app, "carl", "idea I-7") == "There is no idea I-7 here; `ideas` lists yours."
    assert await ask(app, "carl", "idea R-1") == (
        "'R-1' is not an idea number; they look like I-7. Usage: `idea <I-n>`."
    )


async def test_an_idea_without_requests_says_how_to_ask(app: App) -> None:
    await setup(app)
    answer = await ask(app, "ann", "idea I-1")
    assert answer.startswith("I-1 Repair café network · submitted · by ann")
    assert answer.endswith("No requests yet; `request I-1 review` asks the network.")


async def test_profile_show_lists_what_routing_reads_without_starting_the_questions(
    app: App, clock: FakeClock
) -> None:
    await setup(app)
    assert (await ask(app, "carl", "profile show")).startswith(
        "You have no peer profile yet: `profile` sets one up"
    )
    await app.bot.handle(said("bob", "availability 3"))
    await app.bot.handle(said("ann", "request I-1 review"))
    shown = await ask(app, "bob", "profile show")
    assert shown.splitlines() == [
        "Your peer profile:",
        "Expertise: finance:3",
        "Reviews at once: 3 (1 open now)",  # the offer of R-1 counts
        "`profile` changes it; `expertise add|remove` and `availability <n>` change one part.",
    ]
    async with app.bot.uow_factory() as uow:
        bob = await uow.members.by_identity("console", "bob")
        assert bob is not None
        assert await uow.conversations.get(bob.id) is None  # no questions were started
    await app.bot.handle(said("bob", "pause"))
    assert "Paused: no review offers until you type `resume`." in await ask(
        app, "bob", "profile show"
    )
    await app.bot.handle(said("bob", "pause 3"))
    until = (clock.now() + timedelta(days=3)).strftime("%Y-%m-%d")
    assert f"Paused until {until}: no review offers; `resume` turns them back on." in await ask(
        app, "bob", "profile show"
    )
    await app.bot.handle(said("bob", "resume"))
    await app.bot.handle(said("bob", "availability 0"))
    assert "Reviews at once: 0 (1 open now)\nAvailability 0: no review offers" in await ask(
        app, "bob", "profile show"
    )
    assert (await ask(app, "bob", "profile")).startswith("Let's set up your peer profile")


async def test_offers_after_an_accept_points_to_the_accepted_reviews(app: App) -> None:
    await setup(app)
    await app.bot.handle(said("ann", "request I-1 review"))
    await app.bot.handle(said("bob", "accept R-1"))
    assert await ask(app, "bob", "offers") == (
        "You have no open offers; your accepted reviews: R-1 (`requests` lists them)."
    )
    await app.bot.handle(said("ann", "request I-1 advice"))
    listed = await ask(app, "bob", "offers")
    assert listed.startswith("Your open offers:\nR-2: advice of I-1")
    assert listed.endswith("Your accepted reviews: R-1 (`requests` lists them).")
    assert await ask(app, "carl", "offers") == (
        "You have no open offers. Keep your `profile` current to get matching ones."
    )
