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
from base64 import b64decode, urlsafe_b64encode
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
    "associated_data",
    "decode_text",
    "encode_text",
    "pack_header",
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
_HEADER: Final = struct.Struct(">BB8sH2s")
_U16: Final = struct.Struct(">H")
_MIN_RANDOMIZED: Final = HEADER_SIZE + COMMITMENT_SIZE + NONCE_SIZE + TAG_SIZE
_MIN_DETERMINISTIC: Final = HEADER_SIZE + COMMITMENT_SIZE + TAG_SIZE + 1  # 0x00 pad byte
MAX_TOKEN_CHARS: Final = 16 * 1024 * 1024
"""Longest text token accepted (16 MiB); longer input is refused before decoding."""


class Header(NamedTuple):
    """The parsed, unauthenticated header of a token."""

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


def pack_header(flags: int, dek_id: bytes, dek_version: int, field_tag: bytes) -> bytes:
    """The 14 header bytes."""
    return _HEADER.pack(VERSION, flags, dek_id, dek_version, field_tag)


def parse(raw: bytes) -> Header:
    """Split token bytes into their parts; raises a :class:`TokenError` subclass if malformed."""
    if len(raw) < 1:
        raise MalformedTokenError("empty token: expected a flowtrace field token")
    if raw[0] != VERSION:
        raise UnsupportedTokenVersionError(
            f"token format version {raw[0]} is not supported (this flowtrace reads version "
            f"{VERSION}); upgrade flowtrace or check the value is a flowtrace token"
        )
    if len(raw) < _MIN_DETERMINISTIC:
        raise MalformedTokenError(
            f"token is truncated: {len(raw)} bytes, a version-1 token has at least "
            f"{_MIN_DETERMINISTIC}"
        )
    _, flags, dek_id, dek_version, field_tag = _HEADER.unpack_from(raw)
    if flags & ~_KNOWN_FLAGS:
        raise MalformedTokenError(f"token has unknown flag bits 0x{flags:02x}")
    if dek_version == 0:
        raise MalformedTokenError("token names DEK version 0; versions start at 1")
    commit_end = HEADER_SIZE + COMMITMENT_SIZE
    if flags & FLAG_DETERMINISTIC:
        nonce = b""
        body_start = commit_end
    else:
        if len(raw) < _MIN_RANDOMIZED:
            raise MalformedTokenError(
                f"token is truncated: {len(raw)} bytes, a randomized version-1 token has at "
                f"least {_MIN_RANDOMIZED}"
            )
        body_start = commit_end + NONCE_SIZE
        nonce = raw[commit_end:body_start]
    return Header(
        flags,
        dek_id,
        dek_version,
        field_tag,
        raw[HEADER_SIZE:commit_end],
        nonce,
        raw[:HEADER_SIZE],
        raw[body_start:],
    )


def encode_text(raw: bytes) -> str:
    """Unpadded base64url text form of token bytes."""
    return urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_text(token: object) -> bytes:
    """Token bytes from the text form; only canonical unpadded base64url is accepted."""
    if not isinstance(token, str):
        raise MalformedTokenError(
            f"a flowtrace token is a str, got {type(token).__name__}; pass the stored text"
        )
    if len(token) > MAX_TOKEN_CHARS:
        raise MalformedTokenError(f"token is {len(token)} characters; the limit is {MAX_TOKEN_CHARS}")
    if len(token) % 4 == 1:
        raise MalformedTokenError("token text has an impossible length for base64url")
    try:
        text = token.encode("ascii")
        raw = b64decode(text + b"=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise MalformedTokenError(
            "token is not unpadded base64url text: not a flowtrace token, or it was cut "
            "or edited"
        ) from None
    # Reject non-canonical encodings (non-zero unused bits): one token, one spelling.
    if urlsafe_b64encode(raw).rstrip(b"=") != text:
        raise MalformedTokenError("token text is not canonical base64url (edited characters)")
    return raw


def _lp(value: str, what: str) -> bytes:
    data = value.encode("utf-8", "surrogatepass")
    if len(data) > 0xFFFF:
        raise InvalidContextValueError(what, "is longer than 65535 UTF-8 bytes")
    return _U16.pack(len(data)) + data


def associated_data(
    header_bytes: bytes, tenant: str, field: str, context: Mapping[str, str] | None
) -> bytes:
    """AAD = header || lp(tenant) || lp(field) || u16(n) || sorted lp(key) lp(value) pairs."""
    parts = [header_bytes, _lp(tenant, "tenant"), _lp(field, "field")]
    if context:
        if len(context) > 0xFFFF:
            raise InvalidContextValueError("context", "has more than 65535 entries")
        items = []
        for key, value in context.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise InvalidContextValueError(
                    "context", "encryption context keys and values must be str"
                )
            items.append((key.encode("utf-8", "surrogatepass"), key, value))
        items.sort()
        parts.append(_U16.pack(len(items)))
        for _, key, value in items:
            parts.append(_lp(key, "context key"))
            parts.append(_lp(value, "context value"))
    else:
        parts.append(b"\x00\x00")
    return b"".join(parts)
