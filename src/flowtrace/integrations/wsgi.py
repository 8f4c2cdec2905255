"""WSGI middleware (Flask, any WSGI app): every request in its flow context.

::

    app.wsgi_app = FlowtraceMiddleware(app.wsgi_app, resolve=claims(), purpose="billing")

Wrap the app *inside* your authentication middleware, which places the claims it verified
in the environ. The environ is the carrier (``HTTP_TRACEPARENT``, ``HTTP_BAGGAGE``); the
context is resolved from ``resolve(environ)`` under :func:`flowtrace.handler`, and stays
entered while the server iterates the response body (streamed bodies included). No
third-party import.

Refusals never reach the app: the client gets ``refusal(error)`` (403 problem+json by
default) and each is recorded (see :mod:`flowtrace.integrations.web`).

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

import flowtrace as ft
from flowtrace.errors import ContextError

from .web import Refusal, Resolve, problem_response, record_refusal

__all__ = ["FlowtraceMiddleware"]

Environ = MutableMapping[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

_CARRIER_KEYS = (
    ("HTTP_TRACEPARENT", "traceparent"),
    ("HTTP_TRACESTATE", "tracestate"),
    ("HTTP_BAGGAGE", "baggage"),
)


def _carrier(environ: Environ) -> dict[str, str]:
    return {name: environ[key] for key, name in _CARRIER_KEYS if key in environ}


class _Body:
    """The response iterable: the first chunk already produced, the rest in context."""

    def __init__(self, first: list[bytes], rest: Iterator[bytes]) -> None:
        self._first = first
        self._rest = rest

    def __iter__(self) -> Iterator[bytes]:
        yield from self._first
        yield from self._rest

    def close(self) -> None:
        close = getattr(self._rest, "close", None)
        if close is not None:
            close()


class FlowtraceMiddleware:
    """Resolve each request's flow context from trusted claims; refuse what must be refused.

    Args:
        app: the WSGI application.
        resolve: called with the environ; returns flow-context fields (e.g.
            :func:`~flowtrace.integrations.web.claims`). A missing tenant is refused.
        purpose: a constant purpose for every request (a resolved one wins).
        refusal: builds the response for a refused request
            (default :func:`~flowtrace.integrations.web.problem_response`).
        name: the SERVER span's name.

    Example::

        from wsgiref.util import setup_testing_defaults

        import flowtrace as ft
        from flowtrace.integrations.web import claims
        from flowtrace.integrations.wsgi import FlowtraceMiddleware

        def app(environ, start_response):
            start_response("200 OK", [("content-type", "text/plain")])
            return [ft.require_tenant().encode()]

        wrapped = FlowtraceMiddleware(app, resolve=claims())
        environ = {"flowtrace.claims": {"tenant": "acme"}}   # placed by your verified auth
        setup_testing_defaults(environ)
        statuses = []
        body = b"".join(wrapped(environ, lambda status, headers: statuses.append(status)))
        assert (statuses, body) == (["200 OK"], b"acme")
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        resolve: Resolve,
        purpose: str | None = None,
        refusal: Callable[[ContextError], Refusal] = problem_response,
        name: str = "http.server",
    ) -> None:
        self.app = app
        self.refusal = refusal
        self.name = name

        def resolved(environ: Environ, start_response: Any, started: list[bool]) -> Any:
            fields = dict(resolve(environ))
            if purpose is not None and fields.get("purpose") is None:
                fields["purpose"] = purpose
            return fields

        # A generator: the decorator enters the context (and span) around each resumption,
        # so the app's body is produced in the request's context, not the server's.
        @ft.handler(
            name,
            resolve=resolved,
            carrier=lambda environ, start_response, started: _carrier(environ),
        )
        def run(environ: Environ, start_response: StartResponse, started: list[bool]) -> Any:
            started.append(True)
            result = app(environ, start_response)
            try:
                yield b""  # marks "the app was called": start_response has run
                yield from result
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

        self._run = run

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Serve one request (refusals answered here, the app never called)."""
        started: list[bool] = []
        body = self._run(environ, start_response, started)
        try:
            next(body)  # runs the resolution, the checks and the app call
        except ContextError as error:
            if started:
                raise
            return self._refuse(error, environ, start_response)
        return _Body([], body)

    def _refuse(
        self, error: ContextError, environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        record_refusal(
            self.name,
            error,
            environ.get("REQUEST_METHOD", ""),
            environ.get("PATH_INFO", ""),
            _carrier(environ),
        )
        refusal = self.refusal(error)
        reason = _REASONS.get(refusal.status, "Refused")
        start_response(f"{refusal.status} {reason}", refusal.headers)
        return [refusal.body]


_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}
