"""Forgetting a person (SPEC §13) as pure rules: the names that stand in for them, which
words of a text name them, the text with those words replaced, and the salted digest
that is all that is kept of a forgotten chat identity."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping

from bot.domain.ids import MemberId

# What a forgotten member's idea titles read afterwards (their answers are emptied).
REMOVED = "(removed on request)"
# Shorter words are not looked for in other texts: one letter would match everywhere.
SHORTEST_WORD = 2


def placeholder(member: MemberId) -> str:
    """The name a forgotten member's ledger entries and mentions carry afterwards."""
    return f"former member {member}"


def merged_placeholder(member: MemberId) -> str:
    """The name a member joined into another (staff's `merge`) keeps for its old entries:
    no person's name, so forgetting the person later leaves nothing of them in it."""
    return f"merged member {member}"


def words_to_find(words: Iterable[str]) -> list[str]:
    """The words worth looking for, longest first (a full name before a part of it)."""
    found = {w.strip() for w in words if len(w.strip()) >= SHORTEST_WORD}
    return sorted(found, key=lambda w: (-len(w), w))


def _word(word: str) -> str:
    # A whole word: no letter, digit or underscore right before or after it.
    return rf"(?<!\w){re.escape(word)}(?!\w)"


def mentions(text: str, words: Iterable[str]) -> bool:
    """Whether `text` holds one of `words` as a whole word, in any case."""
    usable = words_to_find(words)
    if not usable or not text:
        return False
    return re.search("|".join(_word(w) for w in usable), text, re.IGNORECASE) is not None


def redact(text: str, replacements: Mapping[str, str]) -> str:
    """`text` with every whole-word occurrence (any case) of a key replaced by its value,
    in one pass: a value put in is never searched again."""
    words = words_to_find(replacements)
    if not words or not text:
        return text
    values = {k.strip(): v for k, v in replacements.items()}
    by_case = {w.casefold(): values[w] for w in words}

    def value(match: re.Match[str]) -> str:
        found = match.group(0)
        if found.casefold() in by_case:
            return by_case[found.casefold()]
        # case folding and the regex's IGNORECASE differ on a few letters: ask the regex
        word = next(w for w in words if re.fullmatch(re.escape(w), found, re.IGNORECASE))
        return values[word]

    return re.sub("|".join(_word(w) for w in words), value, text, flags=re.IGNORECASE)


def identity_digest(salt: str, platform: str, external_id: str) -> str:
    """The salted SHA-256 (64 hex digits) kept of a forgotten identity: enough to know
    it again, not to tell whose it was without the community's salt."""
    material = "\x00".join((salt, platform, external_id)).encode("utf-8")
    return hashlib.sha256(material).hexdigest()
