"""Third-party verification: the log, its checkpoints and a public key are all it needs.

:func:`verify` drives the incremental checker (``_verifier.Verifier``) over a file, a sink
or an open log, checks it against the log's own checkpoints and any held elsewhere
(anchors), and returns a :class:`VerificationReport` or raises the
:class:`~flowtrace.errors.AuditVerificationError` subclass that names the first bad
sequence and why.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import (
    CheckpointSignatureError,
    ConfigError,
    ForgedRecordError,
    RecordModifiedError,
    TruncationError,
)
from ._checkpoint import Checkpoint, key_id, load_public_key
from ._lines import CHUNK, DEFAULT_MAX_LINE, iter_lines
from ._verifier import Verifier

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["TrustedHead", "VerificationReport", "load_checkpoints", "load_keys", "verify"]


@dataclass(frozen=True)
class TrustedHead:
    """A log state you hold outside the log's reach: its first ``size`` records have this
    Merkle ``root`` (and, if given, the last of them this ``head`` hash).

    Take it from a report (``TrustedHead(report.records, report.root)``) and keep it
    somewhere the log's operators cannot write; :func:`verify` then fails when the log is
    shorter than ``size`` or its first ``size`` records differ.

    Example::

        from flowtrace import audit

        key = audit.generate_key()
        log = audit.AuditLog("audit.jsonl", signing_key=key)
        log.append("report.export")
        log.close()
        report = audit.verify("audit.jsonl", public_key=key.public_key())
        anchor = audit.TrustedHead(report.records, report.root)   # keep it elsewhere
        audit.verify("audit.jsonl", public_key=key.public_key(), anchors=[anchor])
    """

    size: int
    root: str
    head: str = ""

    def checkpoint(self) -> Checkpoint:
        """As an (unsigned, trusted) checkpoint."""
        return Checkpoint(self.size, self.head, self.root, ts="", key="")


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
    """Records verified (hash, sequence and chain link of each)."""
    head: str
    """Hash of the last record (hex)."""
    root: str
    """RFC 6962 Merkle root over all records (hex)."""
    checkpoints: int
    """Checkpoints (own and anchors) whose signature, head and root were verified."""
    signed_records: int
    """Records covered by the latest checkpoint (truncation below this is detected)."""
    unsigned_tail: int
    """Records after the latest checkpoint (at most ``allow_unsealed``)."""
    key_id: str | None
    """Id of the (first) public key, or None when only the chain was checked."""
    seconds: float
    format_version: int = 2
    """Record format of the log; format 1 records carry no writer signatures."""
    writer_signatures: int = 0
    """Writer signatures checked; every record is covered by one (format 2)."""
    anchors: int = 0
    """Checkpoints held elsewhere (mirrors, trusted heads) the log was checked against."""

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
            lines.append("  no public key given: signatures NOT checked, truncation undetectable")
        else:
            lines.append(
                f"  {self.checkpoints} checkpoint(s) signed by key {self.key_id}; the latest "
                f"covers {self.signed_records} record(s), {self.unsigned_tail} after it"
            )
            if self.format_version == 1:
                lines.append("  format 1: records carry no writer signatures (not attributed)")
            else:
                lines.append(f"  every record covered by one of {self.writer_signatures} "
                             "writer signature(s)")
        if self.anchors:
            lines.append(f"  agrees with {self.anchors} checkpoint(s) held elsewhere")
        return "\n".join(lines)


def load_keys(public_key: Any) -> dict[str, Ed25519PublicKey]:
    """Trusted keys by key id, from one key (any form :func:`load_public_key` takes) or a
    list of them (one per writer)."""
    sources = public_key if isinstance(public_key, list | tuple) else [public_key]
    keys = {}
    for source in sources:
        key = load_public_key(source)
        keys[key_id(key)] = key
    return keys


def load_checkpoints(
    lines: Iterable[bytes], public_key: Any, *, origin: str = "checkpoint"
) -> dict[int, Checkpoint]:
    """Parse and signature-check checkpoint lines; returns them by size."""
    keys = public_key if isinstance(public_key, dict) else load_keys(public_key)
    first = next(iter(keys.values()))
    by_size: dict[int, Checkpoint] = {}
    for number, line in enumerate(lines, 1):
        checkpoint = Checkpoint.parse(line, number)
        checkpoint.check(keys.get(checkpoint.key, first), number)
        _merge(by_size, checkpoint, origin)
    return by_size


def _merge(
    by_size: dict[int, Checkpoint], checkpoint: Checkpoint, origin: str, *, anchor: bool = False
) -> None:
    other = by_size.get(checkpoint.size)
    if other is not None and (
        other.root != checkpoint.root
        or (other.head and checkpoint.head and other.head != checkpoint.head)
    ):
        if anchor:
            raise RecordModifiedError(
                f"the log and its own checkpoints diverge from {origin} about the first "
                f"{checkpoint.size} records: they were rolled back and rewritten (by someone "
                "holding the key), or the anchor belongs to another log",
                sequence=checkpoint.size,
            )
        raise CheckpointSignatureError(
            f"two checkpoints disagree about the first {checkpoint.size} records ({origin}): "
            "the log was rewritten after it was signed, rolled back and rewritten, or the "
            "key signed two histories",
            sequence=checkpoint.size,
        )
    if other is None or not other.head:
        by_size[checkpoint.size] = checkpoint


def _anchor_checkpoints(
    anchors: Sequence[Any], keys: dict[str, Ed25519PublicKey] | None, max_line: int
) -> list[tuple[str, Checkpoint]]:
    """Every checkpoint held elsewhere, with where it came from."""
    found: list[tuple[str, Checkpoint]] = []
    for anchor in anchors:
        if isinstance(anchor, TrustedHead):
            found.append((f"trusted head at size {anchor.size}", anchor.checkpoint()))
            continue
        if keys is None:
            raise CheckpointSignatureError(
                f"checkpoints held elsewhere ({anchor!r}) need the public key to check them"
            )
        if isinstance(anchor, Checkpoint):
            anchor.check(keys.get(anchor.key, next(iter(keys.values()))), 1)
            found.append(("a given checkpoint", anchor))
            continue
        if isinstance(anchor, str | os.PathLike):
            name = os.fspath(anchor)
            lines = _checkpoint_file_lines(Path(anchor), max_line, must_exist=True)
        elif hasattr(anchor, "read_checkpoints"):
            name, lines = type(anchor).__name__, list(anchor.read_checkpoints())
        else:
            raise TypeError(
                f"cannot use {anchor!r} as an anchor: pass a TrustedHead, a Checkpoint, a "
                "checkpoint file path or a checkpoint store (read_checkpoints())"
            )
        for checkpoint in load_checkpoints(lines, keys, origin=name).values():
            found.append((name, checkpoint))
    return found


def _checkpoint_file_lines(path: Path, max_line: int, *, must_exist: bool) -> list[bytes]:
    if not path.exists():
        if must_exist:
            raise CheckpointSignatureError(f"no checkpoint file at {path}")
        return []
    lines = [line for _, line in iter_lines(_chunks(path), max_line)]
    if path.stat().st_size and sum(len(line) + 1 for line in lines) != path.stat().st_size:
        raise CheckpointSignatureError(
            f"{path} ends in an incomplete checkpoint line; run `flowtrace audit recover`"
        )
    return lines


def _source_of(
    source: Any, max_line: int = DEFAULT_MAX_LINE
) -> tuple[str, Iterable[bytes], list[bytes]]:
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

        if not path.exists():
            raise FileNotFoundError(f"no audit log at {path}")
        cp_lines = _checkpoint_file_lines(checkpoint_path(path), max_line, must_exist=False)
        return str(path), _chunks(path), cp_lines
    if hasattr(source, "read_lines") and hasattr(source, "read_checkpoints"):
        lines = (line + b"\n" for line in source.read_lines())
        return type(source).__name__, lines, source.read_checkpoints()
    raise TypeError(f"cannot verify {source!r}: pass a path, a sink or an AuditLog")


def _run(verifier: Verifier, chunks: Iterable[bytes]) -> tuple[int, str, str]:
    try:
        for chunk in chunks:
            verifier.feed(chunk)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return verifier.finish()


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def verify(
    source: Any,
    *,
    public_key: Any,
    allow_unsealed: int = 0,
    anchors: Sequence[Any] = (),
    check_format: bool = False,
    max_line_bytes: int = DEFAULT_MAX_LINE,
) -> VerificationReport:
    """Verify an audit log; raise the first problem found, or return what was checked.

    ``source`` is a path to a JSON-lines log (checkpoints next to it), a sink, or an
    :class:`~flowtrace.audit.AuditLog`. ``public_key`` (Ed25519: key object, PEM, hex or a
    file path; or a list of them, one per writer) checks the writer signatures that
    attribute every record to a key holder, and the checkpoints; pass ``None`` explicitly
    to check the chain only (then forged appends and truncation go unnoticed).

    With a key, the latest checkpoint must cover the last record: a log whose head no
    checkpoint covers fails (:class:`~flowtrace.errors.TruncationError`), unless at most
    ``allow_unsealed`` records follow it (a log still being written). ``anchors`` are
    checkpoints held where the log's operators cannot write: :class:`TrustedHead`
    values, checkpoint files or stores the writer mirrors to (``checkpoint_mirrors=``);
    the log must be at least as long as, and agree with, every one of them.
    ``check_format`` also parses every event and checks it is RFC 8785 canonical JSON.
    Lines longer than ``max_line_bytes`` raise :class:`~flowtrace.errors.OversizedLineError`.

    Example::

        from flowtrace import audit

        key = audit.generate_key()
        log = audit.AuditLog("audit.jsonl", signing_key=key)
        log.append("patient.read", resource="patients/42", purpose="care")
        log.close()                                      # seals the head with a checkpoint
        report = audit.verify("audit.jsonl", public_key=key.public_key())
        assert report.records == 1
    """
    started = time.perf_counter()
    if type(allow_unsealed) is not int or allow_unsealed < 0:
        raise ConfigError(f"allow_unsealed must be an int >= 0, got {allow_unsealed!r}")
    keys = None if public_key is None else load_keys(public_key)
    name, chunks, cp_lines = _source_of(source, max_line_bytes)
    checkpoints = {} if keys is None else load_checkpoints(cp_lines, keys)
    own = len(cp_lines)
    found = _anchor_checkpoints(anchors, keys, max_line_bytes)
    for origin, checkpoint in found:
        _merge(checkpoints, checkpoint, origin, anchor=True)
    verifier = Verifier(
        checkpoints, check_format=check_format, writer_keys=keys, max_line=max_line_bytes
    )
    try:
        records, head, root = _run(verifier, chunks)
    except ForgedRecordError as exc:
        if keys is None or "does not verify" not in str(exc):
            raise
        # Only the last signature of each key's run was checked, and it covers the
        # earlier ones: read again checking every signature to name the first bad one.
        strict = Verifier(checkpoints, writer_keys=keys, max_line=max_line_bytes, strict=True)
        _run(strict, _source_of(source, max_line_bytes)[1])
        raise
    signed = max(checkpoints, default=0)
    if keys is not None and records - signed > allow_unsealed:
        raise TruncationError(
            f"{records - signed} record(s) after the latest checkpoint (size {signed}) are "
            "not covered by a signed checkpoint (allowed: "
            f"{allow_unsealed}): the checkpoints were deleted, the tail was replaced, or the "
            "log is still being written (then pass allow_unsealed / --allow-unsealed N)",
            sequence=signed,
        )
    return VerificationReport(
        source=name,
        records=records,
        head=head,
        root=root,
        checkpoints=own + len(found) if keys is not None else len(found),
        signed_records=signed,
        unsigned_tail=records - signed,
        key_id=None if keys is None else next(iter(keys)),
        seconds=time.perf_counter() - started,
        format_version=verifier.version or 2,
        writer_signatures=verifier.signatures,
        anchors=len(found),
    )
