"""The incremental chain checker shared by :func:`~flowtrace.audit.verify` and writers.

A :class:`Verifier` keeps only the head hash, the Merkle frontier, the next expected
sequence and how far writer signatures reach, so a copy taken at a line boundary can
resume on any continuation. A writer uses one to check what other processes appended
before it chains after it.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from ..errors import (
    ForgedRecordError,
    RecordDeletedError,
    RecordInsertedError,
    RecordModifiedError,
    RecordReorderedError,
    TruncationError,
)
from ._checkpoint import Checkpoint
from ._lines import DEFAULT_MAX_LINE, LineReader
from ._merkle import Frontier
from ._record import (
    ACC_GENESIS,
    GENESIS,
    WRITER_DOMAIN,
    WRITER_LEN,
    WRITER_MID,
    WRITER_OPEN,
    CanonicalError,
    check_canonical,
    writer_of,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = ["Verifier"]

_sha256 = hashlib.sha256
_Pending = tuple[str, bytes, bytes, bytes, int, int]
"""A writer signature not yet checked: key id, signature, record hash (hex), accumulator
before it, its sequence, the first record it vouches for."""
_OPEN_AT = -1 - WRITER_LEN
_KEY_AT = _OPEN_AT + len(WRITER_OPEN)
_MID_AT = _KEY_AT + 16
_SIG_AT = _MID_AT + len(WRITER_MID)


def _writer_fast(line: bytes) -> tuple[str, bytes] | None:
    """``(key id, raw signature)`` of a signed line by slicing; None unless exactly the
    canonical layout (lowercase hex), like :func:`writer_of`."""
    key = line[_KEY_AT:_MID_AT]
    sig_hex = line[_SIG_AT:-3]
    if line[_OPEN_AT:_KEY_AT] != WRITER_OPEN or line[_MID_AT:_SIG_AT] != WRITER_MID:
        return None
    try:
        sig = bytes.fromhex(sig_hex.decode("ascii"))
        key_id = bytes.fromhex(key.decode("ascii")).hex()
    except (ValueError, UnicodeDecodeError):
        return None
    if len(sig) != 64 or sig.hex().encode() != sig_hex or key_id.encode() != key:
        return None
    return key_id, sig
_KEYS = frozenset({"event", "prev", "seq", "v"})
_TAILS = {1: b',"v":1}', 2: b',"v":2}'}


class Verifier:
    """Incremental verifier: :meth:`feed` bytes in order, then :meth:`finish`.

    ``checkpoints`` (by size) are checked against the records as they pass. With
    ``writer_keys`` (key id -> Ed25519 public key) writer signatures are checked and
    :meth:`finish` demands that the last record is covered by one; ``None`` checks the
    chain only. Each signature also covers every earlier one (through the signature
    accumulator), so by default only the last signature of each run of one key is
    verified with Ed25519 — one check vouches for the whole run, bytes included;
    ``strict`` verifies every signature at its line (to name the first bad one). With
    ``check_format`` every record is also parsed and checked to be RFC 8785 JSON
    (tampering is caught either way: any changed byte breaks a hash).
    """

    __slots__ = (
        "_acc",
        "_check_format",
        "_checkpoints",
        "_frontier",
        "_head",
        "_keys",
        "_last_good",
        "_pending",
        "_reader",
        "_strict",
        "_tail",
        "_unchecked",
        "signatures",
        "signed",
        "version",
    )

    def __init__(
        self,
        checkpoints: dict[int, Checkpoint] | None = None,
        *,
        check_format: bool = False,
        writer_keys: dict[str, Ed25519PublicKey] | None = None,
        max_line: int = DEFAULT_MAX_LINE,
        strict: bool = False,
    ) -> None:
        self._checkpoints = checkpoints or {}
        self._strict = strict
        self._acc = ACC_GENESIS
        self._unchecked: _Pending | None = None
        self._check_format = check_format
        self._keys = writer_keys
        self._frontier = Frontier()
        self._head = GENESIS.encode()
        self._reader = LineReader(max_line)
        self._pending: int | None = None
        self._last_good = 0
        self._tail = b""
        self.version: int | None = None
        """Record format of the log (1 or 2), known after its first record."""
        self.signed = 0
        """Records covered by the latest valid writer signature (0: none yet)."""
        self.signatures = 0
        """Writer signatures seen (and checked, with ``writer_keys``)."""

    @classmethod
    def resume(
        cls, frontier: Frontier, head: str, acc: bytes, *,
        writer_keys: dict[str, Ed25519PublicKey] | None, max_line: int, offset: int = 0,
    ) -> Verifier:
        """A verifier continuing after ``frontier.size`` records whose last hash is ``head``
        and whose signature accumulator is ``acc``."""
        verifier = cls(writer_keys=writer_keys, max_line=max_line)
        verifier._frontier = frontier.copy()
        verifier._head = head.encode("ascii")
        verifier._acc = acc
        verifier._reader.offset = offset
        verifier.signed = frontier.size
        if frontier.size:
            verifier._set_version(2)
        return verifier

    @property
    def records(self) -> int:
        """Records verified so far."""
        return self._frontier.size

    @property
    def head(self) -> str:
        """Hash (hex) of the last verified record."""
        return self._head.decode("ascii")

    @property
    def acc(self) -> bytes:
        """The signature accumulator after the verified records."""
        return self._acc

    @property
    def frontier(self) -> Frontier:
        """The Merkle frontier over the verified records (do not modify)."""
        return self._frontier

    def copy(self) -> Verifier:
        """An independent verifier in the same state."""
        other = Verifier(self._checkpoints, check_format=self._check_format,
                         writer_keys=self._keys, strict=self._strict)
        other._acc = self._acc
        other._unchecked = self._unchecked
        other._frontier = self._frontier.copy()
        other._head = self._head
        other._reader = LineReader(self._reader._max, self._reader.offset)
        pending = self._reader.pending
        if pending:
            other._reader.feed(pending)
        other._pending = self._pending
        other._last_good = self._last_good
        other._tail = self._tail
        other.version = self.version
        other.signed = self.signed
        other.signatures = self.signatures
        return other

    def _set_version(self, version: int) -> None:
        self.version = version
        self._tail = _TAILS[version]

    def feed(self, data: bytes) -> None:
        """Verify every complete line in ``data`` (a partial last line is kept for later)."""
        lines = self._reader.feed(data)
        if self._pending is not None or self._check_format or self.version is None:
            for item in lines:
                self.line(item)
            return
        # Fast path for well-formed records: one comparison checks prev, seq and version;
        # a signed line also needs its writer member well formed. Anything unexpected goes
        # through line(), which names the problem.
        sha = _sha256
        frontier = self._frontier
        nodes = frontier.nodes
        checkpoints = self._checkpoints
        head = self._head
        size = frontier.size
        tail = b',"prev":"%b","seq":%d' + self._tail
        signed_end = -1 - WRITER_LEN
        for position, line in enumerate(lines):
            writer = None
            if line[-3:] == b'"}}':
                writer = _writer_fast(line)
                body = line[84:signed_end]
            else:
                body = line[84:-1]
            digest = sha(body).digest()
            digest_hex = digest.hex().encode()
            if not (
                line[9:73] == digest_hex
                and line[:9] == b'{"hash":"'
                and line[73:94] == b'","record":{"event":{'
                and line[-1:] == b"}"
                and body.endswith(tail % (head, size))
                and (writer is not None or line[-3:] != b'"}}')
                and (writer is None or self.version == 2)
            ):
                frontier.size = size
                self._head = head
                self.line(line)
                if self._pending is not None:
                    for item in lines[position + 1 :]:
                        self.line(item)
                    return
                head = self._head
                size = frontier.size
                continue
            if writer is not None:
                self._check_writer(writer, digest_hex, size)
            node = sha(b"\x00" + digest).digest()
            bits = size
            while bits & 1:
                node = sha(b"\x01" + nodes.pop() + node).digest()
                bits >>= 1
            nodes.append(node)
            size += 1
            head = digest_hex
            if size in checkpoints:
                frontier.size = size
                self._check_checkpoint(checkpoints[size], digest_hex, size - 1)
        frontier.size = size
        self._head = head

    def _check_checkpoint(self, checkpoint: Checkpoint, digest_hex: bytes, seq: int) -> None:
        if (checkpoint.head and checkpoint.head.encode() != digest_hex) or (
            checkpoint.root != self._frontier.root().hex()
        ):
            raise RecordModifiedError(
                f"records {self._last_good}..{seq} do not match the signed checkpoint "
                f"at size {checkpoint.size}: they were rewritten after signing",
                sequence=self._last_good,
            )
        self._last_good = checkpoint.size

    def line(self, line: bytes) -> None:
        """Verify one record line (without its newline)."""
        expected = self._frontier.size
        writer = writer_of(line)
        end = -1 - WRITER_LEN if writer is not None else -1
        if (
            line[:9] != b'{"hash":"'
            or line[73:84] != b'","record":'
            or line[-1:] != b"}"
            or line[84:94] != b'{"event":{'
        ):
            raise RecordModifiedError(
                f"the line holding record {expected} is not a well-formed audit record "
                "(edited, or not an audit log)",
                sequence=expected,
            )
        body = line[84:end]
        digest = _sha256(body).digest()
        digest_hex = digest.hex().encode()
        if line[9:73] != digest_hex:
            raise RecordModifiedError(
                f"record {expected} was modified: its content does not match its hash",
                sequence=expected,
            )
        # The envelope after the event is fixed: ,"prev":"<64 hex>","seq":<int>,"v":<1|2>}
        at = body.rfind(b',"prev":"')
        seq_text = body[at + 81 : -7]
        version = 1 if body[-7:] == _TAILS[1] else 2 if body[-7:] == _TAILS[2] else 0
        if (
            at < 0
            or body[at + 73 : at + 81] != b'","seq":'
            or not version
            or (version == 1 and writer is not None)
            or not seq_text.isdigit()
            or (seq_text[0] == 48 and len(seq_text) > 1)
        ):
            raise RecordModifiedError(
                f"record {expected} does not have a record shape (event, prev, seq, v=1|2)",
                sequence=expected,
            )
        if self.version is None:
            self._set_version(version)
        elif version != self.version:
            raise RecordModifiedError(
                f"record {expected} is format {version} in a format-{self.version} log: "
                "writers never mix formats in one log",
                sequence=expected,
            )
        if self._check_format:
            self._check_canonical(body, expected)
        seq = int(seq_text)
        if self._pending is not None:
            missing = self._pending
            if seq == missing:
                raise RecordReorderedError(
                    f"record {missing} appears after record {missing + 1}: records were "
                    "reordered",
                    sequence=missing,
                )
            raise RecordDeletedError(
                f"record {missing} is missing: the log jumps from {missing - 1} to a later "
                "record",
                sequence=missing,
            )
        if seq != expected:
            if seq > expected:
                # A deletion or a swap; the next line tells which.
                self._pending = expected
                return
            raise RecordInsertedError(
                f"a record claiming sequence {seq} appears where record {expected} belongs: "
                "it was inserted or duplicated",
                sequence=expected,
            )
        if body[at + 9 : at + 73] != self._head:
            raise RecordInsertedError(
                f"record {expected} does not chain to record {expected - 1} (prev hash "
                "differs): it was inserted, or an earlier record was rewritten",
                sequence=expected,
            )
        if writer is not None:
            self._check_writer((writer[0], bytes.fromhex(writer[1])), digest_hex, expected)
        self._frontier.append(digest)
        self._head = digest_hex
        checkpoint = self._checkpoints.get(expected + 1)
        if checkpoint is not None:
            self._check_checkpoint(checkpoint, digest_hex, expected)

    def _check_writer(self, writer: tuple[str, bytes], digest_hex: bytes, seq: int) -> None:
        key_id, sig = writer
        self.signatures += 1
        if self._keys is not None:
            if key_id not in self._keys:
                raise ForgedRecordError(
                    f"record {seq} (vouching for records {self.signed}..{seq}) is signed by "
                    f"writer key {key_id}, which is not among the trusted keys: written by "
                    "someone else, or pass that key too",
                    sequence=seq,
                )
            pending = (key_id, sig, digest_hex, self._acc, seq, self.signed)
            if self._strict:
                self._verify(pending)
            else:
                if self._unchecked is not None and self._unchecked[0] != key_id:
                    self._verify(self._unchecked)  # the last signature of a key's run
                self._unchecked = pending
        self._acc = _sha256(self._acc + sig).digest()
        self.signed = seq + 1

    def _verify(self, pending: _Pending) -> None:
        from cryptography.exceptions import InvalidSignature

        assert self._keys is not None
        key_id, sig, digest_hex, acc, seq, first = pending
        try:
            self._keys[key_id].verify(sig, WRITER_DOMAIN + digest_hex + acc.hex().encode())
        except InvalidSignature as exc:
            raise ForgedRecordError(
                f"the writer signature on record {seq} does not verify: it (or, as it covers "
                f"them, an earlier writer signature) was forged or edited; it should vouch "
                f"for records {first}..{seq}",
                sequence=seq,
            ) from exc

    @staticmethod
    def _check_canonical(body: bytes, expected: int) -> None:
        try:
            record = check_canonical(body)
        except CanonicalError as exc:
            raise RecordModifiedError(
                f"record {expected} is not canonical JSON ({exc})", sequence=expected
            ) from exc
        if type(record) is not dict or record.keys() != _KEYS:
            raise RecordModifiedError(
                f"record {expected} has fields other than event, prev, seq and v",
                sequence=expected,
            )

    def check_attributed(self) -> None:
        """Raise :class:`ForgedRecordError` unless a valid writer signature covers every
        record (verifies the last, still unchecked signature)."""
        if self._unchecked is not None:
            self._verify(self._unchecked)
            self._unchecked = None
        size = self._frontier.size
        if self._keys is not None and self.version == 2 and self.signed < size:
            raise ForgedRecordError(
                f"records {self.signed}..{size - 1} are not covered by any writer signature: "
                f"appended by someone without the writer key (or by a write cut short by a "
                f"crash: see `flowtrace audit recover`)",
                sequence=self.signed,
            )

    def finish(self) -> tuple[int, str, str]:
        """Check the end of the stream; returns ``(records, head hex, root hex)``."""
        size = self._frontier.size
        if self._pending is not None:
            raise RecordDeletedError(
                f"record {self._pending} is missing: the log jumps past it", sequence=size
            )
        if self._reader.pending:
            raise TruncationError(
                f"the log ends in an incomplete line where record {size} should be (torn "
                "write or truncation); if a writer crashed, run `flowtrace audit recover`",
                sequence=size,
            )
        signed = max(self._checkpoints, default=0)
        if signed > size:
            raise TruncationError(
                f"the log holds {size} records but a checkpoint covers {signed}: "
                f"records {size}..{signed - 1} were cut off",
                sequence=size,
            )
        self.check_attributed()
        return size, self._head.decode(), self._frontier.root().hex()
