"""Settings from the environment or `.env` (pydantic-settings); SPEC §8.

`load_settings()` turns a bad value into one :class:`SettingsError` line that
names the variable and what is expected, so start-up stops with a clear reason.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.domain.ledger import HUNDREDTHS_PER_SIF

DEFAULT_TAGS = (
    "business-model",
    "finance",
    "fundraising",
    "legal",
    "marketing",
    "communication",
    "impact-measurement",
    "design",
    "technology",
    "governance",
    "partnerships",
    "public-sector",
)

PLATFORMS = ("console", "slack", "matrix")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """One line naming the variable with a bad value and what it expects."""


def _hundredths(value: Decimal) -> int:
    return int(value * HUNDREDTHS_PER_SIF)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,
    )

    database_url: str = "sqlite+aiosqlite:///./sif.db"
    sif_admins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    sif_staff_channel: str = ""
    # the community's language: for members who chose none, staff posts and the digest
    sif_language: Literal["en", "nl", "fr", "de"] = "en"
    sif_community_name: str = "Social Innovation Factory"
    sif_tags: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_TAGS))

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str | None = None
    # workspaces served (one team id or several, comma-separated); empty: any that signs
    slack_team_id: Annotated[list[str], NoDecode] = Field(default_factory=list)
    port: int = Field(3000, ge=1, le=65535)
    # log level; unset: INFO for `run` with a chat platform, WARNING for everything else
    sif_log_level: str | None = None

    matrix_homeserver: str | None = None
    matrix_user_id: str | None = None
    matrix_password: str | None = None
    matrix_access_token: str | None = None
    matrix_device_id: str | None = None
    matrix_store_path: Path = Path("./matrix-store")
    matrix_community: str | None = None
    # servers whose users may invite the bot and give it commands (empty: any)
    matrix_allowed_servers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # which devices of the members get the keys of encrypted rooms: trust on first use,
    # or only devices verified in the bot's store
    matrix_trust: Literal["tofu", "verified"] = "tofu"

    sif_credit_limit: Decimal = Field(Decimal(-20), le=0, ge=-100000, decimal_places=2)
    sif_welcome_grant: Decimal = Field(Decimal(0), ge=0, le=1000, decimal_places=2)
    sif_price_advice: Decimal = Field(Decimal(1), gt=0, le=100, decimal_places=2)
    sif_price_feedback: Decimal = Field(Decimal(1), gt=0, le=100, decimal_places=2)
    sif_price_review: Decimal = Field(Decimal(2), gt=0, le=100, decimal_places=2)
    sif_offer_ttl_hours: float = Field(12, gt=0, le=24 * 30)
    sif_fanout: int = Field(3, ge=1, le=20)
    sif_max_rounds: int = Field(4, ge=1, le=50)
    # Routing breaks ties among equally qualified, rested and loaded peers by text
    # affinity (SPEC §14); off: by the oldest last offer alone.
    sif_affinity: bool = True
    # Federation (SPEC §12): this node's name and public base URL, its ed25519 key file
    # (`sif-bot federation keygen`), its partners (TOML), and after how many local rounds
    # without a taker a request goes to the network (0: only when asked).
    sif_node_name: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    sif_node_url: str | None = None
    sif_node_key_file: Path | None = None
    sif_partners_file: Path | None = None
    sif_federate_after_rounds: int = Field(0, ge=0, le=50)
    sif_auto_release_days: float = Field(7, gt=0, le=365)
    sif_conversation_reminder_days: float = Field(2, gt=0, le=365)
    sif_conversation_expiry_days: float = Field(14, gt=0, le=365)
    sif_max_message_chars: int = Field(4000, ge=100, le=100_000)
    sif_flows_path: Path | None = None
    # the weekly staff digest: weekday (0=Monday..6=Sunday) and hour, in UTC
    sif_digest_day: int = Field(0, ge=0, le=6)
    sif_digest_hour: int = Field(8, ge=0, le=23)
    # how long a process holds an outbox message it is sending before another may check
    # whether it arrived and send it (longer than a send with its retries can take)
    sif_outbox_lease_seconds: float = Field(120, ge=1, le=3600)
    # how often pending outbox messages are tried again
    sif_outbox_retry_seconds: float = Field(30, ge=1, le=3600)
    # a message that keeps failing is set aside after this many tries, or once it is
    # this many hours old (permanent platform errors set it aside at once)
    sif_outbox_max_attempts: int = Field(20, ge=1, le=1000)
    sif_outbox_give_up_hours: float = Field(24, gt=0, le=24 * 30)
    # delivered messages keep their text this many days; files are dropped once delivered
    sif_outbox_retention_days: float = Field(7, ge=0, le=3650)
    # per-member limits: commands per minute, introductions per day (0: no limit)
    sif_rate_commands_per_minute: int = Field(30, ge=0, le=100_000)
    sif_rate_intros_per_day: int = Field(10, ge=0, le=100_000)
    # staff grants and adjustments above this many SIF (or to themselves) are confirmed
    # and posted to the staff channel
    sif_grant_confirm: Decimal = Field(Decimal(50), ge=0, le=1_000_000, decimal_places=2)

    @field_validator(
        "sif_admins", "sif_tags", "matrix_allowed_servers", "slack_team_id", mode="before"
    )
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("sif_admins")
    @classmethod
    def _admin_ids(cls, value: list[str]) -> list[str]:
        for entry in value:
            platform, _, external = entry.partition(":")
            if platform not in PLATFORMS or not external:
                raise ValueError(
                    f"'{entry}' should be platform:external_id with platform one of "
                    f"{', '.join(PLATFORMS)}, e.g. console:staff or slack:T0001:U0002"
                )
        return value

    @field_validator("sif_tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        from conversations.answers import TAG_PATTERN

        for tag in value:
            if not TAG_PATTERN.fullmatch(tag):
                raise ValueError(f"'{tag}' is not a tag: use lowercase letters, digits and dashes")
        return value

    @field_validator("sif_log_level")
    @classmethod
    def _log_level(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.strip().upper() not in LOG_LEVELS:
            raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
        return value.strip().upper()

    @field_validator("database_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if "://" not in value or "+" not in value.split("://", 1)[0]:
            raise ValueError(
                "expected an async SQLAlchemy URL such as sqlite+aiosqlite:///./sif.db "
                "or postgresql+asyncpg://user@host/db"
            )
        return value

    # -- derived values the core uses -------------------------------------------

    @property
    def credit_limit(self) -> int:
        return _hundredths(self.sif_credit_limit)

    @property
    def grant_confirm(self) -> int:
        return _hundredths(self.sif_grant_confirm)

    @property
    def welcome_grant(self) -> int:
        return _hundredths(self.sif_welcome_grant)

    @property
    def prices(self) -> dict[str, int]:
        return {
            "advice": _hundredths(self.sif_price_advice),
            "feedback": _hundredths(self.sif_price_feedback),
            "review": _hundredths(self.sif_price_review),
        }

    @model_validator(mode="after")
    def _platform_credentials_come_in_pairs(self) -> Settings:
        """Half a platform's credentials would start the console without a word."""
        slack_door = self.slack_signing_secret or self.slack_app_token
        if self.slack_bot_token and not slack_door:
            raise ValueError(
                "SLACK_SIGNING_SECRET: is needed with SLACK_BOT_TOKEN "
                "(or SLACK_APP_TOKEN for Socket Mode)"
            )
        if slack_door and not self.slack_bot_token:
            raise ValueError(
                "SLACK_BOT_TOKEN: is needed with SLACK_SIGNING_SECRET or SLACK_APP_TOKEN"
            )
        return self

    def staff_channel(self, platform: str) -> str:
        """Where staff are told things on a platform ("" when none is set; the console's
        is "staff")."""
        return self.sif_staff_channel or ("staff" if platform == "console" else "")

    @property
    def admins(self) -> set[tuple[str, str]]:
        pairs = (entry.partition(":") for entry in self.sif_admins)
        return {(platform, external) for platform, _, external in pairs}

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token and (self.slack_signing_secret or self.slack_app_token))

    @property
    def matrix_enabled(self) -> bool:
        return bool(
            self.matrix_homeserver
            and self.matrix_user_id
            and (self.matrix_password or self.matrix_access_token)
        )


def load_settings(**overrides: Any) -> Settings:
    """Read settings; a bad value raises SettingsError with one readable line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        message = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:  # a rule over several settings names its variable itself
            raise SettingsError(message) from None
        variable = str(error["loc"][0]).upper()
        given = error.get("input")
        shown = f" (got {given!r})" if isinstance(given, str | int | float) else ""
        raise SettingsError(f"{variable}: {message}{shown}") from None
