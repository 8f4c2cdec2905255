"""NATS JetStream (nats-py): publish with the flow context, consume per message.

::

    from flowtrace.integrations import nats as ft_nats

    with ft.context(tenant="acme"):
        await ft_nats.publish(js, "orders.created", b'{"order": 1}')

    @ft.consumer("orders.consume", on_missing=ft_nats.dead_letter_to(js, "dead.orders"))
    async def on_message(msg):               # nats-py's Msg: .headers is read
        ...
        await msg.ack()

    for msg in await subscription.fetch(100):   # a pull batch: one context per message
        await on_message(msg)

:func:`publish` opens a PRODUCER span and sends ``traceparent`` + ``baggage`` as NATS
headers (the message's own headers kept). :func:`flowtrace.consumer` finds ``msg.headers``
by default; a message without a tenant (or without headers) is refused, or, with
:func:`dead_letter_to`, published unchanged (same data bytes and headers) to a dead-letter
subject and acked. Extra: ``nats``.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from flowtrace.errors import require_extra

from ._messaging import producing

require_extra("nats", "nats", "flowtrace.integrations.nats")

__all__ = ["dead_letter_to", "publish"]


async def publish(
    js: Any,
    subject: str,
    payload: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    name: str | None = None,
    **kwargs: Any,
) -> Any:
    """``js.publish`` (JetStream, or a core ``nc.publish``) with the flow context in the
    headers, in a PRODUCER span. Returns what ``publish`` returns (JetStream: the ack).

    Example::

        import flowtrace as ft
        from flowtrace.integrations import nats as ft_nats

        async def send(js):
            with ft.context(tenant="acme"):
                await ft_nats.publish(js, "orders.created", b'{"order": 1}')
    """
    with producing("nats", subject, headers, name) as carrier:
        return await js.publish(subject, payload, headers=carrier, **kwargs)


def dead_letter_to(js: Any, subject: str) -> Callable[[Any], Awaitable[None]]:
    """An ``on_missing`` for :func:`flowtrace.consumer`: publish the refused message's data
    and headers unchanged to ``subject``, then ack it.

    Example::

        import flowtrace as ft
        from flowtrace.integrations import nats as ft_nats

        def make_consumer(js):
            @ft.consumer("orders.consume", on_missing=ft_nats.dead_letter_to(js, "dead.orders"))
            async def on_message(msg):
                await msg.ack()

            return on_message
    """

    async def on_missing(msg: Any) -> None:
        await js.publish(subject, msg.data, headers=msg.headers)
        await msg.ack()

    return on_missing
