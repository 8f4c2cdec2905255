"""AuditEvent: who did what to whose data, when, why, with what outcome, and where."""

from __future__ import annotations

import datetime as _dt
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from opentelemetry.trace import get_current_span as _get_current_span

from .._settings import settings
from ..errors import AuditWriteError
from ..flowcontext import current
from ._record import CanonicalError, canonical, fast_canonical

__all__ = ["OUTCOMES", "AuditEvent", "Outcome", "encode_action", "utc_timestamp"]

Outcome = Literal["success", "denied", "error"]
"""The outcome of an audited action: ``"success"``, ``"denied"`` or ``"error"``.

Example::

    from flowtrace.audit import AuditEvent, Outcome

    outcome: Outcome = "denied"
    event = AuditEvent("patient.read", outcome=outcome, reason="no treatment relationship")
"""
OUTCOMES: Final = ("success", "denied", "error")

_SCALARS: Final = (
    "actor",
    "role",
    "auth_method",
    "resource",
    "tenant",
    "subject",
    "purpose",
    "reason",
    "service",
    "region",
    "trace_id",
)


_stamp_cache: list[Any] = [-1, ""]


def utc_timestamp(when: float | None = None) -> str:
    """RFC 3339 UTC timestamp with microseconds, e.g. ``2026-11-27T10:23:01.123456Z``."""
    micros = time.time_ns() // 1000 if when is None else round(when * 1_000_000)
    seconds, micro = divmod(micros, 1_000_000)
    cache = _stamp_cache
    if cache[0] != seconds:
        moment = _dt.datetime.fromtimestamp(seconds, _dt.UTC)
        cache[1] = moment.strftime("%Y-%m-%dT%H:%M:%S")
        cache[0] = seconds
    return f"{cache[1]}.{micro:06d}Z"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audit record's content. Build it with :meth:`from_context` to take defaults
    (tenant, actor, subject, purpose, region, service, trace id) from the current flow.

    ``sequence`` is assigned by the log; it is ``None`` until the event is written.

    Example::

        import flowtrace as ft
        from flowtrace.audit import AuditEvent, AuditLog

        log = AuditLog("audit.jsonl")
        with ft.context(tenant="acme", user="u-1"):
            event = AuditEvent.from_context("invoice.export", resource="invoices/2026-11")
            assert (event.tenant, event.actor) == ("acme", "u-1")
            log.append(event)
        log.close()
    """

    action: str
    """What was done, e.g. ``patient.read`` (required)."""
    outcome: Outcome = "success"
    """``success``, ``denied`` or ``error``."""
    ts: str = field(default_factory=utc_timestamp)
    """When, as an RFC 3339 UTC timestamp."""
    actor: str | None = None
    """Who: the authenticated principal (defaults to the flow context's user)."""
    role: str | None = None
    auth_method: str | None = None
    resource: str | None = None
    """What was touched, e.g. ``patients/42``."""
    data_categories: tuple[str, ...] = ()
    """Classes of personal data touched, e.g. ``("health",)``."""
    tenant: str | None = None
    subject: str | None = None
    """Whose data: the data subject."""
    purpose: str | None = None
    reason: str | None = None
    """Why, beyond the purpose: a reason code or justification."""
    service: str | None = None
    region: str | None = None
    trace_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    """Extra facts; scrubbed before they are written."""
    sequence: int | None = None

    @classmethod
    def from_context(cls, action: str, **fields: Any) -> AuditEvent:
        """An event whose unset fields come from the current flow context and settings."""
        ctx = current()
        defaults = {
            "tenant": ctx.tenant,
            "actor": ctx.user,
            "subject": ctx.subject,
            "purpose": ctx.purpose,
            "region": ctx.region or settings().region,
            "service": settings().service,
            "trace_id": _current_trace_id(),
        }
        for name, value in defaults.items():
            if fields.get(name) is None and value is not None:
                fields[name] = value
        try:
            return cls(action, **fields)
        except TypeError as exc:
            raise AuditWriteError(f"invalid audit event fields: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """The event as stored: unset fields left out, ``sequence`` excluded."""
        out: dict[str, Any] = {"action": self.action, "outcome": self.outcome, "ts": self.ts}
        for name in _SCALARS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.data_categories:
            out["data_categories"] = list(self.data_categories)
        if self.details:
            out["details"] = dict(self.details)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], sequence: int | None = None) -> AuditEvent:
        """Rebuild an event read back from a log."""
        fields = dict(data)
        fields["data_categories"] = tuple(fields.get("data_categories", ()))
        return cls(sequence=sequence, **fields)

    def encode(self) -> bytes:
        """Validate, scrub the details and return the canonical bytes of :meth:`to_dict`."""
        _validate(self)
        data = self.to_dict()
        try:
            if self.details:
                data["details"] = scrub_details(data["details"])
                return canonical(data)
            # Every field is a validated str (or list of str) under an ASCII key: the
            # standard encoder's output is already RFC 8785.
            return fast_canonical(data)
        except CanonicalError as exc:
            raise AuditWriteError(f"audit event {self.action!r} cannot be stored: {exc}") from exc


def _validate(event: AuditEvent) -> None:
    if type(event.action) is not str or not event.action:
        raise AuditWriteError("an audit event needs a non-empty str action, e.g. 'patient.read'")
    if event.outcome not in OUTCOMES:
        raise AuditWriteError(
            f"outcome must be one of {', '.join(OUTCOMES)}; got {event.outcome!r}"
        )
    for name in _SCALARS:
        value = getattr(event, name)
        if value is not None and type(value) is not str:
            raise AuditWriteError(f"audit field {name!r} must be a str, got {value!r}")
    categories = event.data_categories
    if categories and (
        isinstance(categories, str) or not all(type(c) is str for c in categories)
    ):
        raise AuditWriteError("data_categories must be a sequence of str")
    if not isinstance(event.details, Mapping):
        raise AuditWriteError("details must be a mapping")


_FIELD_NAMES: Final = frozenset((*_SCALARS, "outcome", "ts", "data_categories", "details"))


_quote = json.encoder.encode_basestring  # the C escaper json.dumps(ensure_ascii=False) uses


def encode_action(action: str, fields: dict[str, Any]) -> bytes:
    """``AuditEvent.from_context(action, **fields).encode()`` without building the object.

    The hot path of :meth:`AuditLog.append`: every value is a validated str, so members
    are written in their (fixed, ASCII) canonical order with the standard JSON string
    escaper, which is what RFC 8785 prescribes for strings. A test holds the two equal.
    """
    if type(action) is not str or not action:
        raise AuditWriteError("an audit event needs a non-empty str action, e.g. 'patient.read'")
    ctx = current()
    config = settings()
    data: dict[str, Any] = {
        "action": action,
        "outcome": "success",
        "service": config.service,
    }
    if ctx.tenant is not None:
        data["tenant"] = ctx.tenant
    if ctx.user is not None:
        data["actor"] = ctx.user
    if ctx.subject is not None:
        data["subject"] = ctx.subject
    if ctx.purpose is not None:
        data["purpose"] = ctx.purpose
    region = ctx.region or config.region
    if region is not None:
        data["region"] = region
    trace_id = _current_trace_id()
    if trace_id is not None:
        data["trace_id"] = trace_id
    for name, value in fields.items():
        if value is None:
            continue
        if name in _SCALARS or name == "ts":
            if type(value) is not str:
                raise AuditWriteError(f"audit field {name!r} must be a str, got {value!r}")
        elif name == "outcome":
            if value not in OUTCOMES:
                raise AuditWriteError(
                    f"outcome must be one of {', '.join(OUTCOMES)}; got {value!r}"
                )
        elif name == "data_categories":
            if isinstance(value, str) or not all(type(c) is str for c in value):
                raise AuditWriteError("data_categories must be a sequence of str")
            if not value:
                continue
            value = list(value)
        elif name == "details":
            if not isinstance(value, Mapping):
                raise AuditWriteError("details must be a mapping")
            if not value:
                continue
            value = scrub_details(value)
        else:
            raise AuditWriteError(
                f"unknown audit field {name!r}; known fields are "
                f"{', '.join(sorted(_FIELD_NAMES))}"
            )
        data[name] = value
    if "ts" not in data:
        data["ts"] = utc_timestamp()
    try:
        # Member names are fixed ASCII identifiers: sorted() is the RFC 8785 order.
        return (
            "{"
            + ",".join(
                [
                    f'"{name}":{_quote(value)}'
                    if type(value) is str
                    else f'"{name}":{canonical(value).decode("utf-8")}'
                    for name, value in sorted(data.items())
                ]
            )
            + "}"
        ).encode("utf-8")
    except (CanonicalError, UnicodeEncodeError) as exc:
        raise AuditWriteError(f"audit event {action!r} cannot be stored: {exc}") from exc


def scrub_details(details: Mapping[str, Any]) -> Any:
    """The single place audit details pass through the scrubber before they are written.

    Uses :func:`flowtrace.scrub` (the scrubber set with ``configure(scrubber=...)`` or the
    built-in default), so an e-mail address or card number in ``details`` is stored as
    ``[REDACTED:email]`` / ``[REDACTED:card]``, never in clear.
    """
    from ..scrubbing import scrub

    return scrub(dict(details))


def _current_trace_id() -> str | None:
    span_context = _get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return f"{span_context.trace_id:032x}"

