"""flowtrace.otel: stamping processor, span-event observer, configure() wiring, JSON lines."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import flowtrace as ft
import flowtrace.otel
import flowtrace.otel._processors
import flowtrace.otel._setup
import flowtrace.testing
from flowtrace.decorators._instrument import active_tracer
from flowtrace.otel import FlowContextSpanProcessor, JsonLinesSpanExporter, flow_attributes
from flowtrace.testing import Capture


def make_provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(FlowContextSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


# --- stamping processor --------------------------------------------------------------------


def test_processor_stamps_every_span_started_in_a_scope() -> None:
    """Any tracer's spans get the flow context; spans outside a scope get nothing."""
    provider, exporter = make_provider()
    tracer = provider.get_tracer("some.instrumentation")
    with ft.context(
        tenant="acme",
        user="u-1",
        subject="patient-42",
        purpose="care",
        legal_basis="vital_interest",
        region="eu",
        correlation_id="c-9",
    ):
        tracer.start_span("inside").end()
    tracer.start_span("outside").end()
    inside, outside = exporter.get_finished_spans()
    assert dict(inside.attributes or {}) == {
        "flowtrace.tenant": "acme",
        "enduser.id": "u-1",
        # no pseudonym key configured: the subject is left out, never raw (issue 10 item 14)
        "flowtrace.purpose": "care",
        "flowtrace.legal_basis": "vital_interest",
        "flowtrace.region": "eu",
        "flowtrace.correlation_id": "c-9",
    }
    assert dict(outside.attributes or {}) == {}


def test_processor_stamps_configured_service_region() -> None:
    """configure(region=...) is stamped as flowtrace.service.region on every span."""
    ft.configure(region="eu-west")
    provider, exporter = make_provider()
    provider.get_tracer("x").start_span("s").end()
    (span,) = exporter.get_finished_spans()
    assert (span.attributes or {})["flowtrace.service.region"] == "eu-west"


