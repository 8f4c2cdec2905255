"""The flowtrace members of a W3C ``baggage`` header: encode and decode a FlowContext.

This module is the executable form of docs/spec/baggage.md; keep the two in step.
It knows W3C baggage syntax and the ``flowtrace.`` keys and nothing of OpenTelemetry.

Encoding is deterministic: fields in :data:`~flowtrace.context.FIELDS` order, then
``flowtrace.lineage``, then ``flowtrace.baggage.<key>`` members sorted by key. Values are
UTF-8 and percent-encoded so that only RFC 3986 unreserved characters (``A-Za-z0-9-._~``)
stay literal. Decoding is strict and all-or-nothing: anything malformed or over a limit
raises :class:`~flowtrace.errors.ContextPropagationError`, never a partial context.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote, unquote

from ..errors import ContextPropagationError, InvalidContextValueError
from ..flowcontext import (
    FIELDS,
    MAX_VALUE_LENGTH,
    FlowContext,
    assemble,
    check_field,
    scalar_values,
)

__all__ = [
    "BAGGAGE_KEY_PREFIX",
    "KEY_PREFIX",
    "LINEAGE_KEY",
    "LINEAGE_SEPARATOR",
    "MAX_HEADER_BYTES",
    "MAX_MEMBERS",
    "MAX_MEMBER_BYTES",
    "decode",
    "encode",
    "encode_value",
    "field_keys",
    "foreign_members",
]

MAX_HEADER_BYTES: Final = 8192
"""W3C limit on a whole baggage-string (all header fields combined), in bytes."""
MAX_MEMBERS: Final = 180
"""W3C limit on the number of list-members."""
MAX_MEMBER_BYTES: Final = 4096
"""W3C limit on one list-member (key, ``=``, value and properties), in bytes."""

KEY_PREFIX: Final = "flowtrace."
LINEAGE_KEY: Final = "flowtrace.lineage"
LINEAGE_SEPARATOR: Final = "|"
BAGGAGE_KEY_PREFIX: Final = "flowtrace.baggage."

_FIELD_KEYS: Final = tuple(KEY_PREFIX + name for name in FIELDS)
_KEY_TO_INDEX: Final = {KEY_PREFIX + name: i for i, name in enumerate(FIELDS)}

# Values that need no escaping: RFC 3986 unreserved characters only.
_PLAIN = re.compile(r"[A-Za-z0-9\-._~]+")
_PLAIN_FIELD = re.compile(rf"[A-Za-z0-9\-._~]{{1,{MAX_VALUE_LENGTH}}}")
# A W3C baggage value: baggage-octets, with '%' only as the start of a %XX escape.
# baggage-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
_VALUE = re.compile(r"(?:[!#$&-+\--:<-\[\]-~]|%[0-9A-Fa-f]{2})+")
# Foreign values are not decoded, only checked for legal octets (raw '%' tolerated).
_FOREIGN_VALUE = re.compile(r"[!#-+\--:<-\[\]-~]*")
# Properties after ';' are metadata we ignore; they must still be legal octets.
_PROPS = re.compile(r"[ \t!#-+\--\[\]-~]*")
# RFC 7230 token, the W3C key syntax.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_OWS: Final = " \t"


def field_keys() -> tuple[str, ...]:
    """The baggage keys of the scalar fields, in encoding order."""
    return _FIELD_KEYS


def encode_value(value: str) -> str:
    """Percent-encode ``value`` (UTF-8); unreserved ASCII characters stay literal."""
    if _PLAIN.fullmatch(value):
        return value
    return quote(value, safe="")


def _too_big(what: str, size: int, limit: int, hint: str) -> ContextPropagationError:
    return ContextPropagationError(
        f"{what} is {size} bytes; the W3C baggage limit is {limit}. {hint}"
    )


def encode(ctx: FlowContext, foreign: Iterable[str] = ()) -> str:
    """The baggage-string for ``ctx``, followed by the ``foreign`` members kept as-is.

    Raises :class:`ContextPropagationError` when the result would break a W3C limit:
    flowtrace never truncates a header or drops a member to make it fit.
    """
    plain = _PLAIN.fullmatch
    try:
        parts = [
            f"{key}={value}" if plain(value) else f"{key}={quote(value, safe='')}"
            for key, value in zip(_FIELD_KEYS, scalar_values(ctx), strict=True)
            if value is not None
        ]
        lineage = ctx.lineage_parents
        if lineage:
            parts.append(f"{LINEAGE_KEY}={LINEAGE_SEPARATOR.join(map(encode_value, lineage))}")
        baggage = ctx.baggage
        if baggage:
            parts.extend(f"{BAGGAGE_KEY_PREFIX}{k}={encode_value(v)}" for k, v in baggage.items())
    except UnicodeEncodeError:
        raise ContextPropagationError(
            "cannot inject: a flow context value contains a lone surrogate, which is not "
            "encodable as UTF-8; pass valid Unicode text (e.g. decode bytes with "
            "errors='replace')"
        ) from None
    ours = len(parts)
    parts.extend(foreign)
    header = ",".join(parts)
    if len(header) > MAX_HEADER_BYTES or len(parts) > MAX_MEMBERS:
        _check_encoded(parts, ours)
    elif len(header) > MAX_MEMBER_BYTES:
        for part in parts:
            if len(part) > MAX_MEMBER_BYTES:
                _check_encoded(parts, ours)
    return header


def _check_encoded(parts: list[str], ours: int) -> None:
    hint = "Shorten the flow context (long unicode values grow up to 9x when percent-encoded)" + (
        " or drop foreign baggage members from the carrier." if len(parts) > ours else "."
    )
    for part in parts:
        if len(part) > MAX_MEMBER_BYTES:
            key = part.partition("=")[0]
            raise _too_big(
                f"cannot inject: baggage member {key!r}", len(part), MAX_MEMBER_BYTES, hint
            )
    if len(parts) > MAX_MEMBERS:
        raise ContextPropagationError(
            f"cannot inject: the baggage would have {len(parts)} members "
            f"({ours} of them flowtrace's); the W3C limit is {MAX_MEMBERS}. {hint}"
        )
    size = sum(map(len, parts)) + len(parts) - 1
    raise _too_big("cannot inject: the baggage header", size, MAX_HEADER_BYTES, hint)


def foreign_members(header: str) -> list[str]:
    """The members of an existing baggage-string that are not flowtrace's, stripped."""
    out = []
    for member in header.split(","):
        member = member.strip(_OWS)
        if member and not member.startswith(KEY_PREFIX):
            out.append(member)
    return out


