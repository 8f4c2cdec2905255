"""The flow context: whose data this is, why it is processed, where it may live.

Owns the :class:`FlowContext` value, its scopes (:class:`context`, :class:`cross_tenant`),
:func:`current` / :func:`require_tenant`, and flow events and their observers. The
representation (a tuple in a context variable) is private to this package: other packages
read a context's attributes and use the functions exported here (:func:`attach` /
:func:`detach` / :func:`derive` / :func:`notify` / :func:`listening` are a documented
internal interface for flowtrace's own adapters, not public API).

May import: :mod:`flowtrace.errors`, :mod:`flowtrace._wrapping`. Nothing above it.
"""

from __future__ import annotations

from ._events import (
    EventKind,
    FlowEvent,
    Observer,
    add_observer,
    listening,
    notify,
    remove_observer,
    replace_observers,
)
from ._scope import context, cross_tenant, cross_tenant_reason, derive, require_tenant
from ._state import attach, current, detach
from ._value import (
    EMPTY,
    FIELDS,
    MAX_BAGGAGE_ENTRIES,
    MAX_LINEAGE_PARENTS,
    MAX_VALUE_LENGTH,
    FlowContext,
    assemble,
    check_field,
    scalar_values,
)

__all__ = [
    "EMPTY",
    "FIELDS",
    "MAX_BAGGAGE_ENTRIES",
    "MAX_LINEAGE_PARENTS",
    "MAX_VALUE_LENGTH",
    "EventKind",
    "FlowContext",
    "FlowEvent",
    "Observer",
    "add_observer",
    "assemble",
    "attach",
    "check_field",
    "context",
    "cross_tenant",
    "cross_tenant_reason",
    "current",
    "derive",
    "detach",
    "listening",
    "notify",
    "remove_observer",
    "replace_observers",
    "require_tenant",
    "scalar_values",
]

for _name in ("FlowContext", "context", "cross_tenant", "EventKind", "FlowEvent"):
    globals()[_name].__module__ = "flowtrace"
del _name