def test_processor_never_raises(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A failure inside the processor is logged and the traced code goes on."""

    def broken(ctx: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(flowtrace.otel._processors, "_attributes_of", broken)
    provider, exporter = make_provider()
    with ft.context(tenant="acme"), caplog.at_level(logging.ERROR, "flowtrace.otel"):
        provider.get_tracer("x").start_span("s").end()
    assert len(exporter.get_finished_spans()) == 1
    assert "could not stamp" in caplog.text


def test_flow_attributes_only_lists_set_fields() -> None:
    """flow_attributes() maps set fields to their attribute names."""
    ctx = ft.FlowContext(tenant="acme", purpose="billing")
    assert flow_attributes(ctx) == {"flowtrace.tenant": "acme", "flowtrace.purpose": "billing"}
    with ft.context(user="u-1"):
        assert flow_attributes() == {"enduser.id": "u-1"}


# --- span-event observer -------------------------------------------------------------------


def test_flow_events_become_span_events(flowtrace_capture: Capture) -> None:
    """cross_tenant and tenant_switch appear as flowtrace.<kind> events with their facts."""

    @ft.handler("report", tenant="acme")
    def report() -> None:
        with ft.cross_tenant(reason="usage dashboard"), ft.context(tenant="globex"):
            pass

    report()
    span = flowtrace_capture.span("report")
    names = [e.name for e in span.events]
    assert names == ["flowtrace.cross_tenant", "flowtrace.tenant_switch"]
    cross, switch = span.events
    assert (cross.attributes or {})["reason"] == "usage dashboard"
    assert (cross.attributes or {})["flowtrace.tenant"] == "acme"
    assert (switch.attributes or {})["to_tenant"] == "globex"


def test_span_event_observer_is_a_default_observer() -> None:
    """The span-event observer is registered by default and restored by reset()."""
    from flowtrace.flowcontext import _events as _observe

    assert flowtrace.otel.span_event_observer in _observe._observers
    ft.remove_observer(flowtrace.otel.span_event_observer)
    ft.testing.reset()
    assert _observe._observers == (flowtrace.otel.span_event_observer,)


def test_span_event_observer_without_span_is_silent() -> None:
    """Without a recording span, events are simply not recorded (no error)."""
    with ft.context(tenant="acme"), ft.cross_tenant(reason="batch job"):
        assert ft.current().tenant == "acme"


# --- configure() ---------------------------------------------------------------------------


class Collecting(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []
        self.shut = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.shut = True


def test_nothing_configured_is_noop_tracing() -> None:
    """With nothing configured flowtrace has no active tracer and decorators still work."""
    assert ft.settings().tracer_provider is None
    assert active_tracer() is None
    assert ft.handler(tenant="acme")(lambda: ft.current().tenant)() == "acme"


def test_configure_builds_provider_with_resource_and_stamping() -> None:
    """span_exporters: flowtrace builds a provider (service.name, region) that stamps spans."""
    exporter = Collecting()
    settings = ft.configure(service="billing", region="eu", span_exporters=[exporter])
    provider = settings.tracer_provider
    assert isinstance(provider, TracerProvider)
    assert provider.resource.attributes["service.name"] == "billing"
    assert provider.resource.attributes["flowtrace.service.region"] == "eu"

    @ft.handler("charge", tenant="acme")
    def charge() -> None:
        return None

    charge()
    assert provider.force_flush()
    (span,) = exporter.spans
    assert span.name == "charge"
    assert (span.attributes or {})["flowtrace.tenant"] == "acme"
    assert span.resource.attributes["service.name"] == "billing"


def test_configure_writes_json_lines_spans(tmp_path: Path) -> None:
    """spans_file= appends one JSON object per span with attributes, links and resource."""
    path = tmp_path / "spans.jsonl"
    settings = ft.configure(service="demo", spans_file=path)
    with ft.context(tenant="acme"):
        ft.handler("a")(lambda: None)()
        ft.handler("b")(lambda: None)()
    settings.tracer_provider.force_flush()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["name"] for line in lines] == ["a", "b"]
    assert lines[0]["attributes"]["flowtrace.tenant"] == "acme"
    assert lines[0]["resource"]["service.name"] == "demo"
    assert lines[0]["kind"] == "SERVER"
    assert len(lines[0]["trace_id"]) == 32


def test_reconfigure_replaces_and_shuts_down_old_provider() -> None:
    """Changing the service rebuilds the provider; reset() shuts down the one we built."""
    first = Collecting()
    old = ft.configure(span_exporters=[first]).tracer_provider
    new = ft.configure(service="renamed").tracer_provider
    assert new is not old
    assert first.shut  # old provider shut down, its exporter with it
    assert new.resource.attributes["service.name"] == "renamed"
    ft.configure(span_exporters=[])
    assert ft.settings().tracer_provider is None
    ft.configure(span_exporters=[Collecting()])
    ft.testing.reset()
    assert ft.settings().tracer_provider is None


def test_configure_service_alone_does_not_build_a_provider() -> None:
    """configure(service=...) without exporters keeps tracing a no-op."""
    ft.configure(service="billing")
    assert ft.settings().tracer_provider is None
    assert active_tracer() is None


@pytest.mark.parametrize(
    "options",
    [
        {"span_exporters": ["not an exporter"]},
        {"span_exporters": "abc"},
        {"console_spans": "yes"},
        {"spans_file": 3},
        {"tracer_provider": TracerProvider(), "span_exporters": [InMemorySpanExporter()]},
        {"exporters": []},
    ],
)
def test_bad_tracing_options_raise_config_error(options: dict[str, object]) -> None:
    """Bad tracing options raise ConfigError and leave the settings untouched."""
    before = ft.settings()
    with pytest.raises(ft.ConfigError):
        ft.configure(**options)
    assert ft.settings() == before


def test_every_configured_exporter_goes_through_wrap_exporter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """_wrap_exporter is the single place every configured exporter is wrapped."""
    wrapped: list[SpanExporter] = []

    def spy(exporter: SpanExporter) -> SpanExporter:
        wrapped.append(exporter)
        return exporter

    monkeypatch.setattr(flowtrace.otel._setup, "_wrap_exporter", spy)
    mine = Collecting()
    ft.configure(span_exporters=[mine], console_spans=True)
    assert wrapped[0] is mine
    assert type(wrapped[1]).__name__ == "ConsoleSpanExporter"


def test_json_lines_exporter_after_shutdown_fails_cleanly(tmp_path: Path) -> None:
    """A shut-down exporter reports FAILURE instead of raising."""
    exporter = JsonLinesSpanExporter(tmp_path / "s.jsonl")
    exporter.shutdown()
    assert exporter.export([]) is SpanExportResult.FAILURE


def test_set_global_installs_the_provider_globally(tmp_path: Path) -> None:
    """set_global=True makes the built provider OTel's global one (checked in a subprocess)."""
    import subprocess
    import sys

    code = (
        "import flowtrace as ft\n"
        "from opentelemetry import trace\n"
        f"s = ft.configure(spans_file={str(tmp_path / 's.jsonl')!r}, set_global=True)\n"
        "assert trace.get_tracer_provider() is s.tracer_provider\n"
        "trace.get_tracer('x').start_span('global').end()\n"
        "s.tracer_provider.force_flush()\n"
        "print(open(" + repr(str(tmp_path / "s.jsonl")) + ").read().count('global'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_demo_foundation_step(tmp_path: Path) -> None:
    """The demo step runs offline, says what it showed and leaves a JSON-lines span file."""
    from flowtrace._demo import foundation

    lines: list[str] = []
    foundation.run(tmp_path, lines.append)
    assert len(lines) == 5
    assert (tmp_path / "foundation-spans.jsonl").stat().st_size > 0
    assert ft.settings().tracer_provider is None


def test_public_namespaces_export_what_they_list() -> None:
    """flowtrace.otel and flowtrace.testing export exactly their documented names."""
    for module in (flowtrace.otel, flowtrace.testing):
        assert module.__all__ == sorted(module.__all__)
        for name in module.__all__:
            assert getattr(module, name) is not None, name
    assert {"handler", "consumer"} <= set(ft.__all__)


def test_otel_global_provider_is_read_through_the_public_api() -> None:
    """Nothing configured: decorators follow OTel's global provider, re-read on configure()."""
    code = textwrap.dedent(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import flowtrace as ft

        @ft.handler("h", tenant="acme")
        def h():
            return ft.current().tenant

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        h()                                  # no global provider yet: no span
        trace.set_tracer_provider(provider)
        ft.configure(service="svc")
        h()                                  # re-read: the span goes to the global provider
        print(len(exporter.get_finished_spans()))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1"]
