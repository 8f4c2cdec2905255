"""`recover` checks its key before touching anything and records what it cut (issue 10
item 4); lines are read in linear time with bounded memory and a configurable bound
(item 5)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowtrace import audit
from flowtrace.audit._lines import LineReader, iter_lines
from flowtrace.cli import main
from flowtrace.errors import (
    AuditCorruptedError,
    AuditWriteError,
    ConfigError,
    ForgedRecordError,
    OversizedLineError,
    RecordModifiedError,
)


def _log(path: Path, key: object, count: int = 10) -> None:
    with audit.AuditLog(path, signing_key=key, durability="fsync") as log:
        for i in range(count):
            log.append("patient.read", subject=str(i))


def _files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.parent.iterdir()) if p.is_file()}


class TestRecover:
    """The repair path is fail-closed and leaves a record of itself."""

    @pytest.mark.parametrize("bad", ["not a key", b"-----BEGIN PRIVATE KEY-----\nxx\n"])
    def test_a_bad_key_is_refused_before_the_file_is_touched(
        self, tmp_path: Path, bad: str | bytes
    ) -> None:
        """Issue 10 item 4 (fails before: the torn tail was cut, then the key failed to
        load and no audit.recovered record was written). Nothing changes on disk."""
        path = tmp_path / "a.jsonl"
        key = audit.generate_key()
        _log(path, key)
        with open(path, "ab") as f:
            f.write(b'{"hash":"00","rec')
        before = _files(path)
        with pytest.raises(ConfigError, match="private key"):
            audit.recover(path, signing_key=bad)
        assert _files(path) == before

    def test_another_valid_key_is_refused_before_the_file_is_touched(
        self, tmp_path: Path
    ) -> None:
        """A well-formed key that is not the log's key would sign a repair nobody can
        verify: refused, naming both key ids; nothing changes."""
        path = tmp_path / "a.jsonl"
        key = audit.generate_key()
        _log(path, key)
        with open(path, "ab") as f:
            f.write(b'{"hash":"00","rec')
        before = _files(path)
        with pytest.raises(ConfigError, match="not the key that signs"):
            audit.recover(path, signing_key=audit.generate_key())
        with pytest.raises(ConfigError, match="pass its signing key"):
            audit.recover(path)
        assert _files(path) == before

    def test_a_complete_last_record_without_its_newline_is_completed_not_cut(
        self, tmp_path: Path
    ) -> None:
        """A whole, signed last record that only lacks its newline is kept; the repair is
        recorded (cut 0 bytes) and the log verifies with it."""
        path = tmp_path / "a.jsonl"
        key = audit.generate_key()
        _log(path, key, 5)
        data = path.read_bytes()
        path.write_bytes(data[:-1])
        Path(f"{path}.checkpoints").write_bytes(b"")  # (a crash before its checkpoint)
        report = audit.recover(path, signing_key=key)
        assert (report.completed, report.cut_bytes, report.sequence) == (True, 0, 5)
        assert path.read_bytes().startswith(data)
        (event,) = audit.query(path, action="audit.recovered")
        assert (event.details["cut_bytes"], event.details["completed_last_line"]) == (0, True)
        assert audit.verify(path, public_key=key.public_key()).records == 6

    def test_unsigned_complete_records_are_cut_only_when_asked_and_always_recorded(
        self, tmp_path: Path
    ) -> None:
        """Complete records no signature covers (a write cut short, or appended without the
        key) stop recover by default; with cut_unattributed they are moved out, saved,
        and the audit.recovered record states their bytes, hash and count."""
        from tests.test_audit_threats import ATTACKER

        path = tmp_path / "a.jsonl"
        key = audit.generate_key()
        _log(path, key, 5)
        size = path.stat().st_size
        for _ in range(2):
            subprocess.run([sys.executable, "-c", ATTACKER, str(path)], check=True,
                           capture_output=True)
        cut = path.read_bytes()[size:]
        before = _files(path)
        with pytest.raises(ForgedRecordError, match=r"5\.\.6") as info:
            audit.recover(path, signing_key=key)
        assert info.value.sequence == 5
        assert _files(path) == before
        report = audit.recover(path, signing_key=key, cut_unattributed=True)
        assert (report.cut_bytes, report.cut_records, report.sequence) == (len(cut), 2, 5)
        assert report.saved_to is not None
        assert Path(report.saved_to).read_bytes() == cut
        (event,) = audit.query(path, action="audit.recovered")
        assert event.details["cut_sha256"] == hashlib.sha256(cut).hexdigest()
        assert (event.details["cut_bytes"], event.details["cut_records"]) == (len(cut), 2)
        assert audit.verify(path, public_key=key.public_key()).records == 6

    def test_recover_never_repairs_tampering(self, tmp_path: Path) -> None:
        """An edited record in the middle is a verification failure, not a repair."""
        path = tmp_path / "a.jsonl"
        key = audit.generate_key()
        _log(path, key, 5)
        path.write_bytes(path.read_bytes().replace(b'"subject":"2"', b'"subject":"9"'))
        before = _files(path)
        with pytest.raises(RecordModifiedError):
            audit.recover(path, signing_key=key)
        assert _files(path) == before

    def test_cli_recover_with_a_bad_key_exits_1_and_changes_nothing(
        self, tmp_path: Path
    ) -> None:
        """`flowtrace audit recover --private-key <garbage>` fails closed."""
        path = tmp_path / "a.jsonl"
        _log(path, audit.generate_key(), 3)
        with open(path, "ab") as f:
            f.write(b'{"ha')
        garbage = tmp_path / "k.pem"
        garbage.write_text("nope")
        before = _files(path)
        assert main(["audit", "recover", str(path), "--private-key", str(garbage)]) == 1
        assert _files(path) == before


class TestLineBound:
    """Huge lines are refused in bounded memory, naming their offset."""

    BIG = 40 << 20  # a 40 MB line: test-friendly, far above the configured bound

    def _log_with_a_huge_line(self, tmp_path: Path) -> tuple[Path, object, int]:
        path = tmp_path / "a.jsonl"
        key = audit.generate_key()
        _log(path, key, 3)
        offset = path.stat().st_size
        with open(path, "ab") as f:
            f.write(b'{"hash":"' + b"a" * self.BIG + b'"}\n')
        return path, key, offset

    def test_verify_refuses_a_huge_line_in_bounded_memory(self, tmp_path: Path) -> None:
        """Issue 10 item 5 (fails before: the whole line was buffered, quadratically).
        A 40 MB line with max_line_bytes=64 KiB raises OversizedLineError naming the byte
        offset where it starts; peak memory stays a few MiB."""
        path, key, offset = self._log_with_a_huge_line(tmp_path)
        tracemalloc.start()
        try:
            with pytest.raises(OversizedLineError) as info:
                audit.verify(path, public_key=key.public_key(), max_line_bytes=64 << 10)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert info.value.offset == offset
        assert f"byte {offset}" in str(info.value)
        assert peak < 8 << 20, peak

    def test_a_writer_refuses_a_huge_line_written_by_someone_else(self, tmp_path: Path) -> None:
        """The writer's catch-up read (under the lock) is bounded the same way."""
        path, key, offset = self._log_with_a_huge_line(tmp_path)
        tracemalloc.start()
        try:
            with pytest.raises(OversizedLineError) as info:
                audit.AuditLog(path, signing_key=key, max_line_bytes=64 << 10)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert info.value.offset == offset
        assert peak < 8 << 20, peak

    def test_queries_and_the_cli_refuse_it_too(self, tmp_path: Path) -> None:
        """query() and `audit verify --max-line-bytes` use the same bounded reader."""
        path, key, _ = self._log_with_a_huge_line(tmp_path)
        with pytest.raises(OversizedLineError):
            list(audit.query(path, max_line_bytes=64 << 10))
        pub = tmp_path / "k.pub"
        pub.write_bytes(audit.public_key_pem(key.public_key()))  # type: ignore[attr-defined]
        assert main(["audit", "verify", str(path), "--public-key", str(pub),
                     "--max-line-bytes", str(64 << 10)]) == 1

    def test_the_default_bound_is_one_mebibyte(self, tmp_path: Path) -> None:
        """Without configuration, a line over 1 MiB is refused as well."""
        path, key, offset = self._log_with_a_huge_line(tmp_path)
        with pytest.raises(OversizedLineError) as info:
            audit.verify(path, public_key=key.public_key())
        assert info.value.offset == offset

    def test_a_bound_below_256_bytes_is_a_config_error(self) -> None:
        """A bound no record fits in is refused."""
        with pytest.raises(ConfigError, match="max_line_bytes"):
            LineReader(100)

    @given(
        st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=30),
        st.lists(st.integers(1, 64), min_size=1, max_size=10),
    )
    @settings(max_examples=200, deadline=None)
    def test_any_chunking_gives_the_same_lines_and_offsets(
        self, lines: list[bytes], cuts: list[int]
    ) -> None:
        """Lines and offsets do not depend on how the stream is cut into chunks."""
        data = b"".join(line + b"\n" for line in lines)
        chunks, at, i = [], 0, 0
        while at < len(data):
            step = cuts[i % len(cuts)]
            chunks.append(data[at : at + step])
            at += step
            i += 1
        got = list(iter_lines(chunks, 256))
        offsets = [sum(len(x) + 1 for x in lines[:k]) for k in range(len(lines))]
        assert got == list(zip(offsets, lines, strict=True))

    @given(st.integers(257, 2000), st.integers(1, 700))
    @settings(max_examples=100, deadline=None)
    def test_a_line_one_byte_over_the_bound_is_refused_at_any_chunking(
        self, bound: int, chunk: int
    ) -> None:
        """Exactly ``bound`` bytes pass; ``bound + 1`` raise, at the line's offset."""
        ok = b"x" * bound + b"\n"
        over = b"y" * (bound + 1) + b"\n"
        data = ok + over
        reader = LineReader(bound)
        seen: list[bytes] = []

        def feed_all() -> None:
            for at in range(0, len(data), chunk):
                seen.extend(reader.feed(data[at : at + chunk]))

        with pytest.raises(OversizedLineError) as info:
            feed_all()
        assert info.value.offset == len(ok)
        assert seen in ([], [ok[:-1]])


