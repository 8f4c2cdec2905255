"""Reading lineage: the graph queries and every reader (spans, OTLP JSON, JSON lines)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import flowtrace
from flowtrace import lineage
from flowtrace.errors import LineageError, PseudonymKeyError
from flowtrace.lineage import (
    LineageEdge,
    LineageGraph,
    edge_attributes,
    edge_from_attributes,
    read_edges,
)

KEY = b"s" * 32
P = lineage.Pseudonymizer(KEY)


def e(
    edge_id: str,
    inputs: tuple[str, ...] = (),
    outputs: tuple[str, ...] = (),
    parents: tuple[str, ...] = (),
    tenant: str | None = "acme",
    subjects: tuple[str, ...] = (),
) -> LineageEdge:
    return LineageEdge(
        id=edge_id,
        name=f"step-{edge_id}",
        inputs=inputs,
        outputs=outputs,
        parents=parents,
        tenant=tenant,
        subjects=subjects,
    )


@pytest.fixture
def graph() -> LineageGraph:
    alice = P.pseudonym("alice", "acme")
    return LineageGraph(
        [
            e("n1", ("charge:1",), ("order:1",), subjects=(alice,)),
            e("n2", ("charge:2",), ("order:2",)),
            e("agg", ("order:1", "order:2"), ("month:jan",)),
            e("rep", ("month:jan", "fx:eur"), ("report:jan",)),
            e("pub", (), ("msg:1",), parents=("rep",)),  # descends via lineage parents only
            e("other", ("charge:9",), ("order:9",), tenant="globex"),
        ]
    )


def test_upstream_reaches_sources_nearest_first(graph: LineageGraph) -> None:
    """upstream walks inputs breadth-first down to the source records."""
    assert graph.upstream("report:jan") == [
        "month:jan",
        "fx:eur",
        "order:1",
        "order:2",
        "charge:1",
        "charge:2",
    ]
    assert sorted(graph.sources("report:jan")) == ["charge:1", "charge:2", "fx:eur"]


def test_upstream_follows_lineage_parents(graph: LineageGraph) -> None:
    """An output whose edge only has lineage parents still reaches the parents' inputs."""
    assert set(graph.sources("msg:1")) == {"charge:1", "charge:2", "fx:eur"}
    assert graph.upstream("pub") == graph.upstream("msg:1")  # an edge id works too


def test_downstream_follows_outputs_and_child_edges(graph: LineageGraph) -> None:
    """downstream walks consumers and edges that name this edge as parent."""
    assert graph.downstream("charge:1") == ["order:1", "month:jan", "report:jan", "msg:1"]
    assert graph.downstream("order:9") == []


def test_tenant_filter(graph: LineageGraph) -> None:
    """A tenant filter ignores other tenants' edges."""
    assert graph.upstream("order:9", tenant="acme") == []
    assert graph.upstream("order:9", tenant="globex") == ["charge:9"]


def test_derived_from_subject(graph: LineageGraph) -> None:
    """derived_from lists the subject's records and everything derived from them."""
    expected = ["charge:1", "order:1", "month:jan", "report:jan", "msg:1"]
    assert graph.derived_from("alice", tenant="acme", pseudonymizer=P) == expected
    assert graph.derived_from(P.pseudonym("alice", "acme"), tenant="acme") == expected
    assert graph.derived_from("alice", tenant="globex", pseudonymizer=P) == []
    with pytest.raises(PseudonymKeyError):
        graph.derived_from("alice", tenant="acme")  # raw subject, no key configured


def test_derived_from_uses_configured_key(graph: LineageGraph) -> None:
    """Without an explicit pseudonymizer, the configured lineage key is used."""
    flowtrace.configure(lineage=flowtrace.lineage.LineageConfig(pseudonym_key=KEY))
    assert graph.derived_from("alice", tenant="acme")[0] == "charge:1"


