"""Decorator overhead: @flowtrace.handler / @flowtrace.consumer vs an undecorated call.

Target (issue 2): with tracing NOT configured (OTel's default proxy provider), a decorated
call adds <= 1.5 us over the undecorated call. For information, with tracing configured:
a decorated call vs the same function inside a bare OTel ``start_as_current_span``.

Medians of ``timeit.repeat``; the machine is shared, so read the differences and ratios.
"""

from __future__ import annotations

import platform
import timeit
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

import flowtrace as ft
from flowtrace._otel_instrument import active_tracer
from flowtrace.otel import FlowContextSpanProcessor

NUMBER = 20_000
REPEAT = 15


def median_us(func: Callable[[], Any], number: int = NUMBER) -> float:
    times = sorted(timeit.repeat(func, number=number, repeat=REPEAT))
    return times[len(times) // 2] / number * 1e6


class Message:
    __slots__ = ("body", "headers")

    def __init__(self, body: bytes, headers: dict[str, str]) -> None:
        self.body = body
        self.headers = headers


def work(request: dict[str, str]) -> int:
    return len(request)


def consume(message: Message) -> int:
    return len(message.body)


def main() -> None:
    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    assert active_tracer() is None, "tracing must not be configured for the first part"
    request = {"tenant": "acme", "sub": "u-1"}
    with ft.context(tenant="acme", user="u-1", purpose="billing"):
        headers = ft.inject({})
    message = Message(b"{}", headers)

    handler_const = ft.handler(tenant="acme", user="u-1", purpose="billing")(work)
    handler_resolved = ft.handler(
        tenant=lambda r: r["tenant"], user=lambda r: r["sub"], purpose="billing"
    )(work)
    consumer = ft.consumer(consume)

    def extract_only() -> Any:
        return ft.extract(headers)

    rows: list[tuple[str, float, float]] = []
    base = median_us(lambda: work(request))
    rows.append(("handler, constant fields", median_us(lambda: handler_const(request)), base))
    rows.append(("handler, 2 resolvers", median_us(lambda: handler_resolved(request)), base))
    base_c = median_us(lambda: consume(message))
    consumer_t = median_us(lambda: consumer(message))
    rows.append(("consumer (3-field headers)", consumer_t, base_c))
    extract_t = median_us(extract_only)

    print("\n## tracing not configured (target: added <= 1.5 us)")
    print(f"{'case':34} {'undecorated':>12} {'decorated':>10} {'added':>8}  target")
    for name, decorated, undecorated in rows:
        added = decorated - undecorated
        verdict = "met" if added <= 1.5 else "MISSED"
        print(f"{name:34} {undecorated:10.3f}us {decorated:8.3f}us {added:6.3f}us  {verdict}")
    print(f"  (of which ft.extract of the headers alone: {extract_t:.3f} us)")

    provider = TracerProvider()
    provider.add_span_processor(FlowContextSpanProcessor())
    ft.configure(tracer_provider=provider)
    tracer = provider.get_tracer("bench")

    def bare_span() -> int:
        with tracer.start_as_current_span("work"):
            return work(request)

    traced = median_us(lambda: handler_resolved(request), number=NUMBER // 4)
    bare = median_us(bare_span, number=NUMBER // 4)
    traced_c = median_us(lambda: consumer(message), number=NUMBER // 4)
    print("\n## tracing configured (SDK provider, stamping processor, no exporter) - information")
    print(f"bare OTel start_as_current_span: {bare:.3f} us")
    print(f"@handler (2 resolvers):          {traced:.3f} us  ratio {traced / bare:.2f}x")
    print(f"@consumer (extract + link):      {traced_c:.3f} us  ratio {traced_c / bare:.2f}x")


if __name__ == "__main__":
    main()
