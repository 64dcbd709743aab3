"""`Bot.handle(inbound)`: parse, authorize, run the handler in a unit of work, deliver.

Everything a command says to people is written to the outbox in the same
transaction as its state changes and delivered only after the commit; a failure
before the commit changes nothing and the caller gets one clear sentence.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import MISSING, dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

import structlog

from bot.app import handlers
from bot.app.context import Context, UserError, answer
from bot.app.federation import Federation
from bot.app.handlers.conversation import (
    WELCOME,
    Pending,
    ask_again,
    is_paused,
    pending_question,
)
from bot.app.identity import forgotten_before
from bot.app.limits import RateLimiter, Verdict
from bot.app.notices import language_of
from bot.app.observability import Metrics, new_request_id
from bot.app.offering import FAIRNESS_DAYS
from bot.app.outbox import Relay
from bot.app.wording import why
from bot.commands import (
    COMMANDS,
    REVIEW_CHARS,
    Cancel,
    Help,
    ParseError,
    Word,
    longest_text,
    parse,
    spec_of,
    suggest,
)
from bot.commands.parser import is_help_topic
from bot.domain import ledger
from bot.domain.records import Community, Conversation, Member, Role
from bot.i18n import N_, _, current, ngettext, normalize, number, sif, speaking, switch
from bot.messages import (
    Delivery,
    Inbound,
    Outbound,
    Parts,
    join,
    plain,
    say,
)
from bot.ports import (
    Clock,
    Conflict,
    NeedsSnapshot,
    StoreBusy,
    UnitOfWork,
    UnitOfWorkFactory,
)
from bot.settings import Settings
from conversations.engine import CONTROL_WORDS, Flow
from conversations.loader import load_flows

log = logging.getLogger(__name__)

# How far past its longest free text a command's message may go before it is refused
# unread (its command words and arguments, and a text a little too long for the parser
# to say by how much).
LONG_TEXT_ROOM = 1_000
SORRY = N_("Sorry, something went wrong on my side and nothing was changed; please try again.")
# A command the caller's role does not allow, by the role it needs.
ONLY_FOR = {
    Role.MEMBER: N_("`{name}` is for members only; type `help` for yours."),
    Role.STAFF: N_("`{name}` is for staff only; type `help` for yours."),
    Role.ADMIN: N_("`{name}` is for admins only; type `help` for yours."),
}


def is_answer(inbound: Inbound, text: str, command: Any, conversation: Conversation) -> bool:
    """Whether text goes to the active conversation rather than running as a command.

    The rule the conversations' help states (conversations.engine.ANSWER_RULE): only a
    direct message answers, never a channel; a button gives its answer. The conversation
    words (back, skip, edit, status, confirm, cancel; stop, quit, exit pause it) go to the
    conversation. A command typed explicitly (Slack `/sif`, Matrix `!sif`, a leading `/`)
    is a command, and so are `help`, `help <command>` and any command with all it needs,
    unless what follows its name is free words: "find partners" and "Help for refugees"
    are answers. Anything else is an answer, except while the conversation is paused: then
    only its words reach it. The welcome menu takes what is not a command."""
    if inbound.channel is not None:
        return False  # a channel is not the private conversation
    if inbound.action is not None:
        return command is None or command == Cancel()  # its buttons: choices, confirm, cancel
    first = _first_word(text).rstrip(".!?")
    if first == "cancel":
        return command is None or command == Cancel()  # `cancel R-3` is the command
    paused = is_paused(conversation)
    if isinstance(command, Help):
        if inbound.explicit or paused:
            return False
        if command.topic is None:  # a flow's own help; the welcome menu's is the list
            return conversation.flow != WELCOME
        # "Help for refugees" is a title, not a question about the command "for".
        return not is_help_topic(command.topic)
    if conversation.flow == WELCOME:
        return command is None  # its answers are 1, 2 and their words; `status` is the command
    if first in CONTROL_WORDS:
        return True
    if inbound.explicit or paused:
        return False
    return command is None or _starts_with_free_words(command)


def _starts_with_free_words(command: Any) -> bool:
    """Whether the first argument given to a command is read as any word(s) (a `find`
    search, a `link` code), so that the line may just as well be an answer."""
    spec = spec_of(command)
    readers = {name: reader for name, reader, _ in spec.fields}
    for f in fields(command):
        if f.default is not MISSING and getattr(command, f.name) == f.default:
            continue
        reader = readers[f.name]
        return reader.rest or isinstance(reader, Word)
    return False


def _first_word(text: str) -> str:
    return text.split(maxsplit=1)[0].lower() if text.strip() else ""


def names_command(text: str) -> bool:
    """A known command with bad arguments deserves the parser's answer."""
    return _first_word(text) in {name.split()[0] for name in COMMANDS}


