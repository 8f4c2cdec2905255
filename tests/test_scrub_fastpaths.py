"""The scrubbing engine's fast paths and caches never change a result.

The reference is a scrubber with one extra custom detector that never matches: custom
detectors switch off every shortcut (prefilter, benign-value and skeleton caches, the
bare-digit card path), so it sends every string through every candidate detector.
"""

from __future__ import annotations

import dataclasses
import random
import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowtrace import Category, Schema, Scrubber
from flowtrace.scrubbing import BUILTIN_DETECTORS, Detector, Redact
from flowtrace.scrubbing._scan import SKELETON

from . import _scrub_samples as samples

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

NEVER = Detector("never", Category.PII, r"(?!x)x")
REFERENCE = Scrubber(detectors=[*BUILTIN_DETECTORS, NEVER], time_budget=60)
# Shared on purpose: its caches fill up across examples, as in a long-running process.
FAST = Scrubber(time_budget=60)

# Digits, separators and the characters the prefilter keys on, plus some letters.
ALPHABET = string.digits * 3 + " -.:/()+@=_" + "AEIKSZaeikrsyJ" + "\n\u2028"
texts = st.text(alphabet=ALPHABET, max_size=48)


def _respell_digits(value: str, seed: int) -> str:
    """The same skeleton (see SKELETON): digits 1-9 replaced by other digits 1-9."""
    rnd = random.Random(seed)
    return "".join(rnd.choice("123456789") if ch in "123456789" else ch for ch in value)


def _plants() -> list[str]:
    rnd = random.Random(7)
    return [make(rnd) for make in samples.PLANTS.values()]


@given(st.lists(texts, max_size=6))
@SETTINGS
def test_fast_paths_agree_with_the_full_scan(values: list[str]) -> None:
    """Values in a mapping, in a list and as free text scrub exactly as the full scan does."""
    event = {f"k{i}": v for i, v in enumerate(values)}
    assert FAST.scrub(event) == REFERENCE.scrub(event)
    assert FAST.scrub(values) == REFERENCE.scrub(values)
    for v in values:
        assert FAST.scrub_text(v) == REFERENCE.scrub_text(v)


@given(texts, st.integers(0, 2**32))
@SETTINGS
def test_skeleton_cache_never_clears_a_value_the_scan_would_change(value: str, seed: int) -> None:
    """After a value is cleared, another with the same skeleton still gets the full verdict."""
    other = _respell_digits(value, seed)
    assert value.encode().translate(SKELETON) == other.encode().translate(SKELETON)
    FAST.scrub({"id": value})
    assert FAST.scrub({"id": other}) == REFERENCE.scrub({"id": other})


def test_skeleton_keeps_zero_apart_from_other_digits() -> None:
    """A cleared "(130) ..." does not clear the national phone number "(030) ..."."""
    scrubber = Scrubber()
    assert scrubber.scrub({"n": "(130) 1234567"}) == {"n": "(130) 1234567"}
    assert scrubber.scrub({"n": "(030) 1234567"}) == {"n": "[REDACTED:phone]"}


def test_prefilter_lets_international_groups_with_three_separators_through() -> None:
    """A 00-prefixed number with ") -(" between groups reaches the phone detector."""
    assert Scrubber().scrub_text("call 0049 -(30) 1234567") == "call [REDACTED:phone]"
    assert Scrubber().scrub({"n": "0049) -(30) 1234567"}) == REFERENCE.scrub(
        {"n": "0049) -(30) 1234567"}
    )


def test_same_shape_values_after_a_benign_one_are_still_scanned() -> None:
    """A Luhn-failing reference is cleared; a valid card of the same shape is not."""
    scrubber = Scrubber()
    assert scrubber.scrub({"ref": "4111 1111 1111 1112"}) == {"ref": "4111 1111 1111 1112"}
    assert scrubber.scrub({"ref": "4111 1111 1111 1111"}) == {"ref": "[REDACTED:card]"}
    assert scrubber.scrub({"ref": "ORD-2026-000123"}) == {"ref": "ORD-2026-000123"}
    assert scrubber.scrub({"ref": "ORD-2026-000124 jane@example.com"}) == {
        "ref": "ORD-2026-000124 [REDACTED:email]"
    }


def test_planted_samples_agree_with_the_full_scan() -> None:
    """Every sample secret, alone, in text and in a dict, scrubs as the full scan does."""
    for value in _plants():
        for leaf in (value, f"note {value} end", {"field_1": value}, [value, 1]):
            assert FAST.scrub(leaf) == REFERENCE.scrub(leaf), leaf
            assert FAST.scrub(leaf) != leaf, leaf


def test_bare_digit_strings_take_the_card_check_only() -> None:
    """12-19 digit strings: valid cards redacted (as strings and ints), others kept."""
    rnd = random.Random(3)
    scrubber = Scrubber()
    for _ in range(200):
        card = samples.card(rnd)
        broken = card[:-1] + str((int(card[-1]) + 1) % 10)
        assert scrubber.scrub_text(card) == "[REDACTED:card]"
        assert scrubber.scrub({"n": card, "i": int(card)}) == {
            "n": "[REDACTED:card]",
            "i": "[REDACTED:card]",
        }
        assert scrubber.scrub_text(broken) == broken
        assert scrubber.scrub_text(broken) == REFERENCE.scrub_text(broken)


