"""Web middleware against real servers: FastAPI on uvicorn, Flask on werkzeug, loopback."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import uvicorn
from fastapi import FastAPI, Request
from flask import Flask
from flask import request as flask_request
from opentelemetry import trace
from werkzeug.serving import make_server

import flowtrace as ft
from flowtrace import audit
from flowtrace.integrations import asgi, wsgi
from flowtrace.integrations.web import Refusal, claims
from flowtrace.logging import ContextProcessor
from flowtrace.testing import Capture

KEY = b"test-signing-key-for-bearer-tokens"
TENANTS = [f"tenant-{i}" for i in range(20)]
CONCURRENT = 200


def token(tenant: str, user: str) -> str:
    mac = hmac.new(KEY, f"{tenant}.{user}".encode(), hashlib.sha256).hexdigest()
    return f"{tenant}.{user}.{mac}"


def verified(authorization: str | None) -> dict[str, str] | None:
    """The app's own auth: claims only from a token whose MAC verifies."""
    if not authorization or not authorization.startswith("Bearer "):
        return None
    tenant, user, mac = authorization[7:].split(".")
    good = hmac.new(KEY, f"{tenant}.{user}".encode(), hashlib.sha256).hexdigest()
    return {"tenant": tenant, "sub": user} if hmac.compare_digest(mac, good) else None


# --- the apps ------------------------------------------------------------------------------


def _logger(out: io.StringIO) -> Any:
    return structlog.wrap_logger(
        structlog.PrintLogger(out),
        processors=[ContextProcessor(), structlog.processors.JSONRenderer()],
    )


