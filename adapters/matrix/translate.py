"""Matrix room events ↔ the core's neutral messages (pure functions, no I/O).

Inbound: ``!sif <command>`` in any joined room; plain text in a direct room with the
bot; a reply to the bot; ✅ / ❌ reactions on a message that offered those actions.
Outbound: ``m.notice`` with a plain ``body`` and, when it marks something up (the core's
code and strong parts, tables), an HTML ``formatted_body``; the actions a
message offers travel in the content (``org.sif.actions``) so a later reaction can be
understood without any state kept by the adapter.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from bot.i18n import _
from bot.messages import Code, Inbound, Outbound, Part, Parts, Strong, Table, Text, split_parts

PLATFORM = "matrix"
PREFIX = re.compile(r"^\s*!sif\b\s*", re.I)
USER_ID = re.compile(r"(?<![<\w])@[a-z0-9._=/+-]+:[a-z0-9.-]+(?::\d+)?", re.I)
PILL = re.compile(r'<a href="https://matrix\.to/#/(@[^"?]+)[^"]*">(.*?)</a>', re.I | re.S)
REPLY_FALLBACK = re.compile(r"^(> .*\n)+\n", re.M)
ACTIONS_KEY = "org.sif.actions"
# Synapse refuses an event of more than 65,536 bytes of JSON, the server's own fields
# included (measured: under 1,000 bytes of it); a message's content stays under this.
MAX_CONTENT_BYTES = 60_000
# Parts of this many plain characters fit whatever they hold: a plain character costs at
# most about 20 bytes (a control character escaped in body and HTML: 12; a row of a
# one-column table of empty cells: 20), and a table's headers come with each part of it.
_MIN_CHARS = 500
ACCEPT_KEYS = {"✅", "✔️", "✔", "👍"}
DECLINE_KEYS = {"❌", "✖️", "👎"}


def community_key(settings_community: str | None, bot_user_id: str) -> str:
    """One community per configured deployment (default: the bot's server name)."""
    return f"{PLATFORM}:{settings_community or bot_user_id.split(':', 1)[-1]}"


def mention(user_id: str) -> str:
    return f"<@{PLATFORM}:{user_id}>"


def member_references(body: str, formatted: str | None) -> str:
    """Pills (from the HTML) and typed ``@user:server`` ids become member references."""
    text = body
    for user_id, label in PILL.findall(formatted or ""):
        plain = re.sub(r"<[^>]+>", "", label).strip()
        if plain and plain in text:
            text = text.replace(plain, mention(user_id), 1)
    return USER_ID.sub(lambda m: mention(m.group(0)), text)


def strip_reply_fallback(body: str) -> str:
    """A reply's body quotes the original as "> ..." lines; only the new text counts."""
    return REPLY_FALLBACK.sub("", body, count=1) if body.startswith("> ") else body


def from_message(
    content: dict[str, Any],
    *,
    sender: str,
    room_id: str,
    event_id: str,
    direct: bool,
    replies_to_bot: bool,
    community: str,
    display_name: str = "",
) -> Inbound | None:
    """The Inbound for a text message, or None when it is not meant for the bot."""
    body = content.get("body")
    if not isinstance(body, str) or content.get("msgtype") not in ("m.text", None):
        return None
    formatted = content.get("formatted_body")
    body = strip_reply_fallback(body)
    explicit = bool(PREFIX.match(body))
    if not (explicit or direct or replies_to_bot):
        return None
    text = PREFIX.sub("", body, count=1) if explicit else body
    text = member_references(text, formatted if isinstance(formatted, str) else None)
    return Inbound(
        platform=PLATFORM,
        community_key=community,
        user=sender,
        text=text.strip(),
        display_name=display_name,
        channel=None if direct else room_id,
        event_id=event_id,
        explicit=explicit,
    )


def reaction_action(key: str, actions: list[str]) -> str | None:
    """✅ picks the message's first action (accept), ❌ its second (decline)."""
    if key in ACCEPT_KEYS and actions:
        return actions[0]
    if key in DECLINE_KEYS and len(actions) > 1:
        return actions[1]
    return None


def from_reaction(
    *,
    sender: str,
    room_id: str,
    event_id: str,
    action: str,
    direct: bool,
    community: str,
    display_name: str = "",
) -> Inbound:
    return Inbound(
        platform=PLATFORM,
        community_key=community,
        user=sender,
        text=action,
        display_name=display_name,
        channel=None if direct else room_id,
        event_id=event_id,
        action=action,
        explicit=True,
    )


def _html(parts: Iterable[Part]) -> str:
    """HTML for the message's parts: the core's `code` and *strong* parts marked up, text
    (names, titles, reasons: whatever people typed) escaped so it shows literally, and
    tables as HTML tables."""
    out = []
    for part in parts:
        if isinstance(part, Table):
            out.append(_html_table(part))
            continue
        if not isinstance(part, Text | Code | Strong):
            continue
        escaped = html.escape(part.text).replace("\n", "<br>")
        if isinstance(part, Code):
            out.append(f"<code>{escaped}</code>")
        elif isinstance(part, Strong):
            out.append(f"<b>{escaped}</b>")
        else:
            out.append(escaped)
    return "".join(out)


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _accept_or_decline(actions: list[str]) -> bool:
    return (
        len(actions) == 2 and actions[0].startswith("accept ") and actions[1].startswith("decline ")
    )


# The hints are written in the language being written in when the message is rendered.
def hint(message: Outbound) -> str:
    """How to take a message's actions in Matrix (no buttons there)."""
    actions = [b.action for b in message.buttons]
    if _accept_or_decline(actions):
        return _("React ✅ to accept or ❌ to decline.")
    if actions:
        return _("Reply with: {actions}").format(actions=", ".join(f"`{a}`" for a in actions))
    return ""


def _hint_html(message: Outbound) -> str:
    """The hint with its actions as code: they are the bot's own, not text people typed."""
    actions = [b.action for b in message.buttons]
    if actions and not _accept_or_decline(actions):
        codes = ", ".join(f"<code>{html.escape(a)}</code>" for a in actions)
        return html.escape(_("Reply with: {actions}")).format(actions=codes)
    return html.escape(hint(message))


def content(message: Outbound) -> dict[str, Any]:
    """The ``m.notice`` content for an Outbound."""
    body = message.text
    extra = hint(message)
    formatted = _html(message.parts)
    if extra and extra not in body:
        body = f"{body}\n{extra}"
        formatted = f"{formatted}<br>{_hint_html(message)}"
    result: dict[str, Any] = {"msgtype": "m.notice", "body": body}
    if formatted != html.escape(body).replace("\n", "<br>"):
        # HTML only when it marks something up: a plain answer shows the same without it
        # (clients keep the body's line breaks), and the event is half the size.
        result["format"] = "org.matrix.custom.html"
        result["formatted_body"] = formatted
    # The bot mentions nobody: a name or "@room" that people typed must not ping anyone
    # (clients that support intentional mentions read only this).
    result["m.mentions"] = {}
    if message.buttons:
        result[ACTIONS_KEY] = [b.action for b in message.buttons]
    return result


def contents(message: Outbound, max_bytes: int = MAX_CONTENT_BYTES) -> list[dict[str, Any]]:
    """The ``m.notice`` contents for an Outbound: one, or several to send in order when it
    is too large for one event (split by `split_parts`: between paragraphs, lines or
    words, a table in whole tables of whole rows; the actions, their hint and the file
    with the last). Pure: a message sent again after a crash is split the same way."""
    whole = content(message)
    size = _size(whole)
    if size <= max_bytes:
        return [whole]
    # What a plain character of this message costs in the event (JSON and HTML escapes,
    # table markup, UTF-8) makes the first guess; a part still too large is split again.
    chars = max(len(message.text), 1)
    max_chars = max(int(chars * max_bytes / size * 0.95), _MIN_CHARS)
    return _fit(message, message.parts, max_chars, max_bytes)


def _fit(message: Outbound, parts: Parts, max_chars: int, max_bytes: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for piece in split_parts(parts, max_chars):
        result = content(replace(message, parts=piece))
        if _size(result) > max_bytes and max_chars > _MIN_CHARS:
            out += _fit(message, piece, max(max_chars // 2, _MIN_CHARS), max_bytes)
        else:
            out.append(result)
    return out


def _size(result: dict[str, Any]) -> int:
    """Bytes of the content as the homeserver counts them (compact UTF-8 JSON)."""
    text = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-8", "surrogatepass"))


def replying(content: dict[str, Any], event_id: str) -> dict[str, Any]:
    """The content as a reply to `event_id` (clients show the message it answers above
    it); the body quotes nothing, as the spec now asks of replies."""
    return {**content, "m.relates_to": {"m.in_reply_to": {"event_id": event_id}}}
