"""Erasure as a plan built from evidence, executed step by step and resumable.

Order matters: the subject's keys are shredded first, so every copy that holds only
ciphertext (event stores, replicas, backups) is unreadable before any deletion hook runs
— an erasure that is interrupted after step one has already removed the data's meaning.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..crypto import RetryPolicy
from ..errors import ErasureError
from ._evidence import SubjectEvidence, pseudonym_of
from ._signing import FORMAT_VERSION, sign
from ._state import load_state, save_state
from ._stores import SubjectStore

__all__ = ["ErasureStep", "erase", "plan_erasure"]

SHRED = "shred"


@dataclass(frozen=True)
class ErasureStep:
    """One step of an erasure plan: ``shred``, ``delete`` (a registered hook), ``manual``
    (a store the evidence names but no hook covers) or ``recompute`` (a derived record).

    Example::

        from flowtrace.privacy import ErasureStep

        step = ErasureStep("manual:s3/exports", "manual", "s3/exports", ("6a8b10fb...",))
        assert step.to_dict()["action"] == "manual"
    """

    id: str
    action: str
    target: str
    evidence: tuple[str, ...] = ()
    """Sample trace ids (or lineage identifiers) that put the subject's data there."""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "action": self.action, "target": self.target,
                "evidence": list(self.evidence)}


def plan_erasure(
    stores: Sequence[SubjectStore], evidence: SubjectEvidence | None = None
) -> list[ErasureStep]:
    """The steps, in order: shred, every registered store's hook, then manual tasks for
    the stores the evidence names without a hook, then derived records to recompute.

    Example::

        from flowtrace import privacy

        class Cache:
            name, restricted = "redis/cache", ()
            def fetch(self, subject, tenant): return []
            def delete(self, subject, tenant): pass

        steps = privacy.plan_erasure([Cache()])
        assert [s.id for s in steps] == ["shred", "delete:redis/cache"]
    """
    steps = [ErasureStep(SHRED, SHRED, "key vault")]
    hooked = set()
    for store in stores:
        hooked.add(store.name)
        seen = evidence.nodes.get(store.name) if evidence else None
        steps.append(ErasureStep(f"delete:{store.name}", "delete", store.name,
                                 tuple(seen.traces) if seen else ()))
    if evidence is not None:
        for name in sorted(evidence.nodes):
            # Lineage datasets are covered by the recompute tasks below.
            if name not in hooked and evidence.nodes[name].kind != "dataset":
                node = evidence.nodes[name]
                steps.append(ErasureStep(f"manual:{name}", "manual", name, tuple(node.traces)))
        for identifier in evidence.derived:
            dataset = identifier.split("#", 1)[0]
            if dataset not in hooked:
                steps.append(ErasureStep(f"recompute:{identifier}", "recompute", identifier,
                                         (identifier,)))
    return steps


def _attempt(run: Callable[[], Any], step: ErasureStep, retry: RetryPolicy) -> Any:
    # The schedule is crypto's RetryPolicy (one retry policy in the package); the loop is
    # ours because any error of a hook is worth retrying, not only a KMS outage.
    attempts = retry.attempts
    for attempt in range(1, attempts + 1):
        try:
            return run()
        except NotImplementedError:
            raise  # a hook that cannot delete: a manual task, not a failure to retry
        except Exception as exc:
            if attempt == attempts:
                raise ErasureError(
                    f"erasure step {step.id} failed {attempts} times: {exc!r}; fix the cause "
                    "and run the same erasure again (it resumes at this step)"
                ) from exc
            delay = min(retry.max_delay, retry.base_delay * 2 ** (attempt - 1))
            retry.sleep(random.uniform(0, delay))
    raise AssertionError("unreachable")


