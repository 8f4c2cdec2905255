"""A PostgreSQL vault store (psycopg 3, the ``postgres`` extra, imported lazily)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ...errors import ConfigError, require_extra
from ._sql import SqlVaultStore

__all__ = ["PostgresVaultStore"]

_DDL = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.keyrings (
    dek_id BYTEA PRIMARY KEY, tenant TEXT NOT NULL, subject TEXT NOT NULL,
    min_version INTEGER NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    destroyed_at DOUBLE PRECISION);
CREATE UNIQUE INDEX IF NOT EXISTS keyrings_live ON {s}.keyrings (tenant, subject)
    WHERE destroyed_at IS NULL;
CREATE TABLE IF NOT EXISTS {s}.dek_versions (
    dek_id BYTEA NOT NULL, version INTEGER NOT NULL, kek_id TEXT NOT NULL,
    wrapped BYTEA NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (dek_id, version));
CREATE TABLE IF NOT EXISTS {s}.key_changes (
    seq BIGSERIAL PRIMARY KEY, dek_id BYTEA NOT NULL, kind TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL)
"""
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class PostgresVaultStore(SqlVaultStore):
    """A :class:`~flowtrace.crypto.VaultStore` in PostgreSQL tables under ``schema``.

    ``conninfo`` is a libpq connection string (``"host=127.0.0.1 dbname=app user=app"``).
    Writers take an exclusive lock on the change log inside their transaction, so change
    sequence numbers become visible in order and no process misses a shred.

    Example::

        from flowtrace.crypto import KeyVault, LocalKeyProvider, PostgresVaultStore

        store = PostgresVaultStore("postgresql://app@db/app", schema="flowtrace")
        vault = KeyVault(LocalKeyProvider.generate("kek"), store, kek_id="kek")
    """

    def __init__(self, conninfo: str, *, schema: str = "flowtrace") -> None:
        if not _SCHEMA.fullmatch(schema):
            raise ConfigError(f"schema name {schema!r} must match {_SCHEMA.pattern}")
        psycopg: Any = require_extra("psycopg", "postgres", "PostgresVaultStore")
        super().__init__(f"{schema}.")
        self._integrity_errors = (psycopg.IntegrityError,)
        self._schema = schema
        self._conn = psycopg.connect(conninfo, autocommit=True)
        with self._conn.transaction():
            # Serialize concurrent first-time setup of the same schema.
            self._conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (schema,))
            for statement in _DDL.format(s=schema).split(";"):
                if statement.strip():
                    self._conn.execute(statement)

    def __repr__(self) -> str:
        return f"PostgresVaultStore(schema={self._schema!r})"

    def _sql(self, statement: str) -> str:
        return statement.replace("{p}", self._p).replace("?", "%s")

    def _execute(self, statement: str, params: tuple[Any, ...] = ()) -> Any:
        return self._conn.execute(statement, params)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._conn.transaction():
            self._conn.execute(f"LOCK TABLE {self._schema}.key_changes IN EXCLUSIVE MODE")
            yield

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