def is_typo(text: str) -> bool:
    return suggest(_first_word(text)) is not None


class Bot:
    """The core's single entry point for every adapter."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        settings: Settings,
        clock: Clock,
        relay: Relay | None = None,
        community_names: dict[str, str] | None = None,
        flows: dict[str, Flow] | None = None,
    ) -> None:
        self.handlers = handlers.REGISTRY
        self.flows = flows if flows is not None else load_flows(settings.sif_flows_path)
        self.uow_factory = uow_factory
        self.settings = settings
        # the language each person was last answered in (see `_language_hint`)
        self._languages: dict[tuple[str, str], str] = {}
        self.clock = clock
        self.relay = relay or Relay.from_settings(uow_factory, clock, settings)
        self.community_names = community_names or {}
        self._communities: dict[str, Community] = {}
        self.metrics = Metrics()
        self.limiter = RateLimiter(settings.sif_rate_commands_per_minute)
        # read-only commands seen to need more than one statement (`_read_only`)
        self._needs_snapshot: set[str] = set()
        # this node in the network of factories (bot.app.federation), when configured
        self.federation: Federation | None = None

    async def handle(
        self,
        inbound: Inbound,
        committed: Callable[[list[Outbound]], Awaitable[None]] | None = None,
        *,
        answer_in_ack: bool = False,
        answer_directly: bool = False,
        later: Callable[[Coroutine[Any, Any, None]], object] | None = None,
    ) -> list[Outbound]:
        """Handle one inbound event; returns (and delivers) what the bot said.

        `committed` is awaited once the outcome is durable and before anything is sent:
        an adapter acknowledges the platform's event there, so an event is acknowledged
        only when a retry of it would find it done.

        With `answer_in_ack` (a platform that shows the acknowledgement's text to the
        caller, like a Slack slash command's response) answers that change nothing — a
        read-only command's private answer, a refusal — are handed to `committed` to
        carry in the acknowledgement instead of going through the outbox: if the ack is
        lost, nothing happened and the caller asks again. Everything else is handed an
        empty list and delivered from the outbox.

        With `answer_directly` (a platform whose adapter sends a read-only command's
        answers itself, as Matrix does) the private answers of a read-only command, in
        the caller's direct chat too, are handed to `committed` in the same way; refusals
        and everything else take the usual path. The adapter sends them, and hands the
        event to `handle` again without it when it cannot: nothing was changed.

        With `later` (an adapter that answers the platform when this returns) the
        delivery of what was stored is handed to it to run in the background instead of
        being awaited; this then returns right after `committed`.

        Every log line while it is handled carries the same request id; one info line
        and the metrics record the command (never the text), its outcome and duration."""
        report = _Report()
        started = time.perf_counter()
        deferred = False
        with structlog.contextvars.bound_contextvars(
            request_id=new_request_id(),
            platform=inbound.platform,
            community=inbound.community_key,
        ):
            try:
                with speaking(self._language_hint(inbound)):
                    messages, in_ack = await self._handle(
                        inbound, report, answer_in_ack, answer_directly
                    )
                    language = current()
                if report.outcome == "refused" and not messages and not in_ack:
                    report.outcome = "duplicate"  # a refusal already given for this event
                if committed is not None:
                    with speaking(language):  # an ack's own words, in the caller's language
                        await committed(in_ack)
                elif in_ack:
                    messages = [*in_ack, *messages]
                    in_ack = []
                if later is not None and messages:
                    later(self._deliver(messages, report, started))
                    deferred = True
                else:
                    await self.relay.deliver(messages)
            except Exception:
                report.outcome = "error"
                raise
            finally:
                if not deferred:
                    self._observe(report, time.perf_counter() - started)
                structlog.contextvars.unbind_contextvars("command")
        return [*in_ack, *messages]

    async def _deliver(self, messages: list[Outbound], report: _Report, started: float) -> None:
        """`handle`'s delivery when handed to `later` (run in a copy of its context)."""
        try:
            await self.relay.deliver(messages)
        except Exception:
            report.outcome = "error"
            raise
        finally:
            self._observe(report, time.perf_counter() - started)

    def _observe(self, report: _Report, seconds: float) -> None:
        self.metrics.record(report.command, report.outcome, seconds)
        log.info(
            "command handled",
            extra={
                "command": report.command,
                "outcome": report.outcome,
                "duration_ms": round(seconds * 1000, 1),
            },
        )

    async def warm(self) -> None:
        """Read each community's peer table and texts into this process's memory, so the
        first request after a start is routed as fast as the next ones (at 100,000 members
        the first read takes seconds). Run in the background at start; a failure only
        leaves the first request to read them."""
        try:
            async with self.uow_factory.reading() as uow:
                communities = await uow.communities.all()
            for community in communities:
                now = self.clock.now()
                async with self.uow_factory.reading() as uow:
                    await uow.routing.peer_index(
                        community.id, now, now - timedelta(days=FAIRNESS_DAYS)
                    )
                    if self.settings.sif_affinity:
                        await uow.texts.corpus(community.id)
        except Exception:
            log.exception("could not read the peer tables ahead of the first request")

    async def home(self, platform: str, user: str) -> Parts:
        """A member's overview (Slack App Home): balance, held SIF, open offers, ideas; in
        their language."""
        with speaking(self._languages.get((platform, user)) or self.settings.sif_language):
            return await self._home(platform, user)

    async def _home(self, platform: str, user: str) -> Parts:
        async with self.uow_factory() as uow:
            member = await uow.members.by_identity(platform, user)
            if member is not None:
                switch(language_of(member, self.settings))
            if member is None:
                return say(
                    "Welcome! Send me a direct message to start: describe your idea "
                    "(`intake`) or offer your experience as a peer (`profile`)."
                )
            info = await uow.ledger.balance_info(member)
            offers = await uow.requests.open_offers(member.id)
            ideas = await uow.ideas.of_owner(member.id)
        lines = [
            say(
                "*Balance* {balance} · *held* {held} · *credit limit* {limit}",
                balance=sif(info.balance),
                held=sif(info.held),
                limit=sif(self.settings.credit_limit),
            ),
            say(
                "Given {given} in reviews, received {received}.",
                given=sif(info.given),
                received=sif(info.received),
            ),
            (),
            say("*Open offers* ({count})", count=number(len(offers))),
            *(
                say(
                    "• {ref} until {until} UTC — {why}",
                    ref=o.request_ref,
                    until=o.expires_at.strftime("%Y-%m-%d %H:%M"),
                    why=why(o.explanation),
                )
                for o in offers
            ),
            (),
            say("*Your ideas* ({count})", count=number(len(ideas))),
            *(
                say("• {ref} {title} · {status}", ref=i.ref, title=i.title, status=i.status.value)
                for i in ideas
            ),
        ]
        return join("\n", lines)

    async def _store(
        self, uow: UnitOfWork, messages: list[Outbound], now: datetime
    ) -> list[Outbound]:
        """Write messages to the outbox, held for this process when it can send them."""
        stored = []
        for message in messages:
            held = self.relay.holds(message.platform, now)
            outbox_id = await uow.outbox.add(message, now, held)
            stored.append(_with_id(message, outbox_id, held))
        return stored

    async def _refuse(
        self, inbound: Inbound, refusal: UserError, in_ack: bool = False
    ) -> tuple[list[Outbound], list[Outbound]]:
        """A refusal that changed nothing, as (messages, messages for the ack). Carried
        in the ack when the adapter can; for a platform event otherwise it goes through
        the outbox with the event recorded as handled, so a redelivered event is not
        refused twice and a crash before sending does not lose it; else sent directly."""
        messages = [answer(inbound, refusal.parts, refusal.topic, refusal.subject)]
        if in_ack:
            return [], messages
        if inbound.event_id is None:
            return messages, []
        try:
            async with self.uow_factory() as uow:
                now = self.clock.now()
                if not await uow.events.first_time(_event_key(inbound), now):
                    return [], []
                stored = await self._store(uow, messages, now)
                await uow.commit()
                return stored, []
        except Exception:
            log.exception("could not record a refusal; answering directly")
            return messages, []

    async def _handle(
        self,
        inbound: Inbound,
        report: _Report,
        answer_in_ack: bool = False,
        answer_directly: bool = False,
    ) -> tuple[list[Outbound], list[Outbound]]:
        """(messages stored in the outbox, messages for the ack) — see `handle`."""
        inbound = _storable(inbound)
        # A command with a long free text (a review's feedback) may pass the usual limit;
        # a little more than its text may have reaches the parser, which says by how much.
        limit = self.settings.sif_max_message_chars
        text_limit = longest_text(inbound.text)
        if text_limit > limit:
            limit = text_limit + LONG_TEXT_ROOM
        if len(inbound.text) > limit:
            report.outcome = "refused"
            if text_limit > self.settings.sif_max_message_chars:
                text = _(
                    "Your message is too long ({length} characters; its text may have at most "
                    "{most}); nothing was changed. Shorten it, or put the long text in a shared "
                    "document and send its link."
                )
            else:
                text = _(
                    "Your message is too long ({length} characters; the most is {most}, or "
                    "{review} for a review's feedback with `done`); nothing was changed. "
                    "Shorten it, or put the long text in a shared document and send its link."
                )
            too_long = UserError(
                text.format(
                    length=number(len(inbound.text)),
                    most=number(
                        text_limit if text_limit > self.settings.sif_max_message_chars else limit
                    ),
                    review=number(REVIEW_CHARS),
                ),
                "too-long",
            )
            return await self._refuse(inbound, too_long, answer_in_ack)
        verdict = self.limiter.check(
            (inbound.platform, inbound.community_key, inbound.user), self.clock.now()
        )
        if verdict is not Verdict.OK:
            report.outcome = "limited"
            if verdict is Verdict.DROP:
                return [], []
            per_minute = self.limiter.limit
            slow_down = UserError(
                ngettext(
                    "You are sending more than {count} message a minute, so I am pausing for a "
                    "moment; nothing was changed. Please wait a minute and try again.",
                    "You are sending more than {count} messages a minute, so I am pausing for a "
                    "moment; nothing was changed. Please wait a minute and try again.",
                    per_minute,
                ).format(count=number(per_minute)),
                "rate-limited",
            )
            return await self._refuse(inbound, slow_down, answer_in_ack)
        text = (inbound.action or inbound.text).strip()
        typed = _TYPED_PREFIX.match(text) if inbound.action is None else None
        if typed is not None:
            # `/balance` or `!sif balance` typed where the platform passes it on as text
            # (the console, a direct message): a command, never an answer.
            text = text[typed.end() :]
            inbound = replace(inbound, text=text, explicit=True)
        command: Any = None
        problem: ParseError | None = None
        try:
            command = parse(text)
        except ParseError as exc:
            problem = exc
        spec = spec_of(command) if command is not None else None
        name = spec.name if spec is not None else "answer"
        report.command = name
        structlog.contextvars.bind_contextvars(command=name)
        try:
            readable = spec is not None and spec.reads_only and not spec.public
            if readable and (answer_in_ack or answer_directly):
                # A private answer that changes nothing rides on the ack (see `handle`).
                try:
                    answers = await self._read_only(inbound, command, name, answer_directly)
                except StoreBusy:
                    answers = None  # the store would have had to wait: the full path does
                if answers is not None:
                    return [], answers
            try:
                return await self._write(inbound, text, command, problem, report)
            except Conflict:
                # Another message of theirs made the same thing at the same moment (their
                # member, on first contact): all was rolled back; once more finds it made.
                log.info("a concurrent write took a unique key first; handling it again")
                return await self._write(inbound, text, command, problem, report)
        except UserError as exc:
            report.outcome = "refused"
            return await self._refuse(inbound, exc, answer_in_ack)
        except Exception:
            report.outcome = "error"
            log.exception("handling %s failed", name)
            return await self._refuse(inbound, UserError(_(SORRY), "error"), answer_in_ack)

    async def _write(
        self,
        inbound: Inbound,
        text: str,
        command: Any,
        problem: ParseError | None,
        report: _Report,
    ) -> tuple[list[Outbound], list[Outbound]]:
        """The full path: the event recorded, the caller found or made, the command run
        and what it says stored in the outbox, in one unit of work. A refusal (UserError)
        of a command given in the middle of a conversation ends with its question again."""
        pending: Pending | None = None
        try:
            async with self.uow_factory() as uow:
                now = self.clock.now()
                if inbound.event_id is not None:
                    key = _event_key(inbound)
                    if not await uow.events.first_time(key, now):
                        log.info("event %s seen before; ignored", key)
                        report.outcome = "duplicate"
                        return [], []
                community = self._communities.get(inbound.community_key)
                if community is None:
                    community = await uow.communities.get_or_create(
                        inbound.community_key,
                        self.community_names.get(
                            inbound.community_key, self.settings.sif_community_name
                        ),
                        self.settings.sif_tags,
                        now,
                    )
                own_community = community  # the inbound's, before a linked account moves it
                caller, is_new = await self._caller(uow, community, inbound)
                self._speak_to(inbound, caller)
                # Active now, before the command runs: `balances` typed by staff shows them
                # active today, not "never".
                await uow.members.touch(caller.id, now)
                if caller.community != community.id:
                    # A linked account speaks in the community of the member it belongs to.
                    community = await uow.communities.get(caller.community) or community
                ctx = self._context(uow, community, caller, inbound)
                # Conversations are held in the direct chat; a channel never answers one.
                conversation = (
                    await uow.conversations.get(caller.id) if inbound.channel is None else None
                )
                answering = conversation is not None and is_answer(
                    inbound, text, command, conversation
                )
                if conversation is not None and not answering:
                    # A command in between: the conversation's question is asked again after
                    # it (after a refusal too), so the person knows where they are.
                    pending = await pending_question(ctx, conversation, command)
                if answering:
                    assert conversation is not None
                    await handlers.on_answer(ctx, conversation, text)
                elif command is None:
                    assert problem is not None
                    in_dm = inbound.channel is None and not inbound.explicit
                    # A newcomer's first words start onboarding unless they named a command.
                    if not in_dm or names_command(text) or (is_typo(text) and not is_new):
                        raise UserError(problem.parts, "unknown-command")
                    await handlers.greet(ctx, is_new)
                else:
                    await self._run_command(ctx, command)
                    if pending is not None:
                        await ask_again(ctx, pending)
                stored = await self._store(uow, ctx.outbound, now)
                await uow.commit()
                # Community rows are never deleted or renumbered: safe to remember.
                self._communities[inbound.community_key] = own_community
                return stored, []
        except UserError as exc:
            if pending is None:
                raise
            raise UserError(
                exc.parts + plain("\n\n") + pending.body, exc.topic, exc.subject
            ) from exc

    async def _read_only(
        self, inbound: Inbound, command: Any, name: str, direct: bool = False
    ) -> list[Outbound] | None:
        """A read-only command's private answers (with `direct`, those in the caller's
        direct chat too), from a read-only unit of work; None when it needs the full path
        (a first contact, activity to record, a role to raise, an answer for others or
        with a file).

        The caller is read with their balance in one statement (all `balance` needs).
        A command not yet seen to need more is first tried in a single-statement unit of
        work, which saves PostgreSQL its BEGIN and ROLLBACK round trips; one that needs
        more statements is read again in a snapshot, and from then on read in one."""
        community = self._communities.get(inbound.community_key)
        if community is None:
            return None
        if direct:  # reads the event log too (`_read_in`): a snapshot
            return await self._read_in(self.uow_factory.reading(), inbound, command, direct)
        if name not in self._needs_snapshot:
            try:
                return await self._read_in(
                    self.uow_factory.reading(single=True), inbound, command, direct
                )
            except NeedsSnapshot:
                self._needs_snapshot.add(name)
        return await self._read_in(self.uow_factory.reading(), inbound, command, direct)

    async def _read_in(
        self, reading: UnitOfWork, inbound: Inbound, command: Any, direct: bool
    ) -> list[Outbound] | None:
        community = self._communities[inbound.community_key]
        async with reading as uow:
            if direct and inbound.event_id is not None:
                # A platform that delivers an event again (Matrix after a restart) gets
                # no second answer to one handled the usual way.
                if await uow.events.seen(_event_key(inbound)):
                    return []
            found = await uow.ledger.of_identity(inbound.platform, inbound.user)
            caller = found[0] if found is not None else None
            if caller is None or not _fresh(caller, self.clock.now()):
                return None
            is_admin = (inbound.platform, inbound.user) in self.settings.admins
            if is_admin and caller.role is not Role.ADMIN:
                return None
            if caller.community != community.id:
                community = await uow.communities.get(caller.community) or community
            self._speak_to(inbound, caller)
            ctx = self._context(uow, community, caller, inbound)
            await self._run_command(ctx, command)
            return ctx.outbound if _private(ctx, direct) else None

    def _language_hint(self, inbound: Inbound) -> str:
        """The language to answer in before the caller is looked up (a refusal of a
        message too long, say): theirs when seen before, else their platform's locale,
        else the community's."""
        known = self._languages.get((inbound.platform, inbound.user))
        return known or normalize(inbound.locale) or self.settings.sif_language

    def _speak_to(self, inbound: Inbound, caller: Member) -> None:
        language = language_of(caller, self.settings)
        self._languages[(inbound.platform, inbound.user)] = language
        switch(language)

    def _context(
        self, uow: UnitOfWork, community: Community, caller: Member, inbound: Inbound
    ) -> Context:
        return Context(
            uow,
            community,
            caller,
            inbound,
            self.settings,
            self.clock,
            self.flows,
            available=frozenset(self.handlers),
        )

    async def _run_command(self, ctx: Context, command: Any) -> None:
        spec = spec_of(command)
        if not ctx.caller.role.allows(spec.role):
            raise UserError(say(ONLY_FOR[spec.role], name=spec.name), "forbidden")
        handler = self.handlers.get(type(command))
        if handler is None:
            raise UserError(
                say("`{name}` is not available yet in this version of sif-bot.", name=spec.name)
            )
        await handler(ctx, command)

    async def _caller(
        self, uow: UnitOfWork, community: Community, inbound: Inbound
    ) -> tuple[Member, bool]:
        """The member behind this identity (created on first contact), and whether new."""
        is_admin = (inbound.platform, inbound.user) in self.settings.admins
        member = await uow.members.by_identity(inbound.platform, inbound.user)
        if member is None:
            role = Role.ADMIN if is_admin else Role.MEMBER
            name = inbound.display_name or inbound.user
            member = await uow.members.create(
                community.id, name, role, inbound.platform, inbound.user, self.clock.now()
            )
            # A forgotten identity that comes back starts afresh, without a second grant.
            if self.settings.welcome_grant > 0 and not await forgotten_before(
                uow, community.id, inbound.platform, inbound.user
            ):
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
            return await self._keep_locale(uow, member, inbound), True
        if is_admin and member.role is not Role.ADMIN:
            # SIF_ADMINS is the operators' word: it raises a listed identity to admin.
            await uow.members.set_role(member.id, Role.ADMIN)
            member = await uow.members.get(member.id) or member
        return await self._keep_locale(uow, member, inbound), False

    async def _keep_locale(self, uow: UnitOfWork, member: Member, inbound: Inbound) -> Member:
        """The platform's locale for the person (Slack's), kept on the member: it is their
        language until they choose one."""
        locale = normalize(inbound.locale)
        if locale is None or locale == member.locale:
            return member
        await uow.members.set_language(member.id, locale=locale)
        return replace(member, locale=locale)


# How stale a member's "last active" may get before a read-only command records it.
ACTIVITY_RESOLUTION = timedelta(minutes=10)


def _fresh(member: Member, now: datetime) -> bool:
    """Whether the member's last activity is recent enough to leave it as it is."""
    return member.last_active is not None and now - member.last_active < ACTIVITY_RESOLUTION


def _private(ctx: Context, direct: bool = False) -> bool:
    """Whether everything said is a private answer to the caller without a file (with
    `direct`, one in their direct chat counts too)."""
    kinds = (Delivery.PRIVATE, Delivery.DM) if direct else (Delivery.PRIVATE,)
    return all(
        m.delivery in kinds and m.to == ctx.inbound.user and m.file is None for m in ctx.outbound
    )


def _event_key(inbound: Inbound) -> str:
    return f"{inbound.platform}:{inbound.community_key}:{inbound.event_id}"


# A command marked as one by hand: `/sif ...`, `!sif ...` or `/` right before a word.
_TYPED_PREFIX = re.compile(r"^(?:[/!]sif\b\s*|/(?=[^\W\d_]))", re.IGNORECASE)

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


_INBOUND_FIELDS = tuple(f.name for f in fields(Inbound))


def _storable(inbound: Inbound) -> Inbound:
    """The event with text every database can store: a lone surrogate (a broken JSON
    escape from a platform) becomes U+FFFD and NUL (refused by PostgreSQL) is dropped."""
    changes: dict[str, Any] = {
        name: _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", value)
        for name in _INBOUND_FIELDS
        if isinstance(value := getattr(inbound, name), str) and _UNSTORABLE.search(value)
    }
    return replace(inbound, **changes) if changes else inbound


@dataclass
class _Report:
    """What `Bot.handle` logs and counts about one inbound event."""

    command: str = "unknown"  # until the text is parsed
    outcome: str = "ok"  # ok, refused, error or duplicate


def _with_id(message: Outbound, outbox_id: int, held_until: datetime | None) -> Outbound:
    from dataclasses import replace

    return replace(message, outbox_id=outbox_id, held_until=held_until)
