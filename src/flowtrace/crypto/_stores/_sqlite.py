"""A SQLite vault store: one file shared by every process on the machine."""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ...errors import ConfigError
from ._sql import SqlVaultStore

__all__ = ["SqliteVaultStore"]

_DDL = """
CREATE TABLE IF NOT EXISTS {p}keyrings (
    dek_id BLOB PRIMARY KEY, tenant TEXT NOT NULL, subject TEXT NOT NULL,
    min_version INTEGER NOT NULL, created_at REAL NOT NULL, destroyed_at REAL);
CREATE UNIQUE INDEX IF NOT EXISTS {p}keyrings_live ON {p}keyrings (tenant, subject)
    WHERE destroyed_at IS NULL;
CREATE TABLE IF NOT EXISTS {p}dek_versions (
    dek_id BLOB NOT NULL, version INTEGER NOT NULL, kek_id TEXT NOT NULL,
    wrapped BLOB NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (dek_id, version));
CREATE TABLE IF NOT EXISTS {p}key_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, dek_id BLOB NOT NULL, kind TEXT NOT NULL,
    at REAL NOT NULL);
"""
_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,40}")


class SqliteVaultStore(SqlVaultStore):
    """A :class:`~flowtrace.crypto.VaultStore` in a SQLite file (WAL mode).

    Every process opening the same file shares the keys and sees shreds through the
    change log. Tables are named ``<prefix>keyrings``, ``<prefix>dek_versions`` and
    ``<prefix>key_changes``.

    Example::

        from flowtrace.crypto import KeyVault, LocalKeyProvider, SqliteVaultStore

        store = SqliteVaultStore("keys.db")              # shared by every process on the host
        vault = KeyVault(LocalKeyProvider.generate("kek"), store, kek_id="kek")
        vault.close()
    """

    _integrity_errors = (sqlite3.IntegrityError,)

    def __init__(self, path: str | os.PathLike[str], *, prefix: str = "flowtrace_") -> None:
        if not _PREFIX.fullmatch(prefix):
            raise ConfigError(f"table prefix {prefix!r} must match {_PREFIX.pattern}")
        super().__init__(prefix)
        self._conn = sqlite3.connect(
            os.fspath(path), timeout=30, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        with self._transaction():
            for statement in _DDL.format(p=prefix).split(";"):
                if statement.strip():
                    self._conn.execute(statement)

    def __repr__(self) -> str:
        return f"SqliteVaultStore(prefix={self._p!r})"

    def _sql(self, statement: str) -> str:
        return statement.replace("{p}", self._p)

    def _execute(self, statement: str, params: tuple[Any, ...] = ()) -> Any:
        return self._conn.execute(statement, params)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
