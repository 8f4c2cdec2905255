"""Lineage run state: one edge in flight, and ``flowtrace.lineage.record``.

A :class:`_Run` opens the edge span before the body runs (it never becomes the current
span, so forcing it sampled never drags the body's spans along) and takes its span context
as the lineage id; :meth:`_Run.finish` ends the span and emits the edge. The ``@step``
wrappers that drive runs around a function call live in ``_step``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, cast

from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext, Status, StatusCode, TraceFlags

from .._settings import settings
from .._tracing import get_tracer, tracer_provider
from ..errors import LineageError
from ..flowcontext import FlowContext, attach, current, detach
from ._edge import ATTR, FORMAT_VERSION, LineageEdge, as_identifiers, canonical_json
from ._ids import format_lineage_id, new_lineage_id, parse_lineage_id
from ._pseudonym import require_pseudonymizer
from ._runtime import emit, lineage_config

__all__ = ["record"]

Identifiers = str | Sequence[str] | Callable[..., Iterable[str] | str] | None
Hashes = Mapping[str, str] | Callable[[Any], Mapping[str, str]] | None


def _check_hashes(hashes: object) -> dict[str, str]:
    if hashes is None:
        return {}
    if not isinstance(hashes, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in hashes.items()
    ):
        raise LineageError(
            "lineage hashes must map identifiers (str) to hashes (str), e.g. "
            "{'s3://b/k': flowtrace.lineage.content_hash(data)}"
        )
    return dict(hashes)


_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
MAX_INPUT_LINKS = 32
"""At most this many links to the producers of a step's inputs (OTel keeps 128 links)."""
_PRODUCED_MAX = 65536
# identifier -> lineage id of the edge that last produced it in this process, for the
# current tracer provider (bounded, best effort: it only adds span links; the graph joins
# edges by identifiers anyway).
_produced: dict[str, str] = {}
_produced_owner: list[object] = [None]


def _produced_map() -> dict[str, str]:
    """The producer map of the tracer provider in force (a new provider starts empty)."""
    provider = tracer_provider()
    if _produced_owner[0] is not provider:
        _produced.clear()
        _produced_owner[0] = provider
    return _produced


_link_cache: dict[tuple[str, ...], list[Link]] = {}


def _links(parents: tuple[str, ...]) -> list[Link]:
    """Links to the spans of ``parents`` (cached: a scope's steps share their parents)."""
    links = _link_cache.get(parents)
    if links is None:
        links = []
        for parent in parents:
            ids = parse_lineage_id(parent)
            if ids is not None:
                links.append(Link(SpanContext(ids[0], ids[1], True, _SAMPLED)))
        if len(_link_cache) >= 4096:
            _link_cache.clear()
        _link_cache[parents] = links
    return links


def _with_parent(ctx: FlowContext, edge_id: str) -> FlowContext:
    """``ctx`` with ``lineage_parents == (edge_id,)``."""
    return ctx.replace(lineage_parents=(edge_id,))


class _Spec:
    """What a ``@step`` decoration fixed once: name, static attributes, callables."""

    __slots__ = (
        "base",
        "code_version",
        "dynamic_outputs",
        "hashes",
        "inputs",
        "name",
        "outputs",
        "params",
        "span_name",
        "subjects",
    )

    def __init__(
        self,
        name: str,
        inputs: Identifiers,
        outputs: Identifiers,
        code_version: str | None,
        params: Mapping[str, Any] | None,
        subjects: Identifiers,
        hashes: Hashes,
    ) -> None:
        if type(name) is not str or not name or not name.isprintable():
            raise LineageError(f"a step name must be a non-empty printable str, got {name!r}")
        if code_version is not None and (type(code_version) is not str or not code_version):
            raise LineageError(f"code_version must be a non-empty str, got {code_version!r}")
        self.name = name
        self.code_version = code_version
        self.params = dict(params or {})
        self.hashes: Any = hashes if callable(hashes) else _check_hashes(hashes)
        self.inputs = inputs if callable(inputs) else as_identifiers(inputs, "input")
        self.outputs = outputs if callable(outputs) else as_identifiers(outputs, "output")
        self.subjects: Any = subjects if callable(subjects) else as_identifiers(subjects, "subject")
        self.span_name = f"lineage {name}"
        self.dynamic_outputs = callable(outputs)
        base: dict[str, Any] = {ATTR.VERSION: FORMAT_VERSION, ATTR.STEP: name}
        if self.outputs and not self.dynamic_outputs:
            base[ATTR.OUTPUTS] = self.outputs
        if code_version:
            base[ATTR.CODE_VERSION] = code_version
        if self.params:
            base[ATTR.PARAMS] = canonical_json(self.params, "params")
        if self.hashes and not callable(self.hashes):
            base[ATTR.HASHES] = canonical_json(self.hashes, "hashes")
        self.base = base


