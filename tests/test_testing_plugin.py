"""flowtrace.testing: the pytest plugin, the capture fixture and the tenant-isolation helper."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from opentelemetry import trace

import flowtrace as ft
from flowtrace.otel import get_tracer
from flowtrace.propagation import extract, inject
from flowtrace.testing import Capture, TenantRun, assert_tenant_isolation

log = logging.getLogger("tests.service")


# --- plugin and capture --------------------------------------------------------------------


def test_plugin_is_registered_through_entry_point(pytestconfig: pytest.Config) -> None:
    """The pytest11 entry point loads flowtrace.testing as a plugin."""
    assert pytestconfig.pluginmanager.hasplugin("flowtrace")


def test_capture_finds_spans_and_flow_attributes(flowtrace_capture: Capture) -> None:
    """spans(), span(name) and flow_attributes() read what a handler recorded."""

    @ft.handler("checkout", tenant="acme", purpose="billing")
    def checkout() -> None:
        return None

    checkout()
    checkout()
    assert len(flowtrace_capture.spans("checkout")) == 2
    with pytest.raises(AssertionError, match="exactly one span named 'checkout', found 2"):
        flowtrace_capture.span("checkout")
    with pytest.raises(AssertionError, match="found 0"):
        flowtrace_capture.span("nope")
    span = flowtrace_capture.spans("checkout")[0]
    assert flowtrace_capture.flow_attributes(span) == {"tenant": "acme", "purpose": "billing"}
    flowtrace_capture.clear()
    assert flowtrace_capture.spans() == []


def test_capture_records_flow_events(flowtrace_capture: Capture) -> None:
    """events(kind) returns the flow events reported during the test."""
    with ft.context(tenant="acme"), ft.cross_tenant(reason="migration"):
        pass
    (event,) = flowtrace_capture.events(ft.EventKind.CROSS_TENANT)
    assert event.attributes == {"reason": "migration"}
    assert event.context.tenant == "acme"
    assert flowtrace_capture.events(ft.EventKind.DECRYPT) == []


def test_capture_ids_are_deterministic(flowtrace_capture: Capture) -> None:
    """Span and trace ids count up from 1, so expected values can be written down."""
    ft.handler("a")(lambda: None)()
    ft.handler("b")(lambda: None)()
    a, b = flowtrace_capture.spans()
    assert (a.context.trace_id, a.context.span_id) == (1, 1)
    assert (b.context.trace_id, b.context.span_id) == (2, 2)


def test_capture_as_context_manager_restores_settings() -> None:
    """Capture() outside pytest fixtures installs and then restores the previous provider."""
    assert ft.settings().tracer_provider is None
    with Capture() as capture:
        assert ft.settings().tracer_provider is capture.provider
        ft.handler("x")(lambda: None)()
    assert ft.settings().tracer_provider is None
    assert [s.name for s in capture.spans()] == ["x"]


def test_reset_restores_settings_and_observers() -> None:
    """reset() undoes configure() and removes observers added since."""
    seen: list[ft.FlowEvent] = []
    ft.add_observer(seen.append)
    ft.configure(service="billing")
    ft.testing.reset()
    assert ft.settings() == ft.Settings()
    with ft.context(tenant="acme"), ft.cross_tenant(reason="r"):
        pass
    assert seen == []


# --- tenant isolation: the documented example ------------------------------------------------

# A tiny service: a handler that stores a customer, logs, and publishes an event.
OUTBOX: list[dict[str, Any]] = []


@ft.handler("customers.create", tenant=lambda tenant, name: tenant)
def create_customer(tenant: str, name: str) -> None:
    log.info("creating customer %s", name)
    headers = inject({})
    OUTBOX.append({"headers": headers, "body": {"name": name}})


def test_example_tenant_isolation(flowtrace_capture: Capture) -> None:
    """Example: spans, logs and published messages of each tenant stay with that tenant."""
    OUTBOX.clear()

    def code_path(run: TenantRun) -> None:
        create_customer(run.tenant, name=f"Customer {run.canary}")

    def published() -> list[dict[str, Any]]:
        items = list(OUTBOX)
        OUTBOX.clear()
        return items

    report = assert_tenant_isolation(
        code_path,
        capture=flowtrace_capture,
        collect=published,
        tenant_of=lambda message: extract(message["headers"]).tenant,
    )
    assert [len(r.spans) for r in report.runs] == [1, 1]
    assert [len(r.logs) for r in report.runs] == [1, 1]
    assert [len(r.items) for r in report.runs] == [1, 1]
    assert "tenant-a: 1 spans" in report.summary()


# --- tenant isolation: it catches real leaks ----------------------------------------------


def test_isolation_catches_a_cache_keyed_without_tenant(flowtrace_capture: Capture) -> None:
    """A cache keyed by user id only serves tenant A's data to tenant B: detected."""
    cache: dict[str, str] = {}

    @ft.handler("profile.get")
    def get_profile(user_id: str, stored_name: str) -> str:
        if user_id not in cache:  # BUG: the key lacks the tenant
            cache[user_id] = stored_name
        name = cache[user_id]
        trace.get_current_span().set_attribute("profile.name", name)
        log.info("serving profile of %s", name)
        return name

    def code_path(run: TenantRun) -> None:
        get_profile("user-1", f"name-{run.canary}")

    with pytest.raises(AssertionError) as failure:
        assert_tenant_isolation(code_path, capture=flowtrace_capture)
    message = str(failure.value)
    assert "LEAK: log record" in message
    assert "LEAK: span 'profile.get' captured under 'tenant-b'" in message
    assert "captured under 'tenant-b' contains the canary of tenant 'tenant-a'" in message