def erase(
    subject: str,
    *,
    tenant: str,
    vault: Any,
    stores: Sequence[SubjectStore] = (),
    evidence: SubjectEvidence | None = None,
    state_file: str | Path,
    signing_key: Any,
    audit_log: Any = None,
    reason: str | None = None,
    pseudonymizer: Any = None,
    retry: RetryPolicy | None = None,
    progress: Callable[[ErasureStep, str], None] | None = None,
) -> dict[str, Any]:
    """Erase ``subject`` in ``tenant``; returns the signed receipt (docs/spec/privacy.md).

    Runs :func:`plan_erasure`: shreds the subject's keys in ``vault`` (a
    :class:`~flowtrace.crypto.KeyVault`), calls each store's ``delete`` (retried per
    ``retry``, a :class:`~flowtrace.crypto.RetryPolicy`; default 3 attempts), lists
    manual and recompute tasks. After each step the ``state_file`` is rewritten
    atomically; running the same erasure again skips the steps it records as done. Each
    step is appended to ``audit_log`` (action ``privacy.erasure.step``, subject = the
    pseudonym). Raises
    :class:`~flowtrace.errors.ErasureError` when a step keeps failing.

    Example::

        import os

        from flowtrace import audit, lineage, privacy
        from flowtrace.crypto import KeyVault, LocalKeyProvider

        vault = KeyVault(LocalKeyProvider.generate("kek"), kek_id="kek")
        key = audit.generate_key()
        receipt = privacy.erase("u-1", tenant="acme", vault=vault, state_file="u-1.json",
                                signing_key=key,
                                pseudonymizer=lineage.Pseudonymizer(os.urandom(32)))
        privacy.verify_signed(receipt, public_key=key.public_key())
        assert receipt["steps"][0]["id"] == "shred"
    """
    from ..audit import AuditEvent

    pseudonym = evidence.pseudonym if evidence else pseudonym_of(subject, tenant, pseudonymizer)
    path = Path(state_file)
    state = load_state(path, tenant, pseudonym)
    state.setdefault("started_at", time.time())
    done: dict[str, Any] = state["steps"]
    by_name = {store.name: store for store in stores}
    plan = plan_erasure(stores, evidence)
    results = []
    for step in plan:
        if step.id in done:
            results.append(done[step.id])
            if progress:
                progress(step, "skipped (done before)")
            continue
        if progress:
            progress(step, "running")
        outcome = _run(step, subject, tenant, pseudonym, vault, by_name, reason,
                       retry or RetryPolicy())
        record = {**step.to_dict(), **outcome, "finished_at": time.time()}
        if audit_log is not None:
            audit_log.append(AuditEvent(
                action="privacy.erasure.step", tenant=tenant, subject=pseudonym,
                resource=step.target, purpose="erasure", reason=reason,
                details={"step": step.id, "status": outcome["status"]},
            ))
        done[step.id] = record
        save_state(path, state)
        results.append(record)
        if progress:
            progress(step, outcome["status"])
    receipt = {
        "flowtrace_privacy": FORMAT_VERSION,
        "kind": "erasure_receipt",
        "tenant": tenant,
        "subject_pseudonym": pseudonym,
        "reason": reason,
        "started_at": state["started_at"],
        "finished_at": time.time(),
        "evidence_sources": list(evidence.sources) if evidence else [],
        "steps": results,
        "summary": _summary(results),
    }
    signed = sign(receipt, signing_key)
    if audit_log is not None:
        audit_log.append(AuditEvent(
            action="privacy.erasure.receipt", tenant=tenant, subject=pseudonym,
            purpose="erasure", reason=reason,
            details={"signature": signed["signature"]["value"], **receipt["summary"]},
        ))
    return signed


def _summary(results: Iterable[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in results:
        out[r["status"]] = out.get(r["status"], 0) + 1
    return out


def _run(
    step: ErasureStep, subject: str, tenant: str, pseudonym: str, vault: Any,
    stores: dict[str, SubjectStore], reason: str | None, retry: RetryPolicy,
) -> dict[str, Any]:
    if step.action == SHRED:
        shred = _attempt(lambda: vault.shred(tenant=tenant, subject=subject, reason=reason),
                         step, retry)
        detail = shred.to_dict()
        detail["subject"] = pseudonym  # the receipt never names the person
        for key in detail["keys"]:
            key["subject"] = pseudonym
        return {"status": "shredded", "shred_receipt": detail}
    if step.action == "delete":
        store = stores[step.target]
        try:
            _attempt(lambda: store.delete(subject, tenant), step, retry)
        except NotImplementedError:
            return {"status": "manual", "why": "the store's hook cannot delete"}
        return {"status": "deleted"}
    if step.action == "manual":
        return {"status": "manual",
                "why": "the evidence shows the subject's data here and no hook is registered"}
    return {"status": "recompute",
            "why": "derived from the subject's data (lineage); recompute or delete it"}
