"""What people typed shows literally on Matrix: in `formatted_body` every plain `Text`
part (people's words always are) is HTML-escaped and never turned into <b> or <code>,
exactly the core's own `Code` and `Strong` parts are, tables are HTML tables with escaped
cells, and the plain `body` is the core's plain rendering unchanged.

The same members with hostile names as in the Slack test use the real core
(`Bot.handle`); every answer is rendered by `adapters.matrix.translate.content`.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.matrix import translate as matrix
from bot.bootstrap import App
from bot.messages import (
    Actions,
    Button,
    Code,
    Delivery,
    Outbound,
    Part,
    Strong,
    Table,
    Text,
    render_plain,
    say,
)
from tests.adapters.slack.test_escaping import NAMES, ask, naming, outbounds_naming

ALLOWED_TAGS = {"br", "b", "code", "table", "thead", "tbody", "tr", "th", "td"}


class Reader(HTMLParser):
    """Reads formatted_body back: the text with the core's marks put back (`code`,
    *bold*, newlines), the tags used, and what was inside <b> and <code>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.tags: list[str] = []
        self.open: list[str] = []
        self.marked: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        assert not attrs, (tag, attrs)
        if tag == "br":
            self.text.append("\n")
        elif tag in ("b", "code"):
            self.open.append(tag)
            self.marked.append((tag, ""))
            self.text.append("*" if tag == "b" else "`")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("b", "code"):
            assert self.open.pop() == tag
            self.text.append("*" if tag == "b" else "`")

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.open:
            tag, before = self.marked[-1]
            self.marked[-1] = (tag, before + data)


def read(formatted: str) -> Reader:
    reader = Reader()
    reader.feed(formatted)
    reader.close()
    return reader


def core_marks(message: Outbound, hinted: bool) -> list[tuple[str, str]]:
    """What may be marked up, in order: the Code and Strong parts, and the actions of a
    "Reply with" hint (the bot's own commands)."""
    marks = [
        ("code" if isinstance(p, Code) else "b", p.text)
        for p in message.parts
        if isinstance(p, Code | Strong)
    ]
    if hinted and matrix.hint(message).startswith("Reply with: "):
        marks += [("code", b.action) for b in message.buttons]
    return marks


def check_matrix(message: Outbound, name: str) -> None:
    content = matrix.content(message)
    body = content["body"]
    assert body.startswith(message.text)  # the plain body is the core's text (and a hint)
    if "formatted_body" not in content:
        # Nothing to mark up: the plain body alone, which clients show as it is.
        assert "format" not in content and message.table is None
        assert core_marks(message, body != message.text) == []
        assert name in body
        return
    formatted = content["formatted_body"]
    assert content["format"] == "org.matrix.custom.html"
    reader = read(formatted)
    assert set(reader.tags) <= ALLOWED_TAGS, reader.tags
    # exactly the core's markup is marked up
    assert reader.marked == core_marks(message, body != message.text), formatted
    assert html.escape(name) in formatted
    if message.table is None:
        assert "".join(reader.text) == body  # nothing lost, nothing added
    else:
        table = formatted.partition("<table>")[2].partition("</table>")[0]
        assert name in read(table).text
        assert "<b>" not in table and "<code>" not in table


def dm(*parts: Part) -> Outbound:
    return Outbound("matrix", Delivery.DM, "@a:x", "test", parts)


@pytest.mark.parametrize("name", NAMES)
async def test_a_member_name_shows_literally_on_matrix(app: App, name: str) -> None:
    for message in naming(await outbounds_naming(app, name), name):
        check_matrix(message, name)


@pytest.mark.parametrize("name", NAMES)
def test_names_in_a_sentence_a_table_and_a_hint(name: str) -> None:
    parts = say("Granted 5.00 SIF to {name} ({name}); `balance` shows it.\n{name}", name=name)
    check_matrix(dm(*parts), name)
    assert "<code>balance</code>" in matrix.content(dm(*parts))["formatted_body"]
    check_matrix(dm(Text(name)), name)
    table = Table(("member", "balance"), ((name, "5.00 SIF"),))
    message = dm(Strong("Balances"), Text(":\n"), table)
    check_matrix(message, name)
    cell = f"<td>{html.escape(name)}</td>"
    assert cell in matrix.content(message)["formatted_body"]
    buttons = (Button("1", "1"), Button(name, "2"))
    message = dm(Text(f"Pick one, {name}."), Actions(buttons))
    check_matrix(message, name)
    content = matrix.content(message)
    assert content["formatted_body"].endswith("Reply with: <code>1</code>, <code>2</code>")
    assert content["body"] == f"Pick one, {name}.\nReply with: `1`, `2`"
    assert content[matrix.ACTIONS_KEY] == ["1", "2"]
    offer = dm(
        Text(f"{name} asks you."),
        Actions((Button("Accept", "accept R-7"), Button(name, "decline R-7"))),
    )
    check_matrix(offer, name)
    content = matrix.content(offer)
    assert content["body"].endswith("React ✅ to accept or ❌ to decline.")
    assert content[matrix.ACTIONS_KEY] == ["accept R-7", "decline R-7"]


