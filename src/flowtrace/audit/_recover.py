"""``recover``: repair a torn last line after a crash, keep the torn bytes, record it."""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AuditError
from ._sinks.jsonl import checkpoint_path

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
        assert report.repaired and report.torn_bytes == 12
    """

    path: str
    torn_bytes: int
    """Bytes of the incomplete last record line that were removed (0: nothing to repair)."""
    torn_checkpoint_bytes: int
    saved_to: str | None
    """Where the removed bytes were kept for forensics."""
    sequence: int | None
    """Sequence of the ``audit.recovered`` record that documents the repair."""

    @property
    def repaired(self) -> bool:
        """True when anything was removed."""
        return bool(self.torn_bytes or self.torn_checkpoint_bytes)


def _cut_torn_tail(path: Path) -> bytes:
    """Truncate ``path`` after its last newline; return the removed bytes."""
    if not path.exists():
        return b""
    with open(path, "r+b") as f:
        data = f.read()
        end = data.rfind(b"\n") + 1
        torn = data[end:]
        if torn:
            f.truncate(end)
            f.flush()
            os.fsync(f.fileno())
    return torn


def recover(path: str | os.PathLike[str], *, signing_key: Any = None) -> RecoveryReport:
    """Repair a log whose last line was torn by a crash, and record that in the log.

    The incomplete line (never acknowledged: ``append`` returns only after the full line
    is durable) is cut off and saved next to the log as ``<path>.torn-<UTC time>``; an
    ``audit.recovered`` record with its size and SHA-256 is then appended (and signed by a
    checkpoint if ``signing_key`` is given). Run it with no writer running. A log
    without a torn line is left untouched.

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
    if not log_path.exists():
        raise AuditError(f"no audit log at {log_path}")
    with open(log_path, "rb") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            torn = _cut_torn_tail(log_path)
            torn_cp = _cut_torn_tail(checkpoint_path(log_path))
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    if not torn and not torn_cp:
        return RecoveryReport(str(log_path), 0, 0, None, None)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    saved = Path(f"{log_path}.torn-{stamp}")
    saved.write_bytes(torn + (b"\n--- checkpoints ---\n" + torn_cp if torn_cp else b""))
    with AuditLog(log_path, signing_key=signing_key, durability="fsync") as log:
        receipt = log.append(
            "audit.recovered",
            outcome="success",
            reason="torn last line after a crash",
            details={
                "torn_bytes": len(torn),
                "torn_sha256": hashlib.sha256(torn).hexdigest(),
                "torn_checkpoint_bytes": len(torn_cp),
                "saved_to": saved.name,
            },
        )
    return RecoveryReport(str(log_path), len(torn), len(torn_cp), str(saved), receipt.sequence)
