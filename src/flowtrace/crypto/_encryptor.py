"""FieldEncryptor: the safe recipe for encrypting one field value into a token."""

from __future__ import annotations

import json
from base64 import urlsafe_b64encode
from collections.abc import Mapping
from dataclasses import dataclass
from os import urandom as _urandom
from typing import TYPE_CHECKING, Any, Final

from ..errors import CryptoError, InvalidContextValueError, MissingSubjectError
from ..flowcontext import LISTENING, current, current_tenant, require_tenant
from . import _token
from ._cache import Binding
from ._events import report_decrypt
from ._keys import open_token, seal, seal_prefixed
from ._record import walk_restricted
from ._vault import KeyVault, ShredReceipt

if TYPE_CHECKING:
    from ..classify import Schema

__all__ = ["FieldEncryptor", "TokenInfo"]

_LISTENING = LISTENING
_decode_text = _token.decode_text
_decode_str = _token.decode_str
_encode_text = _token.encode_text
_context_data = _token.context_data
_NONCE_SIZE: Final = _token.NONCE_SIZE
_MAX_TOKEN_CHARS: Final = _token.MAX_TOKEN_CHARS
# The text of a token's first 30 bytes (header and key commitment): 40 characters.
_HEAD_CHARS: Final = (_token.HEADER_SIZE + _token.COMMITMENT_SIZE) * 4 // 3


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


