"""ASGI middleware (Starlette, FastAPI, any ASGI 3 app): every request in its flow context.

::

    app = FlowtraceMiddleware(app, resolve=claims(), purpose="billing")

Place it *inside* your authentication middleware (Starlette runs the last-added
middleware first), so the claims it verified are in the scope when this one runs. Each
HTTP request and websocket session runs under :func:`flowtrace.handler`: the context is
resolved from ``resolve(scope)``, the request's headers are the (untrusted) carrier, and
the app runs in a SERVER span continuing the caller's trace. ``lifespan`` and any other
scope type pass through untouched. No third-party import: ASGI is a protocol.

Refusals (no tenant, a header tenant that differs from the verified one, malformed
propagation headers, an invalid claim) never reach the app: HTTP gets ``refusal(error)``
(403 problem+json by default), a websocket is closed with code 1008 before it is
accepted; each is recorded (see :mod:`flowtrace.integrations.web`).

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import flowtrace as ft
from flowtrace.errors import ContextError

from .web import Refusal, Resolve, problem_response, record_refusal

__all__ = ["FlowtraceMiddleware"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_CARRIER_HEADERS = {
    b"traceparent": "traceparent",
    b"tracestate": "tracestate",
    b"baggage": "baggage",
}


def _carrier(scope: Scope) -> dict[str, str]:
    carrier: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = _CARRIER_HEADERS.get(raw_name.lower())
        if name is not None:
            value = raw_value.decode("latin-1")
            # Repeated baggage headers are one list (RFC 9110 field combination).
            carrier[name] = f"{carrier[name]},{value}" if name in carrier else value
    return carrier


class FlowtraceMiddleware:
    """Resolve each request's flow context from trusted claims; refuse what must be refused.

    Args:
        app: the ASGI application.
        resolve: called with the ASGI scope; returns flow-context fields (e.g.
            :func:`~flowtrace.integrations.web.claims`). A missing tenant is refused.
        purpose: a constant purpose for every request (a resolved one wins).
        refusal: builds the HTTP response for a refused request
            (default :func:`~flowtrace.integrations.web.problem_response`).
        name: the SERVER span's name.

    Example::

        import asyncio

        import httpx

        from flowtrace.integrations.asgi import FlowtraceMiddleware
        from flowtrace.integrations.web import claims

        async def app(scope, receive, send):
            import flowtrace as ft
            body = ft.require_tenant().encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})

        async def auth(scope, receive, send):      # stands in for your verified auth
            scope["flowtrace.claims"] = {"tenant": "acme", "sub": "u-1"}
            await FlowtraceMiddleware(app, resolve=claims())(scope, receive, send)

        async def main():
            transport = httpx.ASGITransport(app=auth)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (await client.get("/")).text == "acme"
                spoofed = await client.get("/", headers={"baggage": "flowtrace.tenant=globex"})
                assert spoofed.status_code == 403

        asyncio.run(main())
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        resolve: Resolve,
        purpose: str | None = None,
        refusal: Callable[[ContextError], Refusal] = problem_response,
        name: str = "http.server",
    ) -> None:
        self.app = app
        self.refusal = refusal
        self.name = name

        def resolved(scope: Scope, receive: Any, send: Any, started: list[bool]) -> Any:
            fields = dict(resolve(scope))
            if purpose is not None and fields.get("purpose") is None:
                fields["purpose"] = purpose
            return fields

        @ft.handler(
            name,
            resolve=resolved,
            carrier=lambda scope, receive, send, started: _carrier(scope),
        )
        async def run(scope: Scope, receive: Receive, send: Send, started: list[bool]) -> None:
            started.append(True)
            await app(scope, receive, send)

        self._run = run

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run one connection; lifespan and unknown scope types pass straight through."""
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        started: list[bool] = []
        try:
            await self._run(scope, receive, send, started)
        except ContextError as error:
            if started:  # raised by the app itself, not a refusal at the door
                raise
            await self._refuse(error, scope, send)

    async def _refuse(self, error: ContextError, scope: Scope, send: Send) -> None:
        method = scope.get("method", "WEBSOCKET")
        record_refusal(self.name, error, method, scope.get("path", ""), _carrier(scope))
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        refusal = self.refusal(error)
        await send(
            {
                "type": "http.response.start",
                "status": refusal.status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in refusal.headers],
            }
        )
        await send({"type": "http.response.body", "body": refusal.body})
