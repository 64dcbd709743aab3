"""Typed message parts: templates keep the core's marks, values are always plain text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.messages import (
    Actions,
    Button,
    Code,
    Delivery,
    File,
    Outbound,
    Strong,
    Table,
    Text,
    join,
    plain,
    render_plain,
    render_table,
    say,
)


def test_a_template_marks_code_and_strong_and_fills_values_in() -> None:
    parts = say("*Balance* {amount} · `thanks {ref}` pays it.", amount="2.00 SIF", ref="R-1")
    assert parts == (
        Strong("Balance"),
        Text(" 2.00 SIF · "),
        Code("thanks R-1"),
        Text(" pays it."),
    )


@given(st.text())
def test_a_value_is_never_read_for_marks(value: str) -> None:
    parts = say("Saved as I-1: {title}.", title=value)
    assert all(isinstance(p, Text) for p in parts)
    assert render_plain(parts) == f"Saved as I-1: {value}."


def test_people_who_type_marks_see_them_as_typed() -> None:
    title = "`help` *now* {braces}"
    parts = say("You accepted {title}; `done R-1 <hours>` delivers it.", title=title)
    assert parts[0] == Text(f"You accepted {title}; ")
    assert parts[1] == Code("done R-1 <hours>")
    assert plain(title) == (Text(title),)


def test_format_specs_and_literal_braces() -> None:
    parts = say("{hours:g} h, {{not a field}}", hours=1.50)
    assert render_plain(parts) == "1.5 h, {not a field}"


def test_join_puts_a_plain_separator_between_parts() -> None:
    joined = join("\n", [say("`a`"), plain("b"), ()])
    assert joined == (Code("a"), Text("\n"), Text("b"), Text("\n"))


def test_an_outbound_renders_its_parts_as_the_plain_text() -> None:
    table = Table(("member", "balance"), (("ann", "5.00 SIF"),))
    buttons = (Button("Accept", "accept R-1"),)
    message = Outbound(
        "console",
        Delivery.DM,
        "ann",
        "offer",
        (
            *say("*Staff*\n"),
            table,
            Text("\n"),
            Actions(buttons),
            File("x.csv", b"a"),
        ),
        subject="R-1",
    )
    assert message.text == f"*Staff*\n{render_table(table)}\n"
    assert message.table == table and message.buttons == buttons
    assert message.file == File("x.csv", b"a")
    assert (message.topic, message.subject) == ("offer", "R-1")
