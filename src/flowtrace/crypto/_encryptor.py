"""FieldEncryptor: the safe recipe for encrypting one field value into a token."""

from __future__ import annotations

import json
import os
from base64 import urlsafe_b64encode
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import CryptoError, InvalidContextValueError, MissingSubjectError
from ..flowcontext import current, listening, require_tenant
from . import _token
from ._accel import FASTPATH
from ._cache import Entry
from ._events import report_decrypt
from ._keys import open_token, seal, seal_prefixed
from ._record import decrypt_record, encrypt_record
from ._vault import KeyVault, ShredReceipt

if TYPE_CHECKING:
    from ..classify import Schema

__all__ = ["FieldEncryptor", "TokenInfo"]


@dataclass(frozen=True)
class TokenInfo:
    """What a token's header says, *unauthenticated* (for inventories and rotation runs).

    Example::

        import flowtrace as ft
        from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider

        vault = KeyVault(LocalKeyProvider.generate("kek"), kek_id="kek")
        enc = FieldEncryptor(vault)
        with ft.context(tenant="acme"):
            token = enc.encrypt("4111 1111 1111 1111", field="card")
        info = FieldEncryptor.inspect(token)             # no key needed, nothing verified
        assert (info.key_version, info.deterministic) == (1, False)
    """

    key_id: str
    key_version: int
    deterministic: bool
    json: bool


def _check_field(field: object) -> str:
    if not isinstance(field, str) or not field:
        raise InvalidContextValueError("field", "must be a non-empty str naming the field")
    return field


class _PyEncryptorBase:
    """The pure-Python :meth:`FieldEncryptor.encrypt` and :meth:`FieldEncryptor.decrypt`.

    With the C fast path built (``flowtrace.crypto._fastpath``), FieldEncryptor's base is
    its ``EncryptorBase`` instead, which does the common call in C and hands every other
    call, with its original arguments, to these methods.
    """

    __slots__ = ()

    if TYPE_CHECKING:

        def _encrypt(
            self,
            payload: bytes,
            flags: int,
            field: str,
            context: Mapping[str, str] | None,
            subject: str | None,
            deterministic: bool,
        ) -> str: ...

        def _decrypt(
            self, token: str, field: str, context: Mapping[str, str] | None, reason: str | None
        ) -> tuple[bytes, int]: ...

    def _bind_fast_path(self, *args: object) -> None:
        """Nothing to wire without the C fast path."""

    def encrypt(
        self,
        value: str,
        *,
        field: str,
        context: Mapping[str, str] | None = None,
        subject: str | None = None,
        deterministic: bool = False,
    ) -> str:
        """Encrypt ``value`` for ``field`` of the current tenant; returns the text token.

        ``deterministic=True`` uses AES-SIV: equal inputs give equal tokens (enables
        equality lookups, leaks equality; see docs/encryption.md).
        """
        if type(value) is not str and not isinstance(value, str):
            raise TypeError(
                f"encrypt() takes a str, got {type(value).__name__}; "
                "use encrypt_value() for other JSON values"
            )
        return self._encrypt(
            value.encode("utf-8", "surrogatepass"), 0, field, context, subject, deterministic
        )

    def decrypt(
        self,
        token: str,
        *,
        field: str,
        context: Mapping[str, str] | None = None,
        reason: str | None = None,
    ) -> str:
        """The plaintext of ``token``; raises a typed error if it cannot be trusted.

        Checks the current tenant, the field and ``context``; reports the decrypt
        (``reason`` says why the value is read). A JSON token decrypts to its JSON text.
        """
        payload, _ = self._decrypt(token, field, context, reason)
        return payload.decode("utf-8", "surrogatepass")


def _report_fast_decrypt(entry: Entry, tenant: str, field: str, reason: str | None) -> None:
    # Called by the C fast path after a successful decrypt, once listening() said yes.
    report_decrypt(
        tenant=tenant,
        subject=entry.keyring.subject,
        field=field,
        key_id=entry.keyring.dek_id,
        key_version=entry.version,
        reason=reason,
        error=None,
        cache_hit=True,
        known_listening=True,
    )


if TYPE_CHECKING:  # both bases behave the same; type-check against the Python one
    _EncryptorBase = _PyEncryptorBase
else:
    _EncryptorBase = _PyEncryptorBase if FASTPATH is None else FASTPATH.EncryptorBase