class FieldEncryptor:
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

    def __init__(self, vault: KeyVault, *, subject_keys: bool = False) -> None:
        self._vault = vault
        self._subject_keys = subject_keys
        # The vault's key cache and its index of bindings (package-internal, see KeyCache).
        self._cache = vault._cache
        self._sealers = vault._cache.sealers
        self._openers = vault._cache.openers
        self._max_uses = vault._cache.max_uses
        self._clock = vault._clock

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
    #
    # Two ways through, one behaviour. The common call (randomized mode, a str payload, a
    # key in the cache) is served by the key cache's precomputed Binding of the key and
    # field. Everything else, and any call a Binding cannot serve (no indexed binding, a
    # cache limit or the revalidation deadline reached, any failure at all), takes the
    # general path, which checks everything in the order docs/spec/token.md gives and is
    # the only one that raises and reports errors. The general path indexes the binding it
    # used, so the next call of the same key and field is served from it.

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
        if type(value) is str and type(field) is str and not deterministic:
            if subject is None:
                # "" is no key scope, so a per-subject encryptor without a subject takes
                # the vault's path, which raises MissingSubjectError.
                scope = (current().subject or "") if self._subject_keys else None
            else:
                scope = subject if type(subject) is str else ""
            binding = self._sealers.get((require_tenant(), scope, field))
            if (
                binding is None
                or self._clock() >= binding.valid_until
                or (entry := binding.entry).uses >= self._max_uses
            ):
                binding = self._load_sealer(field, subject)
            else:
                entry.uses += 1
            nonce = _urandom(_NONCE_SIZE)
            aad = binding.aad if not context else binding.aad_prefix + _context_data(context)
            try:
                plaintext = value.encode()
            except UnicodeEncodeError:  # lone surrogates: kept, as on every path
                plaintext = value.encode("utf-8", "surrogatepass")
            # header || commitment || nonce || AES-GCM(plaintext): the text of the first 30
            # bytes is the binding's (see _token.encode_text on why the texts concatenate).
            return binding.text + _encode_text(nonce + binding.encrypt(nonce, plaintext, aad))
        if not isinstance(value, str):
            raise TypeError(
                f"encrypt() takes a str, got {type(value).__name__}; "
                "use encrypt_value() for other JSON values"
            )
        return self._seal(
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
        # A randomized str token whose key and field have an indexed Binding is opened
        # here; nothing the vault's path (_open) refuses is accepted: the 40-character head
        # is the binding's own (so version, flags, key id and version, field tag and
        # commitment are the ones that path checked), tenant and field are compared, the
        # key's cache limits hold, the body goes through the same canonical decoder and
        # AES-GCM authenticates it under the same associated data. Anything else, or any
        # failure, goes to _open, which raises the typed error and reports it.
        if type(token) is str and len(token) <= _MAX_TOKEN_CHARS:
            binding = self._openers.get(token[:_HEAD_CHARS])
            if (
                binding is not None
                and binding.field == field
                and binding.tenant == current_tenant()
                and self._clock() < binding.valid_until
                and (entry := binding.entry).uses < self._max_uses
            ):
                entry.uses += 1
                try:
                    body = _decode_str(token[_HEAD_CHARS:])  # size checked above
                    # A body too short for nonce and tag makes AES-GCM raise (a nonce under
                    # 8 bytes, or data shorter than the tag): the general path reports it.
                    payload = binding.decrypt(
                        body[:_NONCE_SIZE],
                        body[_NONCE_SIZE:],
                        binding.aad if not context else binding.aad_prefix + _context_data(context),
                    )
                except Exception:
                    pass
                else:
                    if _LISTENING.now():
                        self._report_cached(binding, field, reason)
                    try:
                        return payload.decode()
                    except UnicodeDecodeError:  # encoded lone surrogates
                        return payload.decode("utf-8", "surrogatepass")
        return self._open(token, field, context, reason)[0].decode("utf-8", "surrogatepass")

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
        return self._seal(payload, _token.FLAG_JSON, field, context, subject, deterministic)

    def decrypt_value(
        self,
        token: str,
        *,
        field: str,
        context: Mapping[str, str] | None = None,
        reason: str | None = None,
    ) -> Any:
        """Like :meth:`decrypt`, restoring the JSON value given to :meth:`encrypt_value`."""
        payload, flags = self._open(token, field, context, reason)
        if flags & _token.FLAG_JSON:
            return json.loads(payload)
        return payload.decode("utf-8", "surrogatepass")

    def _seal(
        self,
        payload: bytes,
        flags: int,
        field: str,
        context: Mapping[str, str] | None,
        subject: str | None,
        deterministic: bool,
    ) -> str:
        # Deterministic mode, JSON payloads and argument errors.
        tenant = require_tenant()
        if type(field) is not str or not field:
            _check_field(field)
        if subject is not None or self._subject_keys:
            subject = self._subject(subject)
        entry = self._vault.encryption_key(tenant, subject)
        if deterministic:
            flags |= _token.FLAG_DETERMINISTIC
        raw = seal_prefixed(entry.keys, entry.prefixes[flags], tenant, field, context, payload)
        return _encode_text(raw)

    def _load_sealer(self, field: str, subject: str | None) -> Binding:
        # The scope's active key for a randomized str token, from the vault; indexed so the
        # next encrypt of this scope and field finds it with KeyCache.sealer().
        tenant = require_tenant()
        if not field:
            _check_field(field)
        if subject is not None or self._subject_keys:
            subject = self._subject(subject)
        binding = self._vault.encryption_key(tenant, subject).bind(field)
        self._cache.index_sealer(binding)
        return binding

    @staticmethod
    def _report_cached(binding: Binding, field: str, reason: str | None) -> None:
        entry = binding.entry
        report_decrypt(
            tenant=binding.tenant,
            subject=entry.keyring.subject,
            field=field,
            key_id=entry.keyring.dek_id,
            key_version=entry.version,
            reason=reason,
            error=None,
            cache_hit=True,
            known_listening=True,
        )

    def _open(
        self,
        token: str,
        field: str,
        context: Mapping[str, str] | None,
        reason: str | None,
    ) -> tuple[bytes, int]:
        # The general path of decryption: every check, every error, every report.
        tenant: str | None = None
        dek_id: bytes | None = None
        version: int | None = None
        subject: str | None = None
        hit: bool | None = None
        try:
            tenant = require_tenant()
            if type(field) is not str or not field:
                _check_field(field)
            raw = _decode_text(token)
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
        if not flags:  # a randomized str token: index its binding for decrypt()
            self._cache.index_opener(entry.bind(field))
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
        payload, flags = self._open(token, field, context, reason)
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
        """A copy of ``record`` whose RESTRICTED fields (per ``schema``) are tokens.

        Fields are named by dotted path (``"patient.ssn"``), which is also the token's
        bound field; list items share their list's path. ``None`` values stay ``None``.
        Non-string values are encrypted as JSON and come back with their type. The input
        is not mutated. Each token is also bound to ``context``::

            stored = enc.encrypt_record(row, schema, context={"record": row["id"]})
        """

        def apply(value: Any, path: str) -> str:
            return self.encrypt_value(
                value, field=path, context=context, subject=subject, deterministic=deterministic
            )

        return walk_restricted(record, schema, apply)

    def decrypt_record(
        self,
        record: Mapping[str, Any],
        schema: Schema,
        *,
        context: Mapping[str, str] | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """The inverse of :meth:`encrypt_record` (each field decrypt is reported); raises
        on the first token that fails (for example KeyDestroyedError after a shred)."""

        def apply(value: Any, path: str) -> Any:
            return self.decrypt_value(value, field=path, context=context, reason=reason)

        return walk_restricted(record, schema, apply)

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
