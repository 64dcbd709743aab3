"""What a command handler works with: the open unit of work, who asked, where to answer.

Also the refusal a handler raises (:class:`UserError`) and the explicit registry each
handler module fills (:class:`Handlers`); the service runs the handlers, and nothing
here imports it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.app.notices import Notices, Written, platform_of
from bot.commands import MemberRef
from bot.domain import ledger
from bot.domain.records import Community, Idea, Member, Role
from bot.i18n import N_, _, sif
from bot.messages import (
    Body,
    Button,
    Delivery,
    Inbound,
    Outbound,
    as_parts,
    compose,
    plain,
    render_plain,
    say,
)
from bot.ports import Clock, LimitExceeded, UnitOfWork
from bot.settings import Settings
from conversations.engine import Flow

# What only one role may do, as `require` says it: `what` is an English phrase marked with
# N_() where it is written ("list all ideas"), translated here.
_ONLY = {
    Role.MEMBER: N_("Only members can {what}."),
    Role.STAFF: N_("Only staff can {what}."),
    Role.ADMIN: N_("Only admins can {what}."),
}
# A role as a word in a sentence ("Ann is staff").
ROLE_NAMES = {Role.MEMBER: N_("member"), Role.STAFF: N_("staff"), Role.ADMIN: N_("admin")}


def role_name(role: Role) -> str:
    """The role as people read it, in the language being written."""
    return _(ROLE_NAMES[role])


class UserError(Exception):
    """A refusal for the caller: one sentence, and the unit of work is rolled back."""

    def __init__(self, body: Body, topic: str = "refused", subject: str | None = None) -> None:
        self.parts = as_parts(body)
        self.topic = topic
        self.subject = subject
        super().__init__(render_plain(self.parts))


def answer(
    inbound: Inbound,
    body: Body,
    topic: str,
    subject: str | None = None,
    public: bool = False,
    buttons: tuple[Button, ...] = (),
) -> Outbound:
    """A message to whoever sent `inbound`: in the DM, privately where they asked, or
    (public) in that channel."""
    parts = compose(body, buttons)
    if inbound.channel is None:
        return Outbound(inbound.platform, Delivery.DM, inbound.user, topic, parts, None, subject)
    if public:
        return Outbound(
            inbound.platform,
            Delivery.CHANNEL,
            inbound.channel,
            topic,
            parts,
            None,
            subject,
            in_reply_to=inbound.event_id if inbound.action is None else None,
        )
    return Outbound(
        inbound.platform, Delivery.PRIVATE, inbound.user, topic, parts, inbound.channel, subject
    )


@dataclass
class Context:
    """What a handler gets: the open unit of work, who asked, and where to answer."""

    uow: UnitOfWork
    community: Community
    caller: Member
    inbound: Inbound
    settings: Settings
    clock: Clock
    flows: dict[str, Flow] = field(default_factory=dict)
    outbound: list[Outbound] = field(default_factory=list)
    # the commands this bot has handlers for (`help` marks the others)
    available: frozenset[type[Any]] = frozenset()

    # -- answering ------------------------------------------------------------------

    def reply(
        self,
        body: Body,
        *,
        topic: str,
        subject: str | None = None,
        public: bool = False,
        buttons: tuple[Button, ...] = (),
    ) -> None:
        """Answer the caller: in the DM, privately in a channel, or (public) in the channel.

        Public answers are staff's (balances, stats, exports, assignments): they are posted
        only in the staff channel. Asked anywhere else, the answer goes to the staff channel
        (the caller is told so), or privately to the caller when there is none."""
        inbound = self.inbound
        if not public or inbound.channel is None:
            self.outbound.append(answer(inbound, body, topic, subject, False, buttons))
            return
        staff_channel = self.notices.staff_channel()
        on_its_platform = inbound.platform == platform_of(self.community.key)
        if on_its_platform and inbound.channel == staff_channel:
            self.outbound.append(answer(inbound, body, topic, subject, True, buttons))
        elif on_its_platform and staff_channel:
            parts = compose(body, buttons)
            self.outbound.append(
                Outbound(
                    inbound.platform, Delivery.CHANNEL, staff_channel, topic, parts, None, subject
                )
            )
            moved = _(
                "Staff answers are not posted in this channel; this one is in the staff channel."
            )
            self.outbound.append(answer(inbound, moved, "moved-to-staff-channel", subject))
        else:
            only_you = plain(
                _("Only you see this: staff answers are not posted in this channel.") + "\n"
            )
            self.outbound.append(
                answer(inbound, only_you + as_parts(body), topic, subject, False, buttons)
            )

    @property
    def notices(self) -> Notices:
        """Messages to others; they share this context's outbound list."""
        return Notices(
            self.uow, self.settings, self.community, self.inbound.platform, self.outbound
        )

    async def tell_staff(self, body: Written, *, topic: str, subject: str | None = None) -> None:
        """Post to the staff channel: give the body as a function (`lambda: ...`) so that it
        is written in the staff's language, not the caller's."""
        await self.notices.staff(body, topic=topic, subject=subject)

    # -- lookups --------------------------------------------------------------------

    async def resolve(self, ref: MemberRef) -> Member:
        members = self.uow.members
        if ref.platform is not None:
            found = await members.by_identity(ref.platform, ref.value)
            if found is None or found.community != self.community.id:
                raise UserError(
                    _("{member} has not talked to sif-bot yet, so I don't know them.").format(
                        member=str(ref)
                    ),
                    "unknown-member",
                )
            return found
        named = await members.by_name(self.community.id, ref.value)
        if len(named) > 1:
            raise UserError(
                _(
                    "Several members are called {member}; mention the one you mean with the "
                    "chat's @."
                ).format(member=str(ref))
            )
        if named:
            return named[0]
        found = await members.by_identity(self.inbound.platform, ref.value)
        if found is not None and found.community == self.community.id:
            return found
        raise UserError(
            _("I don't know a member {member} here; check the name or mention them with @.").format(
                member=str(ref)
            )
        )

    async def idea(self, number: int) -> Idea:
        """The community's idea I-`number`, or a refusal naming it."""
        found = await self.uow.ideas.by_number(self.community.id, number)
        if found is None:
            raise UserError(
                say("There is no idea I-{number} here; `ideas` lists yours.", number=number),
                "unknown-idea",
            )
        return found

    def require(self, role: Role, what: str) -> None:
        """Refuse unless the caller's role allows `role`: `what` is what it may do, an
        English phrase marked with N_() ("list all ideas"), translated here."""
        if not self.caller.role.allows(role):
            raise UserError(_(_ONLY[role]).format(what=_(what)), "forbidden")

    async def post(self, draft: ledger.TransactionDraft) -> int | None:
        """Post a ledger transaction; a breached credit limit becomes a clear refusal."""
        try:
            return await self.uow.ledger.post(
                self.community.id, draft, self.settings.credit_limit, self.clock.now()
            )
        except LimitExceeded as exc:
            who = await self.uow.members.get(exc.account.member) if exc.account.member else None
            if who is not None and who.id == self.caller.id:
                text = _(
                    "That would take your balance from {balance} to {after}, below the credit "
                    "limit of {floor}; nothing was changed."
                )
            elif who is not None:
                text = _(
                    "That would take {name}'s balance from {balance} to {after}, below the "
                    "credit limit of {floor}; nothing was changed."
                )
            else:
                text = _(
                    "That would take the account's balance from {balance} to {after}, below the "
                    "credit limit of {floor}; nothing was changed."
                )
            raise UserError(
                text.format(
                    name=who.name if who is not None else "",
                    balance=sif(exc.balance),
                    after=sif(exc.balance + exc.amount),
                    floor=sif(exc.floor),
                ),
                "limit-exceeded",
            ) from None


Handler = Callable[[Context, Any], Awaitable[None]]


class Handlers:
    """One handler module's commands: ``@handlers.on(Accept)`` over each handler."""

    def __init__(self) -> None:
        self.by_command: dict[type[Any], Handler] = {}

    def on(self, cls: type[Any]) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            if cls in self.by_command:
                raise ValueError(f"{cls.__name__} is handled twice")
            self.by_command[cls] = fn
            return fn

        return register


def registry(*modules: Handlers) -> Mapping[type[Any], Handler]:
    """The handlers of several modules; a command handled twice is a programming error."""
    merged: dict[type[Any], Handler] = {}
    for module in modules:
        for cls, fn in module.by_command.items():
            if cls in merged:
                raise ValueError(f"{cls.__name__} is handled twice")
            merged[cls] = fn
    return merged
