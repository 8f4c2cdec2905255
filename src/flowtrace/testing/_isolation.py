"""Tenant-isolation assertions: canaries under one tenant must never show up under another.

Public through :mod:`flowtrace.testing`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..flowcontext import FlowEvent, context, current
from ..otel import ATTRIBUTES
from ._capture import Capture

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["IsolationReport", "TenantRun", "assert_tenant_isolation"]

_TENANT_ATTRIBUTE = ATTRIBUTES["tenant"]
_MAX_PROBLEMS = 20


@dataclass(frozen=True)
class TenantRun:
    """One run of the code path: the tenant it runs under and its unique canary value.

    Put the canary into the data the code path handles (a name, an e-mail, a row), so
    that wherever that data travels, the canary travels with it.

    Example::

        import logging

        from flowtrace.testing import TenantRun, assert_tenant_isolation

        def code_path(run: TenantRun) -> None:
            # put the canary into the data, so wherever the data goes the canary goes
            logging.getLogger("orders").info("created order for Customer %s", run.canary)

        assert_tenant_isolation(code_path, tenants=("acme", "globex"))
    """

    tenant: str
    canary: str


@dataclass
class RunCapture:
    """Everything captured while one :class:`TenantRun` executed."""

    run: TenantRun
    spans: list[ReadableSpan] = field(default_factory=list)
    events: list[FlowEvent] = field(default_factory=list)
    logs: list[tuple[logging.LogRecord, str | None]] = field(default_factory=list)
    items: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class IsolationReport:
    """What :func:`assert_tenant_isolation` captured and checked (returned when it passed).

    Example::

        import logging

        from flowtrace.testing import assert_tenant_isolation

        report = assert_tenant_isolation(
            lambda run: logging.getLogger("orders").info("order for %s", run.canary)
        )
        print(report.summary())          # what was captured per tenant
    """

    runs: tuple[RunCapture, ...]

    def summary(self) -> str:
        """One line per run: tenant and how many spans/events/logs/items were checked."""
        return "\n".join(
            f"{r.run.tenant}: {len(r.spans)} spans, {len(r.events)} events, "
            f"{len(r.logs)} log records, {len(r.items)} items"
            for r in self.runs
        )


class _LogCatcher(logging.Handler):
    """Keeps each record with the tenant of the flow context it was emitted in."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[tuple[logging.LogRecord, str | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record, current().tenant))


