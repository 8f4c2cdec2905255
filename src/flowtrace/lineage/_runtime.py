"""Lineage configuration and the path every edge takes after it is recorded.

Settings live in ``flowtrace.settings().lineage`` (a :class:`LineageConfig` given to
``flowtrace.configure(lineage=...)``), so
``flowtrace.testing.reset()`` clears them with everything else. Recording with nothing
configured works: edges become spans on whatever tracer is in force.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .. import _settings
from ..errors import ConfigError
from ._edge import LineageEdge
from ._pseudonym import KeySource, Pseudonymizer

if TYPE_CHECKING:
    from ._buffer import LineageBuffer

__all__ = ["LineageConfig", "LineageSink", "emit", "lineage_config"]

logger = logging.getLogger("flowtrace.lineage")


@runtime_checkable
class LineageSink(Protocol):
    """Receives every recorded edge (e.g. :class:`OpenLineageBridge`). Must not block long.

    Example::

        import flowtrace as ft
        from flowtrace import lineage

        class PrintSink:                                 # a LineageSink: emit(edge), quick
            def emit(self, edge: lineage.LineageEdge) -> None:
                print(edge.name, edge.inputs, "->", edge.outputs)

        ft.configure(lineage=lineage.LineageConfig(sinks=[PrintSink()]))
        with ft.context(tenant="acme"):
            lineage.record("copy", inputs="a.csv", outputs="b.csv")   # prints copy ('a.csv',) ...
    """

    def emit(self, edge: LineageEdge) -> None:
        """Handle one edge. Exceptions are logged and counted, never raised into the app."""


@dataclass(frozen=True)
class LineageConfig:
    """Lineage settings, installed with ``flowtrace.configure(lineage=LineageConfig(...))``.

    ``buffer``: a :class:`LineageBuffer` (durable, at-least-once shipping).
    ``pseudonym_key``: bytes (>= 16) or ``tenant -> bytes``, or pass a ready
    ``pseudonymizer``. ``sinks``: objects with ``emit(edge)``, e.g. an OpenLineage bridge.
    Bad values raise :class:`~flowtrace.errors.ConfigError`.

    >>> import flowtrace as ft
    >>> settings = ft.configure(lineage=ft.lineage.LineageConfig(pseudonym_key=b"k" * 32))
    >>> settings.lineage.pseudonymizer is not None
    True
    >>> _ = ft.configure(lineage=None)
    """

    buffer: LineageBuffer | None = None
    """Durable buffer every edge is appended to before export (``None``: spans only)."""
    pseudonymizer: Pseudonymizer | None = None
    """Turns subjects into per-tenant keyed pseudonyms; required to record subjects."""
    sinks: Sequence[LineageSink] | Iterable[LineageSink] = ()
    """Extra receivers of every edge (OpenLineage bridge, custom); stored as a tuple."""
    pseudonym_key: KeySource | None = field(default=None, repr=False)
    """Key material for the :class:`Pseudonymizer` (instead of ``pseudonymizer``)."""

    def __post_init__(self) -> None:
        from ._buffer import LineageBuffer

        buffer, key, pseudonymizer = self.buffer, self.pseudonym_key, self.pseudonymizer
        if buffer is not None and not isinstance(buffer, LineageBuffer):
            raise ConfigError(
                f"lineage buffer must be a LineageBuffer, got {type(buffer).__name__}"
            )
        if key is not None and pseudonymizer is not None:
            raise ConfigError("give lineage either pseudonym_key= or pseudonymizer=, not both")
        if key is not None:
            pseudonymizer = Pseudonymizer(key)
            object.__setattr__(self, "pseudonymizer", pseudonymizer)
            object.__setattr__(self, "pseudonym_key", None)  # the pseudonymizer holds it
        if pseudonymizer is not None and not isinstance(pseudonymizer, Pseudonymizer):
            raise ConfigError("lineage pseudonymizer must be a flowtrace.lineage.Pseudonymizer")
        sinks = tuple(self.sinks)
        for sink in sinks:
            if not isinstance(sink, LineageSink):
                raise ConfigError(f"lineage sink {sink!r} has no emit(edge) method")
        object.__setattr__(self, "sinks", sinks)

    @property
    def needs_edges(self) -> bool:
        """True when something consumes :class:`LineageEdge` objects besides spans."""
        return self.buffer is not None or bool(self.sinks)


_EMPTY = LineageConfig()
sink_failures = [0]


def lineage_config() -> LineageConfig:
    """The lineage configuration in force.

    Example::

        from flowtrace import lineage

        assert lineage.lineage_config().buffer is None   # nothing configured yet
    """
    cfg = _settings.settings().lineage
    return cfg if cfg is not None else _EMPTY


def emit(edge: LineageEdge, cfg: LineageConfig) -> None:
    """Send a finished edge to the buffer and sinks.

    The buffer applies its own overflow policy (``"raise"`` raises here, by request).
    Sink failures are logged and counted: a broken OpenLineage transport must not break
    the application.
    """
    if cfg.buffer is not None:
        cfg.buffer.append(edge)
    for sink in cfg.sinks:
        try:
            sink.emit(edge)
        except Exception:
            sink_failures[0] += 1
            logger.exception("lineage sink %r failed for edge %s", sink, edge.id)
