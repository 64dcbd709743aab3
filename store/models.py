"""SQLAlchemy 2 models: the tables of sif-bot.

Amounts are integer hundredths of SIF. Ledger entries (transactions and
postings) are append-only; `accounts.balance` is a cache of the sum of an
account's postings, updated in the same transaction and checked in tests.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
Id = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class CommunityRow(Base):
    __tablename__ = "communities"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TagRow(Base):
    __tablename__ = "tags"
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)


class MemberRow(Base):
    __tablename__ = "members"
    __table_args__ = (
        Index("ix_members_text_rev", "community_id", "text_rev"),
        Index("ix_members_peer_rev", "community_id", "peer_rev"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default="member")
    capacity: Mapped[int] = mapped_column(Integer, default=2)
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    bio: Mapped[str] = mapped_column(Text, default="")
    # further profile answers (what the member offers, organisation, ...)
    profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_active_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # the language chosen with `language`, and the platform's locale for the person
    language: Mapped[str | None] = mapped_column(String(16))
    locale: Mapped[str | None] = mapped_column(String(35))
    # the community's text revision when the bio (or a review it learns from) last
    # changed: the affinity index reads what changed since it last looked
    text_rev: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # the community's peer revision when what routing knows of them (name, expertise,
    # languages, capacity, pause) last changed: the peer table reads what changed since
    peer_rev: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class IdentityRow(Base):
    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(255))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)


class ExpertiseRow(Base):
    __tablename__ = "expertise"
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    level: Mapped[int] = mapped_column(Integer)


class AccountRow(Base):
    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("community_id", "kind", "member_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    kind: Mapped[str] = mapped_column(String(16))
    # 0 for the community accounts (network, escrow) so the unique key works everywhere.
    member_id: Mapped[int] = mapped_column(BigInteger, default=0)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)


class TransactionRow(Base):
    __tablename__ = "ledger_transactions"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    request_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    key: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PostingRow(Base):
    __tablename__ = "ledger_postings"
    __table_args__ = (Index("ix_ledger_postings_account_tx", "account_id", "transaction_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    holder_id: Mapped[int | None] = mapped_column(BigInteger, index=True)


class ProcessedEventRow(Base):
    __tablename__ = "processed_events"
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OutboxRow(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "sent_at", "id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    delivery: Mapped[str] = mapped_column(String(16))
    to: Mapped[str] = mapped_column(String(255))
    channel: Mapped[str | None] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)
    parts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Sends started: a message tried before may have arrived, so it is checked first.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A process delivering the message holds it until then; others leave it alone.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The platform's id of the delivered message (Slack ts, Matrix event id).
    platform_ref: Mapped[str | None] = mapped_column(String(255))
    # Set aside: the platform refused it for good, or it failed too long; never sent.
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The last error a send of it met (the platform's code), for staff and /metrics.
    error: Mapped[str | None] = mapped_column(String(255))


class ForgottenIdentityRow(Base):
    """A salted hash of a chat identity whose member asked to be forgotten: when it comes
    back it starts a new member, without a second welcome grant. Nothing else is kept."""

    __tablename__ = "forgotten_identities"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CounterRow(Base):
    """Per-community sequences for the short numbers people type (I-n, R-n)."""

    __tablename__ = "counters"
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class ConversationRow(Base):
    """A member's active conversation (at most one): the engine's state, saved after each answer."""

    __tablename__ = "conversations"
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    flow: Mapped[str] = mapped_column(String(32))
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    # where the member last answered, so reminders go there
    platform: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class IdeaRow(Base):
    __tablename__ = "ideas"
    __table_args__ = (
        UniqueConstraint("community_id", "number"),
        Index("ix_ideas_text_rev", "community_id", "text_rev"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    number: Mapped[int] = mapped_column(Integer)
    owner_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="submitted")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    text_rev: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class RequestRow(Base):
    """A request for help on an idea, and where it is in its life."""

    __tablename__ = "requests"
    __table_args__ = (
        UniqueConstraint("community_id", "number"),
        Index("ix_requests_status_due", "status", "auto_release_at"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    number: Mapped[int] = mapped_column(Integer)
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id"), index=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    price: Mapped[int] = mapped_column(BigInteger)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), index=True)
    round: Mapped[int] = mapped_column(Integer, default=0)
    peer_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    hours: Mapped[float | None] = mapped_column(Float)
    feedback: Mapped[str | None] = mapped_column(Text)
    rating: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)  # escalation reason, dispute reason, resolution
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    auto_release_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OfferRow(Base):
    """One peer offered one request; first accept wins."""

    __tablename__ = "offers"
    __table_args__ = (
        Index("ix_offers_request_peer", "request_id", "peer_id"),
        Index("ix_offers_status_expires", "status", "expires_at"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"))
    peer_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    explanation: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    remind_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LinkCodeRow(Base):
    """One-time codes that join another platform identity to a member (`link`)."""

    __tablename__ = "link_codes"
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class IntroductionRow(Base):
    """`intro`: who introduced whom to which idea, for staff's stats."""

    __tablename__ = "introductions"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id"))
    from_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    to_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CrossRequestRow(Base):
    """A request that crosses to a partner node (SPEC §12), named on both by `xid`."""

    __tablename__ = "cross_requests"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), unique=True)
    partner: Mapped[str] = mapped_column(String(40))
    xid: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(8))
    remote_ref: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
