"""Kafka header helpers with the libraries' own message types (no broker runs here)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

import flowtrace as ft
from flowtrace.integrations import kafka as ft_kafka
from flowtrace.testing import Capture

confluent_kafka = pytest.importorskip("confluent_kafka")
aiokafka_structs = pytest.importorskip("aiokafka.structs")


def confluent(headers: list[tuple[str, bytes]] | None, value: bytes = b"{}") -> object:
    return confluent_kafka.Message(topic="orders", value=value, headers=headers)


def aiokafka(headers: list[tuple[str, bytes]], value: bytes = b"{}") -> object:
    return aiokafka_structs.ConsumerRecord(
        "orders", 0, 0, 0, 0, None, value, None, 0, len(value), headers
    )


SHAPES = {"confluent": confluent, "aiokafka": aiokafka}


@pytest.mark.parametrize("shape", SHAPES)
def test_batch_of_1000_runs_each_message_in_its_producers_context(shape: str) -> None:
    """1,000 messages, random tenants, 50 with no headers, consumed as one batch: 0
    crossings, 0 tenant-less processed (each handed to on_missing intact), every consumer
    span linked to the span current when the message was produced."""
    make = SHAPES[shape]
    with Capture() as capture:
        tracer = capture.provider.get_tracer("test")
        batch, producer_spans, orphans = [], {}, []
        for i in range(1000):
            if i % 20 == 0:
                value = bytes(range(256)) + str(i).encode()
                orphans.append(value)
                batch.append(make([], value) if shape == "aiokafka" else make(None, value))
                continue
            tenant = f"tenant-{random.randrange(25)}"
            with tracer.start_as_current_span(f"produce {i}") as span, ft.context(tenant=tenant):
                headers = ft_kafka.headers_for("orders", [("id", str(i).encode())])
            producer_spans[i] = span.get_span_context().span_id
            batch.append(make(headers, tenant.encode()))
        processed: list[tuple[str | None, bytes]] = []
        dead: list[bytes] = []

        @ft.consumer("orders.consume", headers=ft_kafka.carrier,
                     on_missing=lambda message: dead.append(message.value() if shape ==
                                                            "confluent" else message.value))
        def on_message(message: object) -> None:
            value = message.value() if shape == "confluent" else message.value  # type: ignore[attr-defined]
            processed.append((ft.current().tenant, value))

        for message in batch:
            on_message(message)
        spans = capture.spans("orders.consume")
    assert len(processed) == 950
    assert [(t, v) for t, v in processed if t is None or t.encode() != v] == []
    assert dead == orphans
    linked = [s for s in spans if s.links]
    assert len(linked) == 950
    assert sorted(s.links[0].context.span_id for s in linked) == sorted(producer_spans.values())


def test_second_baggage_header_is_refused() -> None:
    """The attacker appends a baggage header naming another tenant: refused as malformed."""
    with ft.context(tenant="acme"):
        headers = ft_kafka.headers_for("orders")
    forged = confluent([*headers, ("baggage", b"flowtrace.tenant=globex")])
    refused: list[object] = []

    @ft.consumer("c", headers=ft_kafka.carrier, on_missing=refused.append)
    def on_message(message: object) -> None:
        raise AssertionError("must not run")

    on_message(forged)
    assert refused == [forged]


def test_identity_only_to_trusted_topics() -> None:
    """flowtrace.user travels only to topics in the trust domain."""
    ft.configure(trust_domain=["internal.*"])
    with ft.context(tenant="acme", user="ana"):
        trusted = dict(ft_kafka.headers_for("internal.orders"))
        partner = dict(ft_kafka.headers_for("partner.orders"))
    assert b"flowtrace.user=ana" in trusted["baggage"]
    assert partner["baggage"] == b"flowtrace.tenant=acme"


@given(st.lists(st.tuples(st.sampled_from(["id", "traceparent", "baggage", "x"]),
                          st.binary(max_size=20)), max_size=6))
def test_headers_for_replaces_stale_w3c_and_keeps_the_rest(
    given_headers: list[tuple[str, bytes]],
) -> None:
    """Whatever headers are passed, the result has exactly one baggage (ours) and keeps the
    non-W3C ones in order."""
    with ft.context(tenant="acme"):
        out = ft_kafka.headers_for("orders", given_headers)
    assert [k for k, _ in out].count("baggage") == 1
    assert [h for h in out if h[0] not in ("traceparent", "tracestate", "baggage")] == [
        h for h in given_headers if h[0] not in ("traceparent", "tracestate", "baggage")
    ]
