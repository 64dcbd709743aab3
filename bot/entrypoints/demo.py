"""`sif-bot demo`: the whole loop of the peer network, played on a fresh temporary database.

Staff welcome ann with SIF, ann describes her idea, two peers opt in (one with the
profile conversation, one with `expertise add`), ann asks for a review, it is offered
to both at once (only peers are: never ann or staff), one declines, the other accepts,
delivers and is thanked; staff look at the balances.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bot.settings import load_settings

STEPS: list[tuple[str, str, str]] = [
    ("", "", "Ann, an innovator, says hello to the bot for the first time."),
    ("ann", "hello", ""),
    ("", "", "Staff welcome her with a few SIF from the network account."),
    ("staff", "grant @ann 5 welcome to the network", ""),
    ("", "", "Ann chooses to describe her idea: the intake conversation."),
    ("ann", "1", ""),
    ("ann", "Repair café network", ""),
    ("ann", "Volunteer-run repair cafés in every Ghent neighbourhood, open to everyone.", ""),
    ("ann", "Too much waste, and lonely people in the city.", ""),
    ("ann", "Fewer things thrown away; neighbours who meet each month.", ""),
    ("ann", "grants, donations - mostly city grants", ""),
    ("ann", "5000-8000 EUR", ""),
    ("ann", "prototype", ""),
    ("ann", "Whether volunteers stay motivated.", ""),
    ("ann", "civil society, government", ""),
    ("ann", "finance, business-model", ""),
    ("ann", "skip", ""),
    ("ann", "English, Dutch", ""),
    ("ann", "confirm", ""),
    (
        "",
        "",
        "Two experienced peers opt in to reviewing: only peers are offered reviews, "
        "never ann or staff.",
    ),
    ("bob", "profile", ""),
    ("bob", "finance:3, business-model:2", ""),
    ("bob", "English", ""),
    ("bob", "2", ""),
    ("bob", "skip", ""),
    ("bob", "Accountant for social enterprises.", ""),
    ("bob", "confirm", ""),
    ("cleo", "expertise add finance:2 fundraising:3", ""),
    (
        "",
        "",
        "Ann asks the network for a review; it is offered at once to the peers whose "
        "expertise matches (up to three), the least busy first.",
    ),
    ("ann", "request I-1 review", ""),
    ("", "", "Bob is travelling and declines; Cleo accepts, which closes the offer for others."),
    ("bob", "decline R-1 travelling this week", ""),
    ("cleo", "accept R-1", ""),
    ("cleo", "done R-1 1.5 Start with a cost model per café; city grants cover the start.", ""),
    ("ann", "thanks R-1 5 very practical, thank you", ""),
    ("", "", "Staff look at the balances in their channel."),
    ("staff #staff", "balances", ""),
]


async def run_demo() -> int:
    from bot.bootstrap import build, console_inbound, console_messenger

    with tempfile.TemporaryDirectory(prefix="sif-demo-") as tmp:
        settings = load_settings(
            _env_file=None,
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'demo.db'}",
            sif_admins="console:staff",
            sif_staff_channel="staff",
        )
        app = await build(settings)
        app.relay.register(console_messenger())
        print("sif-bot demo: a fresh community on a temporary database.")
        try:
            for who, text, narration in STEPS:
                if narration:
                    print(f"\n## {narration}")
                    continue
                name, _, channel = who.partition(" #")
                where = f" in #{channel}" if channel else ""
                print(f"\n{name}{where}> {text}")
                await app.bot.handle(console_inbound(name, text, channel or None))
        finally:
            await app.close()
    print("\nThat is the whole loop. `sif-bot console --as NAME` lets you try it yourself.")
    return 0
