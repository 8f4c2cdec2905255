"""The audit threat model (docs/audit.md, "Threat model"), one test per line of the table.

Each test plays the attacker with exactly the access its line names. Regression tests for
issue 10 items 1 and 2 say so in their docstrings: they fail on the code before format 2
(a writer chained after a forged line and signed it; a rewritten log with its checkpoints
deleted verified).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowtrace as ft
from flowtrace import audit
from flowtrace.audit._record import make_line, writer_member
from flowtrace.cli import main
from flowtrace.errors import (
    AuditVerificationError,
    CheckpointSignatureError,
    ForgedRecordError,
    RecordModifiedError,
    TruncationError,
)

# A writer process: appends on command and reports each outcome on stdout.
WRITER = r"""
import sys
from flowtrace import audit
path, key, name = sys.argv[1:4]
log = audit.AuditLog(path, signing_key=key, durability="fsync", checkpoint_every=1000)
print("ready", flush=True)
for command in sys.stdin:
    count = int(command)
    try:
        for i in range(count):
            log.append("patient.read", actor=name, resource=f"patients/{i}")
    except Exception as exc:
        print(f"error {type(exc).__name__} {getattr(exc, 'sequence', None)}", flush=True)
    else:
        print(f"ok {log.size}", flush=True)
"""

# The attacker has write access to the log file only: no key, no flowtrace. It takes the
# lock like a writer would and appends one line chained correctly to the last record.
ATTACKER = r"""
import fcntl, hashlib, json, sys
path = sys.argv[1]
with open(path, "ab+") as f:
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)
    f.seek(0)
    lines = f.read().splitlines()
    prev = json.loads(lines[-1])["hash"]
    event = {"action": "patient.read", "actor": "dr-house", "resource": "patients/42",
             "outcome": "success", "ts": "2026-12-04T10:00:00.000000Z"}
    body = json.dumps({"event": event, "prev": prev, "seq": len(lines), "v": 2},
                      sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(body).hexdigest()
    f.write(b'{"hash":"' + digest.encode() + b'","record":' + body + b"}\n")
    f.flush()
    fcntl.flock(f.fileno(), fcntl.LOCK_UN)
print(len(lines))
"""


class Writer:
    """A real writer process on a shared log."""

    def __init__(self, path: Path, key_path: Path, name: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(key_path), name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self._read() == "ready"

    def _read(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def append(self, count: int) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{count}\n")
        self.proc.stdin.flush()
        return self._read()

    def stop(self) -> None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.proc.stdout.close()


@pytest.fixture
def keyfiles(tmp_path: Path) -> tuple[Path, Path, object]:
    key = audit.generate_key()
    private = tmp_path / "writer.pem"
    private.write_bytes(audit.private_key_pem(key))
    public = tmp_path / "writer.pub"
    public.write_bytes(audit.public_key_pem(key.public_key()))
    return private, public, key


class TestFileWriteAccessOnly:
    """Insider with write access to the log file, not to the key."""

    def test_a_correctly_chained_forged_line_is_refused_by_every_writer_and_by_verify(
        self, tmp_path: Path, keyfiles: tuple[Path, Path, object]
    ) -> None:
        """Issue 10 item 1 (fails before format 2: the writer chained after the line and
        the next checkpoint signed it). Two writer processes share a file; an attacker
        process appends one correctly chained line; both writers refuse to write after it
        (ForgedRecordError naming its sequence), nothing is chained after it, and verify
        reports it as forged — in Python and on the command line."""
        private, public, _ = keyfiles
        path = tmp_path / "shared.jsonl"
        a, b = Writer(path, private, "a"), Writer(path, private, "b")
        try:
            assert a.append(3) == "ok 3"
            assert b.append(4) == "ok 7"
            assert a.append(2) == "ok 9"
            attacker = subprocess.run([sys.executable, "-c", ATTACKER, str(path)],
                                      capture_output=True, text=True, check=True)
            forged = int(attacker.stdout)
            assert forged == 9
            before = path.read_bytes()
            assert a.append(1) == f"error ForgedRecordError {forged}"
            assert b.append(1) == f"error ForgedRecordError {forged}"
            assert a.append(1) == f"error ForgedRecordError {forged}"  # it stays stopped
            assert path.read_bytes() == before  # nobody chained after the forged line
        finally:
            a.stop()
            b.stop()
        assert json.loads(path.read_bytes().splitlines()[-1])["record"]["seq"] == forged
        with pytest.raises(ForgedRecordError) as info:
            audit.verify(path, public_key=public, allow_unsealed=100)
        assert info.value.sequence == forged
        assert main(["audit", "verify", str(path), "--public-key", str(public),
                     "--allow-unsealed", "100", "--json"]) == 1
        # A query that must be evidence verifies first and refuses to answer.
        assert main(["audit", "query", str(path), "--public-key", str(public),
                     "--allow-unsealed", "100"]) == 1

    def test_cli_names_the_forged_sequence(
        self, tmp_path: Path, keyfiles: tuple[Path, Path, object],
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """`flowtrace audit verify --json` reports ForgedRecordError and the sequence."""
        _, public, key = keyfiles
        path = tmp_path / "a.jsonl"
        with audit.AuditLog(path, signing_key=key) as log:
            log.append("x.y")
        subprocess.run([sys.executable, "-c", ATTACKER, str(path)], check=True,
                       capture_output=True)
        capsys.readouterr()
        assert main(["audit", "verify", str(path), "--public-key", str(public), "--json"]) == 1
        report = json.loads(capsys.readouterr().out)
        assert (report["error"], report["sequence"]) == ("ForgedRecordError", 1)

    def test_editing_a_record_is_caught_at_that_record(
        self, tmp_path: Path, keyfiles: tuple[Path, Path, object]
    ) -> None:
        """Changing any record's content breaks its hash: RecordModifiedError there."""
        _, public, key = keyfiles
        path = _closed_log(tmp_path, key, 30)
        path.write_bytes(path.read_bytes().replace(b'"patients/12"', b'"patients/99"'))
        with pytest.raises(RecordModifiedError) as info:
            audit.verify(path, public_key=public)
        assert info.value.sequence == 12

    def test_cutting_the_tail_is_caught_by_the_checkpoint(
        self, tmp_path: Path, keyfiles: tuple[Path, Path, object]
    ) -> None:
        """Dropping the last records (at a write boundary) fails: a checkpoint covers them."""
        _, public, key = keyfiles
        path = _closed_log(tmp_path, key, 30)
        path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:25]))
        with pytest.raises(TruncationError) as info:
            audit.verify(path, public_key=public)
        assert info.value.sequence == 25


    def test_a_line_slipped_in_without_the_lock_during_a_write_stops_the_writer(
        self, tmp_path: Path, keyfiles: tuple[Path, Path, object]
    ) -> None:
        """An attacker who ignores the lock and appends between the writer's check and its
        write: the writer notices its lines did not land where it checked, raises
        ForgedRecordError, and verify fails."""
        _, public, key = keyfiles
        path = tmp_path / "a.jsonl"

        class Racing(audit.JsonlSink):
            def write(self, lines: list[bytes], checkpoint: bytes | None) -> None:
                if lines and self.path.stat().st_size:
                    subprocess.run([sys.executable, "-c", ATTACKER.replace(
                        "fcntl.flock(f.fileno(), fcntl.LOCK_EX)", "pass").replace(
                        "fcntl.flock(f.fileno(), fcntl.LOCK_UN)", "pass"), str(self.path)],
                        check=True, capture_output=True)
                super().write(lines, checkpoint)

        with audit.AuditLog(path, signing_key=key, durability="fsync") as log:
            log.append("x.y")
        log = audit.AuditLog(Racing(path), signing_key=key, durability="fsync")
        with pytest.raises(ForgedRecordError, match="not holding the lock"):
            log.append("x.y")
        with pytest.raises(AuditVerificationError):  # and it signs no checkpoint after it
            log.close()
        assert len(Path(f"{path}.checkpoints").read_bytes().splitlines()) == 1
        with pytest.raises(AuditVerificationError):
            audit.verify(path, public_key=public, allow_unsealed=10)


