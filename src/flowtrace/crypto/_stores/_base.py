"""The :class:`VaultStore` protocol and the records it keeps.

A *keyring* is the versioned series of data keys (DEKs) for one scope: a tenant, or one
data subject of a tenant. Its ``dek_id`` appears in every token. A store keeps DEKs only
wrapped by a KEK, plus a change log other processes poll to invalidate their caches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["DekRecord", "KeyringRecord", "VaultStore"]


@dataclass(frozen=True, slots=True)
class KeyringRecord:
    """One key scope: a tenant (``subject is None``) or one subject of a tenant.

    Example::

        import flowtrace as ft
        from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider

        vault = KeyVault(LocalKeyProvider.generate("kek"), kek_id="kek")
        with ft.context(tenant="acme"):
            FieldEncryptor(vault).encrypt("x", field="note")
        keyring = vault.keyring("acme")                  # a KeyringRecord
        assert (keyring.tenant, keyring.subject, keyring.min_version) == ("acme", None, 1)
    """

    dek_id: bytes
    tenant: str
    subject: str | None
    min_version: int
    created_at: float
    destroyed_at: float | None = None


@dataclass(frozen=True, slots=True)
class DekRecord:
    """One version of a keyring's DEK, wrapped under KEK ``kek_id``.

    Example::

        import flowtrace as ft
        from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider

        vault = KeyVault(LocalKeyProvider.generate("kek"), kek_id="kek")
        with ft.context(tenant="acme"):
            FieldEncryptor(vault).encrypt("x", field="note")
        record = vault.store.latest_version(vault.keyring("acme").dek_id)   # a DekRecord
        assert (record.version, record.kek_id) == (1, "kek")
    """

    dek_id: bytes
    version: int
    kek_id: str
    wrapped: bytes
    created_at: float


@runtime_checkable
class VaultStore(Protocol):
    """Persistence for the key vault. Implementations must be safe across threads.

    Writes that change what a key may do (new version, new minimum version, destruction)
    append to a change log with a strictly increasing sequence number, in the same
    transaction, so :meth:`changes_since` never skips a committed change.

    Example::

        from flowtrace.crypto import KeyVault, LocalKeyProvider, MemoryVaultStore, VaultStore

        store = MemoryVaultStore()                       # or SqliteVaultStore / PostgresVaultStore
        assert isinstance(store, VaultStore)             # the protocol your own store implements
        vault = KeyVault(LocalKeyProvider.generate("kek"), store, kek_id="kek")
    """

    def find_keyring(self, tenant: str, subject: str | None) -> KeyringRecord | None:
        """The live (not destroyed) keyring of this scope, if any."""
        ...

    def get_keyring(self, dek_id: bytes) -> KeyringRecord | None:
        """The keyring with this id, live or destroyed."""
        ...

    def create_keyring(self, keyring: KeyringRecord, first: DekRecord) -> KeyringRecord:
        """Insert a keyring with its first DEK; if the scope already has a live keyring
        (another process won the race), return that one instead."""
        ...

    def get_version(self, dek_id: bytes, version: int) -> DekRecord | None:
        """One DEK version (``None`` if absent or destroyed)."""
        ...

    def latest_version(self, dek_id: bytes) -> DekRecord | None:
        """The newest DEK version of a keyring."""
        ...

    def add_version(self, record: DekRecord) -> bool:
        """Insert a new DEK version; ``False`` if that version number already exists."""
        ...

    def set_min_version(self, dek_id: bytes, version: int) -> None:
        """Set the minimum decryption version of a keyring."""
        ...

    def all_versions(self) -> Iterator[DekRecord]:
        """Every stored (live) DEK version, for KEK rotation."""
        ...

    def replace_wrapped(self, dek_id: bytes, version: int, kek_id: str, wrapped: bytes) -> None:
        """Store a DEK version re-wrapped under another KEK (the DEK itself is unchanged)."""
        ...

    def destroy(
        self, tenant: str, subject: str | None, at: float
    ) -> list[tuple[KeyringRecord, list[int]]]:
        """Delete the wrapped DEKs of one subject's keyring (``subject`` given) or of every
        keyring of the tenant (``subject is None``); mark them destroyed. Returns what was
        destroyed: each keyring with the versions deleted."""
        ...

    def change_seq(self) -> int:
        """The newest change sequence number (0 when there is none)."""
        ...

    def changes_since(self, seq: int) -> tuple[int, list[bytes]]:
        """Keyring ids changed after sequence ``seq``, and the newest sequence number."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
