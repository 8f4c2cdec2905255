"""Recording lineage: @step and lineage.record produce edge spans with the documented shape."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import flowtrace as ft
from flowtrace import lineage
from flowtrace.errors import LineageError, MissingTenantError, PseudonymKeyError
from flowtrace.lineage import ATTR, LineageGraph, parse_lineage_id, read_edges
from flowtrace.otel import get_tracer

KEY = b"k" * 32


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    ft.configure(tracer_provider=provider)
    yield exporter
    provider.shutdown()


def edges(exporter: InMemorySpanExporter) -> list[lineage.LineageEdge]:
    return list(read_edges(exporter.get_finished_spans()))


def test_step_records_one_edge_with_inputs_outputs_and_metadata(
    spans: InMemorySpanExporter,
) -> None:
    """A step call becomes one span carrying inputs, outputs, step, code version, params."""

    @ft.step(
        "normalize",
        inputs=lambda event: [f"stripe:charge/{event['id']}"],
        outputs=lambda order: [f"postgres://billing/orders#{order}"],
        code_version="etl-2.3.1",
        params={"currency": "EUR", "round": 2},
        hashes={"stripe:charge/ch_1": "sha256:00"},
    )
    def normalize(event: dict[str, str]) -> str:
        return "o-" + event["id"][3:]

    with ft.context(tenant="acme"):
        assert normalize({"id": "ch_1"}) == "o-1"
    (span,) = spans.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert span.name == "lineage normalize"
    assert attrs[ATTR.STEP] == "normalize"
    assert attrs[ATTR.INPUTS] == ("stripe:charge/ch_1",)
    assert attrs[ATTR.OUTPUTS] == ("postgres://billing/orders#o-1",)
    assert attrs[ATTR.CODE_VERSION] == "etl-2.3.1"
    assert attrs[ATTR.PARAMS] == '{"currency":"EUR","round":2}'
    assert attrs[ATTR.HASHES] == '{"stripe:charge/ch_1":"sha256:00"}'
    assert attrs[ATTR.TENANT] == "acme"
    assert attrs[ATTR.VERSION] == 1
    (edge,) = edges(spans)
    assert parse_lineage_id(edge.id) == (span.context.trace_id, span.context.span_id)
    assert edge.granularity == "record"


def test_body_runs_with_the_edge_as_lineage_parent(spans: InMemorySpanExporter) -> None:
    """Inside a step, FlowContext.lineage_parents is this edge; after it, the old value."""
    seen: list[tuple[str, ...]] = []

    @ft.step("inner", outputs=["mem:inner"])
    def inner() -> None:
        seen.append(ft.current().lineage_parents)

    @ft.step("outer", inputs=["mem:source"], outputs=["mem:outer"])
    def outer() -> None:
        seen.append(ft.current().lineage_parents)
        inner()

    with ft.context(lineage_parents=["upstream-id"]):
        outer()
        assert ft.current().lineage_parents == ("upstream-id",)
    inner_edge, outer_edge = edges(spans)
    assert outer_edge.parents == ("upstream-id",)
    assert seen[0] == (outer_edge.id,)
    assert inner_edge.parents == (outer_edge.id,)
    graph = LineageGraph([inner_edge, outer_edge])
    assert graph.upstream("mem:inner") == ["mem:source"]


def test_edge_span_links_to_parent_edge_spans(spans: InMemorySpanExporter) -> None:
    """An edge span links to the spans of its parent edges (their ids encode span contexts)."""
    first = lineage.record("a", outputs=["mem:a"])
    with ft.context(lineage_parents=[first.id]):
        lineage.record("b", inputs=["mem:a"], outputs=["mem:b"])
    span_a, span_b = spans.get_finished_spans()
    (link,) = span_b.links
    assert (link.context.trace_id, link.context.span_id) == (
        span_a.context.trace_id,
        span_a.context.span_id,
    )


def test_edge_span_is_never_the_current_span(spans: InMemorySpanExporter) -> None:
    """Spans opened inside the body are children of the caller's span, not of the edge span."""

    @ft.step("work", outputs=["mem:x"])
    def work() -> None:
        with get_tracer().start_as_current_span("body"):
            pass

    with get_tracer().start_as_current_span("handler") as handler:
        work()
    body = next(s for s in spans.get_finished_spans() if s.name == "body")
    edge_span = next(s for s in spans.get_finished_spans() if s.name == "lineage work")
    assert body.parent is not None
    assert body.parent.span_id == handler.get_span_context().span_id
    assert edge_span.parent is not None
    assert edge_span.parent.span_id == handler.get_span_context().span_id


