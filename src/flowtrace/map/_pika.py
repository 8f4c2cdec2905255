"""A RabbitMQ (pika) producer helper that the residency guard protects.

:func:`publish` opens a ``PRODUCER`` span with the OTel messaging attributes, checks the
destination with :func:`~flowtrace.map.guard_destination` *before* anything is sent,
records the data categories handed over, injects the flow context into the message
headers and publishes. A refused send raises and publishes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from .._settings import settings
from ..classify import Schema
from ..propagation import inject
from . import _names as n
from ._payload import record_data
from ._residency import guard_destination

__all__ = ["publish"]


def _tracer() -> trace.Tracer:
    provider = settings().tracer_provider or trace.get_tracer_provider()
    return provider.get_tracer("flowtrace.map")


def publish(
    channel: Any,
    *,
    routing_key: str,
    body: bytes,
    exchange: str = "",
    properties: Any = None,
    payload: Mapping[str, Any] | None = None,
    schema: Schema | None = None,
    categories: Iterable[str] = (),
    encrypted: Iterable[str] = (),
    region: str | None = None,
) -> None:
    """Publish ``body`` with pika's ``channel.basic_publish`` under the residency guard.

    The destination's map name is ``rabbitmq/<exchange or routing key>``; its region comes
    from the residency policy unless ``region`` is given. ``payload`` + ``schema`` (or
    ``categories``/``encrypted``) say what data the message carries.

    Example::

        import flowtrace as ft
        from flowtrace import map as ftmap

        class Channel:                               # stands in for a pika channel
            def basic_publish(self, exchange, routing_key, body, properties):
                self.sent = (routing_key, body, properties.headers)

        channel = Channel()
        ftmap.configure_residency(rules={"eu": ["eu"]}, destinations={"rabbitmq/orders": "eu"})
        with ft.context(tenant="acme", region="eu"):
            ftmap.publish(channel, routing_key="orders", body=b"{}", categories=["pii"])
        assert "baggage" in channel.sent[2]          # the flow context travels along
        ftmap.configure_residency()                  # back to no policy
    """
    from ..errors import require_extra

    pika: Any = require_extra("pika", "rabbitmq", "flowtrace.map.publish")
    name = exchange or routing_key
    attributes = {
        n.MESSAGING_SYSTEM: "rabbitmq",
        n.MESSAGING_DESTINATION: name,
        "messaging.operation.type": "publish",
    }
    with _tracer().start_as_current_span(
        f"{name} publish", kind=SpanKind.PRODUCER, attributes=attributes
    ):
        guard_destination(f"rabbitmq/{name}", region=region)
        record_data(payload, schema=schema, categories=categories, encrypted=encrypted)
        headers = dict(getattr(properties, "headers", None) or {})
        inject(headers)
        if properties is None:
            properties = pika.BasicProperties(headers=headers)
        else:
            properties.headers = headers
        channel.basic_publish(
            exchange=exchange, routing_key=routing_key, body=body, properties=properties
        )
