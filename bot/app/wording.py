"""Phrases the core says in several places, in the language being written in."""

from __future__ import annotations

from collections.abc import Mapping

from bot.app.offering import kind_phrase as kind_words
from bot.i18n import _, localize_sif, ngettext, number

# The order kinds are named in when prices are listed.
KIND_ORDER = ("review", "advice", "feedback")


def _price(hundredths: int) -> str:
    """2 SIF, 1.50 SIF (1,50 SIF in Dutch): whole amounts without decimals."""
    whole, cents = divmod(hundredths, 100)
    if not cents:
        return f"{number(whole)} SIF"
    return localize_sif(f"{whole}.{cents:02d} SIF")


def price_list(prices: Mapping[str, int]) -> str:
    """The prices in one phrase, kinds of one price together, dearest first: 'a review
    costs 2 SIF, advice and feedback 1 SIF' (the same everywhere it is said)."""

    def order(kind: str) -> tuple[int, int, str]:
        known = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
        return (-prices[kind], known, kind)

    groups: dict[int, list[str]] = {}
    for kind in sorted(prices, key=order):
        groups.setdefault(prices[kind], []).append(kind)
    phrases = []
    for index, (price, names) in enumerate(groups.items()):
        words = [kind_words(name) for name in names]
        if len(words) == 1:
            kinds = words[0]
        else:
            kinds = _("{first} and {last}").format(first=", ".join(words[:-1]), last=words[-1])
        if index == 0:
            phrase = ngettext("{kinds} costs {price}", "{kinds} cost {price}", len(words))
        else:
            phrase = _("{kinds} {price}")
        phrases.append(phrase.format(kinds=kinds, price=_price(price)))
    return ", ".join(phrases)