def test_failed_step_records_error_edge_without_outputs(spans: InMemorySpanExporter) -> None:
    """A step that raises records an error edge (type only, no message) and re-raises."""

    @ft.step("explode", inputs=["mem:in"], outputs=lambda r: ["mem:never"])
    def explode() -> None:
        raise KeyError("secret@example.com")

    with pytest.raises(KeyError):
        explode()
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    (edge,) = edges(spans)
    assert edge.status == "error"
    assert edge.error_type == "KeyError"
    assert edge.outputs == ()
    assert "secret" not in repr(span.to_json())


def test_async_step(spans: InMemorySpanExporter) -> None:
    """Async steps record an edge and see their own id as lineage parent."""

    @ft.step("fetch", inputs=lambda n: [f"api:item/{n}"], outputs=lambda r: [f"mem:{r}"])
    async def fetch(n: int) -> str:
        await asyncio.sleep(0)
        return str(ft.current().lineage_parents[0])

    async def main() -> list[str]:
        return list(await asyncio.gather(fetch(1), fetch(2)))

    results = asyncio.run(main())
    recorded = {e.id: e for e in edges(spans)}
    assert set(results) == set(recorded)
    assert {e.inputs for e in recorded.values()} == {("api:item/1",), ("api:item/2",)}


def test_generator_step_collects_outputs_per_item(spans: InMemorySpanExporter) -> None:
    """A generator step is one edge whose outputs come from every yielded item."""
    inside: list[tuple[str, ...]] = []

    @ft.step("split", inputs=["mem:batch"], outputs=lambda item: [f"mem:item/{item}"])
    def split() -> Iterator[int]:
        for i in range(3):
            inside.append(ft.current().lineage_parents)
            yield i

    assert ft.current().lineage_parents == ()
    assert list(split()) == [0, 1, 2]
    (edge,) = edges(spans)
    assert edge.outputs == ("mem:item/0", "mem:item/1", "mem:item/2")
    assert inside == [(edge.id,)] * 3


def test_async_generator_step(spans: InMemorySpanExporter) -> None:
    """An async generator step is one edge with outputs from every item."""

    @ft.step("stream", outputs=lambda item: [f"mem:s/{item}"])
    async def stream() -> AsyncIterator[int]:
        for i in range(2):
            yield i

    async def main() -> list[int]:
        return [i async for i in stream()]

    assert asyncio.run(main()) == [0, 1]
    (edge,) = edges(spans)
    assert edge.outputs == ("mem:s/0", "mem:s/1")


def test_works_with_nothing_configured() -> None:
    """With no tracer provider configured, steps still run and get random valid ids."""

    @ft.step("noop", outputs=["mem:x"])
    def work() -> tuple[str, ...]:
        return ft.current().lineage_parents

    (edge_id,) = work()
    assert parse_lineage_id(edge_id) is not None


def test_explicit_subject_without_key_fails_closed_before_the_body(
    spans: InMemorySpanExporter,
) -> None:
    """Recording a subject with no pseudonym key raises and never runs the body."""
    ran: list[int] = []

    @ft.step("profile", subjects=lambda user: [user], outputs=["mem:p"])
    def profile(user: str) -> None:
        ran.append(1)

    with ft.context(tenant="acme"), pytest.raises(PseudonymKeyError, match="pseudonym_key"):
        profile("alice@example.com")
    assert ran == []
    assert spans.get_finished_spans() == ()


