"""The consumer process of tests/test_aio_pika.py: consume, record, dead-letter, export spans.

Usage: python _aio_pika_consumer.py URL QUEUE DLQ OTLP_ENDPOINT TOTAL OUT MODE
(MODE: ``callback`` for queue.consume, ``iterator`` for queue.iterator()).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from typing import Any

import aio_pika
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

import flowtrace as ft
from flowtrace.integrations import aio_pika as ft_aio_pika


async def main(url: str, queue_name: str, dlq: str, endpoint: str, total: int, out_path: str,
               mode: str) -> None:
    settings = ft.configure(service="consumer", span_exporters=[OTLPSpanExporter(endpoint)])
    seen = 0
    done = asyncio.Event()

    def tick() -> None:
        nonlocal seen
        seen += 1
        if seen >= total:
            done.set()

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=64)
        queue = await channel.get_queue(queue_name)
        dead = ft_aio_pika.dead_letter_to(channel.default_exchange, dlq)
        with open(out_path, "w") as out:

            async def refused(message: Any) -> None:
                await dead(message)
                tick()

            @ft.consumer("orders.consume", on_missing=refused)
            async def on_message(message: Any) -> None:
                ctx = ft.current()  # before anything else: what the message runs in
                line: dict[str, Any] = {"tenant": ctx.tenant, "body": message.body.hex()}
                await asyncio.sleep(random.random() / 500)  # let other messages interleave
                line["tenant_after_await"] = ft.current().tenant
                expected = json.loads(message.body)
                trace.get_current_span().set_attribute("test.id", expected["id"])
                line.update(expected=expected["tenant"], id=expected["id"])
                out.write(json.dumps(line) + "\n")
                await message.ack()
                tick()

            if mode == "callback":
                await queue.consume(on_message)
                await asyncio.wait_for(done.wait(), 120)
            else:
                async with queue.iterator() as messages:
                    async for message in messages:
                        await on_message(message)
                        if done.is_set():
                            break
    assert settings.tracer_provider is not None
    settings.tracer_provider.force_flush(30_000)


if __name__ == "__main__":
    url, queue, dlq, endpoint, total, out, mode = sys.argv[1:]
    asyncio.run(main(url, queue, dlq, endpoint, int(total), out, mode))
