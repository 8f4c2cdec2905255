"""flowtrace.logging: the flow context (tenant, user pseudonym, purpose, trace) on log lines."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import random
import threading
from typing import Any

import structlog
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider

import flowtrace as ft
from flowtrace.lineage import Pseudonymizer
from flowtrace.logging import CONTEXT_KEYS, ContextFilter, ContextProcessor, context_fields

KEY = b"k" * 32


def _structlog(out: io.StringIO, processor: ContextProcessor) -> Any:
    return structlog.wrap_logger(
        structlog.PrintLogger(out),
        processors=[processor, structlog.processors.JSONRenderer()],
    )


def test_structlog_event_carries_context_and_pseudonym_not_user() -> None:
    """Tenant, purpose and the keyed pseudonym are added; the raw user never appears."""
    out = io.StringIO()
    log = _structlog(out, ContextProcessor(pseudonym_key=KEY))
    with ft.context(tenant="acme", user="ana@example.com", purpose="billing"):
        log.info("invoice.sent")
    line = json.loads(out.getvalue())
    assert line["tenant"] == "acme"
    assert line["purpose"] == "billing"
    assert line["user_pseudonym"] == Pseudonymizer(KEY).pseudonym("ana@example.com", "acme")
    assert "ana@example.com" not in out.getvalue()


def test_event_cannot_claim_another_tenant() -> None:
    """A tenant= passed to the log call is replaced by the flow context's (authoritative)."""
    out = io.StringIO()
    log = _structlog(out, ContextProcessor())
    with ft.context(tenant="acme"):
        log.info("x", tenant="globex", span_id="forged")
    line = json.loads(out.getvalue())
    assert line["tenant"] == "acme"
    assert "span_id" not in line  # no span: the forged value is dropped, not kept


def test_outside_any_context_adds_nothing() -> None:
    """No scope, no span: the event is unchanged."""
    assert context_fields() == {}


def test_trace_and_span_ids_of_the_current_span() -> None:
    """trace_id/span_id are the current span's, in W3C lowercase hex."""
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("s") as span, ft.context(tenant="acme"):
        fields = context_fields()
    ctx = span.get_span_context()
    assert fields["trace_id"] == format(ctx.trace_id, "032x")
    assert fields["span_id"] == format(ctx.span_id, "016x")


def test_user_without_tenant_is_left_out() -> None:
    """Pseudonyms are per tenant; without one the user is omitted, never logged raw."""
    with ft.context(user="ana@example.com"):
        assert "user_pseudonym" not in context_fields()


@given(user=st.text(min_size=1, max_size=40).filter(lambda u: u.isprintable() and u.strip()))
def test_raw_user_never_in_fields(user: str) -> None:
    """For any user id, the fields hold a sp1: pseudonym and not the id itself."""
    with ft.context(tenant="acme", user=user):
        fields = context_fields()
    assert fields["user_pseudonym"].startswith("sp1:")
    assert user not in {v for k, v in fields.items() if k != "tenant"} or user == "acme"


def test_stdlib_filter_stamps_records_per_thread() -> None:
    """8 threads x 200 lines, random tenants: every line names its own thread's tenant."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter(pseudonym_key=KEY))
    handler.setFormatter(logging.Formatter("%(tenant)s|%(purpose)s|%(user_pseudonym)s|%(message)s"))
    log = logging.getLogger("test_logging_context.threads")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    pseudonymizer = Pseudonymizer(KEY)

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(200):
            tenant = f"t{rng.randrange(50)}"
            with ft.context(tenant=tenant, user=f"u-{tenant}", purpose="p"):
                log.info("expect=%s", tenant)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1600
    for line in lines:
        tenant, purpose, pseudonym, message = line.split("|")
        assert message == f"expect={tenant}"
        assert pseudonym == pseudonymizer.pseudonym(f"u-{tenant}", tenant)
        assert purpose == "p"


def test_stdlib_filter_unset_fields_are_dashes() -> None:
    """Outside a scope every key is '-', so %(tenant)s format strings never fail."""
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    assert ContextFilter().filter(record)
    assert [getattr(record, key) for key in CONTEXT_KEYS] == ["-"] * 5


def test_structlog_per_task_under_asyncio() -> None:
    """200 concurrent tasks with random tenants: each event names its own task's tenant."""
    out = io.StringIO()
    log = _structlog(out, ContextProcessor())

    async def task(tenant: str) -> None:
        with ft.context(tenant=tenant):
            await asyncio.sleep(random.random() / 100)
            log.info("done", expect=tenant)

    async def main() -> None:
        await asyncio.gather(*(task(f"t{random.randrange(30)}") for _ in range(200)))

    asyncio.run(main())
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 200
    assert all(line["tenant"] == line["expect"] for line in lines)
