"""MQTT 5 against the real Mosquitto: producer here, a subscriber in a subprocess."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

import flowtrace as ft
from flowtrace.testing import Capture
from tests._services import require_service
from tests.test_otlp_export import Receiver, _value, receiver  # noqa: F401 (fixture)

mqtt = pytest.importorskip("paho.mqtt.client")
from flowtrace.integrations import mqtt as ft_mqtt  # noqa: E402

pytestmark = pytest.mark.services

TOTAL = 1000
TENANTLESS = 50
WORKER = Path(__file__).with_name("_mqtt_consumer.py")


def _client(port: int) -> object:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def test_1000_messages_mqtt5_across_processes(receiver: Receiver, tmp_path: Path) -> None:  # noqa: F811
    """0 crossings, 0 tenant-less processed, refused messages dead-lettered byte-identical,
    every consumer span linked to its producer span (over OTLP)."""
    _, port = require_service("mosquitto")
    suffix = uuid.uuid4().hex[:10]
    topic, dead = f"ft/{suffix}/orders", f"ft/{suffix}/dead"
    dead_seen: list[bytes] = []
    got_all = threading.Event()
    dead_client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_dead(client: object, userdata: object, message: object) -> None:
        dead_seen.append(message.payload)  # type: ignore[attr-defined]
        if len(dead_seen) >= TENANTLESS:
            got_all.set()

    dead_client.on_message = on_dead
    dead_client.connect("127.0.0.1", port)
    dead_client.subscribe(dead, qos=1)
    dead_client.loop_start()

    out = tmp_path / "consumed.jsonl"
    worker = subprocess.Popen(
        [sys.executable, str(WORKER), str(port), topic, dead, receiver.endpoint, str(TOTAL),
         str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NO_PROXY": "127.0.0.1,localhost"},
    )
    assert worker.stdout is not None
    assert worker.stdout.readline().strip() == "ready"
    time.sleep(0.2)  # the dead-letter subscription's SUBACK

    producer = _client(port)
    orphans = []
    with Capture() as capture:
        infos = []
        for i in range(TOTAL):
            if i % (TOTAL // TENANTLESS) == 0:
                payload = os.urandom(32) + bytes(range(256))
                orphans.append(payload)
                infos.append(producer.publish(topic, payload, qos=1))  # type: ignore[attr-defined]
                continue
            tenant = f"tenant-{random.randrange(25)}"
            with ft.context(tenant=tenant):
                infos.append(ft_mqtt.publish(
                    producer, topic, json.dumps({"id": i, "expected": tenant}).encode(), qos=1,
                    name=f"orders publish {i}",
                ))
        for info in infos:
            info.wait_for_publish(30)
        producer_ids = {
            int(s.name.rsplit(" ", 1)[1]): s.context.span_id
            for s in capture.spans() if s.name.startswith("orders publish ")
        }
    _, stderr = worker.communicate(timeout=180)
    assert worker.returncode == 0, stderr
    assert got_all.wait(30)
    producer.loop_stop()  # type: ignore[attr-defined]
    dead_client.loop_stop()

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == TOTAL - TENANTLESS
    assert [line for line in lines if line["tenant"] != line["expected"]] == []
    assert sorted(dead_seen) == sorted(orphans)

    expected = {line["id"]: line["expected"] for line in lines}
    spans = [span for _, span in receiver.spans() if span.name == "orders.consume"]
    assert len(spans) == TOTAL
    linked = 0
    for span in spans:
        attributes = {a.key: _value(a.value) for a in span.attributes}
        if "test.id" not in attributes:
            continue
        (link,) = span.links
        assert int.from_bytes(link.span_id, "big") == producer_ids[attributes["test.id"]]
        assert attributes["flowtrace.tenant"] == expected[attributes["test.id"]]
        linked += 1
    assert linked == TOTAL - TENANTLESS


def test_repeated_user_property_is_refused() -> None:
    """The attacker adds a second baggage user property naming another tenant: the message
    is refused as malformed (dead-lettered), never run in either tenant."""
    from types import SimpleNamespace

    message = SimpleNamespace(properties=SimpleNamespace(UserProperty=[
        ("baggage", "flowtrace.tenant=acme"), ("baggage", "flowtrace.tenant=globex"),
    ]))
    processed: list[object] = []
    refused: list[object] = []

    @ft.consumer("c", headers=ft_mqtt.headers, on_missing=lambda c, u, m: refused.append(m))
    def on_message(client: object, userdata: object, msg: object) -> None:
        processed.append(ft.current().tenant)

    on_message(None, None, message)
    assert (processed, refused) == ([], [message])
