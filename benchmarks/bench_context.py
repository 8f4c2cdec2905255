"""Scope cost: entering and leaving a flow context vs OTel baggage attach/detach.

Target (issue 11): ``with flowtrace.context(tenant=...)`` enter+exit <= 1.0x OTel's
``token = context.attach(baggage.set_baggage("tenant", ...)); context.detach(token)``
with one key. Both are measured from an empty context. Also reported (no target): a
3-field scope, a nested scope that adds a field inside a tenant scope, a pre-built scope
object entered repeatedly (what a decorator could reuse), and a *floor*: an empty
pure-Python context manager that only stores ``**fields`` and does nothing on enter/exit,
i.e. the least any ``with flowtrace.context(**fields):`` API can cost on this interpreter.

Rounds alternate ours and the baseline so machine noise hits both; we print per-call
medians and the median of per-round ratios. Run: ``python3 dev.py bench context``.
Scopes have one implementation, in pure Python.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable

from _timing import interleaved
from opentelemetry import baggage
from opentelemetry import context as otel_context

import flowtrace as ft

NUMBER = 20_000
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
        f"{name:<40} ours {mine:6.2f} us   otel {base:6.2f} us   ratio {ratio:.2f}x{verdict}"
    )
    return ratio


def main() -> None:
    print(
        f"# {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{NUMBER} calls x {ROUNDS} rounds"
    )
    print("# scope implementation: pure Python (the only one)")
    attach, detach, set_baggage = otel_context.attach, otel_context.detach, baggage.set_baggage
    context = ft.context

    def ours_one() -> None:
        with context(tenant="acme"):
            pass

    def otel_one() -> None:
        detach(attach(set_baggage("tenant", "acme")))

    compare("enter+exit, 1 field (tenant)", ours_one, otel_one, 1.0)

    scope = context(tenant="acme")

    def ours_reused() -> None:
        with scope:
            pass

    compare("pre-built scope object, 1 field", ours_reused, otel_one)

    class Floor:
        __slots__ = ("fields",)

        def __init__(self, **fields: str) -> None:
            self.fields = fields

        def __enter__(self) -> None:
            return None

        def __exit__(self, *exc: object) -> None:
            return None

    def floor() -> None:
        with Floor(tenant="acme"):
            pass

    compare("floor: empty **fields context manager", floor, otel_one)

    def ours_three() -> None:
        with context(tenant="acme", user="u-1", purpose="billing"):
            pass

    def otel_three() -> None:
        ctx = set_baggage("tenant", "acme")
        ctx = set_baggage("user", "u-1", ctx)
        detach(attach(set_baggage("purpose", "billing", ctx)))

    compare("enter+exit, 3 fields", ours_three, otel_three)

    with context(tenant="acme"):
        token = attach(set_baggage("tenant", "acme"))

        def ours_nested() -> None:
            with context(purpose="billing"):
                pass

        def otel_nested() -> None:
            detach(attach(set_baggage("purpose", "billing")))

        compare("nested: add a field in a tenant scope", ours_nested, otel_nested)
        detach(token)


if __name__ == "__main__":
    main()
