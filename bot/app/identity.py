"""Which community a platform identity belongs to (SPEC §2), and whether an identity
was forgotten there before (SPEC §13)."""

from __future__ import annotations

from bot.domain.ids import CommunityId
from bot.domain.privacy import identity_digest
from bot.ports import UnitOfWork
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


async def forgotten_before(
    uow: UnitOfWork, community: CommunityId, platform: str, external_id: str
) -> bool:
    """Whether a member of this identity asked to be forgotten in the community before
    (then a new member of it gets no second welcome grant)."""
    salt = await uow.communities.salt(community)
    if salt is None:  # nobody was ever forgotten there
        return False
    return await uow.members.was_forgotten(identity_digest(salt, platform, external_id))


def mention_words(platform: str, external_id: str) -> list[str]:
    """How texts may name an identity: the id itself, and on Slack the user id that
    mentions carry (`<@U02>`)."""
    if platform == "slack":
        return [external_id, external_id.partition(":")[2]]
    return [external_id]
