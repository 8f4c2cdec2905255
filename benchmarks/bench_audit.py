"""Audit trail throughput: appends and verification, against plain baselines, and
(optionally) against an older flowtrace checkout in the same session.

    python benchmarks/bench_audit.py                      # this checkout only
    python benchmarks/bench_audit.py --before /tmp/old    # also an older tree (its src/)

Each measurement runs in a fresh subprocess; with ``--before`` the old and the current
code alternate round by round, so a noisy moment on the shared machine hits both.

Baselines (same subprocess, same machine):
* appends: ``logging.FileHandler`` writing the same JSON line per event (no hashing, no
  chain, no signature, no fsync at all: the floor for "just write a line").
* verification: reading the file and ``json.loads`` on every line (no checks at all).
* long line: how long verify() takes to get through (or refuse) one 64 MB line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

N_APPEND = 50_000
N_VERIFY = 200_000
ROUNDS = 3
LONG_LINE = 64 << 20


def _fresh(directory: Path, name: str) -> Path:
    path = directory / name
    for p in (path, Path(str(path) + ".checkpoints")):
        p.unlink(missing_ok=True)
    return path


def bench_group_commit(directory: Path, key: Any) -> float:
    """One thread appending without waiting per record; durable (fsynced) batches."""
    import flowtrace as ft
    from flowtrace import audit

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


def bench_none_mode(directory: Path, key: Any) -> float:
    """durability="none": every append is its own write (and, in format 2, signature)."""
    import flowtrace as ft
    from flowtrace import audit

    path = _fresh(directory, "none.jsonl")
    count = N_APPEND // 5
    with ft.context(tenant="st-mary", user="dr-house", subject="42", purpose="treatment"):
        log = audit.AuditLog(path, signing_key=key, durability="none")
        start = time.perf_counter()
        for _ in range(count):
            log.append("patient.read", resource="patients/42")
        elapsed = time.perf_counter() - start
        log.close()
    return count / elapsed


def bench_file_handler(directory: Path) -> float:
    """Baseline: the same JSON line per event through logging.FileHandler."""
    import flowtrace as ft
    from flowtrace.audit._event import utc_timestamp

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
                "subject": ctx.subject, "tenant": ctx.tenant, "ts": utc_timestamp(),
            }, sort_keys=True, separators=(",", ":")))
        handler.flush()
        elapsed = time.perf_counter() - start
    handler.close()
    logger.removeHandler(handler)
    return N_APPEND / elapsed


def build_verify_file(directory: Path, key: Any, durability: Any) -> Path:
    """200k records. ``"none"``: one write per record, so (format 2) every line carries a
    writer signature — the worst case; ``"group"`` with ``wait=False``: large batches."""
    import flowtrace as ft
    from flowtrace import audit

    path = _fresh(directory, f"verify-{durability}.jsonl")
    scope = ft.context(tenant="st-mary", user="dr-house", subject="42", purpose="treatment")
    with scope, audit.AuditLog(path, signing_key=key, durability=durability) as log:
        receipts = [log.append("patient.read", resource=f"patients/{i}", wait=False)
                    for i in range(N_VERIFY)]
        receipts[-1].wait()
    return path


def bench_verify(path: Path, public: Any) -> float:
    from flowtrace import audit

    start = time.perf_counter()
    report = audit.verify(path, public_key=public)
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


def bench_long_line(directory: Path, public: Any) -> float:
    """Seconds until verify() is through (old code) or has refused (bounded) a 64 MB line."""
    from flowtrace import audit
    from flowtrace.errors import FlowtraceError

    path = _fresh(directory, "long.jsonl")
    with open(path, "wb") as f:
        f.write(b'{"hash":"' + b"a" * LONG_LINE + b'"}\n')
    start = time.perf_counter()
    with contextlib.suppress(FlowtraceError):
        audit.verify(path, public_key=public)
    return time.perf_counter() - start


def measure() -> dict[str, float]:
    """One round of every measurement in this process (run as a subprocess)."""
    from flowtrace import audit

    key = audit.generate_key()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        directory = Path(tmp)
        result = {
            "group": bench_group_commit(directory, key),
            "plain": bench_file_handler(directory),
            "none": bench_none_mode(directory, key),
        }
        path = build_verify_file(directory, key, "none")
        result["verify"] = bench_verify(path, key.public_key())
        result["parse"] = bench_parse_only(path)
        path = build_verify_file(directory, key, "group")
        result["verify_group"] = bench_verify(path, key.public_key())
        result["parse_group"] = bench_parse_only(path)
        result["long_line_s"] = bench_long_line(directory, key.public_key())
    return result


def _round(src: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, __file__, "--measure"], env=env, capture_output=True, text=True,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(out.splitlines()[-1])
    return result


def main(argv: list[str]) -> int:
    if argv[:1] == ["--measure"]:
        print(json.dumps(measure()))
        return 0
    here = Path(__file__).resolve().parent.parent / "src"
    trees = {"after": here}
    if argv[:1] == ["--before"]:
        trees = {"before": Path(argv[1]) / "src", "after": here}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for _ in range(ROUNDS):
        for name, src in trees.items():
            runs[name].append(_round(src))
    print(f"machine: {os.uname().machine}, {os.cpu_count()} CPUs, Python "
          f"{sys.version.split()[0]}; medians of {ROUNDS} alternating rounds; "
          f"load {Path('/proc/loadavg').read_text().split()[:3]}")
    rows = [
        ("appends/s, group commit, 1 thread, wait=False (fsynced batches)", "group", "plain"),
        ("appends/s, durability=none, each append its own write", "none", "plain"),
        ("records/s verified, log written one record per write", "verify", "parse"),
        ("records/s verified, log written by group commit", "verify_group", "parse_group"),
    ]
    print(f"{'measure':66} {'code':>7} {'flowtrace':>11} {'baseline':>10} {'ratio':>6}")
    for label, ours, base in rows:
        for name, results in runs.items():
            a = statistics.median(r[ours] for r in results)
            ratio = statistics.median(r[ours] / r[base] for r in results)
            b = statistics.median(r[base] for r in results)
            print(f"{label:66} {name:>7} {a:11,.0f} {b:10,.0f} {ratio:6.2f}")
    for name, results in runs.items():
        seconds = statistics.median(r["long_line_s"] for r in results)
        print(f"{'seconds for verify() on one 64 MB line':66} {name:>7} {seconds:11.3f}")
    print("baselines: logging.FileHandler with the same JSON line (no fsync) for appends; "
          "json.loads of every line for verification")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
