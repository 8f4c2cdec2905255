"""The residency guard refuses a send before it happens and records the refusal."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import flowtrace as ft
from flowtrace import audit
from flowtrace import map as ftmap
from flowtrace.errors import ConfigError, ResidencyViolationError
from flowtrace.testing import Capture
from tests._services import require_service

DECLARED = """
version = 1
[regions.eu]
may_flow_to = ["eu"]
[[services]]
name = "api"
region = "eu"
[[queues]]
name = "rabbitmq/orders-eu"
region = "eu"
[[queues]]
name = "rabbitmq/orders-us"
region = "us"
"""


@pytest.fixture(autouse=True)
def _no_policy_after() -> Iterator[None]:
    yield
    ftmap.configure_residency()


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "map.toml"
    path.write_text(DECLARED)
    log_path = tmp_path / "audit.jsonl"
    ftmap.configure_residency(
        declared=ftmap.load_declared(path),
        audit_log=audit.AuditLog(log_path, durability="none"),
    )
    return log_path


class Channel:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def basic_publish(self, **kwargs: Any) -> None:
        self.sent.append(kwargs)


def test_eu_data_to_a_us_queue_is_refused_and_audited(
    flowtrace_capture: Capture, policy: Path
) -> None:
    """Nothing is published; the audit log holds a denied record naming the queue."""
    channel = Channel()
    with (
        ft.context(tenant="acme", purpose="checkout", region="eu"),
        pytest.raises(
            ResidencyViolationError, match="refused to send eu data to rabbitmq/orders-us"
        ),
    ):
        ftmap.publish(channel, routing_key="orders-us", body=b"{}", categories=["pii"])
    assert channel.sent == []
    ftmap.residency_policy().audit_log.close()
    [record] = list(audit.query(policy, action=ftmap.RESIDENCY_ACTION))
    assert (record.outcome, record.resource, record.tenant, record.region) == (
        "denied",
        "rabbitmq/orders-us",
        "acme",
        "eu",
    )
    assert record.details["destination_region"] == "us"
    span = flowtrace_capture.span("orders-us publish")
    assert [e.name for e in span.events][:1] == [ftmap.RESIDENCY_ACTION]
    # on the map it is a refused send, not a flow
    observed = ftmap.build(spans=flowtrace_capture.spans())
    assert observed.flows == {}
    trace_id = format(span.context.trace_id, "032x")
    [(key, ids)] = observed.refused.items()
    assert key[1] == "rabbitmq/orders-us"
    assert ids[0][0] == trace_id


def test_eu_data_to_an_eu_queue_goes_through(flowtrace_capture: Capture, policy: Path) -> None:
    """Allowed: published with the flow context in the headers and the region stamped."""
    channel = Channel()
    with ft.context(tenant="acme", purpose="checkout", region="eu"):
        ftmap.publish(channel, routing_key="orders-eu", body=b"{}", categories=["pii"])
    [sent] = channel.sent
    assert ft.extract(sent["properties"].headers).tenant == "acme"
    span = flowtrace_capture.span("orders-eu publish")
    assert span.attributes[ftmap.DESTINATION_REGION] == "eu"
    assert span.attributes[ftmap.DATA_CATEGORIES] == ("pii",)


def test_unknown_destination_region_fails_closed(policy: Path) -> None:
    """eu data has a rule; a destination nobody placed cannot be proven allowed."""
    with (
        ft.context(tenant="acme", region="eu"),
        pytest.raises(ResidencyViolationError, match="region unknown"),
    ):
        ftmap.guard_destination("rabbitmq/somewhere")


def test_data_without_a_rule_or_region_is_not_restricted(policy: Path) -> None:
    """No flow region, or a region without a rule: the guard lets it pass."""
    assert ftmap.guard_destination("rabbitmq/orders-us") == "us"
    with ft.context(tenant="acme", region="apac"):
        assert ftmap.guard_destination("rabbitmq/orders-us") == "us"


def test_explicit_rules_and_destinations_override(tmp_path: Path) -> None:
    ftmap.configure_residency(rules={"eu": ["eu", "ch"]}, destinations={"s3/backup": "ch"})
    with ft.context(tenant="acme", region="eu"):
        assert ftmap.guard_destination("s3/backup") == "ch"
        with pytest.raises(ResidencyViolationError):
            ftmap.guard_destination("s3/backup", region="us")
    with pytest.raises(ConfigError, match="must be a list of regions"):
        ftmap.configure_residency(rules={"eu": "eu"})  # type: ignore[dict-item]


pika = pytest.importorskip("pika")


@pytest.fixture
def queues() -> Iterator[tuple[Any, str, str]]:
    host, port = require_service("rabbitmq")
    suffix = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    eu, us = f"orders-eu-{suffix}", f"orders-us-{suffix}"
    connection = pika.BlockingConnection(
        pika.ConnectionParameters(
            host=host, port=port, credentials=pika.PlainCredentials("guest", "guest")
        )
    )
    channel = connection.channel()
    channel.queue_declare(eu)
    channel.queue_declare(us)
    try:
        yield channel, eu, us
    finally:
        channel.queue_delete(eu)
        channel.queue_delete(us)
        connection.close()


@pytest.mark.services
def test_real_rabbitmq_refused_message_never_reaches_the_queue(
    queues: tuple[Any, str, str], tmp_path: Path
) -> None:
    """On a real broker: the eu queue gets the message, the us queue stays empty."""
    channel, eu, us = queues
    log = audit.AuditLog(tmp_path / "audit.jsonl", durability="none")
    ftmap.configure_residency(
        rules={"eu": ["eu"]},
        destinations={f"rabbitmq/{eu}": "eu", f"rabbitmq/{us}": "us"},
        audit_log=log,
    )
    with ft.context(tenant="acme", region="eu"):
        ftmap.publish(channel, routing_key=eu, body=b"ok")
        with pytest.raises(ResidencyViolationError):
            ftmap.publish(channel, routing_key=us, body=b"refused")
    assert channel.queue_declare(us, passive=True).method.message_count == 0
    _, _, body = channel.basic_get(eu, auto_ack=True)
    assert body == b"ok"
    log.close()
    assert [r.resource for r in audit.query(tmp_path / "audit.jsonl")] == [f"rabbitmq/{us}"]
