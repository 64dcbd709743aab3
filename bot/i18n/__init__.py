"""How the bot writes numbers of things and people's words into its sentences.

One place for the small rules every message follows: "1 member" but "2 members", and a
person's text that ends a sentence gets a full stop only when it has none of its own
("…: still there?" rather than "…: still there?."). English only for now; when the
messages move to gettext catalogs (SPEC §11), `plural` becomes `ngettext` with the
locale's CLDR plural rules, and its callers stay as they are.
"""

from __future__ import annotations

_ENDS_SENTENCE = (".", "!", "?", "…", ":", ";")


def plural(count: float, one: str, other: str | None = None, *, grouping: bool = True) -> str:
    """`count` and the noun that fits it: plural(1, "member") is "1 member", plural(3,
    "member") "3 members", plural(2, "person", "people") "2 people". Whole numbers get
    thousands separators (1,204 rows) unless `grouping` is off (a table of plain numbers);
    others show as they are (1.5 days)."""
    word = one if count == 1 else (other if other is not None else f"{one}s")
    if isinstance(count, int):
        shown = f"{count:,}" if grouping else str(count)
    else:
        shown = f"{count:g}"
    return f"{shown} {word}"


def sentence(text: str) -> str:
    """A person's words as the end of a sentence: a full stop is added unless the text
    already ends with one (or with ?, !, …, : or ;)."""
    words = text.rstrip()
    return words if not words or words.endswith(_ENDS_SENTENCE) else f"{words}."
