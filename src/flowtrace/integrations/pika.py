"""pika (BlockingConnection and friends): the producer side, and dead-lettering.

The consumer side is :func:`flowtrace.consumer` on pika's ``(channel, method, properties,
body)`` callback (``properties.headers`` is found by default). Extra: ``rabbitmq``.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from flowtrace.errors import require_extra

from ._messaging import producing

_pika: Any = require_extra("pika", "rabbitmq", "flowtrace.integrations.pika")

__all__ = ["dead_letter_to", "publish"]


def publish(
    channel: Any,
    exchange: str,
    routing_key: str,
    body: bytes,
    properties: Any = None,
    *,
    name: str | None = None,
    **kwargs: Any,
) -> None:
    """``channel.basic_publish`` in a PRODUCER span, with the flow context in the headers.

    ``properties`` (``pika.BasicProperties``) is copied, never changed; its headers are kept.

    Example::

        import pika

        import flowtrace as ft
        from flowtrace.integrations import pika as ft_pika

        def send(channel):
            with ft.context(tenant="acme"):
                ft_pika.publish(channel, "", "orders", b'{"order": 1}')
    """
    props = copy.copy(properties) if properties is not None else _pika.BasicProperties()
    with producing("rabbitmq", routing_key, props.headers, name) as headers:
        props.headers = headers
        channel.basic_publish(exchange, routing_key, body, properties=props, **kwargs)


def dead_letter_to(queue: str, exchange: str = "") -> Callable[..., None]:
    """An ``on_missing`` for :func:`flowtrace.consumer` on a pika callback: re-publish the
    refused message unchanged (same body bytes and properties), then ack it.

    Example::

        import flowtrace as ft
        from flowtrace.integrations import pika as ft_pika

        @ft.consumer("orders.consume", on_missing=ft_pika.dead_letter_to("orders.dlq"))
        def on_message(channel, method, properties, body):
            channel.basic_ack(method.delivery_tag)
    """

    def on_missing(channel: Any, method: Any, properties: Any, body: bytes) -> None:
        channel.basic_publish(exchange, queue, body, properties=properties)
        channel.basic_ack(method.delivery_tag)

    return on_missing