def fastapi_app(out: io.StringIO, lifespan_seen: list[str]) -> Any:
    log = _logger(out)

    async def lifespan(app: FastAPI) -> Any:
        lifespan_seen.append("startup")
        yield
        lifespan_seen.append("shutdown")

    api = FastAPI(lifespan=lifespan)

    @api.get("/whoami")
    async def whoami(request: Request) -> dict[str, str]:
        expect = request.headers["x-expect"]
        await asyncio.sleep(random.random() / 200)  # interleave requests
        trace.get_current_span().set_attribute("test.expect", expect)
        log.info("served", expect=expect)
        return {"tenant": ft.require_tenant(), "expect": expect}

    inner = asgi.FlowtraceMiddleware(api, resolve=claims(), purpose="support")

    async def auth(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            raw = headers.get(b"authorization")
            found = verified(raw.decode() if raw else None)
            if found is not None:
                scope["flowtrace.claims"] = found
        await inner(scope, receive, send)

    return auth


def flask_app(out: io.StringIO) -> Any:
    log = _logger(out)
    app = Flask(__name__)

    @app.get("/whoami")
    def whoami() -> dict[str, str]:
        expect = flask_request.headers["x-expect"]
        time.sleep(random.random() / 200)
        trace.get_current_span().set_attribute("test.expect", expect)
        log.info("served", expect=expect)
        return {"tenant": ft.require_tenant(), "expect": expect}

    inner = wsgi.FlowtraceMiddleware(app.wsgi_app, resolve=claims(), purpose="support")

    def auth(environ: dict[str, Any], start_response: Any) -> Any:
        found = verified(environ.get("HTTP_AUTHORIZATION"))
        if found is not None:
            environ["flowtrace.claims"] = found
        return inner(environ, start_response)

    app.wsgi_app = auth  # type: ignore[method-assign]
    return app


# --- servers on loopback -------------------------------------------------------------------


@pytest.fixture
def uvicorn_server() -> Iterator[tuple[str, io.StringIO, list[str]]]:
    out: io.StringIO = io.StringIO()
    lifespan_seen: list[str] = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        fastapi_app(out, lifespan_seen), lifespan="on", log_level="warning", backlog=512
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", out, lifespan_seen
    server.should_exit = True
    thread.join(10)
    sock.close()
    assert lifespan_seen == ["startup", "shutdown"]  # lifespan passed through


@pytest.fixture
def werkzeug_server() -> Iterator[tuple[str, io.StringIO]]:
    out = io.StringIO()
    server = make_server("127.0.0.1", 0, flask_app(out), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", out
    server.shutdown()
    thread.join(10)


@pytest.fixture
def capture() -> Iterator[Capture]:
    with Capture() as installed:
        yield installed


# --- concurrent load -----------------------------------------------------------------------


async def _load(base: str) -> list[tuple[str, httpx.Response]]:
    limits = httpx.Limits(max_connections=CONCURRENT)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def one(i: int) -> tuple[str, httpx.Response]:
            tenant = random.choice(TENANTS)
            expect = f"{tenant}#{i}"
            headers = {"authorization": f"Bearer {token(tenant, f'u{i}')}", "x-expect": expect}
            return expect, await client.get("/whoami", headers=headers)

        return await asyncio.gather(*(one(i) for i in range(CONCURRENT)))


def _assert_no_crossings(
    results: list[tuple[str, httpx.Response]], capture: Capture, out: io.StringIO
) -> None:
    for expect, response in results:
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["tenant"], body["expect"]) == (expect.split("#")[0], expect)
    spans = capture.spans("http.server")
    assert len(spans) == CONCURRENT
    for span in spans:
        attributes = dict(span.attributes or {})
        assert attributes["flowtrace.tenant"] == str(attributes["test.expect"]).split("#")[0]
        assert attributes["flowtrace.purpose"] == "support"
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == CONCURRENT
    by_expect = {str(dict(s.attributes or {})["test.expect"]): s for s in spans}
    for line in lines:
        assert line["tenant"] == line["expect"].split("#")[0]
        assert line["purpose"] == "support"
        span_context = by_expect[line["expect"]].get_span_context()
        assert line["span_id"] == format(span_context.span_id, "016x")


def test_fastapi_on_uvicorn_200_concurrent_no_crossings(
    uvicorn_server: tuple[str, io.StringIO, list[str]], capture: Capture
) -> None:
    """200 concurrent requests, random tenants: responses, spans and log lines all agree."""
    base, out, _ = uvicorn_server
    _assert_no_crossings(asyncio.run(_load(base)), capture, out)


def test_flask_on_werkzeug_200_concurrent_no_crossings(
    werkzeug_server: tuple[str, io.StringIO], capture: Capture
) -> None:
    """The same under a threaded WSGI server: one thread per request, no crossings."""
    base, out = werkzeug_server
    _assert_no_crossings(asyncio.run(_load(base)), capture, out)


# --- the attacker --------------------------------------------------------------------------


def _attack(base: str) -> tuple[httpx.Response, httpx.Response]:
    """A valid token for tenant-1, a baggage header claiming tenant-2; then no token at all."""
    with httpx.Client(base_url=base) as client:
        spoofed = client.get(
            "/whoami",
            headers={
                "authorization": f"Bearer {token('tenant-1', 'mallory')}",
                "baggage": "flowtrace.tenant=tenant-2",
                "x-expect": "tenant-2",
            },
        )
        anonymous = client.get(
            "/whoami", headers={"baggage": "flowtrace.tenant=tenant-2", "x-expect": "tenant-2"}
        )
    return spoofed, anonymous


@pytest.mark.parametrize("server", ["uvicorn_server", "werkzeug_server"])
def test_spoofed_tenant_header_is_refused_and_audited(
    server: str, request: pytest.FixtureRequest, capture: Capture, tmp_path: Path
) -> None:
    """Header tenant != verified claim -> 403 problem+json, span event, audit record;
    no verified claim at all -> the same, recorded as request_refused. The app never runs."""
    base, out = request.getfixturevalue(server)[:2]
    path = tmp_path / "audit.jsonl"
    with audit.AuditLog(path) as log:
        ft.configure(audit_log=log)
        spoofed, anonymous = _attack(base)
    for response in (spoofed, anonymous):
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json() == {"type": "about:blank", "title": "Forbidden", "status": 403}
        assert "tenant" not in response.text
    assert out.getvalue() == ""  # the app never ran
    records = list(audit.query(path))
    assert [(r.action, r.outcome) for r in records] == [
        ("flowtrace.tenant_mismatch", "denied"),
        ("flowtrace.request_refused", "denied"),
    ]
    assert records[0].tenant == "tenant-1"
    events = [e.name for s in capture.spans() for e in s.events]
    assert "flowtrace.tenant_mismatch" in events
    assert "flowtrace.request_refused" in events


# --- protocol details (direct ASGI/WSGI calls) ---------------------------------------------


def test_websocket_without_tenant_is_closed_before_accept() -> None:
    """A tenant-less websocket never reaches the app: closed with 1008 (policy violation)."""
    called: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(True)

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    middleware = asgi.FlowtraceMiddleware(app, resolve=claims())
    asyncio.run(middleware({"type": "websocket", "path": "/ws", "headers": []}, receive, send))
    assert (called, sent) == ([], [{"type": "websocket.close", "code": 1008}])


def test_websocket_with_tenant_runs_in_context() -> None:
    """A verified websocket session runs the app in its tenant."""
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(ft.require_tenant())

    async def noop(*args: Any) -> Any:
        return {"type": "websocket.connect"}

    scope = {"type": "websocket", "path": "/ws", "headers": [], "flowtrace.claims": {"tenant": "a"}}
    asyncio.run(asgi.FlowtraceMiddleware(app, resolve=claims())(scope, noop, noop))
    assert seen == ["a"]


def test_app_errors_are_not_turned_into_refusals() -> None:
    """A MissingTenantError raised by the app itself (after the door) propagates: a 500, not
    a 403 that would hide a bug."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise ft.MissingTenantError("the app's own bug")

    async def noop(*args: Any) -> Any:
        return {}

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [],
             "flowtrace.claims": {"tenant": "a"}}
    with pytest.raises(ft.MissingTenantError, match="own bug"):
        asyncio.run(asgi.FlowtraceMiddleware(app, resolve=claims())(scope, noop, noop))


def test_configurable_refusal_response() -> None:
    """refusal= decides status, headers and body (e.g. 401 for a missing claim)."""

    def app(environ: Any, start_response: Any) -> Any:
        raise AssertionError("must not run")

    def refusal(error: ft.FlowtraceError) -> Refusal:
        return Refusal(401, [("www-authenticate", "Bearer")], b"")

    statuses: list[Any] = []
    wrapped = wsgi.FlowtraceMiddleware(app, resolve=claims(), refusal=refusal)
    body = wrapped({"REQUEST_METHOD": "GET"}, lambda *a: statuses.append(a))
    assert statuses == [("401 Unauthorized", [("www-authenticate", "Bearer")])]
    assert list(body) == [b""]


def test_streamed_wsgi_body_is_produced_in_the_request_context() -> None:
    """A generator body is iterated by the server after the app returned: still in context."""

    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [])
        for _ in range(3):
            yield ft.require_tenant().encode()

    wrapped = wsgi.FlowtraceMiddleware(app, resolve=claims())
    body = wrapped({"flowtrace.claims": {"tenant": "acme"}}, lambda *a: None)
    assert ft.current().tenant is None  # nothing leaked into the server's thread
    assert b"".join(body) == b"acmeacmeacme"


def test_claims_rejects_unknown_fields() -> None:
    """A typo in the claim mapping is a ConfigError at start-up, not a silent None."""
    with pytest.raises(ft.ConfigError, match="tennant"):
        claims(fields={"tennant": "org"})
