"""Federation (SPEC §12): the partners a node trusts and the messages nodes exchange,
signed with ed25519 (PyNaCl) and timestamped.

Pure: no I/O and no clock (the time is passed in). A message is JSON:
``{"message": {id, from, to, kind, body, sent_at}, "signature": hex}``; the signature
covers the message's canonical JSON (sorted keys, no spaces, UTF-8), so any change to
any field breaks it. ``open_envelope`` refuses, with a reason and nothing changed, a
message that is not JSON of that shape, from a node that is not a partner, meant for
another node, badly signed, or stamped more than ``MAX_SKEW`` away from now. A message's
id is chosen once, when it is queued, and kept across retries (each retry is signed
afresh with the time it is sent); the receiver's event log makes a repeat a no-op.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

MAX_SKEW = timedelta(minutes=5)
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_HEX_KEY = re.compile(r"^[0-9a-f]{64}$")
MAX_BYTES = 256 * 1024  # the largest message a node reads
MAX_ID = 100


class Refused(ValueError):
    """A message refused: ``reason`` says why, in a few words, for the sender's log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PartnersError(ValueError):
    """The partners file is wrong; the message names the entry and the field."""


@dataclass(frozen=True)
class Partner:
    name: str
    url: str  # its public base URL; messages go to <url>/federation/inbox
    public_key: str  # ed25519, 64 hex digits
    limit: int  # hundredths of SIF: how far its mirror account may go below zero
    tags: tuple[str, ...] = ()  # expertise its peers offer (to choose a partner by)
    languages: tuple[str, ...] = ()

    @property
    def inbox(self) -> str:
        return self.url.rstrip("/") + "/federation/inbox"

    def verify_key(self) -> VerifyKey:
        return VerifyKey(bytes.fromhex(self.public_key))


def read_partners(text: str, me: str | None = None) -> dict[str, Partner]:
    """The partners of a TOML file of ``[[partner]]`` tables (name, url, public_key,
    limit in SIF; optional tags and languages)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PartnersError(f"the partners file is not TOML: {exc}") from None
    entries = data.get("partner", [])
    if not isinstance(entries, list):
        raise PartnersError("the partners file needs [[partner]] tables")
    found: dict[str, Partner] = {}
    for number, entry in enumerate(entries, 1):
        where = f"partner {number}"
        if not isinstance(entry, dict):
            raise PartnersError(f"{where} is not a table")
        name = entry.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise PartnersError(f"{where}: name must be 1-40 lower-case letters, digits or dashes")
        where = f"partner {name!r}"
        if name in found:
            raise PartnersError(f"{where} is listed twice")
        if me is not None and name == me:
            raise PartnersError(f"{where} is this node's own name")
        url = entry.get("url")
        if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url):
            raise PartnersError(f"{where}: url must start with http:// or https://")
        key = entry.get("public_key")
        if not isinstance(key, str) or not _HEX_KEY.match(key.strip().lower()):
            raise PartnersError(f"{where}: public_key must be 64 hex digits (federation keygen)")
        limit = entry.get("limit")
        try:
            amount = Decimal(str(limit))
        except InvalidOperation:
            amount = Decimal(-1)
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int | float)
            or not amount.is_finite()
            or not 0 <= amount <= 100_000
        ):
            raise PartnersError(f"{where}: limit must be an amount of SIF from 0 to 100000")
        if amount != amount.quantize(Decimal("0.01")):
            raise PartnersError(f"{where}: limit has at most two decimals")
        tags = entry.get("tags", [])
        languages = entry.get("languages", [])
        for field, value in (("tags", tags), ("languages", languages)):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise PartnersError(f"{where}: {field} must be a list of words")
        found[name] = Partner(
            name,
            url,
            key.strip().lower(),
            int(amount * 100),
            tuple(t.lower() for t in tags),
            tuple(lang.lower() for lang in languages),
        )
    return found


@dataclass(frozen=True)
class Message:
    id: str
    sender: str
    recipient: str
    kind: str
    body: Mapping[str, Any]
    sent_at: datetime


def _canonical(fields: Mapping[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _fields(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "from": message.sender,
        "to": message.recipient,
        "kind": message.kind,
        "body": dict(message.body),
        "sent_at": message.sent_at.astimezone(UTC).isoformat(),
    }


def seal(message: Message, key: SigningKey) -> bytes:
    """The message as it travels: its fields and their signature."""
    fields = _fields(message)
    signature = key.sign(_canonical(fields)).signature.hex()
    return _canonical({"message": fields, "signature": signature})


def open_envelope(raw: bytes, partners: Mapping[str, Partner], me: str, now: datetime) -> Message:
    """The message in ``raw`` if a partner signed it for this node just now; else
    `Refused` with the reason."""
    if len(raw) > MAX_BYTES:
        raise Refused("too large")
    try:
        envelope = json.loads(raw)
        fields = envelope["message"]
        signature = bytes.fromhex(envelope["signature"])
        sender, recipient = fields["from"], fields["to"]
        message = Message(
            str(fields["id"]),
            str(sender),
            str(recipient),
            str(fields["kind"]),
            dict(fields["body"]),
            datetime.fromisoformat(fields["sent_at"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise Refused("not a federation message") from None
    if not 0 < len(message.id) <= MAX_ID:
        raise Refused("a message id has 1 to 100 characters")
    partner = partners.get(message.sender)
    if partner is None:
        raise Refused(f"unknown partner {message.sender[:40]!r}")
    if message.recipient != me:
        raise Refused(f"meant for {message.recipient[:40]!r}, not this node")
    try:
        partner.verify_key().verify(_canonical(fields), signature)
    except (BadSignatureError, ValueError):
        raise Refused("bad signature") from None
    if message.sent_at.tzinfo is None or abs(now - message.sent_at) > MAX_SKEW:
        raise Refused("stale or future timestamp")
    return message


@dataclass(frozen=True)
class Link:
    """One committed transfer between two nodes as a node's ledger shows it, and the
    chain's hash up to it."""

    xid: str  # the request's network id (origin node and R-n)
    amount: int  # hundredths the origin paid the host for it
    hash: str


