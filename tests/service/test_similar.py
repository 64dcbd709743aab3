"""Similar ideas (SPEC §14) through the core, on SQLite and PostgreSQL: the list shown
when an idea is saved and by `similar I-n`, the owners who chose not to be found, and
text affinity breaking a tie in routing with the offer saying why."""

from __future__ import annotations

from typing import Any

import pytest

from bot.bootstrap import App
from bot.domain.records import Role
from tests.conftest import Store, build_app
from tests.fakes import FakeClock, RecordingMessenger, said

# Ideas of the community that have nothing to do with repairing things.
UNRELATED = {
    "hana": (
        "Beekeeping on school roofs",
        "Children keep bee colonies on the flat roofs of primary schools with a beekeeper.",
        "Pollinators are disappearing from cities and children rarely meet nature.",
        "More biodiversity in town and pupils who understand where honey comes from.",
    ),
    "ivo": (
        "Village car sharing",
        "Electric cars shared by the residents of a village without a bus line.",
        "Elderly villagers cannot reach the doctor or the shops since the bus stopped.",
        "Everyone can travel to appointments; fewer second cars.",
    ),
    "jade": (
        "Coding club for girls",
        "Saturday programming workshops for teenage girls, taught by women engineers.",
        "Few girls choose technical studies.",
        "More young women in software jobs.",
    ),
    "kurt": (
        "Energy cooperative",
        "Citizens jointly own solar panels on public buildings and share the income.",
        "Energy bills are too high and the transition leaves tenants behind.",
        "Cheaper green power for members, including tenants.",
    ),
    "lena": (
        "Language café for newcomers",
        "Weekly conversation tables where refugees practise Dutch with local volunteers.",
        "Newcomers have few chances to speak the language outside class.",
        "Faster integration and friendships across backgrounds.",
    ),
}

# The innovator's idea, and the same idea told in other words by someone else.
REPAIR = (
    "Repair café network",
    "A network of volunteer-run repair cafés where neighbours fix broken appliances and "
    "bikes together.",
    "Too much gets thrown away, and many people live next to each other as strangers.",
    "Less waste and neighbours who know each other.",
)
FIX_IT = (
    "Fix-it evenings in the library",
    "Monthly evenings in the public library where residents learn to mend broken toasters, "
    "lamps and bicycles with volunteer repairers.",
    "Electronics end up in the bin and repair skills are lost.",
    "Fewer appliances thrown away and a place where neighbours meet.",
)
# Dutch: the same idea in other inflections ("fietsen" / "fiets", "herstellen" / "hersteld").
DUTCH_QUERY = (
    "Buurtherstelplaats",
    "Een plek in de wijk waar vrijwilligers kapotte fietsen en toestellen van buren herstellen.",
    "Te veel spullen worden weggegooid en buren kennen elkaar niet.",
    "Minder afval en meer contact tussen buren.",
)
DUTCH_TWIN = (
    "Fietshersteldag",
    "Elke maand wordt in het buurthuis een kapotte fiets of een kapot toestel samen met "
    "een vrijwilliger hersteld.",
    "Er wordt te veel weggegooid; buurtbewoners ontmoeten elkaar weinig.",
    "Minder afval, meer ontmoeting tussen de buurtbewoners.",
)


def answers(fields: tuple[str, str, str, str], **more: Any) -> dict[str, Any]:
    title, summary, need, impact = fields
    return {"title": title, "summary": summary, "need": need, "impact": impact, **more}


def intake(fields: tuple[str, str, str, str]) -> list[str]:
    """What an innovator types to submit this idea through the intake."""
    title, summary, need, impact = fields
    return [
        "intake", title, summary, need, impact, "grants", "about 5000 EUR", "prototype",
        "whether volunteers stay", "civil society", "finance", "skip", "English", "confirm",
    ]  # fmt: skip


@pytest.fixture
def app(store: Store, clock: FakeClock) -> App:
    return build_app(store, clock, sif_fanout=1)


def out(app: App) -> RecordingMessenger:
    return app.messenger  # type: ignore[attr-defined,no-any-return]


