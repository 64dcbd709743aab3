"""SIF rules: amounts, accounts and the postings of every kind of transaction (pure).

SIF is the network's currency; amounts are integer hundredths. What a request costs is
fixed per kind (settings; a review 2 SIF, advice and feedback 1 SIF by default), whatever
hours the reviewer reports (those are recorded, not paid). A transaction
is a set of postings that sums to zero; entries are never edited, corrections are
new transactions. The store applies a transaction atomically and refuses it when
an account would fall below its floor (see :func:`floor_for`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from bot.domain.ids import MemberId, RequestId

HUNDREDTHS_PER_SIF = 100
# Bounds on a single amount typed by a person: generous for real use, far below
# the 64-bit limits of the database columns.
MAX_AMOUNT = 1_000_000 * HUNDREDTHS_PER_SIF


class EntryKind(StrEnum):
    GRANT = "grant"
    HOLD = "hold"
    RELEASE = "release"
    REFUND = "refund"
    ADJUST = "adjust"
    REVERSE = "reverse"
    TRANSFER = "transfer"


class AccountKind(StrEnum):
    MEMBER = "member"
    NETWORK = "network"  # issues grants; its balance is minus all SIF in circulation
    ESCROW = "escrow"  # holds the price of accepted requests until release or refund


@dataclass(frozen=True, order=True)
class AccountKey:
    """Names an account inside one community."""

    kind: AccountKind
    member: MemberId | None = None

    @staticmethod
    def of(member: MemberId) -> AccountKey:
        return AccountKey(AccountKind.MEMBER, member)


NETWORK = AccountKey(AccountKind.NETWORK)
ESCROW = AccountKey(AccountKind.ESCROW)


def N_(message: str) -> str:
    """Marks a sentence for the translation catalogs. The domain writes no language: its
    errors keep their English template and values, and the core says them in the
    reader's language where it shows them (`bot.i18n.explain`)."""
    return message


class LedgerError(ValueError):
    """A transaction that breaks a ledger rule; the message is for people.

    `template` is the English sentence with named placeholders and `values` fill them;
    `str()` is the English sentence. A whole number among the values is a quantity: it
    is written with thousands separators (1,000,000), in each language its own way."""

    def __init__(self, template: str, /, **values: str | int) -> None:
        self.template = template
        self.values = values
        super().__init__(
            template.format(**{k: f"{v:,}" if type(v) is int else v for k, v in values.items()})
        )


class AmountError(LedgerError):
    pass


@dataclass(frozen=True)
class Posting:
    account: AccountKey
    amount: int  # hundredths; positive credits the account
    holder: MemberId | None = None  # for escrow postings: whose money is held


@dataclass(frozen=True)
class TransactionDraft:
    """A balanced transaction ready to be posted."""

    kind: EntryKind
    postings: tuple[Posting, ...]
    reason: str
    author: MemberId | None = None
    request: RequestId | None = None
    key: str | None = None  # idempotency key: the same key is never posted twice
    # accounts whose floor is not the usual one: a partner node's mirror account may go
    # as low as that partner's limit (SPEC §12)
    floors: tuple[tuple[AccountKey, int], ...] = ()

    def floor(self, account: AccountKey, credit_limit: int) -> int | None:
        """The lowest balance ``account`` may reach in this transaction."""
        for named, floor in self.floors:
            if named == account:
                return floor
        return floor_for(account, credit_limit)

    def __post_init__(self) -> None:
        if len(self.postings) < 2:
            raise LedgerError(N_("A transaction needs at least two postings."))
        if any(not isinstance(p.amount, int) or p.amount == 0 for p in self.postings):
            raise LedgerError(N_("Every posting needs a non-zero whole number of hundredths."))
        if sum(p.amount for p in self.postings) != 0:
            raise LedgerError(N_("A transaction must sum to zero."))
        if len({p.account for p in self.postings}) != len(self.postings):
            raise LedgerError(N_("A transaction touches each account once."))

    def debits(self) -> Iterable[Posting]:
        return (p for p in self.postings if p.amount < 0)


# Any number of digits, so that a huge number is called too big rather than "not an amount".
_AMOUNT = re.compile(r"^([+-])?(\d+)(?:[.,](\d+))?$")


