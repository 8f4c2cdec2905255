"""Map building: spans/s into the observed map, and peak memory, for 10k, 100k and 1M spans.

The spans are flowtrace span lines (``configure(spans_file=...)``), as one service fleet
would write them: 8 services x 3 tenants x 2 purposes, one boundary-crossing span in
three (db, messaging, outbound HTTP), the rest internal. Lines are generated on the fly
(nothing is held in memory) and

* ``map``: each line parsed with ``json.loads`` and added to an :class:`ObservedMap`;
* ``baseline``: the same lines parsed with ``json.loads`` and dropped (the parsing floor).

Timed with ``time.thread_time`` (CPU time of this thread: time spent preempted by the
other builds on a shared machine is not counted). Also reported: the rate of
``ObservedMap.add`` alone on already-parsed spans, and the ``tracemalloc`` peak of
building (the generator's own line is a few hundred bytes).
Target (issue 12): >= 100k spans/s into the map; memory flat in the number of spans.

Run: ``python3 dev.py bench map``.
"""

from __future__ import annotations

import json
import platform
import time
import tracemalloc
from collections.abc import Iterator

from flowtrace.map import ObservedMap

SERVICES = [f"svc-{i}" for i in range(8)]
TENANTS = ["acme", "globex", "initech"]
PURPOSES = ["billing", "support"]


def span_lines(count: int) -> Iterator[str]:
    dumps = json.dumps
    for i in range(count):
        service = SERVICES[i % 8]
        attrs: dict[str, object] = {
            "flowtrace.tenant": TENANTS[i % 3],
            "flowtrace.purpose": PURPOSES[i % 2],
            "flowtrace.region": "eu",
        }
        kind = "INTERNAL"
        which = i % 9
        if which == 0:
            kind = "CLIENT"
            attrs |= {
                "db.system": "postgresql",
                "db.namespace": f"db{i % 4}",
                "flowtrace.data.categories": ["pii"],
            }
        elif which == 3:
            kind = "PRODUCER"
            attrs |= {
                "messaging.system": "rabbitmq",
                "messaging.destination.name": f"q{i % 5}",
                "flowtrace.data.categories": ["pii", "pci"],
                "flowtrace.data.encrypted": ["pci"],
            }
        elif which == 6:
            kind = "CLIENT"
            attrs |= {
                "http.request.method": "POST",
                "server.address": "psp.example",
                "server.port": 443,
            }
        yield dumps(
            {
                "name": "op",
                "trace_id": f"{i // 10:032x}",
                "span_id": f"{i:016x}",
                "parent_span_id": None,
                "kind": kind,
                "start_time_unix_nano": i,
                "end_time_unix_nano": i + 1,
                "status": "UNSET",
                "status_description": None,
                "attributes": attrs,
                "events": [],
                "links": [],
                "resource": {"service.name": service, "flowtrace.service.region": "eu"},
            }
        )


def build_map(count: int) -> float:
    observed = ObservedMap()
    add = observed.add
    loads = json.loads
    start = time.thread_time()
    for line in span_lines(count):
        d = loads(line)
        add(
            d["trace_id"],
            d["span_id"],
            d["kind"],
            d["attributes"],
            d["resource"],
            d["end_time_unix_nano"],
        )
    return time.thread_time() - start


def parse_only(count: int) -> float:
    loads = json.loads
    start = time.thread_time()
    for line in span_lines(count):
        loads(line)
    return time.thread_time() - start


def generate_only(count: int) -> float:
    start = time.thread_time()
    for _ in span_lines(count):
        pass
    return time.thread_time() - start


def add_only(count: int) -> float:
    parsed = [json.loads(line) for line in span_lines(min(count, 100_000))]
    observed = ObservedMap()
    add = observed.add
    start = time.thread_time()
    for _ in range(count // len(parsed)):
        for d in parsed:
            add(
                d["trace_id"],
                d["span_id"],
                d["kind"],
                d["attributes"],
                d["resource"],
                d["end_time_unix_nano"],
            )
    return time.thread_time() - start


def peak_memory(count: int) -> int:
    tracemalloc.start()
    observed = ObservedMap()
    for line in span_lines(count):
        d = json.loads(line)
        observed.add(
            d["trace_id"],
            d["span_id"],
            d["kind"],
            d["attributes"],
            d["resource"],
            d["end_time_unix_nano"],
        )
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    print(f"python {platform.python_version()} on {platform.machine()}")
    print(
        "| spans | generate (s) | map: parse+add (s) | baseline: parse (s) | map spans/s "
        "(excl. generation) | add-only spans/s | ratio map/baseline | peak memory |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for count in (10_000, 100_000, 1_000_000):
        rounds = 5 if count < 1_000_000 else 3
        gen, ours, base = [], [], []
        for _ in range(rounds):  # interleaved: a slow moment hits both sides
            gen.append(generate_only(count))
            ours.append(build_map(count))
            base.append(parse_only(count))
        g, o, b = sorted(gen)[rounds // 2], sorted(ours)[rounds // 2], sorted(base)[rounds // 2]
        adds = add_only(count)
        peak = peak_memory(count)
        print(
            f"| {count:,} | {g:.2f} | {o:.2f} | {b:.2f} | {count / (o - g):,.0f} | "
            f"{count / adds:,.0f} | {(o - g) / (b - g):.2f} | {peak / 1024:.0f} KiB |"
        )


if __name__ == "__main__":
    main()
