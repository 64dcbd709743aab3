"""Slack payloads ↔ the core's neutral messages (pure functions, no I/O).

Inbound: slash command `/sif`, `message.im`, `app_mention`, `block_actions`.
Outbound: Block Kit (a section per part, an actions block for buttons) with the
plain text always kept as the fallback `text`. A member's platform identity is
``TEAM:USER`` and the community of a workspace is ``slack:TEAM``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from bot.messages import Code, Inbound, Outbound, Part, Strong, Table, Text, render_table

PLATFORM = "slack"
SECTION_LIMIT = 2900  # Slack allows 3000 characters of text per section block
BUTTON_LABEL_LIMIT = 75
MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
PREFIX = re.compile(r"^\s*/?sif\b\s*", re.I)


def community_key(team_id: str) -> str:
    return f"{PLATFORM}:{team_id}"


def identity(team_id: str, user_id: str) -> str:
    return f"{team_id}:{user_id}"


def user_of(external_id: str) -> str:
    """``T01:U02`` → ``U02``."""
    return external_id.split(":", 1)[-1]


def rewrite_mentions(text: str, team_id: str, bot_user_id: str | None = None) -> str:
    """Slack mentions become the core's member references; the bot's own is dropped."""

    def replace(match: re.Match[str]) -> str:
        user = match.group(1)
        if bot_user_id and user == bot_user_id:
            return ""
        return f"<@{PLATFORM}:{team_id}:{user}>"

    return " ".join(MENTION.sub(replace, text).split())


def unescape(text: str) -> str:
    """Slack escapes &, < and > in message text."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Slack has no escape for its formatting characters. One between two zero-width spaces
# can neither open nor close bold, italics, strike-through or code, whether Slack takes
# the space for a word character or for a boundary. A *, _ or ~ between two letters or
# digits (snake_case, a URL) formats nothing anyway and is left alone; a backtick never.
ZWSP = "\u200b"
FORMATTING = re.compile(r"[*_~`]")
QUOTE = re.compile(r"^&gt;", re.M)


def _neutral(match: re.Match[str]) -> str:
    text, at = match.string, match.start()
    inside_word = 0 < at < len(text) - 1 and text[at - 1].isalnum() and text[at + 1].isalnum()
    if inside_word and match.group() != "`":
        return match.group()
    return f"{ZWSP}{match.group()}{ZWSP}"


def _inline(text: str) -> str:
    return FORMATTING.sub(_neutral, escape(text))


def literal(text: str) -> str:
    """Text that shows exactly as given in mrkdwn: escaped, formatting neutralised, and a
    line starting with > not taken for a quote."""
    return QUOTE.sub(f"{ZWSP}&gt;", _inline(text))


def mrkdwn(parts: Iterable[Part], tables: bool = True) -> str:
    """The message's parts as mrkdwn: the core's `code` and *strong* parts formatted,
    text (names, titles, reasons: whatever people typed) literal, and tables in
    monospace (or, without `tables`, as literal aligned text)."""
    out: list[str] = []
    run: list[str] = []

    def end_run() -> None:
        out.append(QUOTE.sub(f"{ZWSP}&gt;", "".join(run)))
        run.clear()

    for part in parts:
        if isinstance(part, Code):
            run.append(f"`{escape(part.text)}`")
        elif isinstance(part, Strong):
            run.append(f"*{escape(part.text)}*")
        elif isinstance(part, Text):
            run.append(_inline(part.text))
        elif isinstance(part, Table):
            if tables:
                end_run()
                out.append(preformatted(render_table(part)))
            else:
                run.append(_inline(render_table(part)))
    end_run()
    return "".join(out)


def preformatted(text: str) -> str:
    """A block of monospace text (a table): inside ``` only a backtick can end it."""
    return "```" + escape(text).replace("`", f"{ZWSP}`{ZWSP}") + "```"


def from_command(body: dict[str, Any], display_name: str = "") -> Inbound:
    """`/sif <text>`: always a command; in a DM with the bot it counts as the DM."""
    team = str(body.get("team_id", ""))
    channel = str(body.get("channel_id", "")) or None
    in_dm = body.get("channel_name") == "directmessage" or (channel or "").startswith("D")
    text = rewrite_mentions(unescape(str(body.get("text", ""))), team)
    return Inbound(
        platform=PLATFORM,
        community_key=community_key(team),
        user=identity(team, str(body.get("user_id", ""))),
        text=text,
        display_name=display_name or str(body.get("user_name", "")),
        channel=None if in_dm else channel,
        event_id=f"trigger:{body['trigger_id']}" if body.get("trigger_id") else None,
        explicit=True,
    )


