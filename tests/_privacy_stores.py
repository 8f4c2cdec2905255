"""SQLite-backed subject stores shared by the privacy tests and their child processes."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


class SqliteRows:
    """Rows keyed by (tenant, subject) with an encrypted ``email``; every delete is logged
    in ``calls`` so tests can count how often a hook ran (across processes)."""

    restricted = ("email",)

    def __init__(self, path: Path, name: str, *, block: Path | None = None) -> None:
        self.path, self.name, self.block = path, name, block
        with self._db() as db:
            db.execute("CREATE TABLE IF NOT EXISTS rows (store, tenant, subject, email)")
            db.execute("CREATE TABLE IF NOT EXISTS calls (store, subject)")

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    def put(self, tenant: str, subject: str, email: str) -> None:
        with self._db() as db:
            db.execute("INSERT INTO rows VALUES (?, ?, ?, ?)", (self.name, tenant, subject, email))

    def fetch(self, subject: str, tenant: str) -> Sequence[Mapping[str, Any]]:
        with self._db() as db:
            rows = db.execute(
                "SELECT subject, email FROM rows WHERE store=? AND tenant=? AND subject=?",
                (self.name, tenant, subject),
            ).fetchall()
        return [{"subject": s, "email": e} for s, e in rows]

    def delete(self, subject: str, tenant: str) -> None:
        with self._db() as db:
            db.execute("INSERT INTO calls VALUES (?, ?)", (self.name, subject))
        if self.block is not None:
            self.block.write_text("entered")
            time.sleep(120)  # the test kills the process here
        with self._db() as db:
            db.execute(
                "DELETE FROM rows WHERE store=? AND tenant=? AND subject=?",
                (self.name, tenant, subject),
            )

    def calls(self) -> int:
        with self._db() as db:
            query = "SELECT count(*) FROM calls WHERE store=?"
            (count,) = db.execute(query, (self.name,)).fetchone()
        return int(count)


class EventLog:
    """An append-only event log that only holds ciphertext: erasure cannot delete from it."""

    restricted = ("email",)

    def __init__(self, name: str = "sqlite/events") -> None:
        self.name = name
        self.events: list[dict[str, Any]] = []

    def fetch(self, subject: str, tenant: str) -> Sequence[Mapping[str, Any]]:
        return [e for e in self.events if (e["tenant"], e["subject"]) == (tenant, subject)]

    def delete(self, subject: str, tenant: str) -> None:
        raise NotImplementedError("append-only: the shred makes it unreadable")
