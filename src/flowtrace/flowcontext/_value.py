"""The flow context value: :class:`FlowContext` and the validation of its fields.

Pure data, no scopes and no context variables (those live in :mod:`._state` and
:mod:`._scope`). The propagation codec validates extracted values with the same checks
(:func:`check_field`) and builds contexts with :func:`assemble`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from operator import itemgetter
from types import MappingProxyType
from typing import Any, Final

from ..errors import InvalidContextValueError

__all__ = [
    "EMPTY",
    "FIELDS",
    "MAX_BAGGAGE_ENTRIES",
    "MAX_LINEAGE_PARENTS",
    "MAX_VALUE_LENGTH",
    "FlowContext",
    "assemble",
    "check_field",
    "scalar_values",
]

MAX_VALUE_LENGTH: Final = 256
"""Longest allowed value of any string field, baggage value or lineage parent id.

Example::

    import flowtrace as ft
    from flowtrace.flowcontext import MAX_VALUE_LENGTH

    try:
        with ft.context(tenant="a" * (MAX_VALUE_LENGTH + 1)):   # refused on entry
            raise AssertionError("not reached")
    except ft.InvalidContextValueError as exc:
        print(exc)                                   # "... the limit is 256"
"""
MAX_BAGGAGE_ENTRIES: Final = 16
"""Most entries a flow context's ``baggage`` mapping may hold.

Example::

    import flowtrace as ft
    from flowtrace.flowcontext import MAX_BAGGAGE_ENTRIES

    too_many = {f"k{i}": "v" for i in range(MAX_BAGGAGE_ENTRIES + 1)}
    try:
        with ft.context(tenant="acme", baggage=too_many):       # refused on entry
            raise AssertionError("not reached")
    except ft.InvalidContextValueError as exc:
        print(exc)                                   # "... the limit is 16"
"""
MAX_LINEAGE_PARENTS: Final = 64
"""Most lineage parent ids a flow context may carry.

Example::

    import flowtrace as ft
    from flowtrace.flowcontext import MAX_LINEAGE_PARENTS

    parents = [f"p-{i}" for i in range(MAX_LINEAGE_PARENTS + 1)]
    try:
        with ft.context(tenant="acme", lineage_parents=parents):  # refused on entry
            raise AssertionError("not reached")
    except ft.InvalidContextValueError as exc:
        print(exc)                                   # "... the limit is 64"
"""

# Scalar string fields, in storage order. Index 7 and 8 hold lineage parents and baggage.
FIELDS: Final = (
    "tenant",
    "user",
    "subject",
    "purpose",
    "legal_basis",
    "region",
    "correlation_id",
)
"""The scalar string fields of a flow context (beside ``lineage_parents`` and ``baggage``).

Example::

    import flowtrace as ft
    from flowtrace.flowcontext import FIELDS

    with ft.context(tenant="acme", purpose="billing"):
        values = {name: getattr(ft.current(), name) for name in FIELDS}
    assert values["tenant"] == "acme" and values["user"] is None
