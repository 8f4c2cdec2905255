"""PostgreSQL sink: INSERT-only tables (triggers reject UPDATE, DELETE and TRUNCATE).

Writers serialize on a transaction-scoped advisory lock derived from the table name, so
sequence numbers are assigned gap-free under concurrent writers (a SEQUENCE would leave
gaps on rollback). Needs the ``postgres`` extra (psycopg 3).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ...errors import AuditWriteError, ConfigError, require_extra
from ._sql import SqlSink

__all__ = ["PostgresSink"]

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,50}")


class PostgresSink(SqlSink):
    """Audit records in ``<table>`` and checkpoints in ``<table>_checkpoints``.

    Example::

        from flowtrace import audit

        sink = audit.PostgresSink("postgresql://app@db/app", table="audit_log")
        log = audit.AuditLog(sink, signing_key=audit.load_private_key("/run/secrets/audit.pem"))
    """

    durable = True
    _param = "%s"

    def __init__(self, dsn: str, *, table: str = "audit_log", connection: Any = None) -> None:
        if not _NAME.fullmatch(table):
            raise ConfigError(f"table name {table!r} must match {_NAME.pattern}")
        psycopg: Any = require_extra("psycopg", "postgres", "The PostgreSQL audit sink")
        self._errors = psycopg.Error
        self.table = table
        self._lock_key = int.from_bytes(
            hashlib.sha256(f"flowtrace.audit:{table}".encode()).digest()[:8], "big", signed=True
        )
        try:
            self._conn = connection or psycopg.connect(dsn, autocommit=True)
        except psycopg.Error as exc:
            raise AuditWriteError(f"cannot connect to PostgreSQL for the audit log: {exc}") from exc
        self._last = -1
        with self.lock():
            self._create()

    def _create(self) -> None:
        t = self.table
        statements = [
            f"CREATE TABLE IF NOT EXISTS {t} (seq bigint PRIMARY KEY, line bytea NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {t}_checkpoints "
            "(id bigserial PRIMARY KEY, line bytea NOT NULL)",
            "CREATE OR REPLACE FUNCTION flowtrace_audit_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'audit log % is append-only', TG_TABLE_NAME; END $$",
        ]
        for target in (t, f"{t}_checkpoints"):
            statements += [
                f"DROP TRIGGER IF EXISTS {target}_append_only ON {target}",
                f"CREATE TRIGGER {target}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
                f"ON {target} FOR EACH STATEMENT EXECUTE FUNCTION flowtrace_audit_append_only()",
            ]
        for sql in statements:
            self._conn.execute(sql)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """A transaction holding the table's advisory lock; committed on exit."""
        saved = self._last
        try:
            with self._conn.transaction():
                self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                yield
        except self._errors as exc:
            self._last = saved
            raise AuditWriteError(f"PostgreSQL audit write failed: {exc}") from exc
        except BaseException:
            self._last = saved
            raise

    def write(self, lines: list[bytes], checkpoint: bytes | None) -> None:
        """INSERT inside the current transaction."""
        with self._conn.cursor() as cur:
            self._insert(cur, lines, checkpoint)
        self._last += len(lines)

    def read_lines(self) -> Iterator[bytes]:
        """Every record line in sequence order (streamed with a server-side cursor)."""
        with self._conn.transaction(), self._conn.cursor(name="flowtrace_audit_read") as cur:
            cur.execute(f"SELECT line FROM {self.table} ORDER BY seq")
            for (line,) in cur:
                yield bytes(line)
