"""Queries over a log: "who accessed patient 42 in the last six months, and why?"."""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import AuditCorruptedError
from ._event import AuditEvent
from ._lines import DEFAULT_MAX_LINE, iter_lines
from ._record import split_line

__all__ = ["parse_since", "query"]

_DURATION = re.compile(r"(\d+)\s*(mo|y|w|d|h|m|s)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: _dt.datetime | None = None) -> _dt.datetime:
    """A UTC instant from ``6mo``, ``30d``, ``12h``, ``1y``, ``2w`` (ago) or an ISO date.

    Example::

        import datetime as dt

        from flowtrace.audit import parse_since

        now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
        assert parse_since("30d", now) == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
        assert parse_since("2026-06-01").year == 2026
    """
    now = now or _dt.datetime.now(_dt.UTC)
    match = _DURATION.fullmatch(text.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        if unit in ("mo", "y"):
            months = amount * (12 if unit == "y" else 1)
            year, month = divmod(now.year * 12 + now.month - 1 - months, 12)
            day = min(now.day, 28)
            return now.replace(year=year, month=month + 1, day=day)
        return now - _dt.timedelta(seconds=amount * _UNITS[unit])
    try:
        moment = _dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(
            f"cannot read {text!r} as a time: use 6mo, 30d, 12h, 1y, 2w or an ISO date"
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=_dt.UTC)


def _stamp(moment: _dt.datetime) -> str:
    return moment.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def query(
    source: Any,
    *,
    subject: str | None = None,
    tenant: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    resource: str | None = None,
    since: _dt.datetime | str | None = None,
    until: _dt.datetime | str | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE,
) -> Iterator[AuditEvent]:
    """Events matching every given filter, oldest first, each with its ``sequence``.

    Queries read records as they are; run :func:`~flowtrace.audit.verify` first when the
    answer must be evidence.

    Example::

        import flowtrace as ft
        from flowtrace import audit

        log = audit.AuditLog("audit.jsonl")
        with ft.context(tenant="st-mary", user="dr-house", subject="42"):
            log.append("patient.read", resource="patients/42")
        log.close()
        for event in audit.query("audit.jsonl", subject="42", since="6mo"):
            print(event.sequence, event.actor, event.action)   # 0 dr-house patient.read
    """
    from ._verify import _source_of

    lo = _stamp(parse_since(since) if isinstance(since, str) else since) if since else None
    hi = _stamp(parse_since(until) if isinstance(until, str) else until) if until else None
    wanted = {
        k: v
        for k, v in {
            "subject": subject, "tenant": tenant, "actor": actor, "action": action,
            "resource": resource,
        }.items()
        if v is not None
    }

    _, chunks, _ = _source_of(source)
    try:
        yield from _matching(chunks, wanted, lo, hi, max_line_bytes)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _matching(
    chunks: Iterable[bytes], wanted: dict[str, str], lo: str | None, hi: str | None,
    max_line: int,
) -> Iterator[AuditEvent]:
    import json

    for position, (_, line) in enumerate(iter_lines(chunks, max_line)):
        parts = split_line(line)
        if parts is None:
            raise AuditCorruptedError(f"record line {position} is malformed; verify the log")
        record = json.loads(parts[1])
        event = record["event"]
        if any(event.get(k) != v for k, v in wanted.items()):
            continue
        if (lo and event["ts"] < lo) or (hi and event["ts"] >= hi):
            continue
        yield AuditEvent.from_dict(event, sequence=record["seq"])
