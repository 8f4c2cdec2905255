"""Tamper-evident audit trail: hash-chained, append-only, with signed checkpoints.

::

    from flowtrace import audit

    key = audit.generate_key()
    with audit.AuditLog("audit.jsonl", signing_key=key) as log:
        log.append("patient.read", resource="patients/42", subject="42", purpose="care")
    report = audit.verify("audit.jsonl", public_key=key.public_key())

Every record carries the SHA-256 of its predecessor; every write ends in the writer's
Ed25519 signature, so a record appended without key material is refused by the next
writer and reported by :func:`verify`; signed checkpoints over the size, head hash and
RFC 6962 Merkle root (mirrored where the log's operators cannot write) make truncation,
rollback and tail rewrites evident. :func:`verify` raises (never returns ``False``).
Formats: docs/spec/audit.md.

Owns the record format, the chain, sinks, checkpoints, verification and queries, and the
observer ``configure(audit_log=...)`` subscribes (``_observer.install``, wired by
:mod:`flowtrace._configure`). May import: :mod:`flowtrace.flowcontext`,
:mod:`flowtrace._settings`, :mod:`flowtrace.errors`, and :mod:`flowtrace.scrubbing` (free-form
details are scrubbed before they are written; the one exception to the independence of the
capabilities, stated in the import-linter contracts).
"""

from __future__ import annotations

import contextlib as _contextlib

from ._checkpoint import (
    Checkpoint,
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    private_key_pem,
    public_key_pem,
)
from ._event import AuditEvent, Outcome
from ._log import AuditLog, Durability, Receipt
from ._mirrors import CheckpointFile, CheckpointStore
from ._observer import event_for
from ._proof import InclusionProof, inclusion_proof, verify_inclusion
from ._query import parse_since, query
from ._record import canonical
from ._recover import RecoveryReport, recover
from ._sinks import JsonlSink, PostgresCheckpoints, PostgresSink, Sink, SqliteSink, init_db
from ._verify import TrustedHead, VerificationReport, verify

__all__ = [
    "AuditEvent",
    "AuditLog",
    "Checkpoint",
    "CheckpointFile",
    "CheckpointStore",
    "Durability",
    "InclusionProof",
    "JsonlSink",
    "Outcome",
    "PostgresCheckpoints",
    "PostgresSink",
    "Receipt",
    "RecoveryReport",
    "Sink",
    "SqliteSink",
    "TrustedHead",
    "VerificationReport",
    "canonical",
    "event_for",
    "generate_key",
    "inclusion_proof",
    "init_db",
    "key_id",
    "load_private_key",
    "load_public_key",
    "parse_since",
    "private_key_pem",
    "public_key_pem",
    "query",
    "recover",
    "verify",
    "verify_inclusion",
]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("flowtrace.audit._"):
        with _contextlib.suppress(AttributeError, TypeError):
            _obj.__module__ = __name__
del _name, _obj