def test_duplicates_by_id_are_ignored_and_counted() -> None:
    """Adding an edge id twice keeps one edge and counts the duplicate."""
    g = LineageGraph([e("x", ("a",), ("b",)), e("x", ("a",), ("b",))])
    assert (len(g), g.duplicates) == (1, 1)


def test_unknown_identifier_raises(graph: LineageGraph) -> None:
    """Querying an unknown identifier raises LineageError naming it."""
    with pytest.raises(LineageError, match="nope"):
        graph.upstream("nope")
    with pytest.raises(LineageError):
        graph.edge("nope")


def test_cycles_terminate() -> None:
    """A cycle in recorded lineage does not loop forever."""
    g = LineageGraph([e("1", ("a",), ("b",)), e("2", ("b",), ("a",))])
    assert g.upstream("a") == ["b"]  # the start is never its own ancestor
    assert g.trace("a").to_dict()["produced_by"]


def test_trace_tree(graph: LineageGraph) -> None:
    """trace() returns the upstream tree: identifier -> producing edges -> their inputs."""
    tree = graph.trace("report:jan").to_dict()
    (rep,) = tree["produced_by"]  # type: ignore[misc]
    assert rep["step"] == "step-rep"
    assert [child["id"] for child in rep["inputs"]] == ["month:jan", "fx:eur"]


def test_otlp_json_reader(tmp_path: Path) -> None:
    """Edges are read from OTLP/JSON as a Collector file exporter writes it."""
    edge = e("0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331", ("in:1",), ("out:1",))
    attrs = [
        {"key": k, "value": {"arrayValue": {"values": [{"stringValue": x} for x in v]}}}
        if isinstance(v, list)
        else {"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
        for k, v in edge_attributes(edge).items()
    ]
    request = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "0af7651916cd43dd8448eb211c80319c",
                                "spanId": "b7ad6b7169203331",
                                "name": "lineage x",
                                "startTimeUnixNano": "5",
                                "endTimeUnixNano": "9",
                                "attributes": attrs,
                                "status": {"code": 2},
                            },
                            {"name": "not lineage", "attributes": []},
                        ]
                    }
                ],
            }
        ]
    }
    (got,) = read_edges(request)
    assert (got.id, got.inputs, got.outputs, got.service) == (edge.id, ("in:1",), ("out:1",), "svc")
    assert (got.start_ns, got.end_ns, got.status) == (5, 9, "error")
    path = tmp_path / "traces.json"
    path.write_text(json.dumps(request) + "\n" + json.dumps(request) + "\n")
    graph = LineageGraph(read_edges(path))
    assert (len(graph), graph.duplicates) == (1, 1)
    with pytest.raises(LineageError, match="resourceSpans"):
        list(read_edges({"spans": []}))


def test_jsonl_reader_and_errors(tmp_path: Path) -> None:
    """JSON-lines files load; a bad line raises LineageError naming file and line."""
    path = tmp_path / "edges.jsonl"
    path.write_text(e("a", ("x",), ("y",)).to_json() + "\n" + "{}\n")
    with pytest.raises(LineageError, match=r"edges.jsonl:2"):
        list(read_edges(path))
    with pytest.raises(LineageError, match="does not exist"):
        list(read_edges(tmp_path / "missing"))
    path.write_text(e("a", ("x",), ("y",)).to_json() + "\n")
    assert LineageGraph.load(str(path)).upstream("y") == ["x"]


def test_unsupported_format_version_is_refused() -> None:
    """A newer edge format version raises instead of being misread."""
    with pytest.raises(LineageError, match="version"):
        LineageEdge.from_json('{"v": 2, "id": "a", "step": "s"}')
    with pytest.raises(LineageError, match="version"):
        edge_from_attributes(
            {
                "flowtrace.lineage.id": "a",
                "flowtrace.lineage.step": "s",
                "flowtrace.lineage.version": 9,
            }
        )


