"""The translation catalogs are complete, hold nothing the code no longer says, and keep
every placeholder and `code` mark of the English (bot.i18n.catalogs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from bot.i18n import LANGUAGES, _, catalogs, speaking, translations

TRANSLATED = [code for code in LANGUAGES if code != "en"]


@pytest.fixture(scope="module")
def template() -> Catalog:
    return catalogs.extract()


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_catalog_is_complete_and_keeps_the_placeholders(code: str, template: Catalog) -> None:
    assert catalogs.problems(code, template) == []


def _copy_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str) -> Path:
    copied = tmp_path / "locales"
    shutil.copytree(catalogs.LOCALES, copied)
    monkeypatch.setattr(catalogs, "LOCALES", copied)
    return copied / code / "LC_MESSAGES" / "sif.po"


def _rewrite(path: Path, change) -> None:
    with path.open("rb") as handle:
        catalog = read_po(handle)
    change(catalog)
    with path.open("wb") as handle:
        write_po(handle, catalog)


def test_a_missing_entry_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, template: Catalog
) -> None:
    path = _copy_catalog(tmp_path, monkeypatch, "nl")
    removed = next(m.id for m in template if m.id and isinstance(m.id, str))
    _rewrite(path, lambda catalog: catalog.delete(removed))
    found = catalogs.problems("nl", template)
    assert len(found) == 1 and found[0].startswith("nl: missing"), found


def test_an_unused_entry_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, template: Catalog
) -> None:
    path = _copy_catalog(tmp_path, monkeypatch, "fr")
    _rewrite(path, lambda catalog: catalog.add("A sentence the code never says.", "Jamais."))
    found = catalogs.problems("fr", template)
    assert found == ["fr: unused 'A sentence the code never says.'"]


def test_a_changed_placeholder_or_code_mark_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, template: Catalog
) -> None:
    path = _copy_catalog(tmp_path, monkeypatch, "de")
    with_placeholder = next(
        m.id for m in template if isinstance(m.id, str) and "{" in m.id and "`" in m.id
    )
    placeholder = catalogs.PLACEHOLDER.findall(with_placeholder)[0]

    def rename(catalog) -> None:
        entry = catalog.get(with_placeholder)
        entry.string = entry.string.replace(placeholder, "{renamed}")

    _rewrite(path, rename)
    found = catalogs.problems("de", template)
    assert len(found) == 1 and "placeholders differ" in found[0], found

    def unmark(catalog) -> None:
        entry = catalog.get(with_placeholder)
        entry.string = entry.string.replace("{renamed}", placeholder).replace("`", "", 1)

    _rewrite(path, unmark)
    found = catalogs.problems("de", template)
    assert len(found) == 1 and "`code` marks differ" in found[0], found


@pytest.mark.parametrize("code", TRANSLATED)
def test_the_compiled_catalog_is_what_the_bot_reads(code: str) -> None:
    english = "I don't speak '{code}'. Languages: {choices}."
    with speaking(code):
        translated = _(english)
    assert translated != english
    assert translations(code).gettext(english) == translated
