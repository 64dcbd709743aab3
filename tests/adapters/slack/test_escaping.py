"""What people typed shows literally on Slack: a member called `<script>alert(1)</script>`,
`*bold*` or `<!channel>` is neither markup nor a mention, while the core's own `code` and
*headings* stay formatted.

The core hands the adapter typed parts: people's words are always plain `Text`, the
core's own marks are `Code` and `Strong`. Members with hostile names use the real core
(`Bot.handle`) and every answer is rendered by the adapter's translate functions. Slack
has no escape for * _ ~ `; the adapter puts a zero-width space on both sides of such a
character, which neither opens nor closes formatting whether Slack reads that space as a
letter or as a boundary. The checks read the mrkdwn both ways and allow exactly the
message's Code and Strong parts to be formatted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.slack import translate as slack
from bot.bootstrap import App
from bot.messages import (
    Actions,
    Button,
    Code,
    Delivery,
    Inbound,
    Outbound,
    Part,
    Strong,
    Table,
    Text,
    render_plain,
    render_table,
    say,
)

NAMES = [
    "<script>alert(1)</script>",
    "*bold*",
    "_it_",
    "~strike~",
    "`code`",
    "`help`",
    "<!channel>",
    "<@U123>",
    "<b>x</b>",
    "&amp;",
    "> quoted",
    "```pre```",
    "*a* _b_ ~c~ `d` <e> &f;",
]
ZWSP = slack.ZWSP


# -- driving the core ---------------------------------------------------------------------


async def ask(
    app: App, user: str, text: str, name: str | None = None, channel: str | None = None
) -> list[Outbound]:
    inbound = Inbound("console", "console", user, text, name or user, channel=channel)
    return await app.bot.handle(inbound)


async def outbounds_naming(app: App, name: str) -> list[Outbound]:
    """A member called `name` joins, adds expertise, has an idea, introduces it, is found,
    granted SIF and listed; everything the bot said along the way."""
    out: list[Outbound] = []
    out += await ask(app, "staff", "balance")
    out += await ask(app, "ann", "balance")
    out += await ask(app, "evil", "balance", name)
    out += await ask(app, "evil", "expertise add finance:3 legal")
    out += await ask(app, "evil", "hi")
    async with app.bot.uow_factory() as uow:
        community = await uow.communities.find("console")
        evil = await uow.members.by_identity("console", "evil")
        assert community is not None and evil is not None
        answers = {"title": f"{name} idea", "summary": f"By {name}.", "help": ["finance"]}
        await uow.ideas.create(
            community.id, evil.id, f"{name} idea", answers, datetime(2026, 3, 2, tzinfo=UTC)
        )
        await uow.commit()
    out += await ask(app, "evil", f"intro @ann I-1 a note from {name}")
    out += await ask(app, "ann", "find finance")
    out += await ask(app, "staff", "grant <@console:evil> 5 welcome")
    out += await ask(app, "staff", "balance <@console:evil>")
    out += await ask(app, "staff", "history <@console:evil>")
    out += await ask(app, "staff", "balances", channel="#staff")
    out += await ask(app, "staff", "ideas all", channel="#staff")
    return out


def naming(messages: list[Outbound], name: str) -> list[Outbound]:
    found = [m for m in messages if name in m.text]
    # greeting, intro (to ann and the reply), find, grant (reply and DM), balance, history,
    # balances, ideas all
    assert len(found) >= 8, [m.text for m in messages]
    for message in found:  # the name always travels as plain text, never as markup
        in_text = any(isinstance(p, Text) and name in p.text for p in message.parts)
        in_table = message.table is not None and any(
            name in c for r in message.table.rows for c in r
        )
        assert in_text or in_table, message
        assert not any(isinstance(p, Code | Strong) and name in p.text for p in message.parts)
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


def core_spans(parts: Iterable[Part]) -> list[tuple[str, str]]:
    """The spans the core asked for: its Code and Strong parts, as the adapter writes them."""
    return [
        ("`" if isinstance(p, Code) else "*", slack.escape(p.text))
        for p in parts
        if isinstance(p, Code | Strong)
    ]


def assert_literal_mrkdwn(mrkdwn: str, text: str, parts: Iterable[Part] = ()) -> None:
    """mrkdwn that shows `text`: exactly the Code and Strong `parts` formatted, nothing
    else, no raw < or > (no mention, link or tag), and the same text once the escaping is
    undone."""
    assert "<" not in mrkdwn and ">" not in mrkdwn, mrkdwn
    allowed = core_spans(parts)
    for mark, content in formatting_spans(mrkdwn):
        assert (mark, content) in allowed, f"{mark}{content}{mark} is formatted in {mrkdwn!r}"
    for mark, content in allowed:
        assert f"{mark}{content}{mark}" in mrkdwn, (mark, content, mrkdwn)
    assert slack.unescape(mrkdwn.replace(ZWSP, "")) == text.replace(ZWSP, "")


def section_text(message: Outbound) -> str:
    return "\n".join(b["text"]["text"] for b in slack.blocks(message) if b["type"] == "section")


def check_slack(message: Outbound, name: str) -> None:
    inline = tuple(p for p in message.parts if isinstance(p, Text | Code | Strong))
    assert_literal_mrkdwn(slack.fallback_text(message), message.text, inline)
    # (a > only needs its zero-width space at the start of a line)
    shown = slack.literal(name).removeprefix(f"{ZWSP}&gt;")
    assert shown in slack.fallback_text(message)
    blocks = section_text(message)
    for block in slack.blocks(message):
        if block["type"] == "section":
            assert block["text"]["verbatim"] is True  # no automatic links or mentions
    if message.table is None:
        assert blocks == slack.mrkdwn(message.parts)
        assert_literal_mrkdwn(blocks, message.text, inline)
        return
    # the table is monospace: formatting is off inside ```, and a backtick cannot end it
    pre = slack.preformatted(render_table(message.table))
    assert pre in blocks and pre.count("```") == 2
    assert slack.escape(name).replace("`", f"{ZWSP}`{ZWSP}") in pre
    assert_literal_mrkdwn(slack.mrkdwn(inline), render_plain(inline), inline)
    assert blocks.replace(pre, "") == slack.mrkdwn(inline)


def dm(*parts: Part) -> Outbound:
    return Outbound("slack", Delivery.DM, "T1:U1", "test", parts)


# -- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
async def test_a_member_name_shows_literally_on_slack(app: App, name: str) -> None:
    for message in naming(await outbounds_naming(app, name), name):
        check_slack(message, name)


@pytest.mark.parametrize("name", NAMES)
def test_names_in_a_sentence_table_and_closed_message(name: str) -> None:
    parts = say("Granted 5.00 SIF to {name} ({name}); `balance` shows it.\n{name}", name=name)
    assert [p for p in parts if not isinstance(p, Text)] == [Code("balance")]
    check_slack(dm(*parts), name)
    assert "`balance`" in slack.mrkdwn(parts)
    check_slack(dm(Text(name)), name)
    table = Table(("member", "balance"), ((name, "5.00 SIF"),))
    check_slack(dm(Strong("Balances"), Text(":\n"), table), name)
    (note,) = slack.closed_blocks([], name)[0]["elements"]
    assert_literal_mrkdwn(note["text"], f"✓ {name}")


@pytest.mark.parametrize("name", NAMES)
def test_a_button_label_is_plain_text(name: str) -> None:
    message = dm(
        Text(f"Pick one, {name}."), Actions((Button(name, "accept R-1"), Button("No", "2")))
    )
    check_slack(message, name)
    (actions,) = [b for b in slack.blocks(message) if b["type"] == "actions"]
    first, second = actions["elements"]
    assert first["text"] == {"type": "plain_text", "text": name}
    assert first["value"] == "accept R-1" and first["style"] == "primary"
    assert second["value"] == "2" and "style" not in second


def test_word_inner_marks_and_links_are_left_alone() -> None:
    text = "snake_case a*b http://x.org/a_b"
    assert slack.mrkdwn((Text(text),)) == text
    assert slack.mrkdwn((Text("a`b"),)) == f"a{ZWSP}`{ZWSP}b"  # a backtick always is


def test_only_the_core_parts_are_formatted() -> None:
    parts = (
        Text("*Hi* "),
        Strong("Balance"),
        Text(" `help` <!channel> &amp;\n> quoted "),
        Code("edit <question>"),
        Text(" _it_ ~strike~"),
    )
    rendered = slack.mrkdwn(parts)
    assert_literal_mrkdwn(rendered, render_plain(parts), parts)
    assert "*Balance*" in rendered and "`edit &lt;question&gt;`" in rendered
    assert sorted(set(formatting_spans(rendered))) == sorted(set(core_spans(parts)))


@given(st.text(), st.text())
def test_any_text_around_core_parts_shows_literally(before: str, after: str) -> None:
    parts = (Text(before), Text(" "), Code("balance"), Text(" · "), Strong("Held"), Text(" "))
    parts += (Text(after),)
    for rendered in (slack.mrkdwn(parts), slack.fallback_text(dm(*parts))):
        assert_literal_mrkdwn(rendered, render_plain(parts), parts)


@given(st.text())
def test_any_text_shows_literally(text: str) -> None:
    assert_literal_mrkdwn(slack.mrkdwn((Text(text),)), text)
    table = Table(("member",), ((text,),))
    pre = slack.mrkdwn((table,))
    assert pre.startswith("```") and pre.endswith("```")
    assert pre[3:-3].count("`") == pre[3:-3].count(f"{ZWSP}`{ZWSP}")
    assert "<" not in pre and ">" not in pre


async def test_the_core_markup_stays_formatted(app: App) -> None:
    messages = await ask(app, "staff", "help")
    messages += await ask(app, "staff", "intake")
    rendered = [slack.mrkdwn(m.parts) for m in messages]
    assert "*Your ideas*" in rendered[0] and "`intake`" in rendered[0]
    # a help answer has its commands as code
    codes = {p.text for p in messages[0].parts if isinstance(p, Code)}
    assert {"intake", "help <command>"} <= codes
    assert any(code.startswith("balance") for code in codes), codes
    assert Strong("Your ideas") in messages[0].parts
    assert "`back`" in rendered[1] and "`edit &lt;question&gt;`" in "".join(rendered)
    home_parts = await app.bot.home("console", "staff")
    home = slack.mrkdwn(home_parts)
    assert "*Balance*" in home and "*Open offers*" in home
    for parts, text in [
        *((m.parts, r) for m, r in zip(messages, rendered, strict=True)),
        (home_parts, home),
    ]:
        assert f"{ZWSP}`" not in text and f"{ZWSP}*" not in text, text
        assert_literal_mrkdwn(text, render_plain(parts), parts)


def test_the_checks_catch_what_plain_escaping_lets_through() -> None:
    """Escaping &, < and > alone (the adapter before) leaves people's * _ ~ ` formatting."""
    for name in ("*bold*", "_it_", "~strike~", "`code`"):
        parts = (Text(f"Hi {name}!"),)
        spans = formatting_spans(slack.escape(f"Hi {name}!"))
        assert spans and spans[0] not in core_spans(parts)
        assert formatting_spans(slack.mrkdwn(parts)) == []
    # and the same word as the core's own part is formatted
    assert (
        formatting_spans(slack.mrkdwn((Text("Hi "), Strong("bold"), Text("!"))))
        == [("*", "bold")] * 2
    )