class FieldEncryptor(_EncryptorBase):
    """Encrypts field values into compact, versioned, URL-safe tokens and back.

    ``FieldEncryptor(vault)`` uses one data key per tenant; ``subject_keys=True`` uses one
    per data subject (taken from ``subject=`` or the flow context's ``subject``), so
    :meth:`shred` can erase one person. The tenant always comes from the flow context
    (:class:`~flowtrace.errors.MissingTenantError` without one).

    Tokens bind tenant, field and the optional ``context`` mapping (e.g. the record id):
    a token moved elsewhere fails with a :class:`~flowtrace.errors.TokenError`. Every
    :meth:`decrypt` is reported as a ``decrypt`` event, failures included.

    Example::

        import flowtrace as ft
        from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider

        vault = KeyVault(LocalKeyProvider.generate("kek"), kek_id="kek")
        enc = FieldEncryptor(vault)

        with ft.context(tenant="acme", user="dr-who"):
            token = enc.encrypt("123-45-6789", field="ssn", context={"record": "42"})
            ssn = enc.decrypt(token, field="ssn", context={"record": "42"}, reason="billing")
        assert ssn == "123-45-6789"
    """

    fast_path: ClassVar[bool] = FASTPATH is not None
    """True when :meth:`encrypt` and :meth:`decrypt` run on the optional C fast path."""

    def __init__(self, vault: KeyVault, *, subject_keys: bool = False) -> None:
        self._vault = vault
        self._subject_keys = subject_keys
        self._bind_fast_path(*vault._fast_path_state(), subject_keys)

    @property
    def vault(self) -> KeyVault:
        """The key vault holding this encryptor's data keys."""
        return self._vault

    def _subject(self, subject: str | None) -> str | None:
        if subject is not None:
            if not isinstance(subject, str) or not subject:
                raise InvalidContextValueError("subject", "must be a non-empty str")
            return subject
        if not self._subject_keys:
            return None
        found: str | None = current().subject
        if found is None:
            raise MissingSubjectError(
                "this encryptor uses per-subject keys but no subject is known; pass "
                "subject=... or run inside flowtrace.context(subject=...)"
            )
        return found

    # --- values ---------------------------------------------------------------------------

    def encrypt_value(
        self,
        value: Any,
        *,
        field: str,
        context: Mapping[str, str] | None = None,
        subject: str | None = None,
        deterministic: bool = False,
    ) -> str:
        """Encrypt any JSON value (numbers, lists...); :meth:`decrypt_value` restores it."""
        if isinstance(value, str):
            return self.encrypt(
                value, field=field, context=context, subject=subject, deterministic=deterministic
            )
        payload = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
        return self._encrypt(payload, _token.FLAG_JSON, field, context, subject, deterministic)

    def _encrypt(
        self,
        payload: bytes,
        flags: int,
        field: str,
        context: Mapping[str, str] | None,
        subject: str | None,
        deterministic: bool,
    ) -> str:
        tenant = require_tenant()
        if type(field) is not str or not field:
            _check_field(field)
        if subject is not None or self._subject_keys:
            subject = self._subject(subject)
        entry = self._vault.encryption_key(tenant, subject)
        if deterministic:
            flags |= _token.FLAG_DETERMINISTIC
        raw = seal_prefixed(entry.keys, entry.prefixes[flags], tenant, field, context, payload)
        return _token.encode_text(raw)

    def decrypt_value(
        self,
        token: str,
        *,
        field: str,
        context: Mapping[str, str] | None = None,
        reason: str | None = None,
    ) -> Any:
        """Like :meth:`decrypt`, restoring the JSON value given to :meth:`encrypt_value`."""
        payload, flags = self._decrypt(token, field, context, reason)
        if flags & _token.FLAG_JSON:
            return json.loads(payload)
        return payload.decode("utf-8", "surrogatepass")

    def _decrypt(
        self,
        token: str,
        field: str,
        context: Mapping[str, str] | None,
        reason: str | None,
    ) -> tuple[bytes, int]:
        tenant: str | None = None
        dek_id: bytes | None = None
        version: int | None = None
        subject: str | None = None
        hit: bool | None = None
        try:
            tenant = require_tenant()
            if type(field) is not str or not field:
                _check_field(field)
            raw = _token.decode_text(token)
            flags, dek_id, version = _token.check(raw)
            entry, hit = self._vault.decryption_key(dek_id, version, tenant)
            subject = entry.keyring.subject
            payload = open_token(entry.keys, raw, flags, tenant, field, context)
        except Exception as exc:
            report_decrypt(
                tenant=tenant,
                subject=subject,
                field=field if isinstance(field, str) else repr(field),
                key_id=dek_id,
                key_version=version,
                reason=reason,
                error=exc,
                cache_hit=hit,
            )
            raise
        report_decrypt(
            tenant=tenant,
            subject=subject,
            field=field,
            key_id=dek_id,
            key_version=version,
            reason=reason,
            error=None,
            cache_hit=hit,
        )
        return payload, flags

    # --- lifecycle -------------------------------------------------------------------------

    @staticmethod
    def inspect(token: str) -> TokenInfo:
        """Read a token's header without decrypting (nothing here is authenticated)."""
        parsed = _token.parse(_token.decode_text(token))
        return TokenInfo(
            key_id=parsed.dek_id.hex(),
            key_version=parsed.dek_version,
            deterministic=bool(parsed.flags & _token.FLAG_DETERMINISTIC),
            json=bool(parsed.flags & _token.FLAG_JSON),
        )

    def rewrap(
        self,
        token: str,
        *,
        field: str,
        context: Mapping[str, str] | None = None,
        reason: str = "rewrap",
    ) -> str:
        """Re-encrypt ``token`` under the newest version of its key (same mode, same key
        scope). Returns ``token`` unchanged if it already uses the newest version."""
        payload, flags = self._decrypt(token, field, context, reason)
        parsed = _token.parse(_token.decode_text(token))
        tenant = require_tenant()
        keyring = self._vault.store.get_keyring(parsed.dek_id)
        if keyring is None:  # shredded between the two reads
            raise CryptoError("the token's key vanished during rewrap; retry")
        entry = self._vault.encryption_key(tenant, keyring.subject)
        if entry.keyring.dek_id == parsed.dek_id and entry.version == parsed.dek_version:
            return token
        raw = seal(
            entry.keys,
            dek_id=entry.keyring.dek_id,
            dek_version=entry.version,
            tenant=tenant,
            field=field,
            context=context,
            plaintext=payload,
            flags=flags,
        )
        return _token.encode_text(raw)

    def shred(self, *, subject: str | None = None, reason: str | None = None) -> ShredReceipt:
        """Crypto-shred one subject's keys (``subject=``) or, without it, the whole current
        tenant's. Tokens under them raise KeyDestroyedError from now on."""
        return self._vault.shred(tenant=require_tenant(), subject=subject, reason=reason)

    # --- records ---------------------------------------------------------------------------

    def encrypt_record(
        self,
        record: Mapping[str, Any],
        schema: Schema,
        *,
        context: Mapping[str, str] | None = None,
        subject: str | None = None,
        deterministic: bool = False,
    ) -> dict[str, Any]:
        """A copy of ``record`` with every RESTRICTED field (per ``schema``) encrypted.

        The token of each field is bound to its dotted path and to ``context``.
        """
        return encrypt_record(
            self, record, schema, context=context, subject=subject, deterministic=deterministic
        )

    def decrypt_record(
        self,
        record: Mapping[str, Any],
        schema: Schema,
        *,
        context: Mapping[str, str] | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """The inverse of :meth:`encrypt_record` (each field decrypt is reported)."""
        return decrypt_record(self, record, schema, context=context, reason=reason)

    # --- equality lookups ------------------------------------------------------------------

    def blind_index(self, value: str, *, field: str, subject: str | None = None) -> str:
        """A keyed, versioned equality index of ``value`` under the newest key version.

        Store it next to the token; look up with :meth:`blind_index_terms`.
        """
        tenant = require_tenant()
        entry = self._vault.encryption_key(tenant, self._subject(subject))
        return _index_text(
            entry.version,
            entry.keys.blind_index(_check_field(field), value.encode("utf-8", "surrogatepass")),
        )

    def blind_index_terms(self, value: str, *, field: str, subject: str | None = None) -> list[str]:
        """Blind indexes of ``value`` under every decryptable key version (newest first):
        query ``WHERE idx IN (...)`` to find rows indexed before a rotation too."""
        tenant = require_tenant()
        field = _check_field(field)
        data = value.encode("utf-8", "surrogatepass")
        self._vault.encryption_key(tenant, self._subject(subject))
        return [
            _index_text(entry.version, entry.keys.blind_index(field, data))
            for entry in self._vault.live_versions(tenant, self._subject(subject))
        ]

    def deterministic_terms(
        self,
        value: str,
        *,
        field: str,
        context: Mapping[str, str] | None = None,
        subject: str | None = None,
    ) -> list[str]:
        """Deterministic tokens of ``value`` under every decryptable key version."""
        tenant = require_tenant()
        field = _check_field(field)
        data = value.encode("utf-8", "surrogatepass")
        self._vault.encryption_key(tenant, self._subject(subject))
        return [
            _token.encode_text(
                seal(
                    entry.keys,
                    dek_id=entry.keyring.dek_id,
                    dek_version=entry.version,
                    tenant=tenant,
                    field=field,
                    context=context,
                    plaintext=data,
                    flags=_token.FLAG_DETERMINISTIC,
                )
            )
            for entry in self._vault.live_versions(tenant, self._subject(subject))
        ]


def _index_text(version: int, digest: bytes) -> str:
    return f"bi1.{version}.{urlsafe_b64encode(digest).rstrip(b'=').decode('ascii')}"


def _wire_fast_path(
    py_encrypt: Callable[..., str] = _PyEncryptorBase.encrypt,
    py_decrypt: Callable[..., str] = _PyEncryptorBase.decrypt,
) -> None:
    """Hand the C fast path its context variable and Python fallbacks (tests pass spies)."""
    if FASTPATH is not None:
        FASTPATH.configure(
            None,
            py_encrypt,
            py_decrypt,
            Entry.aad_tail,
            _report_fast_decrypt,
            listening,
            os.urandom,
        )


_wire_fast_path()
