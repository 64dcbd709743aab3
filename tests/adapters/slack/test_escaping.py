"""What people typed shows literally on Slack: a member called `<script>alert(1)</script>`,
`*bold*` or `<!channel>` is neither markup nor a mention, while the core's own `code` and
*headings* stay formatted.

Members with such names use the real core (`Bot.handle`) and every answer is rendered by
the adapter's translate functions. Slack has no escape for * _ ~ `; the adapter puts a
zero-width space on both sides of such a character, which neither opens nor closes
formatting whether Slack reads that space as a letter or as a boundary. The checks read
the mrkdwn both ways.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from adapters.slack import translate as slack
from bot import markup
from bot.bootstrap import App
from bot.messages import Delivery, Inbound, Outbound, Table, render_table

NAMES = [
    "<script>alert(1)</script>",
    "*bold*",
    "_it_",
    "~strike~",
    "`code`",
    "<!channel>",
    "<@U123>",
    "&amp;",
    "> quoted",
    "```pre```",
    "*a* _b_ ~c~ `d` <e> &f;",
]
ZWSP = slack.ZWSP


# -- driving the core ---------------------------------------------------------------------


async def say(
    app: App, user: str, text: str, name: str | None = None, channel: str | None = None
) -> list[Outbound]:
    inbound = Inbound("console", "console", user, text, name or user, channel=channel)
    return await app.bot.handle(inbound)


async def outbounds_naming(app: App, name: str) -> list[Outbound]:
    """A member called `name` joins, adds expertise, has an idea, introduces it, is found,
    granted SIF and listed; everything the bot said along the way."""
    out: list[Outbound] = []
    out += await say(app, "staff", "balance")
    out += await say(app, "ann", "balance")
    out += await say(app, "evil", "balance", name)
    out += await say(app, "evil", "expertise add finance:3 legal")
    out += await say(app, "evil", "hi")
    async with app.bot.uow_factory() as uow:
        community = await uow.communities.find("console")
        evil = await uow.members.by_identity("console", "evil")
        assert community is not None and evil is not None
        answers = {"title": f"{name} idea", "summary": f"By {name}.", "help": ["finance"]}
        await uow.ideas.create(
            community.id, evil.id, f"{name} idea", answers, datetime(2026, 3, 2, tzinfo=UTC)
        )
        await uow.commit()
    out += await say(app, "evil", f"intro @ann I-1 a note from {name}")
    out += await say(app, "ann", "find finance")
    out += await say(app, "staff", "grant <@console:evil> 5 welcome")
    out += await say(app, "staff", "balance <@console:evil>")
    out += await say(app, "staff", "history <@console:evil>")
    out += await say(app, "staff", "balances", channel="#staff")
    out += await say(app, "staff", "ideas all", channel="#staff")
    return out


def naming(messages: list[Outbound], name: str) -> list[Outbound]:
    found = [m for m in messages if name in m.text]
    # greeting, intro (to ann and the reply), find, grant (reply and DM), balance, history,
    # balances, ideas all
    assert len(found) >= 8, [m.text for m in messages]
    return found


# -- reading mrkdwn as Slack would ----------------------------------------------------------


def formatting_spans(mrkdwn: str) -> list[tuple[str, str]]:
    """The (mark, content) spans Slack would format, reading a zero-width space first as a
    letter and then as a space: a mark opens after a boundary and before a non-space, and
    closes after a non-space and before a boundary."""
    spans = []
    for zwsp_as in ("a", " "):
        text = mrkdwn.replace(ZWSP, zwsp_as)
        spans += re.findall(r"(?<!\w)([*_~`])(?=\S)([^\n]*?\S)\1(?!\w)", text)
    return spans


def core_markup(mark: str, content: str) -> bool:
    return (mark == "*" and markup.is_heading(content)) or (mark == "`" and markup.is_code(content))


def assert_literal_mrkdwn(mrkdwn: str, text: str) -> None:
    """mrkdwn that shows `text`: nothing formatted but the core's markup, no raw < or >
    (no mention, link or tag), and the same text once the escaping is undone."""
    assert "<" not in mrkdwn and ">" not in mrkdwn, mrkdwn
    for mark, content in formatting_spans(mrkdwn):
        assert core_markup(mark, content), f"{mark}{content}{mark} is formatted in {mrkdwn!r}"
    assert slack.unescape(mrkdwn.replace(ZWSP, "")) == text.replace(ZWSP, "")


def section_text(message: Outbound) -> str:
    return "\n".join(b["text"]["text"] for b in slack.blocks(message) if b["type"] == "section")


def check_slack(message: Outbound, name: str) -> None:
    assert_literal_mrkdwn(slack.fallback_text(message), message.text)
    # (a > only needs its zero-width space at the start of a line)
    shown = slack.literal(name).removeprefix(f"{ZWSP}&gt;")
    assert shown in slack.fallback_text(message)
    blocks = section_text(message)
    for block in slack.blocks(message):
        if block["type"] == "section":
            assert block["text"]["verbatim"] is True  # no automatic links or mentions
    if message.table is None:
        assert blocks == slack.mrkdwn(message.text)
        assert_literal_mrkdwn(blocks, message.text)
        return
    # the table is monospace: formatting is off inside ```, and a backtick cannot end it
    rendered = render_table(message.table)
    before, _, after = message.text.partition(rendered)
    pre = slack.preformatted(rendered)
    assert pre in blocks and pre.count("```") == 2
    assert slack.escape(name).replace("`", f"{ZWSP}`{ZWSP}") in pre
    assert_literal_mrkdwn(slack.mrkdwn(before) + slack.mrkdwn(after), before + after)


# -- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
async def test_a_member_name_shows_literally_on_slack(app: App, name: str) -> None:
    for message in naming(await outbounds_naming(app, name), name):
        check_slack(message, name)


@pytest.mark.parametrize("name", NAMES)
def test_names_in_a_sentence_table_and_closed_message(name: str) -> None:
    text = f"Granted 5.00 SIF to {name} ({name}); `balance` shows it.\n{name}"
    message = Outbound("slack", Delivery.DM, "T1:U1", text)
    check_slack(message, name)
    assert "`balance`" in slack.mrkdwn(text)
    table = Table(("member", "balance"), ((name, "5.00 SIF"),))
    message = Outbound(
        "slack", Delivery.DM, "T1:U1", f"Balances:\n{render_table(table)}", None, table
    )
    check_slack(message, name)
    (note,) = slack.closed_blocks([], name)[0]["elements"]
    assert_literal_mrkdwn(note["text"], f"✓ {name}")


def test_word_inner_marks_and_links_are_left_alone() -> None:
    assert slack.mrkdwn("snake_case a*b http://x.org/a_b") == "snake_case a*b http://x.org/a_b"
    assert slack.mrkdwn("a`b") == f"a{ZWSP}`{ZWSP}b"  # a backtick is always neutralised


async def test_the_core_markup_stays_formatted(app: App) -> None:
    messages = await say(app, "staff", "help")
    messages += await say(app, "staff", "intake")
    rendered = [slack.mrkdwn(m.text) for m in messages]
    assert "*Your ideas*" in rendered[0] and "`intake`" in rendered[0]
    assert "`back`" in rendered[1] and "`edit <question>`".replace("<", "&lt;").replace(
        ">", "&gt;"
    ) in "".join(rendered)
    home = slack.mrkdwn(await app.bot.home("console", "staff"))
    assert "*Balance*" in home and "*Open offers*" in home
    for text in [*rendered, home]:
        assert f"{ZWSP}`" not in text and f"{ZWSP}*" not in text, text


def test_the_checks_catch_what_plain_escaping_lets_through() -> None:
    """Escaping &, < and > alone (the adapter before) leaves people's * _ ~ ` formatting."""
    for name in ("*bold*", "_it_", "~strike~", "`code`"):
        spans = formatting_spans(slack.escape(f"Hi {name}!"))
        assert spans and not core_markup(*spans[0])
        assert formatting_spans(slack.mrkdwn(f"Hi {name}!")) == []
