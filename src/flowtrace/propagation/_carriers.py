"""Reading flow contexts from message/request carriers, fast (used by the decorators)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ..errors import ContextPropagationError
from ..flowcontext import EMPTY, FlowContext
from ._baggage_codec import decode as _decode_baggage
from ._propagate import BAGGAGE_HEADER, remote_span_context
from ._propagate import _header as _baggage_header

__all__ = ["MISSING", "W3C_KEYS", "carrier_context", "decoded", "find_headers", "remote_parent"]

_MEMO_SIZE: Final = 1024
W3C_KEYS: Final = frozenset({"baggage", "traceparent", "tracestate"})
decoded: dict[str, FlowContext] = {}


def carrier_context(carrier: Any) -> FlowContext:
    """``flowtrace.extract(carrier)``, memoizing the (pure) parse of each baggage header.

    Messages of one tenant/user carry the same baggage string, so consumers parse each
    distinct header once. Exactly ``extract``: same header lookup, same decoder, and
    errors are never memoized.
    """
    header: Any = None
    if type(carrier) is dict and carrier.keys() <= W3C_KEYS:
        # Only W3C keys, so no other spelling of "baggage" to combine: read it directly.
        header = carrier.get(BAGGAGE_HEADER)
        if header is None:
            return EMPTY
    if type(header) is not str:  # other carriers, bytes or lists: the full lookup
        header = _baggage_header(carrier, BAGGAGE_HEADER, None)
        if header is None:
            return EMPTY
    ctx = decoded.get(header)
    if ctx is None:
        ctx = _decode_baggage(header)
        if len(decoded) >= _MEMO_SIZE:
            decoded.clear()
        decoded[header] = ctx
    return ctx


def remote_parent(carrier: Any) -> Any:
    """The producer's span context for a span link, or ``None`` (also when malformed).

    Only used for tracing: the flow context itself was already extracted (strictly).
    """
    if carrier is None:
        return None
    try:
        return remote_span_context(carrier)
    except (ContextPropagationError, TypeError):
        return None


_SCALARS: Final = frozenset({str, bytes, bytearray, memoryview, int, float, bool, type(None)})


def find_headers(args: tuple[Any, ...], kwargs: dict[str, Any], key: str) -> Any:
    """Find the headers among the call's arguments (``x.headers`` or ``x["headers"]``)."""
    for arg in (*args, *kwargs.values()) if kwargs else args:
        kind = type(arg)
        if kind is dict:
            if key in arg:
                return arg[key]
            continue
        if kind in _SCALARS:
            continue
        found = getattr(arg, key, MISSING)
        if found is not MISSING and not callable(found):
            return found
        if isinstance(arg, Mapping) and key in arg:
            return arg[key]
    raise TypeError(
        f"no argument of the consumer has a {key!r} attribute or key; pass "
        "headers=callable(*args, **kwargs) returning the message headers"
    )


MISSING: Final = object()
