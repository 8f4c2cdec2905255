"""The residency guard's public face: a policy from the declared map, and the guard.

The policy and the check live below every sender, in :mod:`flowtrace.propagation`'s
internal interface (so ``inject``, the key vault and the producer helpers can call it);
this module re-exports them and adds what needs the declared map: its ``[regions]`` rules
and every declared node's region become the policy. A refusal is a ``residency_violation``
flow event: the audit observer records it in ``configure(audit_log=...)`` (action
``flowtrace.residency_violation``, outcome ``denied``), and when the policy names its own
audit log, :func:`_record_refusal` records it there too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .. import _settings
from ..flowcontext import FlowEvent, add_observer
from ..propagation import (
    RESIDENCY_VIOLATION,
    ResidencyPolicy,
    guard_destination,
    make_policy,
    residency_policy,
)
from ._declared import DeclaredMap

__all__ = [
    "RESIDENCY_ACTION",
    "ResidencyPolicy",
    "configure_residency",
    "guard_destination",
    "residency_policy",
]

RESIDENCY_ACTION: Final = "flowtrace." + RESIDENCY_VIOLATION
"""Audit action (and span event name) of a refused send.

Example::

    import flowtrace as ft
    from flowtrace import audit
    from flowtrace import map as ftmap

    log = audit.AuditLog("audit.jsonl")
    ftmap.configure_residency(rules={"eu": ["eu"]}, destinations={"psp-us": "us"},
                              audit_log=log)
    with ft.context(tenant="acme", region="eu"):
        try:
            ftmap.guard_destination("psp-us")
        except ft.errors.ResidencyViolationError:
            pass
    log.close()
    (refusal,) = [e for e in audit.query("audit.jsonl") if e.action == ftmap.RESIDENCY_ACTION]
    assert (refusal.outcome, refusal.resource) == ("denied", "psp-us")
    ftmap.configure_residency()                      # back to no policy
"""


def policy_from(
    declared: DeclaredMap | None = None,
    *,
    rules: Mapping[str, list[str] | frozenset[str] | tuple[str, ...]] | None = None,
    destinations: Mapping[str, str] | None = None,
    audit_log: Any = None,
    origin: str = "configure_residency",
) -> ResidencyPolicy:
    """The policy of ``declared`` (its ``[regions]`` rules and node regions), with
    ``rules`` and ``destinations`` added or overriding."""
    merged_rules: dict[str, Any] = dict(declared.regions) if declared else {}
    merged_dest: dict[str, Any] = (
        {k: v.region for k, v in declared.nodes.items() if v.region} if declared else {}
    )
    merged_rules.update(rules or {})
    merged_dest.update(destinations or {})
    return make_policy(merged_rules, merged_dest, audit_log, origin=origin)


def configure_residency(
    *,
    declared: DeclaredMap | None = None,
    rules: Mapping[str, list[str] | frozenset[str] | tuple[str, ...]] | None = None,
    destinations: Mapping[str, str] | None = None,
    audit_log: Any = None,
) -> ResidencyPolicy:
    """Set the process-wide residency policy (the same as ``configure(residency=...)``).

    ``declared`` contributes its ``[regions]`` rules and every declared node's region;
    ``rules`` (``{"eu": ["eu"]}``) and ``destinations`` (``{"rabbitmq/orders-us": "us"}``)
    add to or override them. ``audit_log`` records refusals in addition to
    ``configure(audit_log=...)``. Calling it again replaces the policy; with no
    arguments it removes it.

    Example::

        from flowtrace.map import configure_residency

        policy = configure_residency(rules={"eu": ["eu"]}, destinations={"s3/eu": "eu"})
        assert policy.region_of("s3/eu") == "eu"
        configure_residency()                         # no policy: nothing is refused
    """
    policy = policy_from(declared, rules=rules, destinations=destinations, audit_log=audit_log)
    empty = not (policy.rules or policy.destinations or policy.audit_log is not None)
    if policy.audit_log is not None:
        add_observer(_record_refusal)  # idempotent
    _settings.update(residency=None if empty else policy)
    return policy


def _record_refusal(event: FlowEvent) -> None:
    """Record a refusal in the policy's own audit log (when it is not the configured one)."""
    if event.kind != RESIDENCY_VIOLATION:
        return
    log = residency_policy().audit_log
    if log is None:
        return
    if log is _settings.settings().audit_log:
        return  # the audit observer records it there already
    from ..audit import event_for

    log.append(event_for(event))
