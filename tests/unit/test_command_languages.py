"""Commands in other languages: aliases read in any language, the English names always,
and the domain's errors said in the reader's language (bot.i18n.explain)."""

from __future__ import annotations

import pytest

from bot.commands import (
    Balance,
    Help,
    History,
    LanguageChoice,
    ParseError,
    aliases_for,
    longest_text,
    parse,
    suggest,
)
from bot.commands.catalogue import ALIASES, COMMANDS
from bot.commands.parser import is_help_topic
from bot.domain.ledger import AmountError, LedgerError, parse_amount
from bot.i18n import LANGUAGES, explain, speaking


@pytest.mark.parametrize("code", LANGUAGES)
def test_an_alias_of_any_language_works_whatever_the_language(code: str) -> None:
    with speaking(code):
        assert parse("saldo") == Balance()
        assert parse("Kontostand") == Balance()
        assert parse("solde @ann").member is not None
        assert parse("hulp") == Help() and parse("Hilfe?") == Help() and parse("aide !") == Help()
        assert parse("taal nl") == LanguageChoice("nl")
        assert parse("langue") == LanguageChoice() and parse("sprache de") == LanguageChoice("de")
        # the English names always work
        assert parse("balance") == Balance() and parse("history") == History()


def test_help_about_an_alias_is_help_about_its_command() -> None:
    assert parse("help saldo") == Help("balance")
    assert parse("hilfe kontostand") == Help("balance")
    assert parse("help for refugees") == Help("for refugees")
    assert is_help_topic("saldo") and is_help_topic("balance")
    assert not is_help_topic("voor vluchtelingen")


def test_an_alias_with_a_mistake_is_told_the_command_by_its_english_name() -> None:
    with pytest.raises(ParseError, match=r"I did not expect 'x' after `balance`"):
        parse("saldo x")
    assert suggest("kontostnd") == "balance"
    assert suggest("balanse") == "balance"
    assert suggest("one") is None


def test_each_language_lists_its_own_aliases() -> None:
    assert aliases_for("nl") == {"saldo": "balance", "hulp": "help", "taal": "language"}
    assert aliases_for("fr-BE") == ALIASES["fr"]
    assert aliases_for("en") == {} and aliases_for(None) == {} and aliases_for("xx") == {}
    words = {name.split()[0] for name in COMMANDS}
    for table in ALIASES.values():
        assert set(table.values()) <= words and not set(table) & words


def test_the_longest_text_of_an_alias_is_its_commands() -> None:
    assert longest_text("saldo") == longest_text("balance") == 0
    assert longest_text("done R-1 1 text") == 12_000


def test_a_ledger_error_keeps_its_template_and_values() -> None:
    with pytest.raises(AmountError) as refused:
        parse_amount("99999999")
    error = refused.value
    assert error.template == "'{shown}' is too big; the most is {most} SIF."
    assert error.values == {"shown": "99999999", "most": 1_000_000}
    assert str(error) == "'99999999' is too big; the most is 1,000,000 SIF."
    assert explain(error) == str(error)  # in English
    with speaking("nl"):
        assert "1.000.000" in explain(error)
    with speaking("de"):
        assert "1.000.000" in explain(error)
    # a template whose values hold braces is filled once, never read again
    odd = AmountError("'{text}' must be a positive amount.", text="{most}")
    assert str(odd) == explain(odd) == "'{most}' must be a positive amount."
    assert explain(ValueError("plain")) == "plain"
    assert str(LedgerError("A transaction must sum to zero.")) == "A transaction must sum to zero."


def test_an_amount_refused_by_the_parser_is_said_in_the_readers_language() -> None:
    with pytest.raises(ParseError) as english:
        parse("grant @ann 99999999 welcome")
    assert "1,000,000 SIF" in str(english.value)
    with speaking("fr"), pytest.raises(ParseError) as french:
        parse("grant @ann 99999999 welcome")
    assert "1\u202f000\u202f000 SIF" in str(french.value)
