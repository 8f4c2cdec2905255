"""AuditLog: chain events, write them durably through a sink, sign checkpoints."""

from __future__ import annotations

import atexit
import contextlib
import copy
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from ..errors import AuditError, AuditWriteError, ConfigError
from ._chain import ChainState, Signer
from ._checkpoint import Checkpoint, key_id, load_private_key, load_public_key
from ._event import AuditEvent, encode_action, utc_timestamp
from ._lines import DEFAULT_MAX_LINE, check_max_line
from ._mirrors import CheckpointFile, CheckpointStore
from ._sinks import JsonlSink, Sink
from ._verifier import Verifier

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
        if isinstance(self._error, AuditError):
            # The typed reason (e.g. ForgedRecordError), not a wrapper; a copy per waiter,
            # as one error is shared by every receipt of the failed batch.
            raise copy.copy(self._error)
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

    With a signing key the last record of every write carries a writer signature, and
    before chaining after records other processes wrote the log checks that a trusted
    key (its own, or one of ``peer_keys``) signed them: a line appended by someone
    without key material makes the next write fail with
    :class:`~flowtrace.errors.ForgedRecordError`, never chain after it.
    ``checkpoint_mirrors`` (paths or :class:`CheckpointStore` objects) receive a copy of
    every checkpoint. Events whose line would exceed ``max_line_bytes`` are refused.

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
        peer_keys: Sequence[Any] = (),
        checkpoint_mirrors: Sequence[CheckpointStore | str | os.PathLike[str]] = (),
        max_line_bytes: int = DEFAULT_MAX_LINE,
    ) -> None:
        if durability not in DURABILITY:
            raise ConfigError(f"durability must be one of {', '.join(DURABILITY)}")
        if checkpoint_every < 1 or group_max_records < 1 or group_max_delay < 0:
            raise ConfigError(
                "checkpoint_every and group_max_records must be >= 1, group_max_delay >= 0"
            )
        self._max_line = check_max_line(max_line_bytes)
        self._key = None if signing_key is None else load_private_key(signing_key)
        self._signer: Signer | None = None
        self._writer_keys = None
        if self._key is not None:
            public = self._key.public_key()
            self._signer = (self._key, key_id(public))
            self._writer_keys = {key_id(public): public}
            for peer in peer_keys:
                loaded = load_public_key(peer)
                self._writer_keys[key_id(loaded)] = loaded
        elif peer_keys:
            raise ConfigError("peer_keys needs a signing_key: a keyless writer checks no one")
        self._mirrors: list[CheckpointStore] = [
            CheckpointFile(m) if isinstance(m, str | os.PathLike) else m
            for m in checkpoint_mirrors
        ]
        if isinstance(target, str | os.PathLike):
            self.sink: Sink = JsonlSink(
                target, fsync=durability != "none", max_line_bytes=self._max_line
            )
        else:
            self.sink = target
        self.durability = durability
        self.checkpoint_every = checkpoint_every
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
            self._absorb(self.sink.sync())
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
        # The envelope (hash, prev, seq, writer signature) adds under 400 bytes.
        if len(encoded) + 400 > self._max_line:
            raise AuditWriteError(
                f"an audit event of {len(encoded)} bytes exceeds max_line_bytes="
                f"{self._max_line} with its envelope; keep bulky data out of audit "
                "records (record a reference) or raise the bound for writers and verifiers"
            )
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
            for mirror in self._mirrors:
                mirror.close()

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

    def _absorb(self, lines: Iterable[bytes]) -> None:
        """Check what other writers appended, then fold it into the chain state.

        Every line must continue the chain; with a key, the last one must carry a writer
        signature by a trusted key (else someone without key material wrote it, and we
        refuse to chain after it and so vouch for it).
        """
        state = self._state
        verifier = Verifier.resume(
            state.frontier, state.head, state.acc, writer_keys=self._writer_keys,
            max_line=self._max_line,
        )
        for line in lines:
            verifier.line(line)
        if verifier.records == state.size:
            return
        if verifier.version == 1:
            raise AuditWriteError(
                "this log is in record format 1 (no writer signatures); writers append "
                "format 2 only: close it (it stays verifiable) and start a new file"
            )
        if self._key is None and verifier.signatures:
            raise AuditWriteError(
                "this log's records are signed by their writers; open it with a signing_key "
                "(unsigned records appended here would be reported as forged)"
            )
        verifier.check_attributed()
        state.frontier = verifier.frontier.copy()
        state.head = verifier.head
        state.acc = verifier.acc

    def _commit(self, batch: Sequence[tuple[bytes, Receipt]]) -> None:
        """Write ``batch`` under the sink lock; resolve or fail every receipt."""
        saved = self._state.copy()
        try:
            with self.sink.lock():
                self._absorb(self.sink.sync())
                first = self._state.size
                lines, digests = self._state.extend(
                    [encoded for encoded, _ in batch], self._signer
                )
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
        mirror_error = None
        if checkpoint is not None:
            self._state.last_checkpoint = checkpoint.size
            try:
                self._mirror(checkpoint)
            except Exception as exc:  # the records are written: fail the receipts, keep state
                mirror_error = exc if isinstance(exc, AuditError) else AuditWriteError(str(exc))
        with self._guard:
            for i, (_, receipt) in enumerate(batch):
                receipt.sequence = first + i
                receipt.record_hash = digests[i]
                receipt._error = mirror_error
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
            self._absorb(self.sink.sync())
            if not force and self._state.size == self._state.last_checkpoint:
                return None
            checkpoint = self._sign()
            self.sink.write([], checkpoint.line())
        self._state.last_checkpoint = checkpoint.size
        self._mirror(checkpoint)
        return checkpoint

    def _mirror(self, checkpoint: Checkpoint) -> None:
        line = checkpoint.line()
        for mirror in self._mirrors:
            mirror.add(line)
