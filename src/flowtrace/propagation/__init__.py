"""Propagation: carry the flow context across threads, processes and services.

Owns :func:`inject` / :func:`extract` (W3C ``traceparent`` + ``baggage``), the baggage
codec (docs/spec/baggage.md), :class:`FlowtracePropagator` for OpenTelemetry, carrier
lookup for the decorators, and executors/:func:`bind` that carry the context to worker
threads and processes.

May import: :mod:`flowtrace.flowcontext`, :mod:`flowtrace.errors`, the OpenTelemetry API.
The carrier helpers (:func:`carrier_context`, :func:`extract_parsed`, :func:`find_headers`,
:func:`headers_at`, :func:`is_mapping`, :func:`remote_parent`, :data:`W3C_KEYS`,
:data:`decoded`) and the forwarding hooks (:func:`enter_received`, :func:`leave_received`,
:func:`report_dropped`) and :func:`token_in` (a carrier's ``Txn-Token``) are a
documented internal interface for :mod:`flowtrace.decorators`, not public API. The
residency guard (:func:`guard_destination`, :func:`residency_policy`, :func:`make_policy`,
:class:`ResidencyPolicy`, :data:`RESIDENCY_VIOLATION`) is the internal interface for every
sender (crypto, map); its public names are in :mod:`flowtrace.map`.
"""

from __future__ import annotations

# Internal interface for flowtrace.decorators (explicit re-exports, not in __all__).
from ._carriers import W3C_KEYS as W3C_KEYS
from ._carriers import carrier_context as carrier_context
from ._carriers import decoded as decoded
from ._carriers import extract_parsed as extract_parsed
from ._carriers import find_headers as find_headers
from ._carriers import headers_at as headers_at
from ._carriers import is_mapping as is_mapping
from ._carriers import remote_parent as remote_parent
from ._executors import ContextProcessPoolExecutor, ContextThreadPoolExecutor, bind
from ._propagate import (
    BAGGAGE_DROPPED,
    BAGGAGE_HEADER,
    TRACEPARENT_HEADER,
    TRACESTATE_HEADER,
    FlowtracePropagator,
    extract,
    flow_context_from_otel,
    inject,
    otel_context,
    received_foreign,
    remote_span_context,
    trusted_destination,
)
from ._propagate import enter_received as enter_received
from ._propagate import leave_received as leave_received
from ._propagate import report_dropped as report_dropped
from ._residency import DESTINATION_REGION as DESTINATION_REGION
from ._residency import REFUSED as REFUSED
from ._residency import RESIDENCY_VIOLATION as RESIDENCY_VIOLATION
from ._residency import ResidencyPolicy as ResidencyPolicy
from ._residency import guard_destination as guard_destination
from ._residency import make_policy as make_policy
from ._residency import residency_policy as residency_policy
from ._txn import TXN_TOKEN_HEADER, TokenVerifier
from ._txn import token_in as token_in

_INTERNAL_INTERFACE = frozenset(
    {
        "DESTINATION_REGION",
        "REFUSED",
        "RESIDENCY_VIOLATION",
        "ResidencyPolicy",
        "W3C_KEYS",
        "carrier_context",
        "decoded",
        "enter_received",
        "extract_parsed",
        "find_headers",
        "guard_destination",
        "headers_at",
        "is_mapping",
        "leave_received",
        "make_policy",
        "remote_parent",
        "report_dropped",
        "residency_policy",
        "token_in",
    }
)
"""Names re-exported for flowtrace.decorators only (see the module docstring)."""

__all__ = [
    "BAGGAGE_DROPPED",
    "BAGGAGE_HEADER",
    "ContextProcessPoolExecutor",
    "ContextThreadPoolExecutor",
    "FlowtracePropagator",
    "TRACEPARENT_HEADER",
    "TRACESTATE_HEADER",
    "TXN_TOKEN_HEADER",
    "TokenVerifier",
    "bind",
    "extract",
    "flow_context_from_otel",
    "inject",
    "otel_context",
    "received_foreign",
    "remote_span_context",
    "trusted_destination",
]
