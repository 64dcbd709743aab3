"""Messages to members and staff that are not replies: used by handlers and sweeps alike."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bot.domain.ids import MemberId
from bot.domain.records import Community, Member, Role
from bot.i18n import speaking
from bot.messages import Body, Button, Delivery, Outbound, as_parts, compose
from bot.ports import UnitOfWork
from bot.settings import Settings

FEDERATION = "federation"  # the platform of partner nodes' members (bot.app.network)

# A message's text, or a function that writes it: called in the recipient's language.
Written = Body | Callable[[], Body]


def language_of(member: Member | None, settings: Settings) -> str:
    """The language the bot speaks to a member: their choice, else their platform's
    locale, else the community's."""
    if member is not None:
        return member.language or member.locale or settings.sif_language
    return settings.sif_language


def write(text: Written, language: str) -> Body:
    """The text in that language (a plain text is already written)."""
    if callable(text):
        with speaking(language):
            return text()
    return text


def platform_of(community_key: str) -> str:
    """The platform a community lives on: "slack:T01" → "slack", "console" → "console"."""
    return community_key.split(":", 1)[0]


@dataclass(frozen=True)
class Notice:
    """A direct message to a member, to be looked up with others (`Notices.dm_ids`)."""

    member: MemberId
    body: Written
    topic: str
    subject: str | None = None
    buttons: tuple[Button, ...] = ()


@dataclass
class Notices:
    uow: UnitOfWork
    settings: Settings
    community: Community
    platform: str  # preferred platform for DMs (where the current action happened)
    outbound: list[Outbound] = field(default_factory=list)

    def dm(
        self,
        member: Member,
        body: Written,
        *,
        topic: str,
        subject: str | None = None,
        buttons: tuple[Button, ...] = (),
    ) -> None:
        """A direct message, on the preferred platform when the member is on it; a body
        given as a function is written in the member's language."""
        # A partner node's member hears through the federation's own messages.
        reachable = [i for i in member.identities if i.platform != FEDERATION]
        if not reachable:
            return
        preferred = [i for i in reachable if i.platform == self.platform]
        identity = (preferred or reachable)[0]
        language = language_of(member, self.settings)
        with speaking(language):
            parts = compose(write(body, language), buttons)
        self.outbound.append(
            Outbound(
                identity.platform,
                Delivery.DM,
                identity.external_id,
                topic,
                parts,
                None,
                subject,
                language=language,
            )
        )

    async def dm_id(
        self,
        member: MemberId,
        body: Written,
        *,
        topic: str,
        subject: str | None = None,
        buttons: tuple[Button, ...] = (),
    ) -> None:
        found = await self.uow.members.get(member)
        if found is not None:
            self.dm(found, body, topic=topic, subject=subject, buttons=buttons)

    async def dm_ids(self, messages: Sequence[Notice]) -> None:
        """`dm_id` for several notices, in that order, with one lookup."""
        found = await self.uow.members.get_many([notice.member for notice in messages])
        for notice in messages:
            if (who := found.get(notice.member)) is not None:
                self.dm(
                    who,
                    notice.body,
                    topic=notice.topic,
                    subject=notice.subject,
                    buttons=notice.buttons,
                )

    def staff_channel(self) -> str:
        """The community's staff channel on its platform ("" when none is set)."""
        return self.settings.staff_channel(platform_of(self.community.key))

    async def staff(self, body: Written, *, topic: str, subject: str | None = None) -> None:
        """Post to the staff channel, in the community's language; without one, DM every
        staff member and admin (each in their own, when the body is a function)."""
        platform = platform_of(self.community.key)
        channel = self.staff_channel()
        if channel:
            language = self.settings.sif_language
            with speaking(language):
                parts = as_parts(write(body, language))
            self.outbound.append(
                Outbound(
                    platform,
                    Delivery.CHANNEL,
                    channel,
                    topic,
                    parts,
                    None,
                    subject,
                    language=language,
                )
            )
            return
        for member in await self.uow.members.all(self.community.id):
            if member.role.allows(Role.STAFF):
                self.dm(member, body, topic=topic, subject=subject)
