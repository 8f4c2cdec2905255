"""AuditLog: chain events, write them durably through a sink, sign checkpoints."""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from ..errors import AuditError, AuditWriteError, ConfigError
from ._chain import ChainState
from ._checkpoint import Checkpoint, load_private_key
from ._event import AuditEvent, encode_action, utc_timestamp
from ._record import line_hash
from ._sinks import JsonlSink, Sink

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["AuditLog", "Durability", "Receipt"]

Durability = Literal["group", "fsync", "none"]
"""How :class:`AuditLog` makes appends durable: ``"group"``, ``"fsync"`` or ``"none"``.

Example::

    from flowtrace.audit import AuditLog, Durability

    mode: Durability = "fsync"                       # every append fsynced before it returns
    log = AuditLog("audit.jsonl", durability=mode)
    log.close()
"""
DURABILITY: Final = ("group", "fsync", "none")


class Receipt:
    """The outcome of one :meth:`AuditLog.append`: durable with a sequence, pending, or failed.

    Example::

        from flowtrace import audit

        log = audit.AuditLog("audit.jsonl")
        receipt = log.append("report.export", wait=False)   # returns before the fsync
        assert receipt.wait(timeout=5) == 0                  # its sequence, once durable
        log.close()
    """

    __slots__ = ("_done", "_error", "_guard", "_waiter", "record_hash", "sequence")

    def __init__(self, guard: threading.Lock) -> None:
        self._guard = guard  # shared with the flusher: registering vs resolving
        self._done = False
        self._waiter: threading.Lock | None = None
        self._error: BaseException | None = None
        self.sequence: int | None = None
        """Sequence number of the record once it is durable."""
        self.record_hash: str | None = None
        """Hex hash of the record once it is durable."""

    @property
    def durable(self) -> bool:
        """True once the record is written (and synced, in a durable mode)."""
        return self._done and self._error is None

    def wait(self, timeout: float | None = None) -> int:
        """Block until durable and return the sequence; raise :class:`AuditWriteError` if not."""
        if not self._done:
            with self._guard:
                waiter = None
                if not self._done:
                    # A private, pre-acquired lock: the flusher releases exactly the
                    # waiters of its batch instead of waking every thread.
                    waiter = self._waiter = threading.Lock()
                    waiter.acquire()
            if waiter is not None and not waiter.acquire(
                timeout=-1 if timeout is None else timeout
            ):
                raise AuditWriteError(f"audit record not durable after {timeout} s")
        if self._error is not None:
            raise AuditWriteError(f"audit record was not written: {self._error}") from self._error
        assert self.sequence is not None
        return self.sequence

    def _resolve(self) -> None:
        """Mark done and wake a waiter; call with the guard held."""
        self._done = True
        if self._waiter is not None:
            self._waiter.release()

    def __repr__(self) -> str:
        state = "failed" if self._error else "durable" if self._done else "pending"
        return f"Receipt({state}, sequence={self.sequence})"


def _make_atexit(ref: weakref.ReferenceType[AuditLog]) -> Callable[[], None]:
    def close_at_exit() -> None:
        log = ref()
        if log is not None and os.getpid() == log._pid:
            log.close()

    return close_at_exit


