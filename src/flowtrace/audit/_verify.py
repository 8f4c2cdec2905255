"""Third-party verification: the log, its checkpoints and a public key are all it needs.

:class:`Verifier` checks a byte stream incrementally; :func:`verify` drives it over a
file, a sink or an open log and returns a :class:`VerificationReport`, or raises the
:class:`~flowtrace.errors.AuditVerificationError` subclass that names the first bad
sequence and why.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import (
    CheckpointSignatureError,
    RecordDeletedError,
    RecordInsertedError,
    RecordModifiedError,
    RecordReorderedError,
    TruncationError,
)
from ._checkpoint import Checkpoint, key_id, load_public_key
from ._merkle import Frontier
from ._record import GENESIS, CanonicalError, check_canonical

__all__ = ["VerificationReport", "Verifier", "load_checkpoints", "verify"]

_sha256 = hashlib.sha256
_KEYS = frozenset({"event", "prev", "seq", "v"})
_CHUNK = 1 << 20


@dataclass(frozen=True)
class VerificationReport:
    """What was checked, when everything held.

    Example::

        from flowtrace import audit

        log = audit.AuditLog("audit.jsonl")
        log.append("report.export")
        log.close()
        report = audit.verify("audit.jsonl", public_key=None)   # chain only, no checkpoints
        assert report.records == 1
        print(report.to_dict())
    """

    source: str
    records: int
    """Records verified (hash, canonical form, sequence and chain link of each)."""
    head: str
    """Hash of the last record (hex)."""
    root: str
    """RFC 6962 Merkle root over all records (hex)."""
    checkpoints: int
    """Signed checkpoints whose signature, head and root were verified."""
    signed_records: int
    """Records covered by the latest valid checkpoint (truncation below this is detected)."""
    unsigned_tail: int
    """Records after the latest checkpoint: verified as a chain, not yet signed."""
    key_id: str | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""
        return asdict(self)

    def __str__(self) -> str:
        lines = [
            f"OK: {self.records} records in {self.source} verified in {self.seconds:.3f} s",
            f"  head {self.head}",
            f"  merkle root {self.root}",
        ]
        if self.key_id is None:
            lines.append("  no public key given: checkpoints NOT checked, truncation undetectable")
        else:
            lines.append(
                f"  {self.checkpoints} checkpoint(s) signed by key {self.key_id}; the latest "
                f"covers {self.signed_records} record(s), {self.unsigned_tail} after it"
            )
        return "\n".join(lines)


def load_checkpoints(lines: Iterable[bytes], public_key: Any) -> dict[int, Checkpoint]:
    """Parse and signature-check checkpoint lines; returns them by size."""
    key = load_public_key(public_key)
    by_size: dict[int, Checkpoint] = {}
    for number, line in enumerate(lines, 1):
        checkpoint = Checkpoint.parse(line, number)
        checkpoint.check(key, number)
        other = by_size.get(checkpoint.size)
        if other is not None and (other.root, other.head) != (checkpoint.root, checkpoint.head):
            raise CheckpointSignatureError(
                f"two signed checkpoints disagree about the first {checkpoint.size} records: "
                "the log was rewritten after it was signed (or the key signed two histories)",
                sequence=checkpoint.size,
            )
        by_size[checkpoint.size] = checkpoint
    return by_size


class Verifier:
    """Incremental verifier: :meth:`feed` bytes in order, then :meth:`finish`.

    It keeps only the head hash, the Merkle frontier and the next expected sequence, so
    a copy (:meth:`copy`) taken at a line boundary can resume on any continuation.
    With ``check_format`` every event is also parsed and checked to be RFC 8785 JSON
    (tampering is caught either way: any changed byte breaks a hash).

    Example::

        from pathlib import Path

        from flowtrace import audit

        log = audit.AuditLog("audit.jsonl")
        log.append("report.export")
        log.close()
        verifier = audit.Verifier()                      # streaming: feed bytes as they arrive
        verifier.feed(Path("audit.jsonl").read_bytes())
        records, head, root = verifier.finish()          # raises on the first broken link
        assert records == 1
    """

    __slots__ = (
        "_buffer",
        "_check_format",
        "_checkpoints",
        "_frontier",
        "_head",
        "_last_good",
        "_pending",
    )

    def __init__(
        self, checkpoints: dict[int, Checkpoint] | None = None, *, check_format: bool = False
    ) -> None:
        self._checkpoints = checkpoints or {}
        self._check_format = check_format
        self._frontier = Frontier()
        self._head = GENESIS.encode()
        self._buffer = b""
        self._pending: int | None = None
        self._last_good = 0

    @property
    def records(self) -> int:
        """Records verified so far."""
        return self._frontier.size

    def copy(self) -> Verifier:
        """An independent verifier in the same state."""
        other = Verifier(self._checkpoints, check_format=self._check_format)
        other._frontier = self._frontier.copy()
        other._head = self._head
        other._buffer = self._buffer
        other._pending = self._pending
        other._last_good = self._last_good
        return other

    def feed(self, data: bytes) -> None:
        """Verify every complete line in ``data`` (a partial last line is kept for later)."""
        if self._buffer:
            data = self._buffer + data
        lines = data.split(b"\n")
        self._buffer = lines.pop()
        if self._pending is not None or self._check_format:
            for item in lines:
                self.line(item)
            return
        # Fast path for well-formed records: one comparison checks prev, seq and version.
        # Anything unexpected goes through line(), which names the problem.
        sha = _sha256
        frontier = self._frontier
        nodes = frontier.nodes
        checkpoints = self._checkpoints
        head = self._head
        size = frontier.size
        for position, line in enumerate(lines):
            body = line[84:-1]
            digest = sha(body).digest()
            digest_hex = digest.hex().encode()
            if not (
                line[9:73] == digest_hex
                and line[:9] == b'{"hash":"'
                and line[73:94] == b'","record":{"event":{'
                and line[-1:] == b"}"
                and body.endswith(
                    b',"prev":"%b","seq":%d,"v":1}' % (head, size)
                )
            ):
                frontier.size = size
                self._head = head
                self.line(line)
                if self._pending is not None:
                    for item in lines[position + 1 :]:
                        self.line(item)
                    return
                head = self._head
                size = frontier.size
                continue
            node = sha(b"\x00" + digest).digest()
            bits = size
            while bits & 1:
                node = sha(b"\x01" + nodes.pop() + node).digest()
                bits >>= 1
            nodes.append(node)
            size += 1
            head = digest_hex
            if size in checkpoints:
                frontier.size = size
                self._check_checkpoint(checkpoints[size], digest_hex, size - 1)
        frontier.size = size
        self._head = head

    def _check_checkpoint(self, checkpoint: Checkpoint, digest_hex: bytes, seq: int) -> None:
        if checkpoint.head.encode() != digest_hex or checkpoint.root != self._frontier.root().hex():
            raise RecordModifiedError(
                f"records {self._last_good}..{seq} do not match the signed checkpoint "
                f"at size {checkpoint.size}: they were rewritten after signing",
                sequence=self._last_good,
            )
        self._last_good = checkpoint.size

    def line(self, line: bytes) -> None:
        """Verify one record line (without its newline)."""
        expected = self._frontier.size
        if (
            line[:9] != b'{"hash":"'
            or line[73:84] != b'","record":'
            or line[-1:] != b"}"
            or line[84:94] != b'{"event":{'
        ):
            raise RecordModifiedError(
                f"the line holding record {expected} is not a well-formed audit record "
                "(edited, or not an audit log)",
                sequence=expected,
            )
        body = line[84:-1]
        digest = _sha256(body).digest()
        digest_hex = digest.hex().encode()
        if line[9:73] != digest_hex:
            raise RecordModifiedError(
                f"record {expected} was modified: its content does not match its hash",
                sequence=expected,
            )
        # The envelope after the event is fixed: ,"prev":"<64 hex>","seq":<int>,"v":1}
        at = body.rfind(b',"prev":"')
        seq_text = body[at + 81 : -7]
        if (
            at < 0
            or body[at + 73 : at + 81] != b'","seq":'
            or body[-7:] != b',"v":1}'
            or not seq_text.isdigit()
            or (seq_text[0] == 48 and len(seq_text) > 1)
        ):
            raise RecordModifiedError(
                f"record {expected} does not have the version-1 record shape "
                "(event, prev, seq, v=1)",
                sequence=expected,
            )
        if self._check_format:
            self._check_canonical(body, expected)
        seq = int(seq_text)
        if self._pending is not None:
            missing = self._pending
            if seq == missing:
                raise RecordReorderedError(
                    f"record {missing} appears after record {missing + 1}: records were "
                    "reordered",
                    sequence=missing,
                )
            raise RecordDeletedError(
                f"record {missing} is missing: the log jumps from {missing - 1} to a later "
                "record",
                sequence=missing,
            )
        if seq != expected:
            if seq > expected:
                # A deletion or a swap; the next line tells which.
                self._pending = expected
                return
            raise RecordInsertedError(
                f"a record claiming sequence {seq} appears where record {expected} belongs: "
                "it was inserted or duplicated",
                sequence=expected,
            )
        if body[at + 9 : at + 73] != self._head:
            raise RecordInsertedError(
                f"record {expected} does not chain to record {expected - 1} (prev hash "
                "differs): it was inserted, or an earlier record was rewritten",
                sequence=expected,
            )
        self._frontier.append(digest)
        self._head = digest_hex
        checkpoint = self._checkpoints.get(expected + 1)
        if checkpoint is not None:
            self._check_checkpoint(checkpoint, digest_hex, expected)

    @staticmethod
    def _check_canonical(body: bytes, expected: int) -> None:
        try:
            record = check_canonical(body)
        except CanonicalError as exc:
            raise RecordModifiedError(
                f"record {expected} is not canonical JSON ({exc})", sequence=expected
            ) from exc
        if type(record) is not dict or record.keys() != _KEYS:
            raise RecordModifiedError(
                f"record {expected} has fields other than event, prev, seq and v",
                sequence=expected,
            )

    def finish(self) -> tuple[int, str, str]:
        """Check the end of the stream; returns ``(records, head hex, root hex)``."""
        size = self._frontier.size
        if self._pending is not None:
            raise RecordDeletedError(
                f"record {self._pending} is missing: the log jumps past it", sequence=size
            )
        if self._buffer:
            raise TruncationError(
                f"the log ends in an incomplete line where record {size} should be (torn "
                "write or truncation); if a writer crashed, run `flowtrace audit recover`",
                sequence=size,
            )
        signed = max(self._checkpoints, default=0)
        if signed > size:
            raise TruncationError(
                f"the log holds {size} records but a signed checkpoint covers {signed}: "
                f"records {size}..{signed - 1} were cut off",
                sequence=size,
            )
        return size, self._head.decode(), self._frontier.root().hex()


def _source_of(source: Any) -> tuple[str, Iterable[bytes], list[bytes]]:
    """(name, byte chunks of the record stream, checkpoint lines) for any source."""
    from ._log import AuditLog
    from ._sinks import JsonlSink

    if isinstance(source, AuditLog):
        source.flush()
        source = source.sink
    if isinstance(source, JsonlSink):
        source = source.path
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        from ._sinks.jsonl import checkpoint_path

        cp_path = checkpoint_path(path)
        cp_data = cp_path.read_bytes() if cp_path.exists() else b""
        cp_lines = cp_data.split(b"\n")
        if cp_lines[-1]:
            raise CheckpointSignatureError(
                f"{cp_path} ends in an incomplete checkpoint line; run `flowtrace audit recover`"
            )
        if not path.exists():
            raise FileNotFoundError(f"no audit log at {path}")
        return str(path), _chunks(path), cp_lines[:-1]
    if hasattr(source, "read_lines") and hasattr(source, "read_checkpoints"):
        lines = (line + b"\n" for line in source.read_lines())
        return type(source).__name__, lines, source.read_checkpoints()
    raise TypeError(f"cannot verify {source!r}: pass a path, a sink or an AuditLog")


def _chunks(path: Path) -> Iterable[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk


def verify(
    source: Any,
    *,
    public_key: Any,
    require_sealed: bool = False,
    check_format: bool = False,
) -> VerificationReport:
    """Verify an audit log; raise the first problem found, or return what was checked.

    ``source`` is a path to a JSON-lines log (checkpoints next to it), a sink, or an
    :class:`~flowtrace.audit.AuditLog`. ``public_key`` (Ed25519: key object, PEM, hex or
    a file path) verifies the checkpoints; pass ``None`` explicitly to check the chain
    only (then truncation of the tail cannot be detected). ``require_sealed`` also demands
    that the latest checkpoint covers every record (a log closed cleanly);
    ``check_format`` also parses every event and checks it is RFC 8785 canonical JSON.

    Example::

        from flowtrace import audit

        key = audit.generate_key()
        log = audit.AuditLog("audit.jsonl", signing_key=key)
        log.append("report.export")
        log.close()
        report = audit.verify("audit.jsonl", public_key=key.public_key(), require_sealed=True)
        print(report)                                    # OK: 1 records in audit.jsonl verified ...
    """
    started = time.perf_counter()
    name, chunks, cp_lines = _source_of(source)
    checkpoints = {} if public_key is None else load_checkpoints(cp_lines, public_key)
    verifier = Verifier(checkpoints, check_format=check_format)
    try:
        for chunk in chunks:
            verifier.feed(chunk)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    records, head, root = verifier.finish()
    signed = max(checkpoints, default=0)
    if require_sealed and signed != records:
        raise TruncationError(
            f"{records - signed} record(s) after the latest checkpoint (size {signed}) are not "
            "covered by a signature; the log was not closed cleanly (or its tail was replaced)",
            sequence=signed,
        )
    return VerificationReport(
        source=name,
        records=records,
        head=head,
        root=root,
        checkpoints=len(cp_lines) if public_key is not None else 0,
        signed_records=signed,
        unsigned_tail=records - signed,
        key_id=None if public_key is None else key_id(load_public_key(public_key)),
        seconds=time.perf_counter() - started,
    )

