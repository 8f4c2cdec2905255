"""The residency guard wired into flowtrace's own senders: inject, the key vault, the pika
helper (real RabbitMQ) and configure(); refusals reach the audit trail through the flow
events; configure(flow_metrics=...) counts flows; junk baggage never floods the audit log."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import flowtrace as ft
from flowtrace import audit
from flowtrace import map as ftmap
from flowtrace.crypto import (
    AwsKmsKeyProvider,
    FieldEncryptor,
    KeyVault,
    LocalKeyProvider,
    MemoryVaultStore,
)
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
name = "rabbitmq/{eu}"
region = "eu"
[[queues]]
name = "rabbitmq/{us}"
region = "us"
[[processors]]
name = "partner.us.example"
region = "us"
dpa = "DPA-7"
[[processors]]
name = "partner.eu.example"
region = "eu"
dpa = "DPA-8"
"""


def _declared(tmp_path: Path, eu: str = "orders-eu", us: str = "orders-us") -> Path:
    path = tmp_path / "map.toml"
    path.write_text(DECLARED.format(eu=eu, us=us))
    return path


@pytest.fixture
def log(flowtrace_capture: Capture, tmp_path: Path) -> Iterator[audit.AuditLog]:
    """An audit log given to configure() (after the capture's reset)."""
    log = audit.AuditLog(tmp_path / "audit.jsonl", durability="none")
    _paths[id(log)] = tmp_path / "audit.jsonl"
    ft.configure(audit_log=log)
    yield log
    log.close()
    del _paths[id(log)]


_paths: dict[int, Path] = {}


def _records(log: audit.AuditLog, action: str | None = None) -> list[audit.AuditEvent]:
    log.close()
    path = _paths[id(log)]
    return list(audit.query(path, action=action) if action else audit.query(path))


def test_configure_takes_the_declared_map(flowtrace_capture: Capture, tmp_path: Path) -> None:
    """configure(residency=path or DeclaredMap) arms the guard; bad values say what to pass."""
    ft.configure(residency=_declared(tmp_path))
    policy = ftmap.residency_policy()
    assert policy.rules == {"eu": frozenset({"eu"})}
    assert policy.region_of("rabbitmq/orders-us") == "us"
    ft.configure(residency=ftmap.load_declared(_declared(tmp_path)))
    assert ftmap.residency_policy().region_of("partner.eu.example") == "eu"
    with pytest.raises(ConfigError, match=r"residency=.*DeclaredMap"):
        ft.configure(residency={"eu": ["eu"]})
    ft.configure(residency=None)
    assert ftmap.residency_policy().rules == {}


def test_inject_refuses_a_forbidden_destination_and_writes_nothing(
    log: audit.AuditLog, tmp_path: Path
) -> None:
    """An EU flow injecting for a US host raises before any header is written; audited."""
    ft.configure(residency=_declared(tmp_path))
    carrier: dict[str, str] = {}
    with ft.context(tenant="acme", region="eu"):
        with pytest.raises(ResidencyViolationError, match=r"partner\.us\.example"):
            ft.inject(carrier, destination="https://partner.us.example/v1/charge")
        assert carrier == {}
        ft.inject(carrier, destination="https://partner.eu.example/v1/charge")
    assert carrier["baggage"].startswith("flowtrace.tenant=acme")
    [record] = _records(log, ftmap.RESIDENCY_ACTION)
    assert (record.outcome, record.tenant, record.region) == ("denied", "acme", "eu")
    assert record.resource == "https://partner.us.example/v1/charge"
    assert record.details["destination_region"] == "us"


def test_inject_without_destination_or_policy_is_unchanged(flowtrace_capture: Capture) -> None:
    """No policy: nothing is refused; no destination: nothing to check."""
    with ft.context(tenant="acme", region="eu"):
        assert "baggage" in ft.inject({}, destination="https://anywhere.example")
        ft.configure(residency=ftmap.ResidencyPolicy({"eu": frozenset({"eu"})}))
        assert "baggage" in ft.inject({})
        with pytest.raises(ResidencyViolationError, match="region unknown"):
            ft.inject({}, destination="https://anywhere.example")


def _encryptor(provider: Any, store: Any = None) -> FieldEncryptor:
    return FieldEncryptor(KeyVault(provider, store or MemoryVaultStore(), kek_id="kek-1"))


def test_key_vault_never_sends_eu_data_to_a_us_kms(log: audit.AuditLog) -> None:
    """A provider that declares region us cannot wrap a key for EU data; eu can; audited."""
    ft.configure(residency=ftmap.ResidencyPolicy({"eu": frozenset({"eu"})}))
    us = _encryptor(LocalKeyProvider.generate("kek-1", region="us"))
    eu = _encryptor(LocalKeyProvider.generate("kek-1", region="eu"))
    with ft.context(tenant="acme", region="eu"):
        with pytest.raises(ResidencyViolationError, match="kms/kek-1 \\(region us\\)"):
            us.encrypt("4111 1111 1111 1111", field="card")
        token = eu.encrypt("4111 1111 1111 1111", field="card")
        assert eu.decrypt(token, field="card", reason="test") == "4111 1111 1111 1111"
    with ft.context(tenant="acme", region="us"):  # us data has no rule: the us KMS is fine
        us.encrypt("4111 1111 1111 1111", field="card")
    [record] = _records(log, ftmap.RESIDENCY_ACTION)
    assert (record.resource, record.details["destination_region"]) == ("kms/kek-1", "us")


