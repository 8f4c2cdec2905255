"""The storage protocol every audit sink implements."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

__all__ = ["Sink"]


@runtime_checkable
class Sink(Protocol):
    """Append-only storage for record lines and checkpoint lines.

    The log calls :meth:`lock` around every write; inside it, :meth:`sync` returns the
    lines other writers (processes) appended since this sink last looked (the log checks
    them — chain and writer signatures — before chaining after them), then :meth:`write`
    appends new lines. Leaving the lock makes the write durable (according to the sink's
    durability mode) and releases other writers; leaving it with an exception must leave
    the sink's read position where it was, so the same lines are checked again.

    Example::

        from flowtrace.audit import AuditLog, JsonlSink, Sink, SqliteSink

        for sink in (JsonlSink("audit.jsonl"), SqliteSink("audit.db")):
            assert isinstance(sink, Sink)                # the protocol your own sink implements
            log = AuditLog(sink)
            log.append("report.export")
            log.close()
    """

    durable: bool
    """Whether leaving :meth:`lock` after :meth:`write` guarantees the records survive a crash."""

    def lock(self) -> AbstractContextManager[None]:
        """Exclusive access across threads and processes."""
        ...

    def sync(self) -> Iterable[bytes]:
        """Record lines appended by others since the last call (no newlines)."""
        ...

    def write(self, lines: list[bytes], checkpoint: bytes | None) -> None:
        """Append record lines (each ends in a newline) and optionally a checkpoint line."""
        ...

    def read_lines(self) -> Iterator[bytes]:
        """Every record line in sequence order (without newlines)."""
        ...

    def read_checkpoints(self) -> list[bytes]:
        """Every checkpoint line (without newlines), oldest first."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...
