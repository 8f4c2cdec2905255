"""Tamper evidence over a 1,000-record log: every edit, deletion, swap and truncation is caught.

The exhaustive loops verify each mutated byte stream with a :class:`Verifier` resumed
from the state reached on the (identical) unmodified prefix, so every mutation costs
one or two lines instead of a whole file; a random sample is re-verified from scratch
on disk to show that resuming gives the very same verdict.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import flowtrace as ft
from flowtrace import audit
from flowtrace.audit._checkpoint import Checkpoint
from flowtrace.audit._record import make_line
from flowtrace.audit._sinks.jsonl import checkpoint_path
from flowtrace.audit._verifier import Verifier
from flowtrace.audit._verify import load_checkpoints, load_keys
from flowtrace.errors import (
    AuditVerificationError,
    CheckpointSignatureError,
    RecordDeletedError,
    RecordInsertedError,
    RecordModifiedError,
    RecordReorderedError,
    TruncationError,
)

RECORDS = 1000


@dataclass
class Log:
    path: Path
    key: object
    data: bytes
    lines: list[bytes]  # with newline
    starts: list[int]  # byte offset of each line
    states: list[Verifier]  # verifier state before each line (and one at the end)
    checkpoints: dict[int, Checkpoint]


@pytest.fixture(scope="module")
def log1000(tmp_path_factory: pytest.TempPathFactory) -> Log:
    path = tmp_path_factory.mktemp("tamper") / "audit.jsonl"
    key = audit.generate_key()
    rng = random.Random(6)
    # Group commit without waiting: batches of varying size, each ending in a signed line.
    with audit.AuditLog(path, signing_key=key, checkpoint_every=100, durability="group") as log:
        for i in range(RECORDS):
            with ft.context(tenant=f"t{i % 3}", user=f"u{i % 7}", subject=str(rng.randint(1, 99))):
                log.append(
                    "patient.read" if i % 5 else "patient.update", wait=i % 17 != 0,
                    resource=f"patients/{i}",
                    purpose="care",
                    outcome="denied" if i % 11 == 0 else "success",
                    data_categories=["health"],
                    details={"n": i, "ratio": i / 7, "note": "ünïcødé ✓" if i % 9 == 0 else "x"},
                )
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    assert len(lines) == RECORDS
    checkpoints = load_checkpoints(
        checkpoint_path(path).read_bytes().splitlines(), key.public_key()
    )
    assert max(checkpoints) == RECORDS
    # strict: every writer signature checked at its own line, so each mutation is named
    # where it is (verify() re-reads strictly when the default, lazy check fails).
    verifier = Verifier(checkpoints, writer_keys=load_keys(key.public_key()), strict=True)
    states, starts, offset = [], [], 0
    for line in lines:
        states.append(verifier.copy())
        starts.append(offset)
        verifier.feed(line)
        offset += len(line)
    states.append(verifier.copy())
    verifier.finish()
    return Log(path, key, data, lines, starts, states, checkpoints)


def _run(log: Log, index: int, head: bytes, rest: Iterator[bytes]) -> AuditVerificationError | None:
    """Resume at line ``index``, feed ``head`` then ``rest`` until the verifier objects."""
    verifier = log.states[index].copy()
    try:
        verifier.feed(head)
        for chunk in rest:
            verifier.feed(chunk)
        verifier.finish()
    except AuditVerificationError as exc:
        return exc
    return None


def _after(log: Log, index: int) -> Iterator[bytes]:
    return iter(log.lines[index:])


def test_the_untouched_log_verifies(log1000: Log) -> None:
    """The fixture log itself verifies, sealed, with eleven checkpoints."""
    report = audit.verify(log1000.path, public_key=log1000.key.public_key())
    assert (report.records, report.signed_records, report.unsigned_tail) == (RECORDS, RECORDS, 0)


def test_every_single_byte_modification_is_detected(log1000: Log) -> None:
    """Changing any one byte of the log (to a value that varies with the position) fails
    verification at exactly that record."""
    detected = wrong_place = 0
    for index, line in enumerate(log1000.lines):
        rest = log1000.lines[index + 1 :]
        for at in range(len(line)):
            mutated = bytearray(line)
            mutated[at] = (mutated[at] + 1 + (log1000.starts[index] + at) % 255) % 256
            error = _run(log1000, index, bytes(mutated), iter(rest))
            if error is not None:
                detected += 1
                wrong_place += error.sequence != index
    assert detected == len(log1000.data)
    assert wrong_place == 0


def test_resumed_verdicts_match_full_verification_from_disk(log1000: Log, tmp_path: Path) -> None:
    """For sampled mutations, verifying the whole mutated file gives the resumed verdict."""
    rng = random.Random(1)
    target = tmp_path / "audit.jsonl"
    checkpoint_path(target).write_bytes(checkpoint_path(log1000.path).read_bytes())
    for _ in range(150):
        at = rng.randrange(len(log1000.data))
        index = bisect.bisect_right(log1000.starts, at) - 1
        mutated = bytearray(log1000.data)
        mutated[at] = rng.choice([b for b in range(256) if b != mutated[at]])
        target.write_bytes(bytes(mutated))
        line = bytes(mutated[log1000.starts[index] : log1000.starts[index] + len(
            log1000.lines[index])])
        resumed = _run(log1000, index, line, _after(log1000, index + 1))
        with pytest.raises(AuditVerificationError) as full:
            audit.verify(target, public_key=log1000.key.public_key())
        assert resumed is not None
        assert (type(full.value), full.value.sequence) == (type(resumed), resumed.sequence)


def test_every_record_deletion_is_detected(log1000: Log) -> None:
    """Removing any one record line is caught: as a deletion, or at the end as truncation."""
    kinds: dict[type, int] = {}
    for index in range(RECORDS):
        error = _run(log1000, index, b"", _after(log1000, index + 1))
        assert error is not None, index
        kinds[type(error)] = kinds.get(type(error), 0) + 1
        expected = RecordDeletedError if index < RECORDS - 1 else TruncationError
        assert (type(error), error.sequence) == (expected, index)
    assert sum(kinds.values()) == RECORDS


def test_every_adjacent_swap_is_detected(log1000: Log) -> None:
    """Swapping any two neighbouring records is reported as a reordering at the first."""
    detected = 0
    for index in range(RECORDS - 1):
        swapped = log1000.lines[index + 1] + log1000.lines[index]
        error = _run(log1000, index, swapped, _after(log1000, index + 2))
        assert isinstance(error, RecordReorderedError), index
        assert error.sequence == index
        detected += 1
    assert detected == RECORDS - 1


def test_every_truncation_is_detected(log1000: Log) -> None:
    """Cutting the file at any byte offset (mid-line or between lines) is a truncation."""
    detected = 0
    for length in range(len(log1000.data)):
        index = bisect.bisect_right(log1000.starts, length) - 1
        error = _run(log1000, index, log1000.data[log1000.starts[index] : length], iter(()))
        assert isinstance(error, TruncationError), length
        assert error.sequence == index
        detected += 1
    assert detected == len(log1000.data)


def test_a_duplicated_record_is_an_insertion(log1000: Log) -> None:
    """Replaying an earlier record anywhere later is reported as an insertion."""
    for index in range(1, RECORDS, 37):
        error = _run(log1000, index, log1000.lines[index - 1], _after(log1000, index))
        assert isinstance(error, RecordInsertedError)
        assert error.sequence == index


def test_a_consistently_rehashed_tail_is_caught_by_the_checkpoint(log1000: Log) -> None:
    """Editing record 950 and recomputing every later hash still fails the signed root."""
    import json

    prev = log1000.lines[949][9:73].decode()
    forged = []
    for index in range(950, RECORDS):
        body = json.loads(log1000.lines[index])["record"]
        event = body["event"]
        if index == 950:
            event["outcome"] = "success"
            event["actor"] = "someone-else"
        line, prev = make_line(audit.canonical(event), prev, index)
        forged.append(line)
    error = _run(log1000, 950, b"".join(forged), iter(()))
    assert isinstance(error, RecordModifiedError)
    assert error.sequence == 900  # first record not vouched for by an intact checkpoint


def test_every_single_byte_modification_of_the_checkpoints_is_detected(log1000: Log) -> None:
    """Changing any byte of the checkpoint file fails (signature, format or log mismatch).

    The unchanged checkpoint lines were verified by the fixture; each mutation re-checks
    the mutated line (with the next one when its newline was hit) and, should that pass,
    the whole log against the resulting checkpoint set.
    """
    lines = checkpoint_path(log1000.path).read_bytes().splitlines(keepends=True)
    public = log1000.key.public_key()
    detected = total = 0
    for number, line in enumerate(lines):
        for at in range(len(line)):
            total += 1
            mutated = bytearray(line)
            mutated[at] ^= 0x01
            region = bytes(mutated) + (lines[number + 1] if at == len(line) - 1 and
                                       number + 1 < len(lines) else b"")
            try:
                parts = region.split(b"\n")
                if parts[-1]:
                    raise CheckpointSignatureError("torn checkpoint line")
                changed = load_checkpoints(parts[:-1], public)
                checkpoints = {**log1000.checkpoints, **changed}
                verifier = Verifier(checkpoints, writer_keys=load_keys(public), strict=True)
                verifier.feed(log1000.data)
                verifier.finish()
            except AuditVerificationError:
                detected += 1
    assert detected == total == sum(len(line) for line in lines)


def test_a_wrong_public_key_is_refused(log1000: Log) -> None:
    """Checkpoints signed by another key fail with CheckpointSignatureError."""
    with pytest.raises(CheckpointSignatureError, match="signed by key"):
        audit.verify(log1000.path, public_key=audit.generate_key().public_key())
