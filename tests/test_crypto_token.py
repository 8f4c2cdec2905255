"""The token format: checked-in vectors, round-trips, tamper detection, typed errors."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowtrace
from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider, _token
from flowtrace.crypto.hazmat import open_token_with_key, seal_with_key
from flowtrace.errors import (
    CryptoError,
    MalformedTokenError,
    TamperedTokenError,
    TokenError,
    UnsupportedTokenVersionError,
    WrongFieldError,
    WrongTenantError,
)

VECTORS = json.loads(
    (Path(__file__).parent / "vectors" / "token_v1.json").read_text(encoding="utf-8")
)
DEK = bytes.fromhex(VECTORS["dek_hex"])


# --- an independent reading of docs/spec/token.md (no flowtrace code) ------------------


def _spec_lp(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">H", len(data)) + data


def _spec_open(
    dek: bytes, token: str, tenant: str, field: str, context: dict[str, str]
) -> dict[str, Any]:
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))

    def label(name: str) -> bytes:
        return hmac.new(dek, f"flowtrace/token/v1/{name}".encode(), hashlib.sha256).digest()

    version, flags, dek_id, dek_version, field_tag = struct.unpack(">BB8sH2s", raw[:14])
    assert version == 1
    assert field_tag == hmac.new(label("field-tag"), field.encode(), hashlib.sha256).digest()[:2]
    assert raw[14:30] == label("commitment")[:16]
    aad = raw[:14] + _spec_lp(tenant) + _spec_lp(field) + struct.pack(">H", len(context))
    for key in sorted(context, key=lambda k: k.encode()):
        aad += _spec_lp(key) + _spec_lp(context[key])
    if flags & 1:
        siv = AESSIV(label("aes-siv/1") + label("aes-siv/2"))
        padded = siv.decrypt(raw[30:], [aad])
        assert padded[:1] == b"\x00"
        plaintext = padded[1:]
    else:
        plaintext = AESGCM(label("aes-256-gcm")).decrypt(raw[30:42], raw[42:], aad)
    return {
        "flags": flags,
        "dek_id": dek_id.hex(),
        "dek_version": dek_version,
        "plaintext": plaintext.decode(),
    }


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_vectors_decrypt_by_the_spec_alone(vector: dict[str, Any]) -> None:
    """Each checked-in token opens with only the spec's construction and primitives."""
    opened = _spec_open(DEK, vector["token"], vector["tenant"], vector["field"], vector["context"])
    assert opened == {
        "flags": (1 if vector["deterministic"] else 0) | (2 if vector["json"] else 0),
        "dek_id": VECTORS["dek_id_hex"],
        "dek_version": vector["dek_version"],
        "plaintext": vector["plaintext"],
    }


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_vectors_are_reproduced_byte_for_byte(vector: dict[str, Any]) -> None:
    """flowtrace produces exactly the checked-in token from the same inputs, and opens it."""
    token = seal_with_key(
        DEK,
        dek_id=bytes.fromhex(VECTORS["dek_id_hex"]),
        dek_version=vector["dek_version"],
        tenant=vector["tenant"],
        field=vector["field"],
        plaintext=vector["plaintext"].encode(),
        context=vector["context"],
        deterministic=vector["deterministic"],
        json=vector["json"],
        nonce=None if vector["deterministic"] else bytes.fromhex(VECTORS["nonce_hex"]),
    )
    assert token == vector["token"]
    assert (
        open_token_with_key(
            DEK, token, tenant=vector["tenant"], field=vector["field"], context=vector["context"]
        )
        == vector["plaintext"].encode()
    )


def test_vector_overhead_is_at_most_60_bytes() -> None:
    """A randomized token of a 32-byte value carries at most 60 bytes of overhead."""
    vector = next(v for v in VECTORS["vectors"] if v["name"] == "randomized-32-bytes")
    raw = base64.urlsafe_b64decode(vector["token"] + "=" * (-len(vector["token"]) % 4))
    assert len(raw) - 32 == 58


# --- through the FieldEncryptor --------------------------------------------------------


