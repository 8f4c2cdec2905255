"""structlog pipeline cost with flowtrace's ScrubProcessor vs the same pipeline without it.

A typical 10-key event through add_log_level + TimeStamper + JSONRenderer into a no-op
logger. Target: with the processor <= 2x without.

    python3 dev.py bench structlog
"""

from __future__ import annotations

import itertools
import platform
import statistics
import timeit
import uuid
from typing import Any

import structlog

from flowtrace.logging import ScrubProcessor


class _Null:
    def msg(self, message: str) -> None:
        pass

    info = msg


def _logger(extra: list[Any]) -> Any:
    return structlog.wrap_logger(
        _Null(),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            *extra,
            structlog.processors.JSONRenderer(),
        ],
        cache_logger_on_first_use=True,
    )


EVENT = {
    "user_id": 12345,
    "tenant": "acme",
    "path": "/api/v1/orders/9876",
    "method": "POST",
    "status": 201,
    "duration_ms": 12.7,
    "request_id": "550e8400-e29b-41d4-a716-446655440000",
    "order_id": "ORD-2026-000123",
    "items": 3,
    "plan": "pro",
}


def main() -> None:
    plain = _logger([])
    scrubbed = _logger([ScrubProcessor()])
    n = 20_000

    # Realistic cardinality: ids, order numbers and durations differ on every event;
    # tenant, method, path, plan... repeat.
    events = [
        dict(
            EVENT,
            user_id=10_000 + i,
            request_id=str(uuid.UUID(int=i * 7919)),
            order_id=f"ORD-2026-{i:06d}",
            duration_ms=round(i * 0.37 % 300, 2),
        )
        for i in range(n)
    ]

    def run(logger: Any) -> float:
        it = itertools.cycle(events)
        return (
            min(timeit.repeat(lambda: logger.info("order created", **next(it)), number=n, repeat=3))
            / n
        )

    ratios = []
    rows = []
    for _ in range(5):  # interleave to share the machine's noise
        a = run(plain)
        b = run(scrubbed)
        rows.append((a, b))
        ratios.append(b / a)
    a_med = statistics.median(r[0] for r in rows)
    b_med = statistics.median(r[1] for r in rows)
    print(f"machine: {platform.machine()}, Python {platform.python_version()}")
    print(f"structlog 10-key event, without ScrubProcessor: {a_med * 1e6:7.2f} us")
    print(f"structlog 10-key event, with ScrubProcessor:    {b_med * 1e6:7.2f} us")
    print(f"ratio (median of 5 interleaved): {statistics.median(ratios):.2f}x  (target <= 2x)")
    leaky = dict(EVENT, note="refund to jane@example.com")
    out = ScrubProcessor()(None, "info", {"event": "x", **leaky})
    assert out["note"] == "refund to [REDACTED:email]"


if __name__ == "__main__":
    main()
