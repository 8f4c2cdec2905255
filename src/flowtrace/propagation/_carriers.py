"""Reading flow contexts from message/request carriers, fast (used by the decorators)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, Final

from ..errors import ConfigError, ContextPropagationError
from ..flowcontext import EMPTY, FlowContext
from ._baggage_codec import Parsed
from ._baggage_codec import parse as _parse_baggage
from ._propagate import BAGGAGE_HEADER, remote_span_context, report_dropped
from ._propagate import _header as _baggage_header

__all__ = [
    "MISSING",
    "W3C_KEYS",
    "carrier_context",
    "decoded",
    "extract_parsed",
    "find_headers",
    "headers_at",
    "is_mapping",
    "remote_parent",
]

_MEMO_SIZE: Final = 1024
W3C_KEYS: Final = frozenset({"baggage", "traceparent", "tracestate"})
decoded: dict[str, FlowContext] = {}
"""Memo of headers holding flowtrace members only (the consumers' fast path reads it)."""
_parsed: dict[str, Parsed] = {}
"""Memo of other headers that fit the W3C size limit (with valid foreign members)."""
_NOTHING: Final = Parsed(EMPTY, (), 0)


def carrier_context(carrier: Any) -> FlowContext:
    """``flowtrace.extract(carrier)``, memoizing the (pure) parse of each baggage header.

    Messages of one tenant/user carry the same baggage string, so consumers parse each
    distinct header once. Exactly ``extract``: same header lookup, same decoder, and
    errors are never memoized.
    """
    return extract_parsed(carrier).context


def extract_parsed(carrier: Any) -> Parsed:
    """:func:`extract`, also giving the valid foreign members to forward (and drops)."""
    header: Any = None
    if type(carrier) is dict and carrier.keys() <= W3C_KEYS:
        # Only W3C keys, so no other spelling of "baggage" to combine: read it directly.
        header = carrier.get(BAGGAGE_HEADER)
        if header is None:
            return _NOTHING
    if type(header) is not str:  # other carriers, bytes or lists: the full lookup
        header = _baggage_header(carrier, BAGGAGE_HEADER, None)
        if header is None:
            return _NOTHING
    ctx = decoded.get(header)
    if ctx is not None:
        return Parsed(ctx, (), 0)
    parsed = _parsed.get(header)
    if parsed is None:
        parsed = _parse_baggage(header)
        _remember(header, parsed)
    if parsed.dropped:  # reported on every message, not only the first
        report_dropped("extract", "malformed", parsed.dropped)
    return parsed


def _remember(header: str, parsed: Parsed) -> None:
    if parsed.foreign or parsed.dropped:
        if len(header) <= _MEMO_HEADER_BYTES:  # a client must not fill memory with it
            if len(_parsed) >= _MEMO_SIZE:
                _parsed.clear()
            _parsed[header] = parsed
        return
    if len(decoded) >= _MEMO_SIZE:
        decoded.clear()
    decoded[header] = parsed.context


_MEMO_HEADER_BYTES: Final = 8192


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
    """The headers of the one argument with a ``key`` attribute (``message.headers``).

    Never a mapping's key or attribute: a message *body* is often a dict, and its content
    is the sender's to choose, not the broker's (kombu calls ``process(body, message)``).
    Two arguments with the attribute are ambiguous: :class:`ConfigError`.
    """
    found: Any = MISSING
    where = -1
    for position, arg in enumerate((*args, *kwargs.values()) if kwargs else args):
        kind = type(arg)
        if kind is dict or kind in _SCALARS:
            continue
        value = getattr(arg, key, MISSING)
        if value is MISSING or callable(value) or is_mapping(kind):
            continue
        if found is not MISSING:
            raise ConfigError(
                f"arguments {where} and {position} of the consumer both have a {key!r} "
                "attribute, so which one carries the message headers is ambiguous; say "
                f"it: consumer(headers='<parameter>.{key}') or headers=callable(*args, "
                "**kwargs) returning the message headers"
            )
        found, where = value, position
    if found is MISSING:
        raise TypeError(
            f"no argument of the consumer has a {key!r} attribute (mapping keys are never "
            "read: a message body must not choose its tenant); pass "
            "headers=callable(*args, **kwargs) returning the message headers, e.g. "
            "headers=lambda envelope: envelope['headers'] for an envelope you trust"
        )
    return found


def headers_at(func: Callable[..., Any], path: str) -> Callable[..., Any]:
    """``consumer(headers="message.headers")``: attribute(s) of one named parameter.

    The explicit form for shapes such as kombu's ``process(body, message)``. Raises
    :class:`ConfigError` at decoration when ``func`` has no such parameter.
    """
    name, _, rest = path.partition(".")
    attrs = rest.split(".")
    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        parameters = []
    names = [p.name for p in parameters]
    if name not in names or not all(attr.isidentifier() for attr in attrs):
        raise ConfigError(
            f"consumer(headers={path!r}): expected '<parameter>.<attribute>' naming one "
            f"of the function's parameters {names}"
        )
    index = names.index(name)
    positional = parameters[index].kind in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )

    def headers(*args: Any, **kwargs: Any) -> Any:
        if positional and index < len(args):
            value = args[index]
        elif name in kwargs:
            value = kwargs[name]
        else:
            raise TypeError(f"the consumer was called without its {name!r} argument")
        for attr in attrs:
            found = getattr(value, attr, MISSING)
            if found is MISSING or is_mapping(type(value)):
                raise TypeError(
                    f"consumer(headers={path!r}): {type(value).__name__} has no {attr!r} "
                    "attribute"
                )
            value = found
        return value

    return headers


MISSING: Final = object()

_mapping_kinds: dict[type, bool] = {}


def is_mapping(kind: type) -> bool:
    """``issubclass(kind, Mapping)``, cached per type (an ABC check costs ~0.2 us)."""
    known = _mapping_kinds.get(kind)
    if known is None:
        known = issubclass(kind, Mapping)
        if len(_mapping_kinds) < 1024:
            _mapping_kinds[kind] = known
    return known
