"""Lineage configuration and the path every edge takes after it is recorded.

Settings live in ``flowtrace.settings().lineage`` (a :class:`LineageConfig`), so
``flowtrace.testing.reset()`` clears them with everything else. Recording with nothing
configured works: edges become spans on whatever tracer is in force.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .. import _config
from ..errors import ConfigError
from ._edge import LineageEdge
from ._pseudonym import KeySource, Pseudonymizer

if TYPE_CHECKING:
    from ._buffer import LineageBuffer

__all__ = ["LineageConfig", "LineageSink", "configure", "emit", "lineage_config"]

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

        lineage.configure(sinks=[PrintSink()])
        with ft.context(tenant="acme"):
            lineage.record("copy", inputs="a.csv", outputs="b.csv")   # prints copy ('a.csv',) ...
    """

    def emit(self, edge: LineageEdge) -> None:
        """Handle one edge. Exceptions are logged and counted, never raised into the app."""


@dataclass(frozen=True)
class LineageConfig:
    """What :func:`flowtrace.lineage.configure` set.

    Example::

        import os

        from flowtrace import lineage

        config = lineage.configure(pseudonym_key=os.urandom(32))   # a LineageConfig
        assert config.pseudonymizer is not None and config.sinks == ()
        assert lineage.lineage_config() is config
    """

    buffer: LineageBuffer | None = None
    """Durable buffer every edge is appended to before export (``None``: spans only)."""
    pseudonymizer: Pseudonymizer | None = None
    """Turns subjects into per-tenant keyed pseudonyms; required to record subjects."""
    sinks: tuple[LineageSink, ...] = ()
    """Extra receivers of every edge (OpenLineage bridge, custom)."""

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
    cfg = _config.settings().lineage
    return cfg if cfg is not None else _EMPTY


def configure(
    *,
    buffer: LineageBuffer | None = None,
    pseudonym_key: KeySource | None = None,
    pseudonymizer: Pseudonymizer | None = None,
    sinks: Sequence[LineageSink] | Iterable[LineageSink] = (),
) -> LineageConfig:
    """Configure lineage for this process (replaces the previous lineage configuration).

    ``buffer``: a :class:`LineageBuffer` (durable, at-least-once shipping).
    ``pseudonym_key``: bytes (>= 16) or ``tenant -> bytes``; or pass a ready
    ``pseudonymizer``. ``sinks``: objects with ``emit(edge)``, e.g. an OpenLineage bridge.

    Example::

        import os

        import flowtrace as ft
        from flowtrace import lineage

        lineage.configure(pseudonym_key=os.urandom(32))  # subjects are stored as pseudonyms
        with ft.context(tenant="acme"):
            edge = lineage.record("enrich", inputs="crm#42", outputs="dwh#42", subjects="ana@x.io")
        assert "ana@x.io" not in edge.subjects
    """
    from ._buffer import LineageBuffer

    if buffer is not None and not isinstance(buffer, LineageBuffer):
        raise ConfigError(f"lineage buffer must be a LineageBuffer, got {type(buffer).__name__}")
    if pseudonym_key is not None and pseudonymizer is not None:
        raise ConfigError("give lineage either pseudonym_key= or pseudonymizer=, not both")
    if pseudonym_key is not None:
        pseudonymizer = Pseudonymizer(pseudonym_key)
    if pseudonymizer is not None and not isinstance(pseudonymizer, Pseudonymizer):
        raise ConfigError("lineage pseudonymizer must be a flowtrace.lineage.Pseudonymizer")
    sink_tuple = tuple(sinks)
    for sink in sink_tuple:
        if not isinstance(sink, LineageSink):
            raise ConfigError(f"lineage sink {sink!r} has no emit(edge) method")
    cfg = LineageConfig(buffer=buffer, pseudonymizer=pseudonymizer, sinks=sink_tuple)
    _config.configure(lineage=cfg)
    return cfg


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