@pytest.fixture(scope="module")
def encryptor() -> FieldEncryptor:
    return FieldEncryptor(KeyVault(LocalKeyProvider.generate("kek"), kek_id="kek"))


FIELDS = st.text(min_size=1, max_size=20)
CONTEXTS = st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)
HYPO = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


ANY_TEXT = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])))
"""Any text, lone surrogates drawn often (a plain draw over all code points rarely hits one)."""


@HYPO
@given(value=ANY_TEXT, field=FIELDS, context=CONTEXTS, deterministic=st.booleans())
def test_any_value_round_trips(
    encryptor: FieldEncryptor,
    value: str,
    field: str,
    context: dict[str, str],
    deterministic: bool,
) -> None:
    """Every str (lone surrogates included; any field, context, mode) decrypts back to
    itself, on first use of the field and again once its key and field are cached."""
    with flowtrace.context(tenant="acme"):
        for _ in range(2):
            token = encryptor.encrypt(
                value, field=field, context=context, deterministic=deterministic
            )
            assert encryptor.decrypt(token, field=field, context=context) == value


@HYPO
@given(value=st.text(max_size=40), data=st.data())
def test_every_single_character_change_fails_typed(
    encryptor: FieldEncryptor, value: str, data: st.DataObject
) -> None:
    """Changing any one character of a token raises a CryptoError, never returns a value
    (its key and field are cached, as in a running service)."""
    with flowtrace.context(tenant="acme"):
        token = encryptor.encrypt(value, field="f", context={"r": "1"})
        assert encryptor.decrypt(token, field="f", context={"r": "1"}) == value
        index = data.draw(st.integers(0, len(token) - 1))
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=.é"
        char = data.draw(st.sampled_from([c for c in alphabet if c != token[index]]))
        edited = token[:index] + char + token[index + 1 :]
        with pytest.raises(CryptoError):
            encryptor.decrypt(edited, field="f", context={"r": "1"})


@HYPO
@given(value=st.binary(max_size=40), data=st.data())
def test_every_single_byte_change_fails_typed(value: bytes, data: st.DataObject) -> None:
    """Changing any one byte of the binary token raises a CryptoError (raw-key level)."""
    token = seal_with_key(
        DEK,
        dek_id=b"\x01" * 8,
        dek_version=1,
        tenant="t",
        field="f",
        plaintext=value,
        deterministic=data.draw(st.booleans()),
    )
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    edited = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(CryptoError):
        open_token_with_key(DEK, edited, tenant="t", field="f")


@HYPO
@given(value=st.text(max_size=30), other=st.text(min_size=1, max_size=10))
def test_tokens_never_decrypt_under_another_field(
    encryptor: FieldEncryptor, value: str, other: str
) -> None:
    """A token moved to another field fails (WrongFieldError, or Tampered on a tag clash)."""
    with flowtrace.context(tenant="acme"):
        token = encryptor.encrypt(value, field="email")
        if other != "email":
            with pytest.raises((WrongFieldError, TamperedTokenError)):
                encryptor.decrypt(token, field=other)


@HYPO
@given(value=st.text(max_size=30), context=CONTEXTS, other=CONTEXTS)
def test_tokens_never_decrypt_under_another_context(
    encryptor: FieldEncryptor, value: str, context: dict[str, str], other: dict[str, str]
) -> None:
    """A token bound to one record/context fails under any other context."""
    with flowtrace.context(tenant="acme"):
        token = encryptor.encrypt(value, field="f", context=context)
        if other != context:
            with pytest.raises(TamperedTokenError):
                encryptor.decrypt(token, field="f", context=other)


@HYPO
@given(
    value=st.text(max_size=30),
    tenant=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=10
    ),
)
def test_tokens_never_decrypt_under_another_tenant(
    encryptor: FieldEncryptor, value: str, tenant: str
) -> None:
    """A token of tenant acme raises WrongTenantError in any other tenant."""
    with flowtrace.context(tenant="acme"):
        token = encryptor.encrypt(value, field="f")
    if tenant != "acme":
        with flowtrace.context(tenant=tenant), pytest.raises(WrongTenantError):
            encryptor.decrypt(token, field="f")


