"""What people typed shows literally on Matrix: in `formatted_body` every string that came
from a person is HTML-escaped and never turned into <b> or <code>, the core's own `code`
and *headings* are, and the plain `body` is the core's text unchanged.

The same members with hostile names as in the Slack test use the real core
(`Bot.handle`); every answer is rendered by `adapters.matrix.translate.content`.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser

import pytest

from adapters.matrix import translate as matrix
from bot import markup
from bot.bootstrap import App
from bot.messages import Button, Delivery, Outbound, Table, render_table
from tests.adapters.slack.test_escaping import NAMES, naming, outbounds_naming, say

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


def check_matrix(message: Outbound, name: str) -> None:
    content = matrix.content(message)
    body, formatted = content["body"], content["formatted_body"]
    assert body.startswith(message.text)  # the plain body is the core's text (and a hint)
    reader = read(formatted)
    assert set(reader.tags) <= ALLOWED_TAGS, reader.tags
    for tag, inside in reader.marked:  # only the core's markup is marked up
        assert markup.is_heading(inside) if tag == "b" else markup.is_code(inside), inside
    assert html.escape(name) in formatted
    if message.table is None:
        assert "".join(reader.text) == body  # nothing lost, nothing added
    else:
        cells = read(formatted.partition("<table>")[2]).text
        assert name in cells


@pytest.mark.parametrize("name", NAMES)
async def test_a_member_name_shows_literally_on_matrix(app: App, name: str) -> None:
    for message in naming(await outbounds_naming(app, name), name):
        check_matrix(message, name)


@pytest.mark.parametrize("name", NAMES)
def test_names_in_a_sentence_a_table_and_a_hint(name: str) -> None:
    text = f"Granted 5.00 SIF to {name} ({name}); `balance` shows it.\n{name}"
    check_matrix(Outbound("matrix", Delivery.DM, "@a:x", text), name)
    table = Table(("member", "balance"), ((name, "5.00 SIF"),))
    text = f"Balances:\n{render_table(table)}"
    check_matrix(Outbound("matrix", Delivery.DM, "@a:x", text, None, table), name)
    buttons = (Button("1", "1"), Button(name, "2"))
    message = Outbound("matrix", Delivery.DM, "@a:x", f"Pick one, {name}.", buttons=buttons)
    content = matrix.content(message)
    assert content["formatted_body"].endswith("Reply with: <code>1</code>, <code>2</code>")
    assert content["body"] == f"Pick one, {name}.\nReply with: `1`, `2`"


def test_the_old_rendering_would_have_been_caught() -> None:
    """Plain html.escape plus markdown-ish marks turned people's *text* bold."""
    assert (
        "<b>"
        not in matrix.content(Outbound("matrix", Delivery.DM, "@a:x", "Hi *bold*!"))[
            "formatted_body"
        ]
    )
    assert read("Hi <b>bold</b>!").marked == [("b", "bold")]
    assert not markup.is_heading("bold")


async def test_the_core_markup_stays_formatted(app: App) -> None:
    (help_,) = await say(app, "staff", "help")
    formatted = matrix.content(help_)["formatted_body"]
    assert "<b>Your ideas</b>" in formatted and "<code>intake</code>" in formatted
    for message in [help_, *await say(app, "staff", "intake")]:
        formatted = matrix.content(message)["formatted_body"]
        assert "`" not in formatted and "*" not in formatted, formatted