class AuditLog:
    """A tamper-evident, append-only audit log.

    ``target`` is a path (a JSON-lines file) or a :class:`~flowtrace.audit.Sink`.
    With ``signing_key`` (Ed25519) a signed checkpoint is written every
    ``checkpoint_every`` records and on :meth:`close`; without one, truncation of the tail
    cannot be detected. ``durability``:

    * ``"group"`` (default): appends are batched; each batch is written and fsynced once.
      :meth:`append` returns once its record is durable (or, with ``wait=False``, at once
      with a :class:`Receipt` that says whether it is).
    * ``"fsync"``: every append is written and fsynced before it returns.
    * ``"none"``: written to the OS before append returns, never fsynced (survives a
      process crash, not a power cut).

    Open one ``AuditLog`` per process; several processes may share one file or database.

    Example::

        import flowtrace as ft
        from flowtrace import audit

        key = audit.generate_key()
        log = audit.AuditLog("audit.jsonl", signing_key=key)
        ft.configure(service="ehr", audit_log=log)       # flow events are recorded too
        with ft.context(tenant="st-mary", user="dr-house", subject="42", purpose="treatment"):
            log.append("patient.read", resource="patients/42")
        log.close()                                      # final signed checkpoint
        audit.verify("audit.jsonl", public_key=key.public_key())
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | Sink,
        *,
        signing_key: Ed25519PrivateKey | str | bytes | Path | None = None,
        checkpoint_every: int = 1000,
        durability: Durability = "group",
        group_max_records: int = 1024,
        group_max_delay: float = 0.0,
    ) -> None:
        if durability not in DURABILITY:
            raise ConfigError(f"durability must be one of {', '.join(DURABILITY)}")
        if checkpoint_every < 1 or group_max_records < 1 or group_max_delay < 0:
            raise ConfigError(
                "checkpoint_every and group_max_records must be >= 1, group_max_delay >= 0"
            )
        if isinstance(target, str | os.PathLike):
            self.sink: Sink = JsonlSink(target, fsync=durability != "none")
        else:
            self.sink = target
        self.durability = durability
        self.checkpoint_every = checkpoint_every
        self._key = None if signing_key is None else load_private_key(signing_key)
        self._max_records = group_max_records
        self._max_delay = group_max_delay
        self._pid = os.getpid()
        self._state = ChainState()
        self._commit_lock = threading.Lock()
        self._cond = threading.Condition()
        self._guard = threading.Lock()
        self._queue: list[tuple[bytes, Receipt]] = []
        self._flusher: threading.Thread | None = None
        self._closed = False
        with self._commit_lock, self.sink.lock():
            for line in self.sink.sync():
                self._state.absorb(line_hash(line))
        from ._observer import install

        install()
        # Records queued with wait=False are flushed at interpreter exit, never dropped.
        self._atexit = _make_atexit(weakref.ref(self))
        atexit.register(self._atexit)

    # --- writing ---------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Records in the chain as last seen by this writer."""
        return self._state.size

    def append(
        self, event: AuditEvent | str, *, wait: bool = True, **fields: Any
    ) -> Receipt:
        """Append an event (or build one with :meth:`AuditEvent.from_context`).

        ``append("patient.read", resource="patients/42", subject="42")`` takes tenant,
        actor, purpose, region and trace id from the current flow context. Returns once the
        record is durable unless ``wait=False``. Raises :class:`AuditWriteError` when the
        record cannot be written; never drops it silently.
        """
        if isinstance(event, str):
            return self.append_encoded(encode_action(event, fields), wait=wait)
        if fields:
            raise AuditWriteError("pass either an AuditEvent or an action with fields, not both")
        return self.append_encoded(event.encode(), wait=wait)

    def append_encoded(self, encoded: bytes, *, wait: bool = True) -> Receipt:
        """Append an already canonical event (``AuditEvent.encode()``)."""
        self._check_open()
        receipt = Receipt(self._guard)
        if self.durability == "group":
            with self._cond:
                self._queue.append((encoded, receipt))
                if self._flusher is None:
                    self._start_flusher()
                self._cond.notify()
            if wait:
                receipt.wait()
            return receipt
        with self._commit_lock:
            self._commit([(encoded, receipt)])
        if receipt._error is not None:
            receipt.wait()
        return receipt

    def flush(self) -> None:
        """Block until every queued append is durable (group mode)."""
        with self._cond:
            pending = [r for _, r in self._queue]
        for receipt in pending:
            with contextlib.suppress(AuditWriteError):
                receipt.wait()

    def checkpoint(self) -> Checkpoint | None:
        """Write a signed checkpoint over everything written so far (needs a signing key)."""
        self._check_open()
        self.flush()
        with self._commit_lock:
            return self._write_checkpoint(force=True)

    def close(self) -> None:
        """Flush, write a final checkpoint (with a signing key) and close the sink."""
        if self._closed:
            return
        atexit.unregister(self._atexit)
        self.flush()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._flusher is not None:
            self._flusher.join()
        try:
            if os.getpid() == self._pid:
                with self._commit_lock:
                    self._write_checkpoint(force=False)
        finally:
            self.sink.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise AuditWriteError("this AuditLog is closed; open a new one to append")
        if os.getpid() != self._pid:
            raise AuditWriteError(
                "this AuditLog was opened in another process (fork); open one per process"
            )

    def _start_flusher(self) -> None:
        self._flusher = threading.Thread(
            target=self._flush_loop, name="flowtrace-audit-flusher", daemon=True
        )
        self._flusher.start()

    def _flush_loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                if self._max_delay and len(self._queue) < self._max_records:
                    deadline = time.monotonic() + self._max_delay
                    while len(self._queue) < self._max_records and not self._closed:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        self._cond.wait(remaining)
                batch = self._queue[: self._max_records]
                del self._queue[: self._max_records]
            with self._commit_lock:
                self._commit(batch)

    def _commit(self, batch: Sequence[tuple[bytes, Receipt]]) -> None:
        """Write ``batch`` under the sink lock; resolve or fail every receipt."""
        saved = self._state.copy()
        try:
            with self.sink.lock():
                for line in self.sink.sync():
                    self._state.absorb(line_hash(line))
                first = self._state.size
                lines, digests = self._state.extend([encoded for encoded, _ in batch])
                checkpoint = None
                if self._key is not None and (
                    self._state.size // self.checkpoint_every
                    > self._state.last_checkpoint // self.checkpoint_every
                ):
                    checkpoint = self._sign()
                self.sink.write(lines, None if checkpoint is None else checkpoint.line())
        except BaseException as exc:
            self._state = saved
            error = exc if isinstance(exc, AuditError) else AuditWriteError(str(exc))
            with self._guard:
                for _, receipt in batch:
                    receipt._error = error
                    receipt._resolve()
            if not isinstance(exc, Exception):
                raise
            return
        if checkpoint is not None:
            self._state.last_checkpoint = checkpoint.size
        with self._guard:
            for i, (_, receipt) in enumerate(batch):
                receipt.sequence = first + i
                receipt.record_hash = digests[i]
                receipt._resolve()

    def _sign(self) -> Checkpoint:
        assert self._key is not None
        return Checkpoint.sign(
            self._key,
            size=self._state.size,
            head=self._state.head,
            root=self._state.frontier.root().hex(),
            ts=utc_timestamp(),
        )

    def _write_checkpoint(self, *, force: bool) -> Checkpoint | None:
        if self._key is None:
            if force:
                raise AuditWriteError("checkpoints need a signing_key; open the log with one")
            return None
        with self.sink.lock():
            for line in self.sink.sync():
                self._state.absorb(line_hash(line))
            if not force and self._state.size == self._state.last_checkpoint:
                return None
            checkpoint = self._sign()
            self.sink.write([], checkpoint.line())
        self._state.last_checkpoint = checkpoint.size
        return checkpoint