def test_raw_tenant_binding_holds_even_with_the_right_key() -> None:
    """Even holding the DEK, a token opened for another tenant fails authentication."""
    token = seal_with_key(
        DEK, dek_id=b"\x02" * 8, dek_version=1, tenant="acme", field="f", plaintext=b"secret"
    )
    with pytest.raises(TamperedTokenError):
        open_token_with_key(DEK, token, tenant="globex", field="f")


def test_a_token_under_another_key_fails_key_commitment() -> None:
    """The commitment ties a token to its DEK: another DEK is refused before AES runs."""
    token = seal_with_key(
        DEK, dek_id=b"\x02" * 8, dek_version=1, tenant="t", field="f", plaintext=b"x"
    )
    with pytest.raises(TamperedTokenError, match="commitment"):
        open_token_with_key(bytes(32), token, tenant="t", field="f")


@pytest.mark.parametrize(
    ("token", "error"),
    [
        ("", MalformedTokenError),
        ("not a token!", MalformedTokenError),
        ("AQ", MalformedTokenError),
        ("A", MalformedTokenError),
        ("AQAB" * 3, MalformedTokenError),
        ("Ag" + "A" * 80, UnsupportedTokenVersionError),
        ("AAAA" * 20, UnsupportedTokenVersionError),
        ("AQAB+/==" * 10, MalformedTokenError),
        ("AQ" + "A" * 79 + "é", MalformedTokenError),
        (b"AQAB", MalformedTokenError),
        (None, MalformedTokenError),
    ],
)
def test_garbage_raises_specific_errors(encryptor: FieldEncryptor, token: Any, error: type) -> None:
    """Garbage, truncated, mis-encoded or future-version input raises its own TokenError."""
    with flowtrace.context(tenant="acme"), pytest.raises(error):
        encryptor.decrypt(token, field="f")
    assert issubclass(error, TokenError)


@pytest.mark.parametrize("size", [33, 34])
@pytest.mark.parametrize("padding", ["=", "=="])
def test_padding_is_not_a_second_spelling(
    encryptor: FieldEncryptor, size: int, padding: str
) -> None:
    """One token, one spelling: the unpadded text with '=' padding added is refused."""
    with flowtrace.context(tenant="acme"):
        token = encryptor.encrypt("x" * size, field="f")
        assert len(token) % 4 in (2, 3)
        padded = (token + padding)[: len(token) + (4 - len(token) % 4)]
        with pytest.raises(MalformedTokenError):
            encryptor.decrypt(padded, field="f")


def test_unknown_flag_bits_are_refused(encryptor: FieldEncryptor) -> None:
    """A token with flag bits this version does not define is malformed."""
    with flowtrace.context(tenant="acme"):
        token = encryptor.encrypt("v", field="f")
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[1] = 0x80
    edited = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with flowtrace.context(tenant="acme"), pytest.raises(MalformedTokenError, match="flag"):
        encryptor.decrypt(edited, field="f")


# --- the text form ------------------------------------------------------------------------

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _reference_decode(text: str) -> bytes | None:
    """RFC 4648 base64url by the standard library, canonical (unpadded) spellings only."""
    if not text.isascii() or len(text) % 4 == 1 or not set(text) <= set(ALPHABET):
        return None
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return raw if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == text else None


def _decode(text: str) -> bytes | None:
    try:
        return _token.decode_text(text)
    except MalformedTokenError:
        return None


@given(st.binary(max_size=300))
def test_text_form_is_unpadded_base64url(data: bytes) -> None:
    """encode_text is RFC 4648 base64url without padding, and decode_text inverts it."""
    text = _token.encode_text(data)
    assert text == base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    assert _token.decode_text(text) == data


@given(st.binary(max_size=60), st.binary(max_size=60))
def test_text_forms_concatenate_after_whole_groups(head: bytes, body: bytes) -> None:
    """The text of head || body is text(head) + text(body) when len(head) % 3 == 0
    (cached keys keep the 40-character text of a token's 30-byte head)."""
    head = head[: len(head) - len(head) % 3]
    assert _token.encode_text(head + body) == _token.encode_text(head) + _token.encode_text(body)


