"""The key vault: wrapped DEKs per tenant / per subject, versions, caching, shredding."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ..errors import (
    ConfigError,
    KeyDestroyedError,
    KeyProviderUnavailableError,
    KeyRetiredError,
    UnknownKeyError,
    WrongTenantError,
)
from ..flowcontext import EventKind, current, notify
from ..propagation import guard_destination
from . import _token
from ._cache import CachePolicy, Entry, KeyCache, SingleFlight
from ._keys import DEK_SIZE, DerivedKeys
from ._providers import KeyProvider, RetryPolicy
from ._stores import DekRecord, KeyringRecord, MemoryVaultStore, VaultStore

__all__ = ["DestroyedKey", "KeyVault", "ShredReceipt"]

_ID_ATTEMPTS: Final = 5


@dataclass(frozen=True)
class DestroyedKey:
    """One keyring destroyed by a shred: its id (hex), subject and the versions deleted.

    Example::

        import flowtrace as ft
        from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider

        vault = KeyVault(LocalKeyProvider.generate("kek"), kek_id="kek")
        enc = FieldEncryptor(vault)
        with ft.context(tenant="acme"):
            enc.encrypt("x", field="note")
            receipt = enc.shred(reason="tenant offboarding")
        destroyed = receipt.keys[0]
        assert destroyed.subject is None and destroyed.versions == (1,)
    """

    key_id: str
    subject: str | None
    versions: tuple[int, ...]


@dataclass(frozen=True)
class ShredReceipt:
    """Evidence of a crypto-shred: what was destroyed, for whom, when and why.

    ``destroyed_at`` is seconds since the epoch (UTC). An empty ``keys`` means the vault
    held no live key for that scope (nothing was encrypted for it, or it was shredded
    before).

    Example::

        import flowtrace as ft
        from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider

        vault = KeyVault(LocalKeyProvider.generate("kek"), kek_id="kek")
        enc = FieldEncryptor(vault, subject_keys=True)
        with ft.context(tenant="acme", subject="patient-42"):
            enc.encrypt("flu", field="diagnosis")
            receipt = enc.shred(subject="patient-42", reason="erasure request #981")
        assert (receipt.tenant, receipt.subject) == ("acme", "patient-42")
        print(receipt.to_dict())                          # keep it as evidence
    """

    tenant: str
    subject: str | None
    destroyed_at: float
    reason: str | None
    keys: tuple[DestroyedKey, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "tenant": self.tenant,
            "subject": self.subject,
            "destroyed_at": self.destroyed_at,
            "reason": self.reason,
            "keys": [
                {"key_id": k.key_id, "subject": k.subject, "versions": list(k.versions)}
                for k in self.keys
            ],
        }


def _wrap_context(tenant: str, dek_id: bytes, version: int) -> Mapping[str, str]:
    # Sent to the KMS (and its audit log): ids only, never personal data such as subjects.
    return {
        "flowtrace:tenant": tenant,
        "flowtrace:dek_id": dek_id.hex(),
        "flowtrace:dek_version": str(version),
    }


class KeyVault:
    """Data keys wrapped under a KEK, one keyring per tenant and per subject when asked.

    ``provider`` wraps/unwraps DEKs (a :class:`~flowtrace.crypto.KeyProvider`), ``store``
    keeps them wrapped (memory by default; :class:`SqliteVaultStore` or
    :class:`PostgresVaultStore` to share between processes), ``kek_id`` names the KEK new
    DEKs are wrapped under. Unwrapped keys are cached per ``cache`` (a
    :class:`CachePolicy`); transient provider failures are retried per ``retry``.
    ``clock`` (monotonic seconds) drives cache expiry; ``wall_clock`` stamps receipts.

    Example::

        import flowtrace as ft
        from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider, SqliteVaultStore

        store = SqliteVaultStore("keys.db")
        vault = KeyVault(LocalKeyProvider.generate("kek"), store, kek_id="kek")
        enc = FieldEncryptor(vault)
        with ft.context(tenant="acme"):
            old = enc.encrypt("secret", field="note")
        assert vault.rotate("acme") == 2                 # new tokens use version 2
        with ft.context(tenant="acme"):
            assert enc.decrypt(old, field="note") == "secret"   # old ones still decrypt
        vault.close()
    """

    def __init__(
        self,
        provider: KeyProvider,
        store: VaultStore | None = None,
        *,
        kek_id: str,
        cache: CachePolicy | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(kek_id, str) or not kek_id:
            raise ConfigError("KeyVault(kek_id=...) must name the KEK to wrap new data keys")
        self._provider = provider
        self._store: VaultStore = store if store is not None else MemoryVaultStore()
        self._kek_id = kek_id
        self._policy = cache or CachePolicy()
        self._retry = retry or RetryPolicy()
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._seq = self._store.change_seq()
        # FieldEncryptor also reads keys from this cache's index (see KeyCache).
        self._cache = KeyCache(self._policy, clock)
        self._flights: SingleFlight[Entry] = SingleFlight()

    @property
    def kek_id(self) -> str:
        """The KEK new data keys are wrapped under."""
        return self._kek_id

    @property
    def store(self) -> VaultStore:
        """The store holding the wrapped data keys."""
        return self._store

    @property
    def cache_policy(self) -> CachePolicy:
        """The limits on cached unwrapped keys."""
        return self._policy

    # --- cache coherence across processes -------------------------------------------------

    def _revalidate(self, force: bool = False) -> None:
        with self._lock:
            if not force and self._clock() < self._cache.next_check:
                return  # another thread polled while this one waited for the lock
            seq, changed = self._store.changes_since(self._seq)
            if changed:
                self._cache.evict(set(changed))
            self._seq = seq
            self._cache.next_check = self._clock() + self._policy.revalidate_interval

    def refresh(self) -> None:
        """Poll the change log now (instead of waiting up to ``revalidate_interval``)."""
        self._revalidate(force=True)

    # --- provider calls ------------------------------------------------------------------

    def _guard(self, kek_id: str) -> None:
        """Residency: a provider that declares a region may only see data allowed there."""
        region = getattr(self._provider, "region", None)
        if region is not None:
            guard_destination(f"kms/{kek_id}", region=str(region))

    def _unwrap(self, keyring: KeyringRecord, record: DekRecord) -> Entry:
        self._guard(record.kek_id)
        context = _wrap_context(keyring.tenant, record.dek_id, record.version)
        dek = self._retry.call(
            lambda: self._provider.unwrap_key(record.kek_id, record.wrapped, context),
            f"unwrapping data key {record.dek_id.hex()} v{record.version}",
        )
        return Entry(keyring, record.version, DerivedKeys(dek), self._clock())

    def _new_version(self, tenant: str, dek_id: bytes, version: int) -> tuple[DekRecord, Entry]:
        self._guard(self._kek_id)
        dek = os.urandom(DEK_SIZE)
        context = _wrap_context(tenant, dek_id, version)
        wrapped = self._retry.call(
            lambda: self._provider.wrap_key(self._kek_id, dek, context),
            f"wrapping a new data key for tenant {tenant!r}",
        )
        record = DekRecord(dek_id, version, self._kek_id, wrapped, self._wall_clock())
        keyring = KeyringRecord(dek_id, tenant, None, 1, record.created_at)
        return record, Entry(keyring, version, DerivedKeys(dek), self._clock())

    # --- keys for encryption ---------------------------------------------------------------

    def encryption_key(self, tenant: str, subject: str | None = None) -> Entry:
        """The newest DEK of the scope (created on first use). Internal to FieldEncryptor."""
        now = self._clock()
        if now >= self._cache.next_check:
            self._revalidate()
        scope = ("active", tenant, subject)
        entry = self._cache.get(scope, now)
        if entry is not None:
            return entry
        try:
            return self._flights.run(scope, lambda: self._load_active(tenant, subject))
        except KeyProviderUnavailableError:
            stale = self._cache.get(scope, self._clock(), stale_ok=True)
            if stale is not None:
                return stale
            raise

    def _load_active(self, tenant: str, subject: str | None) -> Entry:
        keyring = self._store.find_keyring(tenant, subject)
        if keyring is None:
            entry = self._create_keyring(tenant, subject)
        else:
            record = self._store.latest_version(keyring.dek_id)
            if record is None:  # destroyed between the two reads
                raise KeyDestroyedError(f"the key of {_scope(tenant, subject)} was just shredded")
            entry = self._cached_or_unwrap(keyring, record)
        self._cache.put(("active", tenant, subject), entry)
        return entry

    def _create_keyring(self, tenant: str, subject: str | None) -> Entry:
        for _ in range(_ID_ATTEMPTS):
            dek_id = os.urandom(_token.DEK_ID_SIZE)
            if self._store.get_keyring(dek_id) is not None:
                continue
            record, entry = self._new_version(tenant, dek_id, 1)
            keyring = KeyringRecord(dek_id, tenant, subject, 1, record.created_at)
            stored = self._store.create_keyring(keyring, record)
            if stored.dek_id != dek_id:  # another process created the scope first
                latest = self._store.latest_version(stored.dek_id)
                if latest is None:
                    raise KeyDestroyedError(f"the key of {_scope(tenant, subject)} was shredded")
                return self._cached_or_unwrap(stored, latest)
            entry.keyring = keyring
            self._cache.put((dek_id, 1), entry)
            return entry
        raise ConfigError("could not allocate a unique DEK id; is the store's RNG broken?")

    def _cached_or_unwrap(self, keyring: KeyringRecord, record: DekRecord) -> Entry:
        key = (record.dek_id, record.version)
        entry = self._cache.get(key, self._clock())
        if entry is None:
            entry = self._unwrap(keyring, record)
            self._cache.put(key, entry)
        return entry

    # --- keys for decryption ---------------------------------------------------------------

    def decryption_key(self, dek_id: bytes, version: int, tenant: str) -> tuple[Entry, bool]:
        """The DEK version a token names, checked against ``tenant``; ``(entry, cache_hit)``.

        Raises UnknownKeyError, WrongTenantError, KeyDestroyedError or KeyRetiredError.
        """
        now = self._clock()
        if now >= self._cache.next_check:
            self._revalidate()
        key = (dek_id, version)
        entry = self._cache.get(key, now)
        hit = entry is not None
        if entry is None:
            entry = self._flights.run(key, lambda: self._load(dek_id, version, tenant))
        keyring = entry.keyring
        if keyring.tenant != tenant:
            raise WrongTenantError(
                "this token belongs to another tenant than the current one; tokens never "
                "decrypt across tenants (use the owning tenant's context)"
            )
        if version < keyring.min_version:
            raise KeyRetiredError(
                f"key version {version} of {dek_id.hex()} is retired (minimum "
                f"{keyring.min_version}); re-encrypt the value with FieldEncryptor.rewrap "
                "before retiring its version"
            )
        return entry, hit

    def _load(self, dek_id: bytes, version: int, tenant: str) -> Entry:
        keyring = self._store.get_keyring(dek_id)
        if keyring is None:
            raise UnknownKeyError(
                f"no data key {dek_id.hex()} in this vault: the token comes from another "
                "vault, or its key id was edited"
            )
        if keyring.tenant != tenant:
            raise WrongTenantError(
                "this token belongs to another tenant than the current one; tokens never "
                "decrypt across tenants (use the owning tenant's context)"
            )
        if keyring.destroyed_at is not None:
            raise KeyDestroyedError(
                f"data key {dek_id.hex()} was destroyed (crypto-shredded) at "
                f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(keyring.destroyed_at))}; "
                "this value is unrecoverable by design"
            )
        if version < keyring.min_version:
            raise KeyRetiredError(
                f"key version {version} of {dek_id.hex()} is retired (minimum "
                f"{keyring.min_version}); rewrap tokens before retiring their version"
            )
        record = self._store.get_version(dek_id, version)
        if record is None:
            raise UnknownKeyError(f"data key {dek_id.hex()} has no version {version}")
        entry = self._unwrap(keyring, record)
        self._cache.put((dek_id, version), entry)
        return entry

    def keyring(self, tenant: str, subject: str | None = None) -> KeyringRecord | None:
        """The live keyring of a scope, or ``None``."""
        return self._store.find_keyring(tenant, subject)

    def live_versions(self, tenant: str, subject: str | None = None) -> list[Entry]:
        """Every decryptable version of a scope's DEK, newest first (for equality lookups)."""
        keyring = self._store.find_keyring(tenant, subject)
        if keyring is None:
            return []
        latest = self._store.latest_version(keyring.dek_id)
        if latest is None:
            return []
        return [
            self.decryption_key(keyring.dek_id, v, tenant)[0]
            for v in range(latest.version, keyring.min_version - 1, -1)
        ]

    # --- lifecycle ----------------------------------------------------------------------------

    def rotate(self, tenant: str, subject: str | None = None) -> int:
        """Add a new DEK version for the scope; new tokens use it, old ones still decrypt."""
        self.encryption_key(tenant, subject)  # make sure the keyring exists
        keyring = self._store.find_keyring(tenant, subject)
        if keyring is None:
            raise KeyDestroyedError(f"the key of {_scope(tenant, subject)} was just shredded")
        for _ in range(_ID_ATTEMPTS):
            latest = self._store.latest_version(keyring.dek_id)
            version = 1 if latest is None else latest.version + 1
            if version > _token.MAX_DEK_VERSION:
                raise ConfigError(f"{_scope(tenant, subject)} has reached the last DEK version")
            record, _ = self._new_version(tenant, keyring.dek_id, version)
            if self._store.add_version(record):
                self._cache.evict({keyring.dek_id})
                return version
        raise KeyProviderUnavailableError("concurrent rotations kept colliding; retry the rotation")

    def retire(self, tenant: str, subject: str | None = None, *, below: int) -> None:
        """Refuse to decrypt versions older than ``below`` (KeyRetiredError from now on)."""
        keyring = self._store.find_keyring(tenant, subject)
        if keyring is None:
            raise UnknownKeyError(f"{_scope(tenant, subject)} has no keys")
        latest = self._store.latest_version(keyring.dek_id)
        if latest is None or below > latest.version:
            raise ConfigError(
                f"cannot retire below version {below}: the newest version is "
                f"{latest.version if latest else 0}; rotate first"
            )
        self._store.set_min_version(keyring.dek_id, below)
        self._cache.evict({keyring.dek_id})

    def rotate_kek(self, new_kek_id: str) -> int:
        """Re-wrap every stored DEK under ``new_kek_id``; tokens are untouched.

        Returns how many DEK versions were re-wrapped. New DEKs use the new KEK from now on.
        """
        count = 0
        for record in self._store.all_versions():
            if record.kek_id == new_kek_id:
                continue
            keyring = self._store.get_keyring(record.dek_id)
            if keyring is None or keyring.destroyed_at is not None:
                continue
            wrapped = self._rewrap(keyring, record, new_kek_id)
            self._store.replace_wrapped(record.dek_id, record.version, new_kek_id, wrapped)
            count += 1
        self._kek_id = new_kek_id
        return count

    def _rewrap(self, keyring: KeyringRecord, record: DekRecord, new_kek_id: str) -> bytes:
        self._guard(record.kek_id)
        self._guard(new_kek_id)
        context = _wrap_context(keyring.tenant, record.dek_id, record.version)
        name = f"{record.dek_id.hex()} v{record.version}"
        dek = self._retry.call(
            lambda: self._provider.unwrap_key(record.kek_id, record.wrapped, context),
            f"unwrapping {name} for KEK rotation",
        )
        return self._retry.call(
            lambda: self._provider.wrap_key(new_kek_id, dek, context),
            f"re-wrapping {name} under {new_kek_id!r}",
        )

    def shred(
        self, *, tenant: str, subject: str | None = None, reason: str | None = None
    ) -> ShredReceipt:
        """Destroy the DEKs of one subject (``subject=``) or of a whole tenant.

        Every token under them raises :class:`KeyDestroyedError` from now on: at once in
        this process, within ``revalidate_interval`` in other processes sharing the store.
        Reported as a ``shred`` event (see docs/encryption.md) and returned as a receipt.
        """
        attributes: dict[str, str | int | None] = {
            "actor": current().user,
            "tenant": tenant,
            "subject": subject,
            "reason": reason,
            "scope": "tenant" if subject is None else "subject",
        }
        try:
            destroyed = self._store.destroy(tenant, subject, self._wall_clock())
        except Exception as exc:
            notify(EventKind.SHRED, {**attributes, "outcome": "error", "error": type(exc).__name__})
            raise
        self._cache.evict({keyring.dek_id for keyring, _ in destroyed})
        at = destroyed[0][0].destroyed_at if destroyed else self._wall_clock()
        receipt = ShredReceipt(
            tenant=tenant,
            subject=subject,
            destroyed_at=at if at is not None else self._wall_clock(),
            reason=reason,
            keys=tuple(
                DestroyedKey(keyring.dek_id.hex(), keyring.subject, tuple(versions))
                for keyring, versions in destroyed
            ),
        )
        notify(
            EventKind.SHRED,
            {
                **attributes,
                "key_id": ",".join(k.key_id for k in receipt.keys),
                "key_count": len(receipt.keys),
                "destroyed_at": receipt.destroyed_at,
                "outcome": "ok",
            },
        )
        return receipt

    def close(self) -> None:
        """Forget cached keys and close the store."""
        self._cache.clear()
        self._store.close()


def _scope(tenant: str, subject: str | None) -> str:
    return f"tenant {tenant!r}" if subject is None else f"a subject of tenant {tenant!r}"