class _Run:
    """One edge in flight: opened before the body, finished after it."""

    __slots__ = (
        "cfg",
        "hashes",
        "id",
        "inputs",
        "outputs",
        "parents",
        "produced",
        "span",
        "span_parent",
        "spec",
        "start_ns",
        "subject_omitted",
        "subjects",
        "tenant",
    )

    def __init__(
        self,
        spec: _Spec,
        inputs: tuple[str, ...],
        subjects: tuple[str, ...],
        parents: tuple[str, ...] | None = None,
    ) -> None:
        ctx = current()
        cfg = lineage_config()
        self.spec = spec
        self.cfg = cfg
        self.tenant = ctx.tenant
        self.parents = ctx.lineage_parents if parents is None else parents
        self.inputs = inputs
        self.outputs: list[str] = []
        self.hashes: dict[str, str] | None = None
        self.produced = _produced_map()
        self.subject_omitted = False
        if ctx.subject is not None and ctx.subject not in subjects:
            if cfg.pseudonymizer is None:
                self.subject_omitted = True
            else:
                subjects = (*subjects, ctx.subject)
        if subjects:
            p = require_pseudonymizer(cfg.pseudonymizer)
            subjects = tuple(dict.fromkeys(p.pseudonym(s, ctx.tenant) for s in subjects))
        self.subjects = subjects
        attrs = dict(spec.base)
        if inputs:
            attrs[ATTR.INPUTS] = inputs
        if self.parents:
            attrs[ATTR.PARENTS] = self.parents
        if self.tenant:
            attrs[ATTR.TENANT] = self.tenant
        if subjects:
            attrs[ATTR.SUBJECTS] = subjects
        if self.subject_omitted:
            attrs[ATTR.SUBJECT_OMITTED] = True
        self.start_ns = time.time_ns()
        # Span processors that stamp the flow context (flowtrace.otel) must not copy a raw
        # subject onto the edge span: lineage holds subjects only as pseudonyms.
        hide = attach(ctx.replace(subject=None)) if ctx.subject is not None else None
        try:
            span = get_tracer().start_span(
                spec.span_name,
                attributes=attrs,
                links=self._links(inputs),
                start_time=self.start_ns,
            )
        finally:
            if hide is not None:
                detach(hide)
        self.span = span
        sc = span.get_span_context()
        if span.is_recording():  # an SDK span: its context is fresh
            parent = getattr(span, "parent", None)
            self.span_parent = f"{parent.span_id:016x}" if parent is not None else None
            self.id = format_lineage_id(sc.trace_id, sc.span_id)
            return
        parent_sc = trace.get_current_span().get_span_context()
        self.span_parent = f"{parent_sc.span_id:016x}" if parent_sc.is_valid else None
        if sc.is_valid and sc.span_id != parent_sc.span_id:  # SDK, sampled out
            self.id = format_lineage_id(sc.trace_id, sc.span_id)
        else:  # no SDK tracer: a random id, still a valid span context for shipping
            self.id = new_lineage_id()
            if parent_sc.is_valid:
                self.id = format_lineage_id(parent_sc.trace_id, int(self.id[33:], 16))

    def _links(self, inputs: tuple[str, ...]) -> list[Link] | None:
        """Links to the parent edges, then to the edges that produced the inputs here."""
        links = _links(self.parents) if self.parents else None
        produced = self.produced
        if inputs and produced:
            extra: list[Link] = []
            known = set(self.parents)
            for identifier in inputs:
                producer = produced.get(identifier)
                if producer is not None and producer not in known:
                    known.add(producer)
                    extra.extend(_links((producer,)))
                    if len(extra) >= MAX_INPUT_LINKS:
                        break
            if extra:
                links = [*(links or ()), *extra]
        return links

    def collect(self, result: Any) -> None:
        hashes = self.spec.hashes
        if callable(hashes):
            if self.hashes is None:
                self.hashes = {}
            self.hashes.update(_check_hashes(hashes(result)))
        outputs = self.spec.outputs
        if callable(outputs):
            self.outputs.extend(as_identifiers(outputs(result), "output"))
        elif not self.outputs:
            self.outputs.extend(outputs)

    def finish(
        self,
        status: Literal["ok", "error"] = "ok",
        exc: BaseException | None = None,
        want_edge: bool = False,
    ) -> LineageEdge | None:
        span = self.span
        outputs = tuple(dict.fromkeys(self.outputs))
        error_type = None
        if outputs and status == "ok":
            produced = self.produced
            if len(produced) >= _PRODUCED_MAX:
                produced.clear()
            for identifier in outputs:
                produced[identifier] = self.id
        if status == "error" and exc is not None:
            error_type = type(exc).__qualname__
            attrs: dict[str, Any] = {ATTR.STATUS: "error", ATTR.ERROR_TYPE: error_type}
            if not self.spec.dynamic_outputs and self.spec.outputs:
                attrs[ATTR.OUTPUTS] = ()  # a failed step produced nothing
            span.set_attributes(attrs)
            span.set_status(Status(StatusCode.ERROR, error_type))
        else:
            if outputs and self.spec.dynamic_outputs:
                span.set_attribute(ATTR.OUTPUTS, outputs)
            if self.hashes:
                span.set_attribute(ATTR.HASHES, canonical_json(self.hashes, "hashes"))
        cfg = self.cfg
        if not cfg.needs_edges and not want_edge:
            span.end()
            return None
        end_ns = time.time_ns()
        span.end(end_time=end_ns)
        edge = self.edge(outputs, status, error_type, end_ns)
        if cfg.needs_edges:
            emit(edge, cfg)
        return edge

    def edge(
        self,
        outputs: tuple[str, ...],
        status: Literal["ok", "error"],
        error_type: str | None,
        end_ns: int,
    ) -> LineageEdge:
        spec = self.spec
        return LineageEdge(
            id=self.id,
            name=spec.name,
            inputs=self.inputs,
            outputs=outputs,
            parents=self.parents,
            code_version=spec.code_version,
            params=spec.params,
            hashes=self.hashes or (spec.hashes if not callable(spec.hashes) else {}),
            subjects=self.subjects,
            tenant=self.tenant,
            status=status,
            error_type=error_type,
            start_ns=self.start_ns,
            end_ns=end_ns,
            span_parent=self.span_parent,
            service=settings().service,
            subject_omitted=self.subject_omitted,
        )


