"""Per-request cost of the web middlewares vs the same app with only OTel's instrumentation.

Baseline: OTel's own ASGI/WSGI middleware (opentelemetry-instrumentation-asgi/-wsgi) around
an app behind a stand-in auth layer. Ours: the same, plus flowtrace's middleware inside it
(context from claims, header check, its SERVER span). Both share one TracerProvider with a
no-op exporter. Requests are driven in-process (no sockets), so the ratio is the
middleware's own cost, not the network's. Goal: ratio <= 1.2.

    python3 dev.py bench web
"""

from __future__ import annotations

import asyncio
import platform
from collections.abc import Sequence
from typing import Any

from _timing import interleaved
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware as OtelASGI
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware as OtelWSGI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import flowtrace as ft
from flowtrace.integrations import asgi, wsgi
from flowtrace.integrations.web import claims


class _Null(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


CLAIMS = {"tenant": "acme", "sub": "u-1"}


async def _asgi_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _asgi_auth(inner: Any) -> Any:
    async def auth(scope: Any, receive: Any, send: Any) -> None:
        scope["flowtrace.claims"] = CLAIMS
        await inner(scope, receive, send)

    return auth


def _wsgi_app(environ: Any, start_response: Any) -> Any:
    start_response("200 OK", [("content-type", "text/plain")])
    return [b"ok"]


def _wsgi_auth(inner: Any) -> Any:
    def auth(environ: Any, start_response: Any) -> Any:
        environ["flowtrace.claims"] = CLAIMS
        return inner(environ, start_response)

    return auth


SCOPE = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
    "scheme": "http", "path": "/orders", "raw_path": b"/orders", "query_string": b"",
    "root_path": "", "headers": [(b"host", b"svc"), (b"user-agent", b"bench")],
    "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
}


def _asgi_driver(app: Any, n: int) -> Any:
    loop = asyncio.new_event_loop()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    async def many() -> None:
        for _ in range(n):
            await app(dict(SCOPE), receive, send)

    return lambda: loop.run_until_complete(many())


def _environ() -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET", "PATH_INFO": "/orders", "QUERY_STRING": "",
        "SERVER_NAME": "svc", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http", "HTTP_HOST": "svc", "REMOTE_ADDR": "127.0.0.1",
    }


def _wsgi_driver(app: Any, n: int) -> Any:
    def many() -> None:
        for _ in range(n):
            body = app(_environ(), lambda status, headers, exc_info=None: None)
            for _chunk in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()

    return many


def main() -> None:
    settings = ft.configure(service="bench", span_exporters=[_Null()])
    provider = settings.tracer_provider
    n, rounds = 200, 15
    print(f"python {platform.python_version()}, {n} requests x {rounds} interleaved rounds")

    base = OtelASGI(_asgi_auth(_asgi_app), tracer_provider=provider)
    ours = OtelASGI(
        _asgi_auth(asgi.FlowtraceMiddleware(_asgi_app, resolve=claims())),
        tracer_provider=provider,
    )
    result = interleaved(_asgi_driver(ours, n), _asgi_driver(base, n), number=1, rounds=rounds)
    print(f"ASGI: OTel only {result.base_us / n:.1f} us/request, with flowtrace "
          f"{result.ours_us / n:.1f} us/request, ratio {result.ratio:.2f}x")

    base_w = OtelWSGI(_wsgi_auth(_wsgi_app), tracer_provider=provider)
    ours_w = OtelWSGI(
        _wsgi_auth(wsgi.FlowtraceMiddleware(_wsgi_app, resolve=claims())),
        tracer_provider=provider,
    )
    result = interleaved(_wsgi_driver(ours_w, n), _wsgi_driver(base_w, n), number=1, rounds=rounds)
    print(f"WSGI: OTel only {result.base_us / n:.1f} us/request, with flowtrace "
          f"{result.ours_us / n:.1f} us/request, ratio {result.ratio:.2f}x")


if __name__ == "__main__":
    main()
