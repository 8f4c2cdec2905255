"""JSON-lines file sink: one record per line, checkpoints in ``<path>.checkpoints``.

Several processes may append to one file: every write happens under an exclusive
``flock`` on the log file, after reading what the other processes appended, so the
chain stays one chain. Durability: ``fsync`` makes every write reach the disk before
the lock is released; ``none`` leaves it in the OS page cache (survives a process
crash, not a power cut).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from ...errors import AuditCorruptedError, AuditWriteError, ForgedRecordError
from .._lines import CHUNK, DEFAULT_MAX_LINE, LineReader, check_max_line, iter_lines

__all__ = ["CHECKPOINT_SUFFIX", "JsonlSink", "checkpoint_path"]

CHECKPOINT_SUFFIX: Final = ".checkpoints"


def checkpoint_path(path: str | os.PathLike[str]) -> Path:
    """Where the checkpoints of the log at ``path`` live."""
    return Path(os.fspath(path) + CHECKPOINT_SUFFIX)


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class JsonlSink:
    """Append-only JSON-lines file with a sidecar checkpoint file.

    Example::

        from flowtrace.audit import AuditLog, JsonlSink

        log = AuditLog(JsonlSink("audit.jsonl", fsync=True))   # same as AuditLog("audit.jsonl")
        log.append("report.export")
        log.close()
    """

    def __init__(
        self, path: str | os.PathLike[str], *, fsync: bool = True,
        max_line_bytes: int = DEFAULT_MAX_LINE,
    ) -> None:
        import fcntl  # POSIX only; imported here so the module imports everywhere

        self.max_line_bytes = check_max_line(max_line_bytes)
        self._fcntl = fcntl
        self.path = Path(path)
        self.checkpoint_path = checkpoint_path(path)
        self.durable = fsync
        created = not self.path.exists()
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640)
            self._cp_fd = os.open(
                self.checkpoint_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o640
            )
        except OSError as exc:
            raise AuditWriteError(f"cannot open audit log {self.path}: {exc}") from exc
        if created and fsync:
            self._fsync_dir()
        self._pos = 0

    def _fsync_dir(self) -> None:
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """``flock`` the log file exclusively; a failed write leaves the read position as it was."""
        self._fcntl.flock(self._fd, self._fcntl.LOCK_EX)
        saved = self._pos
        try:
            yield
        except BaseException:
            self._pos = saved
            raise
        finally:
            self._fcntl.flock(self._fd, self._fcntl.LOCK_UN)

    def sync(self) -> Iterator[bytes]:
        """Lines appended since we last looked, read in bounded chunks.

        A torn tail raises :class:`AuditCorruptedError` before any line is returned.
        """
        size = os.fstat(self._fd).st_size
        if size == self._pos:
            return iter(())
        if size < self._pos:
            raise AuditCorruptedError(
                f"audit log {self.path} shrank from {self._pos} to {size} bytes while open: "
                "it was truncated; verify it with `flowtrace audit verify`"
            )
        if os.pread(self._fd, 1, size - 1) != b"\n":
            raise AuditCorruptedError(
                f"audit log {self.path} ends in a torn line (a writer crashed mid-write); "
                f"run `flowtrace audit recover {self.path}` before writing to it again"
            )
        return self._read(size)

    def _read(self, size: int) -> Iterator[bytes]:
        # Linear time, at most max_line_bytes of one line held: a huge line written by
        # someone else cannot stall or exhaust a writer that holds the lock.
        position = self._pos
        reader = LineReader(self.max_line_bytes, position)
        while position < size:
            chunk = os.pread(self._fd, min(CHUNK, size - position), position)
            if not chunk:  # pragma: no cover - the file shrank under the lock
                raise AuditCorruptedError(f"audit log {self.path} shrank while being read")
            position += len(chunk)
            yield from reader.feed(chunk)
        self._pos = size

    def write(self, lines: list[bytes], checkpoint: bytes | None) -> None:
        """Append under the lock; fsync both files in ``fsync`` mode."""
        data = b"".join(lines)
        try:
            _write_all(self._fd, data)
            if data and os.fstat(self._fd).st_size != self._pos + len(data):
                # Someone wrote without taking the lock: our lines did not land where the
                # chain we checked ends. Stop; the next verify names the damage.
                raise ForgedRecordError(
                    f"audit log {self.path} was appended to by someone not holding the lock "
                    "while this writer wrote; run `flowtrace audit verify`"
                )
            self._pos += len(data)
            if self.durable:
                os.fdatasync(self._fd)
            if checkpoint is not None:
                _write_all(self._cp_fd, checkpoint)
                if self.durable:
                    os.fdatasync(self._cp_fd)
        except OSError as exc:
            raise AuditWriteError(
                f"could not write {len(lines)} audit record(s) to {self.path}: {exc}"
            ) from exc

    def read_lines(self) -> Iterator[bytes]:
        """Every complete record line (bounded by ``max_line_bytes``)."""
        for _, line in iter_lines(_chunks(self.path), self.max_line_bytes):
            yield line

    def read_checkpoints(self) -> list[bytes]:
        """Every complete checkpoint line."""
        return [
            line
            for _, line in iter_lines(_chunks(self.checkpoint_path), self.max_line_bytes)
            if line
        ]

    def close(self) -> None:
        """Close both files."""
        for fd in (self._fd, self._cp_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