def test_subjects_are_pseudonyms_per_tenant(spans: InMemorySpanExporter) -> None:
    """Subjects are stored as keyed pseudonyms, different per tenant, never raw."""
    ft.configure(lineage=ft.lineage.LineageConfig(pseudonym_key=KEY))
    with ft.context(tenant="acme"):
        a = lineage.record("x", outputs=["mem:a"], subjects=["alice@example.com"])
    with ft.context(tenant="globex"):
        b = lineage.record("x", outputs=["mem:b"], subjects=["alice@example.com"])
    assert a.subjects[0].startswith("sp1:")
    assert len(a.subjects[0]) == 36
    assert a.subjects != b.subjects
    assert all("alice" not in repr(s.attributes) for s in spans.get_finished_spans())
    p = lineage.Pseudonymizer(KEY)
    assert p.pseudonym("alice@example.com", "acme") == a.subjects[0]


def test_subject_requires_tenant() -> None:
    """A subject outside any tenant is refused: pseudonyms are per tenant."""
    ft.configure(lineage=ft.lineage.LineageConfig(pseudonym_key=KEY))
    with pytest.raises(MissingTenantError):
        lineage.record("x", outputs=["mem:a"], subjects=["bob"])


def test_context_subject_recorded_when_keyed_and_flagged_when_not(
    spans: InMemorySpanExporter,
) -> None:
    """The flow context's subject is pseudonymised when a key exists, else only flagged."""
    with ft.context(tenant="acme", subject="patient-42"):
        unkeyed = lineage.record("read", inputs=["ehr:patient#42"])
        ft.configure(lineage=ft.lineage.LineageConfig(pseudonym_key=KEY))
        keyed = lineage.record("read", inputs=["ehr:patient#42"])
    assert unkeyed.subjects == ()
    assert unkeyed.subject_omitted
    assert keyed.subjects == (lineage.Pseudonymizer(KEY).pseudonym("patient-42", "acme"),)
    assert not keyed.subject_omitted
    assert "patient-42" not in repr([s.attributes for s in spans.get_finished_spans()])


def test_per_tenant_key_callable() -> None:
    """A key callable supplies each tenant's key; too-short keys are refused."""
    keys = {"acme": b"a" * 32, "globex": b"short"}
    p = lineage.Pseudonymizer(lambda tenant: keys[tenant])
    assert p.pseudonym("u", "acme") == p.pseudonym("u", "acme")
    with pytest.raises(PseudonymKeyError):
        p.pseudonym("u", "globex")
    with pytest.raises(PseudonymKeyError):
        lineage.Pseudonymizer(b"short")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"inputs": [""]},
        {"inputs": [3]},
        {"outputs": ["bad\nline"]},
        {"params": {"x": object()}},
        {"code_version": ""},
    ],
)
def test_bad_arguments_raise_at_decoration(kwargs: dict[str, Any]) -> None:
    """Bad identifiers, non-JSON params and empty versions fail fast with LineageError."""
    with pytest.raises(LineageError):
        ft.step("x", **kwargs)


def test_bad_callable_output_raises_lineage_error() -> None:
    """An outputs callable returning a non-identifier raises LineageError naming the problem."""

    @ft.step("x", outputs=lambda r: [r])
    def work() -> int:
        return 5

    with pytest.raises(LineageError, match="output"):
        work()


def test_granularity_from_identifier_shape() -> None:
    """Identifiers name datasets, records (#key) or fields (::field)."""
    assert lineage.ref("postgres://app/users", "42", "email") == "postgres://app/users#42::email"
    assert lineage.granularity("postgres://app/users") == "dataset"
    assert lineage.granularity("postgres://app/users#42") == "record"
    assert lineage.granularity("postgres://app/users::email") == "field"
    edge = lineage.record("copy", inputs=["form:signup::email"], outputs=["pg://app/users::email"])
    assert edge.granularity == "field"


def test_step_is_exported_at_top_level() -> None:
    """flowtrace.step is the one spelling: flowtrace.lineage has no second one."""
    assert "step" in ft.__all__
    assert not hasattr(lineage, "step")
    assert not hasattr(lineage, "configure")


