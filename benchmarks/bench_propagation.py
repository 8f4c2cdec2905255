"""Propagation cost: flowtrace inject+extract vs OpenTelemetry's W3C baggage propagator.

1. Target (issue 2): inject+extract of a 3-field flow context (tenant, user, purpose)
   <= 0.5x OTel's ``W3CBaggagePropagator`` inject+extract of the same 3 keys, with the
   baggage set in the current OTel context and no span (both write only ``baggage``).
   Ours includes the traceparent check (no span: nothing written) and builds a validated
   FlowContext; OTel's builds a new OTel Context per entry.
2. Reported, no target: a full hop with a recording span. Ours: inject + extract +
   remote_span_context; OTel: a CompositePropagator (trace context + baggage) inject +
   extract.
3. Reported, no target: extract only, from a realistic 14-header HTTP carrier (ours
   scans for other spellings of the header; OTel's getter is case-sensitive).

Rounds alternate ours and the baseline so machine noise hits both; we print per-call
medians and the median of per-round ratios. Run: ``python3 dev.py bench propagation``.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable

from _timing import interleaved
from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import flowtrace as ft
from flowtrace.propagation import extract, inject, remote_span_context

FIELDS = {"tenant": "acme", "user": "u-1", "purpose": "billing"}
NUMBER = 5_000
ROUNDS = 21


def compare(
    name: str,
    ours: Callable[[], object],
    theirs: Callable[[], object],
    target: float | None = None,
) -> float:
    mine, base, ratio = interleaved(ours, theirs, number=NUMBER, rounds=ROUNDS)
    verdict = (
        "" if target is None else f"  target <= {target}x: {'MET' if ratio <= target else 'MISSED'}"
    )
    print(
        f"{name:<44} ours {mine:7.2f} us   otel {base:7.2f} us   ratio {ratio:.2f}x{verdict}"
    )
    return ratio


def main() -> None:
    print(
        f"# {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{NUMBER} calls x {ROUNDS} rounds"
    )
    w3c = W3CBaggagePropagator()
    otel_ctx = otel_context.get_current()
    for key, value in FIELDS.items():
        otel_ctx = baggage.set_baggage(key, value, otel_ctx)

    # 1. baggage only, 3 keys.
    token = otel_context.attach(otel_ctx)
    scope = ft.context(**FIELDS)
    scope.__enter__()

    def ours_baggage() -> None:
        extract(inject({}, identity=True))

    def otel_baggage() -> None:
        carrier: dict[str, str] = {}
        w3c.inject(carrier)
        w3c.extract(carrier)

    assert extract(inject({}, identity=True)) == ft.FlowContext(**FIELDS)
    probe: dict[str, str] = {}
    w3c.inject(probe)
    assert baggage.get_all(w3c.extract(probe)) == FIELDS
    compare("inject+extract, 3 fields (baggage only)", ours_baggage, otel_baggage, 0.5)

    # 2. full hop with a recording span.
    tracer = TracerProvider().get_tracer("bench")
    composite = CompositePropagator([TraceContextTextMapPropagator(), w3c])
    with tracer.start_as_current_span("hop"):

        def ours_full() -> None:
            carrier = inject({}, identity=True)
            extract(carrier)
            remote_span_context(carrier)

        def otel_full() -> None:
            carrier: dict[str, str] = {}
            composite.inject(carrier)
            composite.extract(carrier)

        compare("full hop: traceparent + baggage, 3 fields", ours_full, otel_full)
        headers = {
            "Host": "api.example.com",
            "User-Agent": "python-httpx/0.27",
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",
            "Connection": "keep-alive",
            "Content-Type": "application/json",
            "Content-Length": "123",
            "Authorization": "Bearer eyJhbGciOi...",
            "X-Request-Id": "7f1c0e",
            "X-Forwarded-For": "10.0.0.1",
            "Cache-Control": "no-cache",
            "Cookie": "session=abc",
        }
        inject(headers, identity=True)

    def ours_extract() -> None:
        extract(headers)

    def otel_extract() -> None:
        w3c.extract(headers)

    compare("extract from a 14-header HTTP carrier", ours_extract, otel_extract)
    scope.__exit__(None, None, None)
    otel_context.detach(token)


if __name__ == "__main__":
    main()