identifiers = st.text(
    st.sampled_from("abcXYZ019:/#._-é中🙂 ") | st.characters(codec="utf-8", categories=("L", "N")),
    min_size=1,
    max_size=16,
)
lineage_ids = st.builds(
    lineage.format_lineage_id,
    st.integers(1, 2**128 - 1),
    st.integers(1, 2**64 - 1),
)
edges_strategy = st.builds(
    LineageEdge,
    id=lineage_ids,
    name=identifiers,
    inputs=st.lists(identifiers, max_size=4).map(tuple),
    outputs=st.lists(identifiers, max_size=4).map(tuple),
    parents=st.lists(identifiers, max_size=3).map(tuple),
    code_version=st.none() | identifiers,
    params=st.dictionaries(identifiers, st.integers() | identifiers, max_size=3),
    hashes=st.dictionaries(identifiers, identifiers, max_size=2),
    subjects=st.lists(identifiers, max_size=2).map(tuple),
    tenant=st.none() | identifiers,
    status=st.sampled_from(["ok", "error"]),
    start_ns=st.integers(0, 2**63 - 1),
    end_ns=st.integers(0, 2**63 - 1),
    subject_omitted=st.booleans(),
)


@given(edges_strategy)
def test_json_line_roundtrip(edge: LineageEdge) -> None:
    """Every edge survives the buffer JSON-lines form unchanged, on one line."""
    line = edge.to_json()
    assert "\n" not in line
    canonical = json.dumps(
        edge.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert line == canonical
    assert LineageEdge.from_json(line) == edge


@given(edges_strategy)
def test_span_roundtrip(edge: LineageEdge) -> None:
    """Every edge survives export as an SDK span and reading back."""
    (back,) = read_edges([lineage.edge_to_span(edge)])
    assert back.id == edge.id
    assert (back.inputs, back.outputs, back.parents) == (edge.inputs, edge.outputs, edge.parents)
    assert (back.params, back.hashes, back.subjects) == (edge.params, edge.hashes, edge.subjects)
    assert (back.code_version or None, back.tenant or None) == (
        edge.code_version or None,
        edge.tenant or None,
    )
    assert back.status == edge.status


def test_public_namespace_exports_exactly_its_all() -> None:
    """Every name in flowtrace.lineage.__all__ resolves; no public name is missing from it."""
    for name in lineage.__all__:
        assert getattr(lineage, name) is not None
    names = set(dir(lineage))
    # ("@py_*" names: pytest rewrites the flowtrace package, a pytest11 plugin.)
    public = {n for n in names if n[0] not in "_@"} - {"annotations", "TYPE_CHECKING", "Any"}
    assert public == set(lineage.__all__) - {"OpenLineageBridge"}  # the bridge loads lazily


def test_reads_flowtrace_span_lines_from_configure_spans_file(tmp_path: Path) -> None:
    """Spans written by configure(spans_file=...) are a lineage source for the graph/CLI."""
    import flowtrace as ft

    path = tmp_path / "spans.jsonl"
    ft.configure(spans_file=str(path), service="etl")

    @ft.step("copy", inputs=["mem:a"], outputs=["mem:b"])
    def copy() -> None:
        pass

    with ft.context(tenant="acme"):
        copy()
    provider = ft.settings().tracer_provider
    provider.force_flush()
    graph = LineageGraph.load(str(path))
    (edge,) = graph
    assert (edge.inputs, edge.outputs, edge.tenant, edge.service) == (
        ("mem:a",),
        ("mem:b",),
        "acme",
        "etl",
    )
    assert lineage.parse_lineage_id(edge.id) is not None


def test_foreign_ids_survive_shipping_as_spans() -> None:
    """An edge whose id is not a span context keeps its id (and stable span ids) as a span."""
    edge = e("order-import-7", ("csv:orders#1",), ("pg:orders#1",))
    first, again = lineage.edge_to_span(edge), lineage.edge_to_span(edge)
    assert first.context.span_id == again.context.span_id
    (back,) = read_edges([first])
    assert back.id == "order-import-7"
