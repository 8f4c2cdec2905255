"""The flowtrace members of a W3C ``baggage`` header: encode and decode a FlowContext.

This module is the executable form of docs/spec/baggage.md; keep the two in step.
It knows W3C baggage syntax and the ``flowtrace.`` keys and nothing of OpenTelemetry.

Encoding is deterministic: fields in :data:`~flowtrace.context.FIELDS` order, then
``flowtrace.lineage``, then ``flowtrace.baggage.<key>`` members sorted by key. Values are
UTF-8 and percent-encoded so that only RFC 3986 unreserved characters (``A-Za-z0-9-._~``)
stay literal. Decoding is strict about flowtrace's own members (anything ambiguous raises
:class:`~flowtrace.errors.ContextPropagationError`, never a partial context) and liberal
about everyone else's: a malformed foreign member is dropped and counted. Encoding never
drops flowtrace's members; foreign members that would break a W3C limit are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple
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
    "Parsed",
    "decode",
    "encode",
    "encode_merged",
    "encode_value",
    "field_keys",
    "foreign_members",
    "parse",
    "split_foreign",
]

MAX_HEADER_BYTES: Final = 8192
"""W3C limit on a whole baggage-string (all header fields combined), in bytes."""
MAX_MEMBERS: Final = 180
"""Most list-members flowtrace writes (receivers must take at least 64; OTel takes 180)."""
MAX_MEMBER_BYTES: Final = 4096
"""Largest member of flowtrace's own that it writes (OTel receivers drop longer ones)."""

KEY_PREFIX: Final = "flowtrace."
LINEAGE_KEY: Final = "flowtrace.lineage"
LINEAGE_SEPARATOR: Final = "|"
BAGGAGE_KEY_PREFIX: Final = "flowtrace.baggage."

_FIELD_KEYS: Final = tuple(KEY_PREFIX + name for name in FIELDS)
# Members that identify a person: only sent into the trust domain (docs/spec/baggage.md).
_IDENTITY_KEYS: Final = frozenset({KEY_PREFIX + "user", KEY_PREFIX + "subject"})
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


def encode(ctx: FlowContext, foreign: Iterable[str] = (), *, identity: bool = True) -> str:
    """The baggage-string for ``ctx``, followed by the ``foreign`` members kept as-is.

    ``identity=False`` leaves out ``flowtrace.user`` and ``flowtrace.subject``. Raises
    :class:`ContextPropagationError` when flowtrace's own members would break a limit
    (flowtrace never truncates its members); foreign members past a limit raise too here,
    :func:`encode_merged` drops them instead.
    """
    parts = _own_parts(ctx, identity)
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


def encode_merged(
    ctx: FlowContext, foreign: Sequence[str], *, identity: bool = True
) -> tuple[str, int]:
    """``(baggage-string, dropped)``: ``ctx``'s members, then the foreign ones that fit.

    Never drops or shortens flowtrace's members (raises as :func:`encode` when they alone
    break a limit). Foreign members are kept whole, in order, while the header stays within
    :data:`MAX_MEMBERS` and :data:`MAX_HEADER_BYTES`; the others are dropped and counted.
    """
    parts = _own_parts(ctx, identity)
    own = ",".join(parts)
    if not foreign and len(own) <= MAX_MEMBER_BYTES:
        return own, 0  # the common case: nothing to merge, every member within limits
    if (
        len(own) > MAX_HEADER_BYTES
        or len(parts) > MAX_MEMBERS
        or (len(own) > MAX_MEMBER_BYTES and max(map(len, parts)) > MAX_MEMBER_BYTES)
    ):
        _check_encoded(parts, len(parts))  # flowtrace's own context does not fit
    size = len(own)
    count = len(parts)
    dropped = 0
    for member in foreign:
        grown = size + len(member) + (1 if count else 0)
        if count < MAX_MEMBERS and grown <= MAX_HEADER_BYTES:
            parts.append(member)
            size = grown
            count += 1
        else:
            dropped += 1
    return ",".join(parts), dropped


