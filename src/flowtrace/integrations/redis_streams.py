"""Redis Streams (redis-py): entries carry the flow context; consumer groups per message.

::

    from flowtrace.integrations import redis_streams as ft_streams

    with ft.context(tenant="acme"):
        ft_streams.add(client, "orders", b'{"order": 1}')      # XADD body + traceparent/baggage

    dead = ft_streams.dead_letter_to(client, "orders", "billing", "orders.dead")

    @ft.consumer("orders.consume", on_missing=dead)
    def on_entry(entry):                      # a StreamEntry: .id, .body, .fields, .headers
        ...
        client.xack("orders", "billing", entry.id)

    response = client.xreadgroup("billing", "worker-1", {"orders": ">"}, count=100)
    for entry in ft_streams.entries(response):   # a batch: one context per entry
        on_entry(entry)

An entry is a field map: the payload under ``body`` and the W3C carrier under
``traceparent``, ``tracestate`` and ``baggage``. :func:`entries` turns an ``XREADGROUP`` /
``XREAD`` / ``XRANGE`` reply into :class:`StreamEntry` objects whose ``headers`` are only
those three fields, so :func:`flowtrace.consumer` reads the producer's context and nothing
else, per entry. A refused (tenant-less) entry is re-added unchanged (every field, same
bytes) to a dead-letter stream and acknowledged in its group. Extra: ``redis``.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, NamedTuple

from flowtrace.errors import require_extra

from ._messaging import producing

require_extra("redis", "redis", "flowtrace.integrations.redis_streams")

__all__ = ["BODY", "StreamEntry", "add", "dead_letter_to", "entries"]

BODY: Final = "body"
"""The entry field holding the payload.

Example::

    from flowtrace.integrations.redis_streams import BODY

    assert BODY == "body"
"""

_CARRIER: Final = frozenset({b"traceparent", b"tracestate", b"baggage"})


class StreamEntry(NamedTuple):
    """One stream entry as a consumer sees it.

    ``fields`` is the raw field map (bytes keys and values, as redis-py returns them);
    ``headers`` the W3C carrier fields decoded to str; ``body`` the ``body`` field.

    Example::

        from flowtrace.integrations.redis_streams import entries

        reply = [[b"orders", [(b"1-0", {b"body": b"x", b"baggage": b"flowtrace.tenant=a"})]]]
        (entry,) = entries(reply)
        assert (entry.id, entry.body) == (b"1-0", b"x")
        assert entry.headers == {"baggage": "flowtrace.tenant=a"}
    """

    stream: bytes
    id: bytes
    fields: Mapping[bytes, bytes]
    headers: Mapping[str, str]
    body: bytes | None


def add(client: Any, stream: str, body: bytes, *, name: str | None = None, **kwargs: Any) -> Any:
    """``XADD`` ``body`` with the flow context, in a PRODUCER span; returns the entry id.

    ``kwargs`` go to ``client.xadd`` (``maxlen``, ``approximate``, ...).

    Example::

        import redis

        import flowtrace as ft
        from flowtrace.integrations import redis_streams as ft_streams

        client = redis.Redis()
        with ft.context(tenant="acme"):
            ft_streams.add(client, "orders", b'{"order": 1}')
    """
    with producing("redis", stream, None, name) as headers:
        return client.xadd(stream, {BODY: body, **headers}, **kwargs)


def _key(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def entries(reply: Any) -> Iterator[StreamEntry]:
    """The entries of an ``XREADGROUP``/``XREAD`` reply (redis-py's default RESP2 shape,
    ``[[stream, [(id, fields), ...]], ...]``), in order.

    Example::

        from flowtrace.integrations.redis_streams import entries

        assert list(entries([])) == []
    """
    for stream, items in reply or ():
        for entry_id, raw in items:
            fields = {_key(k): _key(v) for k, v in (raw or {}).items()}
            headers = {
                k.decode("latin-1"): v.decode("latin-1") for k, v in fields.items() if k in _CARRIER
            }
            yield StreamEntry(_key(stream), _key(entry_id), fields, headers, fields.get(b"body"))


def dead_letter_to(
    client: Any, stream: str, group: str, dead_stream: str
) -> Callable[[StreamEntry], None]:
    """An ``on_missing`` for :func:`flowtrace.consumer`: ``XADD`` the refused entry's fields
    unchanged to ``dead_stream``, then ``XACK`` it in ``group`` of ``stream``.

    Example::

        import redis

        import flowtrace as ft
        from flowtrace.integrations import redis_streams as ft_streams

        client = redis.Redis()
        dead = ft_streams.dead_letter_to(client, "orders", "billing", "orders.dead")

        @ft.consumer("orders.consume", on_missing=dead)
        def on_entry(entry):
            client.xack("orders", "billing", entry.id)
    """

    def on_missing(entry: StreamEntry) -> None:
        client.xadd(dead_stream, dict(entry.fields))
        client.xack(stream, group, entry.id)

    return on_missing
