"""inject/extract over W3C traceparent + baggage: round trips, limits, trust, OTel interop."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context, attach, detach
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import flowtrace as ft
from flowtrace.errors import ContextPropagationError
from flowtrace.propagation import (
    FlowtracePropagator,
    extract,
    flow_context_from_otel,
    inject,
    otel_context,
    remote_span_context,
)

TRACER = TracerProvider().get_tracer("test")
TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


# --- round trips -------------------------------------------------------------------------


def test_inject_writes_the_documented_keys() -> None:
    """The baggage header carries each set field under its flowtrace. key, in order."""
    with ft.context(tenant="acme", user="u-1", purpose="billing"):
        headers = inject({}, identity=True)
    assert headers == {
        "baggage": "flowtrace.tenant=acme,flowtrace.user=u-1,flowtrace.purpose=billing"
    }


def test_round_trip_of_every_field() -> None:
    """Every field, lineage parents and free-form baggage survive inject -> extract."""
    ctx = ft.FlowContext(
        tenant="acme",
        user="u-1",
        subject="patient 42",
        purpose="care",
        legal_basis="vital_interest",
        region="eu-west",
        correlation_id="c-9",
        lineage_parents=["ds:orders", "a|b", "x,y"],
        baggage={"plan": "gold", "note": "100% ;=,"},
    )
    assert extract(inject({}, ctx, identity=True)) == ctx


def test_values_are_percent_encoded() -> None:
    """Separators, spaces, '+', '%' and unicode are escaped; unreserved chars stay literal."""
    headers = inject({}, ft.FlowContext(tenant="a b,c;d=e%f+g", user="ü-._~"), identity=True)
    assert headers["baggage"] == (
        "flowtrace.tenant=a%20b%2Cc%3Bd%3De%25f%2Bg,flowtrace.user=%C3%BC-._~"
    )
    assert extract(headers) == ft.FlowContext(tenant="a b,c;d=e%f+g", user="ü-._~")


def test_empty_context_writes_no_baggage() -> None:
    """Outside any scope and without a span, inject writes nothing."""
    assert inject({}) == {}


def test_extract_of_a_carrier_without_baggage_is_empty() -> None:
    """No baggage header means an empty context, not an error."""
    assert extract({"traceparent": TP}) == ft.FlowContext()


def test_inject_writes_traceparent_from_the_current_span() -> None:
    """traceparent names the current span; remote_span_context reads it back."""
    with TRACER.start_as_current_span("produce") as span:
        headers = inject({})
    parent = remote_span_context(headers)
    assert parent is not None
    assert parent.trace_id == span.get_span_context().trace_id
    assert parent.span_id == span.get_span_context().span_id
    assert parent.is_remote


def test_tracestate_travels_with_traceparent() -> None:
    """tracestate is carried to the remote span context."""
    parent = remote_span_context({"traceparent": TP, "tracestate": "vendor=opaque"})
    assert parent is not None
    assert dict(parent.trace_state) == {"vendor": "opaque"}


def test_remote_span_context_without_traceparent_is_none() -> None:
    """No traceparent: no remote parent."""
    assert remote_span_context({"baggage": "flowtrace.tenant=acme"}) is None


def test_otel_context_holds_parent_span_and_flow_context() -> None:
    """otel_context() gives an OTel Context with the remote parent and the flow context."""
    ctx = otel_context({"traceparent": TP, "baggage": "flowtrace.tenant=acme"})
    assert trace.get_current_span(ctx).get_span_context().span_id == 0xB7AD6B7169203331
    assert flow_context_from_otel(ctx) == ft.FlowContext(tenant="acme")


# --- extract starts from empty, never merges -----------------------------------------------


def test_extract_never_merges_the_ambient_context() -> None:
    """Inside a scope, extract returns only what the carrier says."""
    with ft.context(tenant="acme", user="ambient", purpose="billing"):
        got = extract({"baggage": "flowtrace.tenant=acme"})
        empty = extract({})
    assert got == ft.FlowContext(tenant="acme")
    assert empty == ft.FlowContext()


def test_extract_does_not_enter_the_context() -> None:
    """Extracting is parsing only: flowtrace.current() is untouched."""
    extract({"baggage": "flowtrace.tenant=acme"})
    assert ft.current() == ft.FlowContext()


# --- carriers ------------------------------------------------------------------------------


def test_header_names_are_case_insensitive() -> None:
    """Baggage / BAGGAGE / Traceparent are found in dict carriers."""
    assert extract({"BAGGAGE": "flowtrace.tenant=acme"}).tenant == "acme"
    assert extract({"Baggage": "flowtrace.tenant=acme"}).tenant == "acme"
    assert remote_span_context({"Traceparent": TP}) is not None


def test_spellings_are_combined_like_repeated_http_headers() -> None:
    """Two spellings of baggage are combined; a tenant in both is a duplicate, refused."""
    got = extract({"baggage": "flowtrace.tenant=acme", "Baggage": "flowtrace.user=u-1"})
    assert got == ft.FlowContext(tenant="acme", user="u-1")
    with pytest.raises(ContextPropagationError, match="more than once"):
        extract({"baggage": "flowtrace.tenant=acme", "Baggage": "flowtrace.tenant=evil"})


def test_bytes_and_list_header_values_are_accepted() -> None:
    """Message headers often arrive as bytes, or as repeated fields."""
    assert extract({"baggage": b"flowtrace.tenant=acme"}).tenant == "acme"
    got = extract({"baggage": ["flowtrace.tenant=acme", "flowtrace.user=u-1"]})
    assert got == ft.FlowContext(tenant="acme", user="u-1")


def test_non_text_header_values_are_refused() -> None:
    """A header value that is not text is a ContextPropagationError naming the header."""
    with pytest.raises(ContextPropagationError, match="'baggage' must be str or bytes"):
        extract({"baggage": 42})
    with pytest.raises(ContextPropagationError, match="not ASCII"):
        extract({"baggage": "flowtrace.tenant=ü".encode()})


def test_a_carrier_that_is_not_a_mapping_needs_a_getter() -> None:
    """Without a getter the carrier must be a mapping (a programming error otherwise)."""
    with pytest.raises(TypeError, match="pass getter="):
        extract([("baggage", "flowtrace.tenant=acme")])


class _PairsGetter(Getter[list[tuple[str, str]]]):
    def get(self, carrier: list[tuple[str, str]], key: str) -> list[str] | None:
        found = [v for k, v in carrier if k == key]
        return found or None

    def keys(self, carrier: list[tuple[str, str]]) -> list[str]:
        return [k for k, _ in carrier]


class _PairsSetter(Setter[list[tuple[str, str]]]):
    def set(self, carrier: list[tuple[str, str]], key: str, value: str) -> None:
        carrier.append((key, value))


def test_custom_getter_and_setter() -> None:
    """Carriers of any shape work through OTel Getter/Setter objects."""
    pairs: list[tuple[str, str]] = []
    with ft.context(tenant="acme"), TRACER.start_as_current_span("s"):
        inject(pairs, setter=_PairsSetter())  # type: ignore[type-var]
    assert [k for k, _ in pairs] == ["traceparent", "baggage"]
    assert extract(pairs, getter=_PairsGetter()).tenant == "acme"
    assert remote_span_context(pairs, getter=_PairsGetter()) is not None


# --- merging with foreign baggage ------------------------------------------------------------


def test_inject_keeps_foreign_members_and_replaces_stale_ones() -> None:
    """Other vendors' members survive; old flowtrace members are replaced, not duplicated."""
    headers = {"baggage": "vendor=1, flowtrace.tenant=old ,other=x;prop=1"}
    with ft.context(tenant="acme"):
        inject(headers)
    assert headers == {"baggage": "flowtrace.tenant=acme,vendor=1,other=x;prop=1"}


