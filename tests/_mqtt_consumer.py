"""The consumer process of tests/test_mqtt.py: an MQTT 5 subscriber (paho network thread).

Usage: python _mqtt_consumer.py PORT TOPIC DEAD_TOPIC OTLP_ENDPOINT TOTAL OUT
Prints "ready" once subscribed.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import paho.mqtt.client as mqtt
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

import flowtrace as ft
from flowtrace.integrations import mqtt as ft_mqtt


def main(port: int, topic: str, dead: str, endpoint: str, total: int, out_path: str) -> None:
    settings = ft.configure(service="worker", span_exporters=[OTLPSpanExporter(endpoint)])
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    done, subscribed = threading.Event(), threading.Event()
    seen = 0
    refuse = ft_mqtt.dead_letter_to(dead)
    out = open(out_path, "w")  # noqa: SIM115 (closed below)

    def count() -> None:
        nonlocal seen
        seen += 1
        if seen >= total:
            done.set()

    def refused(c: Any, userdata: Any, message: Any) -> None:
        refuse(c, userdata, message)
        count()

    @ft.consumer("orders.consume", headers=ft_mqtt.headers, on_missing=refused)
    def on_message(c: Any, userdata: Any, message: Any) -> None:
        tenant = ft.current().tenant
        expected = json.loads(message.payload)
        trace.get_current_span().set_attribute("test.id", expected["id"])
        out.write(json.dumps({"tenant": tenant, **expected}) + "\n")
        count()

    client.on_message = on_message
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect("127.0.0.1", port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    assert subscribed.wait(20)
    print("ready", flush=True)
    done.wait(120)
    client.loop_stop()
    client.disconnect()
    out.close()
    assert settings.tracer_provider is not None
    settings.tracer_provider.force_flush(30_000)
    sys.exit(0 if seen == total else 3)


if __name__ == "__main__":
    port, topic, dead, endpoint, total, out = sys.argv[1:]
    main(int(port), topic, dead, endpoint, int(total), out)