def test_the_old_rendering_would_have_been_caught() -> None:
    """Plain html.escape plus markdown-ish marks turned people's *text* bold."""
    plain = matrix.content(dm(Text("Hi *bold*!")))
    assert "formatted_body" not in plain and plain["body"] == "Hi *bold*!"
    assert read("Hi <b>bold</b>!").marked == [("b", "bold")]
    assert core_marks(dm(Text("Hi *bold*!")), False) == []
    # the core's own Strong part is what makes it bold
    strong = dm(Text("Hi "), Strong("bold"), Text("!"))
    assert matrix.content(strong)["formatted_body"] == "Hi <b>bold</b>!"
    assert read("Hi <b>bold</b>!").marked == core_marks(strong, False)


def test_only_the_core_parts_are_marked_up() -> None:
    message = dm(
        Text("*Hi* <b>x</b> "),
        Strong("Balance <i>"),
        Text(" `help` <!channel> &amp;\n> quoted "),
        Code("edit <question>"),
    )
    formatted = matrix.content(message)["formatted_body"]
    assert "<b>Balance &lt;i&gt;</b>" in formatted
    assert "<code>edit &lt;question&gt;</code>" in formatted
    assert "&lt;b&gt;x&lt;/b&gt;" in formatted and "&amp;amp;" in formatted
    check_matrix(message, "<b>x</b>")


@given(st.text())
def test_plain_text_goes_without_html_and_anything_else_with_it(text: str) -> None:
    """HTML only when it marks something up: a message of plain text (with its line
    breaks) is its body alone, whatever it holds; one with a mark of the core has both."""
    content = matrix.content(dm(Text(text)))
    assert content["body"] == text
    assert "formatted_body" not in content and "format" not in content
    assert content["m.mentions"] == {}
    marked = matrix.content(dm(Text(text), Strong("Held")))
    assert read(marked["formatted_body"]).marked == [("b", "Held")]


@given(st.text())
def test_any_text_shows_literally(text: str) -> None:
    message = dm(Text(text), Text(" "), Code("balance"), Text(" "), Strong("Held"))
    content = matrix.content(message)
    reader = read(content["formatted_body"])
    assert set(reader.tags) <= {"br", "b", "code"}
    assert reader.marked == [("code", "balance"), ("b", "Held")]
    assert content["body"] == render_plain(message.parts) == f"{text} `balance` *Held*"
    assert "".join(reader.text) == content["body"]


async def test_the_core_markup_stays_formatted(app: App) -> None:
    (help_,) = await ask(app, "staff", "help")
    formatted = matrix.content(help_)["formatted_body"]
    assert "<b>Your ideas</b>" in formatted and "<code>intake</code>" in formatted
    # a help answer has its commands as code
    codes = [inside for tag, inside in read(formatted).marked if tag == "code"]
    assert "intake" in codes and "help <command>" in codes
    for message in [help_, *await ask(app, "staff", "intake")]:
        formatted = matrix.content(message)["formatted_body"]
        assert "`" not in formatted and "*" not in formatted, formatted
        assert read(formatted).marked == core_marks(message, False)
    home = dm(*await app.bot.home("console", "staff"))
    formatted = matrix.content(home)["formatted_body"]
    assert "<b>Balance</b>" in formatted and "<b>Open offers</b>" in formatted
    assert read(formatted).marked == core_marks(home, False)


def test_bot_messages_mention_nobody() -> None:
    """A name like "@room" or "@ann:example.org" in a message must not ping anyone."""
    text = "Welcome @room and @ann:example.org, from @everyone"
    for message in (
        Outbound("matrix", Delivery.CHANNEL, "!r:x", "test", (Text(text),)),
        Outbound("matrix", Delivery.DM, "@a:x", "offer", say("`accept R-1` {who}", who=text)),
    ):
        assert matrix.content(message)["m.mentions"] == {}