def test_inject_merges_other_spellings_into_one_header() -> None:
    """A 'Baggage' header already in the carrier is merged into a single 'baggage'."""
    headers = {"Baggage": "vendor=1", "x": "y"}
    with ft.context(tenant="acme"):
        inject(headers)
    assert headers == {"x": "y", "baggage": "flowtrace.tenant=acme,vendor=1"}


def test_inject_outside_a_scope_removes_stale_flowtrace_members() -> None:
    """An empty context leaves no stale tenant behind in a reused carrier."""
    headers = {"baggage": "flowtrace.tenant=old"}
    inject(headers)
    assert headers == {}


def test_foreign_members_are_ignored_by_extract() -> None:
    """Foreign members are not ours: they never become flow context fields."""
    got = extract({"baggage": "tenant=evil, flowtrace.tenant = acme ;p, user=x"})
    assert got == ft.FlowContext(tenant="acme")


# --- limits and malformed input: typed errors, nothing partial --------------------------------


def _members(n: int) -> str:
    return ",".join(f"k{i}=v" for i in range(n))


def test_180_members_are_accepted() -> None:
    """Exactly the W3C maximum of members extracts."""
    header = "flowtrace.tenant=acme," + _members(179)
    assert extract({"baggage": header}).tenant == "acme"


