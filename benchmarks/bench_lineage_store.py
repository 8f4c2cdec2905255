"""LineageStore at 1M edges: ingest rate, database size, upstream/downstream latency.

    python benchmarks/bench_lineage_store.py [EDGES] [sqlite|postgresql]

One tree of 1,000 identifiers (a report made from 10 parts, each from 99 raw records) sits
among EDGES-11 unrelated one-step edges; upstream of the report and downstream of a raw
record are timed (median of 21). Baseline: the same ingest into a bare SQLite table of
JSON lines (executemany, no links, no indexes beyond the primary key).
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator

from flowtrace.lineage import LineageEdge, LineageStore


def edges(total: int) -> Iterator[LineageEdge]:
    parts = [f"part:{j}" for j in range(10)]
    yield LineageEdge(id="tree:top", name="sum", inputs=tuple(parts), outputs=("report:1",))
    for j, part in enumerate(parts):
        leaves = tuple(f"raw:{j}:{k}" for k in range(99))
        yield LineageEdge(id=f"tree:{j}", name="agg", inputs=leaves, outputs=(part,))
    for i in range(total - 11):
        yield LineageEdge(
            id=f"e:{i}", name="copy", inputs=(f"in:{i}",), outputs=(f"out:{i}",), tenant="acme"
        )


def timed(func: object, repeat: int = 21) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()  # type: ignore[operator]
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    engine = sys.argv[2] if len(sys.argv) > 2 else "sqlite"
    with tempfile.TemporaryDirectory() as tmp:
        if engine == "sqlite":
            url = f"sqlite:///{tmp}/lineage.db"
        else:
            import psycopg

            schema = f"bench_{uuid.uuid4().hex[:10]}"
            admin = "postgresql://postgres@127.0.0.1:5432/test"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            url = f"{admin}?options=-csearch_path%3D{schema}"
        tracemalloc.start()
        start = time.perf_counter()
        with LineageStore(url) as store:
            added = store.ingest(edges(total), batch=20_000)
            took = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            up = timed(lambda: store.upstream("report:1"))
            down = timed(lambda: store.downstream("raw:3:7"))
            assert len(store.upstream("report:1")) == 1000
        if engine == "sqlite":
            size = sum(os.path.getsize(f"{tmp}/{n}") for n in os.listdir(tmp))
            base = sqlite3.connect(f"{tmp}/base.db")
            base.execute("CREATE TABLE e (id TEXT PRIMARY KEY, body TEXT)")
            start = time.perf_counter()
            with base:
                base.executemany(
                    "INSERT INTO e VALUES (?, ?)", ((e.id, e.to_json()) for e in edges(total))
                )
            base_took = time.perf_counter() - start
            base.close()
        else:
            with psycopg.connect(admin, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace"
                    " n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
                    (schema,),
                ).fetchone()
                size = int(row[0]) if row else 0
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
            base_took = float("nan")
    print(f"engine={engine} edges={added} ingest={took:.1f}s ({added / took:,.0f} edges/s)")
    print(f"  baseline bare-table ingest={base_took:.1f}s ratio={took / base_took:.2f}")
    print(f"  db size={size / 2**20:.0f} MiB ({size / added:.0f} B/edge)")
    print(f"  tracemalloc peak during ingest={peak / 2**20:.1f} MiB")
    print(f"  upstream(1000 ids)={up:.2f} ms  downstream(raw)={down:.2f} ms (median of 21)")


if __name__ == "__main__":
    main()
