"""Executors carry the submitter's flow context to the task, and leak nothing between tasks."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import flowtrace as ft
from flowtrace.errors import ContextPropagationError


def _enter_and_forget(tenant: str) -> None:
    """A buggy task: enters a tenant scope and never exits it (or a lib sets the var)."""
    ft.context(tenant=tenant).__enter__()


def _tenant() -> str | None:
    return ft.current().tenant


# --- the leak is real --------------------------------------------------------------------


def test_bare_thread_pool_leaks_a_stale_tenant_to_the_next_task() -> None:
    """With a bare ThreadPoolExecutor a tenant left on the worker reaches a later task."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(_enter_and_forget, "acme").result()
        seen = pool.submit(_tenant).result()
    assert seen == "acme"  # the leak: an unrelated task runs as tenant acme


def test_bare_thread_pool_loses_the_submitters_tenant() -> None:
    """A bare pool runs tasks in the thread's own context: the submitter's tenant is lost."""
    with ThreadPoolExecutor(max_workers=1) as pool, ft.context(tenant="acme"):
        assert pool.submit(_tenant).result() is None


def test_context_pool_does_not_leak_a_stale_tenant() -> None:
    """Our pool runs each task in its own copy: what one task leaves behind dies with it."""
    with ft.ContextThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(_enter_and_forget, "acme").result()
        assert pool.submit(_tenant).result() is None
        with ft.context(tenant="globex"):
            assert pool.submit(_tenant).result() == "globex"


def test_context_pool_carries_the_submitters_context() -> None:
    """A task sees exactly the flow context in force where it was submitted."""
    with ft.ContextThreadPoolExecutor(max_workers=2) as pool:
        with ft.context(tenant="acme", user="u-1", purpose="billing"):
            expected = ft.current()
            assert pool.submit(ft.current).result() == expected
        assert pool.submit(ft.current).result() == ft.FlowContext()


def test_context_pool_hides_the_worker_threads_own_context() -> None:
    """A tenant set on the pool thread by an initializer never reaches a task."""
    with ft.ContextThreadPoolExecutor(
        max_workers=1, initializer=_enter_and_forget, initargs=("stale",)
    ) as pool:
        assert pool.submit(_tenant).result() is None
        with ft.context(tenant="acme"):
            assert pool.submit(_tenant).result() == "acme"


def test_context_pool_map_carries_the_context() -> None:
    """map() goes through submit: every item runs in the submitter's context."""
    with ft.ContextThreadPoolExecutor(max_workers=4) as pool, ft.context(tenant="acme"):
        tenants = list(pool.map(lambda _: _tenant(), range(20)))
    assert tenants == ["acme"] * 20


def test_context_pool_carries_the_otel_span() -> None:
    """The OTel context follows too: a task's current span is the submitter's span."""
    tracer = TracerProvider().get_tracer("test")
    with ft.ContextThreadPoolExecutor(max_workers=1) as pool:
        with tracer.start_as_current_span("parent") as span:
            seen = pool.submit(trace.get_current_span).result()
        assert seen is span
        assert pool.submit(trace.get_current_span).result() is not span


def test_run_in_executor_with_context_pool() -> None:
    """loop.run_in_executor(our_pool, fn) runs fn in the awaiting task's context."""

    async def main(pool: ThreadPoolExecutor) -> tuple[str | None, str | None]:
        loop = asyncio.get_running_loop()
        with ft.context(tenant="acme"):
            ours = await loop.run_in_executor(pool, _tenant)
        with ThreadPoolExecutor(max_workers=1) as bare, ft.context(tenant="acme"):
            theirs = await loop.run_in_executor(bare, _tenant)
        return ours, theirs

    with ft.ContextThreadPoolExecutor(max_workers=1) as pool:
        ours, theirs = asyncio.run(main(pool))
    assert ours == "acme"
    assert theirs is None  # the bare pool loses it


def test_run_in_executor_tasks_see_their_own_tenants() -> None:
    """Concurrent tasks sharing one pool each get their own tenant back."""

    async def one(pool: ThreadPoolExecutor, tenant: str) -> str | None:
        with ft.context(tenant=tenant):
            return await asyncio.get_running_loop().run_in_executor(pool, _tenant)

    async def main(pool: ThreadPoolExecutor) -> list[str | None]:
        return await asyncio.gather(*(one(pool, f"t{i}") for i in range(200)))

    with ft.ContextThreadPoolExecutor(max_workers=8) as pool:
        assert asyncio.run(main(pool)) == [f"t{i}" for i in range(200)]


# --- bind ----------------------------------------------------------------------------------


def test_bind_runs_a_callback_in_the_context_it_was_bound_in() -> None:
    """A bound callback sees the bind-time tenant on any thread."""
    with ft.context(tenant="acme"):
        callback = ft.bind(_tenant)
    out: list[str | None] = []
    thread = threading.Thread(target=lambda: out.append(callback()))
    thread.start()
    thread.join()
    assert out == ["acme"]
    assert callback() == "acme"  # also when called outside any scope
    assert ft.current().tenant is None


