"""Keys derived from one data key (DEK), and sealing/opening of token bytes.

Every key a token uses is derived from the 32-byte DEK with HMAC-SHA256 under a fixed
label, so one DEK never feeds two algorithms directly (docs/spec/token.md, "Keys")::

    K_gcm    = HMAC-SHA256(DEK, "flowtrace/token/v1/aes-256-gcm")
    K_siv    = HMAC-SHA256(DEK, "flowtrace/token/v1/aes-siv/1") || ... "/aes-siv/2"
    C        = HMAC-SHA256(DEK, "flowtrace/token/v1/commitment")[:16]
    K_field  = HMAC-SHA256(DEK, "flowtrace/token/v1/field-tag")
    K_index  = HMAC-SHA256(DEK, "flowtrace/blind-index/v1")

The raw DEK is not kept after derivation.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Mapping
from os import urandom as _urandom
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV

from ..errors import TamperedTokenError, WrongFieldError
from . import _token

__all__ = ["DEK_SIZE", "DerivedKeys", "open_token", "seal", "seal_prefixed"]

DEK_SIZE: Final = 32
_L_GCM: Final = b"flowtrace/token/v1/aes-256-gcm"
_L_SIV1: Final = b"flowtrace/token/v1/aes-siv/1"
_L_SIV2: Final = b"flowtrace/token/v1/aes-siv/2"
_L_COMMIT: Final = b"flowtrace/token/v1/commitment"
_L_FIELD: Final = b"flowtrace/token/v1/field-tag"
_L_INDEX: Final = b"flowtrace/blind-index/v1"
_MAX_FIELD_TAGS: Final = 4096


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


class DerivedKeys:
    """The working keys of one DEK version. Holds no raw DEK."""

    __slots__ = ("_field_key", "_field_tags", "_index_key", "_lock", "_siv", "commitment", "gcm")

    def __init__(self, dek: bytes) -> None:
        if len(dek) != DEK_SIZE:
            raise ValueError(f"a DEK is {DEK_SIZE} bytes, got {len(dek)}")
        self.gcm = AESGCM(_hmac(dek, _L_GCM))
        self.commitment = _hmac(dek, _L_COMMIT)[: _token.COMMITMENT_SIZE]
        self._siv = AESSIV(_hmac(dek, _L_SIV1) + _hmac(dek, _L_SIV2))
        self._field_key = _hmac(dek, _L_FIELD)
        self._index_key = _hmac(dek, _L_INDEX)
        self._field_tags: dict[str, bytes] = {}
        self._lock = threading.Lock()

    @property
    def siv(self) -> AESSIV:
        """The AES-SIV (deterministic mode) cipher."""
        return self._siv

    def field_tag(self, field: str) -> bytes:
        """Two bytes naming ``field`` under this key (so a moved token says WrongField)."""
        tag = self._field_tags.get(field)
        if tag is None:
            tag = _hmac(self._field_key, field.encode("utf-8", "surrogatepass"))[:2]
            if len(self._field_tags) < _MAX_FIELD_TAGS:
                with self._lock:
                    self._field_tags[field] = tag
        return tag

    def blind_index(self, field: str, value: bytes) -> bytes:
        """HMAC-SHA256(K_index, u16 len(field) || field || value)[:16]."""
        name = field.encode("utf-8", "surrogatepass")
        return _hmac(self._index_key, len(name).to_bytes(2, "big") + name + value)[:16]


def seal(
    keys: DerivedKeys,
    *,
    dek_id: bytes,
    dek_version: int,
    tenant: str,
    field: str,
    context: Mapping[str, str] | None,
    plaintext: bytes,
    flags: int = 0,
    nonce: bytes | None = None,
) -> bytes:
    """Token bytes for ``plaintext``. ``nonce`` is for test vectors only (random otherwise)."""
    prefix = _token.pack_header(flags, dek_id, dek_version, b"")
    return seal_prefixed(keys, prefix, tenant, field, context, plaintext, nonce)


def seal_prefixed(
    keys: DerivedKeys,
    prefix: bytes,
    tenant: str,
    field: str,
    context: Mapping[str, str] | None,
    plaintext: bytes,
    nonce: bytes | None = None,
) -> bytes:
    """:func:`seal` given the first 12 header bytes (version, flags, DEK id and version)."""
    header = prefix + (keys._field_tags.get(field) or keys.field_tag(field))
    aad = _token.associated_data(header, tenant, field, context)
    if prefix[1] & _token.FLAG_DETERMINISTIC:
        # AES-SIV input is 0x00 || plaintext (the primitive refuses empty input).
        return header + keys.commitment + keys.siv.encrypt(b"\x00" + plaintext, [aad])
    if nonce is None:
        nonce = _urandom(_token.NONCE_SIZE)
    return header + keys.commitment + nonce + keys.gcm.encrypt(nonce, plaintext, aad)


def open_token(
    keys: DerivedKeys,
    raw: bytes,
    flags: int,
    tenant: str,
    field: str,
    context: Mapping[str, str] | None,
) -> bytes:
    """Plaintext of token bytes ``raw`` (already checked by :func:`_token.check`, which
    returned ``flags``) whose DEK is ``keys``; raises a typed error otherwise."""
    if not hmac.compare_digest(raw[14:30], keys.commitment):
        raise TamperedTokenError(
            "token key commitment does not match its data key: the token was edited"
        )
    if raw[12:14] != (keys._field_tags.get(field) or keys.field_tag(field)):
        raise WrongFieldError(
            f"this token was not produced for field {field!r}; pass the field it was "
            "encrypted for (tokens cannot be moved between fields)"
        )
    aad = _token.associated_data(raw[:14], tenant, field, context)
    try:
        if flags & _token.FLAG_DETERMINISTIC:
            padded = keys.siv.decrypt(raw[30:], [aad])
            if padded[:1] != b"\x00":
                raise TamperedTokenError("deterministic token has a bad padding byte")
            return padded[1:]
        return keys.gcm.decrypt(raw[30:42], raw[42:], aad)
    except InvalidTag:
        raise TamperedTokenError(
            "token failed authentication: it was edited, or it belongs to another record "
            "or encryption context than the one given"
        ) from None
