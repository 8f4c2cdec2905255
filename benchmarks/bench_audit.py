"""Audit trail throughput: group-commit appends vs a plain logging.FileHandler, and
verification speed vs merely parsing the same file.

Baselines (same run, same machine):
* appends: ``logging.FileHandler`` writing the same JSON line per event (no hashing, no
  chain, no fsync at all: the floor for "just write a line").
* verification: reading the file and ``json.loads`` on every line (no checks at all).

Goals from the issue: >= 40k appends/s in group-commit mode, >= 150k records/s verified.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import flowtrace as ft
from flowtrace import audit

N_APPEND = 50_000
N_VERIFY = 200_000
REPEAT = 5


def _fresh(directory: Path, name: str) -> Path:
    path = directory / name
    for p in (path, Path(str(path) + ".checkpoints")):
        p.unlink(missing_ok=True)
    return path


def bench_group_commit(directory: Path, key: object) -> float:
    """One thread appending without waiting per record; durable (fsynced) at the end."""
    path = _fresh(directory, "group.jsonl")
    with ft.context(tenant="st-mary", user="dr-house", subject="42", purpose="treatment"):
        log = audit.AuditLog(path, signing_key=key, durability="group")
        start = time.perf_counter()
        last = None
        for _ in range(N_APPEND):
            last = log.append("patient.read", resource="patients/42", wait=False)
        assert last is not None
        last.wait()
        elapsed = time.perf_counter() - start
        log.close()
    return N_APPEND / elapsed


def bench_group_commit_threads(directory: Path, key: object, threads: int) -> float:
    """Request-handler style: several threads, each append() blocks until durable.

    Bounded by fsync latency: at most ``threads`` records per fdatasync.
    """
    path = _fresh(directory, "threads.jsonl")
    log = audit.AuditLog(path, signing_key=key, durability="group")
    per_thread = 16_000 // threads

    def work() -> None:
        with ft.context(tenant="st-mary", user="dr-house", subject="42", purpose="treatment"):
            for _ in range(per_thread):
                log.append("patient.read", resource="patients/42")

    workers = [threading.Thread(target=work) for _ in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    log.close()
    return threads * per_thread / elapsed


def bench_file_handler(directory: Path) -> float:
    """Baseline: the same JSON line per event through logging.FileHandler."""
    path = _fresh(directory, "plain.log")
    logger = logging.getLogger(f"bench.audit.{time.perf_counter_ns()}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    with ft.context(tenant="st-mary", user="dr-house", subject="42", purpose="treatment"):
        start = time.perf_counter()
        for _ in range(N_APPEND):
            ctx = ft.current()
            logger.info(json.dumps({
                "action": "patient.read", "actor": ctx.user, "outcome": "success",
                "purpose": ctx.purpose, "resource": "patients/42", "service": "unknown_service",
                "subject": ctx.subject, "tenant": ctx.tenant, "ts": audit_ts(),
            }, sort_keys=True, separators=(",", ":")))
        handler.flush()
        elapsed = time.perf_counter() - start
    handler.close()
    logger.removeHandler(handler)
    return N_APPEND / elapsed


def audit_ts() -> str:
    from flowtrace.audit._event import utc_timestamp

    return utc_timestamp()


def build_verify_file(directory: Path, key: object) -> Path:
    path = _fresh(directory, "verify.jsonl")
    scope = ft.context(tenant="st-mary", user="dr-house", subject="42", purpose="treatment")
    with scope, audit.AuditLog(path, signing_key=key, durability="none") as log:
        receipts = [log.append("patient.read", resource=f"patients/{i}", wait=False)
                    for i in range(N_VERIFY)]
        receipts[-1].wait()
    return path


def bench_verify(path: Path, public: object, check_format: bool) -> float:
    start = time.perf_counter()
    report = audit.verify(path, public_key=public, check_format=check_format)
    elapsed = time.perf_counter() - start
    assert report.records == N_VERIFY
    return N_VERIFY / elapsed


def bench_parse_only(path: Path) -> float:
    start = time.perf_counter()
    count = 0
    with open(path, "rb") as f:
        for line in f:
            json.loads(line)
            count += 1
    elapsed = time.perf_counter() - start
    assert count == N_VERIFY
    return N_VERIFY / elapsed


def fsync_latency() -> float:
    with tempfile.NamedTemporaryFile(dir=os.environ.get("BENCH_DIR")) as f:
        samples = []
        for _ in range(30):
            f.write(b"x" * 300 + b"\n")
            f.flush()
            start = time.perf_counter()
            os.fdatasync(f.fileno())
            samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


def main() -> int:
    print(f"machine: {os.uname().machine}, {os.cpu_count()} CPUs, Python "
          f"{sys.version.split()[0]}; medians of {REPEAT} runs")
    key = audit.generate_key()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        directory = Path(tmp)
        rows = []
        group = [bench_group_commit(directory, key) for _ in range(REPEAT)]
        plain = [bench_file_handler(directory) for _ in range(REPEAT)]
        threads8 = [bench_group_commit_threads(directory, key, 8) for _ in range(3)]
        threads64 = [bench_group_commit_threads(directory, key, 64) for _ in range(3)]
        rows.append(("appends/s, group commit (1 thread, wait=False, fsynced)", group, plain))
        rows.append(("appends/s, group commit (8 threads, each append waits)", threads8, plain))
        rows.append(("appends/s, group commit (64 threads, each append waits)", threads64, plain))
        path = build_verify_file(directory, key)
        public = key.public_key()
        fast = [bench_verify(path, public, False) for _ in range(REPEAT)]
        strict = [bench_verify(path, public, True) for _ in range(REPEAT)]
        parse = [bench_parse_only(path) for _ in range(REPEAT)]
        rows.append(("records/s verified (hash, chain, Merkle, signatures)", fast, parse))
        rows.append(("records/s verified + RFC 8785 check of every event", strict, parse))
    print(f"{'measure':58} {'flowtrace':>12} {'baseline':>12} {'ratio':>7}")
    for name, ours, base in rows:
        a, b = statistics.median(ours), statistics.median(base)
        print(f"{name:58} {a:12,.0f} {b:12,.0f} {a / b:7.2f}")
    print(f"fdatasync latency here: {fsync_latency():.1f} ms (median of 30)")
    print("baselines: logging.FileHandler with the same JSON line (no fsync) for appends; "
          "json.loads of every line for verification")
    return 0


if __name__ == "__main__":
    sys.exit(main())
