"""Automatic audit events: flow events land in ``configure(audit_log=...)``.

Every kind is recorded except those in :data:`NOT_AUDITED`: events an outside client can
cause at will (``baggage_dropped``, one per request carrying junk baggage) would let it
flood the audit trail; they stay span events and counters.

One observer is registered with :func:`flowtrace.add_observer` the first time an
:class:`~flowtrace.audit.AuditLog` is created (it does nothing while no audit log is
configured). It appends and waits for durability in the thread that caused the event;
when the record cannot be written it raises, and the foundation lets that error stop
the action (a cross-tenant scope that cannot be audited is refused).
"""

from __future__ import annotations

from typing import Any, Final

from .._settings import settings
from ..errors import AuditWriteError
from ..flowcontext import EventKind, FlowEvent, add_observer
from ..propagation import BAGGAGE_DROPPED, RESIDENCY_VIOLATION
from ._event import AuditEvent, utc_timestamp

__all__ = ["ACTIONS", "NOT_AUDITED", "event_for", "install", "observe"]

ACTIONS: Final = {
    EventKind.CROSS_TENANT: "flowtrace.cross_tenant",
    EventKind.TENANT_SWITCH: "flowtrace.tenant_switch",
    EventKind.TENANT_MISMATCH: "flowtrace.tenant_mismatch",
    EventKind.MESSAGE_REFUSED: "flowtrace.message_refused",
    EventKind.DECRYPT: "flowtrace.decrypt",
    EventKind.SHRED: "flowtrace.shred",
    EventKind.TXN_TOKEN_REFUSED: "flowtrace.txn_token_refused",
    EventKind.TXN_TOKEN: "flowtrace.txn_token",
}
"""Audit ``action`` recorded for each flow event kind."""

NOT_AUDITED: Final = frozenset({BAGGAGE_DROPPED})
"""Flow event kinds never appended to the audit log (an outside client controls their rate)."""

_DENIED: Final = frozenset(
    {
        EventKind.TENANT_MISMATCH,
        EventKind.MESSAGE_REFUSED,
        EventKind.TXN_TOKEN_REFUSED,
        RESIDENCY_VIOLATION,
    }
)
_OUTCOMES: Final = {"ok": "success", "success": "success", "denied": "denied", "error": "error"}
_FIELDS: Final = ("actor", "tenant", "subject", "reason", "resource", "purpose", "region")


def event_for(flow_event: FlowEvent) -> AuditEvent:
    """The audit event recorded for one flow event.

    Example::

        import flowtrace as ft
        from flowtrace.audit import event_for

        context = ft.FlowContext(tenant="acme")
        event = event_for(ft.FlowEvent("cross_tenant", context, {"reason": "x"}, 0.0))
        assert (event.action, event.tenant) == ("flowtrace.cross_tenant", "acme")
    """
    attributes = dict(flow_event.attributes)
    ctx = flow_event.context
    fields: dict[str, Any] = {
        "actor": ctx.user,
        "tenant": ctx.tenant,
        "subject": ctx.subject,
        "purpose": ctx.purpose,
        "region": ctx.region,
    }
    for name in _FIELDS:
        value = attributes.pop(name, None)
        if value is not None:
            fields[name] = str(value)
    if "resource" not in fields and attributes.get("field") is not None:
        fields["resource"] = str(attributes["field"])
    reported = attributes.pop("outcome", None)
    outcome = _OUTCOMES.get(str(reported)) if reported is not None else None
    if outcome is None:
        if reported is not None:
            attributes["outcome_detail"] = reported
        outcome = "denied" if flow_event.kind in _DENIED else "success"
    fields["outcome"] = outcome
    fields["ts"] = utc_timestamp(flow_event.timestamp)
    fields["details"] = {k: v for k, v in attributes.items() if v is not None}
    action = ACTIONS.get(flow_event.kind, f"flowtrace.{flow_event.kind}")
    return AuditEvent.from_context(action, **fields)


def observe(flow_event: FlowEvent) -> None:
    """Append ``flow_event`` to the configured audit log; raise if it cannot be recorded."""
    log = settings().audit_log
    if log is None or flow_event.kind in NOT_AUDITED:
        return
    append = getattr(log, "append", None)
    if append is None:
        raise AuditWriteError(
            f"configure(audit_log=...) got {type(log).__name__}, which has no append(); "
            "pass a flowtrace.audit.AuditLog"
        )
    append(event_for(flow_event))


def install() -> None:
    """Register :func:`observe` (idempotent)."""
    add_observer(observe)
