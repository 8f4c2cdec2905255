"""Demo step: the data-flow map from evidence, checked against a declaration, as a report.

Three services (an EU orders API, an EU billing worker, a US analytics job) write their
spans to a JSON-lines file; the map is built from that file, checked against an embedded
declared map, rendered as one HTML file, and asked the regulator's question: which
systems process EU personal data, and does any of it leave the EU?
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Tracer

import flowtrace as ft
from flowtrace import audit
from flowtrace import map as ftmap
from flowtrace.errors import ResidencyViolationError
from flowtrace.otel import FlowContextSpanProcessor, JsonLinesSpanExporter

DECLARED = """\
version = 1
[regions.eu]
may_flow_to = ["eu"]
[regions.us]
may_flow_to = ["us", "eu"]
[encryption]
at_rest = ["pci"]

[[services]]
name = "orders-api"
region = "eu"
[[services]]
name = "billing-worker"
region = "eu"
[[services]]
name = "analytics-job"
region = "us"
[[queues]]
name = "rabbitmq/orders"
region = "eu"
[[stores]]
name = "postgresql/shop"
region = "eu"
[[stores]]
name = "s3/analytics-us"
region = "us"
[[processors]]
name = "payments-psp"
region = "eu"
dpa = "DPA-2025-014"

[[flows]]
from = "orders-api"
to = "rabbitmq/orders"
categories = ["pii", "pci"]
purposes = ["checkout"]
legal_bases = ["contract"]
[[flows]]
from = "rabbitmq/orders"
to = "billing-worker"
categories = ["pii", "pci"]
purposes = ["checkout"]
legal_bases = ["contract"]
[[flows]]
from = "billing-worker"
to = "postgresql/shop"
categories = ["pii", "pci"]
purposes = ["checkout"]
legal_bases = ["contract"]
[[flows]]
from = "billing-worker"
to = "payments-psp"
categories = ["pci"]
purposes = ["checkout"]
legal_bases = ["contract"]
"""

QUEUE = {"messaging.system": "rabbitmq", "messaging.destination.name": "orders"}
SHOP = {"db.system": "postgresql", "db.namespace": "shop"}
PSP = {
    "http.request.method": "POST",
    "server.address": "psp.example",
    "peer.service": "payments-psp",
}
ANALYTICS = {"db.system": "s3", "db.namespace": "analytics-us"}


def _tracer(service: str, region: str, exporter: JsonLinesSpanExporter) -> Tracer:
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "flowtrace.service.region": region})
    )
    provider.add_span_processor(FlowContextSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("flowtrace.demo")


def _span(tracer: Tracer, name: str, kind: SpanKind, attrs: dict[str, Any], **data: Any) -> None:
    with tracer.start_as_current_span(name, kind=kind, attributes=attrs):
        ftmap.record_data(**data)


def _record(out: Path) -> Path:
    spans_file = out / "map-spans.jsonl"
    spans_file.unlink(missing_ok=True)
    exporter = JsonLinesSpanExporter(spans_file)
    api = _tracer("orders-api", "eu", exporter)
    worker = _tracer("billing-worker", "eu", exporter)
    analytics = _tracer("analytics-job", "us", exporter)
    order = {"categories": ["pii", "pci"], "encrypted": ["pci"]}
    for tenant in ("acme", "globex", "initech"):
        with ft.context(tenant=tenant, purpose="checkout", legal_basis="contract", region="eu"):
            _span(api, "orders publish", SpanKind.PRODUCER, QUEUE, **order)
            _span(worker, "orders process", SpanKind.CONSUMER, QUEUE, **order)
            _span(worker, "INSERT orders", SpanKind.CLIENT, SHOP, **order)
            _span(
                worker, "POST /charges", SpanKind.CLIENT, PSP, categories=["pci"], encrypted=["pci"]
            )
    # a nightly export nobody declared copies EU customers' emails to a US bucket
    with ft.context(tenant="acme", purpose="analytics", region="eu"):
        _span(analytics, "PUT customers.csv", SpanKind.CLIENT, ANALYTICS, categories=["pii"])
    exporter.shutdown()
    return spans_file


def run(out: Path, say: Callable[[str], None]) -> None:
    """Record, build, check, render; answer the residency question; show the guard."""
    spans_file = _record(out)
    declared_file = out / "map-declared.toml"
    declared_file.write_text(DECLARED, encoding="utf-8")
    declared = ftmap.load_declared(declared_file)
    observed = ftmap.build([spans_file])
    declared.apply_regions(observed)
    report = ftmap.check(observed, declared)
    html = out / "map-report.html"
    html.write_text(
        ftmap.render(observed, "html", findings=report.findings, declared=declared),
        encoding="utf-8",
    )
    say(
        f"observed map: {observed.spans} spans -> {len(observed.nodes)} systems, "
        f"{len(observed.flows)} flows (from {spans_file.name})"
    )
    say("which systems process EU personal data, and does any of it leave the EU?")
    answer = ftmap.region_answer(observed, "eu", declared)
    for line in answer.lines():
        say(f"  {line}")
    assert answer.leaves, "the demo's US export must be found"
    say(f"map check against {declared_file.name}: {len(report.failing)} failing finding(s)")
    for finding in report.failing:
        say(
            f"  {finding.rule}: {finding.source} -> {finding.destination} "
            f"(trace {finding.trace_ids[0] if finding.trace_ids else '?'})"
        )
    assert {f.rule for f in report.failing} >= {"undeclared-flow", "residency"}

    # From now on the guard refuses the export before any byte leaves, and audits it.
    log_path = out / "map-audit.jsonl"
    log_path.unlink(missing_ok=True)
    with audit.AuditLog(log_path, durability="none") as log:
        ftmap.configure_residency(declared=declared, audit_log=log)
        try:
            with ft.context(tenant="acme", purpose="analytics", region="eu"):
                ftmap.guard_destination("s3/analytics-us")
            raise AssertionError("the residency guard let EU data go to the US")
        except ResidencyViolationError as exc:
            say(f"residency guard: {exc}")
        finally:
            ftmap.configure_residency()
    [refusal] = audit.query(log_path, action=ftmap.RESIDENCY_ACTION)
    say(f"audited: {refusal.action} outcome={refusal.outcome} resource={refusal.resource}")
    say(f"report (one offline HTML file): {html}")
