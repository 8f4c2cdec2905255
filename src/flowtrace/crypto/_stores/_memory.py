"""An in-memory vault store, for tests and single-process development."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator

from ._base import DekRecord, KeyringRecord

__all__ = ["MemoryVaultStore"]


class MemoryVaultStore:
    """A :class:`~flowtrace.crypto.VaultStore` in this process's memory (lost on exit).

    Example::

        from flowtrace.crypto import KeyVault, LocalKeyProvider, MemoryVaultStore

        vault = KeyVault(LocalKeyProvider.generate("kek"), MemoryVaultStore(), kek_id="kek")
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._keyrings: dict[bytes, KeyringRecord] = {}
        self._live: dict[tuple[str, str | None], bytes] = {}
        self._versions: dict[bytes, dict[int, DekRecord]] = {}
        self._changes: list[bytes] = []

    def find_keyring(self, tenant: str, subject: str | None) -> KeyringRecord | None:
        with self._lock:
            dek_id = self._live.get((tenant, subject))
            return None if dek_id is None else self._keyrings[dek_id]

    def get_keyring(self, dek_id: bytes) -> KeyringRecord | None:
        with self._lock:
            return self._keyrings.get(dek_id)

    def create_keyring(self, keyring: KeyringRecord, first: DekRecord) -> KeyringRecord:
        with self._lock:
            existing = self.find_keyring(keyring.tenant, keyring.subject)
            if existing is not None:
                return existing
            if keyring.dek_id in self._keyrings:
                raise ValueError("DEK id collision")
            self._keyrings[keyring.dek_id] = keyring
            self._live[(keyring.tenant, keyring.subject)] = keyring.dek_id
            self._versions[keyring.dek_id] = {first.version: first}
            return keyring

    def get_version(self, dek_id: bytes, version: int) -> DekRecord | None:
        with self._lock:
            return self._versions.get(dek_id, {}).get(version)

    def latest_version(self, dek_id: bytes) -> DekRecord | None:
        with self._lock:
            versions = self._versions.get(dek_id)
            return versions[max(versions)] if versions else None

    def add_version(self, record: DekRecord) -> bool:
        with self._lock:
            versions = self._versions.setdefault(record.dek_id, {})
            if record.version in versions:
                return False
            versions[record.version] = record
            self._changes.append(record.dek_id)
            return True

    def set_min_version(self, dek_id: bytes, version: int) -> None:
        with self._lock:
            keyring = self._keyrings[dek_id]
            self._keyrings[dek_id] = dataclasses.replace(keyring, min_version=version)
            self._changes.append(dek_id)

    def all_versions(self) -> Iterator[DekRecord]:
        with self._lock:
            records = [r for versions in self._versions.values() for r in versions.values()]
        return iter(records)

    def replace_wrapped(self, dek_id: bytes, version: int, kek_id: str, wrapped: bytes) -> None:
        with self._lock:
            old = self._versions[dek_id][version]
            self._versions[dek_id][version] = dataclasses.replace(
                old, kek_id=kek_id, wrapped=wrapped
            )

    def destroy(
        self, tenant: str, subject: str | None, at: float
    ) -> list[tuple[KeyringRecord, list[int]]]:
        with self._lock:
            scopes = [
                key
                for key in self._live
                if key[0] == tenant and (subject is None or key[1] == subject)
            ]
            out = []
            for scope in scopes:
                dek_id = self._live.pop(scope)
                keyring = dataclasses.replace(self._keyrings[dek_id], destroyed_at=at)
                self._keyrings[dek_id] = keyring
                versions = sorted(self._versions.pop(dek_id, {}))
                self._changes.append(dek_id)
                out.append((keyring, versions))
            return out

    def change_seq(self) -> int:
        with self._lock:
            return len(self._changes)

    def changes_since(self, seq: int) -> tuple[int, list[bytes]]:
        with self._lock:
            return len(self._changes), self._changes[seq:]

    def close(self) -> None:
        """Nothing to release."""
