"""Federation's pure rules (SPEC §12): the partners file, and signed, timestamped messages.

A partners file with a mistake is refused with a sentence naming the entry and the
field; a message is opened only when a known partner signed exactly these fields for
this node within five minutes of now, and refused with a reason otherwise.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from nacl.signing import SigningKey, VerifyKey

from bot.domain.federation import (
    MAX_BYTES,
    MAX_SKEW,
    Message,
    Partner,
    PartnersError,
    Refused,
    load_key,
    new_key,
    open_envelope,
    read_partners,
    seal,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GHENT_KEY = SigningKey(bytes(range(32)))
LYON_KEY = SigningKey(bytes(range(1, 33)))
OTHER_KEY = SigningKey(bytes(range(2, 34)))


def hex_key(key: SigningKey) -> str:
    return key.verify_key.encode().hex()


GOOD = f"""
[[partner]]
name = "lyon"
url = "https://lyon.example.org"
public_key = "{hex_key(LYON_KEY).upper()}"
limit = 50
tags = ["Python", "WOOD"]
languages = ["FR", "en"]

[[partner]]
name = "ghent-2"
url = "http://127.0.0.1:8080/"
public_key = "{hex_key(GHENT_KEY)}"
limit = 12.5
"""


def entry(**fields: object) -> str:
    """One [[partner]] table: a good one, with `fields` changed (None: left out)."""
    values: dict[str, object] = {
        "name": "lyon",
        "url": "https://lyon.example.org",
        "public_key": hex_key(LYON_KEY),
        "limit": 50,
    }
    values.update(fields)
    lines = ["[[partner]]"]
    for field, value in values.items():
        if value is None:
            continue
        if isinstance(value, str) and not value.startswith("@"):
            lines.append(f"{field} = {json.dumps(value)}")
        elif isinstance(value, str):
            lines.append(f"{field} = {value[1:]}")  # "@..." is written as raw TOML
        else:
            lines.append(f"{field} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


# the partners file


def test_a_good_file_gives_each_partner_with_its_limit_in_hundredths() -> None:
    partners = read_partners(GOOD, me="ghent")

    assert list(partners) == ["lyon", "ghent-2"]
    lyon = partners["lyon"]
    assert lyon == Partner(
        "lyon",
        "https://lyon.example.org",
        hex_key(LYON_KEY),  # lower-cased
        5000,
        ("python", "wood"),
        ("fr", "en"),
    )
    assert lyon.inbox == "https://lyon.example.org/federation/inbox"
    assert lyon.verify_key() == LYON_KEY.verify_key
    other = partners["ghent-2"]
    assert other.limit == 1250
    assert (other.tags, other.languages) == ((), ())
    assert other.inbox == "http://127.0.0.1:8080/federation/inbox"


def test_an_empty_file_has_no_partners() -> None:
    assert read_partners("", me="ghent") == {}


@pytest.mark.parametrize(("limit", "hundredths"), [(0, 0), (100000, 10_000_000), (0.01, 1)])
def test_limits_at_the_edges_are_taken(limit: float, hundredths: int) -> None:
    assert read_partners(entry(limit=limit))["lyon"].limit == hundredths


def test_a_file_that_is_not_toml_is_refused() -> None:
    with pytest.raises(PartnersError, match="not TOML"):
        read_partners("[[partner]\nname = ")


def test_partner_tables_are_required() -> None:
    with pytest.raises(PartnersError, match=r"\[\[partner\]\] tables"):
        read_partners("partner = 3")


@pytest.mark.parametrize("name", ["Lyon", "-lyon", "ly on", "", "x" * 41, "@3"])
def test_a_bad_name_is_refused_naming_the_entry_and_the_field(name: str) -> None:
    with pytest.raises(PartnersError) as refused:
        read_partners(entry(name="lyon") + entry(name=name))
    assert str(refused.value).startswith("partner 2: name must be")


def test_a_missing_name_is_refused() -> None:
    with pytest.raises(PartnersError, match=r"^partner 1: name must be"):
        read_partners(entry(name=None))


def test_a_name_listed_twice_is_refused() -> None:
    with pytest.raises(PartnersError, match=r"^partner 'lyon' is listed twice$"):
        read_partners(entry() + entry(url="https://other.example.org"))


def test_the_nodes_own_name_is_refused() -> None:
    with pytest.raises(PartnersError, match=r"^partner 'lyon' is this node's own name$"):
        read_partners(entry(), me="lyon")
    assert "lyon" in read_partners(entry(), me=None)


@pytest.mark.parametrize("url", ["lyon.example.org", "ftp://lyon.example.org", "http://", "@3"])
def test_a_bad_url_is_refused(url: str) -> None:
    with pytest.raises(PartnersError, match=r"^partner 'lyon': url must start with http"):
        read_partners(entry(url=url))


@pytest.mark.parametrize(
    "key", ["ab" * 31, "ab" * 33, "zz" * 32, "", "@42", hex_key(LYON_KEY)[:-1] + "g"]
)
def test_a_bad_public_key_is_refused(key: str) -> None:
    with pytest.raises(PartnersError, match=r"^partner 'lyon': public_key must be 64 hex"):
        read_partners(entry(public_key=key))


def test_a_missing_public_key_is_refused() -> None:
    with pytest.raises(PartnersError, match=r"^partner 'lyon': public_key"):
        read_partners(entry(public_key=None))


@pytest.mark.parametrize(
    "limit", [-1, -0.01, 100000.01, 100001, 1e20, "@inf", "@true", "lots", None, "@[50]"]
)
def test_a_limit_out_of_range_or_not_an_amount_is_refused(limit: object) -> None:
    with pytest.raises(PartnersError, match=r"^partner 'lyon': limit must be an amount of SIF"):
        read_partners(entry(limit=limit))


def test_a_limit_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(PartnersError, match=r"^partner 'lyon': limit must be an amount of SIF"):
        read_partners(entry(limit="@nan"))


@pytest.mark.parametrize("limit", [12.345, 0.001, 50.125])
def test_a_limit_with_three_decimals_is_refused(limit: float) -> None:
    with pytest.raises(PartnersError, match=r"^partner 'lyon': limit has at most two decimals$"):
        read_partners(entry(limit=limit))


@pytest.mark.parametrize("field", ["tags", "languages"])
@pytest.mark.parametrize("value", ["python", 3, [1, 2], ["python", 3], "@{a = 1}"])
def test_tags_and_languages_must_be_lists_of_words(field: str, value: object) -> None:
    with pytest.raises(PartnersError, match=rf"^partner 'lyon': {field} must be a list of words"):
        read_partners(entry(**{field: value}))


def test_an_entry_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(PartnersError, match=r"^partner 1 is not a table$"):
        read_partners("partner = [1]")


# messages


PARTNERS = {
    "ghent": Partner("ghent", "http://ghent", hex_key(GHENT_KEY), 5000),
    "lyon": Partner("lyon", "http://lyon", hex_key(LYON_KEY), 5000),
}


def message(**changes: object) -> Message:
    fields: dict[str, object] = {
        "id": "m1",
        "sender": "ghent",
        "recipient": "lyon",
        "kind": "hello",
        "body": {"amount": 250, "note": "merci, Gent ✓"},
        "sent_at": NOW,
    }
    fields.update(changes)
    return Message(**fields)  # type: ignore[arg-type]


def refusal(raw: bytes, me: str = "lyon", now: datetime = NOW) -> str:
    with pytest.raises(Refused) as refused:
        open_envelope(raw, PARTNERS, me, now)
    assert str(refused.value) == refused.value.reason
    return refused.value.reason


def test_a_sealed_message_opens_as_it_was_sent() -> None:
    sent = message()
    raw = seal(sent, GHENT_KEY)

    opened = open_envelope(raw, PARTNERS, "lyon", NOW + timedelta(seconds=3))

    assert opened == sent
    assert opened.sent_at.tzinfo is not None
    envelope = json.loads(raw)
    assert set(envelope) == {"message", "signature"}
    assert envelope["message"]["from"] == "ghent" and envelope["message"]["to"] == "lyon"


def test_a_message_stamped_in_another_zone_is_the_same_moment() -> None:
    sent = message(sent_at=NOW.astimezone(timezone(timedelta(hours=2))))
    assert json.loads(seal(sent, GHENT_KEY))["message"]["sent_at"] == NOW.isoformat()
    assert open_envelope(seal(sent, GHENT_KEY), PARTNERS, "lyon", NOW).sent_at == NOW


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("body", {"amount": 2500, "note": "merci, Gent ✓"}),
        ("id", "m2"),
        ("kind", "credit"),
        ("sent_at", (NOW + timedelta(seconds=1)).isoformat()),
    ],
)
def test_a_field_changed_after_sealing_breaks_the_signature(field: str, value: object) -> None:
    envelope = json.loads(seal(message(), GHENT_KEY))
    envelope["message"][field] = value

    assert refusal(json.dumps(envelope).encode()) == "bad signature"


def test_a_message_signed_by_another_key_is_refused() -> None:
    assert refusal(seal(message(), OTHER_KEY)) == "bad signature"


def test_a_signature_that_is_not_64_bytes_is_refused() -> None:
    envelope = json.loads(seal(message(), GHENT_KEY))
    envelope["signature"] = envelope["signature"][:-2]
    assert refusal(json.dumps(envelope).encode()) == "bad signature"


def test_a_message_from_a_node_that_is_not_a_partner_is_refused() -> None:
    raw = seal(message(sender="paris"), OTHER_KEY)
    assert refusal(raw) == "unknown partner 'paris'"


def test_a_message_for_another_node_is_refused() -> None:
    raw = seal(message(recipient="brno"), GHENT_KEY)
    assert refusal(raw) == "meant for 'brno', not this node"
    # and lyon's own message to ghent does not open at lyon either
    assert refusal(seal(message(sender="lyon", recipient="ghent"), LYON_KEY)) == (
        "meant for 'ghent', not this node"
    )


@pytest.mark.parametrize("skew", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_a_stale_or_future_message_is_refused(skew: timedelta) -> None:
    raw = seal(message(sent_at=NOW + skew), GHENT_KEY)
    assert refusal(raw) == "stale or future timestamp"


@pytest.mark.parametrize("skew", [-MAX_SKEW, MAX_SKEW])
def test_a_message_just_within_the_window_opens(skew: timedelta) -> None:
    raw = seal(message(sent_at=NOW + skew), GHENT_KEY)
    assert open_envelope(raw, PARTNERS, "lyon", NOW).id == "m1"


def test_a_message_without_a_time_zone_is_refused() -> None:
    raw = seal(message(sent_at=NOW), GHENT_KEY)
    envelope = json.loads(raw)
    naive = NOW.replace(tzinfo=None).isoformat()
    envelope["message"]["sent_at"] = naive
    fields = envelope["message"]
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    envelope["signature"] = GHENT_KEY.sign(canonical.encode()).signature.hex()  # signed so
    assert refusal(json.dumps(envelope).encode()) == "stale or future timestamp"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff\xfe garbage",
        b"not json",
        b"[]",
        b"null",
        b'"hello"',
        b"{}",
        b'{"message": 1, "signature": "00"}',
        b'{"message": {}, "signature": "00"}',
        b'{"message": {"id": "m1"}, "signature": "zz"}',
    ],
)
def test_garbage_is_not_a_federation_message(raw: bytes) -> None:
    assert refusal(raw) == "not a federation message"


@pytest.mark.parametrize(
    ("field", "value"), [("signature", 5), ("sent_at", 17), ("sent_at", "yesterday"), ("body", 3)]
)
def test_fields_of_the_wrong_type_are_not_a_federation_message(field: str, value: object) -> None:
    envelope = json.loads(seal(message(), GHENT_KEY))
    if field == "signature":
        envelope[field] = value
    else:
        envelope["message"][field] = value
    assert refusal(json.dumps(envelope).encode()) == "not a federation message"


def test_a_message_missing_a_field_is_not_a_federation_message() -> None:
    for field in ("id", "from", "to", "kind", "body", "sent_at"):
        envelope = json.loads(seal(message(), GHENT_KEY))
        del envelope["message"][field]
        assert refusal(json.dumps(envelope).encode()) == "not a federation message", field


def test_a_message_too_large_is_refused_unread() -> None:
    raw = seal(message(body={"note": "x" * MAX_BYTES}), GHENT_KEY)
    assert len(raw) > MAX_BYTES
    assert refusal(raw) == "too large"
    assert refusal(b"{" * (MAX_BYTES + 1)) == "too large"


def test_deeply_nested_garbage_is_not_a_federation_message() -> None:
    raw = b"[" * 100_000
    assert len(raw) <= MAX_BYTES
    assert refusal(raw) == "not a federation message"


def test_a_long_unknown_name_is_cut_in_the_reason() -> None:
    envelope = json.loads(seal(message(), GHENT_KEY))
    envelope["message"]["from"] = "p" * 500
    assert refusal(json.dumps(envelope).encode()) == f"unknown partner {'p' * 40!r}"


# keys


def test_a_new_key_loads_and_signs_what_its_public_key_verifies() -> None:
    private, public = new_key()
    assert len(private) == len(public) == 64
    assert new_key()[0] != private

    key = load_key(private + "\n")

    assert key.verify_key.encode().hex() == public
    signed = key.sign(b"a message")
    assert VerifyKey(bytes.fromhex(public)).verify(signed) == b"a message"
    assert load_key(f"  {private.upper()}\n").encode() == key.encode()


def test_a_key_sealing_a_message_is_verified_by_its_partner_entry() -> None:
    private, public = new_key()
    key = load_key(private)
    partners = {"ghent": Partner("ghent", "http://ghent", public, 0)}
    assert open_envelope(seal(message(), key), partners, "lyon", NOW).id == "m1"


@pytest.mark.parametrize(
    "text", ["", "not a key", "ab" * 31, "ab" * 33, "zz" * 32, "ab" * 32 + " ab", "0x" + "ab" * 31]
)
def test_a_bad_key_file_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="a key file holds 64 hex digits"):
        load_key(text)
