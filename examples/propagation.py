"""The flow context follows the work: across a process hop, a thread pool and a process pool.

Run it: ``python examples/propagation.py``. Offline, no servers; it asserts what it prints.

1. A "producer" injects its context into headers; a separate Python process (a stand-in for
   the service on the other end of an HTTP call or a queue) extracts it from an empty
   context and reports what it got, including the producer's trace.
2. A tampered or oversized carrier is refused with ContextPropagationError, never half-read.
3. A bare ThreadPoolExecutor leaks a tenant left behind by one task into the next task;
   flowtrace's ContextThreadPoolExecutor does not, and carries the submitter's tenant.
4. A ContextProcessPoolExecutor runs tasks in the submitter's context in another process.
"""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from opentelemetry.sdk.trace import TracerProvider

import flowtrace as ft
from flowtrace.propagation import remote_span_context


def consumer_process() -> None:
    """The far side: read headers from stdin, extract, report as JSON."""
    headers = json.load(sys.stdin)
    ctx = ft.extract(headers)
    parent = remote_span_context(headers)
    json.dump(
        {
            "context": ctx.to_dict(),
            "trace_id": None if parent is None else f"{parent.trace_id:032x}",
        },
        sys.stdout,
    )


def process_hop() -> None:
    tracer = TracerProvider().get_tracer("example")
    with (
        ft.context(tenant="acme", user="u-1", purpose="billing", region="eu"),
        tracer.start_as_current_span("publish invoice") as span,
    ):
        # The consumer process is ours (inside the trust domain): identity members may go.
        headers = ft.inject({}, identity=True)
    print("producer headers:", headers)
    result = subprocess.run(
        [sys.executable, __file__, "--consumer"],
        input=json.dumps(headers),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    seen = json.loads(result.stdout)
    print("consumer process extracted:", seen)
    assert seen["context"] == {
        "tenant": "acme",
        "user": "u-1",
        "purpose": "billing",
        "region": "eu",
    }
    assert seen["trace_id"] == f"{span.get_span_context().trace_id:032x}"


def refused_carriers() -> None:
    forged = {"baggage": "flowtrace.tenant=acme,flowtrace.tenant=globex"}
    unknown = {"baggage": "flowtrace.tennant=acme"}
    for name, carrier in (("duplicated tenant", forged), ("unknown flowtrace key", unknown)):
        try:
            ft.extract(carrier)
        except ft.ContextPropagationError as exc:
            print(f"refused {name}: {str(exc)[:90]}...")
        else:
            raise AssertionError(f"{name} was accepted")
    # Foreign content is not ours to refuse: junk is dropped, the tenant kept.
    crowded = {"baggage": "x=1," * 181 + "bad key=1,flowtrace.tenant=acme"}
    assert ft.extract(crowded).tenant == "acme"
    print("182 foreign members, one malformed: tenant kept, the malformed one dropped")


def _leave_tenant_behind() -> None:
    ft.context(tenant="acme").__enter__()  # a buggy task that never exits its scope


def thread_pools() -> None:
    with ThreadPoolExecutor(max_workers=1) as bare:
        bare.submit(_leave_tenant_behind).result()
        stale = bare.submit(lambda: ft.current().tenant).result()
    print("bare ThreadPoolExecutor, next task runs as:", stale)
    assert stale == "acme"  # the leak

    with ft.ContextThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(_leave_tenant_behind).result()
        after = pool.submit(lambda: ft.current().tenant).result()
        with ft.context(tenant="globex"):
            carried = pool.submit(lambda: ft.current().tenant).result()
    print("ContextThreadPoolExecutor, next task runs as:", after, "| submitted as globex:", carried)
    assert after is None
    assert carried == "globex"


def _tenant_in_worker() -> str | None:
    return ft.current().tenant


def process_pool() -> None:
    spawn = multiprocessing.get_context("spawn")
    with ft.ContextProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        with ft.context(tenant="initech"):
            seen = pool.submit(_tenant_in_worker).result(timeout=120)
        outside = pool.submit(_tenant_in_worker).result(timeout=120)
    print(
        "ContextProcessPoolExecutor worker ran as:", seen, "| submitted outside a scope:", outside
    )
    assert (seen, outside) == ("initech", None)


def main() -> None:
    process_hop()
    refused_carriers()
    thread_pools()
    process_pool()
    print("ok: the context survived every hop and leaked into none")


if __name__ == "__main__":
    if sys.argv[1:] == ["--consumer"]:
        consumer_process()
    else:
        main()
