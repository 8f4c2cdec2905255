"""Under heavy concurrency no task, await or thread hop ever sees another tenant's context."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field

import flowtrace as ft

TENANTS = [f"tenant-{i}" for i in range(64)]


@dataclass
class Tally:
    completed: int = 0
    crossings: int = 0
    thread_hops: int = 0
    threads: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _in_pool_thread(tally: Tally, tenant: str, user: str) -> bool:
    """Runs on a pool thread: check, nest a scope, yield the GIL, check, leave garbage."""
    with tally.lock:
        tally.threads.add(threading.get_ident())
    ok = (ft.current().tenant, ft.current().user) == (tenant, user)
    try:
        with ft.context(tenant=tenant, purpose="thread-step"):
            time.sleep(0)  # let the other 31 threads interleave here
            ok = ok and ft.current().tenant == tenant
        # A buggy task: enters its tenant and never leaves. A bare pool would hand this
        # stale tenant to whichever task runs next on this thread.
        ft.context(tenant=tenant, user="left-behind").__enter__()
    except ft.TenantSwitchError:  # a stale tenant from an earlier task was on this thread
        return False
    return ok


async def _one_task(i: int, tenant: str, pool: Executor, tally: Tally) -> None:
    loop = asyncio.get_running_loop()
    user = f"user-{i}"
    with ft.context(tenant=tenant, user=user):
        for _ in range(3):
            await asyncio.sleep(0)  # every await is a point where tasks interleave
            if (ft.current().tenant, ft.current().user) != (tenant, user):
                tally.crossings += 1
        if i % 2 == 0:  # half the tasks hop through the thread pool and back
            tally.thread_hops += 1
            if not await loop.run_in_executor(pool, _in_pool_thread, tally, tenant, user):
                tally.crossings += 1
            if (ft.current().tenant, ft.current().user) != (tenant, user):
                tally.crossings += 1
        await asyncio.sleep(0)
        if ft.current().tenant != tenant:
            tally.crossings += 1
    if not ft.current().is_empty:  # after the scope: nothing left behind
        tally.crossings += 1
    tally.completed += 1


def _thread_storm(pool: Executor, tally: Tally, rounds: int, seed: int) -> None:
    """Direct submissions with random tenants from a plain thread, racing the event loop."""
    rnd = random.Random(seed)
    futures = []
    for i in range(rounds):
        tenant = rnd.choice(TENANTS)
        with ft.context(tenant=tenant, user=f"storm-{i}"):
            futures.append(pool.submit(_in_pool_thread, tally, tenant, f"storm-{i}"))
    bad = sum(1 for f in futures if not f.result())
    with tally.lock:
        tally.crossings += bad


def _run(pool: Executor, tasks: int, storm_rounds: int) -> Tally:
    tally = Tally()
    rnd = random.Random(20261127)

    async def main() -> None:
        storm = threading.Thread(target=_thread_storm, args=(pool, tally, storm_rounds, 7))
        storm.start()
        await asyncio.gather(
            *(_one_task(i, rnd.choice(TENANTS), pool, tally) for i in range(tasks))
        )
        await asyncio.get_running_loop().run_in_executor(None, storm.join)

    asyncio.run(main())
    return tally


def test_10000_tasks_and_a_32_thread_pool_never_cross_tenants() -> None:
    """10,000 concurrent tasks with random tenants + a 32-thread pool: zero crossings."""
    with ft.ContextThreadPoolExecutor(max_workers=32) as pool:
        tally = _run(pool, tasks=10_000, storm_rounds=2_000)
    assert tally.completed == 10_000
    assert tally.thread_hops == 5_000
    assert len(tally.threads) > 1  # the pool really ran tasks on several threads
    assert tally.crossings == 0


def test_the_same_load_on_a_bare_pool_does_cross() -> None:
    """The checker is not vacuous: a bare ThreadPoolExecutor loses and leaks tenants."""
    with ThreadPoolExecutor(max_workers=32) as pool:
        tally = _run(pool, tasks=1_000, storm_rounds=200)
    assert tally.completed == 1_000
    assert tally.crossings > 0


def test_asyncio_tasks_inherit_the_context_they_were_created_in() -> None:
    """A task created inside a scope sees it; a change in the child never reaches the parent."""

    async def child() -> str | None:
        seen = ft.current().tenant
        ft.context(tenant=seen, user="child-only").__enter__()  # left open on purpose
        return seen

    async def main() -> tuple[str | None, str | None]:
        with ft.context(tenant="acme"):
            seen = await asyncio.create_task(child())
            return seen, ft.current().user

    assert asyncio.run(main()) == ("acme", None)
