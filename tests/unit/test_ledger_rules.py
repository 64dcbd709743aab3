"""The pure SIF rules: amounts, formatting, balanced transactions, floors."""

from __future__ import annotations

import pytest

from bot.domain import ledger
from bot.domain.ids import MemberId, RequestId
from bot.domain.ledger import (
    ESCROW,
    NETWORK,
    AccountKey,
    AmountError,
    EntryKind,
    LedgerError,
    Posting,
    TransactionDraft,
    floor_for,
    format_sif,
    parse_amount,
)

ANN, BOB = MemberId(1), MemberId(2)


@pytest.mark.parametrize(
    ("text", "hundredths"),
    [("5", 500), ("2.5", 250), ("0,25", 25), ("1.05", 105), ("3 SIF", 300), ("+3", 300)],
)
def test_parse_amount_reads_hundredths(text: str, hundredths: int) -> None:
    assert parse_amount(text) == hundredths


@pytest.mark.parametrize("text", ["abc", "", "1.234", "5x", "1e3", "--1", "0", "0.00", "99999999"])
def test_parse_amount_refuses_non_amounts(text: str) -> None:
    with pytest.raises(AmountError):
        parse_amount(text)


@pytest.mark.parametrize(
    "text", ["99999999999999999999", "1000000.01", "-5000000", "0001000001", "9" * 5000]
)
def test_a_big_amount_is_too_big_with_the_maximum(text: str) -> None:
    with pytest.raises(AmountError, match=r"is too big; the most is 1,000,000 SIF\.$"):
        parse_amount(text, signed=True)


def test_the_largest_amount_and_too_many_decimals() -> None:
    assert parse_amount("1000000") == 1_000_000_00
    assert parse_amount("0001000000") == 1_000_000_00
    with pytest.raises(AmountError, match="too many decimals"):
        parse_amount("2.555")


def test_negative_amounts_only_when_signed() -> None:
    with pytest.raises(AmountError, match="positive"):
        parse_amount("-2")
    assert parse_amount("-2.5", signed=True) == -250


def test_format_sif() -> None:
    assert format_sif(500) == "5.00 SIF"
    assert format_sif(-250) == "-2.50 SIF"
    assert format_sif(5) == "0.05 SIF"
    assert format_sif(125, sign=True) == "+1.25 SIF"
    assert format_sif(0, sign=True) == "0.00 SIF"


def test_every_product_transaction_sums_to_zero() -> None:
    drafts = [
        ledger.grant(ANN, 500, "welcome", BOB),
        ledger.adjust(ANN, -150, "fix", BOB),
        ledger.hold(ANN, 200, RequestId(7), "R-7"),
        ledger.release(ANN, BOB, 200, RequestId(7), "R-7"),
        ledger.refund(ANN, 200, RequestId(7), "R-7"),
        ledger.transfer(ANN, BOB, 100, "gift"),
    ]
    for draft in drafts:
        assert sum(p.amount for p in draft.postings) == 0
    reversed_ = ledger.reverse(drafts[0], "mistake", BOB)
    assert reversed_.kind is EntryKind.REVERSE
    assert [p.amount for p in reversed_.postings] == [500, -500]


def test_escrow_postings_name_whose_money_is_held() -> None:
    held = ledger.hold(ANN, 200, RequestId(7), "R-7")
    assert [p.holder for p in held.postings if p.account == ESCROW] == [ANN]
    paid = ledger.release(ANN, BOB, 200, RequestId(7), "R-7")
    assert [p.holder for p in paid.postings if p.account == ESCROW] == [ANN]


def test_unbalanced_or_degenerate_transactions_are_refused() -> None:
    with pytest.raises(LedgerError, match="zero"):
        TransactionDraft(EntryKind.GRANT, (Posting(NETWORK, -1), Posting(ESCROW, 2)), "x")
    with pytest.raises(LedgerError, match="two postings"):
        TransactionDraft(EntryKind.GRANT, (Posting(NETWORK, 0),), "x")
    with pytest.raises(LedgerError, match="non-zero"):
        TransactionDraft(EntryKind.GRANT, (Posting(NETWORK, 0), Posting(ESCROW, 0)), "x")
    with pytest.raises(LedgerError, match="once"):
        TransactionDraft(EntryKind.ADJUST, (Posting(NETWORK, -1), Posting(NETWORK, 1)), "x")
    with pytest.raises(AmountError):
        ledger.grant(ANN, -5, "x", None)
    with pytest.raises(LedgerError):
        ledger.transfer(ANN, ANN, 5, "x")


def test_floors() -> None:
    assert floor_for(AccountKey.of(ANN), -1000) == -1000
    assert floor_for(ESCROW, -1000) == 0
    assert floor_for(NETWORK, -1000) is None
