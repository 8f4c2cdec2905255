"""The field-encryption token, format version 1 (docs/spec/token.md is normative).

Binary layout (big-endian)::

    offset size  field
    0      1     format version = 0x01
    1      1     flags: bit 0 = deterministic (AES-SIV), bit 1 = JSON payload, others 0
    2      8     DEK id
    10     2     DEK version (uint16, >= 1)
    12     2     field tag = HMAC-SHA256(K_field, UTF-8 field)[:2]
    14     16    key commitment = HMAC-SHA256(DEK, "flowtrace/token/v1/commitment")[:16]
    30     12    nonce (randomized mode only)
    ..     n+16  AES-256-GCM ciphertext || tag
                 (deterministic: AES-SIV output over 0x00 || plaintext, n+17 bytes)

The text form is unpadded base64url of those bytes, in canonical form only.
This module only parses and builds bytes; keys live in :mod:`._keys`.
"""

from __future__ import annotations

import binascii
import struct
from binascii import a2b_base64, b2a_base64
from collections.abc import Mapping
from typing import Final, NamedTuple

from ..errors import (
    InvalidContextValueError,
    MalformedTokenError,
    UnsupportedTokenVersionError,
)

__all__ = [
    "COMMITMENT_SIZE",
    "FLAG_DETERMINISTIC",
    "FLAG_JSON",
    "HEADER_SIZE",
    "NONCE_SIZE",
    "TAG_SIZE",
    "VERSION",
    "Header",
    "aad_prefix",
    "associated_data",
    "context_data",
    "decode_str",
    "decode_text",
    "encode_text",
    "pack_header",
    "check",
    "parse",
]

VERSION: Final = 1
FLAG_DETERMINISTIC: Final = 0x01
FLAG_JSON: Final = 0x02
_KNOWN_FLAGS: Final = FLAG_DETERMINISTIC | FLAG_JSON
DEK_ID_SIZE: Final = 8
HEADER_SIZE: Final = 14
COMMITMENT_SIZE: Final = 16
NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16
MAX_DEK_VERSION: Final = 0xFFFF
_PREFIX: Final = struct.Struct(">BB8sH")
_U16: Final = struct.Struct(">H")
_MIN_RANDOMIZED: Final = HEADER_SIZE + COMMITMENT_SIZE + NONCE_SIZE + TAG_SIZE
_MIN_DETERMINISTIC: Final = HEADER_SIZE + COMMITMENT_SIZE + TAG_SIZE + 1  # 0x00 pad byte
_TO_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")
# '+', '/' and '=' (padding) must not be accepted: map them to '*', which strict
# a2b_base64 rejects. Otherwise "...AA=" or "...AA==" would be a second spelling of "...AA".
_FROM_URLSAFE: Final = bytes.maketrans(b"-_+/=", b"+/***")
_PADDING: Final = (b"", b"", b"==", b"=")
# Allowed last characters by text length % 4: those whose unused low bits are zero (2: four
# bits unused, 3: two); none for 1, a length no byte string encodes to.
_CANONICAL_LAST: Final = ("", "", "AQgw", "AEIMQUYcgkosw048")
MAX_TOKEN_CHARS: Final = 16 * 1024 * 1024
"""Longest text token accepted (16 MiB); longer input is refused before decoding."""


class Header(NamedTuple):
    """The parsed, unauthenticated parts of a token."""

    flags: int
    dek_id: bytes
    dek_version: int
    field_tag: bytes
    commitment: bytes
    nonce: bytes
    """Empty in deterministic mode."""
    header_bytes: bytes
    """Bytes 0..13, exactly as they appear in the token (part of the AAD)."""
    body: bytes
    """Ciphertext and tag."""


_make = Header._make


def pack_header(flags: int, dek_id: bytes, dek_version: int, field_tag: bytes) -> bytes:
    """The 14 header bytes (12 when ``field_tag`` is empty: a prefix to add a tag to)."""
    return _PREFIX.pack(VERSION, flags, dek_id, dek_version) + field_tag


def check(raw: bytes) -> tuple[int, bytes, int]:
    """Validate token bytes; returns ``(flags, dek_id, dek_version)``.

    Raises a :class:`TokenError` subclass if malformed. The offsets are fixed by
    docs/spec/token.md; callers slice the other parts directly (this is the hot path).
    """
    if not raw:
        raise MalformedTokenError("empty token: expected a flowtrace field token")
    if raw[0] != VERSION:
        raise UnsupportedTokenVersionError(
            f"token format version {raw[0]} is not supported (this flowtrace reads version "
            f"{VERSION}); upgrade flowtrace or check the value is a flowtrace token"
        )
    size = len(raw)
    if size < _MIN_DETERMINISTIC:
        raise MalformedTokenError(
            f"token is truncated: {size} bytes, a version-1 token has at least {_MIN_DETERMINISTIC}"
        )
    flags = raw[1]
    if flags & ~_KNOWN_FLAGS:
        raise MalformedTokenError(f"token has unknown flag bits 0x{flags:02x}")
    dek_version = (raw[10] << 8) | raw[11]
    if dek_version == 0:
        raise MalformedTokenError("token names DEK version 0; versions start at 1")
    if size < _MIN_RANDOMIZED and not flags & FLAG_DETERMINISTIC:
        raise MalformedTokenError(
            f"token is truncated: {size} bytes, a randomized version-1 token has at "
            f"least {_MIN_RANDOMIZED}"
        )
    return flags, raw[2:10], dek_version


