"""The translation catalogs: extracted from the code with Babel, checked, compiled.

    python -m bot.i18n.catalogs update    # new sentences into every sif.po (and sif.pot)
    python -m bot.i18n.catalogs compile   # sif.po -> sif.mo (the install does this)
    python -m bot.i18n.catalogs check     # what `make test` checks, as a list
    python -m bot.i18n.catalogs merge     # translations from bot/i18n/fragments/*/<code>.po

Sentences are found where the code marks them: `_()`, `N_()`, `ngettext()`, `say()`,
`plural()` (its two noun forms), and every text of the packaged conversation files
(conversations/flows/*.yaml: titles, questions, help, labels and choices).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import yaml
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from bot.i18n import DEFAULT, DOMAIN, LANGUAGES, LOCALES

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("bot", "conversations", "adapters")
KEYWORDS = {
    "_": None,
    "N_": None,
    "gettext": None,  # conversations.i18n
    "ngettext": (1, 2),
    "pgettext": ((1, "c"), 2),
    "say": None,
    "plural": (2, 3),
}
METHODS = [
    ("**/tests/**", "ignore"),
    ("**/simulate/**", "ignore"),  # the simulator reports to the operator, in English
    ("**/i18n/**", "ignore"),
    ("**.py", "python"),
    ("**/flows/*.yaml", "bot.i18n.catalogs:extract_flow"),
]
# the keys of a conversation file whose values people read
FLOW_TEXT_KEYS = {
    "title",
    "intro",
    "done_prompt",
    "thanks",
    "goodbye",
    "prompt",
    "help",
    "summary_label",
    "label",
    "choices",
}
PLACEHOLDER = re.compile(r"\{[a-z_][a-z0-9_]*(?:[:!][^{}]*)?\}")


def extract_flow(
    fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: Any
) -> Iterator[tuple[int, str, str, list[str]]]:
    """Babel extractor for a conversation file: every text people read."""
    data = yaml.safe_load(fileobj.read().decode("utf-8"))

    def walk(node: Any, key: str | None) -> Iterator[str]:
        if isinstance(node, dict):
            for k, v in node.items():
                yield from walk(v, str(k))
        elif isinstance(node, list):
            for item in node:
                yield from walk(item, key)
        elif isinstance(node, str) and key in FLOW_TEXT_KEYS and node.strip():
            yield node

    for text in walk(data, None):
        yield 0, "_", text, []


def extract() -> Catalog:
    """Every sentence the code and the conversation files mark, as a template."""
    template = Catalog(project="sif-bot", domain=DOMAIN)
    for source in SOURCES:
        found = extract_from_dir(
            str(ROOT / source), METHODS, keywords=KEYWORDS, strip_comment_tags=True
        )
        for filename, lineno, message, comments, context in found:
            template.add(
                message,
                None,
                [(f"{source}/{filename}", lineno)],
                auto_comments=comments,
                context=context,
            )
    return template


def po_path(code: str) -> Path:
    return LOCALES / code / "LC_MESSAGES" / f"{DOMAIN}.po"


def load(code: str) -> Catalog:
    with po_path(code).open("rb") as handle:
        return read_po(handle, locale=code)


def update() -> None:
    template = extract()
    LOCALES.mkdir(parents=True, exist_ok=True)
    with (LOCALES / f"{DOMAIN}.pot").open("wb") as handle:
        write_po(handle, template, width=100, omit_header=False)
    for code in LANGUAGES:
        if code == DEFAULT:
            continue
        path = po_path(code)
        path.parent.mkdir(parents=True, exist_ok=True)
        catalog = load(code) if path.exists() else Catalog(locale=code, domain=DOMAIN)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        with path.open("wb") as handle:
            write_po(handle, catalog, width=100)


FRAGMENTS = Path(__file__).parent / "fragments"


def merge() -> None:
    """Fill every sif.po from the template and the fragments (a fragment's translation
    wins over the catalog's own; a sentence no fragment has keeps the catalog's)."""
    update()
    template = extract()
    for code in LANGUAGES:
        if code == DEFAULT:
            continue
        known: dict[Any, Any] = {}
        for fragment in sorted(FRAGMENTS.glob(f"*/{code}.po")):
            with fragment.open("rb") as handle:
                for message in read_po(handle, locale=code):
                    if message.id and message.string and any(_strings(message)):
                        known[(message.id, message.context)] = message.string
        catalog = load(code)
        for message in template:
            if not message.id:
                continue
            entry = catalog.get(message.id, message.context)
            if entry is None:
                continue
            found = known.get((message.id, message.context))
            if found is None and isinstance(message.id, tuple | list):
                found = known.get((message.id[0], message.context))
            if found is not None:
                entry.string = _forms(found, catalog.num_plurals, message.pluralizable)
            entry.flags.discard("fuzzy")
        with po_path(code).open("wb") as handle:
            write_po(handle, catalog, width=100)


def _forms(string: Any, count: int, pluralizable: bool) -> Any:
    """A translation with as many plural forms as the language has (a fragment written
    with fewer repeats its last: French "many" is written as "other")."""
    if not pluralizable:
        return string[0] if isinstance(string, tuple | list) else string
    forms = list(string) if isinstance(string, tuple | list) else [string]
    return tuple((forms + [forms[-1]] * count)[:count])


def compile_all() -> None:
    for code in LANGUAGES:
        path = po_path(code)
        if code == DEFAULT or not path.exists():
            continue
        catalog = load(code)
        with path.with_suffix(".mo").open("wb") as handle:
            write_mo(handle, catalog)


def _ids(message: Any) -> list[str]:
    return list(message.id) if isinstance(message.id, tuple | list) else [message.id]


def _strings(message: Any) -> list[str]:
    if isinstance(message.string, tuple | list):
        return list(message.string)
    return [message.string]


def _marks(text: str) -> tuple[list[str], int]:
    return sorted(PLACEHOLDER.findall(text)), text.count("`")


def problems(code: str, template: Catalog | None = None) -> list[str]:
    """What is wrong with a language's catalog: a sentence of the code it misses or leaves
    untranslated, one it keeps that the code no longer has, a translation whose
    placeholders or `code` marks differ from the English, a fuzzy entry."""
    template = template or extract()
    catalog = load(code)
    wanted = {_key(m) for m in template if m.id}
    have = {_key(m): m for m in catalog if m.id}
    found: list[str] = []
    for key in sorted(wanted - set(have), key=str):
        found.append(f"{code}: missing {_ids_text(key)}")
    for key in sorted(set(have) - wanted, key=str):
        found.append(f"{code}: unused {_ids_text(key)}")
    for key in sorted(wanted & set(have), key=str):
        message = have[key]
        strings = _strings(message)
        if message.fuzzy:
            found.append(f"{code}: fuzzy {_ids_text(key)}")
        if not all(strings):
            found.append(f"{code}: untranslated {_ids_text(key)}")
            continue
        english = _marks(_ids(message)[-1])
        for string in strings:
            if _marks(string)[0] != english[0]:
                found.append(f"{code}: placeholders differ in {_ids_text(key)}: {string!r}")
            elif _marks(string)[1] != english[1]:
                found.append(f"{code}: `code` marks differ in {_ids_text(key)}: {string!r}")
    return found


def _key(message: Any) -> tuple[Any, str | None]:
    """A sentence's identity: its English (singular) and its context, if any."""
    ident = message.id[0] if isinstance(message.id, tuple | list) else message.id
    return (ident, message.context)


def _ids_text(key: Any) -> str:
    text, context = key
    if context:
        text = f"{text} [{context}]"
    return repr(text if len(text) <= 70 else text[:70] + "…")


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    if command == "update":
        update()
    elif command == "compile":
        compile_all()
    elif command == "merge":
        merge()
    elif command == "check":
        template = extract()
        found = [p for code in LANGUAGES if code != DEFAULT for p in problems(code, template)]
        print("\n".join(found) or "Every catalog is complete.")
        return 1 if found else 0
    else:
        print(f"unknown command {command!r}: update, compile or check", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
