"""The bot's languages, and how it writes numbers of things and people's words.

Every sentence the bot writes is English in the code and goes through gettext: `_("...")`
for a sentence, `ngettext(one, other, n)` for one that depends on a count (CLDR plural
rules: Babel's catalogs know each language's), `N_("...")` to mark a sentence kept in a
constant and translated where it is used. Placeholders are named (`{name}`) and filled
after the translation (`_("Hi {name}!").format(name=...)`, or `say(...)` which translates
its template itself), so a translation may put them in its own order.

The language is per message: `speaking(code)` sets it for what is written inside it
(the core sets the caller's language for each event, the recipient's for a notice, the
community's for the staff channel). Catalogs live in `bot/i18n/locales/<code>/LC_MESSAGES/
sif.po`; the install compiles them (`sif.mo`), and a catalog newer than its compiled
file is read from the `.po` itself, so a fresh checkout speaks every language too.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from contextvars import ContextVar
from decimal import Decimal
from pathlib import Path

from babel import Locale
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

from bot.domain.ledger import format_sif

LOCALES = Path(__file__).parent / "locales"
DOMAIN = "sif"
# The languages with a complete catalog, English first (the code's own).
LANGUAGES = ("en", "nl", "fr", "de")
DEFAULT = "en"

_language: ContextVar[str] = ContextVar("sif_language", default=DEFAULT)


def normalize(code: str | None) -> str | None:
    """The supported language of a code or locale ("fr-FR", "nl_BE", "DE"), or None."""
    if not code:
        return None
    base = code.strip().replace("_", "-").split("-", 1)[0].lower()
    return base if base in LANGUAGES else None


def language_name(code: str, in_language: str | None = None) -> str:
    """ "Nederlands" for nl (in its own language, or in `in_language`)."""
    name = Locale.parse(code).get_display_name(in_language or code) or code
    return name[:1].upper() + name[1:]


@functools.cache
def translations(code: str) -> NullTranslations:
    """The catalog of a language: the compiled one, or the .po when it is newer."""
    if code == DEFAULT:
        return NullTranslations()
    folder = LOCALES / code / "LC_MESSAGES"
    po, mo = folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        return Translations.load(str(LOCALES), [code], DOMAIN)
    if not po.exists():
        return NullTranslations()
    return _from_po(po)


def _from_po(po: Path) -> NullTranslations:
    import io

    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as handle:
        catalog = read_po(handle)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)


def current() -> str:
    """The language being written in."""
    return _language.get()


@contextlib.contextmanager
def speaking(code: str | None) -> Iterator[None]:
    """Write in this language (a supported code; anything else: English) inside."""
    token = _language.set(normalize(code) or DEFAULT)
    try:
        yield
    finally:
        _language.reset(token)


def switch(code: str | None) -> None:
    """Write in this language from now on, inside the current `speaking` (which puts the
    language before it back when it ends)."""
    _language.set(normalize(code) or DEFAULT)


def _(message: str) -> str:
    """The sentence in the current language (the English one when not translated)."""
    if not message:
        return message
    return translations(_language.get()).gettext(message)


def pgettext(context: str, message: str) -> str:
    """`_` for a word that reads differently in another place ("a review" in a price
    list, with its article, and elsewhere)."""
    return str(translations(_language.get()).pgettext(context, message))


def N_(message: str) -> str:
    """Marks a sentence for the catalogs without translating it (for constants)."""
    return message


def ngettext(singular: str, plural_form: str, count: float) -> str:
    """The sentence for `count` in the current language, by its plural rules."""
    n = count if isinstance(count, int) else (1 if count == 1 else 2)
    return translations(_language.get()).ngettext(singular, plural_form, n)


def number(value: float | Decimal, *, grouping: bool = True) -> str:
    """A number written the current language's way: 1,204.5 in English, 1.204,5 in Dutch."""
    return format_decimal(value, locale=_babel_locale(), group_separator=grouping)


def _babel_locale() -> str:
    return _language.get()


def sif(hundredths: int, *, sign: bool = False) -> str:
    """An amount of SIF in the current language's way: "2.50 SIF", "2,50 SIF"."""
    return localize_sif(format_sif(hundredths, sign=sign))


def localize_sif(english: str) -> str:
    """An amount as the ledger writes it ("-2.50 SIF") in the current language's way."""
    code = _language.get()
    if code == DEFAULT:
        return english
    return english.replace(".", _decimal_sign(code))


@functools.cache
def _decimal_sign(code: str) -> str:
    """The decimal sign of a language ("," in Dutch)."""
    return str(Locale.parse(code).number_symbols["latn"]["decimal"])


_ENDS_SENTENCE = (".", "!", "?", "…", ":", ";")


def plural(count: float, one: str, other: str | None = None, *, grouping: bool = True) -> str:
    """`count` and the noun that fits it: plural(1, "member") is "1 member", plural(3,
    "member") "3 members", plural(2, "person", "people") "2 people". Whole numbers get
    thousands separators (1,204 rows) unless `grouping` is off (a table of plain numbers);
    others show as they are (1.5 days)."""
    word = ngettext(one, other if other is not None else f"{one}s", count)
    if isinstance(count, int):
        shown = number(count, grouping=grouping)
    else:
        shown = number(Decimal(f"{count:g}"))
    return f"{shown} {word}"


def sentence(text: str) -> str:
    """A person's words as the end of a sentence: a full stop is added unless the text
    already ends with one (or with ?, !, …, : or ;)."""
    words = text.rstrip()
    return words if not words or words.endswith(_ENDS_SENTENCE) else f"{words}."


def explain(error: Exception) -> str:
    """An error of the domain (which writes no language: `bot.domain.ledger.LedgerError`)
    in the current language: its English `template` translated, its `values` filled in,
    whole numbers written the language's way. Any other error: its own message."""
    template = getattr(error, "template", None)
    values = getattr(error, "values", None)
    if not isinstance(template, str) or not isinstance(values, dict):
        return str(error)
    shown = {k: number(v) if type(v) is int else v for k, v in values.items()}
    return _(template).format(**shown)


def _speak_for_conversations() -> None:
    """The conversation engine (pure: it cannot import the bot) writes through these."""
    from conversations import i18n as conversations_i18n

    conversations_i18n.set_translator(_, ngettext, number)


_speak_for_conversations()