def test_181_members_keep_the_tenant() -> None:
    """Foreign members past 180 never refuse the header (updated: issue 10 item 17)."""
    header = "flowtrace.tenant=acme," + _members(180)
    assert extract({"baggage": header}).tenant == "acme"


def test_headers_over_8192_bytes_keep_the_tenant() -> None:
    """Foreign content over 8192 bytes never refuses the header (updated: item 17)."""
    header = "flowtrace.tenant=acme,p1=" + "x" * 4000 + ",p2=" + "y" * 4000 + ",p3="
    header += "z" * (8193 - len(header))
    assert extract({"baggage": header}).tenant == "acme"


def test_foreign_member_over_4096_bytes_is_accepted_but_ours_is_not() -> None:
    """Current W3C text has no per-member limit for others; flowtrace's own stay bounded."""
    assert extract({"baggage": "flowtrace.tenant=acme,pad=" + "x" * 4100}).tenant == "acme"
    with pytest.raises(ContextPropagationError, match="4096"):
        extract({"baggage": "flowtrace.lineage=" + "|".join(["p" * 200] * 30)})


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("flowtrace.tenant=acme,flowtrace.tenant=evil", "more than once"),
        ("flowtrace.tenant=acme,flowtrace.tenant=acme", "more than once"),
        ("flowtrace.tena=acme", "unknown flowtrace key"),
        ("flowtrace.tenant", "has no '='"),
        ("flowtrace.tenant=", "empty value"),
        ("flowtrace.tenant=ac%G1", "'%' not followed by two hex digits"),
        ("flowtrace.tenant=ac%4", "'%' not followed by two hex digits"),
        ("flowtrace.tenant=%FF", "invalid UTF-8"),
        ('flowtrace.tenant=a"b', "outside W3C baggage-octets"),
        ("flowtrace.tenant=a b", "outside W3C baggage-octets"),
        ("flowtrace.tenant=a%0Ab", "control, line-separator"),
        ("flowtrace.tenant=%ED%A0%80", "invalid UTF-8"),
        ("flowtrace.tenant=" + "a" * 257, "limit is 256"),
        ("flowtrace.baggage.=x", "must be 1-64 characters"),
        ('flowtrace.tenant=acme;p="q"', "invalid properties"),
        ("flowtrace.tenant=acmé", "outside W3C baggage-octets"),
    ],
)
def test_malformed_baggage_raises_a_clear_error(header: str, problem: str) -> None:
    """Each malformed header is a ContextPropagationError saying what was wrong."""
    with pytest.raises(ContextPropagationError, match=problem):
        extract({"baggage": header})