@given(st.text(alphabet=ALPHABET + "+/=*. \n\u00e9", max_size=90))
def test_decoder_accepts_exactly_the_canonical_text(text: str) -> None:
    """Any text: decode_text gives the reference's bytes, or refuses what it refuses."""
    assert _decode(text) == _reference_decode(text)


@given(st.binary(min_size=1, max_size=100), st.data())
def test_decoder_refuses_every_edit_the_reference_refuses(
    data: bytes, draw: st.DataObject
) -> None:
    """One edited character of valid text (unused bits included): same verdict."""
    text = _token.encode_text(data)
    i = draw.draw(st.integers(0, len(text) - 1))
    edited = text[:i] + draw.draw(st.sampled_from(ALPHABET + "+/=")) + text[i + 1 :]
    assert _decode(edited) == _reference_decode(edited)


@pytest.mark.parametrize("size", [33, 34])
def test_only_the_canonical_last_character_decrypts(size: int) -> None:
    """Tokens whose last character has unused bits: every other spelling is refused."""
    enc = FieldEncryptor(KeyVault(LocalKeyProvider.generate("kek"), kek_id="kek"))
    value = "x" * size
    with flowtrace.context(tenant="acme"):
        token = enc.encrypt(value, field="f")
        assert enc.decrypt(token, field="f") == value  # key and field now cached
        opened = []
        for char in ALPHABET:
            edited = token[:-1] + char
            with contextlib.suppress(TokenError):
                opened.append(enc.decrypt(edited, field="f"))
    assert len(token) % 4 in (2, 3)
    assert opened == [value]


CONTEXT_TEXT = st.text(
    st.one_of(st.characters(), st.characters(categories=["Cs"])), max_size=12
)


@HYPO
@given(context=st.dictionaries(CONTEXT_TEXT, CONTEXT_TEXT, max_size=18), other=CONTEXT_TEXT)
def test_contexts_bind_in_any_order_and_any_text(
    encryptor: FieldEncryptor, context: dict[str, str], other: str
) -> None:
    """Any context (unicode, lone surrogates, many pairs) decrypts in any key order, and
    one more pair fails authentication."""
    changed = {**context, "\x00extra": other}
    with flowtrace.context(tenant="acme"):
        token = encryptor.encrypt("v", field="f", context=context)
        assert encryptor.decrypt(token, field="f", context=dict(reversed(context.items()))) == "v"
        with pytest.raises(TamperedTokenError):
            encryptor.decrypt(token, field="f", context=changed)


@given(
    context=st.dictionaries(CONTEXT_TEXT, CONTEXT_TEXT, max_size=6),
    tenant=st.text(min_size=1, max_size=8),
    field=st.text(min_size=1, max_size=8),
)
def test_associated_data_is_the_spec_construction(
    context: dict[str, str], tenant: str, field: str
) -> None:
    """AAD = header || lp(tenant) || lp(field) || u16(m) || pairs sorted by key bytes
    (not by their length prefix: "aa" sorts before "b")."""

    def lp(text: str) -> bytes:
        data = text.encode("utf-8", "surrogatepass")
        return struct.pack(">H", len(data)) + data

    header = bytes(range(14))
    expected = header + lp(tenant) + lp(field) + struct.pack(">H", len(context))
    for key in sorted(context, key=lambda k: k.encode("utf-8", "surrogatepass")):
        expected += lp(key) + lp(context[key])
    assert _token.associated_data(header, tenant, field, context) == expected
    assert _token.context_data({"b": "1", "aa": "2"}) == b"\x00\x02" + lp("aa") + lp("2") + (
        lp("b") + lp("1")
    )


@pytest.mark.parametrize("value", ["\udc80", "a\ud800b", "x" * 31 + "\udfff", "\U0001f600\udc00"])
def test_lone_surrogates_round_trip(encryptor: FieldEncryptor, value: str) -> None:
    """Values with lone surrogates keep them, on first use of a field and once cached."""
    with flowtrace.context(tenant="acme"):
        for field in ("surrogates", "surrogates"):
            token = encryptor.encrypt(value, field=field)
            assert encryptor.decrypt(token, field=field) == value