async def add_idea(app: App, who: str, idea: dict[str, Any]) -> int:
    """An idea of `who` in the store, as a saved intake leaves it; its number."""
    bot = app.bot
    await bot.handle(said(who, "balance"))  # the member exists
    async with bot.uow_factory() as uow:
        member = await uow.members.by_identity("console", who)
        assert member is not None
        made = await uow.ideas.create(
            member.community, member.id, idea["title"], idea, bot.clock.now()
        )
        await uow.commit()
    return made.number


async def community(app: App) -> None:
    for who, fields in UNRELATED.items():
        await add_idea(app, who, answers(fields, stage="idea", help=["legal"]))


async def tell(app: App, who: str, text: str) -> str:
    out(app).clear()
    await app.bot.handle(said(who, text))
    return "\n".join(m.text for m in out(app).sent if m.to == who)


async def submit(app: App, who: str, fields: tuple[str, str, str, str]) -> str:
    """Play the intake; what the bot said about similar ideas when it was saved."""
    for line in intake(fields):
        await app.bot.handle(said(who, line))
    saved = [m for m in out(app).sent if m.to == who and m.topic == "idea.similar"]
    return saved[-1].text if saved else ""


def listed(text: str) -> list[str]:
    """The ideas a similar-ideas answer lists, in order."""
    return [line.split()[1] for line in text.splitlines() if line.startswith("• ")]


async def test_a_near_duplicate_in_other_words_is_listed_first_when_the_idea_is_saved(
    app: App,
) -> None:
    await community(app)
    twin = await add_idea(app, "carl", answers(FIX_IT, stage="prototype", help=["finance"]))
    shown = await submit(app, "ann", REPAIR)
    assert listed(shown) == [f"I-{twin}"], shown
    assert "Fix-it evenings in the library" in shown and "by carl" in shown
    # the reason: words they share as the other idea writes them, the same stage, the tag
    line = next(line for line in shown.splitlines() if line.startswith("• "))
    assert "‘broken" in line and "same stage (prototype)" in line and "finance" in line
    assert "`intro @member I-7 [note]`" in shown
    # the button introduces carl to ann's new idea through `intro`
    buttons = [b for m in out(app).sent if m.topic == "idea.similar" for b in m.buttons]
    assert [(b.label, b.action) for b in buttons] == [
        ("Introduce carl", "intro <@console:carl> I-7")
    ]
    assert "I introduced" not in await tell(app, "ann", buttons[0].action)
    assert "introduce you to I-7" in "\n".join(m.text for m in out(app).sent if m.to == "carl")


async def test_the_same_idea_in_dutch_is_found_by_its_dutch_stems(app: App) -> None:
    await community(app)
    twin = await add_idea(app, "dirk", answers(DUTCH_TWIN))
    mine = await add_idea(app, "ann", answers(DUTCH_QUERY))
    shown = await tell(app, "ann", f"similar I-{mine}")
    assert listed(shown)[:1] == [f"I-{twin}"], shown
    # "kapotte toestellen" and "kapot toestel" are the same words in Dutch
    line = next(line for line in shown.splitlines() if line.startswith("• "))
    assert "‘kapot toestel’" in line, line


async def test_an_unrelated_idea_is_not_listed(app: App) -> None:
    await community(app)
    await add_idea(app, "carl", answers(FIX_IT))
    mine = await add_idea(app, "ann", answers(UNRELATED["hana"][:1] + UNRELATED["kurt"][1:]))
    shown = await tell(app, "ann", f"similar I-{mine}")
    assert "I-6" not in listed(shown)
    beekeeping = await add_idea(
        app,
        "olga",
        answers(("Honey from the roofs", "Bee hives on a school roof.", "Fewer bees.", "Bees.")),
    )
    shown = await tell(app, "olga", f"similar I-{beekeeping}")
    assert listed(shown) == ["I-1"], shown  # the other beekeeping idea, not the repairs