class TestFileAndCheckpointWriteAccess:
    """Insider who can write the log file and its .checkpoints file."""

    def test_a_rewritten_log_with_its_checkpoints_deleted_fails_by_default(
        self, tmp_path: Path, keyfiles: tuple[Path, Path, object]
    ) -> None:
        """Issue 10 item 2 (fails before format 2: this verified). Record 5 rewritten, the
        chain recomputed, the checkpoint file deleted or emptied: without the key the
        attacker cannot sign, so verify fails — the records are not attributed."""
        _, public, key = keyfiles
        path = _closed_log(tmp_path, key, 30)
        path.write_bytes(_rechain(path.read_bytes(), 5, actor="someone-else"))
        cp = Path(f"{path}.checkpoints")
        for action in ("empty", "delete"):
            if action == "empty":
                cp.write_bytes(b"")
            else:
                cp.unlink()
            with pytest.raises(ForgedRecordError, match=r"\.\.29 are not covered") as info:
                audit.verify(path, public_key=public)
            # Named: the first record after the last intact writer signature (<= 5).
            assert info.value.sequence is not None
            assert 2 <= info.value.sequence <= 5

    def test_deleting_the_checkpoints_of_an_intact_log_fails_by_default(
        self, tmp_path: Path, keyfiles: tuple[Path, Path, object]
    ) -> None:
        """With a public key, a non-empty log whose head no checkpoint covers fails;
        allow_unsealed=N is the explicit, bounded exception."""
        _, public, key = keyfiles
        path = _closed_log(tmp_path, key, 30)
        Path(f"{path}.checkpoints").unlink()
        with pytest.raises(TruncationError, match="not covered") as info:
            audit.verify(path, public_key=public)
        assert info.value.sequence == 0
        with pytest.raises(TruncationError):
            audit.verify(path, public_key=public, allow_unsealed=29)
        assert audit.verify(path, public_key=public, allow_unsealed=30).unsigned_tail == 30

    def test_rolling_back_log_and_checkpoints_together_is_caught_by_a_mirror(
        self, tmp_path: Path, keyfiles: tuple[Path, Path, object]
    ) -> None:
        """Restoring an older copy of both files verifies on its own (the external-anchor
        line of the table), but not against the checkpoint file the writer mirrored to."""
        _, public, key = keyfiles
        path, mirror = tmp_path / "a.jsonl", tmp_path / "elsewhere" / "mirror.checkpoints"
        mirror.parent.mkdir()
        cp = Path(f"{path}.checkpoints")
        with audit.AuditLog(path, signing_key=key, checkpoint_every=10,
                            checkpoint_mirrors=[mirror]) as log:
            for i in range(20):
                log.append("x.y", resource=str(i))
        old = (path.read_bytes(), cp.read_bytes())
        with audit.AuditLog(path, signing_key=key, checkpoint_every=10,
                            checkpoint_mirrors=[mirror]) as log:
            for i in range(15):
                log.append("x.y", resource=str(20 + i))
        assert audit.verify(path, public_key=public, anchors=[mirror]).records == 35
        path.write_bytes(old[0])
        cp.write_bytes(old[1])
        assert audit.verify(path, public_key=public).records == 20  # alone: undetectable
        with pytest.raises(TruncationError) as info:
            audit.verify(path, public_key=public, anchors=[mirror])
        assert info.value.sequence == 20
        assert main(["audit", "verify", str(path), "--public-key", str(public),
                     "--anchor", str(mirror)]) == 1

    def test_a_mirror_that_cannot_be_written_fails_the_appends_it_should_cover(
        self, tmp_path: Path, keyfiles: tuple[Path, Path, object]
    ) -> None:
        """Fail closed: when a checkpoint cannot be mirrored, the appends of that write
        raise AuditWriteError (their records are in the log; the writer stays usable)."""
        _, public, key = keyfiles

        class Down:
            def add(self, line: bytes) -> None:
                raise ft.errors.AuditWriteError("mirror is down")

            def read_checkpoints(self) -> list[bytes]:
                return []

            def close(self) -> None:
                pass

        path = tmp_path / "a.jsonl"
        log = audit.AuditLog(path, signing_key=key, checkpoint_every=2, durability="fsync",
                             checkpoint_mirrors=[Down()])
        log.append("x.y")
        with pytest.raises(ft.errors.AuditWriteError, match="mirror is down"):
            log.append("x.y")
        log.append("x.y")
        with pytest.raises(ft.errors.AuditWriteError, match="mirror is down"):
            log.close()
        assert audit.verify(path, public_key=public).records == 3

    def test_a_log_diverging_from_a_trusted_head_fails(
        self, tmp_path: Path, keyfiles: tuple[Path, Path, object]
    ) -> None:
        """A size/root kept elsewhere catches a rolled-back log re-grown to the same size
        with other records (even re-signed by the key holder)."""
        _, public, key = keyfiles
        path = _closed_log(tmp_path, key, 20)
        old = (path.read_bytes(), Path(f"{path}.checkpoints").read_bytes())
        with audit.AuditLog(path, signing_key=key) as log:
            for i in range(10):
                log.append("x.y", resource=f"first-{i}")
        report = audit.verify(path, public_key=public)
        trusted = audit.TrustedHead(report.records, report.root)
        path.write_bytes(old[0])
        Path(f"{path}.checkpoints").write_bytes(old[1])
        with audit.AuditLog(path, signing_key=key) as log:
            for i in range(10):
                log.append("x.y", resource=f"other-{i}")
        assert audit.verify(path, public_key=public).records == 30
        with pytest.raises(RecordModifiedError):
            audit.verify(path, public_key=public, anchors=[trusted])
        assert main(["audit", "verify", str(path), "--public-key", str(public),
                     "--trusted-size", "30", "--trusted-root", report.root]) == 1
        with pytest.raises(TruncationError):  # and one shorter than the anchor
            audit.verify(path, public_key=public,
                         anchors=[audit.TrustedHead(31, report.root)])

    def test_a_mirror_that_disagrees_with_the_log_checkpoints_fails(
        self, tmp_path: Path, keyfiles: tuple[Path, Path, object]
    ) -> None:
        """A mirror whose signed checkpoint of some size disagrees with the log's own fails."""
        _, public, key = keyfiles
        a = _closed_log(tmp_path / "a", key, 10)
        b = _closed_log(tmp_path / "b", key, 10, resource="other")
        with pytest.raises(RecordModifiedError, match="diverge"):
            audit.verify(a, public_key=public, anchors=[Path(f"{b}.checkpoints")])


