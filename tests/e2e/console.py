"""Playing console scripts through the real `sif-bot` command, and reading what it printed.

The console prints each message as a head (`[to ann]`, `[#staff]`, `[to staff in #staff]`)
and its text, the text's further lines indented by four spaces.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

SIF_BOT = str(Path(sys.executable).parent / "sif-bot")
# Scripts are typed faster than people type; the per-minute limit has tests of its own.
NO_RATE_LIMIT = {"SIF_RATE_COMMANDS_PER_MINUTE": "0"}
HEAD = re.compile(r"^(\[(?:to [^\]]+|#[^\]]+)\]) (.*)$")


def run(
    args: list[str], tmp_path: Path, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/sif.db",
        "SIF_ADMINS": "console:staff",
        **env,
    }
    return subprocess.run(
        [SIF_BOT, *args],
        input=stdin,
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def play(tmp_path: Path, *lines: str | Sequence[str], **env: str) -> str:
    """Run a console script (lines, or lists of lines) without the rate limit; what it
    printed, after checking it ended well and printed no traceback."""
    flat = [line for part in lines for line in ([part] if isinstance(part, str) else part)]
    done = run(
        ["console", "--script", "-"], tmp_path, "\n".join(flat) + "\n", **NO_RATE_LIMIT, **env
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return done.stdout


def messages(output: str) -> list[tuple[str, str]]:
    """Every message printed, as (head, text) with its continuation lines joined back on."""
    found: list[tuple[str, str]] = []
    for line in output.splitlines():
        match = HEAD.match(line)
        if match:
            found.append((match.group(1), match.group(2)))
        elif line.startswith("    ") and found:
            head, text = found[-1]
            found[-1] = (head, text + "\n" + line[4:])
    return found


def messages_to(output: str, name: str) -> list[str]:
    """Every message to `name` in the direct chat, whole."""
    return [text for head, text in messages(output) if head == f"[to {name}]"]


def lines_to(output: str, name: str) -> list[str]:
    """The first lines of the messages to `name` in the direct chat, head included."""
    return [line for line in output.splitlines() if line.startswith(f"[to {name}]")]
