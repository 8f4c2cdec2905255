"""SQLite (WAL) sink: INSERT-only tables guarded by triggers, one writer at a time.

Every write runs in a ``BEGIN IMMEDIATE`` transaction, so concurrent writers (threads or
processes) serialize and the sequence stays gap-free; triggers abort any UPDATE or
DELETE of a record or checkpoint.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ...errors import AuditWriteError, ConfigError
from ._sql import SqlSink

__all__ = ["SqliteSink"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def _as_bytes(value: bytes | str) -> bytes:
    # Lines are stored as BLOBs; a hand-edited row may come back as TEXT.
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)


class SqliteSink(SqlSink):
    """Audit records in ``<table>`` and checkpoints in ``<table>_checkpoints``.

    Example::

        from flowtrace import audit

        log = audit.AuditLog(audit.SqliteSink("audit.db", table="audit_log"))
        log.append("report.export")
        log.close()
        audit.verify(audit.SqliteSink("audit.db"), public_key=None)
    """

    _param = "?"
    _blob = staticmethod(_as_bytes)

    def __init__(
        self, path: str | os.PathLike[str], *, table: str = "audit_log", fsync: bool = True
    ) -> None:
        if not _NAME.fullmatch(table):
            raise ConfigError(f"table name {table!r} must match {_NAME.pattern}")
        self.path = Path(path)
        self.table = table
        self.durable = fsync
        self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=60.0,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={'FULL' if fsync else 'OFF'}")
        self._last = -1
        with self.lock():
            self._create()

    def _create(self) -> None:
        t = self.table
        statements = [
            f"CREATE TABLE IF NOT EXISTS {t} (seq INTEGER PRIMARY KEY, line BLOB NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {t}_checkpoints "
            "(id INTEGER PRIMARY KEY AUTOINCREMENT, line BLOB NOT NULL)",
        ]
        for target in (t, f"{t}_checkpoints"):
            for op in ("UPDATE", "DELETE"):
                statements.append(
                    f"CREATE TRIGGER IF NOT EXISTS {target}_no_{op.lower()} BEFORE {op} ON "
                    f"{target} BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END"
                )
        for sql in statements:
            self._conn.execute(sql)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """An IMMEDIATE transaction: the database's write lock, committed on exit."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise AuditWriteError(f"cannot lock audit database {self.path}: {exc}") from exc
        saved = self._last
        try:
            yield
        except BaseException:
            self._last = saved
            self._conn.execute("ROLLBACK")
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._last = saved
            raise AuditWriteError(f"could not commit audit records: {exc}") from exc

    def write(self, lines: list[bytes], checkpoint: bytes | None) -> None:
        """INSERT the records (and checkpoint) inside the current transaction."""
        try:
            self._insert(self._conn, lines, checkpoint)
        except sqlite3.Error as exc:
            raise AuditWriteError(f"could not insert audit records: {exc}") from exc
        self._last += len(lines)

    def read_lines(self) -> Iterator[bytes]:
        """Every record line in sequence order."""
        conn = sqlite3.connect(self.path)
        try:
            for (line,) in conn.execute(f"SELECT line FROM {self.table} ORDER BY seq"):
                yield _as_bytes(line)
        finally:
            conn.close()
