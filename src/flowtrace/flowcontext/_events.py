"""Observers: where security-relevant flow events go (span events, the audit log, tests).

The context layer and the capabilities *report* events here; adapters *subscribe*.
Observers run synchronously in the thread that caused the event. An observer that raises
propagates its error to the caller on purpose: an audit sink that cannot record a
cross-tenant access must stop that access (fail closed). Observers that are merely
informational (the span-event observer) must never raise.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from time import time as _time
from typing import TYPE_CHECKING, Final, NamedTuple

from ._state import current

if TYPE_CHECKING:
    from ._value import FlowContext

__all__ = [
    "EventKind",
    "FlowEvent",
    "Observer",
    "add_observer",
    "listening",
    "notify",
    "remove_observer",
    "replace_observers",
]

AttributeValue = str | bool | int | float | None


class EventKind:
    """Stable names of the events flowtrace reports (documented in docs/spec/attributes.md).

    Example::

        import flowtrace as ft

        seen = ft.add_observer(lambda event: print(event.kind))
        with ft.cross_tenant(reason="usage dashboard"):
            pass                                      # prints "cross_tenant"
        assert ft.EventKind.CROSS_TENANT == "cross_tenant"
    """

    CROSS_TENANT: Final = "cross_tenant"
    TENANT_SWITCH: Final = "tenant_switch"
    TENANT_MISMATCH: Final = "tenant_mismatch"
    MESSAGE_REFUSED: Final = "message_refused"
    DECRYPT: Final = "decrypt"
    SHRED: Final = "shred"
    TXN_TOKEN_REFUSED: Final = "txn_token_refused"
    TXN_TOKEN: Final = "txn_token"


class FlowEvent(NamedTuple):
    """One security-relevant event: what happened, in which flow context, with which facts.

    Immutable (a named tuple, so reporting stays cheap on hot paths such as decrypts).
    ``attributes`` never contains plaintext of protected values.

    Example::

        import flowtrace as ft

        events: list[ft.FlowEvent] = []
        ft.add_observer(events.append)
        with ft.context(tenant="acme"), ft.cross_tenant(reason="support ticket 42"):
            pass
        event = events[-1]
        assert (event.kind, event.context.tenant) == ("cross_tenant", "acme")
        assert event.attributes["reason"] == "support ticket 42"
    """

    kind: str
    """What happened: one of :class:`EventKind`'s names."""
    context: FlowContext
    """The flow context it happened in."""
    attributes: Mapping[str, AttributeValue]
    """Facts about the event (never protected plaintext)."""
    timestamp: float
    """Seconds since the epoch (``time.time()``)."""


Observer = Callable[[FlowEvent], None]
"""An observer is any callable taking a :class:`FlowEvent`.

Example::

    import flowtrace as ft

    def alert(event: ft.FlowEvent) -> None:       # an Observer
        if event.kind == ft.EventKind.TENANT_MISMATCH:
            print("possible tenant spoofing:", dict(event.attributes))

    ft.add_observer(alert)
"""

_lock = threading.Lock()
# Copy-on-write tuple: notify() reads it without a lock.
_observers: tuple[Observer, ...] = ()


def _no() -> bool:
    return False


def _yes() -> bool:
    return True


class Listening:
    """Where :func:`listening`'s answer comes from, for hot paths (internal interface).

    ``LISTENING.now()`` is ``listening()`` minus one Python call: ``now`` is rebound (under
    the observers' lock) whenever the observers change, to the cheapest callable that
    answers for them: always False with no observers, always True with one that has no
    ``active`` hint, the single hint itself, or a loop over several. Hold ``LISTENING``,
    never ``LISTENING.now`` (that would miss later subscriptions).
    """

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now: Callable[[], bool] = _no


LISTENING: Final = Listening()


def _set(observers: tuple[Observer, ...]) -> None:
    # Under _lock. Hints are read once here, at subscription, not on every check.
    global _observers
    hints = tuple(getattr(o, "active", None) for o in observers)
    active = tuple(h for h in hints if h is not None)
    if None in hints:
        now = _yes
    elif not active:
        now = _no
    elif len(active) == 1:
        now = active[0]
    else:

        def now() -> bool:
            return any(hint() for hint in active)

    _observers = observers
    LISTENING.now = now


def add_observer(observer: Observer) -> Observer:
    """Subscribe ``observer`` to every flow event. Returns it, so it can be a decorator.

    Example::

        import flowtrace as ft

        @ft.add_observer
        def log_event(event: ft.FlowEvent) -> None:
            print(event.kind, event.context.tenant)

        with ft.context(tenant="acme"), ft.cross_tenant(reason="migration"):
            pass                                      # prints "cross_tenant acme"
        ft.remove_observer(log_event)
    """
    with _lock:
        if observer not in _observers:
            _set((*_observers, observer))
    return observer


def remove_observer(observer: Observer) -> None:
    """Unsubscribe ``observer``; unknown observers are ignored.

    Example::

        import flowtrace as ft

        seen: list[ft.FlowEvent] = []
        ft.add_observer(seen.append)
        ft.remove_observer(seen.append)
        ft.remove_observer(seen.append)               # unknown now: ignored
    """
    with _lock:
        # By equality, as add_observer checks: `seen.append` is a new bound method each time.
        _set(tuple(o for o in _observers if o != observer))


def listening() -> bool:
    """Whether an event reported now would reach an observer that acts on it.

    Hot paths (every decrypt) call this before building an event. An observer may carry
    an ``active`` attribute: a callable saying whether it would do anything right now (the
    span-event observer is active only while a span is recording). Observers without one
    (audit logs, test captures) always count as listening. The attribute is read when the
    observer is subscribed (set it before :func:`add_observer`).
    """
    return LISTENING.now()


def notify(
    kind: str,
    attributes: Mapping[str, AttributeValue] | None = None,
    context: FlowContext | None = None,
) -> FlowEvent:
    """Report an event to every observer, in the current (or given) flow context.

    Example::

        import flowtrace as ft

        seen: list[ft.FlowEvent] = []
        ft.add_observer(seen.append)
        with ft.context(tenant="acme"):
            ft.notify("export_started", {"rows": 120})
        assert seen[-1].context.tenant == "acme"
        assert seen[-1].attributes["rows"] == 120
    """
    event = FlowEvent(
        kind,
        context if context is not None else current(),
        dict(attributes) if attributes else {},
        _time(),
    )
    for observer in _observers:
        observer(event)
    return event


def replace_observers(observers: tuple[Observer, ...]) -> None:
    """Subscribe exactly ``observers`` (internal interface for ``flowtrace.testing.reset``)."""
    with _lock:
        _set(tuple(observers))
