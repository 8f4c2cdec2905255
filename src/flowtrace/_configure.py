"""``flowtrace.configure()``: builds and wires the pieces from the top.

The settings themselves live in the leaf :mod:`flowtrace._settings`, which every layer
reads; this module sits above the capabilities it wires (the OTel tracer provider, the
audit observer, the scrubber, lineage) and may import any of them. Nothing is required:
with nothing configured flowtrace still works (tracing is a no-op, scrubbing uses the
built-in detectors, no audit log). ``configure`` validates its
arguments and raises :class:`~flowtrace.errors.ConfigError` naming the bad one.
"""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import _settings, _tracing
from ._settings import Settings
from .errors import ConfigError

__all__ = ["configure", "reset"]


_lock = threading.Lock()
# The TracerProvider flowtrace built itself (shut down when replaced or reset).
_owned_provider: Any = None

# Options that make flowtrace build (or rebuild) its own TracerProvider.
_TRACING_OPTIONS = frozenset({"span_exporters", "console_spans", "spans_file", "flow_metrics"})
_RESOURCE_OPTIONS = frozenset({"service", "region"})


def configure(**options: Any) -> Settings:
    """Configure flowtrace for this process. Unknown options raise :class:`ConfigError`.

    Options: ``service``, ``region``, ``tracer_provider``, ``scrubber``, ``audit_log``, plus
    those documented by each capability (see docs/). Calling it again updates only the
    options given.

    Tracing: ``span_exporters=[...]`` (OTel ``SpanExporter`` instances),
    ``console_spans=True`` and/or ``spans_file=path`` make flowtrace build an SDK
    ``TracerProvider`` with a ``service.name`` resource, the
    :class:`~flowtrace.otel.FlowContextSpanProcessor` and a batch processor per exporter.
    It is stored in the settings (flowtrace never needs OTel's global provider);
    ``set_global=True`` also installs it globally. Pass ``tracer_provider=`` instead to use
    your own provider (add ``FlowContextSpanProcessor`` to it yourself).
    ``flow_metrics=True`` (or a ``MeterProvider``) also adds the data-flow map's
    :class:`~flowtrace.map.FlowMetricsSpanProcessor` to the provider flowtrace builds.

    Residency: ``residency=`` a declared map (a :class:`~flowtrace.map.DeclaredMap` or the
    path of a map file) or a :class:`~flowtrace.map.ResidencyPolicy` arms the residency
    guard (:func:`flowtrace.map.configure_residency` says the same with more options).

    Example::

        import flowtrace as ft
        from flowtrace.audit import AuditLog

        ft.configure(service="billing", region="eu", console_spans=True)
        ft.configure(audit_log=AuditLog("audit.jsonl"))   # updates only audit_log
    """
    global _owned_provider
    _tracing.refresh()  # look at OTel's global provider again
    known = {f for f in Settings.__dataclass_fields__ if f != "extras"}
    with _lock:
        new = _settings.settings()
        for name, value in options.items():
            if name in known:
                new = replace(new, **{name: _validate(name, value)})
            else:
                raise ConfigError(
                    f"configure() got an unknown option {name!r}; "
                    f"known options are {', '.join(sorted(known))}"
                )
        wants_exporters = bool(new.span_exporters or new.console_spans or new.spans_file)
        touched = set(options)
        old_owned = _owned_provider
        rebuild = wants_exporters and (
            bool(touched & _TRACING_OPTIONS)
            or (old_owned is not None and bool(touched & _RESOURCE_OPTIONS))
        )
        if rebuild:
            if "tracer_provider" in options and options["tracer_provider"] is not None:
                raise ConfigError(
                    "configure() got both tracer_provider= and span exporters; either pass "
                    "your own provider (and add its exporters yourself) or let flowtrace "
                    "build one from span_exporters/console_spans/spans_file"
                )
            from .otel import build_tracer_provider

            provider = build_tracer_provider(
                service=new.service,
                region=new.region,
                span_exporters=new.span_exporters,
                console_spans=new.console_spans,
                spans_file=new.spans_file,
            )
            if new.flow_metrics is not False:
                from .map import FlowMetricsSpanProcessor

                meters = None if new.flow_metrics is True else new.flow_metrics
                provider.add_span_processor(FlowMetricsSpanProcessor(meters))
            new = replace(new, tracer_provider=provider)
            _owned_provider = provider
        elif "tracer_provider" in options:
            _owned_provider = None  # the caller's provider replaces ours
        elif touched & _TRACING_OPTIONS and old_owned is not None:
            # every exporter switched off: back to no-op tracing
            new = replace(new, tracer_provider=None)
            _owned_provider = None
        _settings.install(new)
    if old_owned is not None and old_owned is not _owned_provider:
        old_owned.shutdown()
    if rebuild and new.set_global:
        from opentelemetry import trace

        trace.set_tracer_provider(new.tracer_provider)
    return new


