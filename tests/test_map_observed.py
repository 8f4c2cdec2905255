"""The observed map: nodes and flows built from real SDK spans, read back from every source."""

from __future__ import annotations

import contextlib
import json
import struct
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import flowtrace as ft
from flowtrace import map as ftmap
from flowtrace.errors import MapSourceError
from flowtrace.otel import JsonLinesSpanExporter

from ._map_system import run_system


@pytest.fixture
def sdk_spans() -> list[Any]:
    exporter = InMemorySpanExporter()
    run_system(exporter)
    return list(exporter.get_finished_spans())


def test_nodes_and_flows_follow_the_semantic_conventions(sdk_spans: list[Any]) -> None:
    """Producer, consumer, db and outbound HTTP spans become the flows between systems."""
    observed = ftmap.build(spans=sdk_spans)
    assert sorted(observed.flows) == [
        ("billing-worker", "payments-psp"),
        ("billing-worker", "postgresql/shop"),
        ("orders-api", "rabbitmq/orders"),
        ("rabbitmq/orders", "billing-worker"),
    ]
    kinds = {node.id: node.kind for node in observed.nodes.values()}
    assert kinds == {
        "orders-api": "service",
        "billing-worker": "service",
        "rabbitmq/orders": "queue",
        "postgresql/shop": "store",
        "payments-psp": "external",
    }
    assert observed.nodes["orders-api"].region == "eu"
    assert observed.spans == len(sdk_spans)


def test_flow_facts_categories_encryption_purposes_tenants(sdk_spans: list[Any]) -> None:
    """A flow aggregates categories (plaintext vs ciphertext), purposes, bases, tenants."""
    observed = ftmap.build(spans=sdk_spans)
    publish = observed.flow("orders-api", "rabbitmq/orders")
    assert publish.categories == {"pii", "pci"}
    assert publish.plaintext == {"pii"}
    assert publish.encrypted == {"pci"}
    assert publish.purposes == {"checkout"}
    assert publish.legal_bases == {"contract"}
    assert publish.data_regions == {"eu"}
    store = observed.flow("billing-worker", "postgresql/shop")
    assert store.count == 2
    assert store.tenants == {"acme", "globex"}
    # globex's insert had no legal basis but handed over no data: nothing is missing
    assert store.legal_bases == {"contract"}
    trace_id, span_id = store.samples("plaintext:pii")[0]
    wanted = [
        s
        for s in sdk_spans
        if s.name == "INSERT" and s.attributes.get("flowtrace.tenant") == "acme"
    ]
    assert (trace_id, span_id) == (
        format(wanted[0].context.trace_id, "032x"),
        format(wanted[0].context.span_id, "016x"),
    )


def test_aggregate_json_counts_tenants_never_names_them(sdk_spans: list[Any]) -> None:
    """The JSON output gives tenant counts; names only when asked."""
    data = ftmap.build(spans=sdk_spans).to_dict()
    assert "acme" not in json.dumps(data)
    flow = next(f for f in data["flows"] if f["to"] == "postgresql/shop")
    assert flow["tenants"] == 2
    named = ftmap.build(spans=sdk_spans).to_dict(tenant_names=True)
    assert next(f for f in named["flows"] if f["to"] == "postgresql/shop")["tenant_names"] == [
        "acme",
        "globex",
    ]