"""
_INDEX: Final = {name: i for i, name in enumerate(FIELDS)}
_LINEAGE: Final = 7
_BAGGAGE: Final = 8
_ALL_FIELDS: Final = frozenset((*FIELDS, "lineage_parents", "baggage"))

# C0/C1 controls plus the Unicode line/paragraph separators: anything a log line could split on.
# Lone surrogates too: they cannot be encoded as UTF-8, so OTLP export and baggage would fail.
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_BAGGAGE_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def _check_str(field: str, value: object) -> str:
    if type(value) is not str:
        raise InvalidContextValueError(field, f"must be a str, got {type(value).__name__}")
    if not value:
        raise InvalidContextValueError(field, "must not be empty (omit it or pass None)")
    if len(value) > MAX_VALUE_LENGTH:
        raise InvalidContextValueError(
            field, f"is {len(value)} characters long; the limit is {MAX_VALUE_LENGTH}"
        )
    # isprintable() is a fast C check; only non-printables need the precise rule.
    if not value.isprintable() and _FORBIDDEN.search(value):
        raise InvalidContextValueError(
            field,
            "contains a control, line-separator or lone-surrogate character; strip it before use",
        )
    return value


def _check_lineage(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidContextValueError("lineage_parents", "must be an iterable of str ids")
    parents = tuple(_check_str("lineage_parents", v) for v in value)
    if len(parents) > MAX_LINEAGE_PARENTS:
        raise InvalidContextValueError(
            "lineage_parents", f"has {len(parents)} ids; the limit is {MAX_LINEAGE_PARENTS}"
        )
    return parents


def _check_baggage(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        raise InvalidContextValueError("baggage", "must be a mapping of str to str")
    if len(value) > MAX_BAGGAGE_ENTRIES:
        raise InvalidContextValueError(
            "baggage", f"has {len(value)} entries; the limit is {MAX_BAGGAGE_ENTRIES}"
        )
    pairs = []
    for key, item in value.items():
        if type(key) is not str or not _BAGGAGE_KEY.fullmatch(key):
            raise InvalidContextValueError(
                "baggage", f"key {key!r} must be 1-64 characters of [A-Za-z0-9_.-]"
            )
        pairs.append((key, _check_str(f"baggage[{key}]", item)))
    return tuple(sorted(pairs))


def _check(name: str, value: object) -> object:
    """Validate one field; ``None`` clears it."""
    return check_field(name, value)


def check_field(name: str, value: object) -> object:
    """Validate one field's value (``None`` clears it) and return its stored form.

    Raises :class:`~flowtrace.errors.InvalidContextValueError` naming the field. Internal
    interface for the propagation codec.
    """
    if name in _INDEX:
        return None if value is None else _check_str(name, value)
    if name == "lineage_parents":
        return () if value is None else _check_lineage(value)
    if name == "baggage":
        return () if value is None else _check_baggage(value)
    raise InvalidContextValueError(
        name, f"is not a flow context field; known fields are {', '.join(sorted(_ALL_FIELDS))}"
    )


_tuple_new = tuple.__new__


class FlowContext(tuple):  # type: ignore[type-arg]
    """Immutable flow context. Create with keywords; derive with :meth:`replace`.

    Backed by a tuple for speed (entering a scope must cost less than OTel baggage);
    treat it as an opaque value object: compare, hash and read its attributes.

    Example::

        import flowtrace as ft

        ctx = ft.FlowContext(tenant="acme", user="u-1", purpose="billing")
        assert ctx.tenant == "acme"
        assert ctx.replace(user="u-2").user == "u-2"      # a new context; ctx is unchanged
        assert ctx.to_dict() == {"tenant": "acme", "user": "u-1", "purpose": "billing"}
    """

    __slots__ = ()

    tenant: str | None = property(itemgetter(0))  # type: ignore[assignment]
    """Tenant the data belongs to."""
    user: str | None = property(itemgetter(1))  # type: ignore[assignment]
    """Authenticated end user (actor) the work is done for."""
    subject: str | None = property(itemgetter(2))  # type: ignore[assignment]
    """The data subject, when it is not the user (e.g. the patient a clinician reads)."""
    purpose: str | None = property(itemgetter(3))  # type: ignore[assignment]
    """Why the data is processed (e.g. ``billing``)."""
    legal_basis: str | None = property(itemgetter(4))  # type: ignore[assignment]
    """GDPR Art. 6 basis (e.g. ``contract``, ``consent``)."""
    region: str | None = property(itemgetter(5))  # type: ignore[assignment]
    """Where the data may live / be processed (e.g. ``eu``)."""
    correlation_id: str | None = property(itemgetter(6))  # type: ignore[assignment]
    """Business correlation id, stable across hops."""
    lineage_parents: tuple[str, ...] = property(itemgetter(_LINEAGE))  # type: ignore[assignment]
    """Lineage ids the current work descends from."""

    def __new__(
        cls,
        *,
        tenant: str | None = None,
        user: str | None = None,
        subject: str | None = None,
        purpose: str | None = None,
        legal_basis: str | None = None,
        region: str | None = None,
        correlation_id: str | None = None,
        lineage_parents: Iterable[str] = (),
        baggage: Mapping[str, str] | None = None,
    ) -> FlowContext:
        values: list[object] = [
            None if v is None else _check_str(name, v)
            for name, v in zip(
                FIELDS,
                (tenant, user, subject, purpose, legal_basis, region, correlation_id),
                strict=True,
            )
        ]
        values.append(_check_lineage(lineage_parents))
        values.append(_check_baggage(baggage or {}))
        return tuple.__new__(cls, values)

    @property
    def baggage(self) -> Mapping[str, str]:
        """Free-form, bounded key/value pairs carried with the flow (read-only)."""
        return MappingProxyType(dict(self[_BAGGAGE]))

    def replace(self, **changes: Any) -> FlowContext:
        """Return a copy with ``changes`` applied (validated; ``None`` clears a field)."""
        values = list(self)
        for name, value in changes.items():
            checked = _check(name, value)
            values[_INDEX.get(name, _LINEAGE if name == "lineage_parents" else _BAGGAGE)] = (
                checked
            )
        return _tuple_new(FlowContext, values)

    def to_dict(self) -> dict[str, Any]:
        """The set fields as a plain dict (``baggage`` as a dict, lineage as a list)."""
        out: dict[str, Any] = {n: v for n, v in zip(FIELDS, self, strict=False) if v is not None}
        if self[_LINEAGE]:
            out["lineage_parents"] = list(self[_LINEAGE])
        if self[_BAGGAGE]:
            out["baggage"] = dict(self[_BAGGAGE])
        return out

    @property
    def is_empty(self) -> bool:
        """True when no field is set."""
        return self == EMPTY

    def __eq__(self, other: object) -> bool:
        return type(other) is FlowContext and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"FlowContext({fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle through the validating constructor (process pools).
        return (_rebuild, (self.to_dict(),))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"FlowContext is immutable; use .replace({name}=...)")


def _rebuild(fields: dict[str, Any]) -> FlowContext:
    return FlowContext(**fields)


EMPTY: Final = _tuple_new(FlowContext, (None,) * 7 + ((), ()))


def assemble(values: list[object]) -> FlowContext:
    """A context from already-validated values: the :data:`FIELDS` values in order, then
    the lineage parents (tuple of str), then the baggage (sorted tuple of (key, value)).

    Internal interface for the propagation codec, which validates while it decodes.
    """
    return _tuple_new(FlowContext, values)


def scalar_values(ctx: FlowContext) -> tuple[str | None, ...]:
    """The :data:`FIELDS` values of ``ctx``, in order (internal interface for codecs)."""
    return ctx[:7]
