"""Shared SQL logic for the SQLite and PostgreSQL vault stores.

Subclasses provide the connection, the DDL, the parameter style and a transaction scope.
Subjects are stored as ``''`` for tenant keyrings so the partial unique index on
``(tenant, subject) WHERE destroyed_at IS NULL`` covers both kinds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

from ._base import DekRecord, KeyringRecord

__all__ = ["SqlVaultStore"]

_KEYRING_COLUMNS = "dek_id, tenant, subject, min_version, created_at, destroyed_at"
_VERSION_COLUMNS = "dek_id, version, kek_id, wrapped, created_at"


def _keyring(row: Any) -> KeyringRecord:
    return KeyringRecord(bytes(row[0]), row[1], row[2] or None, int(row[3]), row[4], row[5])


def _version(row: Any) -> DekRecord:
    return DekRecord(bytes(row[0]), int(row[1]), row[2], bytes(row[3]), row[4])


class SqlVaultStore:
    """Vault store over a DB-API-like connection with ``conn.execute``."""

    _integrity_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, prefix: str) -> None:
        self._p = prefix
        self._lock = threading.RLock()

    # --- provided by the dialect ---------------------------------------------------------

    def _sql(self, statement: str) -> str:
        """Rewrite ``?`` placeholders and ``{p}`` table prefixes for this dialect."""
        raise NotImplementedError

    def _execute(self, statement: str, params: tuple[Any, ...] = ()) -> Any:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[None]:
        """A write transaction that serializes with other writers."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # --- the VaultStore protocol -----------------------------------------------------------

    def _one(self, statement: str, params: tuple[Any, ...]) -> Any:
        with self._lock:
            return self._execute(self._sql(statement), params).fetchone()

    def find_keyring(self, tenant: str, subject: str | None) -> KeyringRecord | None:
        row = self._one(
            f"SELECT {_KEYRING_COLUMNS} FROM {{p}}keyrings "
            "WHERE tenant = ? AND subject = ? AND destroyed_at IS NULL",
            (tenant, subject or ""),
        )
        return None if row is None else _keyring(row)

    def get_keyring(self, dek_id: bytes) -> KeyringRecord | None:
        row = self._one(f"SELECT {_KEYRING_COLUMNS} FROM {{p}}keyrings WHERE dek_id = ?", (dek_id,))
        return None if row is None else _keyring(row)

    def create_keyring(self, keyring: KeyringRecord, first: DekRecord) -> KeyringRecord:
        try:
            with self._lock, self._transaction():
                self._execute(
                    self._sql(
                        f"INSERT INTO {{p}}keyrings ({_KEYRING_COLUMNS}) "
                        "VALUES (?, ?, ?, ?, ?, NULL)"
                    ),
                    (
                        keyring.dek_id,
                        keyring.tenant,
                        keyring.subject or "",
                        keyring.min_version,
                        keyring.created_at,
                    ),
                )
                self._insert_version(first)
        except self._integrity_errors:
            existing = self.find_keyring(keyring.tenant, keyring.subject)
            if existing is None:
                raise
            return existing
        return keyring

    def _insert_version(self, record: DekRecord) -> None:
        self._execute(
            self._sql(f"INSERT INTO {{p}}dek_versions ({_VERSION_COLUMNS}) VALUES (?, ?, ?, ?, ?)"),
            (record.dek_id, record.version, record.kek_id, record.wrapped, record.created_at),
        )

    def _log(self, dek_id: bytes, kind: str, at: float) -> None:
        self._execute(
            self._sql("INSERT INTO {p}key_changes (dek_id, kind, at) VALUES (?, ?, ?)"),
            (dek_id, kind, at),
        )

    def get_version(self, dek_id: bytes, version: int) -> DekRecord | None:
        row = self._one(
            f"SELECT {_VERSION_COLUMNS} FROM {{p}}dek_versions WHERE dek_id = ? AND version = ?",
            (dek_id, version),
        )
        return None if row is None else _version(row)

    def latest_version(self, dek_id: bytes) -> DekRecord | None:
        row = self._one(
            f"SELECT {_VERSION_COLUMNS} FROM {{p}}dek_versions WHERE dek_id = ? "
            "ORDER BY version DESC LIMIT 1",
            (dek_id,),
        )
        return None if row is None else _version(row)

    def add_version(self, record: DekRecord) -> bool:
        try:
            with self._lock, self._transaction():
                self._insert_version(record)
                self._log(record.dek_id, "rotate", record.created_at)
        except self._integrity_errors:
            return False
        return True

    def set_min_version(self, dek_id: bytes, version: int) -> None:
        with self._lock, self._transaction():
            self._execute(
                self._sql("UPDATE {p}keyrings SET min_version = ? WHERE dek_id = ?"),
                (version, dek_id),
            )
            self._log(dek_id, "retire", time.time())

    def all_versions(self) -> Iterator[DekRecord]:
        with self._lock:
            rows = self._execute(
                self._sql(
                    f"SELECT {_VERSION_COLUMNS} FROM {{p}}dek_versions ORDER BY dek_id, version"
                )
            ).fetchall()
        return iter([_version(row) for row in rows])

    def replace_wrapped(self, dek_id: bytes, version: int, kek_id: str, wrapped: bytes) -> None:
        with self._lock, self._transaction():
            self._execute(
                self._sql(
                    "UPDATE {p}dek_versions SET kek_id = ?, wrapped = ? "
                    "WHERE dek_id = ? AND version = ?"
                ),
                (kek_id, wrapped, dek_id, version),
            )

    def destroy(
        self, tenant: str, subject: str | None, at: float
    ) -> list[tuple[KeyringRecord, list[int]]]:
        out: list[tuple[KeyringRecord, list[int]]] = []
        with self._lock, self._transaction():
            if subject is None:
                rows = self._execute(
                    self._sql(
                        f"SELECT {_KEYRING_COLUMNS} FROM {{p}}keyrings "
                        "WHERE tenant = ? AND destroyed_at IS NULL"
                    ),
                    (tenant,),
                ).fetchall()
            else:
                rows = self._execute(
                    self._sql(
                        f"SELECT {_KEYRING_COLUMNS} FROM {{p}}keyrings "
                        "WHERE tenant = ? AND subject = ? AND destroyed_at IS NULL"
                    ),
                    (tenant, subject),
                ).fetchall()
            for row in rows:
                keyring = _keyring(row)
                versions = [
                    int(v[0])
                    for v in self._execute(
                        self._sql(
                            "SELECT version FROM {p}dek_versions WHERE dek_id = ? ORDER BY version"
                        ),
                        (keyring.dek_id,),
                    ).fetchall()
                ]
                self._execute(
                    self._sql("DELETE FROM {p}dek_versions WHERE dek_id = ?"), (keyring.dek_id,)
                )
                self._execute(
                    self._sql("UPDATE {p}keyrings SET destroyed_at = ? WHERE dek_id = ?"),
                    (at, keyring.dek_id),
                )
                self._log(keyring.dek_id, "shred", at)
                out.append(
                    (
                        KeyringRecord(
                            keyring.dek_id,
                            keyring.tenant,
                            keyring.subject,
                            keyring.min_version,
                            keyring.created_at,
                            at,
                        ),
                        versions,
                    )
                )
        return out

    def change_seq(self) -> int:
        row = self._one("SELECT COALESCE(MAX(seq), 0) FROM {p}key_changes", ())
        return int(row[0])

    def changes_since(self, seq: int) -> tuple[int, list[bytes]]:
        with self._lock:
            rows = self._execute(
                self._sql("SELECT seq, dek_id FROM {p}key_changes WHERE seq > ? ORDER BY seq"),
                (seq,),
            ).fetchall()
        if not rows:
            return seq, []
        return int(rows[-1][0]), [bytes(row[1]) for row in rows]
