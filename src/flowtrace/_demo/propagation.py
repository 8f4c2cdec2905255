"""Demo step "propagation": the context crosses a process boundary, a thread pool and a
forged carrier, and leaks nowhere.

Offline: the "wire" is a JSON file in the output directory (``propagation-headers.json``);
the worker process is a real spawned process.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import ContextPropagationError
from ..flowcontext import FlowContext, context, current
from ..propagation import (
    ContextProcessPoolExecutor,
    ContextThreadPoolExecutor,
    extract,
    inject,
)


def _tenant_here() -> str | None:
    return current().tenant


def _leave_tenant_behind() -> None:
    context(tenant="tenant-a").__enter__()  # a buggy task that never exits its scope


def run(out: Path, say: Callable[[str], None]) -> None:
    """Run the step; raises AssertionError if a claim does not hold."""
    wire = out / "propagation-headers.json"
    sent = FlowContext(tenant="tenant-a", user="u-1", purpose="billing", region="eu")
    wire.write_text(json.dumps(inject({}, sent, identity=True)), encoding="utf-8")
    received = extract(json.loads(wire.read_text(encoding="utf-8")))
    assert received == sent
    say(f"inject -> {wire.name} -> extract: {received.to_dict()} (parsed from empty)")

    forged = {"baggage": "flowtrace.tenant=tenant-a,flowtrace.tenant=tenant-b"}
    try:
        extract(forged)
    except ContextPropagationError:
        say("a carrier naming two tenants is refused with ContextPropagationError")
    else:
        raise AssertionError("a forged carrier was accepted")

    with ThreadPoolExecutor(max_workers=1) as bare:
        bare.submit(_leave_tenant_behind).result()
        stale = bare.submit(_tenant_here).result()
    with ContextThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(_leave_tenant_behind).result()
        clean = pool.submit(_tenant_here).result()
    assert (stale, clean) == ("tenant-a", None)
    say(
        "bare ThreadPoolExecutor leaked tenant-a into the next task; "
        "ContextThreadPoolExecutor did not"
    )

    spawn = multiprocessing.get_context("spawn")
    with (
        ContextProcessPoolExecutor(max_workers=1, mp_context=spawn) as procs,
        context(tenant="tenant-b"),
    ):
        in_child = procs.submit(_tenant_here).result(timeout=120)
    assert in_child == "tenant-b"
    say("ContextProcessPoolExecutor ran a task in a worker process as tenant-b")

    crossings = asyncio.run(_many_tasks(2_000))
    assert crossings == 0
    say("2,000 concurrent asyncio tasks with random tenants: 0 crossings across awaits")


async def _many_tasks(count: int) -> int:
    rnd = random.Random(1)
    crossings = 0

    async def one(tenant: str) -> None:
        nonlocal crossings
        with context(tenant=tenant):
            for _ in range(3):
                await asyncio.sleep(0)
                crossings += current().tenant != tenant

    await asyncio.gather(*(one(f"tenant-{rnd.randrange(50)}") for _ in range(count)))
    return crossings