def test_key_vault_checks_unwrap_too(flowtrace_capture: Capture) -> None:
    """A key wrapped by a US KMS for US data is not unwrapped there for an EU flow."""
    provider = LocalKeyProvider.generate("kek-1", region="us")
    store = MemoryVaultStore()
    with ft.context(tenant="acme", region="us"):
        token = _encryptor(provider, store).encrypt("x@example.com", field="email")
    ft.configure(residency=ftmap.ResidencyPolicy({"eu": frozenset({"eu"})}))
    cold = _encryptor(provider, store)  # a fresh vault: nothing cached, the KMS is asked
    with ft.context(tenant="acme", region="eu"), pytest.raises(ResidencyViolationError):
        cold.decrypt(token, field="email", reason="test")


def test_provider_regions() -> None:
    """AwsKmsKeyProvider takes its region from the client unless given; Local has none."""
    client = SimpleNamespace(meta=SimpleNamespace(region_name="us-east-1"))
    assert AwsKmsKeyProvider(client).region == "us-east-1"
    assert AwsKmsKeyProvider(client, region="us").region == "us"
    assert LocalKeyProvider().region is None


def test_policy_audit_log_gets_the_record_once(log: audit.AuditLog) -> None:
    """The configured log is not written twice when the policy names the same log."""
    ftmap.configure_residency(rules={"eu": ["eu"]}, audit_log=log)
    with ft.context(tenant="acme", region="eu"), pytest.raises(ResidencyViolationError):
        ftmap.guard_destination("s3/backup", region="us")
    assert len(_records(log, ftmap.RESIDENCY_ACTION)) == 1


def test_junk_baggage_does_not_reach_the_audit_log(
    log: audit.AuditLog, flowtrace_capture: Capture
) -> None:
    """An outside client sending junk baggage on every request: counted and on the span,
    never appended to the audit trail (it would flood it)."""
    for _ in range(50):
        ctx = ft.extract({"baggage": "flowtrace.tenant=acme,not a member;;,=,vendor=%%%"})
        assert ctx.tenant == "acme"
    dropped = flowtrace_capture.events("baggage_dropped")
    assert len(dropped) == 50
    assert all(e.attributes["direction"] == "extract" for e in dropped)
    assert _records(log) == []


def test_configure_flow_metrics_counts_flows(flowtrace_capture: Capture) -> None:
    """configure(flow_metrics=...) adds FlowMetricsSpanProcessor to the built provider."""
    reader = InMemoryMetricReader()
    with pytest.raises(ConfigError, match="flow_metrics"):
        ft.configure(flow_metrics="yes")
    ft.configure(
        service="api",
        span_exporters=[InMemorySpanExporter()],
        flow_metrics=MeterProvider(metric_readers=[reader]),
    )
    tracer = ft.settings().tracer_provider.get_tracer("t")
    queue = {"messaging.system": "rabbitmq", "messaging.destination.name": "orders"}
    with (
        ft.context(tenant="acme", region="eu", purpose="checkout"),
        tracer.start_as_current_span("publish", kind=SpanKind.PRODUCER, attributes=queue),
    ):
        ftmap.record_data(categories=["pii"])
    points = [
        (dict(p.attributes), p.value)
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == ftmap.FLOWS_METRIC
        for p in m.data.data_points
    ]
    assert points == [
        (
            {
                "source": "api",
                "destination": "rabbitmq/orders",
                "category": "pii",
                "region": "eu",
                "purpose": "checkout",
                "encrypted": False,
            },
            1,
        )
    ]


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
def test_eu_request_to_a_us_queue_is_refused_and_audited_on_real_rabbitmq(
    queues: tuple[Any, str, str], log: audit.AuditLog, tmp_path: Path
) -> None:
    """The must-show: configure(residency=declared map, audit_log=...); an EU tenant's
    request publishing to the queue declared `us` is refused (the queue stays empty) and
    audited; the same to the `eu` queue goes through."""
    channel, eu, us = queues
    ft.configure(residency=_declared(tmp_path, eu=eu, us=us))

    @ft.handler("POST /orders", tenant=lambda request: request["tenant"], region=lambda _: "eu")
    def create_order(request: dict[str, str]) -> None:
        ftmap.publish(channel, routing_key=request["queue"], body=b"order", categories=["pii"])

    create_order({"tenant": "acme", "queue": eu})
    with pytest.raises(ResidencyViolationError):
        create_order({"tenant": "acme", "queue": us})
    assert channel.queue_declare(us, passive=True).method.message_count == 0
    _, properties, body = channel.basic_get(eu, auto_ack=True)
    assert body == b"order"
    assert ft.extract(properties.headers).tenant == "acme"
    [record] = _records(log, ftmap.RESIDENCY_ACTION)
    assert (record.outcome, record.resource, record.tenant) == ("denied", f"rabbitmq/{us}", "acme")
