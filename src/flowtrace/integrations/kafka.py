"""Kafka header helpers for confluent-kafka and aiokafka (no Kafka import needed).

::

    from flowtrace.integrations import kafka as ft_kafka

    with ft.context(tenant="acme"):
        producer.produce("orders", value, headers=ft_kafka.headers_for("orders"))   # confluent
        await producer.send("orders", value, headers=ft_kafka.headers_for("orders"))  # aiokafka

    @ft.consumer("orders.consume", headers=ft_kafka.carrier)
    def on_message(message):      # confluent Message or aiokafka ConsumerRecord
        ...

    for message in consumer.consume(100):      # a batch: one context per message
        on_message(message)

Kafka headers are a list of ``(str, bytes)`` pairs on both clients (confluent:
``message.headers()``, aiokafka: ``record.headers``). :func:`headers_for` returns that
shape with ``traceparent`` and ``baggage`` (identity members only when the topic is in the
trust domain), keeping any headers you pass; :func:`carrier` reads them back as the str
mapping :func:`flowtrace.consumer` expects. Each consumed message then runs in exactly its
producer's context, in a CONSUMER span linked to the span that was current when it was
produced. Repeated header names are joined with ``,``, so two ``baggage`` headers naming
two tenants are refused as malformed. Refusing and dead-lettering are the consumer's
``on_missing`` (produce ``message.value()`` with ``message.headers()`` to a dead-letter
topic, unchanged).

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import flowtrace as ft

__all__ = ["carrier", "headers_for"]

_W3C: Final = ("traceparent", "tracestate", "baggage")


def headers_for(
    topic: str, headers: Iterable[tuple[str, bytes]] | None = None
) -> list[tuple[str, bytes]]:
    """Kafka headers carrying the current flow context (and ``headers``, minus stale W3C ones).

    Example::

        import flowtrace as ft
        from flowtrace.integrations import kafka as ft_kafka

        with ft.context(tenant="acme"):
            headers = ft_kafka.headers_for("orders", [("kind", b"order")])
        assert headers == [("kind", b"order"), ("baggage", b"flowtrace.tenant=acme")]
    """
    kept = [(k, v) for k, v in headers or () if k not in _W3C]
    injected: dict[str, str] = ft.inject({}, destination=topic)
    return kept + [(k, v.encode()) for k, v in injected.items()]


def carrier(message: Any) -> dict[str, str] | None:
    """The W3C headers of a confluent-kafka ``Message`` or an aiokafka ``ConsumerRecord``
    as a str mapping (``None`` when it has none) — pass it as ``@ft.consumer(headers=...)``.

    Example::

        from aiokafka.structs import ConsumerRecord

        from flowtrace.integrations import kafka as ft_kafka

        record = ConsumerRecord("orders", 0, 0, 0, 0, None, b"{}", None, 0, 2,
                                [("baggage", b"flowtrace.tenant=acme")])
        assert ft_kafka.carrier(record) == {"baggage": "flowtrace.tenant=acme"}
    """
    raw = message.headers
    pairs = raw() if callable(raw) else raw
    if not pairs:
        return None
    out: dict[str, str] = {}
    for key, value in pairs:
        if key not in _W3C:
            continue
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value or "")
        out[key] = f"{out[key]},{text}" if key in out else text
    return out or None
