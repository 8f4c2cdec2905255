"""A tamper-evident audit trail: record, answer "who read patient 42?", catch tampering.

Runs offline in a temporary directory and asserts every claim it prints.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import flowtrace as ft
from flowtrace import audit
from flowtrace.errors import ForgedRecordError, RecordModifiedError, TruncationError


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="flowtrace-audit-"))
    path = workdir / "audit.jsonl"
    key = audit.generate_key()  # in production: audit.load_private_key("/run/secrets/...")

    # 1. Record accesses; who/whose/why come from the flow context.
    log = audit.AuditLog(path, signing_key=key, checkpoint_every=10)
    ft.configure(service="ehr", audit_log=log)  # flow events are audited automatically
    with ft.context(tenant="st-mary", user="dr-house", subject="42", purpose="treatment"):
        log.append("patient.read", resource="patients/42", data_categories=["health"])
    with ft.context(tenant="st-mary", user="intern-7", subject="42"):
        log.append("patient.export", resource="patients/42", outcome="denied",
                   reason="not on care team", details={"requested_by": "intern7@example.org"})
    for i in range(20):
        with ft.context(tenant="st-mary", user="nurse-1", subject=str(100 + i)):
            log.append("patient.read", resource=f"patients/{100 + i}")
    with ft.context(tenant="st-mary", user="ops-bot"), ft.cross_tenant(reason="usage report"):
        pass  # this privileged scope lands in the audit log by itself
    log.close()
    ft.configure(audit_log=None)

    # 2. An auditor verifies with the public key only.
    report = audit.verify(path, public_key=key.public_key())
    assert report.records == 23, report
    print(report)

    # 3. "Who accessed patient 42 in the last six months, and why?"
    answers = list(audit.query(path, subject="42", since="6mo"))
    assert [(e.actor, e.outcome) for e in answers] == [
        ("dr-house", "success"), ("intern-7", "denied")]
    for event in answers:
        print(f"#{event.sequence} {event.actor} {event.action} {event.outcome} "
              f"why={event.reason or event.purpose}")
    assert "intern7@example.org" not in path.read_text()  # details were scrubbed
    automatic = list(audit.query(path, action="flowtrace.cross_tenant"))
    assert automatic[0].reason == "usage report"

    # 4. Tampering is caught, and the error names the record.
    edited = workdir / "edited.jsonl"
    shutil.copy(path.with_name("audit.jsonl.checkpoints"), workdir / "edited.jsonl.checkpoints")
    edited.write_bytes(path.read_bytes().replace(b'"intern-7"', b'"intern-8"'))
    try:
        audit.verify(edited, public_key=key.public_key())
        raise AssertionError("an edited record went unnoticed")
    except RecordModifiedError as exc:
        caught = exc
    assert caught.sequence == 1, caught
    print(f"edit detected: {caught}")
    lines = path.read_bytes().splitlines(keepends=True)
    edited.write_bytes(b"".join(lines[:-3]))  # cut the last three records
    try:
        audit.verify(edited, public_key=key.public_key())
        raise AssertionError("a truncated log went unnoticed")
    except TruncationError as exc:
        print(f"truncation detected: {exc}")

    # 5. A line appended by someone without the key: the next writer refuses to chain
    #    after it, and verify names it.
    forged = workdir / "forged.jsonl"
    forged.write_bytes(path.read_bytes())
    last = json.loads(path.read_bytes().splitlines()[-1])
    body = audit.canonical({"event": {"action": "patient.read", "actor": "nobody"},
                            "prev": last["hash"], "seq": last["record"]["seq"] + 1, "v": 2})
    with open(forged, "ab") as f:  # correctly chained: only the signature is missing
        f.write(b'{"hash":"%s","record":%s}\n' % (hashlib.sha256(body).hexdigest().encode(),
                                                   body))
    try:
        audit.AuditLog(forged, signing_key=key).append("x.y")
        raise AssertionError("a writer chained after a forged line")
    except ForgedRecordError as exc:
        print(f"forged line refused by the writer: record {exc.sequence}")
    try:
        audit.verify(forged, public_key=key.public_key(), allow_unsealed=1)
        raise AssertionError("a forged line went unnoticed")
    except ForgedRecordError as exc:
        reported = exc
    assert reported.sequence == 23, reported
    print(f"verify reports it: {reported}")

    # 6. Hand over one record with an inclusion proof instead of the whole log.
    proof = audit.inclusion_proof(path, 1, public_key=key.public_key())
    event = audit.verify_inclusion(proof.to_json(), public_key=key.public_key())
    assert event["outcome"] == "denied"
    print("inclusion proof for record 1 verified against the signed Merkle root")
    shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
