"""A Flask service on a real loopback WSGI server: verified claims in, refusals audited.

Run: python examples/web_service.py   (needs flask; `pip install 'flowtrace-sdk[dev]'`)
"""

from __future__ import annotations

import io
import json
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path

import structlog
from flask import Flask
from werkzeug.serving import make_server

import flowtrace as ft
from flowtrace import audit
from flowtrace.integrations import wsgi
from flowtrace.integrations.web import claims
from flowtrace.logging import ContextProcessor

TOKENS = {"Bearer t-acme": {"tenant": "acme", "sub": "ana"}}  # your IdP, verified

lines = io.StringIO()
log = structlog.wrap_logger(
    structlog.PrintLogger(lines),
    processors=[ContextProcessor(), structlog.processors.JSONRenderer()],
)
app = Flask(__name__)


@app.get("/invoices")
def invoices() -> dict[str, str]:
    log.info("invoices.listed")
    return {"tenant": ft.require_tenant()}


inner = wsgi.FlowtraceMiddleware(app.wsgi_app, resolve=claims(), purpose="billing")


def auth(environ, start_response):  # type: ignore[no-untyped-def]
    found = TOKENS.get(environ.get("HTTP_AUTHORIZATION", ""))
    if found is not None:
        environ["flowtrace.claims"] = found
    return inner(environ, start_response)


app.wsgi_app = auth  # type: ignore[method-assign]


def get(url: str, headers: dict[str, str]) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def main() -> None:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/invoices"
    with tempfile.TemporaryDirectory() as tmp, audit.AuditLog(Path(tmp) / "a.jsonl") as trail:
        ft.configure(audit_log=trail)
        print(get(url, {"Authorization": "Bearer t-acme"}))
        print(get(url, {"Authorization": "Bearer t-acme", "baggage": "flowtrace.tenant=globex"}))
        records = [(r.action, r.outcome) for r in audit.query(Path(tmp) / "a.jsonl")]
    server.shutdown()
    print("log line:", lines.getvalue().strip())
    print("audit:", records)
    assert json.loads(lines.getvalue())["tenant"] == "acme"
    assert records == [("flowtrace.tenant_mismatch", "denied")]


if __name__ == "__main__":
    main()