def chain(nodes: tuple[str, str], transfers: Mapping[str, int]) -> list[Link]:
    """The hash chain over a pair of nodes' committed transfers (xid → amount), in xid
    order: each hash covers the one before, so both nodes computing it from their own
    ledgers agree on every link exactly when their ledgers agree."""
    head = hashlib.sha256(("sif-federation:" + ":".join(sorted(nodes))).encode()).hexdigest()
    links = []
    for xid in sorted(transfers):
        head = hashlib.sha256(f"{head}|{xid}|{transfers[xid]}".encode()).hexdigest()
        links.append(Link(xid, transfers[xid], head))
    return links


def first_difference(mine: list[Link], theirs: list[Link]) -> str | None:
    """Where two chains part: None when they agree, else a sentence naming the first
    transfer that differs and how."""
    for index in range(max(len(mine), len(theirs))):
        here = mine[index] if index < len(mine) else None
        there = theirs[index] if index < len(theirs) else None
        if here is not None and there is not None and here.hash == there.hash:
            continue
        if here is None:
            assert there is not None
            return f"{there.xid}: only the partner's ledger has it ({there.amount} hundredths)"
        if there is None or there.xid > here.xid:
            return f"{here.xid}: only this ledger has it ({here.amount} hundredths)"
        if there.xid < here.xid:
            return f"{there.xid}: only the partner's ledger has it ({there.amount} hundredths)"
        return f"{here.xid}: {here.amount} hundredths here, {there.amount} there"
    return None


def new_key() -> tuple[str, str]:
    """A fresh ed25519 key: (private seed, public key), both hex."""
    key = SigningKey.generate()
    return key.encode().hex(), key.verify_key.encode().hex()


def load_key(text: str) -> SigningKey:
    """The signing key of a key file (its 64-hex-digit seed)."""
    seed = text.strip().lower()
    if not _HEX_KEY.match(seed):
        raise ValueError("a key file holds 64 hex digits (sif-bot federation keygen)")
    return SigningKey(bytes.fromhex(seed))
