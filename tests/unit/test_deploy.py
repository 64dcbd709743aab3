"""deploy/: the systemd units, env.example, docker-compose and Dockerfile agree with the code.

Every variable they set or read must be a real setting of bot.settings.Settings (or one of
PostgreSQL's or the system's), and every `sif-bot ...` they run must parse with the real
command line parser, so a renamed setting or command fails here rather than in production.
"""

from __future__ import annotations

import configparser
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from bot.entrypoints.cli import _parser
from bot.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "sif-bot.service"
BACKUP_UNIT = DEPLOY / "sif-bot-backup.service"
BACKUP_TIMER = DEPLOY / "sif-bot-backup.timer"
ENV_EXAMPLE = DEPLOY / "env.example"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
BACKUP_SCRIPT = DEPLOY / "backup.sh"

# Variables that are not sif-bot settings but belong to PostgreSQL's image or the system.
SYSTEM_VARIABLES = {"PATH", "HOME", "LANG", "TZ"}
SYSTEM_PREFIXES = ("POSTGRES_", "PG", "PYTHON", "PIP_")
# Variables only backup.sh reads (documented in its header).
BACKUP_VARIABLES = {"BACKUP_DIR", "KEEP_DAYS"}

NAME = r"[A-Za-z_][A-Za-z0-9_]*"


# -- what the code accepts -------------------------------------------------------------------


def _alias_names(alias: Any) -> list[str]:
    """The environment names of a pydantic alias: a str, AliasChoices or AliasPath."""
    if alias is None:
        return []
    if isinstance(alias, str):
        return [alias]
    choices = getattr(alias, "choices", None)
    if choices is not None:
        return [name for choice in choices for name in _alias_names(choice)]
    path = getattr(alias, "path", None)
    if path:
        return [str(path[0])]
    raise AssertionError(f"unexpected alias {alias!r}")


def setting_names() -> set[str]:
    """Every environment variable Settings reads, from its fields and their aliases."""
    config = Settings.model_config
    prefix = config.get("env_prefix", "")
    case_sensitive = config.get("case_sensitive", False)
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        aliases = _alias_names(field.validation_alias) or _alias_names(field.alias)
        names.update(aliases or [prefix + field_name])
    return names if case_sensitive else {name.upper() for name in names}


def is_known(variable: str, settings: set[str]) -> bool:
    upper = variable.upper()
    return upper in settings or upper in SYSTEM_VARIABLES or upper.startswith(SYSTEM_PREFIXES)


def parse_sif_bot(argv: list[str]) -> Any:
    """Parse a sif-bot command line with the real parser; argparse's exit fails the test."""
    assert PurePosixPath(argv[0]).name == "sif-bot", argv
    try:
        return _parser().parse_args(argv[1:])
    except SystemExit as exc:
        pytest.fail(f"`{shlex.join(argv)}` does not parse (exit {exc.code})")


def sif_bot_commands(text: str) -> list[list[str]]:
    """The `sif-bot ...` command lines in shell-like text (continuations joined)."""
    commands = []
    for line in text.replace("\\\n", " ").splitlines():
        if line.lstrip().startswith("#"):
            continue
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            continue
        for index, token in enumerate(tokens):
            if PurePosixPath(token).name == "sif-bot":
                commands.append(tokens[index:])
                break
    return commands


# -- reading the files -----------------------------------------------------------------------


