"""Demo step: a signed, hash-chained audit trail that catches edits and truncation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def run(out: Path, say: Callable[[str], None]) -> None:
    """Record accesses, verify as a third party, then prove tampering is caught."""
    import flowtrace as ft
    from flowtrace import audit
    from flowtrace.errors import ForgedRecordError, RecordModifiedError, TruncationError

    path = out / "audit.jsonl"
    for stale in (path, out / "audit.jsonl.checkpoints", out / "audit-public.pem"):
        stale.unlink(missing_ok=True)
    key = audit.generate_key()
    (out / "audit-public.pem").write_bytes(audit.public_key_pem(key.public_key()))
    with audit.AuditLog(path, signing_key=key, checkpoint_every=50) as log:
        previous = ft.settings().audit_log
        ft.configure(audit_log=log)
        try:
            for i in range(200):
                user = "dr-house" if i % 4 else "intern-7"
                with ft.context(tenant="st-mary", user=user, subject=str(40 + i % 5),
                                purpose="treatment"):
                    log.append("patient.read", resource=f"patients/{40 + i % 5}",
                               outcome="success" if i % 4 else "denied")
            with ft.context(tenant="st-mary", user="ops"), ft.cross_tenant(reason="billing run"):
                pass
        finally:
            ft.configure(audit_log=previous)
    report = audit.verify(path, public_key=out / "audit-public.pem")
    if report.records != 201:
        raise AssertionError(f"expected 201 records, verified {report.records}")
    say(f"wrote {report.records} hash-chained records with {report.checkpoints} signed "
        f"checkpoints to {path.name}; verified with the public key alone")
    who = list(audit.query(path, subject="42", since="6mo"))
    say(f"who accessed patient 42 in the last 6 months: {len(who)} records, "
        f"{sum(e.outcome == 'denied' for e in who)} of them denied")
    auto = list(audit.query(path, action="flowtrace.cross_tenant"))
    if len(auto) != 1 or auto[0].reason != "billing run":
        raise AssertionError("the cross_tenant scope was not audited")
    say("the cross_tenant scope was audited automatically, with its reason")
    tampered = out / "audit-tampered.jsonl"
    (out / "audit-tampered.jsonl.checkpoints").write_bytes(
        (out / "audit.jsonl.checkpoints").read_bytes())
    tampered.write_bytes(path.read_bytes().replace(b'"intern-7"', b'"dr-house"', 1))
    try:
        audit.verify(tampered, public_key=key.public_key())
    except RecordModifiedError as exc:
        say(f"an edited record is caught: {type(exc).__name__} at sequence {exc.sequence}")
    else:
        raise AssertionError("tampering went unnoticed")
    tampered.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-10]))
    try:
        audit.verify(tampered, public_key=key.public_key())
    except TruncationError as exc:
        say(f"cutting the last 10 records is caught: {type(exc).__name__} at {exc.sequence}")
    else:
        raise AssertionError("truncation went unnoticed")
    # Someone with write access to the file but no key appends a correctly chained line.
    import hashlib
    import json

    tampered.write_bytes(path.read_bytes())
    last = json.loads(path.read_bytes().splitlines()[-1])
    body = audit.canonical({"event": {"action": "patient.read", "actor": "nobody"},
                            "prev": last["hash"], "seq": last["record"]["seq"] + 1, "v": 2})
    with open(tampered, "ab") as f:
        f.write(b'{"hash":"%s","record":%s}\n' % (hashlib.sha256(body).hexdigest().encode(),
                                                   body))
    try:
        audit.verify(tampered, public_key=key.public_key(), allow_unsealed=1)
    except ForgedRecordError as exc:
        say(f"a line appended without the key is caught: {type(exc).__name__} at "
            f"{exc.sequence} (and no writer chains after it)")
    else:
        raise AssertionError("a forged append went unnoticed")
    say(f"auditor command: flowtrace audit verify {path} --public-key "
        f"{out / 'audit-public.pem'}")
