"""The residency guard: refuse, before any byte leaves, data sent where its region forbids.

Destinations carry a region (from the declared map or given here); the flow context's
``region`` says where the data may live; the declared map's ``[regions]`` rules say which
destination regions each data region may reach. A send that breaks the rule raises
:class:`~flowtrace.errors.ResidencyViolationError` and is recorded in the audit trail
(action ``flowtrace.residency_violation``, outcome ``denied``).

Fail closed: when the data's region has a rule and the destination's region is unknown,
the send is refused too (an unknown destination cannot be proven to be allowed).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from opentelemetry import trace

from ..errors import ConfigError, ResidencyViolationError
from . import _names as n
from ._declared import DeclaredMap

__all__ = [
    "RESIDENCY_ACTION",
    "ResidencyPolicy",
    "configure_residency",
    "guard_destination",
    "residency_policy",
]

RESIDENCY_ACTION: Final = "flowtrace.residency_violation"
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

_log = logging.getLogger("flowtrace.map")


@dataclass(frozen=True)
class ResidencyPolicy:
    """Which destination regions each data region may reach, and where destinations are.

    Built by :func:`configure_residency`; read the one in force with
    :func:`residency_policy`.

    Example::

        from flowtrace import map as ftmap

        policy = ftmap.ResidencyPolicy(
            rules={"eu": frozenset({"eu"})}, destinations={"rabbitmq/orders-us": "us"}
        )
        assert policy.region_of("rabbitmq/orders-us") == "us"
        assert policy.region_of("postgresql/shop") is None
    """

    rules: Mapping[str, frozenset[str]] = field(default_factory=dict)
    destinations: Mapping[str, str] = field(default_factory=dict)
    audit_log: Any = None
    """Audit log for refusals (``None``: the one given to ``flowtrace.configure``)."""

    def region_of(self, destination: str) -> str | None:
        return self.destinations.get(destination)


_lock = threading.Lock()
_policy = ResidencyPolicy()


def residency_policy() -> ResidencyPolicy:
    """The policy in force.

    Example::

        from flowtrace import map as ftmap

        ftmap.configure_residency(rules={"eu": ["eu"]})
        assert ftmap.residency_policy().rules == {"eu": frozenset({"eu"})}
        ftmap.configure_residency()                  # back to no policy
        assert ftmap.residency_policy().rules == {}
    """
    return _policy


def configure_residency(
    *,
    declared: DeclaredMap | None = None,
    rules: Mapping[str, list[str] | frozenset[str] | tuple[str, ...]] | None = None,
    destinations: Mapping[str, str] | None = None,
    audit_log: Any = None,
) -> ResidencyPolicy:
    """Set the process-wide residency policy.

    ``declared`` contributes its ``[regions]`` rules and every declared node's region;
    ``rules`` (``{"eu": ["eu"]}``) and ``destinations`` (``{"rabbitmq/orders-us": "us"}``)
    add to or override them. Calling it again replaces the policy.

    Example::

        from flowtrace import map as ftmap

        declared = ftmap.parse_declared({
            "version": 1,
            "regions": {"eu": {"may_flow_to": ["eu"]}},
            "services": [{"name": "shop", "region": "eu"}],
            "queues": [{"name": "rabbitmq/orders", "region": "eu"}],
        })
        policy = ftmap.configure_residency(
            declared=declared, destinations={"rabbitmq/orders-us": "us"}
        )
        assert policy.region_of("rabbitmq/orders") == "eu"
        assert policy.region_of("rabbitmq/orders-us") == "us"
        ftmap.configure_residency()                  # back to no policy
    """
    global _policy
    merged_rules: dict[str, frozenset[str]] = dict(declared.regions) if declared else {}
    merged_dest: dict[str, str] = (
        {k: v.region for k, v in declared.nodes.items() if v.region} if declared else {}
    )
    for region, allowed in (rules or {}).items():
        if isinstance(allowed, str) or not all(isinstance(a, str) for a in allowed):
            raise ConfigError(
                f"configure_residency(rules=...): rules[{region!r}] must be a list of regions"
            )
        merged_rules[region] = frozenset(allowed)
    for name, region in (destinations or {}).items():
        if not isinstance(region, str) or not region:
            raise ConfigError(
                f"configure_residency(destinations=...): {name!r} needs a region string"
            )
        merged_dest[name] = region
    if audit_log is not None and not callable(getattr(audit_log, "append", None)):
        raise ConfigError("configure_residency(audit_log=...) must be a flowtrace.audit.AuditLog")
    policy = ResidencyPolicy(merged_rules, merged_dest, audit_log)
    with _lock:
        _policy = policy
    return policy


def _audit(policy: ResidencyPolicy, destination: str, data_region: str, where: str | None) -> None:
    log = policy.audit_log
    if log is None:
        import flowtrace

        log = flowtrace.settings().audit_log
    if log is None:
        _log.warning("residency violation to %s refused; no audit log configured", destination)
        return
    from ..audit import AuditEvent

    # The refusal itself must be on record: an audit failure propagates (fail closed).
    log.append(
        AuditEvent.from_context(
            RESIDENCY_ACTION,
            outcome="denied",
            resource=destination,
            region=data_region,
            reason=f"{data_region} data may not reach region {where or 'unknown'}",
            details={"destination_region": where or "unknown", "data_region": data_region},
        )
    )


def guard_destination(
    destination: str, *, region: str | None = None, data_region: str | None = None
) -> str | None:
    """Check that the current flow's data may be sent to ``destination``; call it before
    sending. Returns the destination's region (also stamped on the current span as
    ``flowtrace.destination.region``).

    ``destination`` is the map's node name (``rabbitmq/orders``, ``postgresql/shop``,
    ``payments-psp``); ``region`` overrides its configured region; ``data_region``
    overrides the flow context's region. Raises
    :class:`~flowtrace.errors.ResidencyViolationError` (after recording it in the audit
    trail) when the rule of the data's region does not allow the destination's region,
    or when that region is unknown.

    Example::

        import flowtrace as ft
        from flowtrace import map as ftmap
        from flowtrace.errors import ResidencyViolationError

        ftmap.configure_residency(
            rules={"eu": ["eu"]},
            destinations={"rabbitmq/orders": "eu", "rabbitmq/orders-us": "us"},
        )
        with ft.context(tenant="acme", region="eu"):
            assert ftmap.guard_destination("rabbitmq/orders") == "eu"
            try:
                ftmap.guard_destination("rabbitmq/orders-us")    # nothing is sent
            except ResidencyViolationError as exc:
                print(exc)
        ftmap.configure_residency()                  # back to no policy
    """
    import flowtrace

    policy = _policy
    where = region or policy.region_of(destination)
    data = data_region or flowtrace.current().region
    span = trace.get_current_span()
    if data is not None and data in policy.rules:
        allowed = policy.rules[data]
        if where is None or where not in allowed:
            if span.is_recording():
                span.set_attribute(n.REFUSED, True)
                span.add_event(
                    RESIDENCY_ACTION,
                    {
                        "destination": destination,
                        "destination_region": where or "unknown",
                        "data_region": data,
                    },
                )
            _audit(policy, destination, data, where)
            raise ResidencyViolationError(
                f"refused to send {data} data to {destination} (region {where or 'unknown'}): "
                f"{data} data may only reach {', '.join(sorted(allowed)) or 'nowhere'}. "
                + (
                    "Declare the destination's region in the declared map or "
                    "configure_residency(destinations=...)."
                    if where is None
                    else "Send it to a destination in an allowed region."
                )
            )
    if where is not None and span.is_recording():
        span.set_attribute(n.DESTINATION_REGION, where)
    return where


def _reset() -> None:
    """Back to no policy (used by tests)."""
    global _policy
    with _lock:
        _policy = ResidencyPolicy()