def test_a_torn_tail_still_blocks_writers(tmp_path: Path) -> None:
    """Unchanged behaviour: a writer refuses a file ending in a torn line."""
    path = tmp_path / "a.jsonl"
    key = audit.generate_key()
    _log(path, key, 2)
    with open(path, "ab") as f:
        f.write(json.dumps({"hash": "x"}).encode())
    with pytest.raises(AuditCorruptedError, match="recover"):
        audit.AuditLog(path, signing_key=key)


def test_recover_leaves_a_format_1_log_untouched(tmp_path: Path) -> None:
    """A format-1 log (flowtrace 0.1) cannot get a format-2 repair record, so recover
    refuses before cutting anything (it would otherwise cut and then fail)."""
    import shutil

    vectors = Path(__file__).resolve().parent / "vectors" / "audit" / "v1"
    path = tmp_path / "audit.jsonl"
    shutil.copy(vectors / "audit.jsonl", path)
    shutil.copy(vectors / "audit.jsonl.checkpoints", tmp_path / "audit.jsonl.checkpoints")
    with open(path, "ab") as f:
        f.write(b'{"hash":"0')
    before = _files(path)
    test_key = bytes(range(32))
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    with pytest.raises(AuditWriteError, match="format 1"):
        audit.recover(path, signing_key=Ed25519PrivateKey.from_private_bytes(test_key))
    assert _files(path) == before


def test_a_writer_refuses_to_append_to_a_format_1_log(tmp_path: Path) -> None:
    """Format-1 logs stay verifiable but are never extended (their records carry no
    writer signatures, so nothing before a new record could be attributed)."""
    import shutil

    vectors = Path(__file__).resolve().parent / "vectors" / "audit" / "v1"
    path = tmp_path / "audit.jsonl"
    shutil.copy(vectors / "audit.jsonl", path)
    shutil.copy(vectors / "audit.jsonl.checkpoints", tmp_path / "audit.jsonl.checkpoints")
    before = _files(path)
    with pytest.raises(AuditWriteError, match="format 1"):
        audit.AuditLog(path, signing_key=audit.generate_key())
    assert _files(path) == before
    assert audit.verify(path, public_key=vectors / "public_key.pem").format_version == 1
