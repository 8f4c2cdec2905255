"""Regenerate the checked-in audit test vectors (run only when the format version changes).

    python tests/vectors/audit/generate.py

Writes format 2 (records with writer signatures) into this directory; ``v1/`` holds the
format-1 vectors written by flowtrace 0.1, kept to prove old logs stay verifiable.
The signing key is a fixed, public TEST key (seed bytes 0..31): never use it for real logs.
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from flowtrace import audit
from flowtrace.audit import Receipt

HERE = Path(__file__).resolve().parent
TEST_SEED = bytes(range(32))

EVENTS = [
    audit.AuditEvent(
        action="patient.read", ts="2026-01-05T09:00:00.000000Z", actor="dr-house",
        role="clinician", auth_method="oidc", resource="patients/42", tenant="st-mary",
        subject="42", purpose="treatment", data_categories=("health",), service="ehr",
        region="eu", trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
    ),
    audit.AuditEvent(
        action="patient.export", outcome="denied", ts="2026-01-05T09:01:30.250000Z",
        actor="intern-7", resource="patients/42", tenant="st-mary", subject="42",
        reason="not on care team", details={"format": "pdf", "pages": 3, "ratio": 0.5},
    ),
    audit.AuditEvent(
        action="flowtrace.cross_tenant", ts="2026-01-05T09:02:00.000001Z", actor="ops-bot",
        tenant="st-mary", reason="usage dashboard", details={"note": "Zürich ✓ €"},
    ),
    audit.AuditEvent(
        action="flowtrace.decrypt", ts="2026-01-05T09:03:00.000000Z", actor="dr-house",
        tenant="st-mary", subject="42", resource="diagnosis", reason="treatment",
        details={"field": "diagnosis", "key_id": "k1", "key_version": 2},
    ),
    audit.AuditEvent(
        action="patient.update", outcome="error", ts="2026-01-05T09:04:59.999999Z",
        actor="dr-house", tenant="st-mary", subject="42", resource="patients/42",
    ),
]


def main() -> None:
    key = Ed25519PrivateKey.from_private_bytes(TEST_SEED)
    log_path = HERE / "audit.jsonl"
    for stale in (log_path, HERE / "audit.jsonl.checkpoints"):
        stale.unlink(missing_ok=True)
    # Two writes, of 3 and 2 records: only the last line of each carries the writer
    # signature (the internal commit is used to fix the batch boundaries).
    log = audit.AuditLog(log_path, signing_key=key, checkpoint_every=3, durability="none")
    with log, log._commit_lock:
        log._commit([(e.encode(), Receipt(log._guard)) for e in EVENTS[:3]])
        log._commit([(e.encode(), Receipt(log._guard)) for e in EVENTS[3:]])
    (HERE / "public_key.pem").write_bytes(audit.public_key_pem(key.public_key()))
    report = audit.verify(log_path, public_key=key.public_key())
    proof = audit.inclusion_proof(log_path, 1, public_key=key.public_key())
    (HERE / "inclusion_proof_1.json").write_text(proof.to_json() + "\n")
    expected = {
        "records": report.records,
        "head": report.head,
        "root": report.root,
        "key_id": report.key_id,
        "signed_lines": [i for i, line in enumerate(log_path.read_bytes().splitlines())
                         if b'"writer":' in line],
        "canonical_events": [audit.canonical(e.to_dict()).decode() for e in EVENTS],
    }
    (HERE / "expected.json").write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
