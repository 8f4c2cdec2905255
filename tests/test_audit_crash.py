"""Crash safety: kill -9 a writer mid-stream; nothing acknowledged is lost; recover repairs."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from flowtrace import audit
from flowtrace.errors import AuditCorruptedError, TruncationError

# The child appends forever from four threads and reports each acknowledged record
# (append() returned) on stdout *after* append() returned.
CHILD = r"""
import sys, threading
from flowtrace import audit
path, key, durability, run = sys.argv[1:5]
log = audit.AuditLog(path, signing_key=key, durability=durability, checkpoint_every=50)
lock = threading.Lock()
def work(t):
    i = 0
    while True:
        receipt = log.append("record.write", resource=f"{run}/{t}/{i}")
        with lock:
            sys.stdout.write(f"{receipt.sequence} {run}/{t}/{i}\n")
            sys.stdout.flush()
        i += 1
threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(4)]
for t in threads:
    t.start()
threads[0].join()
"""


@pytest.mark.parametrize("durability", ["fsync", "group"])
def test_kill_minus_nine_loses_no_acknowledged_record(tmp_path: Path, durability: str) -> None:
    """Five kill -9 rounds: every acknowledged record is in the log; recover + verify pass."""
    key = audit.generate_key()
    key_path = tmp_path / "k.pem"
    key_path.write_bytes(audit.private_key_pem(key))
    log_path = tmp_path / "crash.jsonl"
    acknowledged: dict[int, str] = {}
    for run in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(log_path), str(key_path), durability, str(run)],
            stdout=subprocess.PIPE, text=True,
        )
        assert proc.stdout is not None
        wanted = 40 + 37 * run
        got = 0
        while got < wanted:  # kill at a different point each round
            line = proc.stdout.readline()
            assert line, "writer died on its own"
            got += 1
            seq, resource = line.split()
            acknowledged[int(seq)] = resource
        os.kill(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate(timeout=30)
        for line in rest.splitlines():  # reported before the kill landed
            seq, resource = line.split()
            acknowledged[int(seq)] = resource
        # A write cut short by the kill may leave complete records no signature covers:
        # never acknowledged, so recover may move them out when told to.
        audit.recover(log_path, signing_key=key, cut_unattributed=True)
        # The killed writer never wrote its closing checkpoint: its tail is unsealed.
        report = audit.verify(log_path, public_key=key.public_key(), allow_unsealed=10**6)
        stored = {e.sequence: e.resource for e in audit.query(log_path)}
        missing = {s: r for s, r in acknowledged.items() if stored.get(s) != r}
        assert not missing, f"round {run}: acknowledged records lost: {missing}"
        assert report.records >= len(acknowledged)
    assert len(acknowledged) >= sum(40 + 37 * r for r in range(5))


def test_recover_repairs_a_torn_line_and_records_it(tmp_path: Path) -> None:
    """A torn last line blocks writers and verify; recover cuts it, keeps it and logs it."""
    key = audit.generate_key()
    path = tmp_path / "a.jsonl"
    with audit.AuditLog(path, signing_key=key, durability="fsync") as log:
        for i in range(10):
            log.append("patient.read", subject=str(i))
    torn = b'{"hash":"00ff","record":{"event":{"act'
    with open(path, "ab") as f:
        f.write(torn)
    with pytest.raises(TruncationError, match="incomplete line"):
        audit.verify(path, public_key=key.public_key())
    with pytest.raises(AuditCorruptedError, match="recover"):
        audit.AuditLog(path, signing_key=key)
    report = audit.recover(path, signing_key=key)
    assert (report.repaired, report.cut_bytes, report.sequence) == (True, len(torn), 10)
    assert report.saved_to is not None
    assert Path(report.saved_to).read_bytes() == torn
    verified = audit.verify(path, public_key=key.public_key())
    assert verified.records == 11
    (last,) = audit.query(path, action="audit.recovered")
    assert last.details["cut_bytes"] == len(torn)
    assert last.details["cut_sha256"] == hashlib.sha256(torn).hexdigest()
    # idempotent: nothing left to repair
    assert audit.recover(path, signing_key=key).repaired is False


def test_recover_cli_reports_what_it_did(tmp_path: Path) -> None:
    """`flowtrace audit recover` repairs and says so; verify then exits 0."""
    from flowtrace.cli import main

    key = audit.generate_key()
    key_path = tmp_path / "k.pem"
    key_path.write_bytes(audit.private_key_pem(key))
    pub_path = tmp_path / "k.pub"
    pub_path.write_bytes(audit.public_key_pem(key.public_key()))
    path = tmp_path / "a.jsonl"
    with audit.AuditLog(path, signing_key=key) as log:
        log.append("x.y")
    with open(path, "ab") as f:
        f.write(b'{"hash":')
    assert main(["audit", "verify", str(path), "--public-key", str(pub_path)]) == 1
    assert main(["audit", "recover", str(path), "--private-key", str(key_path)]) == 0
    assert main(["audit", "verify", str(path), "--public-key", str(pub_path)]) == 0
    assert json.loads(path.read_bytes().splitlines()[-1])["record"]["event"]["action"] == (
        "audit.recovered"
    )


def test_records_queued_without_waiting_are_flushed_at_exit(tmp_path: Path) -> None:
    """A process that appends with wait=False and exits without close() loses nothing."""
    key = audit.generate_key()
    key_path = tmp_path / "k.pem"
    key_path.write_bytes(audit.private_key_pem(key))
    path = tmp_path / "exit.jsonl"
    code = (
        "import sys\nfrom flowtrace import audit\n"
        "log = audit.AuditLog(sys.argv[1], signing_key=sys.argv[2], group_max_delay=0.2)\n"
        "for i in range(500):\n    log.append('x.y', resource=str(i), wait=False)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path), str(key_path)], check=True,
                   timeout=60)
    report = audit.verify(path, public_key=key.public_key())
    assert report.records == 500
