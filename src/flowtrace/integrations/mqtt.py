"""MQTT 5 (paho-mqtt 2): the flow context in user properties, consumed per message.

::

    from flowtrace.integrations import mqtt as ft_mqtt

    with ft.context(tenant="acme"):
        ft_mqtt.publish(client, "orders/created", b'{"order": 1}', qos=1)

    @ft.consumer("orders.consume", headers=ft_mqtt.headers,
                 on_missing=ft_mqtt.dead_letter_to("dead/orders"))
    def on_message(client, userdata, message):
        ...

    client.on_message = on_message

MQTT has no headers; MQTT 5 has *user properties* (name/value pairs on PUBLISH).
:func:`publish` adds ``traceparent`` and ``baggage`` to them in a PRODUCER span (the
client must speak MQTT 5: ``protocol=MQTTv5``); :func:`headers` reads them back for
:func:`flowtrace.consumer`. A message without them (an MQTT 3 publisher, a device that
knows nothing of flowtrace) is refused, or, with :func:`dead_letter_to`, re-published with
the same payload bytes, QoS and properties to a dead-letter topic. Extra: ``mqtt``.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from flowtrace.errors import require_extra

from ._messaging import producing

require_extra("paho.mqtt", "mqtt", "flowtrace.integrations.mqtt")
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

__all__ = ["dead_letter_to", "headers", "publish"]


def publish(
    client: Any,
    topic: str,
    payload: bytes,
    qos: int = 0,
    retain: bool = False,
    properties: Any = None,
    *,
    name: str | None = None,
) -> Any:
    """``client.publish`` with the flow context as MQTT 5 user properties, in a PRODUCER
    span. ``properties`` (PUBLISH ``Properties``) is copied, never changed. Returns paho's
    ``MQTTMessageInfo``.

    Example::

        import flowtrace as ft
        from flowtrace.integrations import mqtt as ft_mqtt

        def send(client):                    # a paho Client(protocol=MQTTv5), connected
            with ft.context(tenant="acme"):
                ft_mqtt.publish(client, "orders/created", b'{"order": 1}', qos=1)
    """
    props: Any = (
        copy.deepcopy(properties)
        if properties is not None
        else Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    )
    existing = [
        (k, v) for k, v in getattr(props, "UserProperty", [])
        if k not in ("traceparent", "tracestate", "baggage")
    ]
    with producing("mqtt", topic, None, name) as carrier:
        props.UserProperty = existing + list(carrier.items())
        return client.publish(topic, payload, qos=qos, retain=retain, properties=props)


def headers(client: Any, userdata: Any, message: Any) -> dict[str, str] | None:
    """The W3C carrier in ``message``'s user properties (``None`` when it has none).

    Pass it as ``@ft.consumer(headers=ft_mqtt.headers)`` on an ``on_message(client,
    userdata, message)`` callback. Repeated names are joined with ``,`` (as HTTP combines
    repeated fields), so two ``baggage`` properties naming two tenants are a duplicated
    member: the consumer refuses the message as malformed.

    Example::

        from types import SimpleNamespace

        from flowtrace.integrations import mqtt as ft_mqtt

        message = SimpleNamespace(properties=SimpleNamespace(UserProperty=[("baggage", "x=1")]))
        assert ft_mqtt.headers(None, None, message) == {"baggage": "x=1"}
    """
    pairs = getattr(getattr(message, "properties", None), "UserProperty", None)
    if not pairs:
        return None
    carrier: dict[str, str] = {}
    for key, value in pairs:
        carrier[key] = f"{carrier[key]},{value}" if key in carrier else value
    return carrier


def dead_letter_to(topic: str) -> Callable[[Any, Any, Any], None]:
    """An ``on_missing`` for :func:`flowtrace.consumer`: re-publish the refused message's
    payload unchanged (same QoS, retain flag and properties) to ``topic``.

    Example::

        import flowtrace as ft
        from flowtrace.integrations import mqtt as ft_mqtt

        @ft.consumer("orders.consume", headers=ft_mqtt.headers,
                     on_missing=ft_mqtt.dead_letter_to("dead/orders"))
        def on_message(client, userdata, message):
            ...
    """

    def on_missing(client: Any, userdata: Any, message: Any) -> None:
        properties = getattr(message, "properties", None)
        client.publish(topic, message.payload, qos=message.qos, retain=message.retain,
                       properties=properties if _is_publish(properties) else None)

    return on_missing


def _is_publish(properties: Any) -> bool:
    return properties is not None and getattr(properties, "packetType", None) == PacketTypes.PUBLISH