class TestWritersAndKeys:
    """Writers holding key material; the key holder."""

    def test_writers_with_their_own_keys_verify_with_all_keys_only(self, tmp_path: Path) -> None:
        """Keyed per writer: each writer trusts its peers' public keys; verify needs every
        writer's key, and a record signed by a key not given is reported as forged."""
        k1, k2 = audit.generate_key(), audit.generate_key()
        path = tmp_path / "a.jsonl"
        one = audit.AuditLog(path, signing_key=k1, peer_keys=[k2.public_key()],
                             durability="fsync")
        two = audit.AuditLog(path, signing_key=k2, peer_keys=[k1.public_key()],
                             durability="fsync")
        one.append("x.y", actor="one")
        two.append("x.y", actor="two")
        one.append("x.y", actor="one")
        two.close()
        one.close()
        report = audit.verify(path, public_key=[k1.public_key(), k2.public_key()])
        assert (report.records, report.writer_signatures) == (3, 3)
        with pytest.raises((ForgedRecordError, CheckpointSignatureError)):
            audit.verify(path, public_key=k1.public_key())

    def test_a_writer_without_a_peer_key_refuses_another_writers_records(
        self, tmp_path: Path
    ) -> None:
        """A writer that does not trust a second key stops at that key's records."""
        k1, k2 = audit.generate_key(), audit.generate_key()
        path = tmp_path / "a.jsonl"
        with audit.AuditLog(path, signing_key=k2, durability="fsync") as log:
            log.append("x.y")
        with pytest.raises(ForgedRecordError, match="not among the trusted keys"):
            audit.AuditLog(path, signing_key=k1)

    def test_a_keyless_writer_refuses_to_extend_a_signed_log(self, tmp_path: Path) -> None:
        """Unsigned records after signed ones would be reported as forged: refuse early."""
        key = audit.generate_key()
        path = _closed_log(tmp_path, key, 3)
        with pytest.raises(ft.errors.AuditWriteError, match="signing_key"):
            audit.AuditLog(path)

    def test_the_key_holder_is_not_caught_without_an_outside_anchor(
        self, tmp_path: Path, keyfiles: tuple[Path, Path, object]
    ) -> None:
        """The limit the table states: whoever holds the key (or runs code in the writer
        process) can write a rewritten history that verifies on its own."""
        _, public, key = keyfiles
        path = _closed_log(tmp_path, key, 10)
        path.unlink()
        Path(f"{path}.checkpoints").unlink()
        with audit.AuditLog(path, signing_key=key) as log:
            for i in range(10):
                log.append("patient.read", resource=f"patients/{i}", actor="innocent")
        assert audit.verify(path, public_key=public).records == 10


