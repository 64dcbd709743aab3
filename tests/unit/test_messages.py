"""Typed message parts: templates keep the core's marks, values are always plain text."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.messages import (
    Actions,
    Button,
    Code,
    Delivery,
    File,
    Outbound,
    Part,
    Parts,
    Strong,
    Table,
    Text,
    join,
    plain,
    render_plain,
    render_table,
    say,
    split_parts,
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


# -- splitting a message that is too long --------------------------------------------------

SPACE = re.compile(r"[^\S\u00a0\u2007\u202f]*")  # whitespace a line may break at


def rejoined(original: str, chunks: list[Parts]) -> list[str]:
    """Check that the parts' plain texts, in order, are the original text with only
    whitespace between them; returns the whitespace found at each split."""
    if len(chunks) == 1 and render_plain(chunks[0]) == original:
        return []  # it fitted
    at, gaps = 0, []
    for i, chunk in enumerate(chunks):
        text = render_plain(chunk)
        gap = SPACE.match(original, at)
        assert gap is not None and not SPACE.match(text).group()  # none starts with a gap
        if i:
            gaps.append(gap.group())
        at = gap.end()
        assert original.startswith(text, at), (original[at : at + 40], text[:40])
        at += len(text)
    assert original[at:].strip() == ""
    return gaps


def test_a_message_that_fits_is_returned_unchanged() -> None:
    parts = (Strong("Hi"), Text(" there"), Actions((Button("Go", "go"),)), File("a.csv", b"x"))
    assert split_parts(parts, 10) == [parts]
    assert split_parts((), 10) == [()]
    with pytest.raises(ValueError):
        split_parts(parts, 2)


def test_a_split_falls_between_paragraphs_then_lines_then_words() -> None:
    text = "one two three\nfour five\n\nsix seven eight nine"
    assert [render_plain(c) for c in split_parts(plain(text), 30)] == [
        "one two three\nfour five",
        "six seven eight nine",
    ]
    lines = "one two three\nfour five six seven"
    assert [render_plain(c) for c in split_parts(plain(lines), 20)] == [
        "one two three",
        "four five six seven",
    ]
    words = "one two three four five six"
    assert [render_plain(c) for c in split_parts(plain(words), 10)] == [
        "one two",
        "three four",
        "five six",
    ]


def test_a_split_never_falls_inside_a_word_or_a_span() -> None:
    parts = (Text("see "), Code("done R-12 3"), Text(" and "), Strong("Balance now"), Text(" x"))
    chunks = split_parts(parts, 15)
    assert chunks == [
        (Text("see"),),
        (Code("done R-12 3"),),
        (Text("and"),),
        (Strong("Balance now"), Text(" x")),
    ]
    # a word glued to a span goes with it while they fit together
    glued = (Text("ab "), Text("run:"), Code("help"), Text(". more words here"))
    assert [render_plain(c) for c in split_parts(glued, 12)] == [
        "ab",
        "run:`help`.",
        "more words",
        "here",
    ]


def test_a_non_breaking_space_is_not_a_place_to_split() -> None:
    text = "pay 2.00\u00a0SIF now"
    assert [render_plain(c) for c in split_parts(plain(text), 9)] == ["pay", "2.00\u00a0SIF", "now"]


def test_only_a_word_longer_than_a_part_is_cut() -> None:
    word = "x" * 25
    chunks = split_parts(plain(f"a {word} b"), 10)
    assert [render_plain(c) for c in chunks] == ["a", "x" * 10, "x" * 10, "x" * 5 + " b"]
    # a span longer than a part goes on in a second span of the same kind
    spans = [(Code("abc "),), (Code("def "),), (Code("ghi"),)]
    assert split_parts((Code("abc def ghi"),), 8) == spans


def test_a_long_table_is_split_into_whole_tables_with_their_headers() -> None:
    rows = tuple((f"member {i}", f"{i}.00 SIF") for i in range(200))
    table = Table(("member", "balance"), rows)
    parts = (Strong("Balances"), Text("\n"), table, Text("\nThat is all."))
    chunks = split_parts(parts, 500)
    assert all(len(render_plain(c)) <= 500 for c in chunks)
    tables = [p for c in chunks for p in c if isinstance(p, Table)]
    assert len(tables) == len(chunks) > 1
    assert all(t.headers == ("member", "balance") for t in tables)
    assert tuple(r for t in tables for r in t.rows) == rows
    # the heading stays with the first rows; the text after the table ends the last part
    assert chunks[0][:2] == (Strong("Balances"), Text("\n"))
    assert chunks[-1][-1] == Text("\nThat is all.")


def test_a_table_that_fits_in_a_part_of_its_own_is_not_split() -> None:
    table = Table(("idea", "title"), tuple((f"I-{i}", "Repair café") for i in range(5)))
    size = len(render_table(table))
    parts = (Text("x" * 50 + "\n"), table)
    assert split_parts(parts, size + 10) == [(Text("x" * 50),), (table,)]


def test_a_table_too_wide_for_a_part_is_written_out_as_text() -> None:
    table = Table(("name", "bio"), (("ann", "a long biography " * 3), ("bob", "short")))
    chunks = split_parts((table,), 40)
    assert all(len(render_plain(c)) <= 40 for c in chunks)
    assert all(isinstance(p, Text) for p in chunks[0])  # the first row, as text
    assert chunks[-1] == (Table(("name", "bio"), (("bob", "short"),)),)


def test_buttons_and_files_go_with_the_last_part() -> None:
    actions, file = Actions((Button("Accept", "accept R-1"),)), File("x.csv", b"a")
    parts = (Text("word " * 30), actions, Text("end"), file)
    chunks = split_parts(parts, 40)
    assert chunks[-1][-2:] == (actions, file)
    assert all(not isinstance(p, Actions | File) for c in chunks[:-1] for p in c)
    assert all(len(render_plain(c)) <= 40 for c in chunks)


WORDS = st.text(st.sampled_from("abcxyz&<>*_`é"), min_size=1, max_size=12)
GAPS = st.sampled_from([" ", "  ", "\n", "\n\n", " \n ", "\t", "\u00a0"])
TEXTS = st.lists(st.tuples(WORDS, GAPS), min_size=1, max_size=40).map(
    lambda pairs: Text("".join(w + g for w, g in pairs))
)
SPANS = st.builds(Code, WORDS) | st.builds(Strong, WORDS)
INLINE = st.lists(TEXTS | SPANS | GAPS.map(Text), min_size=1, max_size=12)


def glued_run(text: str, at: int) -> int:
    """The length of the run of non-whitespace around position `at` (a split there)."""
    start, end = at, at
    while start > 0 and not SPACE.fullmatch(text[start - 1]):
        start -= 1
    while end < len(text) and not SPACE.fullmatch(text[end]):
        end += 1
    return end - start


@settings(max_examples=300, deadline=None)
@given(INLINE, st.integers(14, 120))  # every span fits in a part
def test_parts_rejoin_to_the_message_and_split_only_at_whitespace(
    parts: list[Part], max_chars: int
) -> None:
    original = render_plain(parts)
    chunks = split_parts(tuple(parts), max_chars)
    assert all(len(render_plain(c)) <= max_chars for c in chunks)
    assert all(render_plain(c) for c in chunks)  # none is empty
    gaps = rejoined(original, chunks)
    # spans are never cut (all are shorter than a part here)
    spans = [p for p in parts if isinstance(p, Code | Strong)]
    assert [p for c in chunks for p in c if isinstance(p, Code | Strong)] == spans
    # a split without whitespace only where a glued run is longer than a part
    at = 0
    for chunk, gap in zip(chunks, [*gaps, None], strict=True):
        at = original.index(render_plain(chunk), at) + len(render_plain(chunk))
        if gap == "":
            assert glued_run(original, at) > max_chars
        elif gap is not None:
            assert gap.strip() == "" and "\u00a0" not in gap


CELLS = st.text(st.sampled_from("abc &*"), max_size=10)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(CELLS, CELLS), max_size=60),
    st.integers(70, 400),  # the headers and any one row fit (see the test above)
    st.sampled_from(["", "Heading\n", "Some words before it. "]),
)
def test_table_rows_are_kept_in_order_in_parts_that_fit(
    rows: list[tuple[str, str]], max_chars: int, before: str
) -> None:
    table = Table(("member", "balance"), tuple(rows))
    chunks = split_parts((Text(before), table, Text(" after")), max_chars)
    assert all(len(render_plain(c)) <= max_chars for c in chunks)
    tables = [p for c in chunks for p in c if isinstance(p, Table)]
    assert all(t.headers == table.headers for t in tables)
    assert tuple(r for t in tables for r in t.rows) == table.rows


def test_a_message_of_only_whitespace_longer_than_a_part_is_one_empty_part() -> None:
    button = Actions((Button("Help", "help"),))
    assert split_parts((Text(" " * 70_000),), 1_000) == [()]
    assert split_parts((Text("\n" * 5_000), button), 1_000) == [(button,)]
