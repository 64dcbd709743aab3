"""`Bot.handle(inbound)`: parse, authorize, run the handler in a unit of work, deliver.

Everything a command says to people is written to the outbox in the same
transaction as its state changes and delivered only after the commit; a failure
before the commit changes nothing and the caller gets one clear sentence.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot import ledger
from bot.commands import MemberRef, ParseError, parse, spec_of
from bot.ledger import format_sif
from bot.messages import Button, Delivery, Inbound, Outbound, Table
from bot.outbox import Relay
from bot.ports import Clock, LimitExceeded, UnitOfWork, UnitOfWorkFactory
from bot.records import Community, Member, Role
from bot.settings import Settings

log = logging.getLogger(__name__)

SORRY = "Sorry, something went wrong on my side and nothing was changed; please try again."


class UserError(Exception):
    """A refusal for the caller: one sentence, and the unit of work is rolled back."""


@dataclass
class Context:
    """What a handler gets: the open unit of work, who asked, and where to answer."""

    uow: UnitOfWork
    community: Community
    caller: Member
    inbound: Inbound
    settings: Settings
    clock: Clock
    outbound: list[Outbound] = field(default_factory=list)

    # -- answering ------------------------------------------------------------------

    def reply(
        self,
        text: str,
        *,
        public: bool = False,
        table: Table | None = None,
        buttons: tuple[Button, ...] = (),
    ) -> None:
        """Answer the caller: in the DM, privately in a channel, or (public) in the channel."""
        inbound = self.inbound
        if inbound.channel is None:
            message = Outbound(
                inbound.platform, Delivery.DM, inbound.user, text, None, table, buttons
            )
        elif public:
            message = Outbound(
                inbound.platform, Delivery.CHANNEL, inbound.channel, text, None, table, buttons
            )
        else:
            message = Outbound(
                inbound.platform,
                Delivery.PRIVATE,
                inbound.user,
                text,
                inbound.channel,
                table,
                buttons,
            )
        self.outbound.append(message)

    def dm(self, member: Member, text: str, buttons: tuple[Button, ...] = ()) -> None:
        """A direct message to a member, on the caller's platform when they are on it."""
        if not member.identities:
            return
        preferred = [i for i in member.identities if i.platform == self.inbound.platform]
        identity = (preferred or list(member.identities))[0]
        self.outbound.append(
            Outbound(identity.platform, Delivery.DM, identity.external_id, text, buttons=buttons)
        )

    async def tell_staff(self, text: str) -> None:
        """Post to the staff channel; without one, DM every staff member and admin."""
        channel = self.settings.sif_staff_channel or (
            "staff" if self.inbound.platform == "console" else ""
        )
        if channel:
            self.outbound.append(Outbound(self.inbound.platform, Delivery.CHANNEL, channel, text))
            return
        for member in await self.uow.members.all(self.community.id):
            if member.role.allows(Role.STAFF):
                self.dm(member, text)

    # -- lookups --------------------------------------------------------------------

    async def resolve(self, ref: MemberRef) -> Member:
        members = self.uow.members
        if ref.platform is not None:
            found = await members.by_identity(ref.platform, ref.value)
            if found is None or found.community != self.community.id:
                raise UserError(f"{ref} has not talked to sif-bot yet, so I don't know them.")
            return found
        named = await members.by_name(self.community.id, ref.value)
        if len(named) > 1:
            raise UserError(
                f"Several members are called {ref}; mention the one you mean with the chat's @."
            )
        if named:
            return named[0]
        found = await members.by_identity(self.inbound.platform, ref.value)
        if found is not None and found.community == self.community.id:
            return found
        raise UserError(f"I don't know a member {ref} here; check the name or mention them with @.")

    def require(self, role: Role, what: str) -> None:
        if not self.caller.role.allows(role):
            raise UserError(f"Only {role.plural} can {what}.")

    async def post(self, draft: ledger.TransactionDraft) -> int | None:
        """Post a ledger transaction; a breached credit limit becomes a clear refusal."""
        try:
            return await self.uow.ledger.post(
                self.community.id, draft, self.settings.credit_limit, self.clock.now()
            )
        except LimitExceeded as exc:
            who = await self.uow.members.get(exc.account.member) if exc.account.member else None
            name = (
                "your"
                if who is not None and who.id == self.caller.id
                else (f"{who.name}'s" if who else "the account's")
            )
            raise UserError(
                f"That would take {name} balance from {format_sif(exc.balance)} to "
                f"{format_sif(exc.balance + exc.amount)}, below the credit limit of "
                f"{format_sif(exc.floor)}; nothing was changed."
            ) from None