def read_unit(path: Path) -> configparser.ConfigParser:
    """A systemd unit as INI: keys may repeat (Environment=, ExecStartPre=), case matters."""
    parser = configparser.ConfigParser(
        strict=False, interpolation=None, delimiters=("=",), comment_prefixes=("#", ";")
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    return parser


def unit_values(path: Path, section: str, key: str) -> list[str]:
    """All values of a key in a section (configparser keeps only the last of repeats)."""
    values, current = [], None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
        elif current == section and "=" in line:
            name, _, value = line.partition("=")
            if name.strip() == key:
                values.append(value.strip())
    return values


def exec_argv(value: str) -> list[str]:
    """argv of an Exec*= line, without systemd's prefixes (-, @, +, !, :)."""
    return shlex.split(value.lstrip("-@+!:"))


def env_example_names() -> list[str]:
    """Variables assigned in env.example, including commented-out `# NAME=value` examples."""
    pattern = re.compile(rf"^#?\s*({NAME})=")
    return [
        match.group(1)
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if (match := pattern.match(line))
    ]


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def compose_references(text: str) -> set[str]:
    """Variables a Compose file reads: ${NAME...} and $NAME, with $$ (a literal $) kept."""
    return set(re.findall(rf"\$\{{?({NAME})", text.replace("$$", "$")))


def dockerfile_instructions() -> list[tuple[str, str]]:
    lines = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ").splitlines()
    found = []
    for line in lines:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def console_scripts() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return set(data["project"]["scripts"])


# -- the checks --------------------------------------------------------------------------------


def test_setting_names_come_from_the_settings_class() -> None:
    names = setting_names()
    assert {"DATABASE_URL", "PORT", "SLACK_BOT_TOKEN", "MATRIX_STORE_PATH"} <= names
    assert "POSTGRES_USER" not in names
    assert is_known("POSTGRES_PASSWORD", names) and not is_known("SIF_CREDITLIMIT", names)


def test_env_example_names_only_real_settings() -> None:
    names = env_example_names()
    settings = setting_names()
    assert len(names) == len(set(names)), "a variable is listed twice"
    unknown = [name for name in names if not is_known(name, settings)]
    assert not unknown, f"env.example names variables sif-bot does not read: {unknown}"
    for required in ("DATABASE_URL", "PORT", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"):
        assert required in names
    assert any(name.startswith("MATRIX_") for name in names)
    assert any(name.startswith("POSTGRES_") for name in names)


def test_env_example_values_are_valid() -> None:
    """Its values, the commented-out examples too, pass the settings' own validation."""
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    match = re.search(r"^DATABASE_URL=(\S+)$", text, re.MULTILINE)
    assert match and match.group(1).startswith("postgresql+asyncpg://")
    settings = setting_names()
    values = {
        name.lower(): value
        for name, value in re.findall(rf"^#?\s*({NAME})=(.*)$", text, re.MULTILINE)
        if value and name in settings
    }
    assert len(values) > 10
    # the example leaves the Slack token empty for the operator, beside the Socket Mode hint
    values.setdefault("slack_bot_token", "xoxb-filled-in-by-the-operator")
    load_settings(_env_file=None, **values)  # SettingsError names a bad one


def test_unit_is_a_systemd_service_running_sif_bot() -> None:
    unit = read_unit(UNIT)
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    service = unit["Service"]
    assert service["User"] == "sif-bot"
    assert service["EnvironmentFile"].lstrip("-") == "/etc/sif-bot/env"
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM" and service["TimeoutStopSec"]
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert service["PrivateTmp"] == "yes" and service["WorkingDirectory"].startswith("/")
    assert service.get("Type", "simple") in {"simple", "exec"}
    assert unit["Install"]["WantedBy"] == "multi-user.target"

    (start,) = unit_values(UNIT, "Service", "ExecStart")
    assert parse_sif_bot(exec_argv(start)).cmd == "run"
    pre = [parse_sif_bot(exec_argv(v)) for v in unit_values(UNIT, "Service", "ExecStartPre")]
    assert [(args.cmd, args.db_cmd) for args in pre] == [("db", "upgrade")]


def test_unit_can_write_the_matrix_store() -> None:
    """MATRIX_STORE_PATH from env.example lies in a path ProtectSystem=strict leaves writable."""
    service = read_unit(UNIT)["Service"]
    writable = [PurePosixPath(p.lstrip("-")) for p in service["ReadWritePaths"].split()]
    if "StateDirectory" in service:
        writable += [PurePosixPath("/var/lib", d) for d in service["StateDirectory"].split()]
    match = re.search(r"^MATRIX_STORE_PATH=(\S+)$", ENV_EXAMPLE.read_text(), re.MULTILINE)
    assert match, "env.example sets MATRIX_STORE_PATH"
    store = PurePosixPath(match.group(1))
    assert any(store == path or path in store.parents for path in writable), (store, writable)


@pytest.mark.parametrize("path", [UNIT, BACKUP_UNIT], ids=lambda p: p.name)
def test_unit_environment_names_real_settings(path: Path) -> None:
    settings = setting_names()
    for value in unit_values(path, "Service", "Environment"):
        for assignment in shlex.split(value):
            name = assignment.partition("=")[0]
            assert is_known(name, settings), f"{path.name}: Environment={name} is no setting"
    text = path.read_text(encoding="utf-8")
    for name in re.findall(rf"\$\{{?({NAME})", text):
        assert is_known(name, settings), f"{path.name} reads ${name}, which is no setting"


def test_backup_timer_runs_the_backup_script() -> None:
    timer = read_unit(BACKUP_TIMER)
    assert timer["Timer"]["OnCalendar"] and timer["Install"]["WantedBy"] == "timers.target"
    backup = read_unit(BACKUP_UNIT)["Service"]
    assert backup["Type"] == "oneshot" and backup["User"] == "sif-bot"
    assert backup["EnvironmentFile"].lstrip("-") == "/etc/sif-bot/env"
    (start,) = unit_values(BACKUP_UNIT, "Service", "ExecStart")
    assert "backup.sh" in BACKUP_UNIT.read_text() and exec_argv(start)


def test_backup_script_exports_json_with_the_real_parser() -> None:
    text = BACKUP_SCRIPT.read_text(encoding="utf-8")
    commands = [parse_sif_bot(argv) for argv in sif_bot_commands(text)]
    assert [(args.cmd, args.format) for args in commands] == [("export", "json")]
    assert commands[0].out
    settings = setting_names()
    for name in re.findall(rf"\$\{{?({NAME})", text):
        local = name in BACKUP_VARIABLES or name == "out"
        assert local or is_known(name, settings), f"backup.sh reads ${name}"
    shell = shutil.which("sh")
    if shell:
        subprocess.run([shell, "-n", str(BACKUP_SCRIPT)], check=True)


def test_compose_services_and_health_order() -> None:
    services = compose()["services"]
    assert {"db", "bot", "migrate"} <= set(services)
    db, bot, migrate = services["db"], services["bot"], services["migrate"]
    assert str(db["image"]).startswith("postgres:15")
    assert db["volumes"] and "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    assert bot["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "/healthz" in " ".join(bot["healthcheck"]["test"])
    assert '"/healthz"' in (ROOT / "bot" / "entrypoints" / "http.py").read_text(encoding="utf-8")
    for service in (bot, migrate):
        build = service["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        assert (COMPOSE.parent / service["env_file"]).name == ".env"


def test_compose_commands_parse() -> None:
    services = compose()["services"]
    assert parse_sif_bot(services["bot"]["command"]).cmd == "run"
    migrate = parse_sif_bot(services["migrate"]["command"])
    assert (migrate.cmd, migrate.db_cmd) == ("db", "upgrade")
    for name, service in services.items():
        for key in ("command", "entrypoint"):
            value = service.get(key)
            if value is not None:
                argv = value if isinstance(value, list) else shlex.split(value)
                if PurePosixPath(argv[0]).name == "sif-bot":
                    parse_sif_bot(argv)
                else:
                    assert name == "db", f"{name}: {key} runs {argv[0]}"


def test_compose_variables_are_real_settings() -> None:
    settings = setting_names()
    text = COMPOSE.read_text(encoding="utf-8")
    unknown = sorted(name for name in compose_references(text) if not is_known(name, settings))
    assert not unknown, f"docker-compose.yml reads variables sif-bot does not know: {unknown}"
    for name, service in compose()["services"].items():
        environment = service.get("environment") or {}
        keys = (
            environment
            if isinstance(environment, dict)
            else [entry.partition("=")[0] for entry in environment]
        )
        for key in keys:
            assert is_known(key, settings), f"{name}: environment {key} is no setting"


def test_dockerfile_builds_and_runs_sif_bot() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    for keyword, rest in instructions:
        if keyword == "COPY" and not rest.startswith("--from"):
            *sources, _ = shlex.split(rest)
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such file in the repo"
        if keyword == "ENV":
            for name in re.findall(rf"({NAME})=", rest):
                assert is_known(name, setting_names()), f"Dockerfile ENV {name} is no setting"
    user = [rest for keyword, rest in instructions if keyword == "USER"]
    assert user and user[-1] not in {"root", "0"}, "the bot runs as a non-root user"
    (expose,) = [rest for keyword, rest in instructions if keyword == "EXPOSE"]
    assert int(expose) == Settings.model_fields["port"].default
    entry = [json.loads(rest) for keyword, rest in instructions if keyword == "ENTRYPOINT"]
    (cmd,) = [json.loads(rest) for keyword, rest in instructions if keyword == "CMD"]
    argv = (entry[-1] if entry else []) + cmd
    assert argv[0] in console_scripts(), f"{argv[0]} is not a console script of the project"
    assert parse_sif_bot(argv).cmd == "run"


def test_every_deploy_file_is_checked() -> None:
    """A new file in deploy/ needs its own checks here."""
    checked = {UNIT, BACKUP_UNIT, BACKUP_TIMER, ENV_EXAMPLE, COMPOSE, DOCKERFILE, BACKUP_SCRIPT}
    ignore_file = DEPLOY / "Dockerfile.dockerignore"
    present = {
        path for path in DEPLOY.iterdir() if path.is_file() and not path.name.startswith(".")
    } - {ignore_file}
    assert present == checked
