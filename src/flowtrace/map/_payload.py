"""Say what data an operation hands over: categories and encryption state on the span.

Instrumentations know *where* data goes (``db.*``, ``messaging.*``, ``http.*``); only the
application knows *what* it is. :func:`record_data` classifies a payload with a
:class:`flowtrace.Schema` (or takes the categories as given), notices which classified
fields hold flowtrace ciphertext, and writes ``flowtrace.data.categories`` /
``flowtrace.data.encrypted`` on the current span, where the map reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import trace

from ..classify import Schema
from . import _names as n

__all__ = ["classify_payload", "record_data"]


def _is_token(value: Any) -> bool:
    if not isinstance(value, str) or len(value) < 16:
        return False
    from ..crypto import FieldEncryptor
    from ..errors import FlowtraceError

    try:
        FieldEncryptor.inspect(value)
    except (FlowtraceError, ValueError):
        return False
    return True


def classify_payload(
    payload: Mapping[str, Any], schema: Schema, _prefix: str = ""
) -> tuple[set[str], set[str]]:
    """``(categories, encrypted categories)`` of the classified fields in ``payload``.

    A category counts as encrypted only when *every* field of that category holds a
    flowtrace token: one plaintext email makes ``pii`` plaintext.

    Example::

        from flowtrace import Schema
        from flowtrace import map as ftmap

        schema = Schema({"email": "pii", "card.number": "pci"})
        order = {"id": 7, "email": "ann@example.com", "card": {"number": "4242424242424242"}}
        assert ftmap.classify_payload(order, schema) == ({"pii", "pci"}, set())
    """
    seen: set[str] = set()
    plain: set[str] = set()
    for key, value in payload.items():
        path = f"{_prefix}{key}"
        if isinstance(value, Mapping):
            inner, inner_enc = classify_payload(value, schema, f"{path}.")
            seen |= inner
            plain |= inner - inner_enc
            continue
        found = schema.lookup(path)
        if found is None or not found.categories:
            continue
        names = {str(c) for c in found.categories}
        seen |= names
        if not _is_token(value):
            plain |= names
    return seen, seen - plain


def record_data(
    payload: Mapping[str, Any] | None = None,
    *,
    schema: Schema | None = None,
    categories: Iterable[str] = (),
    encrypted: Iterable[str] = (),
    span: Any = None,
) -> tuple[list[str], list[str]]:
    """Record on ``span`` (default: the current span) the data categories handed over.

    ``record_data(order, schema=schema)`` classifies ``order``;
    ``record_data(categories=["pii"])`` states them. Returns the sorted
    ``(categories, encrypted)`` written. Values themselves are never recorded.

    Example::

        import flowtrace as ft
        from flowtrace import Schema
        from flowtrace import map as ftmap
        from flowtrace.testing import Capture

        schema = Schema({"email": "pii"})
        with Capture() as capture:
            with ft.otel.get_tracer().start_as_current_span("save order"):
                ftmap.record_data({"email": "ann@example.com"}, schema=schema)
        assert capture.spans()[0].attributes[ftmap.DATA_CATEGORIES] == ("pii",)
    """
    cats, enc = set(categories), set(encrypted)
    if payload is not None:
        if schema is None:
            from ..errors import SchemaError

            raise SchemaError("record_data(payload) needs schema=; or pass categories=[...]")
        found, found_enc = classify_payload(payload, schema)
        cats |= found
        enc |= found_enc
    enc &= cats
    target = span if span is not None else trace.get_current_span()
    if cats and target.is_recording():
        target.set_attribute(n.DATA_CATEGORIES, sorted(cats))
        if enc:
            target.set_attribute(n.DATA_ENCRYPTED, sorted(enc))
    return sorted(cats), sorted(enc)