def test_cached_key_decisions_stay_type_aware() -> None:
    """A key seen once is remembered, but numbers/bools under it are still judged by type."""
    scrubber = Scrubber(schema={"email": "confidential:pii"})
    for _ in range(3):  # first call fills the key cache, later calls use it
        assert scrubber.scrub(
            {"api_token": "abc123", "tokens_used": 512, "flags": {"api_token": 7}}
        ) == {"api_token": "[REDACTED:credential]", "tokens_used": 512, "flags": {"api_token": 7}}
        assert scrubber.scrub({"api_token": True, "password": 12}) == {
            "api_token": True,
            "password": 12,
        }
        assert scrubber.scrub({"email": 42, "email_address": "x"}) == {
            "email": "[REDACTED:pii]",
            "email_address": "[REDACTED:pii]",
        }


def test_cached_keys_still_honour_dotted_paths() -> None:
    """With path entries, the same key is classified by where it sits, not by the cache."""
    scrubber = Scrubber(schema=Schema.from_dict({"billing.ref": "restricted:pci"}))
    for _ in range(2):
        assert scrubber.scrub({"ref": "r-1", "billing": {"ref": "r-1"}}) == {
            "ref": "r-1",
            "billing": {"ref": "[REDACTED:pci]"},
        }


def test_report_is_built_only_when_asked_and_counts_match() -> None:
    """scrub() and scrub_with_report() give the same output; the report counts every hit."""
    scrubber = Scrubber()
    event: dict[str, Any] = {
        "email": "a@b.io",
        "note": "card 4111 1111 1111 1111 and x@y.io",
        "n": 4111111111111111,
    }
    out, report = scrubber.scrub_with_report(event)
    assert out == scrubber.scrub(event)
    assert report.by_label() == {"card": 2, "email": 2}
    assert report.total == 4


def test_custom_default_strategy_still_applies() -> None:
    """The placeholder shortcut is only taken for the plain default Redact."""
    scrubber = Scrubber(default=Redact(template="<{label}>"))
    assert scrubber.scrub({"x": "mail a@b.io", "n": 4111111111111111}) == {
        "x": "mail <email>",
        "n": "<card>",
    }


def _mod97_reference(compact: str) -> bool:
    """ISO 7064 mod 97-10 spelled out digit by digit (the textbook algorithm)."""
    from flowtrace.scrubbing._checks import _IBAN_LENGTHS

    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    total = 0
    for ch in compact[4:] + compact[:4]:
        if "0" <= ch <= "9":
            total = (total * 10 + ord(ch) - 48) % 97
        elif "A" <= ch <= "Z":
            total = (total * 100 + ord(ch) - 55) % 97
        else:
            return False
    return total == 1


@given(st.text(alphabet="0123456789ABGDEZab\u00b2\u0663", min_size=10, max_size=34))
@SETTINGS
def test_iban_checksum_matches_the_textbook_algorithm(body: str) -> None:
    """iban_valid agrees with digit-by-digit mod 97 (lower case, other digits: invalid)."""
    from flowtrace.scrubbing._checks import iban_valid

    for country in ("DE", "GB", "NL", "XX"):
        compact = country + body
        assert iban_valid(compact) == _mod97_reference(compact)
    rnd = random.Random(len(body))
    for _ in range(5):
        valid = samples.PLANTS["iban"](rnd).replace(" ", "")
        assert iban_valid(valid)
        assert _mod97_reference(valid)


# Pieces of the new rules (issue 10, items 6-11): credential words and their syntaxes,
# disguised digits and separators, percent and base64 encodings, numbers the gates read.
_PIECES = [
    "password", "token", "access_token", "api_key", "Cookie", "Set-Cookie", "session_id",
    "secret", "Bearer", "authorization", "=", ":", ": ", " ", "\n", '"', "'", '\\"', "<", ">",
    "</", "--", "&", "?", "%40", "%20", "%3D", "%2540", "@", "example.com", "exämple.de",
    "\uff14", "\uff11", "\u0664", "\u200b", "\u00a0", "\uff20", "4111", "1111", "4242",
    "123", "45", "6789", ".", "-", "/", "_", "DE89", "3704", "0044", "0532", "0130", "00",
    "de89", "GB82", "WEST", "eyJhbGciOiJIUzI1NiJ9", "eyJzdWIiOiIxIn0", "abcDEF123xyzQRS456",
    "amFuZUBleGFtcGxlLmNvbQ==", "+1", "(555)", "234-5678", "2026-11-14", "10.0.0.1", "::1",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "AKIAIOSFODNN7EXAMPLE", "ghp_", "x",
    "-----BEGIN PRIVATE KEY-----", "MIIEvQIBADANBg", "-----END PRIVATE KEY-----",
]  # fmt: skip
pieces = st.lists(st.sampled_from(_PIECES), max_size=14).map("".join)
# Built-ins marked as custom: every detector runs over the whole view, with no gate but its
# own coarse one, from offset 0 — the full scan the gates must agree with.
FULL = Scrubber(
    detectors=[dataclasses.replace(d, builtin=False) for d in BUILTIN_DETECTORS],
    time_budget=60,
)


@given(st.lists(pieces, min_size=1, max_size=4))
@SETTINGS
def test_gates_and_normalisation_agree_with_the_full_scan(values: list[str]) -> None:
    """The prefilter words, the per-detector gates and their start offsets, the normalised
    view and decoding never change a result compared with running every detector."""
    event = {f"k{i}": v for i, v in enumerate(values)}
    assert FAST.scrub(event) == FULL.scrub(event)
    for v in values:
        assert FAST.scrub_text(v) == FULL.scrub_text(v)
        assert FAST.scrub_text(v, multiline=True) == FULL.scrub_text(v, multiline=True)


@given(st.lists(texts, max_size=6))
@SETTINGS
def test_gates_agree_with_the_full_scan_on_digit_text(values: list[str]) -> None:
    """The same, on the digit-heavy alphabet of the prefilter tests."""
    for v in values:
        assert FAST.scrub_text(v) == FULL.scrub_text(v)
