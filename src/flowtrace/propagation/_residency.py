"""The residency guard: refuse, before any byte leaves, data sent where its region forbids.

It lives here, below the senders (:func:`~flowtrace.propagation.inject`, the crypto key
vault, the map's producer helpers), so each of them can call it; the public names are
:func:`flowtrace.map.guard_destination` and :func:`flowtrace.map.configure_residency`.

The policy is a settings value (``configure(residency=...)``): destinations carry a region,
the flow context's ``region`` says where the data may live, and each data region's rule
says which destination regions it may reach. A send that breaks the rule raises
:class:`~flowtrace.errors.ResidencyViolationError`. The refusal is reported as a
``residency_violation`` flow event, which the audit observer records (action
``flowtrace.residency_violation``, outcome ``denied``) and the span-event observer puts on
the span; an audit log that cannot record it makes the guard raise that error instead
(fail closed either way). Fail closed too when the data's region has a rule and the
destination's region is unknown: an unknown destination cannot be proven allowed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from opentelemetry import trace

from .. import _settings
from ..errors import ConfigError, ResidencyViolationError
from ..flowcontext import current, notify

__all__ = [
    "DESTINATION_REGION",
    "REFUSED",
    "RESIDENCY_VIOLATION",
    "ResidencyPolicy",
    "guard_destination",
    "make_policy",
    "residency_policy",
]

RESIDENCY_VIOLATION: Final = "residency_violation"
"""Flow event kind of a refused send (audit action ``flowtrace.residency_violation``)."""
DESTINATION_REGION: Final = "flowtrace.destination.region"
"""Span attribute: region of the destination (stamped when a send is allowed)."""
REFUSED: Final = "flowtrace.residency.refused"
"""Span attribute: the residency guard refused this send; nothing left."""

_log = logging.getLogger("flowtrace.residency")


@dataclass(frozen=True)
class ResidencyPolicy:
    """Which destination regions each data region may reach, and where destinations are.

    Build it with :func:`flowtrace.map.configure_residency` or
    ``flowtrace.configure(residency=declared_map)``.

    Example::

        from flowtrace.map import ResidencyPolicy

        policy = ResidencyPolicy({"eu": frozenset({"eu"})}, {"rabbitmq/orders-us": "us"})
        assert policy.region_of("rabbitmq/orders-us") == "us"
        assert policy.region_of("https://unknown.example/x") is None
    """

    rules: Mapping[str, frozenset[str]] = field(default_factory=dict)
    destinations: Mapping[str, str] = field(default_factory=dict)
    audit_log: Any = None
    """A second audit log for refusals (``None``: only ``configure(audit_log=...)``)."""

    def region_of(self, destination: str) -> str | None:
        """The destination's region: by its exact name, else (a URL or ``host[:port]``)
        by its host name."""
        region = self.destinations.get(destination)
        if region is None and self.destinations:
            host = _host(destination)
            if host is not None:
                region = self.destinations.get(host)
        return region


def _host(destination: str) -> str | None:
    text = destination.strip()
    try:
        host = urlsplit(text if "://" in text else "//" + text).hostname
    except ValueError:
        return None
    return host.rstrip(".") if host else None


_NO_POLICY: Final = ResidencyPolicy()


def make_policy(
    rules: Mapping[str, Any] | None = None,
    destinations: Mapping[str, Any] | None = None,
    audit_log: Any = None,
    *,
    origin: str = "configure_residency",
) -> ResidencyPolicy:
    """A validated policy; :class:`~flowtrace.errors.ConfigError` names what is wrong."""
    merged_rules: dict[str, frozenset[str]] = {}
    for region, allowed in (rules or {}).items():
        if isinstance(allowed, str | bytes) or not all(isinstance(a, str) for a in allowed):
            raise ConfigError(f"{origin}(rules=...): rules[{region!r}] must be a list of regions")
        merged_rules[region] = frozenset(allowed)
    merged_dest: dict[str, str] = {}
    for name, region in (destinations or {}).items():
        if not isinstance(region, str) or not region:
            raise ConfigError(f"{origin}(destinations=...): {name!r} needs a region string")
        merged_dest[name] = region
    if audit_log is not None and not callable(getattr(audit_log, "append", None)):
        raise ConfigError(f"{origin}(audit_log=...) must be a flowtrace.audit.AuditLog")
    return ResidencyPolicy(merged_rules, merged_dest, audit_log)


def residency_policy() -> ResidencyPolicy:
    """The policy in force (``configure(residency=...)``; an empty one when none is).

    Example::

        from flowtrace.map import residency_policy

        assert residency_policy().rules == {}     # nothing configured: nothing refused
    """
    policy = _settings.settings().residency
    return policy if isinstance(policy, ResidencyPolicy) else _NO_POLICY


def guard_destination(
    destination: str, *, region: str | None = None, data_region: str | None = None
) -> str | None:
    """Check that the current flow's data may be sent to ``destination``; call it before
    sending. Returns the destination's region (also stamped on the current span as
    ``flowtrace.destination.region``).

    ``destination`` is the map's node name (``rabbitmq/orders``, ``postgresql/shop``,
    ``payments-psp``) or a URL/host; ``region`` overrides its configured region;
    ``data_region`` overrides the flow context's region. Raises
    :class:`~flowtrace.errors.ResidencyViolationError` (after reporting a
    ``residency_violation`` flow event, which the audit trail records) when the rule of the
    data's region does not allow the destination's region, or when that region is unknown.

    Example::

        import flowtrace as ft
        from flowtrace.errors import ResidencyViolationError
        from flowtrace.map import configure_residency, guard_destination

        configure_residency(rules={"eu": ["eu"]}, destinations={"rabbitmq/orders-eu": "eu"})
        with ft.context(tenant="acme", region="eu"):
            assert guard_destination("rabbitmq/orders-eu") == "eu"
            try:
                guard_destination("rabbitmq/orders-us", region="us")
            except ResidencyViolationError:
                pass                                  # refused: send nothing
        configure_residency()                         # back to no policy
    """
    policy = residency_policy()
    where = region or policy.region_of(destination)
    data = data_region or current().region
    if data is not None and data in policy.rules:
        allowed = policy.rules[data]
        if where is None or where not in allowed:
            _refuse(policy, destination, data, where, allowed)
    if where is not None:
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute(DESTINATION_REGION, where)
    return where


def _refuse(
    policy: ResidencyPolicy,
    destination: str,
    data: str,
    where: str | None,
    allowed: frozenset[str],
) -> None:
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(REFUSED, True)
    if policy.audit_log is None and _settings.settings().audit_log is None:
        _log.warning("residency violation to %s refused; no audit log configured", destination)
    # The audit observer records this; if it cannot, its error propagates (fail closed).
    notify(
        RESIDENCY_VIOLATION,
        {
            "outcome": "denied",
            "resource": destination,
            "region": data,
            "reason": f"{data} data may not reach region {where or 'unknown'}",
            "destination_region": where or "unknown",
            "data_region": data,
        },
    )
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
