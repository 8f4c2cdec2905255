"""examples/map_system on real RabbitMQ and PostgreSQL, spans through the real OTLP/HTTP
exporter to a loopback receiver: the map matches the declaration, a residency violation is
refused and audited, an undeclared email flow fails the check with its trace id."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest

from tests._services import require_service

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "map_system"
SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "spec" / "map.schema.json"

pytest.importorskip("pika")
pytest.importorskip("psycopg")
pytestmark = pytest.mark.services


def test_three_services_map_check_residency_and_drift(tmp_path: Path) -> None:
    require_service("rabbitmq")
    require_service("postgresql")
    sys.path.insert(0, str(EXAMPLE))
    try:
        import run as example
    finally:
        sys.path.remove(str(EXAMPLE))
    result = example.run(tmp_path)
    run_id = result["run"]

    jsonschema.validate(
        tomllib.loads((tmp_path / "declared.toml").read_text()), json.loads(SCHEMA.read_text())
    )

    # 1. the running system matches its declaration
    assert result["phase1"].ok
    assert result["phase1_cli"] == 0
    observed = result["observed"]
    assert {
        ("orders-api", f"rabbitmq/orders-eu-{run_id}"),
        (f"rabbitmq/orders-eu-{run_id}", "billing-worker"),
        ("billing-worker", "postgresql/test"),
        ("billing-worker", "payments-psp"),
    } <= set(observed.flows)
    publish = observed.flow("orders-api", f"rabbitmq/orders-eu-{run_id}")
    assert publish.encrypted == {"pci"}  # the card left the API as a flowtrace token
    assert publish.plaintext == {"pii"}
    assert publish.tenants == {"acme", "globex"}
    assert all(not card.isdigit() for card in result["stored_cards"])

    # 2. the eu tenant's order to the us queue: refused before publishing, audited
    status, body = result["refused"]
    assert status == 451
    assert f"rabbitmq/orders-us-{run_id} (region us)" in body["error"]
    assert result["us_queue_messages"] == 0
    [record] = result["audit"]
    assert (record["outcome"], record["resource"], record["tenant"], record["trace_id"]) == (
        "denied",
        f"rabbitmq/orders-us-{run_id}",
        "acme",
        body["trace_id"],
    )
    assert ("orders-api", f"rabbitmq/orders-us-{run_id}") not in observed.flows
    assert ("orders-api", f"rabbitmq/orders-us-{run_id}") in observed.refused

    # 3. the undeclared email flow fails the check, naming the flow and its trace
    assert result["final_cli"] == 1
    [finding] = result["final"].failing
    assert (finding.rule, finding.source, finding.destination, finding.detail) == (
        "undeclared-flow",
        "orders-api",
        f"rabbitmq/marketing-{run_id}",
        "pii",
    )
    assert finding.trace_ids == [result["newsletter_trace"]]

    # the OTLP JSON file the receiver wrote gives the same map as the protobuf one
    assert result["observed_json"]["flows"] == observed.to_dict()["flows"]
    assert (tmp_path / "report.html").read_text().count("undeclared-flow") >= 1
