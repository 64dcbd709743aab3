"""Start-up mistakes are one line naming the variable, with exit code 2, never a traceback
or a silent start of the console."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.console import run


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_an_sqlite_file_in_a_missing_folder(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/missing/folder/sif.db"
    done = run(["console", "--script", "-"], tmp_path, "ann: hi\n", DATABASE_URL=url)
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert line.startswith("sif-bot: DATABASE_URL: the folder ") and "does not exist" in line
    assert not (tmp_path / "missing").exists()


@pytest.mark.postgres
def test_a_postgresql_database_that_does_not_exist(tmp_path: Path, pg_url: str) -> None:
    url = pg_url.rsplit("/", 1)[0] + "/sif_no_such_database"
    done = run(["db", "upgrade"], tmp_path, DATABASE_URL=url)
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert line.startswith("sif-bot: DATABASE_URL: cannot open ")
    assert 'database "sif_no_such_database" does not exist' in line


def test_a_postgresql_server_that_does_not_answer_keeps_its_password_secret(
    tmp_path: Path,
) -> None:
    url = "postgresql+asyncpg://sif:hunter2@127.0.0.1:9/sif"  # port 9: nobody listens
    done = run(["db", "upgrade"], tmp_path, DATABASE_URL=url)
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert line.startswith("sif-bot: DATABASE_URL: cannot open ") and "hunter2" not in line


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET"),
        ({"SLACK_SIGNING_SECRET": "s3cret"}, "SLACK_BOT_TOKEN"),
        ({"SLACK_APP_TOKEN": "xapp-1"}, "SLACK_BOT_TOKEN"),
    ],
)
def test_half_of_the_slack_credentials(tmp_path: Path, env: dict[str, str], variable: str) -> None:
    done = run(["run"], tmp_path, **env)
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert line.startswith(f"sif-bot: invalid setting {variable}: is needed with")
    assert "starts the console" not in done.stdout and not (tmp_path / "sif.db").exists()
