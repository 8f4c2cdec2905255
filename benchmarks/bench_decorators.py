"""Decorator overhead: @flowtrace.handler / @flowtrace.consumer vs an undecorated call.

Target (issue 2): with tracing NOT configured (OTel's default proxy provider), a decorated
call adds <= 1.5 us over the undecorated call. For information, with tracing configured:
a decorated call vs the same function inside a bare OTel ``start_as_current_span``.

Timed with ``time.thread_time`` (CPU time of this thread), baseline and decorated runs
interleaved, so time spent preempted by other processes on a shared machine is not counted;
medians reported, minimums alongside. Read the differences and ratios.
"""

from __future__ import annotations

import itertools
import platform
import time
import timeit
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

import flowtrace as ft
from flowtrace.decorators._instrument import active_tracer
from flowtrace.otel import FlowContextSpanProcessor

NUMBER = 20_000
REPEAT = 21


def median_us(func: Callable[[], Any], number: int = NUMBER) -> float:
    times = sorted(timeit.repeat(func, number=number, repeat=REPEAT, timer=time.thread_time))
    return times[len(times) // 2] / number * 1e6


def _timeit(func: Callable[[], Any], number: int) -> float:
    return timeit.Timer(func, timer=time.thread_time).timeit(number) / number * 1e6


def paired_us(
    base: Callable[[], Any], ours: Callable[[], Any], number: int = NUMBER
) -> tuple[float, float, float, float]:
    """Interleave baseline and ours (so load spikes hit both); medians and minimums."""
    b_times, o_times = [], []
    for _ in range(REPEAT):
        b_times.append(_timeit(base, number))
        o_times.append(_timeit(ours, number))
    b_times.sort()
    o_times.sort()
    mid = REPEAT // 2
    return b_times[mid], o_times[mid], b_times[0], o_times[0]


class Message:
    __slots__ = ("body", "headers")

    def __init__(self, body: bytes, headers: dict[str, str]) -> None:
        self.body = body
        self.headers = headers


def work(request: dict[str, str]) -> int:
    return len(request)


def consume(message: Message) -> int:
    return len(message.body)


def consume_extracting(message: Message) -> int:
    """An undecorated consumer that learns its tenant from the headers itself."""
    ft.extract(message.headers)
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

    # Messages whose baggage differs every time (a per-message correlation id): the
    # consumer cannot reuse a parse, so this row includes a full ft.extract.
    distinct = []
    for i in range(NUMBER * 2):
        with ft.context(tenant="acme", user="u-1", correlation_id=f"c-{i}"):
            distinct.append(Message(b"{}", ft.inject({})))
    cycle = itertools.cycle(distinct)
    next_message = cycle.__next__

    cases = [
        ("handler, constant fields", lambda: work(request), lambda: handler_const(request)),
        ("handler, 2 resolvers", lambda: work(request), lambda: handler_resolved(request)),
        ("consumer (3-field headers)", lambda: consume(message), lambda: consumer(message)),
        (
            "consumer, unique baggage/msg",
            lambda: consume(next_message()),
            lambda: consumer(next_message()),
        ),
        # The same messages against an undecorated consumer that does the work any
        # tenant-aware consumer must do: parse the carrier (ft.extract) to learn its tenant.
        (
            "  vs undecorated + ft.extract",
            lambda: consume_extracting(next_message()),
            lambda: consumer(next_message()),
        ),
    ]
    print("\n## tracing not configured (target: added <= 1.5 us, from medians)")
    print(
        f"{'case':28} {'undecorated':>12} {'decorated':>10} {'added':>8} {'added(min)':>10}"
        "  target"
    )
    for name, base, ours in cases:
        b_med, o_med, b_min, o_min = paired_us(base, ours)
        added = o_med - b_med
        verdict = "met" if added <= 1.5 else "MISSED"
        print(
            f"{name:28} {b_med:10.3f}us {o_med:8.3f}us {added:6.3f}us "
            f"{o_min - b_min:8.3f}us  {verdict}"
        )
    uncached = median_us(extract_only)
    unique_headers = distinct[0].headers
    unique = median_us(lambda: ft.extract(unique_headers))
    print(
        f"  (for scale, ft.extract alone: 3-field headers {uncached:.3f} us, "
        f"unique-baggage headers {unique:.3f} us)"
    )

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