def _hex_ids(data: Any) -> Any:
    """OTLP JSON (the Collector file exporter) spells ids in hex, protobuf JSON in base64."""
    import base64

    if isinstance(data, dict):
        return {
            k: base64.b64decode(v).hex()
            if k in ("traceId", "spanId", "parentSpanId")
            else _hex_ids(v)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [_hex_ids(v) for v in data]
    return data


def test_every_file_source_builds_the_same_map(sdk_spans: list[Any], tmp_path: Path) -> None:
    """flowtrace span lines, OTLP JSON lines and length-prefixed OTLP protobuf agree."""
    lines = tmp_path / "spans.jsonl"
    exporter = JsonLinesSpanExporter(lines)
    exporter.export(sdk_spans)
    exporter.shutdown()
    request = encode_spans(sdk_spans)
    otlp_json = tmp_path / "otlp.json"
    otlp_json.write_text(json.dumps(_hex_ids(MessageToDict(request))) + "\n")
    otlp_proto = tmp_path / "otlp.pb"
    body = request.SerializeToString()
    otlp_proto.write_bytes(struct.pack(">I", len(body)) + body)

    expected = ftmap.build(spans=sdk_spans).to_dict()
    for path in (lines, otlp_json, otlp_proto):
        assert ftmap.build([path]).to_dict() == expected, path.name


def test_unreadable_sources_name_file_and_line(tmp_path: Path) -> None:
    """A line that is no known format raises MapSourceError with file:line."""
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"hello": 1}\n')
    with pytest.raises(MapSourceError, match=r"x.jsonl:1: not a flowtrace span line"):
        ftmap.build([bad])
    with pytest.raises(MapSourceError, match="does not exist"):
        ftmap.build([tmp_path / "missing"])
    truncated = tmp_path / "t.pb"
    truncated.write_bytes(struct.pack(">I", 50) + b"\x0a\x01")
    with pytest.raises(MapSourceError, match="truncated"):
        ftmap.build([truncated])


def test_lineage_edges_and_audit_records_become_flows(tmp_path: Path) -> None:
    """A lineage step reads a dataset and writes one; an audit record reads a collection."""
    from flowtrace import audit, lineage

    edges = tmp_path / "edges.jsonl"
    edge = lineage.LineageEdge(
        id="0" * 31 + "1-" + "0" * 15 + "2",
        name="normalize",
        inputs=("pg://app/orders#1",),
        outputs=("s3://lake/orders_clean",),
        service="etl",
    )
    edges.write_text(json.dumps(edge.to_dict()) + "\n")
    log_path = tmp_path / "audit.jsonl"
    with audit.AuditLog(log_path) as log, ft.context(tenant="acme", purpose="care", region="eu"):
        log.append("patient.read", resource="patients/42", data_categories=("phi",))
    observed = ftmap.build([edges, log_path])
    assert ("pg://app/orders", "etl") in observed.flows
    assert ("etl", "s3://lake/orders_clean") in observed.flows
    read = observed.flow("patients", "unknown_service")
    assert read.categories == {"phi"}
    assert read.purposes == {"care"}
    assert read.samples()[0][1] == "audit:0"


def test_memory_grows_with_flows_not_spans() -> None:
    """Ten times the spans over the same flows: the peak stays within the same bound."""

    def peak(count: int) -> int:
        attrs = {
            "db.system": "postgresql",
            "db.namespace": "shop",
            "flowtrace.tenant": "t",
            "flowtrace.data.categories": ["pii"],
        }
        resource = {"service.name": "api"}
        spans = ((f"{i:032x}", f"{i:016x}", "CLIENT", attrs, resource, i) for i in range(count))
        tracemalloc.start()
        ftmap.ObservedMap().add_all(spans)
        result = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return result

    small, large = peak(2_000), peak(20_000)
    assert large < small * 1.5 + 4096


def test_scrubber_findings_count_unless_the_span_states_its_data() -> None:
    """Scrubbed categories are evidence of data on a span; a record_data statement wins
    (the scrubber also matches the span's own metadata, e.g. an IP in server.address)."""
    db = {"db.system": "postgresql", "db.namespace": "shop"}
    observed = ftmap.ObservedMap()
    observed.add(
        "1" * 32,
        "1" * 16,
        "CLIENT",
        {**db, "flowtrace.scrub.categories": ["pii", "unclassified"]},
        {"service.name": "a"},
    )
    observed.add(
        "2" * 32,
        "2" * 16,
        "CLIENT",
        {
            **db,
            "flowtrace.scrub.categories": ["network"],
            "flowtrace.data.categories": ["pci"],
            "flowtrace.data.encrypted": ["pci"],
        },
        {"service.name": "b"},
    )
    assert observed.flow("a", "postgresql/shop").categories == {"pii"}
    assert observed.flow("b", "postgresql/shop").categories == {"pci"}
    assert observed.flow("b", "postgresql/shop").plaintext == set()