def test_bind_changes_do_not_outlive_a_call() -> None:
    """What one call of a bound callback sets is invisible to the caller and the next call."""
    with ft.context(tenant="acme"):
        forget = ft.bind(_enter_and_forget_other)
        read = ft.bind(_tenant)
    forget()
    assert read() == "acme"
    assert ft.current().tenant is None


def test_bind_allows_concurrent_calls() -> None:
    """Two threads may run the same bound callback at once (each call gets a copy)."""
    barrier = threading.Barrier(2)

    def wait_then_read() -> str | None:
        barrier.wait(timeout=10)
        return _tenant()

    with ft.context(tenant="acme"):
        callback = ft.bind(wait_then_read)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = [f.result() for f in [pool.submit(callback), pool.submit(callback)]]
    assert results == ["acme", "acme"]


def test_bind_keeps_the_name_and_signature() -> None:
    """bind preserves the wrapped function's metadata."""
    assert ft.bind(_enter_and_forget).__name__ == "_enter_and_forget"
    assert ft.bind(_enter_and_forget).__wrapped__ is _enter_and_forget  # type: ignore[attr-defined]


# --- processes -----------------------------------------------------------------------------


def _child_view() -> dict[str, Any]:
    span = trace.get_current_span().get_span_context()
    return {
        "context": ft.current().to_dict(),
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "remote": span.is_remote,
    }


@pytest.fixture(scope="module")
def process_pool() -> Any:
    spawn = multiprocessing.get_context("spawn")
    with ft.ContextProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        yield pool


def test_process_pool_carries_the_flow_context(process_pool: Any) -> None:
    """A task in a real worker process runs in the submitter's flow context."""
    fields = {
        "tenant": "acme",
        "user": "ü,;=%",
        "purpose": "billing",
        "lineage_parents": ["ds:orders", "ds:a|b"],
        "baggage": {"plan": "gold tier"},
    }
    with ft.context(**fields):
        view = process_pool.submit(_child_view).result(timeout=120)
    assert view["context"] == fields


def test_process_pool_carries_the_trace_parent(process_pool: Any) -> None:
    """The worker's current span is the submitter's span, as a remote parent."""
    tracer = TracerProvider().get_tracer("test")
    with ft.context(tenant="acme"), tracer.start_as_current_span("submit") as span:
        view = process_pool.submit(_child_view).result(timeout=120)
    assert (view["trace_id"], view["span_id"], view["remote"]) == (
        span.get_span_context().trace_id,
        span.get_span_context().span_id,
        True,
    )


def test_process_pool_does_not_leak_between_tasks(process_pool: Any) -> None:
    """A worker task that leaves a tenant behind does not affect the next task."""
    with ft.context(tenant="acme"):
        process_pool.submit(_enter_and_forget_other).result(timeout=120)
    view = process_pool.submit(_child_view).result(timeout=120)
    assert view["context"] == {}


def _enter_and_forget_other() -> None:
    with ft.cross_tenant(reason="test"):
        ft.context(tenant="globex").__enter__()


def test_process_pool_map_carries_the_context(process_pool: Any) -> None:
    """map() in a process pool goes through submit too."""
    with ft.context(tenant="acme"):
        tenants = list(process_pool.map(_tenant_of, range(3)))
    assert tenants == ["acme"] * 3


def _tenant_of(_: int) -> str | None:
    return ft.current().tenant


def test_process_pool_refuses_a_context_too_large_to_carry(process_pool: Any) -> None:
    """A context that breaks the W3C limits fails at submit, not silently in the worker."""
    big = {f"k{i}": "é" * 256 for i in range(16)}
    with ft.context(tenant="acme", baggage=big), pytest.raises(ContextPropagationError):
        process_pool.submit(_child_view)


def test_bind_runs_a_coroutine_function_in_the_bound_context() -> None:
    """A bound coroutine function runs its body in the bind-time context, not the awaiter's."""

    async def read() -> str | None:
        await asyncio.sleep(0)
        ft.context(tenant=ft.current().tenant, user="inner").__enter__()  # left open
        return _tenant()

    with ft.context(tenant="acme"):
        bound = ft.bind(read)

    async def main() -> tuple[str | None, str | None, str | None]:
        with ft.context(tenant="globex"):
            seen = await bound()
            return seen, ft.current().tenant, ft.current().user

    assert asyncio.run(main()) == ("acme", "globex", None)


def _reason_in_worker() -> str | None:
    return ft.cross_tenant_reason()


def test_cross_tenant_privilege_stays_in_the_process(process_pool: Any) -> None:
    """A thread task keeps the submitter's cross_tenant scope; a worker process does not."""
    with ft.cross_tenant(reason="report"):
        with ft.ContextThreadPoolExecutor(max_workers=1) as pool:
            assert pool.submit(_reason_in_worker).result() == "report"
        assert process_pool.submit(_reason_in_worker).result(timeout=120) is None
