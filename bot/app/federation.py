"""This node in the network of factories (SPEC §12): its name, key and partners, the
messages it queues for them, and the door that takes theirs.

Sending goes through the outbox like any message to people: `outbound` makes an
`Outbound` for the platform ``federation`` addressed to the partner, with the message's
id, kind and body as a JSON file; the relay hands it to the federation messenger, which
asks `seal` for the partner's inbox and the signed bytes (signed afresh, with the time
of that attempt) and posts them. A partner that is down fails the send, and the outbox
tries again later; the id stays the same, so the partner does the work once.

Receiving: `receive` opens the envelope (`bot.domain.federation.open_envelope`: a
refusal changes nothing), records the message id in the event log in the same unit of
work as the message's effects (a repeat is a no-op), and runs the handler of its kind.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

from bot.domain.federation import (
    Message,
    Partner,
    PartnersError,
    Refused,
    load_key,
    open_envelope,
    read_partners,
    seal,
)
from bot.messages import Delivery, File, Outbound
from bot.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bot.settings import Settings, load_settings

PLATFORM = "federation"
_FILE = "message.json"

Handler = Callable[
    ["Federation", UnitOfWork, Message, list[Outbound]], Awaitable[dict[str, Any] | None]
]
HANDLERS: dict[str, Handler] = {}


def handles(kind: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        HANDLERS[kind] = handler
        return handler

    return register


class FederationError(ValueError):
    """The node's settings are wrong; the message says which and how to fix it."""


@dataclass(frozen=True)
class Answer:
    status: int  # HTTP status for the door
    body: dict[str, Any]


class Federation:
    def __init__(
        self,
        name: str,
        key: SigningKey,
        partners: Mapping[str, Partner],
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        url: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.settings = settings if settings is not None else load_settings()
        self.relay: Any = None  # the outbox relay, to send at once what a message caused
        self.name = name
        self.key = key
        self.partners = dict(partners)
        self.uow_factory = uow_factory
        self.clock = clock
        self.url = url

    @property
    def public_key(self) -> str:
        return self.key.verify_key.encode().hex()

    @classmethod
    def from_settings(
        cls, settings: Settings, uow_factory: UnitOfWorkFactory, clock: Clock
    ) -> Federation | None:
        """The node the settings describe, or None when SIF_NODE_NAME is not set."""
        name = settings.sif_node_name
        if not name:
            return None
        if settings.sif_node_key_file is None:
            raise FederationError(
                "SIF_NODE_NAME is set but SIF_NODE_KEY_FILE is not: make a key with "
                "`sif-bot federation keygen --out FILE`"
            )
        key = load_key(_read(settings.sif_node_key_file, "SIF_NODE_KEY_FILE"))
        partners: dict[str, Partner] = {}
        if settings.sif_partners_file is not None:
            text = _read(settings.sif_partners_file, "SIF_PARTNERS_FILE")
            try:
                partners = read_partners(text, me=name)
            except PartnersError as exc:
                raise FederationError(f"{settings.sif_partners_file}: {exc}") from None
        return cls(name, key, partners, uow_factory, clock, settings.sif_node_url, settings)

    # sending

    def outbound(
        self, partner: str, kind: str, body: Mapping[str, Any], message_id: str | None = None
    ) -> Outbound:
        """A message for ``partner`` as the outbox keeps it (unsigned: it is signed when
        it is sent)."""
        if partner not in self.partners:
            raise FederationError(f"{partner!r} is not a partner of this node")
        return message(partner, kind, body, message_id)

    async def send(
        self, uow: UnitOfWork, partner: str, kind: str, body: Mapping[str, Any], message_id: str
    ) -> None:
        """Queue a message in the caller's unit of work: it leaves once that commits."""
        await uow.outbox.add(self.outbound(partner, kind, body, message_id), self.clock.now())

    def seal(self, message: Outbound) -> tuple[str, bytes]:
        """Where a queued message goes and its signed bytes, stamped now."""
        partner = self.partners.get(message.to)
        if partner is None:
            raise FederationError(f"{message.to!r} is no longer a partner of this node")
        data = next(p.content for p in message.parts if isinstance(p, File))
        payload = json.loads(data)
        envelope = Message(
            payload["id"],
            self.name,
            partner.name,
            payload["kind"],
            payload["body"],
            self.clock.now(),
        )
        return partner.inbox, seal(envelope, self.key)

    # receiving

    async def receive(self, raw: bytes) -> Answer:
        """Handle one message from a partner: refused (nothing changed), a repeat (done
        before: nothing changed), or done now, with the handler's answer."""
        now = self.clock.now()
        try:
            message = open_envelope(raw, self.partners, self.name, now)
        except Refused as refused:
            return Answer(
                403 if "signature" in refused.reason else 400, {"refused": refused.reason}
            )
        handler = HANDLERS.get(message.kind)
        if handler is None:
            return Answer(400, {"refused": f"unknown kind {message.kind[:40]!r}"})
        outbound: list[Outbound] = []
        async with self.uow_factory() as uow:
            if not await uow.events.first_time(f"federation:{message.sender}:{message.id}", now):
                return Answer(200, {"done": "before"})
            try:
                said = await handler(self, uow, message, outbound)
            except Refused as refused:
                return Answer(409, {"refused": refused.reason})  # rolled back
            for caused in outbound:
                await uow.outbox.add(caused, now)
            await uow.commit()
        if outbound and self.relay is not None:
            await self.relay.flush()
        return Answer(200, {"done": "now", **(said or {})})


def message(
    partner: str, kind: str, body: Mapping[str, Any], message_id: str | None = None
) -> Outbound:
    """A federation message as the outbox keeps it: its id, kind and body as JSON."""
    payload = {"id": message_id or uuid.uuid4().hex, "kind": kind, "body": dict(body)}
    data = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
    return Outbound(
        PLATFORM,
        Delivery.DM,
        partner,
        f"federation.{kind}",
        (File(_FILE, data, "application/json"),),
    )


def _read(path: Path, setting: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FederationError(f"{setting}: cannot read {path}: {exc.strerror}") from None


@handles("hello")
async def hello(
    federation: Federation, uow: UnitOfWork, message: Message, outbound: list[Outbound]
) -> dict[str, Any]:
    """A partner checking that this node hears it and trusts its key."""
    return {"node": federation.name}
