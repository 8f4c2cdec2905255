"""Subject access (DSAR) bundles and the verification pass after an erasure: both read
each registered store's records and look at its restricted fields."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ErasureVerificationError, KeyDestroyedError, TokenError
from ..flowcontext import context
from ._evidence import SubjectEvidence
from ._signing import FORMAT_VERSION, sign
from ._stores import SubjectStore

__all__ = ["subject_report", "verify_erasure"]


def _is_token(enc: Any, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        enc.inspect(value)
    except TokenError:
        return False
    return True


def _aad(store: SubjectStore, record: Mapping[str, Any]) -> Mapping[str, str] | None:
    aad = getattr(store, "aad", None)
    return aad(record) if callable(aad) else None


def subject_report(
    subject: str,
    *,
    tenant: str,
    evidence: SubjectEvidence,
    stores: Sequence[SubjectStore] = (),
    encryptor: Any = None,
    signing_key: Any,
    audit_log: Any = None,
) -> dict[str, Any]:
    """The signed subject-access bundle (docs/spec/privacy.md): recipients, derived
    records and accesses from ``evidence`` (:func:`gather`), and the data of each registered
    store, restricted fields decrypted with ``encryptor`` under purpose ``dsar`` (each
    decrypt appended to ``audit_log`` as ``privacy.dsar.decrypt``).

    Example::

        import os

        from flowtrace import audit, lineage, privacy

        p = lineage.Pseudonymizer(os.urandom(32))
        evidence = privacy.gather("u-1", tenant="acme", pseudonymizer=p)
        key = audit.generate_key()
        bundle = privacy.subject_report("u-1", tenant="acme", evidence=evidence,
                                        signing_key=key)
        privacy.verify_signed(bundle, public_key=key.public_key())
    """
    from ..audit import AuditEvent

    data = []
    with context(tenant=tenant, subject=subject, purpose="dsar"):
        for store in stores:
            records = []
            for record in store.fetch(subject, tenant):
                out = dict(record)
                for name in store.restricted:
                    value = out.get(name)
                    if encryptor is None or not _is_token(encryptor, value):
                        continue
                    try:
                        out[name] = encryptor.decrypt(
                            value, field=name, context=_aad(store, record), reason="dsar"
                        )
                        status = "decrypted"
                    except KeyDestroyedError:
                        out[name] = None
                        status = "shredded"
                    if audit_log is not None:
                        audit_log.append(AuditEvent(
                            action="privacy.dsar.decrypt", tenant=tenant, subject=subject,
                            resource=f"{store.name}#{name}", purpose="dsar",
                            details={"status": status},
                        ))
                records.append(out)
            data.append({"store": store.name, "records": records})
    registered = {s.name for s in stores}
    bundle = {
        "flowtrace_privacy": FORMAT_VERSION,
        "kind": "subject_access",
        "created_at": time.time(),
        **evidence.to_dict(),
        "data": data,
        "not_fetched": sorted(set(evidence.nodes) - registered),
    }
    signed = sign(bundle, signing_key)
    if audit_log is not None:
        audit_log.append(AuditEvent(
            action="privacy.dsar.bundle", tenant=tenant, subject=subject, purpose="dsar",
            details={"signature": signed["signature"]["value"]},
        ))
    return signed


def verify_erasure(
    subject: str,
    *,
    tenant: str,
    stores: Sequence[SubjectStore],
    encryptor: Any,
    tokens: Sequence[str | tuple[str, str]] = (),
) -> dict[str, Any]:
    """The verification pass: no registered store returns plaintext of the subject's
    restricted fields (records left must hold only shredded ciphertext), and each of the
    subject's old ``tokens`` (``token`` or ``(token, field)``) raises ``KeyDestroyedError``.
    Returns a report; raises :class:`~flowtrace.errors.ErasureVerificationError` listing
    every finding.

    Example::

        from flowtrace import privacy
        from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider

        enc = FieldEncryptor(KeyVault(LocalKeyProvider.generate("kek"), kek_id="kek"))
        report = privacy.verify_erasure("u-1", tenant="acme", stores=[], encryptor=enc)
        assert report["findings"] == []
    """
    findings: list[str] = []
    checked = {"stores": 0, "records": 0, "tokens": 0}
    with context(tenant=tenant, subject=subject, purpose="erasure-verification"):
        for store in stores:
            checked["stores"] += 1
            for record in store.fetch(subject, tenant):
                checked["records"] += 1
                for name in store.restricted:
                    value = record.get(name)
                    if value is None:
                        continue
                    if not _is_token(encryptor, value):
                        findings.append(f"{store.name}: field {name!r} holds plaintext")
                        continue
                    if _readable(encryptor, value, name, _aad(store, record)):
                        findings.append(f"{store.name}: field {name!r} still decrypts")
        for item in tokens:
            field_name: str | None = item[1] if isinstance(item, tuple) else None
            token = item[0] if isinstance(item, tuple) else item
            checked["tokens"] += 1
            if _readable(encryptor, token, field_name, None):
                findings.append(f"token {token[:16]}... still decrypts")
    report = {"tenant": tenant, "checked": checked, "findings": findings}
    if findings:
        raise ErasureVerificationError(
            f"{len(findings)} finding(s) after erasure: " + "; ".join(findings)
            + " — run the missing deletion hooks or shred the remaining keys",
            findings=findings,
        )
    return report


def _readable(enc: Any, token: str, field: str | None, aad: Mapping[str, str] | None) -> bool:
    """True when ``token`` still yields plaintext; only ``KeyDestroyedError`` counts as gone.

    Without the field, a probe field is used: the key is looked up before the field is
    checked, so a live key shows as a wrong-field error (counted as readable).
    """
    try:
        enc.decrypt(token, field=field or "erasure-probe", context=aad,
                    reason="erasure-verification")
    except KeyDestroyedError:
        return False
    except Exception:
        if field is None:
            return True
        raise
    return True