def test_propagation_errors_are_value_errors() -> None:
    """ContextPropagationError is a ValueError and a FlowtraceError."""
    with pytest.raises(ValueError, match="unknown flowtrace key"):
        extract({"baggage": "flowtrace.tenantx=1"})
    assert issubclass(ContextPropagationError, ft.FlowtraceError)


def test_empty_members_carry_nothing() -> None:
    """Empty list-members (trailing commas, blank headers) are not errors."""
    assert extract({"baggage": ",flowtrace.tenant=acme, ,"}).tenant == "acme"
    assert extract({"baggage": ""}) == ft.FlowContext()


@pytest.mark.parametrize(
    "traceparent",
    [
        "garbage",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        TP + "," + TP,
    ],
)
def test_bad_traceparent_raises(traceparent: str) -> None:
    """A malformed traceparent is an error, where OTel would silently start a new trace."""
    with pytest.raises(ContextPropagationError, match="malformed traceparent"):
        remote_span_context({"traceparent": traceparent})


def test_future_traceparent_versions_are_accepted() -> None:
    """A later version may append fields; the known prefix is used."""
    parent = remote_span_context({"traceparent": "01" + TP[2:] + "-future"})
    assert parent is not None
    assert parent.span_id == 0xB7AD6B7169203331


def test_inject_refuses_a_context_that_cannot_fit() -> None:
    """A context over the limits raises at inject and writes nothing (never truncates)."""
    big = ft.FlowContext(tenant="acme", baggage={f"k{i}": "é" * 256 for i in range(16)})
    headers = {"x": "y"}
    with pytest.raises(ContextPropagationError, match="W3C baggage limit is 8192"):
        inject(headers, big)
    assert headers == {"x": "y"}


def test_inject_refuses_a_member_over_4096_bytes() -> None:
    """Long lineage that would make one member too large raises at inject."""
    ctx = ft.FlowContext(tenant="acme", lineage_parents=["p" * 256] * 20)
    with pytest.raises(ContextPropagationError, match=r"'flowtrace\.lineage'.*4096"):
        inject({}, ctx)


def test_inject_drops_foreign_members_past_180_never_its_own() -> None:
    """Merging into a full carrier drops foreign members, not ours (updated: item 16)."""
    headers = {"baggage": _members(179)}
    with ft.context(tenant="acme", user="u"):
        inject(headers, identity=True)
    members = headers["baggage"].split(",")
    assert len(members) == 180
    assert members[:2] == ["flowtrace.tenant=acme", "flowtrace.user=u"]
    assert members[2:] == _members(178).split(",")


# --- contrast with OTel's own baggage propagator -----------------------------------------------


