"""`export [ledger|members|requests]`: the community's data as a CSV file, for staff."""

from __future__ import annotations

import csv
import io
from typing import Any

from bot.app.context import Context, Handlers
from bot.commands import Export
from bot.domain.ids import CommunityId
from bot.domain.records import HelpRequest
from bot.i18n import _, ngettext, number, sif
from bot.messages import File, plain
from bot.ports import UnitOfWork, UnitOfWorkFactory

handlers = Handlers()


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP: CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def safe_cell(value: Any) -> Any:
    """A cell a spreadsheet shows rather than runs: text that would start a formula (a
    display name or reason like `=HYPERLINK(...)`) gets a leading apostrophe; numbers,
    negative amounts included, stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _number(value):
        return "'" + value
    return value


def to_csv(header: list[str], rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows([safe_cell(cell) for cell in row] for row in rows)
    return buffer.getvalue().encode("utf-8")


def _amount(hundredths: int) -> str:
    return f"{hundredths / 100:.2f}"


async def export_rows(
    uow: UnitOfWork, community: CommunityId, what: str
) -> tuple[list[str], list[list[Any]]]:
    if what == "ledger":
        entries = await uow.ledger.entries(community)
        header = ["transaction", "at", "kind", "request", "reason", "author", "account",
                  "member", "amount_sif"]  # fmt: skip
        return header, [
            [
                e["transaction"],
                e["at"].isoformat(),
                e["kind"],
                e["request"] or "",
                e["reason"],
                e["author"] or "",
                e["account"],
                e["member"] or "",
                _amount(e["amount"]),
            ]
            for e in entries
        ]
    if what == "members":
        infos = {b.member: b for b in await uow.ledger.all_balances(community)}
        # One query for everyone's expertise: a query per member held the database (and on
        # SQLite every other member's command) for seconds in a large community.
        skills = await uow.members.expertise_of_community(community)
        rows = []
        for member in await uow.members.all(community):
            info = infos.get(member.id)
            expertise = " ".join(f"{e.tag}:{e.level}" for e in skills.get(member.id, []))
            rows.append([
                member.id, member.name, member.role.value,
                " ".join(f"{i.platform}:{i.external_id}" for i in member.identities),
                expertise, " ".join(member.languages), member.capacity,
                _amount(info.balance if info else 0), _amount(info.held if info else 0),
                _amount(info.given if info else 0), _amount(info.received if info else 0),
            ])  # fmt: skip
        header = ["member", "name", "role", "identities", "expertise", "languages", "capacity",
                  "balance_sif", "held_sif", "given_sif", "received_sif"]  # fmt: skip
        return header, rows
    header = [
        "request", "idea", "kind", "price_sif", "requester", "peer", "status", "tags",
        "created_at", "accepted_at", "delivered_at", "closed_at", "hours", "rating",
    ]  # fmt: skip
    return header, [_request_row(r) for r in await uow.requests.all(community)]


def _when(value: Any) -> str:
    return value.isoformat() if value else ""


def _request_row(r: HelpRequest) -> list[Any]:
    return [
        r.ref, f"I-{r.idea_number}", r.kind, _amount(r.price), r.requester_name,
        r.peer_name or "", r.status.label, " ".join(r.tags), _when(r.created_at),
        _when(r.accepted_at), _when(r.delivered_at), _when(r.closed_at),
        "" if r.hours is None else r.hours, "" if r.rating is None else r.rating,
    ]  # fmt: skip


async def export_csv(uow_factory: UnitOfWorkFactory, community_key: str, what: str) -> bytes | None:
    """The CSV the chat command would send, for the command line (None: no such community)."""
    async with uow_factory() as uow:
        community = await uow.communities.find(community_key)
        if community is None:
            return None
        return to_csv(*await export_rows(uow, community.id, what))


@handlers.on(Export)
async def export(ctx: Context, cmd: Export) -> None:
    header, rows = await export_rows(ctx.uow, ctx.community.id, cmd.what)
    content = to_csv(header, rows)
    filename = f"sif-{cmd.what}-{ctx.clock.now():%Y%m%d}.csv"
    # The file itself stays in English (its columns are for spreadsheets and scripts).
    text = ngettext(
        "Export of {what}: {count} row in {filename}.",
        "Export of {what}: {count} rows in {filename}.",
        len(rows),
    ).format(what=cmd.what, count=number(len(rows)), filename=filename)
    if cmd.what == "ledger":
        total = sum(e["amount"] for e in await ctx.uow.ledger.entries(ctx.community.id))
        text += " " + _("The amounts sum to {total}, as a double-entry ledger must.").format(
            total=sif(total)
        )
    # A file is never ephemeral: in a channel it is posted there (public), else sent as a DM.
    ctx.reply((*plain(text), File(filename, content)), topic="export", public=True)
