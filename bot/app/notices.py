"""Messages to members and staff that are not replies: used by handlers and sweeps alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.domain.ids import MemberId
from bot.domain.records import Community, Member, Role
from bot.messages import Button, Delivery, Outbound
from bot.ports import UnitOfWork
from bot.settings import Settings


def platform_of(community_key: str) -> str:
    """The platform a community lives on: "slack:T01" → "slack", "console" → "console"."""
    return community_key.split(":", 1)[0]


@dataclass
class Notices:
    uow: UnitOfWork
    settings: Settings
    community: Community
    platform: str  # preferred platform for DMs (where the current action happened)
    outbound: list[Outbound] = field(default_factory=list)

    def dm(self, member: Member, text: str, buttons: tuple[Button, ...] = ()) -> None:
        """A direct message, on the preferred platform when the member is on it."""
        if not member.identities:
            return
        preferred = [i for i in member.identities if i.platform == self.platform]
        identity = (preferred or list(member.identities))[0]
        self.outbound.append(
            Outbound(identity.platform, Delivery.DM, identity.external_id, text, buttons=buttons)
        )

    async def dm_id(self, member: MemberId, text: str, buttons: tuple[Button, ...] = ()) -> None:
        found = await self.uow.members.get(member)
        if found is not None:
            self.dm(found, text, buttons)

    async def dm_ids(self, messages: Sequence[tuple[MemberId, str, tuple[Button, ...]]]) -> None:
        """`dm_id` for several (member, text, buttons), in that order, with one lookup."""
        found = await self.uow.members.get_many([member for member, _, _ in messages])
        for member, text, buttons in messages:
            if (who := found.get(member)) is not None:
                self.dm(who, text, buttons)

    async def staff(self, text: str) -> None:
        """Post to the staff channel; without one, DM every staff member and admin."""
        platform = platform_of(self.community.key)
        channel = self.settings.sif_staff_channel or ("staff" if platform == "console" else "")
        if channel:
            self.outbound.append(Outbound(platform, Delivery.CHANNEL, channel, text))
            return
        for member in await self.uow.members.all(self.community.id):
            if member.role.allows(Role.STAFF):
                self.dm(member, text)
