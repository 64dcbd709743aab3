"""Settings: defaults, derived values, and one clear line for a bad value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings


def settings(**values: object):  # type: ignore[no-untyped-def]
    return load_settings(_env_file=None, **values)


def test_defaults() -> None:
    s = settings()
    assert s.database_url == "sqlite+aiosqlite:///./sif.db"
    # The rules that met the simulator's goals (README, "Trying the rules").
    assert s.credit_limit == -2000 and s.welcome_grant == 0
    assert s.prices == {"advice": 100, "feedback": 100, "review": 200}
    assert s.sif_offer_ttl_hours == 12 and s.sif_max_rounds == 4 and s.sif_fanout == 3
    assert not s.slack_enabled and not s.matrix_enabled


def test_admins_split_at_the_first_colon() -> None:
    s = settings(sif_admins="console:staff, slack:T0001:U0002,matrix:@ann:example.org")
    assert s.admins == {
        ("console", "staff"),
        ("slack", "T0001:U0002"),
        ("matrix", "@ann:example.org"),
    }


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        ({"sif_credit_limit": "abc"}, "SIF_CREDIT_LIMIT"),
        ({"sif_credit_limit": "5"}, "SIF_CREDIT_LIMIT"),
        ({"port": "99999"}, "PORT"),
        ({"sif_admins": "telegram:x"}, "SIF_ADMINS"),
        ({"sif_tags": "Finance Stuff"}, "SIF_TAGS"),
        ({"database_url": "sif.db"}, "DATABASE_URL"),
        ({"sif_offer_ttl_hours": "0"}, "SIF_OFFER_TTL_HOURS"),
    ],
)
def test_a_bad_value_names_the_variable(values: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as info:
        settings(**values)
    line = str(info.value)
    assert line.startswith(variable + ":")
    assert "\n" not in line


def test_start_up_stops_with_one_line(tmp_path: Path) -> None:
    env = {"SIF_CREDIT_LIMIT": "lots", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "db", "upgrade"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "SIF_CREDIT_LIMIT" in lines[0]
    assert not (tmp_path / "sif.db").exists()