class TestOutsideClient:
    """An outside client controls field values that reach append()."""

    def test_field_values_cannot_break_out_of_their_record(self, tmp_path: Path) -> None:
        """Newlines, quotes and forged JSON in a value stay inside one canonical string."""
        key = audit.generate_key()
        path = tmp_path / "a.jsonl"
        hostile = 'x"}\n{"hash":"' + "0" * 64 + '","record":{"event":{"action":"fake"}}}\n'
        with audit.AuditLog(path, signing_key=key) as log:
            log.append("search", resource=hostile, reason="\r\n\u2028")
        assert len(path.read_bytes().splitlines()) == 1
        (event,) = audit.query(path)
        assert event.resource == hostile
        audit.verify(path, public_key=key.public_key(), check_format=True)

    def test_an_oversized_event_is_refused_before_anything_is_written(
        self, tmp_path: Path
    ) -> None:
        """An event that would exceed max_line_bytes raises AuditWriteError; log unchanged."""
        path = tmp_path / "a.jsonl"
        with audit.AuditLog(path, max_line_bytes=4096) as log:
            log.append("x.y", details={"note": "a" * 3000})
            with pytest.raises(ft.errors.AuditWriteError, match="max_line_bytes"):
                log.append("x.y", details={"note": "a" * 5000})
            assert log.size == 1
        assert len(path.read_bytes().splitlines()) == 1


