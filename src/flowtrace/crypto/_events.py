"""The ``decrypt`` and ``shred`` events FieldEncryptor and KeyVault report.

Attribute names (stable; documented in docs/encryption.md, "Audit events")::

    decrypt:  actor, tenant, subject, field, key_id, key_version, reason, outcome,
              error, cache
    shred:    actor, tenant, subject, scope, key_id, key_count, destroyed_at, reason,
              outcome, error

``outcome`` is ``"ok"`` or ``"error"``; ``error`` is the exception class name on failure.
Plaintext and tokens are never attributes.
"""

from __future__ import annotations

from ..flowcontext import EventKind, current, listening, notify

__all__ = ["report_decrypt"]


def report_decrypt(
    *,
    tenant: str | None,
    subject: str | None,
    field: str,
    key_id: bytes | None,
    key_version: int | None,
    reason: str | None,
    error: BaseException | None,
    cache_hit: bool | None,
    known_listening: bool = False,
) -> None:
    """Report one decrypt (success or failure) to every observer.

    ``known_listening=True``: the caller has just checked ``flowtrace.flowcontext.listening()``.
    """
    if not known_listening and not listening():  # nobody would act on it
        return
    ctx = current()
    notify(
        EventKind.DECRYPT,
        {
            "actor": ctx.user,
            "tenant": tenant,
            "subject": subject if subject is not None else ctx.subject,
            "field": field,
            "key_id": key_id.hex() if key_id is not None else None,
            "key_version": key_version,
            "reason": reason,
            "outcome": "ok" if error is None else "error",
            "error": type(error).__name__ if error is not None else None,
            "cache": None if cache_hit is None else ("hit" if cache_hit else "miss"),
        },
        ctx,
    )