def _malformed(problem: str) -> ContextPropagationError:
    return ContextPropagationError(
        f"malformed baggage header: {problem}. The carrier is not trusted and nothing "
        "was extracted from it; fix the producer (see docs/spec/baggage.md)"
    )


def _decode_value(key: str, value: str) -> str:
    if not _VALUE.fullmatch(value):
        if not value:
            raise _malformed(f"member {key!r} has an empty value")
        raise _malformed(
            f"member {key!r} has a value with characters outside W3C baggage-octets "
            "or a '%' not followed by two hex digits"
        )
    if "%" not in value:
        return value
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise _malformed(f"member {key!r} percent-decodes to invalid UTF-8") from None


def decode(header: str) -> FlowContext:
    """Parse a baggage-string into a fresh :class:`FlowContext` (foreign members ignored).

    All-or-nothing: a malformed member (ours or foreign), a duplicated or unknown
    ``flowtrace.`` key, an invalid value or a broken W3C limit raises
    :class:`ContextPropagationError`.
    """
    size = len(header)
    if size > MAX_HEADER_BYTES:
        raise _too_big(
            "the baggage header",
            size,
            MAX_HEADER_BYTES,
            "Nothing was extracted: flowtrace never truncates a context.",
        )
    if not header.isascii():
        raise _malformed("it contains non-ASCII characters (values must be percent-encoded)")
    members = header.split(",")
    if len(members) > MAX_MEMBERS:
        count = sum(1 for member in members if member.strip(_OWS))
        if count > MAX_MEMBERS:
            raise ContextPropagationError(
                f"the baggage header has {count} members; the W3C limit is {MAX_MEMBERS}. "
                "Nothing was extracted: flowtrace never drops a member."
            )
    # Scalars go straight to their slot; slots 7/8 collect lineage and baggage.
    fields: list[object] = [None] * 9
    index_of = _KEY_TO_INDEX.get
    plain = _PLAIN_FIELD.fullmatch
    for member in members:
        key, _, value = member.partition("=")
        index = index_of(key)
        # Fast path: one of our scalar keys, first time seen, a plain short value that is
        # valid as it stands (unreserved ASCII, 1..MAX_VALUE_LENGTH characters).
        if index is not None and fields[index] is None and plain(value):
            fields[index] = value
        else:
            _decode_member(member, fields)
    if fields[7] is not None or fields[8] is not None:
        try:
            lineage = fields[7]
            fields[7] = () if lineage is None else check_field("lineage_parents", lineage)
            entries = fields[8]
            fields[8] = () if entries is None else check_field("baggage", entries)
        except InvalidContextValueError as exc:
            raise _invalid(exc) from exc
    else:
        fields[7] = fields[8] = ()
    return assemble(fields)