def _begin(spec: _Spec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Run:
    inputs = spec.inputs
    ins = as_identifiers(inputs(*args, **kwargs), "input") if callable(inputs) else inputs
    subjects = spec.subjects
    subs = as_identifiers(subjects(*args, **kwargs), "subject") if callable(subjects) else subjects
    return _Run(spec, ins, subs)


def record(
    name: str,
    *,
    inputs: str | Sequence[str] = (),
    outputs: str | Sequence[str] = (),
    code_version: str | None = None,
    params: Mapping[str, Any] | None = None,
    subjects: str | Sequence[str] = (),
    hashes: Mapping[str, str] | None = None,
    parents: Sequence[str] | None = None,
) -> LineageEdge:
    """Record one edge now (no function to wrap) and return it.

    ``parents`` defaults to the current ``FlowContext.lineage_parents``. To make later work
    descend from this edge, run it in ``flowtrace.context(lineage_parents=[edge.id])``.

    Example::

        import flowtrace as ft
        from flowtrace import lineage

        with ft.context(tenant="acme"):
            edge = lineage.record(
                "monthly-report",
                inputs=["postgres://billing/orders"],
                outputs="s3://reports/2026-11.json",
                code_version="reports-1.4",
            )
        assert edge.outputs == ("s3://reports/2026-11.json",) and edge.tenant == "acme"
    """
    spec = _Spec(name, inputs, outputs, code_version, params, subjects, hashes)
    parent_ids = None if parents is None else as_identifiers(parents, "parent id")
    run = _Run(
        spec, cast(tuple[str, ...], spec.inputs), cast(tuple[str, ...], spec.subjects), parent_ids
    )
    run.outputs.extend(cast(tuple[str, ...], spec.outputs))
    edge = run.finish(want_edge=True)
    assert edge is not None
    return edge