def parse(raw: bytes) -> Header:
    """All parts of checked token bytes (for inspection; the hot path uses :func:`check`)."""
    flags, dek_id, dek_version = check(raw)
    if flags & FLAG_DETERMINISTIC:
        return _make((flags, dek_id, dek_version, raw[12:14], raw[14:30], b"", raw[:14], raw[30:]))
    return _make(
        (flags, dek_id, dek_version, raw[12:14], raw[14:30], raw[30:42], raw[:14], raw[42:])
    )


def encode_text(raw: bytes) -> str:
    """Unpadded base64url text form of token bytes.

    Text of byte strings whose lengths are multiples of 3 concatenates: the text of
    ``head || body`` is the text of ``head`` followed by that of ``body`` when
    ``len(head) % 3 == 0`` (the hot path relies on it for the 30-byte head).
    """
    # One pass maps the alphabet and deletes the padding and b2a_base64's trailing newline
    # (neither occurs anywhere else in its output).
    return b2a_base64(raw).translate(_TO_URLSAFE, b"=\n").decode()


def decode_text(token: object) -> bytes:
    """Token bytes from the text form; only canonical unpadded base64url is accepted."""
    if type(token) is not str:
        raise MalformedTokenError(
            f"a flowtrace token is a str, got {type(token).__name__}; pass the stored text"
        )
    size = len(token)
    if size > MAX_TOKEN_CHARS:
        raise MalformedTokenError(f"token is {size} characters; the limit is {MAX_TOKEN_CHARS}")
    return decode_str(token)


def decode_str(text: str) -> bytes:
    """:func:`decode_text` of a ``str`` already known to be within the size limit."""
    rest = len(text) & 3
    # One token, one spelling: a last character with non-zero unused bits ("AR" for "AQ",
    # both b"\x01") is refused, as is a length that is 1 mod 4 (no allowed last character).
    if rest and text[-1] not in _CANONICAL_LAST[rest]:
        raise MalformedTokenError(
            "token is not canonical unpadded base64url text (impossible length or an "
            "edited last character): not a flowtrace token, or it was cut or edited"
        )
    try:
        # Non-ASCII text encodes to bytes outside the alphabet, which strict mode refuses.
        data = text.encode().translate(_FROM_URLSAFE)
        return a2b_base64(data + _PADDING[rest] if rest else data, strict_mode=True)
    except (binascii.Error, ValueError):  # UnicodeEncodeError (lone surrogates) too
        raise MalformedTokenError(
            "token is not unpadded base64url text: not a flowtrace token, or it was cut or edited"
        ) from None


def _lp(value: str, what: str) -> bytes:
    data = value.encode("utf-8", "surrogatepass")
    if len(data) > 0xFFFF:
        raise InvalidContextValueError(what, "is longer than 65535 UTF-8 bytes")
    return _U16.pack(len(data)) + data


def associated_data(
    header_bytes: bytes, tenant: str, field: str, context: Mapping[str, str] | None
) -> bytes:
    """AAD = header || lp(tenant) || lp(field) || u16(n) || n sorted (lp(key) || lp(value)).

    ``lp(s)`` is the uint16 big-endian length of UTF-8 ``s`` followed by those bytes; pairs
    are sorted by the UTF-8 bytes of their key. No context is the same as an empty one.
    """
    return aad_prefix(header_bytes, tenant, field) + context_data(context)


def aad_prefix(header_bytes: bytes, tenant: str, field: str) -> bytes:
    """The AAD up to the context: ``header || lp(tenant) || lp(field)``."""
    return header_bytes + _lp(tenant, "tenant") + _lp(field, "field")


def context_data(context: Mapping[str, str] | None) -> bytes:
    """The AAD after :func:`aad_prefix`: ``u16(n) || n sorted (lp(key) || lp(value))``."""
    if not context:
        return b"\x00\x00"
    if type(context) is not dict and not isinstance(context, Mapping):
        raise InvalidContextValueError("context", "must be a mapping of str to str")
    size = len(context)
    if size > 0xFFFF:
        raise InvalidContextValueError("context", "has more than 65535 entries")
    pairs = []
    for key, value in context.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidContextValueError(
                "context", "encryption context keys and values must be str"
            )
        pairs.append((_lp(key, "context key"), _lp(value, "context value")))
    # Sorting lp(key) sorts by the UTF-8 bytes of the key within each key length; sort by
    # the key bytes themselves, as the spec says (keys are unique, so values never decide).
    if size > 1:
        pairs.sort(key=_key_bytes)
    return _U16.pack(size) + b"".join([k + v for k, v in pairs])


def _key_bytes(pair: tuple[bytes, bytes]) -> bytes:
    return pair[0][2:]
