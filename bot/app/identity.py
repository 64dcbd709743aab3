"""Which community a platform identity belongs to (SPEC §2)."""

from __future__ import annotations

from bot.settings import PLATFORMS, Settings


class IdentityError(ValueError):
    pass


def split_identity(text: str) -> tuple[str, str]:
    """`slack:T0001:U0002` → ("slack", "T0001:U0002"), split at the first colon."""
    platform, _, external = text.partition(":")
    if platform not in PLATFORMS or not external:
        raise IdentityError(
            f"'{text}' should be platform:external_id with platform one of {', '.join(PLATFORMS)}"
        )
    return platform, external


def community_key(platform: str, external_id: str, settings: Settings) -> str:
    """Console: one community; Slack: the workspace (team id); Matrix: the deployment."""
    if platform == "console":
        return "console"
    if platform == "slack":
        team, _, user = external_id.partition(":")
        if not user:
            raise IdentityError(
                f"a Slack identity is TEAM:USER, e.g. T0001:U0002, not '{external_id}'"
            )
        return f"slack:{team}"
    server = external_id.partition(":")[2]
    if not external_id.startswith("@") or not server:
        raise IdentityError(f"a Matrix identity looks like @ann:example.org, not '{external_id}'")
    return f"matrix:{settings.matrix_community or server}"
