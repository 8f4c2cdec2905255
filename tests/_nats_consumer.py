"""The consumer process of tests/test_nats.py: a JetStream pull consumer.

Usage: python _nats_consumer.py URL SUBJECT DEAD_SUBJECT DURABLE OTLP_ENDPOINT TOTAL OUT
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import nats
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

import flowtrace as ft
from flowtrace.integrations import nats as ft_nats


async def main(url: str, subject: str, dead: str, durable: str, endpoint: str, total: int,
               out_path: str) -> None:
    settings = ft.configure(service="worker", span_exporters=[OTLPSpanExporter(endpoint)])
    nc = await nats.connect(url)
    js = nc.jetstream()
    subscription = await js.pull_subscribe(subject, durable=durable)
    refuse = ft_nats.dead_letter_to(js, dead)
    seen = 0

    async def refused(msg: Any) -> None:
        nonlocal seen
        await refuse(msg)
        seen += 1

    with open(out_path, "w") as out:

        @ft.consumer("orders.consume", on_missing=refused)
        async def on_message(msg: Any) -> None:
            nonlocal seen
            tenant = ft.current().tenant
            expected = json.loads(msg.data)
            trace.get_current_span().set_attribute("test.id", expected["id"])
            out.write(json.dumps({"tenant": tenant, **expected}) + "\n")
            await msg.ack()
            seen += 1

        deadline = time.monotonic() + 120
        while seen < total and time.monotonic() < deadline:
            try:
                batch = await subscription.fetch(100, timeout=2)
            except nats.errors.TimeoutError:
                continue
            for msg in batch:  # one context per message
                await on_message(msg)
    await nc.drain()
    assert settings.tracer_provider is not None
    settings.tracer_provider.force_flush(30_000)
    sys.exit(0 if seen == total else 3)


if __name__ == "__main__":
    url, subject, dead, durable, endpoint, total, out = sys.argv[1:]
    asyncio.run(main(url, subject, dead, durable, endpoint, int(total), out))
