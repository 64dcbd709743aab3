"""Console adapter: `NAME: text` lines in, `[to NAME] text` / `[#channel] text` lines out.

The console is a community of its own (key ``console``); a person's console
name is their platform identity: one word of any letters, digits, ``_``, ``.`` or
``-`` (``józef``, ``bob_smith``), the same in a script, in ``--as`` and in ``as``.
A line may say where it was typed: ``staff #staff: balances`` is `balances` typed by
staff in the channel #staff. Files the bot sends (a chart) are saved next to the
database, or in the temporary directory, and their path is printed; text files (CSV
exports, your data) are shown.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from bot.messages import Delivery, File, Inbound, Outbound
from bot.ports import Core as Bot

PLATFORM = "console"
COMMUNITY = "console"
# \w is any letter or digit of any script (and _), as a chat's display names are.
NAME = r"[\w.-]{1,64}"
LINE = re.compile(rf"^\s*({NAME})(?:\s+#({NAME}))?\s*:\s?(.*)$", re.S)
# The interactive console's own lines: `as NAME [#channel]` and `#channel text`.
SWITCH = re.compile(rf"^as\s+({NAME})(?:\s+#({NAME}))?$")
IN_CHANNEL = re.compile(rf"^#({NAME})\s+(\S.*)$", re.S)
NAME_RULE = "one word of letters, digits, _ . or -, like józef or bob_smith"
BANNER = (
    "You are '{name}'. Type `help`; `as NAME` switches person, `as NAME #channel` speaks "
    "in a channel from then on, `#channel text` says one line there, and a line starting "
    "with \\ is sent as typed; Ctrl-D quits."
)
FILES_DIR = "sif-bot-files"  # under the temporary directory, when no folder is given


class ConsoleMessenger:
    """Prints every message; continuation lines are indented so each message stays one
    block. A file that is not text is saved in `files` (created when needed; the
    temporary directory's sif-bot-files without one) and its path printed."""

    platform = PLATFORM

    def __init__(self, out: TextIO | None = None, files: Path | None = None) -> None:
        self.out = out
        self.files = files

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
                try:
                    saved = await asyncio.to_thread(self._save, attachment)
                except OSError as exc:
                    body += (
                        f"\n    --- {attachment.filename} ({size:,} bytes, not saved: "
                        f"{exc.strerror or exc}) ---"
                    )
                else:
                    body += f"\n    --- {attachment.filename} ({size:,} bytes) saved to {saved} ---"
        print(f"{head} {body}", file=out, flush=True)

    def _save(self, attachment: File) -> Path:
        """Write the file under its own name, never over an earlier one (-2, -3...)."""
        folder = self.files if self.files is not None else Path(tempfile.gettempdir()) / FILES_DIR
        folder.mkdir(parents=True, exist_ok=True)
        name = Path(attachment.filename).name or "file"  # never a path of the bot's choosing
        stem, suffix = Path(name).stem, Path(name).suffix
        path = folder / name
        number = 1
        while True:
            try:
                with path.open("xb") as handle:  # x: fails rather than overwrite
                    handle.write(attachment.content)
                return path.resolve()
            except FileExistsError:
                number += 1
                path = folder / f"{stem}-{number}{suffix}"


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
                f"line {number}: expected 'NAME: text' (NAME is {NAME_RULE}), "
                f"got {line.strip()[:40]!r}",
                file=err or sys.stderr,
            )
            continue
        name, channel, text = parsed
        await bot.handle(inbound(name, text, channel))
    return bad


def valid_name(name: str) -> bool:
    return re.fullmatch(NAME, name) is not None


async def interactive(bot: Bot, name: str) -> int:
    """Chat as `name` until end of input; returns 0, or 2 for a name that is not one.

    Lines starting with `as` belong to the console: `as NAME` switches who is typing (in
    direct messages), `as NAME #channel` switches and speaks in #channel from then on, and
    any other `as ...` is explained rather than sent. `#channel text` says one line in a
    channel; a line starting with a backslash is sent as typed, without it."""
    if not valid_name(name):
        print(f"sif-bot: '{name}' is not a console name; use {NAME_RULE}.", file=sys.stderr)
        return 2
    channel: str | None = None
    print(BANNER.format(name=name), flush=True)
    while True:
        where = f" #{channel}" if channel else ""
        try:
            line = await asyncio.to_thread(input, f"{name}{where}> ")
        except EOFError:
            print()
            return 0
        line = line.strip()
        if not line:
            continue
        if line.startswith("\\"):
            await bot.handle(inbound(name, line[1:].strip(), channel))
            continue
        if line == "as" or line.startswith(("as ", "as\t")):
            switch = SWITCH.match(line)
            if switch is None:
                print(
                    f"A console name is {NAME_RULE}; `as NAME #channel` speaks in a channel. "
                    "Nothing was sent (start the line with \\ to send it as typed).",
                    flush=True,
                )
            else:
                name, channel = switch.group(1), switch.group(2)
            continue
        once = IN_CHANNEL.match(line)
        if once is not None:
            await bot.handle(inbound(name, once.group(2), once.group(1)))
            continue
        await bot.handle(inbound(name, line, channel))
