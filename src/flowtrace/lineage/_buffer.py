"""The durable lineage buffer: append locally, ship at least once, never block the app.

Layout of the buffer directory (docs/spec/lineage.md, "Buffer file format")::

    edges-0000000001.jsonl   one LineageEdge JSON object per line (UTF-8, "\\n"-terminated)
    edges-0000000002.jsonl   a new segment starts when the current one passes segment_bytes
    ack                      {"segment": N, "offset": BYTES}: everything before it was shipped
    lock                     flock()ed by the one LineageBuffer writing this directory
    quarantine.jsonl         lines that could not be parsed (kept, counted, never shipped)

``append`` writes each edge with one ``os.write`` (it survives a process crash at once) and
``fsync``s at most every ``fsync_interval`` seconds (an OS crash loses at most that much).
Shipping reads complete lines after ``ack``, exports them as spans through any OTel
``SpanExporter``, and moves ``ack`` (atomic rename + fsync) only after the exporter
reports success, so delivery is at-least-once; edges keep their ids, so receivers drop
duplicates by ``flowtrace.lineage.id``.

Bounded: when un-shipped data reaches ``max_bytes`` the overflow policy applies —
``"drop"`` (default; the edge is not written, ``stats().dropped`` counts it and a warning
is logged) or ``"raise"`` (:class:`~flowtrace.errors.LineageBufferFullError`). ``append``
never waits for the exporter.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from ..errors import ConfigError, LineageBufferError, LineageBufferFullError, LineageError
from ._edge import LineageEdge

__all__ = ["BufferStats", "LineageBuffer", "read_buffer"]

logger = logging.getLogger("flowtrace.lineage")

_PREFIX: Final = "edges-"
_SUFFIX: Final = ".jsonl"
Overflow = Literal["drop", "raise"]


def _segment_name(n: int) -> str:
    return f"{_PREFIX}{n:010d}{_SUFFIX}"


def _segments(directory: Path) -> list[int]:
    out = []
    for path in directory.glob(f"{_PREFIX}*{_SUFFIX}"):
        digits = path.name[len(_PREFIX) : -len(_SUFFIX)]
        if digits.isdigit():
            out.append(int(digits))
    return sorted(out)


@dataclass(frozen=True)
class BufferStats:
    """Counters since the buffer was opened (``pending`` includes edges found on disk).

    Example::

        from flowtrace import lineage

        buffer = lineage.LineageBuffer("lineage")        # no exporter: edges stay on disk
        buffer.append(lineage.LineageEdge(id="e-1", name="copy", inputs=("a",), outputs=("b",)))
        stats = buffer.stats()
        assert (stats.appended, stats.pending, stats.dropped) == (1, 1, 0)
        buffer.close()
    """

    appended: int
    shipped: int
    dropped: int
    pending: int
    pending_bytes: int
    export_failures: int
    torn: int
    quarantined: int


class LineageBuffer:
    """A directory of JSON-lines segments with an acknowledged-position file.

    ``exporter``: an OTel ``SpanExporter`` that ships edges (``None``: keep them locally).
    Call :meth:`ship` to ship synchronously, or :meth:`start` for a background thread.
    ``keep_shipped=True`` keeps shipped segments (a local lineage store for the CLI).

    Example::

        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        import flowtrace as ft
        from flowtrace import lineage

        buffer = lineage.LineageBuffer("lineage", exporter=ConsoleSpanExporter(), overflow="drop")
        buffer.start()                                   # background shipping + periodic fsync
        ft.configure(lineage=lineage.LineageConfig(buffer=buffer))
        with ft.context(tenant="acme"):
            lineage.record("copy", inputs="a.csv", outputs="b.csv")
        buffer.close()                                   # stop, fsync, ship what is left
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        exporter: Any = None,
        max_bytes: int = 256 * 1024 * 1024,
        overflow: Overflow = "drop",
        segment_bytes: int = 16 * 1024 * 1024,
        fsync_interval: float = 1.0,
        batch_size: int = 512,
        keep_shipped: bool = False,
    ) -> None:
        if overflow not in ("drop", "raise"):
            raise ConfigError(
                f"lineage buffer overflow must be 'drop' or 'raise', not {overflow!r}"
            )
        for name, value in (
            ("max_bytes", max_bytes),
            ("segment_bytes", segment_bytes),
            ("batch_size", batch_size),
        ):
            if type(value) is not int or value <= 0:
                raise ConfigError(f"lineage buffer {name} must be a positive int, got {value!r}")
        if fsync_interval < 0:
            raise ConfigError("lineage buffer fsync_interval must be >= 0 seconds")
        self.path = Path(path)
        self.exporter = exporter
        self.max_bytes = max_bytes
        self.overflow: Overflow = overflow
        self.segment_bytes = segment_bytes
        self.fsync_interval = fsync_interval
        self.batch_size = batch_size
        self.keep_shipped = keep_shipped
        self._lock = threading.Lock()  # appends
        self._ship_lock = threading.Lock()  # one shipper at a time
        self._appended = self._shipped = self._dropped = self._failures = 0
        self._torn = self._quarantined = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._closed = False
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock_fd = self._take_lock()
            try:
                self._open()
            except BaseException:
                os.close(self._lock_fd)
                raise
        except OSError as exc:
            raise LineageBufferError(f"cannot open lineage buffer at {self.path}: {exc}") from exc

    def _take_lock(self) -> int:
        """One writer per directory: a second LineageBuffer on it (any process) is refused."""
        fd = os.open(self.path / "lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no advisory locking
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise LineageBufferError(
                f"lineage buffer {self.path} is already open in another LineageBuffer (this or "
                "another process); give each process its own buffer directory"
            ) from None
        return fd

    # --- opening and recovery -------------------------------------------------------------

    def _read_ack(self) -> tuple[int, int]:
        ack = self.path / "ack"
        if not ack.exists():
            return 0, 0
        try:
            data = json.loads(ack.read_text())
            return int(data["segment"]), int(data["offset"])
        except (ValueError, KeyError, TypeError) as exc:
            raise LineageBufferError(
                f"lineage buffer ack file {ack} is corrupted ({exc}); it is written atomically, "
                "so this means outside damage: inspect it, or delete it to re-ship everything "
                "(receivers drop duplicates by id)"
            ) from exc

    def _open(self) -> None:
        segments = _segments(self.path)
        self._ack = self._read_ack()
        if segments:
            last = self.path / _segment_name(segments[-1])
            self._repair_tail(last)
            self._segment = segments[-1]
        else:
            self._segment = max(1, self._ack[0])
        self._fd = os.open(
            self.path / _segment_name(self._segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )
        self._size = os.fstat(self._fd).st_size
        self._pending = 0
        self._pending_bytes = 0
        for n in segments:
            if n < self._ack[0]:
                continue
            start = self._ack[1] if n == self._ack[0] else 0
            with open(self.path / _segment_name(n), "rb") as f:
                f.seek(start)
                data = f.read()
            self._pending += data.count(b"\n")
            self._pending_bytes += len(data)
        self._last_fsync = time.monotonic()
        self._dirty = False

    def _repair_tail(self, segment: Path) -> None:
        """Cut a torn last line (a crash mid-write): it was never acknowledged as written."""
        size = segment.stat().st_size
        if not size:
            return
        with open(segment, "rb+") as f:
            f.seek(max(0, size - 65536))
            tail = f.read()
            if tail.endswith(b"\n"):
                return
            cut = tail.rfind(b"\n")
            keep = size - len(tail) + cut + 1 if cut >= 0 else max(0, size - len(tail))
            if cut < 0 and size > len(tail):
                raise LineageBufferError(
                    f"lineage buffer segment {segment} ends with a line over 64 KiB "
                    "without a newline; it is not a flowtrace buffer segment"
                )
            f.truncate(keep)
            os.fsync(f.fileno())
        self._torn += 1
        logger.warning("lineage buffer %s: cut a torn last line left by a crash", segment)

    # --- appending ------------------------------------------------------------------------

    def append(self, edge: LineageEdge) -> bool:
        """Write ``edge`` durably (see the module docs). Returns False if it was dropped."""
        line = (edge.to_json() + "\n").encode()
        with self._lock:
            if self._closed:
                raise LineageBufferError("the lineage buffer is closed; edges cannot be appended")
            if self._pending_bytes + len(line) > self.max_bytes:
                self._dropped += 1
                if self.overflow == "raise":
                    raise LineageBufferFullError(
                        f"lineage buffer {self.path} holds {self._pending_bytes} un-shipped bytes "
                        f"(max_bytes={self.max_bytes}); the exporter is not keeping up"
                    )
                if self._dropped == 1 or self._dropped % 1000 == 0:
                    logger.warning(
                        "lineage buffer %s is full (%d bytes un-shipped); %d edge(s) dropped",
                        self.path,
                        self._pending_bytes,
                        self._dropped,
                    )
                return False
            if self._size and self._size + len(line) > self.segment_bytes:
                self._roll()
            try:
                os.write(self._fd, line)
            except OSError as exc:
                raise LineageBufferError(
                    f"cannot write to lineage buffer {self.path}: {exc}"
                ) from exc
            self._size += len(line)
            self._appended += 1
            self._pending += 1
            self._pending_bytes += len(line)
            self._dirty = True
            if self._thread is None and time.monotonic() - self._last_fsync >= self.fsync_interval:
                self._fsync_locked()
        if self._thread is not None and self._pending >= self.batch_size:
            self._wake.set()
        return True

    def _roll(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)
        self._segment += 1
        self._fd = os.open(
            self.path / _segment_name(self._segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )
        self._size = 0
        self._fsync_dir()

    def _fsync_dir(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _fsync_locked(self) -> None:
        if self._dirty:
            os.fsync(self._fd)
            self._dirty = False
        self._last_fsync = time.monotonic()

    def sync(self) -> None:
        """fsync now (``append`` does it at most every ``fsync_interval`` seconds)."""
        with self._lock:
            if not self._closed:
                self._fsync_locked()

    # --- shipping -------------------------------------------------------------------------

    def _batches(self) -> Iterator[tuple[list[LineageEdge], tuple[int, int], int, int]]:
        """Yield (edges, ack position after them, lines, bytes) from the ack position on."""
        seg, offset = self._ack
        for n in _segments(self.path):
            if n < seg:
                continue
            start = offset if n == seg else 0
            with open(self.path / _segment_name(n), "rb") as f:
                f.seek(start)
                data = f.read()
            end = data.rfind(b"\n") + 1  # complete lines only
            pos = begin = 0
            edges: list[LineageEdge] = []
            lines = 0
            while pos < end:
                nl = data.index(b"\n", pos)
                raw = data[pos:nl]
                pos = nl + 1
                lines += 1
                try:
                    edges.append(LineageEdge.from_json(raw))
                except LineageError:
                    self._quarantine(raw)
                if len(edges) >= self.batch_size:
                    yield edges, (n, start + pos), lines, pos - begin
                    edges, lines, begin = [], 0, pos
            if edges or lines:
                yield edges, (n, start + pos), lines, pos - begin

    def _quarantine(self, raw: bytes) -> None:
        with open(self.path / "quarantine.jsonl", "ab") as f:
            f.write(raw + b"\n")
        self._quarantined += 1
        logger.error("lineage buffer %s: quarantined an unparseable line", self.path)

    def _write_ack(self, ack: tuple[int, int]) -> None:
        tmp = self.path / "ack.tmp"
        with open(tmp, "w") as f:
            json.dump({"segment": ack[0], "offset": ack[1]}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path / "ack")
        self._fsync_dir()
        self._ack = ack
        if not self.keep_shipped:
            for n in _segments(self.path):
                if n < ack[0]:
                    (self.path / _segment_name(n)).unlink(missing_ok=True)

    def ship(self) -> int:
        """Ship every complete un-shipped edge now; returns how many were delivered.

        Stops at the first batch the exporter refuses (it stays pending for the next call).
        Without an exporter nothing is shipped.
        """
        if self.exporter is None:
            return 0
        from opentelemetry.sdk.trace.export import SpanExportResult

        from ._export import edge_to_span

        delivered = 0
        with self._ship_lock:
            self.sync()
            for edges, ack, lines, nbytes in self._batches():
                if edges:
                    try:
                        result = self.exporter.export([edge_to_span(e) for e in edges])
                    except Exception:
                        logger.exception("lineage exporter raised; edges stay buffered")
                        result = None
                    if result is not SpanExportResult.SUCCESS:
                        with self._lock:
                            self._failures += 1
                        break
                self._write_ack(ack)
                delivered += len(edges)
                with self._lock:
                    self._shipped += len(edges)
                    self._pending -= lines
                    self._pending_bytes -= nbytes
        return delivered

    def start(self, interval: float = 1.0, max_backoff: float = 30.0) -> None:
        """Ship (and fsync) in a daemon thread every ``interval`` s, backing off on failure."""
        if self._thread is not None:
            return

        def loop() -> None:
            delay = interval
            while not self._stop.is_set():
                self._wake.wait(delay)
                self._wake.clear()
                try:
                    self.sync()
                    before = self._failures
                    self.ship()
                    delay = min(delay * 2, max_backoff) if self._failures > before else interval
                except Exception:
                    logger.exception("lineage buffer shipper failed; retrying")
                    delay = min(delay * 2, max_backoff)

        self._thread = threading.Thread(target=loop, name="flowtrace-lineage-shipper", daemon=True)
        self._thread.start()

    def close(self, ship: bool = True) -> None:
        """Stop the shipper, fsync, optionally ship what is pending, and close the file."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            self._wake.set()
            thread.join()
        if ship:
            self.ship()
        with self._lock:
            if not self._closed:
                self._fsync_locked()
                os.close(self._fd)
                os.close(self._lock_fd)  # releases the directory lock
                self._closed = True

    def __enter__(self) -> LineageBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> BufferStats:
        """The counters (appended, shipped, dropped, pending, failures, torn, quarantined)."""
        with self._lock:
            return BufferStats(
                appended=self._appended,
                shipped=self._shipped,
                dropped=self._dropped,
                pending=self._pending,
                pending_bytes=self._pending_bytes,
                export_failures=self._failures,
                torn=self._torn,
                quarantined=self._quarantined,
            )

    def __repr__(self) -> str:
        return f"LineageBuffer({str(self.path)!r})"


def read_buffer(path: str | os.PathLike[str]) -> Iterator[LineageEdge]:
    """Every complete edge in a buffer directory (all segments) or one JSON-lines file.

    Example::

        from flowtrace import lineage

        buffer = lineage.LineageBuffer("lineage")
        buffer.append(lineage.LineageEdge(id="e-1", name="copy", inputs=("a",), outputs=("b",)))
        buffer.close()
        assert [edge.name for edge in lineage.read_buffer("lineage")] == ["copy"]
    """
    p = Path(path)
    files = [p / _segment_name(n) for n in _segments(p)] if p.is_dir() else [p]
    for file in files:
        with open(file, "rb") as f:
            for number, line in enumerate(f, 1):
                if not line.endswith(b"\n") or not line.strip():
                    continue  # a torn tail or a blank line
                try:
                    yield LineageEdge.from_json(line)
                except LineageError as exc:
                    raise LineageError(f"{file}:{number}: {exc}") from None
