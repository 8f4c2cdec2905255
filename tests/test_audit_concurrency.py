"""Many writers, one chain: processes sharing a file, and concurrent PostgreSQL writers."""

from __future__ import annotations

import itertools
import subprocess
import sys
import uuid
from collections import defaultdict
from pathlib import Path

import pytest

from flowtrace import audit
from flowtrace.errors import RecordModifiedError
from tests._services import require_service

WRITER = r"""
import sys
from flowtrace import audit
target, key, writer, count, durability, dsn, table = sys.argv[1:8]
if dsn != "-":
    target = audit.PostgresSink(dsn, table=table)
elif target.startswith("sqlite:"):
    target = audit.SqliteSink(target[len("sqlite:"):])
log = audit.AuditLog(target, signing_key=key, durability=durability, checkpoint_every=500)
print("ready", flush=True)
sys.stdin.readline()  # start together
receipts = [
    log.append("record.write", actor=f"w{writer}", resource=f"{writer}/{i}", wait=False)
    for i in range(int(count))
]
for receipt in receipts:
    receipt.wait()
log.close()
print("done", flush=True)
"""


def _run_writers(
    target: str, key_path: Path, writers: int, count: int, durability: str, dsn: str = "-",
    table: str = "-",
) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, target, str(key_path), str(w), str(count), durability,
             dsn, table],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        for w in range(writers)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:  # release them all at once
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0
        assert out.strip() == "done"


def _check_per_writer_order(events: list[audit.AuditEvent], writers: int, count: int) -> None:
    seen: dict[str, list[int]] = defaultdict(list)
    for event in events:
        assert event.resource is not None
        writer, index = event.resource.split("/")
        seen[writer].append(int(index))
    assert sorted(seen) == sorted(str(w) for w in range(writers))
    for indexes in seen.values():
        assert indexes == list(range(count))  # each exactly once, in each writer's order


def _key(tmp_path: Path) -> tuple[Path, object]:
    key = audit.generate_key()
    path = tmp_path / "signing.pem"
    path.write_bytes(audit.private_key_pem(key))
    return path, key.public_key()


def test_eight_processes_appending_to_one_file_keep_one_chain(tmp_path: Path) -> None:
    """8 processes x 2,000 appends to one file give one valid chain of 16,000 records."""
    key_path, public = _key(tmp_path)
    log_path = tmp_path / "shared.jsonl"
    _run_writers(str(log_path), key_path, writers=8, count=2000, durability="group")
    report = audit.verify(log_path, public_key=public, check_format=True)
    assert report.records == 16_000
    assert report.checkpoints > 8  # periodic ones plus one per writer on close
    events = list(audit.query(log_path))
    assert [e.sequence for e in events] == list(range(16_000))
    _check_per_writer_order(events, writers=8, count=2000)
    # The writers really interleaved: the file is not eight consecutive blocks.
    switches = sum(a.actor != b.actor for a, b in itertools.pairwise(events))
    assert switches > 8


@pytest.mark.services
def test_concurrent_postgresql_writers_keep_a_gap_free_chain(tmp_path: Path) -> None:
    """4 processes x 500 appends into one PostgreSQL table: 2,000 gap-free, valid records."""
    host, port = require_service("postgresql")
    dsn = f"host={host} port={port} user=postgres dbname=test"
    table = f"audit_conc_{uuid.uuid4().hex[:10]}"
    key_path, public = _key(tmp_path)
    audit.init_db(dsn, table=table)
    try:
        _run_writers("-", key_path, writers=4, count=500, durability="group", dsn=dsn, table=table)
        sink = audit.PostgresSink(dsn, table=table)
        try:
            report = audit.verify(sink, public_key=public,
                                  check_format=True)
            events = list(audit.query(sink))
        finally:
            sink.close()
        assert report.records == 2000
        assert [e.sequence for e in events] == list(range(2000))
        _check_per_writer_order(events, writers=4, count=500)
    finally:
        _drop(dsn, table)


def _drop(dsn: str, table: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}, {table}_checkpoints")


@pytest.mark.services
def test_postgresql_rejects_update_delete_and_truncate(tmp_path: Path) -> None:
    """The append-only triggers refuse UPDATE, DELETE and TRUNCATE on records."""
    import psycopg

    host, port = require_service("postgresql")
    dsn = f"host={host} port={port} user=postgres dbname=test"
    table = f"audit_ro_{uuid.uuid4().hex[:10]}"
    audit.init_db(dsn, table=table)
    try:
        with audit.AuditLog(audit.PostgresSink(dsn, table=table), durability="fsync") as log:
            log.append("patient.read", subject="42")
        with psycopg.connect(dsn, autocommit=True) as conn:
            for sql in (
                f"UPDATE {table} SET line = 'x'",
                f"DELETE FROM {table}",
                f"TRUNCATE {table}",
                f"DELETE FROM {table}_checkpoints",
            ):
                with pytest.raises(psycopg.Error, match="append-only"):
                    conn.execute(sql)
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,)
    finally:
        _drop(dsn, table)


@pytest.mark.services
def test_postgresql_tampering_by_a_dba_is_detected(tmp_path: Path) -> None:
    """A DBA who disables the trigger and edits a row is still caught by verify()."""
    import psycopg

    host, port = require_service("postgresql")
    dsn = f"host={host} port={port} user=postgres dbname=test"
    table = f"audit_dba_{uuid.uuid4().hex[:10]}"
    key = audit.generate_key()
    audit.init_db(dsn, table=table)
    try:
        sink = audit.PostgresSink(dsn, table=table)
        with audit.AuditLog(sink, signing_key=key, durability="fsync") as log:
            for i in range(20):
                log.append("patient.read", subject=str(i))
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
            conn.execute(
                f"UPDATE {table} SET line = convert_to(replace(convert_from(line, 'UTF8'), "
                "'\"subject\":\"7\"', '\"subject\":\"8\"'), 'UTF8') WHERE seq = 7"
            )
        reader = audit.PostgresSink(dsn, table=table)
        try:
            with pytest.raises(RecordModifiedError) as info:
                audit.verify(reader, public_key=key.public_key())
        finally:
            reader.close()
        assert info.value.sequence == 7
    finally:
        _drop(dsn, table)


def test_sqlite_writer_processes_keep_a_gap_free_chain(tmp_path: Path) -> None:
    """4 processes x 300 appends into one SQLite (WAL) database: one gap-free chain."""
    key_path, public = _key(tmp_path)
    db = tmp_path / "audit.db"
    _run_writers(f"sqlite:{db}", key_path, writers=4, count=300, durability="group")
    reader = audit.SqliteSink(db)
    try:
        report = audit.verify(reader, public_key=public)
        events = list(audit.query(reader))
    finally:
        reader.close()
    assert report.records == 1200
    assert [e.sequence for e in events] == list(range(1200))
    _check_per_writer_order(events, writers=4, count=300)


def test_sqlite_writers_in_threads_keep_one_chain(tmp_path: Path) -> None:
    """Two SQLite sinks (two connections) written from threads keep one gap-free chain."""
    import threading

    key = audit.generate_key()
    db = tmp_path / "audit.db"
    logs = [audit.AuditLog(audit.SqliteSink(db), signing_key=key, durability="fsync")
            for _ in range(2)]

    def write(n: int) -> None:
        for i in range(100):
            logs[n].append("row.read", resource=f"{n}/{i}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for log in logs:
        log.close()
    reader = audit.SqliteSink(db)
    report = audit.verify(reader, public_key=key.public_key())
    reader.close()
    assert report.records == 200
