"""aio-pika: publish with the flow context, consume in exactly the producer's context.

::

    from flowtrace.integrations import aio_pika as ft_aio_pika

    await ft_aio_pika.publish(channel.default_exchange, Message(body), "orders")

    @ft.consumer("orders.consume", on_missing=ft_aio_pika.dead_letter_to(exchange, "orders.dlq"))
    async def on_message(message):          # aio-pika's IncomingMessage: .headers is read
        async with message.process():
            ...

    await queue.consume(on_message)          # callbacks, or
    async with queue.iterator() as messages:  # queue iterators: call it per message
        async for message in messages:
            await on_message(message)

:func:`publish` opens a PRODUCER span and writes ``traceparent`` + ``baggage`` into the
message headers. :func:`flowtrace.consumer` does the rest (``message.headers`` is found by
default): each message runs in exactly its producer's flow context (never the consuming
task's), in a CONSUMER span linked to the producer's span; a message without a tenant is
refused, or, with :func:`dead_letter_to`, re-published byte-for-byte to a dead-letter queue
and acked. With a queue iterator the decorated function is called per message, so every
message gets its own context and span (the body of an ``async for`` would otherwise run in
the iterating task's context). Extra: ``aio-pika``.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from flowtrace.errors import require_extra

from ._messaging import producing

_aio_pika: Any = require_extra("aio_pika", "aio-pika", "flowtrace.integrations.aio_pika")

__all__ = ["dead_letter_to", "publish"]


async def publish(
    exchange: Any, message: Any, routing_key: str, *, name: str | None = None, **kwargs: Any
) -> Any:
    """Publish ``message`` (an ``aio_pika.Message``) with the flow context in its headers.

    The message's own headers are kept; ``kwargs`` go to ``exchange.publish``. Returns what
    ``exchange.publish`` returns.

    Example::

        import aio_pika

        from flowtrace.integrations import aio_pika as ft_aio_pika

        async def send(channel):
            message = aio_pika.Message(b'{"order": 1}', headers={"kind": "order"})
            await ft_aio_pika.publish(channel.default_exchange, message, "orders")
    """
    with producing("rabbitmq", routing_key, message.headers, name) as headers:
        message.headers = headers
        return await exchange.publish(message, routing_key, **kwargs)


def dead_letter_to(exchange: Any, routing_key: str) -> Callable[[Any], Awaitable[None]]:
    """An ``on_missing`` for :func:`flowtrace.consumer`: re-publish the refused message
    unchanged (body bytes, headers, properties) to ``routing_key``, then ack it.

    Example::

        import flowtrace as ft
        from flowtrace.integrations import aio_pika as ft_aio_pika

        def make_consumer(channel):
            dead = ft_aio_pika.dead_letter_to(channel.default_exchange, "orders.dlq")

            @ft.consumer("orders.consume", on_missing=dead)
            async def on_message(message):
                async with message.process():
                    ...

            return on_message
    """

    async def on_missing(message: Any) -> None:
        copy = _aio_pika.Message(
            message.body,
            headers=message.headers,
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            delivery_mode=message.delivery_mode,
            correlation_id=message.correlation_id,
            message_id=message.message_id,
            timestamp=message.timestamp,
            type=message.type,
            app_id=message.app_id,
        )
        await exchange.publish(copy, routing_key)
        await message.ack()

    return on_missing