def _texts(value: Any, depth: int = 0) -> Iterator[str]:
    """Every string reachable in ``value`` (mappings, sequences, bytes, objects' repr)."""
    if depth > 20:
        yield repr(value)
    elif isinstance(value, str):
        yield value
    elif isinstance(value, bytes | bytearray | memoryview):
        yield bytes(value).decode("utf-8", "replace")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _texts(key, depth + 1)
            yield from _texts(item, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _texts(item, depth + 1)
    elif value is not None:
        yield repr(value)


def _span_texts(span: ReadableSpan) -> Iterator[str]:
    yield span.name
    yield from _texts(dict(span.attributes or {}))
    if span.status.description:
        yield span.status.description
    for event in span.events:
        yield event.name
        yield from _texts(dict(event.attributes or {}))
    for link in span.links:
        yield from _texts(dict(link.attributes or {}))


def _log_texts(record: logging.LogRecord) -> Iterator[str]:
    with contextlib.suppress(Exception):  # a broken format still leaves msg and args
        yield record.getMessage()
    yield from _texts({k: v for k, v in vars(record).items() if k != "exc_info"})


def _run_once(
    code_path: Callable[[TenantRun], Any],
    run: TenantRun,
    enter_context: bool,
) -> None:
    def call() -> None:
        result = code_path(run)
        if inspect.isawaitable(result):
            asyncio.run(_await(result))

    if enter_context:
        with context(tenant=run.tenant):
            call()
    else:
        call()


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _problems(
    captures: Sequence[RunCapture], tenant_of: Callable[[Any], str | None] | None,
    require_canary: bool,
) -> list[str]:
    problems: list[str] = []
    for cap in captures:
        tenant = cap.run.tenant
        sources: list[tuple[str, list[str]]] = []
        for span in cap.spans:
            where = f"span {span.name!r}"
            carried = (span.attributes or {}).get(_TENANT_ATTRIBUTE)
            if carried != tenant:
                problems.append(f"{where} captured under {tenant!r} carries tenant {carried!r}")
            sources.append((where, list(_span_texts(span))))
        for event in cap.events:
            where = f"flow event {event.kind!r}"
            if event.context.tenant != tenant:
                problems.append(
                    f"{where} captured under {tenant!r} carries tenant {event.context.tenant!r}"
                )
            sources.append((where, list(_texts(dict(event.attributes)))))
        for record, carried in cap.logs:
            where = f"log record {record.name}:{record.lineno} {record.msg!r}"
            if carried != tenant:
                problems.append(
                    f"{where} captured under {tenant!r} was emitted in tenant {carried!r}"
                )
            sources.append((where, list(_log_texts(record))))
        for item in cap.items:
            where = f"item {item!r:.80}"
            if tenant_of is not None and tenant_of(item) != tenant:
                problems.append(
                    f"{where} captured under {tenant!r} belongs to tenant {tenant_of(item)!r}"
                )
            sources.append((where, list(_texts(item))))
        for other in captures:
            if other is cap:
                continue
            for where, texts in sources:
                if any(other.run.canary in text for text in texts):
                    problems.append(
                        f"LEAK: {where} captured under {tenant!r} contains the canary of "
                        f"tenant {other.run.tenant!r} ({other.run.canary})"
                    )
        if require_canary and not any(
            cap.run.canary in text for _, texts in sources for text in texts
        ):
            problems.append(
                f"the canary of {tenant!r} ({cap.run.canary}) appears nowhere in what was "
                "captured under it, so this check proves nothing: put run.canary into the "
                "data the code path handles (or pass require_canary=False)"
            )
    return problems


def assert_tenant_isolation(
    code_path: Callable[[TenantRun], Any],
    *,
    tenants: Sequence[str] = ("tenant-a", "tenant-b"),
    capture: Capture | None = None,
    collect: Callable[[], Iterable[Any]] | None = None,
    tenant_of: Callable[[Any], str | None] | None = None,
    loggers: Sequence[str] = ("",),
    enter_context: bool = True,
    require_canary: bool = True,
) -> IsolationReport:
    """Run ``code_path`` once per tenant and assert nothing of one shows up under another.

    Each run gets a :class:`TenantRun` with the tenant and a unique canary; with
    ``enter_context`` (default) it runs inside ``flowtrace.context(tenant=...)``. A code
    path returning an awaitable is run with :func:`asyncio.run`. While a run executes,
    its spans and flow events (through ``capture``, or a private
    :class:`~flowtrace.testing.Capture`) and the log records reaching ``loggers`` (root by
    default, all levels, any thread) are captured; afterwards ``collect()`` may return
    the items the run produced (published messages, written rows...).

    Raises AssertionError listing every problem when:

    * anything captured under one tenant contains another tenant's canary (a leak);
    * a span, flow event or log record does not carry the run's tenant (spans through
      ``flowtrace.tenant``, log records through the flow context they were emitted in),
      or ``tenant_of(item)`` differs from it;
    * ``require_canary`` and a run's canary appears nowhere (the check would be vacuous).

    Returns an :class:`IsolationReport` when everything holds.

    Example::

        import logging

        from flowtrace.testing import assert_tenant_isolation

        def test_orders_are_isolated(flowtrace_capture):
            assert_tenant_isolation(
                lambda run: logging.getLogger("orders").info("order for %s", run.canary),
                capture=flowtrace_capture,
            )
    """
    if len(set(tenants)) < 2:
        raise ValueError("assert_tenant_isolation needs at least two distinct tenants")
    own = capture is None
    cap_obj = Capture().install() if capture is None else capture
    catcher = _LogCatcher()
    targets = [logging.getLogger(name or None) for name in loggers]
    levels = [logger.level for logger in targets]
    for logger in targets:
        logger.addHandler(catcher)
        logger.setLevel(logging.DEBUG)
    captures: list[RunCapture] = []
    try:
        for tenant in tenants:
            run = TenantRun(tenant, f"ftcanary{secrets.token_hex(8)}")
            spans_before = len(cap_obj.spans())
            events_before = len(cap_obj.events())
            logs_before = len(catcher.records)
            _run_once(code_path, run, enter_context)
            captures.append(
                RunCapture(
                    run,
                    spans=cap_obj.spans()[spans_before:],
                    events=cap_obj.events()[events_before:],
                    logs=catcher.records[logs_before:],
                    items=list(collect()) if collect is not None else [],
                )
            )
    finally:
        for logger, level in zip(targets, levels, strict=True):
            logger.removeHandler(catcher)
            logger.setLevel(level)
        if own:
            cap_obj.uninstall()
            cap_obj.provider.shutdown()
    problems = _problems(captures, tenant_of, require_canary)
    if problems:
        shown = problems[:_MAX_PROBLEMS]
        more = len(problems) - len(shown)
        raise AssertionError(
            "tenant isolation violated:\n  - "
            + "\n  - ".join(shown)
            + (f"\n  ... and {more} more" if more else "")
        )
    return IsolationReport(tuple(captures))
