"""Phrases the core says in several places, in the language being written in."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from bot.i18n import _, localize_sif, ngettext, number, pgettext

# The order kinds are named in when prices are listed.
KIND_ORDER = ("review", "advice", "feedback")


def kind_words(kind: str) -> str:
    """A kind as it starts a price ("a review costs 2 SIF"), in the language written."""
    if kind == "review":
        return pgettext("price list", "a review")
    if kind == "advice":
        return pgettext("price list", "advice")
    if kind == "feedback":
        return pgettext("price list", "feedback")
    return kind


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


# The router's reasons (bot.domain.routing, stored with each offer in English), phrase by
# phrase: each English shape and the sentence it is said as.
_WHY: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"^no expertise asked for$"), lambda m: _("no expertise asked for")),
    (
        re.compile(r"^matches only (?P<held>.+) \(level (?P<level>\d+) wanted\)$"),
        lambda m: _("matches only {held} (level {level} wanted)").format(**m.groupdict()),
    ),
    (
        re.compile(r"^matches none of (?P<tags>.+)$"),
        lambda m: _("matches none of {tags}").format(**m.groupdict()),
    ),
    (re.compile(r"^matches (?P<tags>.+)$"), lambda m: _("matches {tags}").format(**m.groupdict())),
    (
        re.compile(r"^(?P<n>\d+) reviews? in (?P<days>\d+) days$"),
        lambda m: ngettext(
            "{count} review in {days} days", "{count} reviews in {days} days", int(m["n"])
        ).format(count=number(int(m["n"])), days=number(int(m["days"]))),
    ),
    (re.compile(r"^never offered$"), lambda m: _("never offered")),
    (re.compile(r"^last offer just now$"), lambda m: _("last offer just now")),
    (
        re.compile(r"^last offer (?P<n>\d+) minutes? ago$"),
        lambda m: ngettext(
            "last offer {count} minute ago", "last offer {count} minutes ago", int(m["n"])
        ).format(count=number(int(m["n"]))),
    ),
    (
        re.compile(r"^last offer (?P<n>\d+) hours? ago$"),
        lambda m: ngettext(
            "last offer {count} hour ago", "last offer {count} hours ago", int(m["n"])
        ).format(count=number(int(m["n"]))),
    ),
    (
        re.compile(r"^last offer (?P<n>\d+) days? ago$"),
        lambda m: ngettext(
            "last offer {count} day ago", "last offer {count} days ago", int(m["n"])
        ).format(count=number(int(m["n"]))),
    ),
    (
        re.compile(r"^bio mentions (?P<words>.+)$"),
        lambda m: _("bio mentions {words}").format(**m.groupdict()),
    ),
    (
        re.compile(r"^reviewed a similar idea, (?P<ref>I-\d+)$"),
        lambda m: _("reviewed a similar idea, {ref}").format(**m.groupdict()),
    ),
    (
        re.compile(r"^received (?P<amount>-?\d+\.\d\d SIF) more than given$"),
        lambda m: _("received {amount} more than given").format(amount=localize_sif(m["amount"])),
    ),
]


def why(explanation: str) -> str:
    """Why a peer was offered a request, in the language being written in (a phrase of
    another shape stays as it is)."""
    said = []
    for phrase in explanation.split("; "):
        for shape, sentence in _WHY:
            match = shape.match(phrase)
            if match:
                said.append(sentence(match))
                break
        else:
            said.append(phrase)
    return "; ".join(said)