Handler = Callable[[Context, Any], Awaitable[None]]
HANDLERS: dict[type[Any], Handler] = {}


def handles(cls: type[Any]) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[cls] = fn
        return fn

    return register


class Bot:
    """The core's single entry point for every adapter."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        settings: Settings,
        clock: Clock,
        relay: Relay | None = None,
        community_names: dict[str, str] | None = None,
    ) -> None:
        from bot import handlers

        handlers.load()
        self.uow_factory = uow_factory
        self.settings = settings
        self.clock = clock
        self.relay = relay or Relay(uow_factory, clock)
        self.community_names = community_names or {}

    async def handle(self, inbound: Inbound) -> list[Outbound]:
        """Handle one inbound event; returns (and delivers) what the bot said."""
        messages = await self._handle(inbound)
        await self.relay.deliver(messages)
        return messages

    def _error(self, inbound: Inbound, text: str) -> list[Outbound]:
        if inbound.channel is None:
            return [Outbound(inbound.platform, Delivery.DM, inbound.user, text)]
        return [Outbound(inbound.platform, Delivery.PRIVATE, inbound.user, text, inbound.channel)]

    async def _handle(self, inbound: Inbound) -> list[Outbound]:
        limit = self.settings.sif_max_message_chars
        if len(inbound.text) > limit:
            return self._error(
                inbound,
                f"Your message is too long ({len(inbound.text):,} characters; the most is "
                f"{limit:,}); nothing was changed.",
            )
        text = inbound.action or inbound.text
        try:
            command = parse(text)
        except ParseError as exc:
            return self._error(inbound, str(exc))
        spec = spec_of(command)
        try:
            async with self.uow_factory() as uow:
                now = self.clock.now()
                if inbound.event_id is not None:
                    key = f"{inbound.platform}:{inbound.community_key}:{inbound.event_id}"
                    if not await uow.events.first_time(key, now):
                        log.info("event %s seen before; ignored", key)
                        return []
                community = await uow.communities.get_or_create(
                    inbound.community_key,
                    self.community_names.get(
                        inbound.community_key, self.settings.sif_community_name
                    ),
                    self.settings.sif_tags,
                    now,
                )
                caller = await self._caller(uow, community, inbound)
                ctx = Context(uow, community, caller, inbound, self.settings, self.clock)
                if not caller.role.allows(spec.role):
                    raise UserError(
                        f"`{spec.name}` is for {spec.role.plural} only; type `help` for yours."
                    )
                handler = HANDLERS.get(type(command))
                if handler is None:
                    raise UserError(
                        f"`{spec.name}` is not available yet in this version of sif-bot."
                    )
                await handler(ctx, command)
                stored = []
                for message in ctx.outbound:
                    outbox_id = await uow.outbox.add(message, now)
                    stored.append(_with_id(message, outbox_id))
                await uow.members.touch(caller.id, now)
                await uow.commit()
                return stored
        except UserError as exc:
            return self._error(inbound, str(exc))
        except Exception:
            log.exception("command %s failed", spec.name)
            return self._error(inbound, SORRY)

    async def _caller(self, uow: UnitOfWork, community: Community, inbound: Inbound) -> Member:
        """The member behind this identity, created on first contact."""
        is_admin = (inbound.platform, inbound.user) in self.settings.admins
        member = await uow.members.by_identity(inbound.platform, inbound.user)
        if member is None:
            role = Role.ADMIN if is_admin else Role.MEMBER
            name = inbound.display_name or inbound.user
            member = await uow.members.create(
                community.id, name, role, inbound.platform, inbound.user, self.clock.now()
            )
            if self.settings.welcome_grant > 0:
                await uow.ledger.post(
                    community.id,
                    ledger.grant(
                        member.id,
                        self.settings.welcome_grant,
                        "welcome",
                        None,
                        key=f"welcome:{member.id}",
                    ),
                    self.settings.credit_limit,
                    self.clock.now(),
                )
        elif is_admin and member.role is not Role.ADMIN:
            # SIF_ADMINS is the operators' word: it raises a listed identity to admin.
            await uow.members.set_role(member.id, Role.ADMIN)
            member = await uow.members.get(member.id) or member
        return member


def _with_id(message: Outbound, outbox_id: int) -> Outbound:
    from dataclasses import replace

    return replace(message, outbox_id=outbox_id)
