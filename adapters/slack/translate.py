"""Slack payloads ↔ the core's neutral messages (pure functions, no I/O).

Inbound: slash command `/sif`, `message.im`, `app_mention`, `block_actions`.
Outbound: Block Kit (text sections, a table in monospace, an actions block for
buttons) with the plain text always kept as the fallback `text`; a message longer than
Slack takes in one becomes several (:func:`payloads`). A member's platform identity is
``TEAM:USER`` and the community of a workspace is ``slack:TEAM``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from bot.messages import (
    Actions,
    Code,
    Inbound,
    Outbound,
    Part,
    Parts,
    Strong,
    Table,
    Text,
    render_plain,
    render_table,
    split_parts,
)

PLATFORM = "slack"
# Slack's limits for one message (Block Kit docs): it refuses a message over any
# of them and delivers none of it.
SECTION_LIMIT = 2900  # characters of text in a section block (Slack: 3,000)
MAX_BLOCKS = 50  # blocks in a message
BLOCKS_TEXT_LIMIT = 10_000  # text of all blocks (Slack: msg_blocks_too_long past ~12,000)
TEXT_LIMIT = 39_000  # the fallback `text` (Slack: 40,000)
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


def from_command(
    body: dict[str, Any], display_name: str = "", locale: str | None = None
) -> Inbound:
    """`/sif <text>`: always a command; in a DM with the bot it counts as the DM.
    `locale` is the person's Slack locale ("fr-FR"), when known (users.info)."""
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
        locale=locale,
    )


def is_human_message(event: dict[str, Any]) -> bool:
    """A person's new message (not an edit, a join, or a bot, including ourselves)."""
    return not (event.get("subtype") or event.get("bot_id") or event.get("bot_profile"))


def from_message(
    event: dict[str, Any],
    team_id: str,
    event_id: str | None,
    display_name: str = "",
    locale: str | None = None,
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
        locale=locale,
    )


def from_mention(
    event: dict[str, Any],
    team_id: str,
    event_id: str | None,
    bot_user_id: str | None,
    display_name: str = "",
    locale: str | None = None,
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
        locale=locale,
    )


def team_of(body: dict[str, Any]) -> str:
    """The workspace a request comes from, as its community key names it: an
    interaction's `team.id` (or its user's team), a command's or event's `team_id`."""
    team = body.get("team")
    if isinstance(team, dict) and team.get("id"):
        return str(team["id"])
    if body.get("team_id"):
        return str(body["team_id"])
    user = body.get("user")
    if isinstance(user, dict) and user.get("team_id"):
        return str(user["team_id"])
    view = body.get("view")
    return str(view.get("team_id") or "") if isinstance(view, dict) else ""


def from_action(
    body: dict[str, Any],
    action: dict[str, Any],
    display_name: str = "",
    locale: str | None = None,
) -> Inbound:
    """A button click: its value is the command (``accept R-7``) or the answer (``2``)."""
    team = team_of(body)
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
        locale=locale,
    )


def _smaller(parts: Parts, overflow: float) -> int | None:
    """A plain-text budget for splitting parts whose Slack rendering is `overflow` times
    too long (escapes make it longer than the plain text), or None: they cannot shrink."""
    size = len(render_plain(parts))
    if size <= 3:
        return None
    return max(3, min(size - 1, int(size / overflow * 0.9)))


def sections(parts: Parts, budget: int = SECTION_LIMIT) -> list[dict[str, Any]]:
    """Text sections of at most SECTION_LIMIT characters of mrkdwn each, split where
    `split_parts` splits (between paragraphs, lines, words or table rows; never inside a
    word, an escape or a table's code block); each section is rendered on its own."""
    out: list[dict[str, Any]] = []
    for chunk in split_parts(parts, budget):
        text = mrkdwn(chunk)
        smaller = _smaller(chunk, len(text) / SECTION_LIMIT) if len(text) > SECTION_LIMIT else None
        if smaller is not None:
            out += sections(chunk, smaller)
        elif text.strip():
            # verbatim: no automatic links or mentions made of what people typed
            out.append(
                {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}
            )
    return out


def blocks(message: Outbound) -> list[dict[str, Any]]:
    """Block Kit for a message: text sections (a table in monospace) and its buttons."""
    return _blocks(message.parts)


def _blocks(parts: Parts) -> list[dict[str, Any]]:
    out = sections(parts)
    buttons = tuple(b for p in parts if isinstance(p, Actions) for b in p.buttons)
    if buttons:
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
                        **({"style": "primary"} if i == 0 and len(buttons) == 2 else {}),
                    }
                    for i, b in enumerate(buttons[:25])
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
    return _fallback(message.parts)


def _fallback(parts: Parts) -> str:
    return mrkdwn(parts, tables=False)[:TEXT_LIMIT]


def payloads(message: Outbound) -> list[dict[str, Any]]:
    """The message as one Slack message or, when longer than Slack takes in one, as
    several to send in order: each a ``{"text", "blocks"}`` within Slack's limits (at
    most MAX_BLOCKS blocks, BLOCKS_TEXT_LIMIT characters of block text, TEXT_LIMIT of
    fallback text), split between paragraphs, lines or table rows (`split_parts`); the
    buttons go with the last. The same message is always split the same way, so a part
    sent before can be recognised by its index."""
    return _payloads(message.parts, BLOCKS_TEXT_LIMIT)


def _payloads(parts: Parts, budget: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for chunk in split_parts(parts, budget):
        payload = {"text": _fallback(chunk), "blocks": _blocks(chunk)}
        over = overflow(payload)
        smaller = _smaller(chunk, over) if over > 1 else None
        if smaller is not None:
            out += _payloads(chunk, smaller)
        else:
            out.append(payload)
    return out


def overflow(payload: dict[str, Any]) -> float:
    """How many times over Slack's limits one message's text and blocks are (> 1: too long)."""
    blocks = payload.get("blocks") or []
    block_text = sum(len(str((b.get("text") or {}).get("text", ""))) for b in blocks)
    return max(
        len(blocks) / MAX_BLOCKS,
        block_text / BLOCKS_TEXT_LIMIT,
        len(str(payload.get("text", ""))) / TEXT_LIMIT,
    )


def ack_reply(messages: list[Outbound]) -> dict[str, Any] | None:
    """The slash command's response body carrying these private answers (Slack shows it
    to the caller only), or None when they do not fit in one message (then each is sent
    on its own, in as many messages as it needs)."""
    if not messages:
        return None
    out: list[dict[str, Any]] = []
    texts: list[str] = []
    for i, message in enumerate(messages):
        posts = payloads(message)
        if len(posts) != 1:
            return None
        for block in posts[0]["blocks"]:
            if "block_id" in block and len(messages) > 1:
                block = {**block, "block_id": f"{block['block_id']}_{i}"}
            out.append(block)
        texts.append(posts[0]["text"])
    reply = {"response_type": "ephemeral", "text": "\n\n".join(texts), "blocks": out}
    return reply if overflow(reply) <= 1 else None
