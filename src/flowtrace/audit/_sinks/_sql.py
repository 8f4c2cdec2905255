"""What the SQL sinks share: one table of records and one of checkpoints, read and
appended with the same statements (only the DB-API parameter style and the type a row's
``line`` comes back as differ)."""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = ["SqlSink"]


class SqlSink:
    """Base of :class:`SqliteSink` and :class:`PostgresSink` (not a sink on its own).

    A subclass sets ``_conn``, ``table`` and ``_last`` (the last sequence seen, ``-1``
    for none), names its parameter placeholder in ``_param`` and may override
    :meth:`_blob` to turn a stored ``line`` back into bytes.
    """

    _param: ClassVar[str]
    _conn: Any
    table: str
    _last: int

    @staticmethod
    def _blob(value: Any) -> bytes:
        return bytes(value)

    def sync(self) -> list[bytes]:
        """Rows other writers added since we last looked."""
        rows = self._conn.execute(
            f"SELECT seq, line FROM {self.table} WHERE seq > {self._param} ORDER BY seq",
            (self._last,),
        ).fetchall()
        if rows:
            self._last = rows[-1][0]
        blob = self._blob
        return [blob(line) for _, line in rows]

    def _insert(self, executor: Any, lines: list[bytes], checkpoint: bytes | None) -> None:
        """INSERT ``lines`` after ``_last`` (and ``checkpoint``) through ``executor`` (a
        connection or cursor); the caller advances ``_last`` once it succeeded."""
        first = self._last + 1
        p = self._param
        executor.executemany(
            f"INSERT INTO {self.table} (seq, line) VALUES ({p}, {p})",
            [(first + i, line.rstrip(b"\n")) for i, line in enumerate(lines)],
        )
        if checkpoint is not None:
            executor.execute(
                f"INSERT INTO {self.table}_checkpoints (line) VALUES ({p})",
                (checkpoint.rstrip(b"\n"),),
            )

    def read_checkpoints(self) -> list[bytes]:
        """Every checkpoint line, oldest first."""
        rows = self._conn.execute(
            f"SELECT line FROM {self.table}_checkpoints ORDER BY id"
        ).fetchall()
        blob = self._blob
        return [blob(line) for (line,) in rows]

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
