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

__all__ = ["SqliteSink"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def _as_bytes(value: bytes | str) -> bytes:
    # Lines are stored as BLOBs; a hand-edited row may come back as TEXT.
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value)


class SqliteSink:
    """Audit records in ``<table>`` and checkpoints in ``<table>_checkpoints``."""

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

    def sync(self) -> list[bytes]:
        """Rows other writers added since we last looked."""
        rows = self._conn.execute(
            f"SELECT seq, line FROM {self.table} WHERE seq > ? ORDER BY seq", (self._last,)
        ).fetchall()
        if rows:
            self._last = rows[-1][0]
        return [_as_bytes(line) for _, line in rows]

    def write(self, lines: list[bytes], checkpoint: bytes | None) -> None:
        """INSERT the records (and checkpoint) inside the current transaction."""
        first = self._last + 1
        try:
            self._conn.executemany(
                f"INSERT INTO {self.table} (seq, line) VALUES (?, ?)",
                [(first + i, line.rstrip(b"\n")) for i, line in enumerate(lines)],
            )
            if checkpoint is not None:
                self._conn.execute(
                    f"INSERT INTO {self.table}_checkpoints (line) VALUES (?)",
                    (checkpoint.rstrip(b"\n"),),
                )
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

    def read_checkpoints(self) -> list[bytes]:
        """Every checkpoint line, oldest first."""
        rows = self._conn.execute(
            f"SELECT line FROM {self.table}_checkpoints ORDER BY id"
        ).fetchall()
        return [_as_bytes(line) for (line,) in rows]

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