def _closed_log(directory: Path, key: object, count: int, resource: str = "patients") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "a.jsonl"
    with audit.AuditLog(path, signing_key=key, checkpoint_every=10, durability="group") as log:
        for i in range(count):
            log.append("patient.read", resource=f"{resource}/{i}", wait=i % 4 == 3)
    return path


def _rechain(data: bytes, at: int, **changes: str) -> bytes:
    """Rewrite record ``at`` and recompute every later hash (no key: signatures dropped)."""
    lines = data.splitlines(keepends=True)
    prev = json.loads(lines[at - 1])["hash"] if at else "0" * 64
    out = lines[:at]
    for index in range(at, len(lines)):
        event = json.loads(lines[index])["record"]["event"]
        if index == at:
            event.update(changes)
        line, prev = make_line(audit.canonical(event), prev, index)
        out.append(line)
    assert hashlib.sha256(b"".join(out)).digest() != hashlib.sha256(data).digest()
    return b"".join(out)


def test_every_verification_failure_is_an_audit_verification_error() -> None:
    """The new failure kinds stay inside the tree callers already catch."""
    assert issubclass(ForgedRecordError, AuditVerificationError)
    assert issubclass(ft.errors.OversizedLineError, AuditVerificationError)
    assert issubclass(ft.errors.OversizedLineError, ValueError)


@pytest.fixture(scope="module")
def base_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, Any]:
    key = audit.generate_key()
    path = _closed_log(tmp_path_factory.mktemp("base"), key, 12)
    return path.read_bytes(), Path(f"{path}.checkpoints").read_bytes(), key


json_scalars = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text()
events = st.dictionaries(st.text(max_size=8), json_scalars, max_size=5).map(
    lambda d: {**d, "action": "forged"})


@given(event=events, fake_sig=st.none() | st.binary(min_size=64, max_size=64),
       fake_key=st.booleans())
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_correctly_chained_append_without_the_key_is_refused(
    base_log: tuple[bytes, bytes, Any], tmp_path: Path, event: dict[str, Any],
    fake_sig: bytes | None, fake_key: bool,
) -> None:
    """Whatever event an attacker chains onto the log — unsigned, or with a made-up writer
    signature under the real or another key id — the next writer refuses it and verify
    reports it as forged at its sequence."""
    data, checkpoints, key = base_log
    path = tmp_path / f"{uuid.uuid4().hex}.jsonl"
    Path(f"{path}.checkpoints").write_bytes(checkpoints)
    last = json.loads(data.splitlines()[-1])
    line, _ = make_line(audit.canonical(event), last["hash"], 12)
    if fake_sig is not None:
        key_id = "0123456789abcdef" if fake_key else audit.key_id(key.public_key())
        line = line[:-2] + writer_member(key_id, fake_sig.hex()) + b"}\n"
    path.write_bytes(data + line)
    with pytest.raises(ForgedRecordError) as writer:
        audit.AuditLog(path, signing_key=key)
    with pytest.raises(ForgedRecordError) as verifier:
        audit.verify(path, public_key=key.public_key(), allow_unsealed=1)
    assert writer.value.sequence == verifier.value.sequence == 12
    assert path.read_bytes() == data + line
