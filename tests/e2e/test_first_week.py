"""The README's first-week walkthrough is real: every line of it (but the `…` that
shorten it) is what the console says when it plays tests/e2e/scripts/first_week.txt."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "e2e" / "scripts" / "first_week.txt"


def walkthrough() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- first-week -->", 1)[1].split("<!-- /first-week -->", 1)[0]
    lines = block.strip().removeprefix("```text").removesuffix("```").strip().splitlines()
    return [line for line in lines if line.strip() != "…"]


def test_the_readme_walkthrough_is_what_the_bot_says(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/week.db",
        "SIF_ADMINS": "console:staff",
        "SIF_STAFF_CHANNEL": "staff",
    }
    sif_bot = Path(sys.executable).with_name("sif-bot")
    done = subprocess.run(
        [str(sif_bot), "console", "--script", str(SCRIPT)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    said = done.stdout.splitlines()
    expected = walkthrough()
    assert len(expected) > 15
    at = 0  # the lines come in the README's order
    for line in expected:
        pattern = re.escape(line).replace(re.escape("…"), ".*")
        found = next((i for i in range(at, len(said)) if re.fullmatch(pattern, said[i])), None)
        assert found is not None, f"not said (in this order): {line}"
        at = found + 1
