"""PostgreSQL sink: INSERT-only tables (triggers reject UPDATE, DELETE and TRUNCATE).

Schema set-up and appending are separate privileges: an owner runs :func:`init_db` (or
``flowtrace audit init-db``) once, which creates the tables, the append-only triggers and
grants a writer role ``INSERT, SELECT``; the sink itself never issues DDL, so it runs
under that least-privileged role. Writers serialize on a transaction-scoped advisory lock
derived from the table name, so sequence numbers are assigned gap-free under concurrent
writers (a SEQUENCE would leave gaps on rollback). Needs the ``postgres`` extra
(psycopg 3).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ...errors import AuditWriteError, ConfigError, require_extra
from ._sql import SqlSink

__all__ = ["PostgresCheckpoints", "PostgresSink", "init_db"]

_NAME = re.compile(r"(?:[a-z_][a-z0-9_]{0,50}\.)?[a-z_][a-z0-9_]{0,50}")
_ROLE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _check_name(table: str) -> str:
    if not _NAME.fullmatch(table):
        raise ConfigError(f"table name {table!r} must match {_NAME.pattern} (schema.table)")
    return table


def _connect(dsn: str, connection: Any) -> tuple[Any, Any]:
    psycopg: Any = require_extra("psycopg", "postgres", "The PostgreSQL audit sink")
    try:
        return psycopg, connection or psycopg.connect(dsn, autocommit=True)
    except psycopg.Error as exc:
        raise AuditWriteError(f"cannot connect to PostgreSQL for the audit log: {exc}") from exc


def _lock_key(table: str) -> int:
    digest = hashlib.sha256(f"flowtrace.audit:{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def init_db(
    dsn: str, *, table: str = "audit_log", grant: str | None = None, connection: Any = None
) -> None:
    """Create ``<table>`` and ``<table>_checkpoints`` with append-only triggers (idempotent).

    Run it once as the role that should own the schema; ``grant`` names the role writers
    connect as, which gets ``INSERT, SELECT`` on both tables and nothing else (no UPDATE,
    DELETE, TRUNCATE, DDL). A table owner can still disable the triggers; what they then
    change is caught by :func:`~flowtrace.audit.verify` (writer signatures, checkpoints,
    and mirrors kept where they cannot write).

    Example::

        from flowtrace import audit

        # once, as the owner; the application then connects as app_writer
        audit.init_db("postgresql://owner@db/app", table="audit_log", grant="app_writer")
    """
    _check_name(table)
    if grant is not None and not _ROLE.fullmatch(grant):
        raise ConfigError(f"role name {grant!r} must match {_ROLE.pattern}")
    psycopg, conn = _connect(dsn, connection)
    schema = table.rpartition(".")[0]
    function = f"{schema}.flowtrace_audit_append_only" if schema else "flowtrace_audit_append_only"
    statements = [
        f"CREATE TABLE IF NOT EXISTS {table} (seq bigint PRIMARY KEY, line bytea NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {table}_checkpoints "
        "(id bigserial PRIMARY KEY, line bytea NOT NULL)",
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION 'audit log % is append-only', TG_TABLE_NAME; END $$",
    ]
    for target in (table, f"{table}_checkpoints"):
        trigger = target.rpartition(".")[2] + "_append_only"
        statements += [
            f"DROP TRIGGER IF EXISTS {trigger} ON {target}",
            f"CREATE TRIGGER {trigger} BEFORE UPDATE OR DELETE OR TRUNCATE "
            f"ON {target} FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        ]
    if grant is not None:
        if schema:
            statements.append(f"GRANT USAGE ON SCHEMA {schema} TO {grant}")
        statements += [
            f"GRANT INSERT, SELECT ON {table}, {table}_checkpoints TO {grant}",
            f"GRANT USAGE ON SEQUENCE {table}_checkpoints_id_seq TO {grant}",
        ]
    try:
        with conn.transaction():
            # Two owners initialising at once would race on CREATE OR REPLACE FUNCTION.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(table),))
            for sql in statements:
                conn.execute(sql)
    except psycopg.Error as exc:
        raise AuditWriteError(f"could not set up the audit tables {table}: {exc}") from exc
    finally:
        if connection is None:
            conn.close()


def _require_tables(
    conn: Any, table: str, names: tuple[str, ...], errors: Any, owned: bool
) -> None:
    try:
        _check_tables(conn, table, names, errors)
    except ConfigError:
        if owned:  # we opened it: do not leak it
            conn.close()
        raise


def _check_tables(conn: Any, table: str, names: tuple[str, ...], errors: Any) -> None:
    for name in names:
        try:
            row = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()
        except errors as exc:  # e.g. no USAGE on the schema
            row, problem = None, f"cannot be read by this role ({exc})"
        else:
            problem = "does not exist"
        if row is None or row[0] is None:
            raise ConfigError(
                f"audit table {name} {problem}: have its owner run "
                f"`flowtrace audit init-db DSN --table {table} --grant WRITER_ROLE` once "
                "(or flowtrace.audit.init_db)"
            )


class PostgresSink(SqlSink):
    """Audit records in ``<table>`` and checkpoints in ``<table>_checkpoints``.

    The tables must exist (:func:`init_db`); the connecting role needs only
    ``INSERT, SELECT`` on them.

    Example::

        from flowtrace import audit

        sink = audit.PostgresSink("postgresql://app@db/app", table="audit_log")
        log = audit.AuditLog(sink, signing_key=audit.load_private_key("/run/secrets/audit.pem"))
    """

    durable = True
    _param = "%s"

    def __init__(self, dsn: str, *, table: str = "audit_log", connection: Any = None) -> None:
        self.table = _check_name(table)
        psycopg, self._conn = _connect(dsn, connection)
        self._errors = psycopg.Error
        self._lock_key = _lock_key(table)
        self._last = -1
        _require_tables(self._conn, table, (table, f"{table}_checkpoints"), psycopg.Error,
                        connection is None)

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


class PostgresCheckpoints:
    """A checkpoint mirror in ``<table>_checkpoints`` of another database or schema (set
    up with :func:`init_db`), for ``AuditLog(checkpoint_mirrors=[...])`` and
    ``verify(anchors=[...])``. Keep it where the log's table owner has no write access.

    Example::

        from flowtrace import audit

        mirror = audit.PostgresCheckpoints("postgresql://auditor@vault-db/audit", table="mirror")
        log = audit.AuditLog(audit.PostgresSink("postgresql://app@db/app"),
                             signing_key=audit.load_private_key("/run/secrets/audit.pem"),
                             checkpoint_mirrors=[mirror])
    """

    def __init__(self, dsn: str, *, table: str = "audit_log", connection: Any = None) -> None:
        self.table = _check_name(table)
        psycopg, self._conn = _connect(dsn, connection)
        self._errors = psycopg.Error
        _require_tables(self._conn, table, (f"{table}_checkpoints",), psycopg.Error,
                        connection is None)

    def add(self, line: bytes) -> None:
        """INSERT one checkpoint line (committed at once)."""
        try:
            self._conn.execute(
                f"INSERT INTO {self.table}_checkpoints (line) VALUES (%s)", (line.rstrip(b"\n"),)
            )
        except self._errors as exc:
            raise AuditWriteError(
                f"could not mirror a checkpoint to {self.table}_checkpoints: {exc}"
            ) from exc

    def read_checkpoints(self) -> list[bytes]:
        """Every checkpoint line, oldest first."""
        rows = self._conn.execute(
            f"SELECT line FROM {self.table}_checkpoints ORDER BY id"
        ).fetchall()
        return [bytes(line) for (line,) in rows]

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