def test_flow_context_stamping_never_copies_a_raw_subject_onto_edges() -> None:
    """With flowtrace.otel's stamping processor, edge spans still hold no raw subject."""
    from flowtrace.otel import FlowContextSpanProcessor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(FlowContextSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    ft.configure(tracer_provider=provider)
    ft.configure(lineage=ft.lineage.LineageConfig(pseudonym_key=KEY))
    with ft.context(tenant="acme", subject="patient-42"):
        lineage.record("read", inputs=["ehr:patient#42"])
        with get_tracer().start_as_current_span("ordinary"):
            pass
    edge_span, ordinary = exporter.get_finished_spans()
    assert "patient-42" not in repr(dict(edge_span.attributes or {}))
    assert edge_span.attributes["flowtrace.tenant"] == "acme"  # type: ignore[index]
    # The context was restored: the next ordinary span is stamped as before.
    # (as a keyed pseudonym since issue 10 item 14: never the raw subject)
    expected = lineage.Pseudonymizer(KEY).pseudonym("patient-42", "acme")
    assert (ordinary.attributes or {}).get("flowtrace.subject") == expected


def test_works_with_the_flowtrace_capture_fixture(flowtrace_capture: Any) -> None:
    """The pytest plugin's capture holds edge spans a LineageGraph can be built from."""

    @ft.step("copy", inputs=["mem:a"], outputs=["mem:b"])
    def copy() -> None:
        pass

    copy()
    graph = LineageGraph(read_edges(flowtrace_capture.spans()))
    assert graph.upstream("mem:b") == ["mem:a"]


def test_content_hashes_from_the_result(spans: InMemorySpanExporter) -> None:
    """hashes= may be a callable of the result; the edge records identifier -> sha256."""

    @ft.step(
        "export",
        outputs=["s3://reports/r.json"],
        hashes=lambda data: {"s3://reports/r.json": lineage.content_hash(data)},
    )
    def export() -> bytes:
        return b'{"eur": 1}'

    export()
    (edge,) = edges(spans)
    assert edge.hashes == {
        "s3://reports/r.json": "sha256:" + hashlib.sha256(b'{"eur": 1}').hexdigest()
    }
    with pytest.raises(LineageError, match="hashes"):
        ft.step("bad", hashes={"x": 1})  # type: ignore[dict-item]


def test_bad_subject_error_does_not_repeat_the_subject() -> None:
    """An invalid subject is refused without echoing the (personal) value."""
    ft.configure(lineage=ft.lineage.LineageConfig(pseudonym_key=KEY))
    with ft.context(tenant="acme"), pytest.raises(LineageError) as info:
        lineage.record("x", subjects=["alice@example.com\n"])
    assert "alice" not in str(info.value)


def test_edge_span_links_to_producers_of_its_inputs(spans: InMemorySpanExporter) -> None:
    """A step links to the spans that produced its inputs in this process, when known."""

    @ft.step("normalize", inputs=lambda c: [f"stripe:charge#{c}"], outputs=lambda o: [o])
    def normalize(charge: str) -> str:
        return f"pg://orders#{charge}-link-test"

    @ft.step("aggregate", inputs=lambda orders: orders, outputs=["wh://monthly#link-test"])
    def aggregate(orders: list[str]) -> None:
        pass

    aggregate([normalize("ch_1"), normalize("ch_2")])
    n1, n2, agg = spans.get_finished_spans()
    linked = {(link.context.trace_id, link.context.span_id) for link in agg.links}
    assert linked == {
        (n1.context.trace_id, n1.context.span_id),
        (n2.context.trace_id, n2.context.span_id),
    }


names = st.text(min_size=1, max_size=40).filter(lambda s: not s.startswith("sp1:"))


@given(names, names, names)
def test_pseudonym_format_and_tenant_separation(subject: str, tenant: str, other: str) -> None:
    """Pseudonyms are sp1: + 32 hex, stable per (tenant, subject), distinct across tenants."""
    p = lineage.Pseudonymizer(KEY)
    value = p.pseudonym(subject, tenant)
    assert re.fullmatch(r"sp1:[0-9a-f]{32}", value)
    assert p.pseudonym(subject, tenant) == value
    assert p.pseudonym(value, tenant) == value  # already a pseudonym: unchanged
    if other != tenant:
        assert p.pseudonym(subject, other) != value
    assert lineage.Pseudonymizer(b"x" * 32).pseudonym(subject, tenant) != value
