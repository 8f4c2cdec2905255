"""Detectors: each shape is caught in free text, and its look-alikes are left alone."""

from __future__ import annotations

import random

import pytest

from flowtrace.scrubbing import Scrubber
from flowtrace.scrubbing._checks import card_brand, iban_valid, luhn_valid, ssn_valid

from . import _scrub_samples as samples

SCRUBBER = Scrubber()


def labels(text: str) -> dict[str, int]:
    return SCRUBBER.scrub_with_report_text(text)[1].by_label()


# --- checksums -----------------------------------------------------------------------------


def test_luhn() -> None:
    """Luhn accepts the classic test PAN and rejects a one-digit change."""
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")


def test_card_brands_cover_major_iin_ranges() -> None:
    """2-series Mastercard, 19-digit Visa, Amex, Discover, JCB, Diners, UnionPay."""
    assert card_brand("2221000000000009") == "mastercard"
    assert card_brand("4" + "0" * 18) == "visa"
    assert card_brand("378282246310005") == "amex"
    assert card_brand("6011111111111117") == "discover"
    assert card_brand("3530111333300000") == "jcb"
    assert card_brand("36227206271667") == "diners"
    assert card_brand("9" * 16) is None


def test_iban_mod97() -> None:
    """A valid IBAN passes; a changed digit or wrong country length fails."""
    assert iban_valid("DE89370400440532013000")
    assert not iban_valid("DE89370400440532013001")
    assert not iban_valid("DE8937040044053201300")


def test_ssn_rules() -> None:
    """Area 000/666/9xx, group 00 and serial 0000 are never issued."""
    assert ssn_valid("123", "45", "6789")
    for area, group, serial in [
        ("000", "12", "3456"),
        ("666", "12", "3456"),
        ("912", "12", "3456"),
        ("123", "00", "4567"),
        ("123", "45", "0000"),
    ]:
        assert not ssn_valid(area, group, serial)


# --- positives -----------------------------------------------------------------------------

POSITIVES = [
    ("refund to jane.doe+x@mail.example.co.uk requested", "email"),
    ("card 4111 1111 1111 1111 declined", "card"),
    ("card 4111-1111-1111-1111 declined", "card"),
    ("pan 5555555555554444", "card"),
    ("mc2 2221000000000009 ok", "card"),
    ("visa19 4000000000000000006 ok", "card"),
    ("amex 3782 822463 10005", "card"),
    ("iban DE89 3704 0044 0532 0130 00 booked", "iban"),
    ("iban GB82WEST12345698765432", "iban"),
    ("ssn 123-45-6789 on file", "ssn"),
    ("call (415) 555-0132 now", "phone"),
    ("call +44 20 7946 0958 now", "phone"),
    ("call 415.555.0132 x123 now", "phone"),
    ("call 001-415-555-0132 now", "phone"),
    ("from 203.0.113.7 via proxy", "ipv4"),
    ("from 2001:db8::8a2e:370:7334 via proxy", "ipv6"),
    (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "jwt",
    ),
    ("Authorization: Bearer abcdef123456ghijkl", "authorization"),
    ("sent Bearer 9f8e7d6c5b4a39281726354 upstream", "bearer"),
    ("key AKIAIOSFODNN7EXAMPLE used", "aws_access_key_id"),
    ("secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY used", "aws_secret_key"),
    ("key -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----", "private_key"),
    ("dsn postgres://app:hunter22@db:5432/main", "url_credentials"),
    ("token ghp_" + "a1B2" * 9 + " leaked", "provider_token"),
    ("slack xoxb-1234567890-abcdefghijkl", "provider_token"),
    ("stripe sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "provider_token"),
    ("google AIzaSyA-" + "x" * 31, "provider_token"),
    ("login failed password=hunter2 for user", "assignment"),
]


@pytest.mark.parametrize(("text", "label"), POSITIVES, ids=[p[1] for p in POSITIVES])
def test_detector_finds_shape_in_free_text(text: str, label: str) -> None:
    """The shape is replaced by a typed placeholder; the rest of the text stays readable."""
    out = SCRUBBER.scrub_text(text)
    assert f"[REDACTED:{label}]" in out
    assert label in labels(text)
    first_word = text.split()[0]
    assert out.startswith(first_word[: len(first_word) // 2])


def test_only_the_match_is_replaced() -> None:
    """Free text keeps every other word verbatim."""
    assert (
        SCRUBBER.scrub_text("refund to a@b.io requested") == "refund to [REDACTED:email] requested"
    )


def test_url_keeps_user_and_host() -> None:
    """Only the password of user:pass@ is replaced."""
    assert (
        SCRUBBER.scrub_text("postgres://app:s3cret@db:5432/x")
        == "postgres://app:[REDACTED:url_credentials]@db:5432/x"
    )


def test_card_next_to_other_numbers() -> None:
    """A card inside a run of digit groups is still found."""
    out = SCRUBBER.scrub_text("ref 2345 4111 1111 1111 1111 9 end")
    assert "4111 1111 1111 1111" not in out
    assert "[REDACTED:card]" in out


def test_int_card_is_detected() -> None:
    """A card stored as an int is redacted; other big ints are not."""
    assert SCRUBBER.scrub({"n": 4111111111111111}) == {"n": "[REDACTED:card]"}
    assert SCRUBBER.scrub({"n": 4111111111111112}) == {"n": 4111111111111112}


# --- negatives -----------------------------------------------------------------------------

BENIGN = [
    "order ORD-2024-000123 shipped",
    "request 550e8400-e29b-41d4-a716-446655440000",
    "at 2024-05-01T12:34:56.123456+00:00",
    "total 1234.56 EUR, 1,299.00 USD",
    "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "version 2.14.1-rc.1 build 20240501",
    "luhn-failing 4111 1111 1111 1112",
    "luhn-failing 4111111111111112",
    "iban-failing DE89 3704 1044 1532 1130 01",
    "ssn-invalid 666-12-3456 and 123-00-4567",
    "time 12:34:56 and mac 00:1a:2b:3c:4d:5e",
    "session expired, auth_method=sso, tokens_used: 512",
    "basic settings updated, token expired",
    "epoch 1714567890 and id 1234567890",
    "password: true",
]


@pytest.mark.parametrize("text", BENIGN)
def test_benign_lookalikes_are_left_alone(text: str) -> None:
    """Order ids, UUIDs, timestamps, amounts, hashes, versions, bad checksums stay."""
    assert SCRUBBER.scrub_text(text) == text


def test_bulk_valid_values_are_caught() -> None:
    """Thousands of generated checksum-valid values: none survives."""
    rnd = random.Random(7)
    for _ in range(400):
        for kind, gen in samples.PLANTS.items():
            value = gen(rnd)
            out = SCRUBBER.scrub_text(f"x {value} y")
            assert value not in out, (kind, value, out)


def test_docs_table_lists_every_builtin_detector() -> None:
    """docs/scrubbing.md documents each built-in detector's validation rule."""
    from pathlib import Path

    from flowtrace.scrubbing import BUILTIN_DETECTORS

    docs = (Path(__file__).resolve().parent.parent / "docs" / "scrubbing.md").read_text()
    for det in BUILTIN_DETECTORS:
        assert f"| `{det.name}` | {det.category.value} |" in docs, det.name
