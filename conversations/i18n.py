"""The engine's words in the language being written in, without knowing any language.

The conversations package is pure: it cannot reach the bot's catalogs. It writes its
sentences in English through :func:`gettext` and :func:`ngettext` (and marks constants
with :func:`N_`), which call a replaceable translator; the bot installs its own once
(`bot.i18n`), so a sentence is translated at the moment it is written, in the language
of whoever reads it. Without one, every sentence stays English. :func:`number` writes a
whole number the language's way (1,204 in English, 1.204 in Dutch) the same way.
"""

from __future__ import annotations

from collections.abc import Callable


def _identity(message: str) -> str:
    return message


def _english_plural(singular: str, plural: str, count: float) -> str:
    return singular if count == 1 else plural


def _english_number(value: int) -> str:
    return f"{value:,}"


_translate: Callable[[str], str] = _identity
_translate_plural: Callable[[str, str, float], str] = _english_plural
_number: Callable[[int], str] = _english_number


def set_translator(
    gettext: Callable[[str], str] | None,
    ngettext: Callable[[str, str, float], str] | None = None,
    number: Callable[[int], str] | None = None,
) -> None:
    """Install the functions that translate a sentence, a count-dependent sentence and
    write a number (None: back to English)."""
    global _translate, _translate_plural, _number
    _translate = gettext or _identity
    _translate_plural = ngettext or _english_plural
    _number = number or _english_number


def gettext(message: str) -> str:
    """The sentence in the current language (as given when it has no translation)."""
    if not message:
        return message
    return _translate(message)


def ngettext(singular: str, plural: str, count: float) -> str:
    """The sentence for `count` in the current language, by its plural rules."""
    return _translate_plural(singular, plural, count)


def N_(message: str) -> str:
    """Marks a sentence kept in a constant for the catalogs; translated where it is used."""
    return message


def number(value: int) -> str:
    """A whole number the current language's way (thousands grouped)."""
    return _number(value)


__all__ = ["N_", "gettext", "ngettext", "number", "set_translator"]
