"""The pure rules of forgetting: whole-word mentions, one-pass replacement, salted digests."""

from __future__ import annotations

from bot.domain.privacy import identity_digest, mentions, redact


def test_mentions_are_whole_words_in_any_case() -> None:
    assert mentions("thanks, Ann!", ["ann"])
    assert mentions("<@U02> helped", ["U02"])
    assert not mentions("annual report by joanne", ["ann"])
    assert not mentions("a b c", ["a"])  # one letter is never looked for
    assert not mentions("", ["ann"]) and not mentions("ann", [])


def test_redact_replaces_each_word_once_and_longest_first() -> None:
    words = {"ann": "former member 3", "Repair café": "(removed on request)", "member": "x"}
    assert redact("Repair café by ANN, a member", words) == (
        "(removed on request) by former member 3, a x"  # "member" in a value stays
    )
    assert redact("nothing here", words) == "nothing here"
    assert redact(r"ann\1", {"ann": r"\g<0>"}) == r"\g<0>\1"  # values go in as they are


def test_a_digest_depends_on_the_salt_and_the_whole_identity() -> None:
    digest = identity_digest("salt", "slack", "T1:U2")
    assert len(digest) == 64 and digest == identity_digest("salt", "slack", "T1:U2")
    assert digest != identity_digest("other", "slack", "T1:U2")
    assert digest != identity_digest("salt", "matrix", "T1:U2")
    assert identity_digest("s", "a", "bc") != identity_digest("s", "ab", "c")