def test_isolation_catches_work_on_a_bare_pool_thread(flowtrace_capture: Capture) -> None:
    """Work handed to a bare ThreadPoolExecutor loses its tenant: its records carry none."""
    pool = ThreadPoolExecutor(max_workers=1)

    def audit(name: str) -> None:
        with get_tracer().start_as_current_span("audit.write"):
            log.warning("audit entry for %s", name)

    def code_path(run: TenantRun) -> None:
        pool.submit(audit, f"name-{run.canary}").result()

    try:
        with pytest.raises(AssertionError) as failure:
            assert_tenant_isolation(code_path, capture=flowtrace_capture)
    finally:
        pool.shutdown()
    message = str(failure.value)
    assert "span 'audit.write' captured under 'tenant-a' carries tenant None" in message
    assert "captured under 'tenant-a' was emitted in tenant None" in message


def test_isolation_passes_with_flowtrace_context_pool(flowtrace_capture: Capture) -> None:
    """The same work on flowtrace's ContextThreadPoolExecutor keeps its tenant: passes."""
    pool = ft.ContextThreadPoolExecutor(max_workers=1)

    def audit(name: str) -> None:
        with get_tracer().start_as_current_span("audit.write"):
            log.warning("audit entry for %s", name)

    def code_path(run: TenantRun) -> None:
        pool.submit(audit, f"name-{run.canary}").result()

    try:
        report = assert_tenant_isolation(code_path, capture=flowtrace_capture)
    finally:
        pool.shutdown()
    assert [(len(r.spans), len(r.logs)) for r in report.runs] == [(1, 1), (1, 1)]


def test_isolation_catches_a_message_published_for_the_wrong_tenant() -> None:
    """Handed-over items whose tenant differs from the run's tenant are reported."""
    produced: list[dict[str, str]] = []

    def code_path(run: TenantRun) -> None:
        produced.append({"tenant": "tenant-a", "body": run.canary})  # hard-coded tenant

    def drain() -> list[dict[str, str]]:
        items = list(produced)
        produced.clear()
        return items

    with pytest.raises(AssertionError, match="belongs to tenant 'tenant-a'"):
        assert_tenant_isolation(code_path, collect=drain, tenant_of=lambda m: m["tenant"])


def test_isolation_refuses_a_vacuous_check() -> None:
    """A code path that never emits its canary is reported: the check would prove nothing."""
    with pytest.raises(AssertionError, match="appears nowhere"):
        assert_tenant_isolation(lambda run: None)
    report = assert_tenant_isolation(lambda run: None, require_canary=False)
    assert len(report.runs) == 2


def test_isolation_runs_async_code_paths() -> None:
    """A code path returning a coroutine is awaited under its tenant."""
    seen: list[str | None] = []

    async def code_path(run: TenantRun) -> None:
        seen.append(ft.current().tenant)
        log.info("async %s", run.canary)

    assert_tenant_isolation(code_path, tenants=("x", "y", "z"))
    assert seen == ["x", "y", "z"]


def test_isolation_needs_two_tenants() -> None:
    """Fewer than two distinct tenants is a usage error."""
    with pytest.raises(ValueError, match="two distinct"):
        assert_tenant_isolation(lambda run: None, tenants=("a", "a"))


def test_capture_leaves_a_configured_provider_intact(tmp_path: Any) -> None:
    """Capturing inside a configured process swaps the provider back unharmed."""
    configured = ft.configure(spans_file=tmp_path / "spans.jsonl").tracer_provider
    with Capture() as capture:
        ft.handler("captured")(lambda: None)()
    assert ft.settings().tracer_provider is configured
    ft.handler("exported")(lambda: None)()
    configured.force_flush()
    assert [s.name for s in capture.spans()] == ["captured"]
    assert "exported" in (tmp_path / "spans.jsonl").read_text()