def is_human_message(event: dict[str, Any]) -> bool:
    """A person's new message (not an edit, a join, or a bot, including ourselves)."""
    return not (event.get("subtype") or event.get("bot_id") or event.get("bot_profile"))


def from_message(
    event: dict[str, Any], team_id: str, event_id: str | None, display_name: str = ""
) -> Inbound:
    """A message in the DM with the bot (`message.im`): an answer or a command."""
    raw = unescape(str(event.get("text", "")))
    explicit = bool(PREFIX.match(raw))
    text = PREFIX.sub("", raw, count=1) if explicit else raw
    return Inbound(
        platform=PLATFORM,
        community_key=community_key(team_id),
        user=identity(team_id, str(event.get("user", ""))),
        text=rewrite_mentions(text, team_id),
        display_name=display_name,
        channel=None,
        event_id=event_id,
        explicit=explicit,
    )


def from_mention(
    event: dict[str, Any],
    team_id: str,
    event_id: str | None,
    bot_user_id: str | None,
    display_name: str = "",
) -> Inbound:
    """`@sif balances` in a channel: a command asked in that channel."""
    text = rewrite_mentions(unescape(str(event.get("text", ""))), team_id, bot_user_id)
    return Inbound(
        platform=PLATFORM,
        community_key=community_key(team_id),
        user=identity(team_id, str(event.get("user", ""))),
        text=PREFIX.sub("", text, count=1),
        display_name=display_name,
        channel=str(event.get("channel", "")) or None,
        event_id=event_id,
        explicit=True,
    )


def from_action(body: dict[str, Any], action: dict[str, Any], display_name: str = "") -> Inbound:
    """A button click: its value is the command (``accept R-7``) or the answer (``2``)."""
    team = str((body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id", ""))
    user = str((body.get("user") or {}).get("id", ""))
    channel = str((body.get("channel") or {}).get("id", "")) or None
    value = str(action.get("value", ""))
    trigger = body.get("trigger_id")
    return Inbound(
        platform=PLATFORM,
        community_key=community_key(team),
        user=identity(team, user),
        text=value,
        display_name=display_name,
        channel=None if (channel or "").startswith("D") else channel,
        event_id=f"trigger:{trigger}" if trigger else None,
        action=value,
    )


def _sections(text: str) -> list[dict[str, Any]]:
    chunks: list[str] = []
    rest = text
    while rest:
        if len(rest) <= SECTION_LIMIT:
            chunks.append(rest)
            break
        cut = rest.rfind("\n", 0, SECTION_LIMIT)
        cut = cut if cut > 0 else SECTION_LIMIT
        chunks.append(rest[:cut])
        rest = rest[cut:].lstrip("\n")
    # verbatim: no automatic links or mentions made of what people typed
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": c, "verbatim": True}}
        for c in chunks
        if c
    ]


def blocks(message: Outbound) -> list[dict[str, Any]]:
    """Block Kit for a message: text sections (a table in monospace) and its buttons."""
    out = _sections(mrkdwn(message.parts))
    if message.buttons:
        out.append(
            {
                "type": "actions",
                "block_id": "sif_actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": f"sif_action_{i}",
                        "text": {"type": "plain_text", "text": b.label[:BUTTON_LABEL_LIMIT]},
                        "value": b.action,
                        **({"style": "primary"} if i == 0 and len(message.buttons) == 2 else {}),
                    }
                    for i, b in enumerate(message.buttons[:25])
                ],
            }
        )
    return out


def closed_blocks(original: list[dict[str, Any]], chosen: str) -> list[dict[str, Any]]:
    """The clicked message without its buttons, saying what was chosen."""
    kept = [b for b in original if b.get("type") != "actions"]
    note = {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": f"✓ {literal(chosen)}", "verbatim": True}],
    }
    return [*kept, note]


def fallback_text(message: Outbound) -> str:
    """The notification text: mrkdwn too, so escaped and neutralised the same way."""
    return mrkdwn(message.parts, tables=False)[:39000]


MAX_BLOCKS = 50  # Slack's limit per message


def ack_reply(messages: list[Outbound]) -> dict[str, Any] | None:
    """The slash command's response body carrying these private answers (Slack shows it
    to the caller only), or None when they do not fit in one message."""
    if not messages:
        return None
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        for block in blocks(message):
            if "block_id" in block and len(messages) > 1:
                block = {**block, "block_id": f"{block['block_id']}_{i}"}
            out.append(block)
    text = "\n\n".join(fallback_text(m) for m in messages)
    if len(out) > MAX_BLOCKS or len(text) > 39000:
        return None
    return {"response_type": "ephemeral", "text": text, "blocks": out}
