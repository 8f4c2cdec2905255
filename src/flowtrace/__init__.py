"""flowtrace: prove what happens to the data your service touches.

The public contract is re-exported here; see docs/ for guides and docs/spec/ for the
stable formats. Capabilities live in namespaces: :mod:`flowtrace.crypto`,
:mod:`flowtrace.audit`, :mod:`flowtrace.lineage`, :mod:`flowtrace.testing`.

The house, top floor first (lower layers never import higher ones; the import-linter
contracts in pyproject.toml check it)::

    cli/ _demo/             the `flowtrace` command and the demo
    testing/                pytest plugin, capture, tenant-isolation assertions
    _configure.py           configure(): builds and wires OTel, the audit observer, ...
    logging.py decorators/  structlog/stdlib adapters; @handler and @consumer
    lineage/ audit/         edges and the lineage store; the hash-chained audit log
    otel/ crypto/           span/log processors and exporters; field encryption
    propagation/ scrubbing/ inject/extract, baggage codec, executors; the scrubber
    flowcontext/ classify   FlowContext and its scopes, flow events; classifications
    _wrapping _tracing      the one wrapper family; the tracer in force
    _settings _version      the settings leaf every layer reads
    errors                  the exception tree
"""

from __future__ import annotations

from ._configure import configure
from ._settings import Settings, settings
from ._version import __version__
from .classify import Category, Classification, Level, Schema
from .decorators import consumer, handler
from .errors import (
    ConfigError,
    ContextError,
    ContextPropagationError,
    FlowtraceError,
    InvalidContextValueError,
    MissingExtraError,
    MissingTenantError,
    SchemaError,
    ScrubError,
    TenantMismatchError,
    TenantNotAllowedError,
    TenantSwitchError,
)
from .flowcontext import (
    EventKind,
    FlowContext,
    FlowEvent,
    Observer,
    add_observer,
    context,
    cross_tenant,
    cross_tenant_reason,
    current,
    remove_observer,
    require_tenant,
)
from .lineage._step import step
from .otel import span_event_observer as _span_event_observer
from .propagation import (
    ContextProcessPoolExecutor,
    ContextThreadPoolExecutor,
    FlowtracePropagator,
    bind,
    extract,
    inject,
)
from .scrubbing import Scrubber, scrub

__all__ = [
    "Category",
    "Classification",
    "ConfigError",
    "ContextError",
    "ContextProcessPoolExecutor",
    "ContextPropagationError",
    "ContextThreadPoolExecutor",
    "EventKind",
    "FlowContext",
    "FlowEvent",
    "FlowtraceError",
    "FlowtracePropagator",
    "InvalidContextValueError",
    "Level",
    "MissingExtraError",
    "MissingTenantError",
    "Observer",
    "Schema",
    "SchemaError",
    "ScrubError",
    "Scrubber",
    "Settings",
    "TenantMismatchError",
    "TenantNotAllowedError",
    "TenantSwitchError",
    "__version__",
    "add_observer",
    "bind",
    "configure",
    "consumer",
    "context",
    "cross_tenant",
    "cross_tenant_reason",
    "current",
    "extract",
    "handler",
    "inject",
    "remove_observer",
    "require_tenant",
    "scrub",
    "settings",
    "step",
]


# Wiring from the top: flow events become span events by default (never raises).
add_observer(_span_event_observer)

_NAMESPACES = frozenset({"audit", "crypto", "lineage", "map", "privacy", "testing", "trust"})


def __getattr__(name: str) -> object:
    """Import the capability namespaces lazily: ``ft.audit.AuditLog`` works after
    ``import flowtrace as ft`` without paying for every capability at import time."""
    if name in _NAMESPACES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
