"""Capturing spans and flow events in memory, deterministic ids, and :func:`reset`."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator

from .. import _configure, _settings
from ..flowcontext import FlowEvent, add_observer, remove_observer, replace_observers
from ..otel import ATTRIBUTES, FlowContextSpanProcessor, span_event_observer

__all__ = ["Capture", "SequentialIdGenerator", "reset"]

_FIELD_OF = {attribute: field for field, attribute in ATTRIBUTES.items()}


def reset() -> None:
    """Reset flowtrace's process-wide state to defaults.

    Settings go back to defaults (a tracer provider flowtrace built is shut down) and the
    observers back to the default set (the span-event observer only).

    Example::

        import pytest

        import flowtrace.testing

        @pytest.fixture(autouse=True)
        def clean_flowtrace():
            flowtrace.testing.reset()
            yield
            flowtrace.testing.reset()
    """
    _configure.reset()
    replace_observers((span_event_observer,))


class SequentialIdGenerator(IdGenerator):
    """Deterministic ids: trace ids and span ids count up from 1 (thread-safe).

    Example::

        from opentelemetry.sdk.trace import TracerProvider

        from flowtrace.testing import SequentialIdGenerator

        provider = TracerProvider(id_generator=SequentialIdGenerator())
        with provider.get_tracer("t").start_as_current_span("first") as span:
            assert span.get_span_context().span_id == 1
    """

    def __init__(self) -> None:
        self._spans = itertools.count(1)
        self._traces = itertools.count(1)
        self._lock = threading.Lock()

    def generate_span_id(self) -> int:
        with self._lock:
            return next(self._spans)

    def generate_trace_id(self) -> int:
        with self._lock:
            return next(self._traces)


class Capture:
    """Records every finished span and every flow event while installed.

    Installing it configures flowtrace with an in-memory tracer provider (with the
    flow-context stamping processor and sequential ids) and subscribes to flow events;
    uninstalling restores the previous tracer provider. Use as a context manager, or via
    the ``flowtrace_capture`` fixture.

    Example::

        import flowtrace as ft
        from flowtrace.testing import Capture

        charge = ft.handler("charge", tenant="acme")(lambda: None)
        with Capture() as capture:
            charge()
        span = capture.span("charge")
        assert capture.flow_attributes(span) == {"tenant": "acme"}
    """

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(id_generator=SequentialIdGenerator())
        self.provider.add_span_processor(FlowContextSpanProcessor())
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self._events: list[FlowEvent] = []
        self._lock = threading.Lock()
        self._previous: Any = None
        self._installed = False

    def _on_event(self, event: FlowEvent) -> None:
        with self._lock:
            self._events.append(event)

    def install(self) -> Capture:
        """Start capturing (idempotent)."""
        if not self._installed:
            self._previous = _settings.swap_tracer_provider(self.provider)
            add_observer(self._on_event)
            self._installed = True
        return self

    def uninstall(self) -> None:
        """Stop capturing and restore the previous tracer provider (idempotent)."""
        if self._installed:
            remove_observer(self._on_event)
            if _settings.settings().tracer_provider is self.provider:
                _settings.swap_tracer_provider(self._previous)
            self._installed = False

    def __enter__(self) -> Capture:
        return self.install()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstall()

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        """Finished spans in the order they ended (only those called ``name`` if given)."""
        spans = list(self.exporter.get_finished_spans())
        return spans if name is None else [s for s in spans if s.name == name]

    def span(self, name: str) -> ReadableSpan:
        """The one finished span called ``name``; AssertionError unless exactly one."""
        found = self.spans(name)
        if len(found) != 1:
            names = sorted({s.name for s in self.spans()})
            raise AssertionError(
                f"expected exactly one span named {name!r}, found {len(found)}; "
                f"finished spans: {names}"
            )
        return found[0]

    @staticmethod
    def flow_attributes(span: ReadableSpan) -> dict[str, str]:
        """The flow context stamped on ``span``, by field name (``tenant``, ``user``...)."""
        attributes = span.attributes or {}
        return {
            field: str(attributes[name]) for name, field in _FIELD_OF.items() if name in attributes
        }

    def events(self, kind: str | None = None) -> list[FlowEvent]:
        """Flow events reported so far (only those of ``kind`` if given)."""
        with self._lock:
            events = list(self._events)
        return events if kind is None else [e for e in events if e.kind == kind]

    def clear(self) -> None:
        """Forget the spans and events captured so far."""
        self.exporter.clear()
        with self._lock:
            self._events.clear()


def _flowtrace_capture() -> Iterator[Capture]:
    """Capture spans and flow events for one test (flowtrace state reset around it).

    Example::

        import flowtrace as ft

        charge = ft.handler("charge", tenant="acme")(lambda: None)

        def test_charge_is_traced(flowtrace_capture):
            charge()
            span = flowtrace_capture.span("charge")
            assert flowtrace_capture.flow_attributes(span)["tenant"] == "acme"
    """
    reset()
    capture = Capture().install()
    try:
        yield capture
    finally:
        capture.uninstall()
        capture.provider.shutdown()
        reset()
