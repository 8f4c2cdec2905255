"""flowtrace: prove what happens to the data your service touches.

The public contract is re-exported here; see docs/ for guides and docs/spec/ for the
stable formats. Capabilities live in namespaces: :mod:`flowtrace.crypto`,
:mod:`flowtrace.audit`, :mod:`flowtrace.lineage`, :mod:`flowtrace.testing`.
"""

from __future__ import annotations

from . import _otel_attributes  # noqa: F401  (registers the span-event observer)
from ._config import Settings, configure, settings
from ._observe import EventKind, FlowEvent, Observer, add_observer, notify, remove_observer
from ._version import __version__
from .classify import Category, Classification, Level, Schema
from .context import (
    FlowContext,
    context,
    cross_tenant,
    cross_tenant_reason,
    current,
    require_tenant,
)
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
from .executors import ContextProcessPoolExecutor, ContextThreadPoolExecutor, bind
from .lineage._step import step
from .propagation import FlowtracePropagator, extract, inject
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
    "notify",
    "remove_observer",
    "require_tenant",
    "scrub",
    "settings",
    "step",
]


_NAMESPACES = frozenset({"audit", "crypto", "lineage", "map", "testing"})


def __getattr__(name: str) -> object:
    """Import the capability namespaces lazily: ``ft.audit.AuditLog`` works after
    ``import flowtrace as ft`` without paying for every capability at import time."""
    if name in _NAMESPACES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