def _own_parts(ctx: FlowContext, identity: bool) -> list[str]:
    """flowtrace's members for ``ctx`` (without user and subject unless ``identity``)."""
    plain = _PLAIN.fullmatch
    try:
        parts = [
            f"{key}={value}" if plain(value) else f"{key}={quote(value, safe='')}"
            for key, value in zip(_FIELD_KEYS, scalar_values(ctx), strict=True)
            if value is not None and (identity or key not in _IDENTITY_KEYS)
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
    return parts


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
    """The valid members of a baggage-string that are not flowtrace's, stripped."""
    return split_foreign(header)[0]


def split_foreign(header: str) -> tuple[list[str], int]:
    """``(valid foreign members, count of malformed ones)`` of a baggage-string.

    flowtrace's own members are left out (they are stale where this is used: inject
    replaces them). Empty list-members are neither kept nor counted.
    """
    out: list[str] = []
    dropped = 0
    for member in header.split(","):
        member = member.strip(_OWS)
        if not member or member.startswith(KEY_PREFIX):
            continue
        if _valid_foreign(member):
            out.append(member)
        else:
            dropped += 1
    return out, dropped


def _valid_foreign(member: str) -> bool:
    """A stripped foreign list-member is ``token OWS = OWS value [; properties]``."""
    key, eq, value = member.partition("=")
    if not eq or not _TOKEN.fullmatch(key.rstrip(_OWS)):
        return False
    value, _, props = value.partition(";")
    return _FOREIGN_VALUE.fullmatch(value.strip(_OWS)) is not None and (
        not props or _PROPS.fullmatch(props) is not None
    )


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


class Parsed(NamedTuple):
    """What a receiver takes from a baggage-string."""

    context: FlowContext
    """flowtrace's members, as a fresh context."""
    foreign: tuple[str, ...]
    """The valid foreign list-members, OWS-stripped, in order (to forward unaltered)."""
    dropped: int
    """How many malformed foreign list-members were dropped."""


def decode(header: str) -> FlowContext:
    """Parse a baggage-string into a fresh :class:`FlowContext` (foreign members ignored).

    Strict about flowtrace's members only: a duplicated, unknown or undecodable
    ``flowtrace.`` member, or an invalid value, raises :class:`ContextPropagationError`.
    Malformed foreign members are dropped (see :func:`parse` for the count).
    """
    return parse(header).context


def parse(header: str) -> Parsed:
    """Parse a baggage-string: flowtrace's context, the valid foreign members, drops.

    Raises :class:`ContextPropagationError` only because of flowtrace's own members
    (duplicated, unknown, undecodable, invalid, or too big to inject again); foreign
    content never fails a parse, whatever its size or count.
    """
    # Scalars go straight to their slot; slots 7/8 collect lineage and baggage.
    fields: list[object] = [None] * 9
    foreign: list[str] = []
    dropped = 0
    index_of = _KEY_TO_INDEX.get
    plain = _PLAIN_FIELD.fullmatch
    for member in header.split(","):
        key, _, value = member.partition("=")
        index = index_of(key)
        # Fast path: one of our scalar keys, first time seen, a plain short value that is
        # valid as it stands (unreserved ASCII, 1..MAX_VALUE_LENGTH characters).
        if index is not None and fields[index] is None and plain(value):
            fields[index] = value
        else:
            kept = _decode_member(member, fields)
            if kept is not None:
                if kept:
                    foreign.append(kept)
                else:
                    dropped += 1
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
    ctx = assemble(fields)
    if len(header) > _REENCODE_CHECK_BYTES:
        _check_fits(ctx)
    # tuple.__new__: a NamedTuple's own __new__ costs a Python call on this hot path.
    return tuple.__new__(Parsed, (ctx, tuple(foreign) if foreign else (), dropped))


# A member re-encodes to at most 3x its received size (a raw octet becomes %XX): below
# this size, flowtrace's members of any header fit again when injected.
_REENCODE_CHECK_BYTES: Final = MAX_MEMBER_BYTES // 3


def _check_fits(ctx: FlowContext) -> None:
    """Refuse a received context that ``inject`` could not send on (fail closed here,
    where the sender is to blame, rather than on the way out)."""
    try:
        encode(ctx)
    except ContextPropagationError as exc:
        raise ContextPropagationError(
            f"the carrier's flowtrace members are too big to propagate further: {exc}"
        ) from None


def _invalid(exc: InvalidContextValueError) -> ContextPropagationError:
    return ContextPropagationError(f"the carrier's flow context is invalid: {exc}")


def _decode_member(member: str, fields: list[object]) -> str | None:
    """The general path for one list-member: whitespace, properties, escapes, foreign.

    Returns ``None`` for flowtrace's members and empty ones, the stripped member for a
    valid foreign one, ``""`` for a malformed foreign one (dropped, counted).
    """
    stripped = member.strip(_OWS)
    if not stripped.startswith(KEY_PREFIX):
        if not stripped:
            return None  # an empty list-member (e.g. a trailing comma) carries nothing
        return stripped if _valid_foreign(stripped) else ""
    key, eq, value = stripped.partition("=")
    if not eq:
        raise _malformed(f"list-member {stripped[:40]!r} has no '='")
    key = key.rstrip(_OWS)
    if len(stripped) > MAX_MEMBER_BYTES:
        raise _too_big(
            f"baggage member {key[:40]!r}",
            len(stripped),
            MAX_MEMBER_BYTES,
            "Nothing was extracted: flowtrace never drops its own members.",
        )
    if ";" in value:
        value, _, props = value.partition(";")
        if not _PROPS.fullmatch(props):
            raise _malformed(f"member {key[:40]!r} has invalid properties")
    _decode_ours(key, value.strip(_OWS), fields)
    return None


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
