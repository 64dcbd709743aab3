"""The rules a simulation runs under: the settings `--set` may change, the simulator's own
settings on top of them, and the rules as the report names them."""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain.ledger import format_sif
from bot.i18n import plural
from bot.settings import Settings, load_settings

STAFF = "staff"
STAFF_CHANNEL = "staff"
PLATFORM = "console"
# Settings the simulator needs for itself: staff must be staff, escalations must land
# in the channel the simulated staff read.
RESERVED = frozenset({"admins", "staff_channel"})


def setting_names() -> list[str]:
    """The rule settings `--set` accepts: Settings fields without the sif_ prefix."""
    return sorted(
        name.removeprefix("sif_")
        for name in Settings.model_fields
        if name.startswith("sif_") and name.removeprefix("sif_") not in RESERVED
    )


def parse_overrides(pairs: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """`KEY=VALUE` strings as ordered pairs; a later value for a key replaces an earlier."""
    known = setting_names()
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().lower().removeprefix("sif_")
        if not sep or not key:
            raise ValueError(f"'{pair}' should be KEY=VALUE, like offer_ttl_hours=12")
        if key not in known:
            raise ValueError(f"unknown setting '{key}'; settable: {', '.join(known)}")
        found[key] = value.strip()
    return tuple(found.items())


def _settings(database_url: str, overrides: Sequence[tuple[str, str]], **node: object) -> Settings:
    """The settings of a simulated community; ``node`` (full field names) on top of the
    overrides: a network's node settings (`bot.entrypoints.simulate.network`)."""
    values: dict[str, object] = {f"sif_{k}": v for k, v in overrides}
    values.update(node)
    return load_settings(
        _env_file=None,
        database_url=database_url,
        sif_staff_channel=STAFF_CHANNEL,
        sif_admins=f"{PLATFORM}:{STAFF}",
        **values,
    )


def _rules(settings: Settings) -> tuple[tuple[str, str], ...]:
    prices = settings.prices
    return (
        ("offer TTL", f"{settings.sif_offer_ttl_hours:g} h"),
        ("fan-out", str(settings.sif_fanout)),
        ("max rounds", str(settings.sif_max_rounds)),
        ("credit limit", format_sif(settings.credit_limit)),
        (
            "prices",
            "/".join(f"{k} {prices[k] / 100:g}" for k in ("advice", "feedback", "review")) + " SIF",
        ),
        ("auto-release", plural(settings.sif_auto_release_days, "day")),
        ("welcome grant", format_sif(settings.welcome_grant)),
        ("text affinity", "on" if settings.sif_affinity else "off"),
    )
