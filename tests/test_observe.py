"""Observers: who is listening decides whether hot paths build events at all."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

import flowtrace as ft
from flowtrace import flowcontext as _observe
from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider


def test_default_span_observer_listens_only_while_a_span_records() -> None:
    """With only the span-event observer, listening() follows the current span."""
    assert not _observe.listening()
    provider = TracerProvider()
    with provider.get_tracer("t").start_as_current_span("s"):
        assert _observe.listening()
    assert not _observe.listening()


def test_a_non_recording_current_span_does_not_listen() -> None:
    """A current span that does not record (sampled out, or a remote parent) is silent."""
    remote = trace.SpanContext(1, 2, is_remote=True, trace_flags=trace.TraceFlags(0))
    with trace.use_span(trace.NonRecordingSpan(remote)):
        assert trace.get_current_span().get_span_context() == remote
        assert not _observe.listening()
    sampled_out = TracerProvider(sampler=ALWAYS_OFF)
    with sampled_out.get_tracer("t").start_as_current_span("s"):
        assert not _observe.listening()


def test_observers_without_a_hint_always_listen() -> None:
    """Audit logs and captures (no `active` hint) always receive events."""
    events: list[ft.FlowEvent] = []
    ft.add_observer(events.append)
    try:
        assert _observe.listening()
    finally:
        ft.remove_observer(events.append)


def _encryptor() -> FieldEncryptor:
    return FieldEncryptor(KeyVault(LocalKeyProvider.generate("kek"), kek_id="kek"))


def test_decrypt_still_reaches_a_recording_span() -> None:
    """A decrypt inside a recording span becomes a flowtrace.decrypt span event."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    enc = _encryptor()
    with ft.context(tenant="acme"):
        token = enc.encrypt("s3cret", field="ssn")
        with provider.get_tracer("t").start_as_current_span("read"):
            assert enc.decrypt(token, field="ssn", reason="support") == "s3cret"
    (span,) = exporter.get_finished_spans()
    (event,) = [e for e in span.events if e.name == "flowtrace.decrypt"]
    assert event.attributes is not None
    assert event.attributes["reason"] == "support"
    assert "s3cret" not in repr(dict(event.attributes))


def test_decrypt_reaches_observers_without_a_span() -> None:
    """With an observer that always listens, every decrypt is reported, span or not."""
    events: list[ft.FlowEvent] = []
    ft.add_observer(events.append)
    enc = _encryptor()
    try:
        with ft.context(tenant="acme"):
            token = enc.encrypt("s3cret", field="ssn")
            enc.decrypt(token, field="ssn", reason="billing")
    finally:
        ft.remove_observer(events.append)
    assert [e.kind for e in events] == ["decrypt"]
    assert events[0].attributes["outcome"] == "ok"


def test_an_observer_added_later_is_heard_at_once() -> None:
    """LISTENING.now follows subscriptions: a hot path holding LISTENING sees new observers."""
    now = _observe.LISTENING
    assert not now.now()
    events: list[ft.FlowEvent] = []
    ft.add_observer(events.append)
    try:
        assert now.now()
        assert _observe.listening()
    finally:
        ft.remove_observer(events.append)
    assert not now.now()
    assert not _observe.listening()


def test_any_of_several_hints_makes_it_listen() -> None:
    """With two hinted observers, one active hint is enough; none active, no listening."""
    state = {"on": False}

    def quiet(event: ft.FlowEvent) -> None:
        """An observer active only when state says so."""

    quiet.active = lambda: state["on"]  # type: ignore[attr-defined]
    ft.add_observer(quiet)
    try:
        assert not _observe.listening()
        state["on"] = True
        assert _observe.listening()
        state["on"] = False
        provider = TracerProvider()
        with provider.get_tracer("t").start_as_current_span("s"):
            assert _observe.listening()  # the span-event observer's hint
    finally:
        ft.remove_observer(quiet)


def test_the_same_otel_context_listens_once_its_span_records() -> None:
    """The idle answer remembered for one OTel context never hides a recording span."""
    assert not _observe.listening()  # remembers the empty context as idle
    provider = TracerProvider()
    span = provider.get_tracer("t").start_span("s")
    with trace.use_span(span, end_on_exit=False):
        assert _observe.listening()
        span.end()  # an ended span does not record: asked again, not remembered
        assert not _observe.listening()
    assert not _observe.listening()
    with provider.get_tracer("t").start_as_current_span("again"):
        assert _observe.listening()


def test_decrypt_after_an_idle_decrypt_still_reaches_a_span() -> None:
    """A cached (hot-path) decrypt outside any span, then one inside: the second is an event."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    enc = _encryptor()
    with ft.context(tenant="acme"):
        token = enc.encrypt("s3cret", field="ssn")
        enc.decrypt(token, field="ssn")
        enc.decrypt(token, field="ssn")  # served by the key cache's binding, no span
        with provider.get_tracer("t").start_as_current_span("read"):
            enc.decrypt(token, field="ssn", reason="audit")
    (span,) = exporter.get_finished_spans()
    assert [e.name for e in span.events] == ["flowtrace.decrypt"]
    assert span.events[0].attributes is not None
    assert span.events[0].attributes["cache"] == "hit"
