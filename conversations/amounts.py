"""Reading an amount of money: one amount or a range, with an optional currency.

People write a development cost in many ways (``5000 EUR``, ``€5,000``, ``10-20k euro``,
``between 5000 and 8000``, ``up to 3m``); :func:`read_amount` turns such a text into
(low, high, currency) or says why it is not an amount, and :func:`format_amount` shows a
stored amount again. A part of reading answers (:mod:`conversations.answers`) kept on its
own because it is a small language of its own; it knows nothing of questions or flows.
Besides English it reads the common Dutch, French and German words for amounts
("tussen 5000 en 8000", "entre 5000 et 8000", "zwischen 5000 und 8000", "weet niet").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from conversations.i18n import N_, gettext, number

AMOUNT_MAX = (
    10**12
)  # a development cost beyond this is a typo, and would overflow BIGINT-ish columns
AMOUNT_HELP = "like 5000 EUR, 10-20k euro or don't know"  # in each sentence that shows it
CURRENCIES = {
    "€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR",
    "$": "USD", "usd": "USD", "dollar": "USD", "dollars": "USD",
    "£": "GBP", "gbp": "GBP", "pound": "GBP", "pounds": "GBP",
    "chf": "CHF", "sek": "SEK", "nok": "NOK", "dkk": "DKK", "pln": "PLN", "czk": "CZK",
    "huf": "HUF", "ron": "RON", "bgn": "BGN", "cad": "CAD", "aud": "AUD", "jpy": "JPY",
}  # fmt: skip
# What "don't know" looks like once folded by conversations.answers.match_key.
# (Dutch, French and German too: "weiß" folds to "weiss".)
DONT_KNOW = frozenset(
    {"dont know", "do not know", "dont know yet", "do not know yet", "unknown", "no idea",
     "not sure", "not known", "not known yet", "idk", "n a", "na", "weet niet", "no clue",
     "weet ik niet", "weet ik nog niet", "weet het niet", "weet het nog niet", "geen idee",
     "onbekend", "nog onbekend", "nog niet bekend",
     "je ne sais pas", "je ne sais pas encore", "ne sais pas", "ne sais pas encore",
     "je sais pas", "sais pas", "aucune idée", "inconnu", "pas encore connu",
     "weiss nicht", "weiss ich nicht", "weiss ich noch nicht", "keine ahnung", "unbekannt",
     "noch unbekannt", "noch nicht bekannt"}
)  # fmt: skip
_MULTIPLIERS = {
    "k": 1_000, "thousand": 1_000, "m": 1_000_000, "mln": 1_000_000, "mio": 1_000_000,
    "million": 1_000_000, "millions": 1_000_000,
    "duizend": 1_000, "mille": 1_000, "tausend": 1_000, "miljoen": 1_000_000,
    "miljoenen": 1_000_000, "millionen": 1_000_000,
}  # fmt: skip
_CONNECTORS = frozenset({"-", "to", "and", "till", "until", "tot", "en", "à", "et", "und", "bis"})
# Before any number these connectors mean "up to": "tot 5000", "bis 5000".
_UP_TO = frozenset({"tot", "bis"})
_FILLERS = frozenset(
    {"between", "about", "around", "approx", "approximately", "roughly", "ca", "circa",
     "estimated", "est", "maybe", "perhaps", "some", "~", "≈", "in", "total",
     "tussen", "ongeveer", "rond", "zowat", "geschat", "misschien", "totaal",
     "entre", "environ", "autour", "de", "estimé",
     "zwischen", "etwa", "ungefähr", "rund", "geschätzt", "vielleicht", "insgesamt"}
)  # fmt: skip
_AT_MOST = re.compile(
    r"\b(up to|at most|less than|no more than|maximum|max|under|below"
    r"|maximaal|hoogstens|minder dan|jusqu['’]à|au plus|moins de|bis zu|höchstens"
    r"|weniger als|unter|maximal)\b"
)
_AT_LEAST = re.compile(
    r"\b(at least|more than|over|above|minimum|min|from"
    r"|minstens|minimaal|meer dan|vanaf|au moins|plus de|à partir de|mindestens|mehr als"
    r"|über|ab)\b"
)
_AMOUNT_TOKEN = re.compile(
    r"(?P<num>[0-9]+(?:[.,'’][0-9]+)*)|(?P<word>[^\W\d_]+)|(?P<sym>[€$£<>+~≈-])"
    r"|(?P<space>\s+)|(?P<punct>[.,;!?()])|(?P<other>.)",
    re.DOTALL,
)

Amount = tuple[int | None, int | None, str | None]  # low, high (None: open), currency


class NotAnAmount(ValueError):
    """Why a text is not an amount: `reason` is a template of the engine's own words in which
    ``{word}`` stands for the part of the text that could not be read (quote it to show it)."""

    def __init__(self, reason: str, word: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.word = word


def _decimal(digits: str) -> float | None:
    """'5,000' / '5.000' / '1.234,5' / '2.5' / "5'000" → a number; thousands separators are
    told apart from decimal ones by position and by a group of exactly three digits."""
    digits = digits.replace("’", "'").replace("'", "")
    seps = [c for c in digits if c in ".,"]
    if not seps:
        whole, frac = digits, ""
    elif len(set(seps)) == 2:
        last = max(digits.rfind("."), digits.rfind(","))
        whole, frac = re.sub(r"[.,]", "", digits[:last]), digits[last + 1 :]
    elif len(seps) > 1:
        whole, frac = re.sub(r"[.,]", "", digits), ""
    else:
        head, _, tail = digits.replace(",", ".").partition(".")
        whole, frac = (head + tail, "") if len(tail) == 3 else (head, tail)
    if len(whole) > 15:
        return None
    return float(f"{whole or '0'}.{frac[:6] or '0'}")


def read_amount(text: str) -> Amount:
    """(low, high, currency) of an amount or a range; NotAnAmount says why the text is none.
    A reversed range ("20-10k") is read as written: the caller refuses it."""
    t = text.casefold().replace("–", "-").replace("—", "-")
    t = re.sub(r"(?<=[0-9])[ \u00a0\u202f](?=[0-9]{3}(?![0-9]))", "", t)  # "5 000"
    t = _AT_MOST.sub("<", t)
    t = _AT_LEAST.sub(">", t)
    numbers: list[list[float]] = []  # [value, multiplier]; multiplier 0 = not given
    currencies: set[str] = set()
    ranged = upper = lower = False
    last_was_number = False
    for match in _AMOUNT_TOKEN.finditer(t):
        kind, tok = match.lastgroup, match.group()
        if kind == "space" or kind == "punct":
            last_was_number = last_was_number and kind == "space"
            continue
        was_number, last_was_number = last_was_number, False
        if kind == "num":
            value = _decimal(tok)
            if value is None:
                raise NotAnAmount(N_("That amount is too large to be a development cost."))
            if len(numbers) == 2:
                raise NotAnAmount(
                    N_(
                        "Please give one amount or a range, like 5000 EUR, 10-20k euro or "
                        "don't know."
                    )
                )
            if len(numbers) == 1 and not ranged:
                raise NotAnAmount(
                    N_(
                        "Please write a range with a dash, like 5000 EUR, 10-20k euro or "
                        "don't know."
                    )
                )
            numbers.append([value, 0])
            last_was_number = True
        elif tok in _MULTIPLIERS and was_number and numbers[-1][1] == 0:
            numbers[-1][1] = _MULTIPLIERS[tok]
        elif tok in CURRENCIES:
            currencies.add(CURRENCIES[tok])
        elif kind == "word" and tok[:1] in "km" and tok[1:] in CURRENCIES and was_number:
            numbers[-1][1] = _MULTIPLIERS[tok[:1]]  # "5keur"
            currencies.add(CURRENCIES[tok[1:]])
        elif tok in _CONNECTORS and len(numbers) == 1 and not ranged:
            ranged = True
        elif tok in _UP_TO and not numbers:
            upper = True
        elif tok == "+" and numbers:
            lower = True  # "5000+"
        elif tok == "<":
            upper = True
        elif tok == ">":
            lower = True
        elif tok in _FILLERS or tok == "+":
            continue
        else:
            raise NotAnAmount(
                N_(
                    "I could not read {word} in an amount; write it like 5000 EUR, "
                    "10-20k euro or don't know."
                ),
                tok,
            )
    if not numbers:
        raise NotAnAmount(N_("Please give an amount, like 5000 EUR, 10-20k euro or don't know."))
    if len(currencies) > 1:
        raise NotAnAmount(N_("Please use one currency for the amount."))
    if ranged and len(numbers) == 1:
        raise NotAnAmount(
            N_(
                "The range is missing its second amount; write it like 5000 EUR, 10-20k euro "
                "or don't know."
            )
        )
    if len(numbers) == 2 and numbers[0][1] == 0:
        # "10-20k" means 10k-20k, so "20-10k" is a reversed range, refused by the caller.
        numbers[0][1] = numbers[1][1]
    amounts = [round(v * (m or 1)) for v, m in numbers]
    if any(a > AMOUNT_MAX for a in amounts):
        raise NotAnAmount(N_("That amount is too large to be a development cost."))
    currency = next(iter(currencies), None)
    if len(amounts) == 2:
        return amounts[0], amounts[1], currency
    if upper and not lower:
        return None, amounts[0], currency
    if lower and not upper:
        return amounts[0], None, currency
    return amounts[0], amounts[0], currency


def is_amount(low: Any, high: Any, currency: Any) -> bool:
    """Whether stored bounds and a currency are ones :func:`read_amount` can give."""
    for bound in (low, high):
        if bound is not None and (
            not isinstance(bound, int) or isinstance(bound, bool) or not 0 <= bound <= AMOUNT_MAX
        ):
            return False
    if low is not None and high is not None and low > high:
        return False
    return currency is None or currency in CURRENCIES.values()


def format_amount(value: Mapping[str, Any]) -> str:
    """A stored amount ({low, high, currency, text}) as a person reads it, in the language
    being written in."""
    low, high, currency = value.get("low"), value.get("high"), value.get("currency")
    unit = f" {currency}" if currency else ""
    if low is None:
        if high is None:
            return gettext("not known yet")
        return gettext("up to {amount}").format(amount=f"{number(high)}{unit}")
    if high is None:
        return gettext("at least {amount}").format(amount=f"{number(low)}{unit}")
    if low == high:
        return f"{number(low)}{unit}"
    return f"{number(low)}–{number(high)}{unit}"


__all__ = [
    "AMOUNT_HELP",
    "AMOUNT_MAX",
    "CURRENCIES",
    "DONT_KNOW",
    "Amount",
    "NotAnAmount",
    "format_amount",
    "is_amount",
    "read_amount",
]
