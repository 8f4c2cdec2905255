"""flowtrace: prove what happens to the data your service touches.

The public contract is re-exported here; see docs/ for guides and docs/spec/ for the
stable formats. Capabilities live in namespaces: :mod:`flowtrace.crypto`,
:mod:`flowtrace.audit`, :mod:`flowtrace.lineage`, :mod:`flowtrace.testing`.
"""

from __future__ import annotations

from ._config import Settings, configure, settings
from ._observe import EventKind, FlowEvent, Observer, add_observer, notify, remove_observer
from ._version import __version__
from .context import (
    FlowContext,
    context,
    cross_tenant,
    cross_tenant_reason,
    current,
    require_tenant,
)
from .errors import (
    ConfigError,
    ContextError,
    ContextPropagationError,
    FlowtraceError,
    InvalidContextValueError,
    MissingExtraError,
    MissingTenantError,
    TenantMismatchError,
    TenantNotAllowedError,
    TenantSwitchError,
)
from .executors import ContextProcessPoolExecutor, ContextThreadPoolExecutor, bind
from .propagation import FlowtracePropagator, extract, inject

__all__ = [
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
    "MissingExtraError",
    "MissingTenantError",
    "Observer",
    "Settings",
    "TenantMismatchError",
    "TenantNotAllowedError",
    "TenantSwitchError",
    "__version__",
    "add_observer",
    "bind",
    "configure",
    "context",
    "cross_tenant",
    "cross_tenant_reason",
    "current",
    "extract",
    "inject",
    "notify",
    "remove_observer",
    "require_tenant",
    "settings",
]