def test_record_data_classifies_payloads_and_spots_tokens() -> None:
    """Fields are classified with the schema; a flowtrace token counts as encrypted."""
    from flowtrace.classify import Schema
    from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider, MemoryVaultStore

    schema = Schema.from_dict({"email": "confidential:pii", "card": "restricted:pci"})
    with tempfile.TemporaryDirectory() as tmp:
        keys = LocalKeyProvider.open_keyring(
            Path(tmp) / "k.json", master_key=LocalKeyProvider.new_master_key(), create=["kek"]
        )
        enc = FieldEncryptor(KeyVault(keys, MemoryVaultStore(), kek_id="kek"))
        with ft.context(tenant="acme"):
            token = enc.encrypt("4111111111111111", field="card")
    order = {"email": "a@b.c", "payment": {"card": token}, "note": "x"}
    assert ftmap.classify_payload(order, schema) == ({"pii", "pci"}, {"pci"})
    plain = {"email": "a@b.c", "card": "4111111111111111"}
    assert ftmap.classify_payload(plain, schema) == ({"pii", "pci"}, set())


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
_attr_keys = st.sampled_from(
    [
        "db.system",
        "messaging.system",
        "messaging.destination.name",
        "http.request.method",
        "flowtrace.purpose",
        "flowtrace.tenant",
        "flowtrace.data.categories",
        "server.address",
        "flowtrace.lineage.step",
        "flowtrace.lineage.inputs",
        "flowtrace.region",
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    st.fixed_dictionaries(
        {"span_id": _json},
        optional={
            "trace_id": _json,
            "kind": st.sampled_from(["CLIENT", "PRODUCER", "CONSUMER"]) | _json,
            "attributes": st.dictionaries(_attr_keys, _json, max_size=5) | _json,
            "resource": st.dictionaries(st.just("service.name"), _json) | _json,
            "end_time_unix_nano": _json,
        },
    )
    | st.fixed_dictionaries({"resourceSpans": _json})
)
def test_any_span_line_builds_or_raises_map_source_error(line: dict[str, Any]) -> None:
    """Foreign files never break the build with a TypeError: a map or MapSourceError."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spans.jsonl"
        path.write_text(json.dumps(line) + "\n")
        with contextlib.suppress(MapSourceError):
            ftmap.build([path]).to_dict()


def test_the_map_package_imports_only_public_flowtrace_names() -> None:
    """flowtrace.map sits above the other packages and uses their public names only, so
    the regrouping of private modules cannot break it. The one exception is the settings
    leaf ``flowtrace._settings``, which every layer reads (it is not another package)."""
    import ast

    package = Path(ftmap.__file__).parent
    private = []
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:
                target = node.module or ""
                if not target:  # from .. import a, b
                    target = ".".join(alias.name for alias in node.names)
                if target == "_settings":
                    continue
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                target = (node.module or "").removeprefix("flowtrace").lstrip(".")
                if not (node.module or "").startswith("flowtrace"):
                    continue
            else:
                continue
            if any(part.startswith("_") for part in target.split(".") if part):
                private.append(f"{module.name}: {target}")
    assert private == []


def test_a_lineage_buffer_directory_is_a_source(tmp_path: Path) -> None:
    """Edges recorded by @ft.step into the durable buffer become dataset flows."""
    from opentelemetry.sdk.trace import TracerProvider

    from flowtrace import lineage

    ft.configure(tracer_provider=TracerProvider(), service="etl")
    buffer = lineage.LineageBuffer(tmp_path / "buf", exporter=InMemorySpanExporter())
    ft.configure(lineage=lineage.LineageConfig(buffer=buffer))

    @ft.step("normalize", inputs=lambda i: [f"stripe:charges#{i}"], outputs=lambda r: [r])
    def normalize(i: int) -> str:
        return f"pg://billing/orders#{i}"

    with ft.context(tenant="acme"):
        for i in range(3):
            normalize(i)
    buffer.close(ship=False)
    observed = ftmap.build([tmp_path / "buf"])
    assert sorted(observed.flows) == [("etl", "pg://billing/orders"), ("stripe:charges", "etl")]
    assert observed.flow("stripe:charges", "etl").count == 3
    assert observed.flow("stripe:charges", "etl").tenants == {"acme"}
