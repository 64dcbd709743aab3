"""Console adapter: `NAME: text` lines in, `[to NAME] text` / `[#channel] text` lines out.

The console is a community of its own (key ``console``); a person's console
name is their platform identity. A line may say where it was typed:
``staff #staff: balances`` is `balances` typed by staff in the channel #staff.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Iterable
from typing import TextIO

from bot.messages import Delivery, Inbound, Outbound
from bot.ports import Core as Bot

PLATFORM = "console"
COMMUNITY = "console"
LINE = re.compile(r"^\s*([A-Za-z0-9_.-]{1,64})(?:\s+#([A-Za-z0-9_.-]{1,64}))?\s*:\s?(.*)$", re.S)


class ConsoleMessenger:
    """Prints every message; continuation lines are indented so each message stays one block."""

    platform = PLATFORM

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out

    async def send(self, message: Outbound) -> None:
        out = self.out or sys.stdout
        if message.delivery is Delivery.CHANNEL:
            head = f"[#{message.to}]"
        elif message.delivery is Delivery.PRIVATE:
            head = f"[to {message.to} in #{message.channel}]"
        else:
            head = f"[to {message.to}]"
        body = message.text.replace("\n", "\n    ")
        attachment = message.file
        if attachment is not None:
            size = len(attachment.content)
            if attachment.mimetype.startswith(("text/", "application/json")):
                # The terminal shows text files (CSV exports, your data) themselves.
                shown = attachment.content.decode("utf-8", errors="replace").rstrip("\n")
                body += f"\n    --- {attachment.filename} ---\n    " + shown.replace("\n", "\n    ")
            else:
                body += f"\n    --- {attachment.filename} ({size:,} bytes, not shown) ---"
        print(f"{head} {body}", file=out, flush=True)


def inbound(name: str, text: str, channel: str | None = None) -> Inbound:
    return Inbound(PLATFORM, COMMUNITY, name, text, display_name=name, channel=channel)


def parse_line(line: str) -> tuple[str, str | None, str] | None:
    """(name, channel, text) of a script line, or None for a line that is not one."""
    match = LINE.match(line.rstrip("\n"))
    if not match:
        return None
    name, channel, text = match.groups()
    return name, channel, text.strip()


async def run_script(bot: Bot, lines: Iterable[str], err: TextIO | None = None) -> int:
    """Play `NAME: text` lines through the bot; returns the number of malformed lines."""
    bad = 0
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parsed = parse_line(line)
        if parsed is None:
            bad += 1
            print(
                f"line {number}: expected 'NAME: text', got {line.strip()[:40]!r}",
                file=err or sys.stderr,
            )
            continue
        name, channel, text = parsed
        await bot.handle(inbound(name, text, channel))
    return bad


async def interactive(bot: Bot, name: str) -> None:
    """Chat as `name` until end of input; `as OTHER` switches who is typing."""
    print(f"You are '{name}'. Type `help`; `as NAME` switches person; Ctrl-D quits.", flush=True)
    while True:
        try:
            line = await asyncio.to_thread(input, f"{name}> ")
        except EOFError:
            print()
            return
        line = line.strip()
        if not line:
            continue
        if line.startswith("as ") and len(line.split()) == 2:
            name = line.split()[1]
            continue
        await bot.handle(inbound(name, line))
