"""The consumer process of tests/test_redis_streams.py: a consumer-group worker.

Usage: python _redis_streams_consumer.py PORT STREAM GROUP DEAD OTLP_ENDPOINT TOTAL OUT
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import redis
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

import flowtrace as ft
from flowtrace.integrations import redis_streams as ft_streams


def main(port: int, stream: str, group: str, dead: str, endpoint: str, total: int,
         out_path: str) -> None:
    settings = ft.configure(service="worker", span_exporters=[OTLPSpanExporter(endpoint)])
    client = redis.Redis(port=port)
    seen = 0
    refuse = ft_streams.dead_letter_to(client, stream, group, dead)

    def refused(entry: Any) -> None:
        nonlocal seen
        refuse(entry)
        seen += 1

    with open(out_path, "w") as out:

        @ft.consumer("orders.consume", on_missing=refused)
        def on_entry(entry: Any) -> None:
            nonlocal seen
            tenant = ft.current().tenant
            expected = json.loads(entry.body)
            trace.get_current_span().set_attribute("test.id", expected["id"])
            out.write(json.dumps({"tenant": tenant, **expected}) + "\n")
            client.xack(stream, group, entry.id)
            seen += 1

        deadline = time.monotonic() + 120
        while seen < total and time.monotonic() < deadline:
            reply = client.xreadgroup(group, "worker-1", {stream: ">"}, count=100, block=1000)
            for entry in ft_streams.entries(reply):  # a batch: one context per entry
                on_entry(entry)
    assert settings.tracer_provider is not None
    settings.tracer_provider.force_flush(30_000)
    sys.exit(0 if seen == total else 3)


if __name__ == "__main__":
    port, stream, group, dead, endpoint, total, out = sys.argv[1:]
    main(int(port), stream, group, dead, endpoint, int(total), out)