def _invalid(exc: InvalidContextValueError) -> ContextPropagationError:
    return ContextPropagationError(f"the carrier's flow context is invalid: {exc}")


def _decode_member(member: str, fields: list[object]) -> None:
    """The general path for one list-member: whitespace, properties, escapes, foreign."""
    stripped = member.strip(_OWS)
    key, eq, value = stripped.partition("=")
    if not eq:
        if stripped:
            raise _malformed(f"list-member {stripped[:40]!r} has no '='")
        return  # an empty list-member (e.g. a trailing comma) carries nothing
    key = key.rstrip(_OWS)
    if len(stripped) > MAX_MEMBER_BYTES:
        raise _too_big(
            f"baggage member {key[:40]!r}",
            len(stripped),
            MAX_MEMBER_BYTES,
            "Nothing was extracted: flowtrace never drops a member.",
        )
    if ";" in value:
        value, _, props = value.partition(";")
        if not _PROPS.fullmatch(props):
            raise _malformed(f"member {key[:40]!r} has invalid properties")
    value = value.strip(_OWS)
    if key.startswith(KEY_PREFIX):
        _decode_ours(key, value, fields)
    elif not _TOKEN.fullmatch(key) or not _FOREIGN_VALUE.fullmatch(value):
        raise _malformed(f"list-member {stripped[:40]!r} is not key=value")


def _decode_ours(key: str, value: str, fields: list[object]) -> None:
    index = _KEY_TO_INDEX.get(key)
    if index is not None:
        if fields[index] is not None:
            raise _malformed(f"key {key!r} appears more than once")
        try:
            fields[index] = check_field(FIELDS[index], _decode_value(key, value))
        except InvalidContextValueError as exc:
            raise _invalid(exc) from exc
    elif key == LINEAGE_KEY:
        if fields[7] is not None:
            raise _malformed(f"key {key!r} appears more than once")
        fields[7] = [_decode_value(key, part) for part in value.split(LINEAGE_SEPARATOR)]
    elif key.startswith(BAGGAGE_KEY_PREFIX):
        entries = fields[8]
        if entries is None:
            entries = fields[8] = {}
        assert isinstance(entries, dict)
        name = key[len(BAGGAGE_KEY_PREFIX) :]
        if name in entries:
            raise _malformed(f"key {key!r} appears more than once")
        entries[name] = _decode_value(key, value)
    else:
        raise _malformed(
            f"unknown flowtrace key {key[:80]!r} (truncated, misspelt, or from a newer "
            "flowtrace: upgrade receivers first)"
        )