def _validate(name: str, value: Any) -> Any:
    if name == "service" and (not isinstance(value, str) or not value):
        raise ConfigError("configure(service=...) must be a non-empty str")
    if name in ("console_spans", "set_global") and not isinstance(value, bool):
        raise ConfigError(f"configure({name}=...) must be True or False")
    if name == "spans_file" and value is not None and not isinstance(value, str | Path):
        raise ConfigError("configure(spans_file=...) must be a path (str or pathlib.Path)")
    if name == "trust_domain":
        return _trust_domain(value)
    if name == "residency":
        return _residency(value)
    if name == "flow_metrics" and not (
        isinstance(value, bool) or callable(getattr(value, "get_meter", None))
    ):
        raise ConfigError(
            "configure(flow_metrics=...) must be True, False or an OTel MeterProvider"
        )
    if name == "span_exporters":
        if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
            raise ConfigError("configure(span_exporters=...) must be a list of SpanExporters")
        return tuple(value)
    if name == "scrubber" and value is not None:
        from .scrubbing import Scrubber

        if not isinstance(value, Scrubber):
            raise ConfigError(
                f"configure(scrubber=...) must be a flowtrace.Scrubber, got "
                f"{type(value).__name__}; build one with flowtrace.Scrubber(...)"
            )
    if name == "lineage" and value is not None:
        from .lineage import LineageConfig

        if not isinstance(value, LineageConfig):
            raise ConfigError(
                f"configure(lineage=...) must be a flowtrace.lineage.LineageConfig, got "
                f"{type(value).__name__}"
            )
    if name == "audit_log" and value is not None:
        if not callable(getattr(value, "append", None)):
            raise ConfigError("configure(audit_log=...) must be a flowtrace.audit.AuditLog")
        _wire_audit()
    return value


# A host pattern: DNS labels, '*' wildcards allowed (e.g. "*.corp.example"), or "*".
_HOST_PATTERN = re.compile(r"[a-z0-9*]([a-z0-9*.-]*[a-z0-9*])?")


def _trust_domain(value: Any) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise ConfigError(
            "configure(trust_domain=...) must be a list of host patterns, e.g. "
            "['api.internal', '*.corp.example']"
        )
    patterns = tuple(value)
    for pattern in patterns:
        if not isinstance(pattern, str) or not _HOST_PATTERN.fullmatch(pattern.lower()):
            raise ConfigError(
                f"configure(trust_domain=...) got {pattern!r}; each entry is a host name or "
                "a pattern with '*' wildcards (letters, digits, '.', '-', '*'), no scheme "
                "or port"
            )
    return tuple(pattern.lower() for pattern in patterns)


def _residency(value: Any) -> Any:
    from .map import DeclaredMap, ResidencyPolicy, load_declared
    from .map._residency import policy_from

    if value is None or isinstance(value, ResidencyPolicy):
        return value
    if isinstance(value, str | Path):
        value = load_declared(value)
    if not isinstance(value, DeclaredMap):
        raise ConfigError(
            f"configure(residency=...) must be a flowtrace.map.DeclaredMap, the path of a "
            f"declared map file or a flowtrace.map.ResidencyPolicy, got {type(value).__name__}"
        )
    return policy_from(value, origin="configure")


def _wire_audit() -> None:
    """Flow events must reach the configured audit log: subscribe its observer (idempotent)."""
    from .audit._observer import install

    install()


def reset() -> None:
    """Back to defaults (``flowtrace.testing.reset``); shuts down a provider we built."""
    global _owned_provider
    _tracing.refresh()
    with _lock:
        _settings.install(Settings())
        owned, _owned_provider = _owned_provider, None
    if owned is not None:
        owned.shutdown()
