"""Long lists are paged (SPEC §13): `ideas all` with 1,500 ideas never makes one answer
longer than a platform takes, and every idea is on exactly one page."""

from __future__ import annotations

import re

from bot.bootstrap import App
from tests.fakes import FakeClock, RecordingMessenger, said

IDEAS = 1_500


def messenger(app: App) -> RecordingMessenger:
    return app.messenger  # type: ignore[attr-defined,no-any-return]


async def test_ideas_all_is_paged_and_every_idea_is_on_one_page(app: App, clock: FakeClock) -> None:
    await app.bot.handle(said("ann", "balance"))
    async with app.bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None
        for n in range(IDEAS):
            title = f"Repair café number {n} with a long enough title to matter"
            await uow.ideas.create(ann.community, ann.id, title, {}, clock.now())
        await uow.commit()
    seen: list[str] = []
    page, longest = 1, 0
    while True:
        clock.advance(seconds=3)  # a person reading pages, not a flood
        await app.bot.handle(said("staff", f"ideas all {page}", channel="staff"))
        text = messenger(app).sent[-1].text
        longest = max(longest, len(text))
        seen += re.findall(r"^I-\d+", text, flags=re.M)
        following = re.search(r"Next: `ideas all (\d+)`", text)
        if following is None:
            break
        assert int(following.group(1)) == page + 1
        page += 1
    assert page == 30 and "(page 30 of 30)" in text
    assert sorted(seen, key=lambda r: int(r[2:])) == [f"I-{n}" for n in range(1, IDEAS + 1)]
    assert longest < 6_000  # far inside every platform's limit
    await app.bot.handle(said("staff", "ideas all 31", channel="staff"))
    assert messenger(app).sent[-1].text == "There are only 30 pages; `ideas all 30` is the last."


async def test_a_short_list_is_one_page_without_page_numbers(app: App, clock: FakeClock) -> None:
    await app.bot.handle(said("ann", "balance"))
    async with app.bot.uow_factory() as uow:
        ann = await uow.members.by_identity("console", "ann")
        assert ann is not None
        await uow.ideas.create(ann.community, ann.id, "Repair café", {}, clock.now())
        await uow.commit()
    await app.bot.handle(said("ann", "ideas"))
    text = messenger(app).to("ann")[-1]
    assert text.startswith("Your ideas:\nI-1 Repair café") and "page" not in text
