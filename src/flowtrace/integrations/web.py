"""What the ASGI and WSGI middlewares share: trusted resolvers, refusals, their record.

A web request's flow context comes from what the application's own authentication
*verified* (claims it placed in the ASGI scope or the WSGI environ), never from headers a
client wrote. Headers are only the carrier: ``traceparent`` continues the caller's trace,
and a tenant in ``baggage`` that differs from the verified one is refused
(:class:`~flowtrace.errors.TenantMismatchError`).

A refused request gets a :class:`Refusal` (403 ``application/problem+json`` by default, no
internal detail), a ``flowtrace.request_refused`` span event and an audit record (action
``flowtrace.request_refused``, outcome ``denied``) when ``configure(audit_log=...)`` is set.
A tenant mismatch is recorded as ``flowtrace.tenant_mismatch`` instead (the decorator
reports it), so each refusal is recorded exactly once.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, Final, NamedTuple

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanKind, Status, StatusCode

from flowtrace.errors import ConfigError, ContextError, TenantMismatchError
from flowtrace.flowcontext import FIELDS, notify
from flowtrace.otel import get_tracer
from flowtrace.propagation import remote_parent

__all__ = [
    "REQUEST_REFUSED",
    "Refusal",
    "Resolve",
    "claims",
    "problem_response",
]

REQUEST_REFUSED: Final = "request_refused"
"""Flow event kind (span event ``flowtrace.request_refused``) of a refused web request.

Example::

    from flowtrace.integrations.web import REQUEST_REFUSED

    assert REQUEST_REFUSED == "request_refused"
"""

Resolve = Callable[[MutableMapping[str, Any]], Mapping[str, "str | None"]]
"""A trusted resolver: receives the ASGI scope or WSGI environ, returns flow-context fields.

Example::

    from flowtrace.integrations.web import Resolve

    def from_gateway(environ) -> dict[str, str | None]:   # a Resolve: your verified claims
        claims = environ["flowtrace.claims"]
        return {"tenant": claims["org"], "user": claims.get("sub")}

    resolve: Resolve = from_gateway
    assert resolve({"flowtrace.claims": {"org": "acme"}}) == {"tenant": "acme", "user": None}
"""


class Refusal(NamedTuple):
    """The HTTP response sent for a refused request.

    Example::

        from flowtrace.integrations.web import Refusal

        refusal = Refusal(401, [("content-type", "text/plain")], b"no")
        assert refusal.status == 401
    """

    status: int
    headers: list[tuple[str, str]]
    body: bytes


_PROBLEM: Final = json.dumps(
    {"type": "about:blank", "title": "Forbidden", "status": 403}, separators=(",", ":")
).encode()


def problem_response(error: ContextError) -> Refusal:
    """The default refusal: 403 with an RFC 9457 problem body that says nothing internal.

    The error (which names tenants and resolvers) is never sent to the client; it is on the
    span and in the audit record.

    Example::

        import flowtrace as ft
        from flowtrace.integrations.web import problem_response

        refusal = problem_response(ft.MissingTenantError("no tenant claim"))
        assert refusal.status == 403 and b"tenant" not in refusal.body
    """
    return Refusal(
        403,
        [("content-type", "application/problem+json"), ("content-length", str(len(_PROBLEM)))],
        _PROBLEM,
    )


def claims(
    key: str = "flowtrace.claims", fields: Mapping[str, str] | None = None
) -> Resolve:
    """A resolver reading verified claims your auth placed at ``scope[key]`` / ``environ[key]``.

    ``fields`` maps flow-context fields to claim names (default ``tenant`` -> ``"tenant"``,
    ``user`` -> ``"sub"``). A missing mapping or claim resolves to ``None`` (and a missing
    tenant is refused). Place the claims *after* verifying the credentials; nothing a
    client sends should be able to put them there.

    Example::

        from flowtrace.integrations.web import claims

        resolve = claims(fields={"tenant": "org", "user": "sub", "purpose": "scope"})
        environ = {"flowtrace.claims": {"org": "acme", "sub": "u-1", "scope": "billing"}}
        assert resolve(environ) == {"tenant": "acme", "user": "u-1", "purpose": "billing"}
    """
    mapping = dict(fields) if fields is not None else {"tenant": "tenant", "user": "sub"}
    for field in mapping:
        if field not in FIELDS:
            raise ConfigError(
                f"claims(fields=...): {field!r} is not a flow-context field; use one of "
                f"{', '.join(FIELDS)}"
            )

    def resolve(request: MutableMapping[str, Any]) -> Mapping[str, str | None]:
        verified = request.get(key)
        if not isinstance(verified, Mapping):
            return dict.fromkeys(mapping)
        return {field: verified.get(claim) for field, claim in mapping.items()}

    return resolve


def record_refusal(
    name: str, error: ContextError, method: str, path: str, carrier: Mapping[str, str]
) -> None:
    """Span event + audit record for a refused request (the mismatch already has both)."""
    if isinstance(error, TenantMismatchError):
        return
    remote = remote_parent(carrier)
    parent = trace.set_span_in_context(NonRecordingSpan(remote)) if remote is not None else None
    span = get_tracer().start_span(name, context=parent, kind=SpanKind.SERVER)
    try:
        span.set_attribute("http.request.method", method)
        span.set_attribute("url.path", path)
        span.set_attribute("http.response.status_code", 403)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        with trace.use_span(span):
            notify(
                REQUEST_REFUSED,
                {
                    "reason": type(error).__name__,
                    "resource": f"{method} {path}",
                    "outcome": "denied",
                },
            )
    finally:
        span.end()