def test_otel_baggage_propagator_silently_drops_an_oversized_tenant(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """OTel drops the oversized member with a log warning and carries on; we raise."""
    header = "flowtrace.tenant=acme,pad=" + "x" * 4100
    with caplog.at_level(logging.WARNING):
        otel = W3CBaggagePropagator().extract({"baggage": header}, context=Context())
    assert baggage.get_all(otel) == {"flowtrace.tenant": "acme"}  # pad dropped, silently
    assert "exceeded the maximum number of bytes" in caplog.text
    tenant_too_big = "pad=x,flowtrace.tenant=" + "a" * 4100
    with caplog.at_level(logging.WARNING):
        otel = W3CBaggagePropagator().extract({"baggage": tenant_too_big}, context=Context())
    assert "flowtrace.tenant" not in baggage.get_all(otel)  # the tenant is gone
    with pytest.raises(ContextPropagationError):
        extract({"baggage": tenant_too_big})


def test_otel_baggage_propagator_drops_a_tenant_past_member_180() -> None:
    """OTel keeps the first 180 members; a tenant in 181st place vanishes. We keep it."""
    header = _members(180) + ",flowtrace.tenant=acme"
    otel = W3CBaggagePropagator().extract({"baggage": header}, context=Context())
    assert "flowtrace.tenant" not in baggage.get_all(otel)
    assert extract({"baggage": header}).tenant == "acme"


# --- the OTel propagator -----------------------------------------------------------------------


def _composite() -> CompositePropagator:
    return CompositePropagator(
        [TraceContextTextMapPropagator(), W3CBaggagePropagator(), FlowtracePropagator()]
    )


def test_propagator_injects_alongside_otel_baggage() -> None:
    """In a composite after W3CBaggagePropagator, ours merges instead of overwriting."""
    token = attach(baggage.set_baggage("vendor.key", "v 1"))
    try:
        with ft.context(tenant="acme"), TRACER.start_as_current_span("s"):
            headers: dict[str, str] = {}
            _composite().inject(headers)
    finally:
        detach(token)
    assert headers["baggage"] == "flowtrace.tenant=acme,vendor.key=v+1"
    assert "traceparent" in headers


def test_propagator_extract_stores_the_flow_context_in_the_otel_context() -> None:
    """extract puts the carrier's flow context in the OTel Context, not in current()."""
    otel = _composite().extract({"traceparent": TP, "baggage": "flowtrace.tenant=acme,v=1"})
    assert flow_context_from_otel(otel) == ft.FlowContext(tenant="acme")
    assert baggage.get_all(otel)["v"] == "1"
    token = attach(otel)
    try:
        assert ft.current() == ft.FlowContext()  # untrusted input is never entered for you
        assert flow_context_from_otel() == ft.FlowContext(tenant="acme")
    finally:
        detach(token)


def test_propagator_without_baggage_stores_nothing() -> None:
    """No baggage header: flow_context_from_otel() is None (nothing was extracted)."""
    otel = FlowtracePropagator().extract({"traceparent": TP})
    assert flow_context_from_otel(otel) is None


def test_propagator_defers_errors_to_whoever_reads_the_context(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A malformed carrier does not break OTel's instrumentation; reading it raises."""
    with caplog.at_level(logging.WARNING, logger="flowtrace.propagation"):
        otel = FlowtracePropagator().extract({"baggage": "flowtrace.tenant=a,flowtrace.tenant=b"})
    assert "not extracted" in caplog.text
    with pytest.raises(ContextPropagationError, match="more than once"):
        flow_context_from_otel(otel)
    with pytest.raises(ContextPropagationError, match="more than once"):
        flow_context_from_otel(otel)  # every reader fails, not only the first


def test_propagator_fields() -> None:
    """The propagator declares the header it writes."""
    assert FlowtracePropagator().fields == {"baggage"}


def test_propagator_extract_is_case_insensitive_for_dicts() -> None:
    """Through OTel's default getter, dict carriers still match case-insensitively."""
    otel = FlowtracePropagator().extract({"Baggage": "flowtrace.tenant=acme"})
    assert flow_context_from_otel(otel) == ft.FlowContext(tenant="acme")


@pytest.fixture
def global_textmap() -> Iterator[None]:
    saved = propagate.get_global_textmap()
    propagate.set_global_textmap(_composite())
    yield
    propagate.set_global_textmap(saved)


@pytest.mark.usefixtures("global_textmap")
def test_otel_global_inject_and_extract_carry_flow_context() -> None:
    """What OTel instrumentations call (propagate.inject/extract) carries the flow context."""
    ft.configure(trust_domain=["*.internal"])
    headers: dict[str, str] = {}
    client = {"server.address": "billing.internal"}  # the client span names the destination
    with (
        ft.context(tenant="acme", user="u-1"),
        TRACER.start_as_current_span("client", kind=trace.SpanKind.CLIENT, attributes=client),
    ):
        propagate.inject(headers)
    assert extract(headers) == ft.FlowContext(tenant="acme", user="u-1")
    assert flow_context_from_otel(propagate.extract(headers)) == extract(headers)
    outside: dict[str, str] = {}  # a destination outside the trust domain: no identity
    with (
        ft.context(tenant="acme", user="u-1"),
        TRACER.start_as_current_span(
            "client", kind=trace.SpanKind.CLIENT, attributes={"url.full": "https://x.example/"}
        ),
    ):
        propagate.inject(outside)
    assert extract(outside) == ft.FlowContext(tenant="acme")
    own: dict[str, str] = {}  # a SERVER span names this service, not the destination
    with (
        ft.context(tenant="acme", user="u-1"),
        TRACER.start_as_current_span("serve", kind=trace.SpanKind.SERVER, attributes=client),
    ):
        propagate.inject(own)
    assert extract(own) == ft.FlowContext(tenant="acme")


def test_otel_propagators_env_var_installs_flowtrace() -> None:
    """OTEL_PROPAGATORS=tracecontext,baggage,flowtrace builds the composite (entry point)."""
    code = (
        "from opentelemetry import propagate\n"
        "import flowtrace as ft\n"
        "headers = {}\n"
        "with ft.context(tenant='acme'):\n"
        "    propagate.inject(headers)\n"
        "assert headers == {'baggage': 'flowtrace.tenant=acme'}, headers\n"
    )
    env = {**os.environ, "OTEL_PROPAGATORS": "tracecontext,baggage,flowtrace"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_propagator_inject_through_a_custom_setter() -> None:
    """Non-dict carriers work through the OTel Setter the instrumentation passes."""
    pairs: list[tuple[str, str]] = []
    with ft.context(tenant="acme"):
        FlowtracePropagator().inject(pairs, setter=_PairsSetter())
    assert pairs == [("baggage", "flowtrace.tenant=acme")]
    otel = FlowtracePropagator().extract(pairs, getter=_PairsGetter())
    assert flow_context_from_otel(otel) == ft.FlowContext(tenant="acme")


def test_propagator_records_an_unreadable_carrier() -> None:
    """A carrier the default getter cannot read is recorded as an error, not raised in OTel."""
    otel = FlowtracePropagator().extract([("baggage", "flowtrace.tenant=acme")])
    with pytest.raises(ContextPropagationError, match="pass getter="):
        flow_context_from_otel(otel)


def test_inject_needs_a_flow_context() -> None:
    """Passing a dict instead of a FlowContext is a TypeError, not a silent empty inject."""
    with pytest.raises(TypeError, match="must be a FlowContext"):
        inject({}, {"tenant": "acme"})  # type: ignore[arg-type]


def test_demo_step_runs(tmp_path: Path) -> None:
    """The 'propagation' demo step proves its claims offline and writes the wire file."""
    said: list[str] = []
    from flowtrace._demo import propagation as step

    step.run(tmp_path, said.append)
    assert (tmp_path / "propagation-headers.json").exists()
    assert len(said) == 5


def test_a_lone_surrogate_never_reaches_the_wire() -> None:
    """FlowContext refuses lone surrogates (they are not UTF-8: OTLP and baggage would fail)."""
    with pytest.raises(ft.InvalidContextValueError, match="lone-surrogate"):
        ft.FlowContext(tenant="a\ud800")


SPEC = Path(__file__).resolve().parent.parent / "docs" / "spec" / "baggage.md"
SPEC_EXAMPLE = (
    "flowtrace.tenant=acme,flowtrace.user=%C3%BC%20ser,flowtrace.purpose=billing,"
    "flowtrace.lineage=ds%3Aorders|a%7Cb,flowtrace.baggage.plan=gold,vendor=1"
)


def test_spec_example_is_what_inject_writes() -> None:
    """The example in docs/spec/baggage.md is exactly the codec's output (a test vector)."""
    ctx = ft.FlowContext(
        tenant="acme",
        user="ü ser",
        purpose="billing",
        lineage_parents=["ds:orders", "a|b"],
        baggage={"plan": "gold"},
    )
    headers = inject({"baggage": "vendor=1"}, ctx, identity=True)
    assert headers["baggage"] == SPEC_EXAMPLE
    assert f"baggage: {SPEC_EXAMPLE}" in SPEC.read_text(encoding="utf-8")
    assert extract(headers) == ctx


def test_public_namespaces_export_what_they_list() -> None:
    """flowtrace.propagation (with its executors) exports exactly its sorted names."""
    from flowtrace import propagation

    for module in (propagation,):
        assert module.__all__ == sorted(module.__all__)
        assert all(getattr(module, name) is not None for name in module.__all__)
    assert {
        "ContextProcessPoolExecutor",
        "ContextThreadPoolExecutor",
        "FlowtracePropagator",
        "bind",
        "extract",
        "inject",
    } <= set(ft.__all__)
    assert ft.inject is inject
    assert ft.extract is extract


def test_email_message_headers_combine_repeated_fields() -> None:
    """http.client / email headers: repeated baggage fields are combined, names any case."""
    from email.message import Message

    message = Message()
    message["Baggage"] = "flowtrace.tenant=acme"
    message["baggage"] = "flowtrace.user=u-1"
    message["Traceparent"] = TP
    assert extract(message) == ft.FlowContext(tenant="acme", user="u-1")
    assert remote_span_context(message) is not None
    message["BAGGAGE"] = "flowtrace.tenant=evil"
    with pytest.raises(ContextPropagationError, match="more than once"):
        extract(message)


def test_werkzeug_headers_are_read_with_every_field() -> None:
    """Flask/werkzeug Headers (not a Mapping) work; a second baggage field is not ignored."""
    datastructures = pytest.importorskip("werkzeug.datastructures")
    headers = datastructures.Headers(
        [("Baggage", "flowtrace.tenant=acme"), ("baggage", "flowtrace.tenant=evil")]
    )
    with pytest.raises(ContextPropagationError, match="more than once"):
        extract(headers)
    single = datastructures.Headers([("BAGGAGE", "flowtrace.tenant=acme")])
    assert extract(single).tenant == "acme"


def test_case_insensitive_mappings_are_not_read_twice() -> None:
    """requests' CaseInsensitiveDict: one 'Baggage' field is one field, not a duplicate."""
    structures = pytest.importorskip("requests.structures")
    headers = structures.CaseInsensitiveDict({"Baggage": "flowtrace.tenant=acme"})
    assert extract(headers) == ft.FlowContext(tenant="acme")
    with ft.context(tenant="acme", user="u-1"):
        inject(headers, identity=True)
    assert dict(headers) == {"baggage": "flowtrace.tenant=acme,flowtrace.user=u-1"}


def test_inject_merges_into_werkzeug_headers() -> None:
    """Foreign members already in a werkzeug Headers carrier are kept."""
    datastructures = pytest.importorskip("werkzeug.datastructures")
    headers = datastructures.Headers([("Baggage", "vendor=1")])
    with ft.context(tenant="acme"):
        inject(headers)
    assert headers.getlist("baggage") == ["flowtrace.tenant=acme,vendor=1"]


def test_round_trip_over_real_http_on_loopback() -> None:
    """inject on a client, extract from http.server's own header object on 127.0.0.1."""
    import json
    import threading
    import urllib.request
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parent = remote_span_context(self.headers)
            body = json.dumps(
                {
                    "context": extract(self.headers).to_dict(),
                    "span_id": None if parent is None else parent.span_id,
                    "ambient": ft.current().to_dict(),
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        ft.configure(trust_domain=["127.0.0.1"])  # identity goes only to trusted hosts
        url = f"http://127.0.0.1:{server.server_port}/"
        with ft.context(tenant="acme", user="ü,;"), TRACER.start_as_current_span("call") as span:
            request = urllib.request.Request(url, headers=inject({}, destination=url))
            with urllib.request.urlopen(request, timeout=30) as response:
                seen = json.loads(response.read())
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert seen == {
        "context": {"tenant": "acme", "user": "ü,;"},
        "span_id": span.get_span_context().span_id,
        "ambient": {},
    }
