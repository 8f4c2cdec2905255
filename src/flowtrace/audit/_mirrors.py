"""Checkpoint mirrors: copies of every signed checkpoint, kept where the log's operators
cannot write, so rolling back the log *and* its own checkpoints together is caught.

A writer given ``checkpoint_mirrors=[...]`` adds each checkpoint line to every mirror after
the log's own store; :func:`~flowtrace.audit.verify` takes the same mirrors as
``anchors=[...]`` and fails when the log is shorter than, or differs from, any of them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..errors import AuditWriteError
from ._lines import CHUNK, DEFAULT_MAX_LINE, iter_lines

__all__ = ["CheckpointFile", "CheckpointStore"]


@runtime_checkable
class CheckpointStore(Protocol):
    """Append-only storage for checkpoint lines held apart from the log.

    Example::

        from flowtrace import audit

        assert isinstance(audit.CheckpointFile("mirror.checkpoints"), audit.CheckpointStore)
    """

    def add(self, line: bytes) -> None:
        """Durably append one checkpoint line (ends in a newline)."""
        ...

    def read_checkpoints(self) -> list[bytes]:
        """Every checkpoint line (without newlines), oldest first."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...


class CheckpointFile:
    """Checkpoint lines appended (and fsynced) to a file, e.g. on another volume or mount
    that only the writer's service account can append to.

    Example::

        from flowtrace import audit

        key = audit.generate_key()
        mirror = audit.CheckpointFile("mirror.checkpoints")
        log = audit.AuditLog("audit.jsonl", signing_key=key, checkpoint_mirrors=[mirror])
        log.append("report.export")
        log.close()
        # a log rolled back together with its own checkpoints still fails against the mirror
        audit.verify("audit.jsonl", public_key=key.public_key(),
                     anchors=[audit.CheckpointFile("mirror.checkpoints")])
    """

    def __init__(self, path: str | os.PathLike[str], *, max_line_bytes: int = DEFAULT_MAX_LINE):
        self.path = Path(path)
        self._max = max_line_bytes
        self._fd: int | None = None

    def add(self, line: bytes) -> None:
        """Append under an exclusive ``flock`` and fsync."""
        import fcntl

        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(self._fd, view) :]
                os.fdatasync(self._fd)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        except OSError as exc:
            raise AuditWriteError(
                f"could not mirror a checkpoint to {self.path}: {exc}"
            ) from exc

    def read_checkpoints(self) -> list[bytes]:
        """Every complete checkpoint line."""
        def chunks() -> Iterator[bytes]:
            with open(self.path, "rb") as f:
                while chunk := f.read(CHUNK):
                    yield chunk

        return [line for _, line in iter_lines(chunks(), self._max)]

    def close(self) -> None:
        """Close the file."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def __repr__(self) -> str:
        return f"CheckpointFile({str(self.path)!r})"
