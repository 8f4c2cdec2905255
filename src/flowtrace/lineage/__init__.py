"""Lineage: record what each piece of data was derived from, as OpenTelemetry spans.

Record with :func:`flowtrace.step` (a decorator) or :func:`record`; read back with
:func:`read_edges` and :class:`LineageGraph`. Edges bypass head sampling with
:class:`LineageSampler` and survive slow or failing backends through :class:`LineageBuffer`.
Data subjects are stored as per-tenant keyed pseudonyms (:class:`Pseudonymizer`).
See docs/lineage.md and docs/spec/lineage.md.

Owns edges, their span format, recording (``@flowtrace.step`` is implemented here and
exported only as ``flowtrace.step``), reading back, the buffer and pseudonyms. May import:
:mod:`flowtrace.flowcontext`, :mod:`flowtrace._tracing`, :mod:`flowtrace._wrapping`,
:mod:`flowtrace._settings`, :mod:`flowtrace.errors`, the OpenTelemetry API/SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._buffer import BufferStats, LineageBuffer, read_buffer
from ._edge import ATTR, FORMAT_VERSION, LineageEdge, edge_attributes, edge_from_attributes
from ._export import edge_to_span
from ._graph import LineageGraph, TraceNode
from ._ids import (
    content_hash,
    format_lineage_id,
    granularity,
    new_lineage_id,
    parse_lineage_id,
    ref,
)
from ._pseudonym import Pseudonymizer
from ._readers import read_edges
from ._run import record
from ._runtime import LineageConfig, LineageSink, lineage_config
from ._sampler import LineageSampler
from ._store import LineageStore

if TYPE_CHECKING:
    from ._openlineage import OpenLineageBridge

__all__ = [
    "ATTR",
    "BufferStats",
    "FORMAT_VERSION",
    "LineageBuffer",
    "LineageConfig",
    "LineageEdge",
    "LineageGraph",
    "LineageSampler",
    "LineageSink",
    "LineageStore",
    "OpenLineageBridge",
    "Pseudonymizer",
    "TraceNode",
    "content_hash",
    "edge_attributes",
    "edge_from_attributes",
    "edge_to_span",
    "format_lineage_id",
    "granularity",
    "lineage_config",
    "new_lineage_id",
    "parse_lineage_id",
    "read_buffer",
    "read_edges",
    "record",
    "ref",
]


def __getattr__(name: str) -> Any:
    # The OpenLineage bridge imports its extra lazily; importing it here is free.
    if name == "OpenLineageBridge":
        from ._openlineage import OpenLineageBridge

        return OpenLineageBridge
    raise AttributeError(f"module 'flowtrace.lineage' has no attribute {name!r}")
