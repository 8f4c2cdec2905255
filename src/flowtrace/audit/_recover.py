"""``recover``: repair the end of a log after a crash, keep what was cut, record it.

Order matters: the key is loaded and matched to the log, and the whole log is verified,
before a byte is changed; then the cut bytes are saved (fsynced) next to the log, the
file is truncated, and an ``audit.recovered`` record stating the byte count and SHA-256
of what was cut is appended and signed.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AuditError, AuditWriteError, ConfigError, ForgedRecordError
from ._checkpoint import Checkpoint, key_id, load_private_key
from ._lines import CHUNK, DEFAULT_MAX_LINE, LineReader, iter_lines
from ._sinks.jsonl import checkpoint_path
from ._verifier import Verifier

__all__ = ["RecoveryReport", "recover"]


@dataclass(frozen=True)
class RecoveryReport:
    """What :func:`recover` did.

    Example::

        from flowtrace import audit

        log = audit.AuditLog("audit.jsonl")
        log.append("report.export")
        log.close()
        with open("audit.jsonl", "ab") as file:
            file.write(b'{"hash":"tor')                  # a crash mid-write
        report = audit.recover("audit.jsonl")
        assert report.repaired and report.cut_bytes == 12
    """

    path: str
    cut_bytes: int
    """Bytes removed from the end of the log (a torn line, and with ``cut_unattributed``
    the complete records no writer signed: never acknowledged to anyone)."""
    cut_records: int
    """Complete but unsigned records among the cut bytes."""
    cut_checkpoint_bytes: int
    saved_to: str | None
    """Where the removed bytes were kept for forensics."""
    sequence: int | None
    """Sequence of the ``audit.recovered`` record that documents the repair."""
    completed: bool = False
    """The last record was complete but lacked its newline; it was kept and completed."""

    @property
    def repaired(self) -> bool:
        """True when anything was changed."""
        return bool(self.cut_bytes or self.cut_checkpoint_bytes or self.completed)


@dataclass
class _Scan:
    keep: int  # bytes of the log to keep: everything up to the last attributed record
    size: int
    unattributed: int  # complete records after ``keep``
    first_unattributed: int
    complete_tail: bool  # the bytes after the last newline are one whole, valid record
    version: int | None


def _checkpoint_key_ids(path: Path, max_line: int) -> set[str]:
    cp = checkpoint_path(path)
    if not cp.exists():
        return set()
    with open(cp, "rb") as f:
        lines = iter_lines(iter(lambda: f.read(CHUNK), b""), max_line)
        return {Checkpoint.parse(line, number).key for number, (_, line) in enumerate(lines, 1)}


def _scan(path: Path, keys: dict[str, Any] | None, max_line: int) -> tuple[_Scan, set[str]]:
    """Verify every complete line; find where the attributed records end."""
    from ._record import writer_of

    verifier = Verifier(writer_keys=keys, max_line=max_line)
    reader = LineReader(max_line)
    signers: set[str] = set()
    keep = 0
    offset = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            for line in reader.feed(chunk):
                verifier.line(line)
                offset += len(line) + 1
                writer = writer_of(line)
                if writer is not None:
                    signers.add(writer[0])
                if verifier.version == 1 or keys is None or verifier.signed == verifier.records:
                    keep = offset
    tail = reader.pending
    complete = False
    if tail:
        trial = verifier.copy()
        try:
            trial.line(tail)
        except AuditError:
            pass
        else:
            complete = keys is None or trial.version == 1 or trial.signed == trial.records
    first = verifier.signed if keys is not None and verifier.version == 2 else verifier.records
    scan = _Scan(keep, offset + len(tail), verifier.records - first if offset > keep else 0,
                 first, complete, verifier.version)
    return scan, signers


def recover(
    path: str | os.PathLike[str],
    *,
    signing_key: Any = None,
    cut_unattributed: bool = False,
    max_line_bytes: int = DEFAULT_MAX_LINE,
) -> RecoveryReport:
    """Repair a log whose end was torn by a crash, and record that in the log.

    A torn last line (never acknowledged: ``append`` returns only after the full write)
    is cut off and saved next to the log as ``<path>.torn-<UTC time>``; an
    ``audit.recovered`` record with the size and SHA-256 of the cut bytes is appended and
    signed with ``signing_key``. A last record that is complete but lacks its newline is
    completed, never cut. Complete records that no writer signature covers (a write cut
    short by a crash — or appended by someone without the key) are only cut with
    ``cut_unattributed=True``; otherwise :class:`~flowtrace.errors.ForgedRecordError`.
    The key is loaded and checked against the log's signatures before anything changes.
    Run it with no writer running. A log with nothing to repair is left untouched.

    Example::

        from flowtrace import audit

        log = audit.AuditLog("audit.jsonl")
        log.append("report.export")
        log.close()
        report = audit.recover("audit.jsonl")            # nothing torn: nothing to do
        assert not report.repaired
    """
    import fcntl

    from ._log import AuditLog

    log_path = Path(path)
    key = None if signing_key is None else load_private_key(signing_key)
    if not log_path.exists():
        raise AuditError(f"no audit log at {log_path}")
    keys = None
    if key is not None:
        keys = {key_id(key.public_key()): key.public_key()}
    with open(log_path, "rb") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            # Chain only first, to learn which keys sign this log and refuse a wrong one
            # with a clear message; then again checking the signatures with the key.
            scan, signers = _scan(log_path, None, max_line_bytes)
            _check_key(log_path, key, signers | _checkpoint_key_ids(log_path, max_line_bytes))
            if keys is not None:
                scan, _ = _scan(log_path, keys, max_line_bytes)
            if scan.version == 1:
                raise AuditWriteError(
                    f"{log_path} is in record format 1, which this version verifies but does "
                    "not append to; nothing was changed. Keep it as it is (verify reports the "
                    "torn end), or repair it with the flowtrace release that wrote it"
                )
            if scan.unattributed and not cut_unattributed:
                last = scan.first_unattributed + scan.unattributed - 1
                raise ForgedRecordError(
                    f"records {scan.first_unattributed}..{last} of {log_path} are complete "
                    "but no writer signature covers them: a write "
                    "cut short by a crash, or lines appended without the key. Inspect them; "
                    "to move them out of the log (kept in a .torn file and recorded), run "
                    "recover with cut_unattributed=True (--cut-unattributed)",
                    sequence=scan.first_unattributed,
                )
            cut_at = scan.size if scan.complete_tail else scan.keep
            stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
            saved = Path(f"{log_path}.torn-{stamp}")
            cut = _cut(log_path, cut_at, saved, b"")
            cp_cut = _cut_checkpoints(checkpoint_path(log_path), saved, bool(cut[0]))
            if scan.complete_tail:
                _append_newline(log_path)
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    anything = bool(cut[0] or cp_cut[0])
    if not anything and not scan.complete_tail:
        return RecoveryReport(str(log_path), 0, 0, 0, None, None)
    with AuditLog(log_path, signing_key=key, durability="fsync",
                  max_line_bytes=max_line_bytes) as log:
        receipt = log.append(
            "audit.recovered",
            outcome="success",
            reason="repaired the end of the log after a crash",
            details={
                "cut_bytes": cut[0],
                "cut_sha256": cut[1],
                "cut_records": scan.unattributed,
                "cut_checkpoint_bytes": cp_cut[0],
                "cut_checkpoint_sha256": cp_cut[1],
                "completed_last_line": scan.complete_tail,
                "saved_to": saved.name if anything else None,
            },
        )
    return RecoveryReport(
        str(log_path), cut[0], scan.unattributed, cp_cut[0],
        str(saved) if anything else None, receipt.sequence, scan.complete_tail,
    )


def _check_key(path: Path, key: Any, ids: set[str]) -> None:
    if key is None:
        if ids:
            raise ConfigError(
                f"{path} is signed (key {', '.join(sorted(ids))}); pass its signing key to "
                "recover so the repair record is signed too"
            )
        return
    mine = key_id(key.public_key())
    if ids and mine not in ids:
        raise ConfigError(
            f"the given key {mine} is not the key that signs {path} "
            f"({', '.join(sorted(ids))}); nothing was changed"
        )


def _cut(path: Path, at: int, saved: Path, header: bytes) -> tuple[int, str]:
    """Copy ``path[at:]`` to ``saved`` (fsynced) in chunks, then truncate ``path`` to
    ``at``; returns the byte count and SHA-256 (hex) of what was cut."""
    digest = hashlib.sha256()
    count = 0
    with open(path, "r+b") as f:
        f.seek(at)
        chunk = f.read(CHUNK)
        if not chunk:
            return 0, digest.hexdigest()
        with open(saved, "ab") as out:
            out.write(header)
            while chunk:
                digest.update(chunk)
                count += len(chunk)
                out.write(chunk)
                chunk = f.read(CHUNK)
            out.flush()
            os.fsync(out.fileno())
        f.truncate(at)
        f.flush()
        os.fsync(f.fileno())
    return count, digest.hexdigest()


def _cut_checkpoints(path: Path, saved: Path, appended: bool) -> tuple[int, str]:
    """Cut a torn last checkpoint line (checkpoint files are small)."""
    if not path.exists():
        return 0, hashlib.sha256().hexdigest()
    with open(path, "rb") as f:
        data = f.read()
    end = data.rfind(b"\n") + 1
    if end == len(data):
        return 0, hashlib.sha256().hexdigest()
    return _cut(path, end, saved, b"\n--- checkpoints ---\n" if appended else b"")


def _append_newline(path: Path) -> None:
    with open(path, "ab") as f:
        f.write(b"\n")
        f.flush()
        os.fsync(f.fileno())
