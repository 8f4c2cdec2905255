"""The flow context: whose data this is, why it is processed, where it may live.

Owns the :class:`FlowContext` value, its scopes (:class:`context`, :class:`cross_tenant`),
:func:`current` / :func:`require_tenant`, and flow events and their observers. The
representation (a tuple in a context variable) is private to this package: other packages
read a context's attributes and use the names exported here. ``attach``/``detach``,
``derive``, ``current_tenant``, ``notify``/``listening``/``LISTENING``,
``assemble``/``check_field``/``scalar_values`` and ``EMPTY`` are a documented internal
interface for flowtrace's own packages (not in ``__all__``, not public API: event
emission into the audit trail is flowtrace's alone).

May import: :mod:`flowtrace.errors`, :mod:`flowtrace._wrapping`. Nothing above it.
"""

from __future__ import annotations

# The documented internal interface for flowtrace's own packages (explicit re-exports, not
# in __all__, not public API): reporting events, installing resolved contexts, validating
# and assembling values in codecs.
from ._events import LISTENING as LISTENING
from ._events import EventKind, FlowEvent, Observer, add_observer, remove_observer
from ._events import listening as listening
from ._events import notify as notify
from ._events import replace_observers as replace_observers
from ._scope import context, cross_tenant, cross_tenant_reason, require_tenant
from ._scope import derive as derive
from ._state import attach as attach
from ._state import current
from ._state import current_tenant as current_tenant
from ._state import detach as detach
from ._value import EMPTY as EMPTY
from ._value import (
    FIELDS,
    MAX_BAGGAGE_ENTRIES,
    MAX_LINEAGE_PARENTS,
    MAX_VALUE_LENGTH,
    FlowContext,
)
from ._value import assemble as assemble
from ._value import check_field as check_field
from ._value import scalar_values as scalar_values

__all__ = [
    "EventKind",
    "FIELDS",
    "FlowContext",
    "FlowEvent",
    "MAX_BAGGAGE_ENTRIES",
    "MAX_LINEAGE_PARENTS",
    "MAX_VALUE_LENGTH",
    "Observer",
    "add_observer",
    "context",
    "cross_tenant",
    "cross_tenant_reason",
    "current",
    "remove_observer",
    "require_tenant",
]

_INTERNAL_INTERFACE = frozenset(
    {
        "EMPTY",
        "LISTENING",
        "assemble",
        "attach",
        "check_field",
        "current_tenant",
        "derive",
        "detach",
        "listening",
        "notify",
        "replace_observers",
        "scalar_values",
    }
)
"""Names re-exported for flowtrace's own packages only (see the module docstring)."""

for _name in ("FlowContext", "context", "cross_tenant", "EventKind", "FlowEvent"):
    globals()[_name].__module__ = "flowtrace"
del _name