async def test_owners_who_opted_out_never_appear(app: App) -> None:
    await community(app)
    await add_idea(app, "carl", answers(FIX_IT))
    assert "similar ideas" in await tell(app, "carl", "similar hide")
    shown = await submit(app, "ann", REPAIR)
    assert "carl" not in shown and "I-6" not in shown
    assert "I-6" not in await tell(app, "ann", "similar I-7")
    assert "I-6" not in await tell(app, "staff", "similar I-7")
    # the setting is shown with the profile, survives a profile conversation, and is undone
    assert "not shown to others as similar ideas" in await tell(app, "carl", "profile show")
    assert "already hidden" in await tell(app, "carl", "similar hide")
    assert "again" in await tell(app, "carl", "similar show")
    assert "I-6" in await tell(app, "ann", "similar I-7")


async def test_only_the_owner_and_staff_look_for_ideas_like_one(app: App) -> None:
    await community(app)
    await add_idea(app, "carl", answers(FIX_IT))
    mine = await add_idea(app, "ann", answers(REPAIR))
    assert "not your idea" in await tell(app, "bob", f"similar I-{mine}")
    assert "I-6" in await tell(app, "staff", f"similar I-{mine}")
    assert "There is no idea I-99 here" in await tell(app, "ann", "similar I-99")
    assert "not an idea number" in await tell(app, "ann", "similar repair")


async def test_affinity_breaks_a_tie_between_equal_peers_and_the_offer_says_why(
    store: Store, clock: FakeClock
) -> None:
    for affinity in (False, True):
        app = build_app(store, clock, sif_fanout=1, sif_affinity=affinity)
        prefix = "on" if affinity else "off"
        cleo, bob = f"cleo-{prefix}", f"bob-{prefix}"
        # cleo joins first: without affinity the tie goes to her (the lower member id)
        await app.bot.handle(said(cleo, "expertise add finance:2"))
        await app.bot.handle(said(bob, "expertise add finance:2"))
        async with app.bot.uow_factory() as uow:
            for name, bio in (
                (cleo, "I coach youth football teams on Saturdays."),
                (bob, "Twenty years in the circular economy: I started three repair cafés."),
            ):
                member = await uow.members.by_identity("console", name)
                assert member is not None
                await uow.members.set_profile(member.id, languages=[], bio=bio, profile={})
            await uow.commit()
        owner = f"ann-{prefix}"
        await app.bot.handle(said("staff", f"grant @{owner} 5 welcome"))
        number = await add_idea(app, owner, answers(REPAIR, help=["finance"]))
        out(app).clear()
        await app.bot.handle(said(owner, f"request I-{number} review finance"))
        offers = [m for m in out(app).sent if m.topic == "offer"]
        assert len(offers) == 1
        if affinity:
            assert offers[0].to == bob
            assert "; bio mentions 'repair cafés'." in offers[0].text, offers[0].text
        else:
            assert offers[0].to == cleo
            assert "bio mentions" not in offers[0].text
        # the members of this round are not peers of the next
        async with app.bot.uow_factory() as uow:
            for name in (cleo, bob, owner):
                member = await uow.members.by_identity("console", name)
                assert member is not None
                await uow.members.set_capacity(member.id, 0)
                await uow.members.set_role(member.id, Role.MEMBER)
            await uow.commit()


async def test_the_reason_of_an_offer_is_said_in_the_peers_language(
    store: Store, clock: FakeClock
) -> None:
    app = build_app(store, clock, sif_fanout=1)
    await app.bot.handle(said("bob", "language nl"))
    await app.bot.handle(said("bob", "expertise add finance:2"))
    async with app.bot.uow_factory() as uow:
        member = await uow.members.by_identity("console", "bob")
        assert member is not None
        await uow.members.set_profile(
            member.id, languages=[], bio="I started three repair cafés.", profile={}
        )
        await uow.commit()
    await app.bot.handle(said("staff", "grant @ann 5 welcome"))
    number = await add_idea(app, "ann", answers(REPAIR, help=["finance"]))
    out(app).clear()
    await app.bot.handle(said("ann", f"request I-{number} review finance"))
    offer = next(m for m in out(app).sent if m.topic == "offer")
    assert offer.to == "bob"
    assert "bio vermeldt 'repair cafés'" in offer.text, offer.text
