"""The PRODUCER span and header injection every broker helper shares."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry.trace import SpanKind

import flowtrace as ft
from flowtrace.otel import get_tracer

__all__ = ["producing"]


@contextmanager
def producing(
    system: str, destination: str, headers: Mapping[str, Any] | None, name: str | None
) -> Iterator[dict[str, Any]]:
    """Open a PRODUCER span and yield a copy of ``headers`` with the flow context injected.

    The ``traceparent`` written is the PRODUCER span's, so the consumer's span links to it.
    Identity members travel only when ``destination`` is in the trust domain.
    """
    attributes = {"messaging.system": system, "messaging.destination.name": destination}
    with get_tracer().start_as_current_span(
        name or f"{destination} publish", kind=SpanKind.PRODUCER, attributes=attributes
    ):
        yield ft.inject(dict(headers or {}), destination=destination)
