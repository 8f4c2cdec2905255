"""Properties of the baggage codec: valid contexts round-trip, anything else is a typed error."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from opentelemetry import baggage
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext

import flowtrace as ft
from flowtrace.errors import ContextPropagationError, InvalidContextValueError
from flowtrace.flowcontext import FIELDS, MAX_BAGGAGE_ENTRIES, MAX_LINEAGE_PARENTS
from flowtrace.propagation import extract, inject, remote_span_context

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters FlowContext accepts, with separators, escapes and unicode well represented.
_tricky = st.sampled_from(list(",;=%+ |\"\\'~-._:/?#&é€😀中\u00a0\u200b"))
_any_char = st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\u2028\u2029")
_chars = st.one_of(_tricky, _any_char, st.sampled_from("aZ09"))


@st.composite
def _values(draw: st.DrawFn, long_runs: bool = True) -> str:
    """A valid field value: arbitrary text, or a maximum-length run of one character."""
    if long_runs and draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(["a", "é", "%", ",", "😀", "~"])) * 256
    return draw(st.text(_chars, min_size=1, max_size=48))


_foreign = st.builds(
    "{}={}".format, st.text("abcxyz", min_size=1, max_size=8), st.text("ab01", max_size=8)
)
_baggage_keys = st.text(st.sampled_from("abcXYZ019_.-"), min_size=1, max_size=64)


@st.composite
def flow_contexts(draw: st.DrawFn, long_runs: bool = True) -> ft.FlowContext:
    values = _values(long_runs)
    fields: dict[str, Any] = {name: draw(st.one_of(st.none(), values)) for name in FIELDS}
    fields["lineage_parents"] = draw(st.lists(values, max_size=MAX_LINEAGE_PARENTS // 8))
    fields["baggage"] = draw(st.dictionaries(_baggage_keys, values, max_size=MAX_BAGGAGE_ENTRIES))
    return ft.FlowContext(**fields)


def _expected_members(ctx: ft.FlowContext) -> list[str]:
    """The members the spec says inject writes, computed independently of the codec."""

    def enc(v: str) -> str:
        return quote(v, safe="")

    members = [
        f"flowtrace.{name}={enc(getattr(ctx, name))}"
        for name in FIELDS
        if getattr(ctx, name) is not None
    ]
    if ctx.lineage_parents:
        members.append("flowtrace.lineage=" + "|".join(map(enc, ctx.lineage_parents)))
    members += [f"flowtrace.baggage.{k}={enc(v)}" for k, v in sorted(ctx.baggage.items())]
    return members


@SETTINGS
@given(flow_contexts())
def test_every_valid_context_round_trips_or_is_refused_for_size(ctx: ft.FlowContext) -> None:
    """inject->extract returns the same context; inject refuses only what breaks W3C limits."""
    members = _expected_members(ctx)
    fits = (
        len(",".join(members)) <= 8192
        and all(len(m) <= 4096 for m in members)
        and len(members) <= 180
    )
    event("refused for size" if not fits else "round trip")
    if not fits:
        try:
            inject({}, ctx, identity=True)
        except ContextPropagationError:
            return
        raise AssertionError("inject wrote a header that breaks the W3C limits")
    headers = inject({}, ctx, identity=True)
    assert headers.get("baggage", "") == ",".join(members)
    assert extract(headers) == ctx


@SETTINGS
@given(flow_contexts(long_runs=False), st.lists(_foreign, max_size=20), st.randoms())
def test_foreign_members_anywhere_do_not_change_the_result(
    ctx: ft.FlowContext, foreign: list[str], rnd: Any
) -> None:
    """Our members interleaved with foreign ones extract to the same context."""
    members = _expected_members(ctx) + foreign
    rnd.shuffle(members)
    header = " , ".join(members)
    assume(len(header) <= 8192 and all(len(m) <= 4096 for m in members))
    assert extract({"baggage": header}) == ctx


_header_names = st.sampled_from(
    ["baggage", "Baggage", "BAGGAGE", "traceparent", "TraceParent", "tracestate", "other"]
)
_header_values = st.one_of(
    st.text(max_size=200),
    st.text(st.sampled_from(list('flowtrace.tenantuserbag=,;% \t"\\%2C%FF%e9é|-0f')), max_size=200),
    st.binary(max_size=100),
    st.lists(st.text(max_size=40), max_size=3),
    st.integers(),
    st.none(),
)


@SETTINGS
@given(st.dictionaries(st.one_of(_header_names, st.text(max_size=12)), _header_values, max_size=5))
def test_arbitrary_carriers_extract_or_raise_propagation_error(carrier: dict[Any, Any]) -> None:
    """Any dict carrier yields a FlowContext or a ContextPropagationError, nothing else."""
    try:
        result = extract(carrier)
    except ContextPropagationError:
        pass
    else:
        assert type(result) is ft.FlowContext
    try:
        parent = remote_span_context(carrier)
    except ContextPropagationError:
        pass
    else:
        assert parent is None or isinstance(parent, SpanContext)


def _names_tenant(header: str) -> bool:
    return any(
        m.strip(" \t").partition("=")[0].rstrip(" \t") == "flowtrace.tenant" and "=" in m
        for m in header.split(",")
    )


@SETTINGS
@given(flow_contexts(long_runs=False), st.data())
def test_mutated_headers_never_lose_a_tenant_silently(ctx: ft.FlowContext, data: Any) -> None:
    """A corrupted header is refused, or extracts with the tenant it still names."""
    try:
        header = inject({}, ctx, identity=True).get("baggage", "")
    except ContextPropagationError:
        assume(False)
    assume(header)
    cut = data.draw(st.integers(0, len(header)))
    end = data.draw(st.integers(cut, min(len(header), cut + 8)))
    insert = data.draw(st.text(st.sampled_from(list(',;=% \t%zé"')), max_size=3))
    mutated = header[:cut] + insert + header[end:]
    try:
        got = extract({"baggage": mutated})
    except ContextPropagationError:
        return
    assert type(got) is ft.FlowContext
    if _names_tenant(mutated):
        assert got.tenant is not None


@SETTINGS
@given(st.text(_chars, min_size=1, max_size=300))
def test_values_flowcontext_refuses_are_refused_from_a_carrier(value: str) -> None:
    """A carrier cannot smuggle in a value FlowContext itself would refuse."""
    header = f"flowtrace.tenant={quote(value, safe='')}"
    try:
        ft.FlowContext(tenant=value)
    except InvalidContextValueError:
        valid = False
    else:
        valid = True
    if valid and len(header) <= 4096:
        assert extract({"baggage": header}).tenant == value
    else:
        try:
            extract({"baggage": header})
        except ContextPropagationError:
            return
        raise AssertionError("an invalid value was extracted")


@SETTINGS
@given(flow_contexts(long_runs=False))
def test_otel_baggage_propagator_reads_our_scalar_values(ctx: ft.FlowContext) -> None:
    """OTel's own W3CBaggagePropagator decodes our scalar members to the same strings.

    (OTel strips surrounding whitespace from values, so such values are excluded.)
    """
    try:
        headers = inject({}, ctx, identity=True)
    except ContextPropagationError:
        assume(False)
    scalars = {f"flowtrace.{n}": getattr(ctx, n) for n in FIELDS if getattr(ctx, n) is not None}
    assume(all(v == v.strip() for v in scalars.values()))
    otel = baggage.get_all(W3CBaggagePropagator().extract(headers, context=Context()))
    assert {k: v for k, v in otel.items() if k in scalars} == scalars