def parse_amount(text: str, *, signed: bool = False) -> int:
    """Parse "5", "2.5", "0,25" (and "+3"/"-1.25" when signed) into hundredths."""
    cleaned = text.strip()
    if cleaned.upper().endswith("SIF"):
        cleaned = cleaned[:-3].strip()
    match = _AMOUNT.match(cleaned)
    if not match:
        raise AmountError(N_("'{text}' is not an amount; write a number like 5 or 2.5."), text=text)
    sign, whole, frac = match.groups()
    if frac is not None and len(frac) > 2:
        raise AmountError(
            N_("'{text}' has too many decimals; SIF have at most two, like 2.25."), text=text
        )
    whole = whole.lstrip("0") or "0"
    if len(whole) > len(str(MAX_AMOUNT // HUNDREDTHS_PER_SIF)):
        raise _too_big(text)  # before int(): thousands of digits are refused
    value = int(whole) * HUNDREDTHS_PER_SIF + int((frac or "0").ljust(2, "0"))
    if sign == "-":
        if not signed:
            raise AmountError(N_("'{text}' must be a positive amount."), text=text)
        value = -value
    if sign == "+" and not signed:
        pass
    if value == 0:
        raise AmountError(N_("The amount must not be zero."))
    if abs(value) > MAX_AMOUNT:
        raise _too_big(text)
    return value


def _too_big(text: str) -> AmountError:
    shown = text.strip() if len(text.strip()) <= 24 else text.strip()[:24] + "…"
    return AmountError(
        N_("'{shown}' is too big; the most is {most} SIF."),
        shown=shown,
        most=MAX_AMOUNT // HUNDREDTHS_PER_SIF,
    )


def format_sif(hundredths: int, *, sign: bool = False) -> str:
    """5.00 SIF, -2.50 SIF, +1.25 SIF (with sign=True)."""
    negative = hundredths < 0
    whole, frac = divmod(abs(hundredths), HUNDREDTHS_PER_SIF)
    prefix = "-" if negative else ("+" if sign and hundredths > 0 else "")
    return f"{prefix}{whole}.{frac:02d} SIF"


def floor_for(account: AccountKey, credit_limit: int) -> int | None:
    """The lowest balance an account may reach; None means unbounded."""
    if account.kind is AccountKind.MEMBER:
        return credit_limit
    if account.kind is AccountKind.ESCROW:
        return 0
    return None


# -- the transactions of the product -------------------------------------------------


def grant(
    member: MemberId, amount: int, reason: str, author: MemberId | None, key: str | None = None
) -> TransactionDraft:
    """Credit SIF to a member from the network account."""
    if amount <= 0:
        raise AmountError(N_("A grant must be a positive amount."))
    return TransactionDraft(
        EntryKind.GRANT,
        (Posting(NETWORK, -amount), Posting(AccountKey.of(member), amount)),
        reason,
        author,
        key=key,
    )


def adjust(
    member: MemberId, delta: int, reason: str, author: MemberId | None, key: str | None = None
) -> TransactionDraft:
    """A correction: moves `delta` between the network and the member (either sign)."""
    return TransactionDraft(
        EntryKind.ADJUST,
        (Posting(NETWORK, -delta), Posting(AccountKey.of(member), delta)),
        reason,
        author,
        key=key,
    )


def hold(
    payer: MemberId,
    amount: int,
    request: RequestId | None,
    reason: str,
    key: str | None = None,
    floor: int | None = None,
) -> TransactionDraft:
    """Move a request's price from the requester into escrow (``floor``: the payer's own
    lowest balance, for a partner node's mirror account)."""
    return TransactionDraft(
        EntryKind.HOLD,
        (Posting(AccountKey.of(payer), -amount), Posting(ESCROW, amount, holder=payer)),
        reason,
        payer,
        request,
        key,
        ((AccountKey.of(payer), floor),) if floor is not None else (),
    )


def release(
    payer: MemberId,
    peer: MemberId,
    amount: int,
    request: RequestId | None,
    reason: str,
    author: MemberId | None = None,
    key: str | None = None,
) -> TransactionDraft:
    """Pay a held price out of escrow to the peer who did the work."""
    return TransactionDraft(
        EntryKind.RELEASE,
        (Posting(ESCROW, -amount, holder=payer), Posting(AccountKey.of(peer), amount)),
        reason,
        author,
        request,
        key,
    )


def refund(
    payer: MemberId,
    amount: int,
    request: RequestId | None,
    reason: str,
    author: MemberId | None = None,
    key: str | None = None,
) -> TransactionDraft:
    """Return a held price from escrow to the requester."""
    return TransactionDraft(
        EntryKind.REFUND,
        (Posting(ESCROW, -amount, holder=payer), Posting(AccountKey.of(payer), amount)),
        reason,
        author,
        request,
        key,
    )


def transfer(
    sender: MemberId,
    receiver: MemberId,
    amount: int,
    reason: str,
    author: MemberId | None = None,
    key: str | None = None,
) -> TransactionDraft:
    if sender == receiver:
        raise LedgerError(N_("A transfer needs two different members."))
    return TransactionDraft(
        EntryKind.TRANSFER,
        (Posting(AccountKey.of(sender), -amount), Posting(AccountKey.of(receiver), amount)),
        reason,
        author,
        key=key,
    )


def reverse(
    original: TransactionDraft, reason: str, author: MemberId | None, key: str | None = None
) -> TransactionDraft:
    """The exact opposite of an earlier transaction (the earlier one stays)."""
    return TransactionDraft(
        EntryKind.REVERSE,
        tuple(Posting(p.account, -p.amount, p.holder) for p in original.postings),
        reason,
        author,
        original.request,
        key,
    )
