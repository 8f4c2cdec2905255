"""Shared by the three services of the example: settings from the environment, the
classification schema, and the OTel wiring (real OTLP/HTTP exporter, loopback receiver)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

import flowtrace as ft
from flowtrace import audit
from flowtrace import map as ftmap
from flowtrace.classify import Schema

RUN = os.environ["MAP_EXAMPLE_RUN"]  # unique suffix: queue and table names
RUN_DIR = Path(os.environ["MAP_EXAMPLE_DIR"])
RABBITMQ = ("127.0.0.1", 5672)
PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
DB_NAME = "test"

SCHEMA = Schema.from_dict({"email": "confidential:pii", "card": "restricted:pci"})


def orders_queue(region: str) -> str:
    return f"orders-{region}-{RUN}"


def marketing_queue() -> str:
    return f"marketing-{RUN}"


def table() -> str:
    return f"orders_{RUN.replace('-', '_')}"


def configure(service: str, region: str) -> trace.Tracer:
    """Spans to the OTLP/HTTP endpoint in OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; refusals
    to this service's audit log; residency rules and regions from the declared map."""
    ft.configure(
        service=service,
        region=region,
        span_exporters=[OTLPSpanExporter()],
        audit_log=audit.AuditLog(RUN_DIR / f"audit-{service}.jsonl"),
    )
    ftmap.configure_residency(
        declared=ftmap.load_declared(RUN_DIR / "declared.toml"),
        # a queue the service's configuration places in the eu, that nobody declared
        destinations={f"rabbitmq/{marketing_queue()}": "eu"},
    )
    # SIGTERM -> normal exit, so the tracer provider flushes its last spans at exit
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    provider: Any = ft.settings().tracer_provider
    return provider.get_tracer(f"example.{service}")


def ready(detail: str = "") -> None:
    print(f"READY {detail}".strip(), flush=True)
