"""Inclusion proofs: hand an auditor one record plus a proof that a signed checkpoint covers it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ..errors import AuditVerificationError, RecordModifiedError
from ._checkpoint import Checkpoint, load_public_key
from ._lines import iter_lines
from ._merkle import inclusion_proof as _path
from ._merkle import verify_inclusion as _check_path
from ._record import canonical, check_canonical, split_line

__all__ = ["InclusionProof", "inclusion_proof", "verify_inclusion"]


@dataclass(frozen=True)
class InclusionProof:
    """Record ``sequence`` (its full line) is leaf ``sequence`` under ``checkpoint``'s root.

    Example::

        from flowtrace import audit

        key = audit.generate_key()
        log = audit.AuditLog("audit.jsonl", signing_key=key)
        log.append("patient.read", resource="patients/42")
        log.close()
        proof = audit.inclusion_proof("audit.jsonl", 0, public_key=key.public_key())
        shared = proof.to_json()                         # hand it to whoever must check it
        assert audit.InclusionProof.from_json(shared).sequence == 0
    """

    sequence: int
    record: bytes
    """The record line exactly as stored (without newline)."""
    path: tuple[str, ...]
    """RFC 6962 audit path, hex, bottom-up."""
    checkpoint: Checkpoint

    def to_json(self) -> str:
        """Self-contained JSON an auditor can check with the public key alone."""
        return canonical(
            {
                "checkpoint": json.loads(self.checkpoint.line()),
                "path": list(self.path),
                "record": json.loads(self.record),
                "sequence": self.sequence,
                "v": 1,
            }
        ).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> InclusionProof:
        """Parse :meth:`to_json` output."""
        try:
            data = json.loads(text)
            checkpoint = Checkpoint.parse(canonical(data["checkpoint"]), 1)
            return cls(
                int(data["sequence"]),
                canonical(data["record"]),
                tuple(str(p) for p in data["path"]),
                checkpoint,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditVerificationError(f"malformed inclusion proof: {exc}") from exc


def inclusion_proof(source: Any, sequence: int, *, public_key: Any) -> InclusionProof:
    """Prove record ``sequence`` is covered by the latest checkpoint of ``source``.

    The log is verified in full first (a proof from a broken log would be worthless).

    Example::

        from flowtrace import audit

        key = audit.generate_key()
        log = audit.AuditLog("audit.jsonl", signing_key=key)
        log.append("patient.read", resource="patients/42")
        log.close()
        proof = audit.inclusion_proof("audit.jsonl", 0, public_key=key.public_key())
        assert proof.checkpoint.size == 1
    """
    from ._verify import _source_of, load_checkpoints, verify

    verify(source, public_key=public_key, allow_unsealed=2**62)
    _, chunks, cp_lines = _source_of(source)
    checkpoints = load_checkpoints(cp_lines, public_key)
    covering = [cp for size, cp in checkpoints.items() if size > sequence]
    if not covering:
        raise AuditVerificationError(
            f"no checkpoint covers record {sequence} yet; call log.checkpoint() first",
            sequence=sequence,
        )
    checkpoint = max(covering, key=lambda cp: cp.size)
    hashes: list[bytes] = []
    record = b""
    for _, line in iter_lines(chunks):
        if len(hashes) == sequence:
            record = line
        if len(hashes) < checkpoint.size:
            parts = split_line(line)
            assert parts is not None  # verified above
            hashes.append(bytes.fromhex(parts[0]))
    path = tuple(p.hex() for p in _path(sequence, hashes[: checkpoint.size]))
    return InclusionProof(sequence, record, path, checkpoint)


def verify_inclusion(proof: InclusionProof | str | bytes, *, public_key: Any) -> dict[str, Any]:
    """Check a proof; returns the proven record's event, raises if anything does not hold.

    Example::

        from flowtrace import audit

        key = audit.generate_key()
        log = audit.AuditLog("audit.jsonl", signing_key=key)
        log.append("patient.read", resource="patients/42")
        log.close()
        proof = audit.inclusion_proof("audit.jsonl", 0, public_key=key.public_key()).to_json()
        event = audit.verify_inclusion(proof, public_key=key.public_key())   # raises if forged
        assert event["resource"] == "patients/42"
    """
    if not isinstance(proof, InclusionProof):
        proof = InclusionProof.from_json(proof)
    proof.checkpoint.check(load_public_key(public_key), 1)
    parts = split_line(proof.record)
    if parts is None or hashlib.sha256(parts[1]).hexdigest() != parts[0]:
        raise RecordModifiedError(
            f"record {proof.sequence} in the proof does not match its hash",
            sequence=proof.sequence,
        )
    body = check_canonical(parts[1])
    if body.get("seq") != proof.sequence:
        raise RecordModifiedError(
            f"the proof is for record {proof.sequence} but the record says {body.get('seq')}",
            sequence=proof.sequence,
        )
    if not _check_path(
        proof.sequence,
        proof.checkpoint.size,
        bytes.fromhex(parts[0]),
        [bytes.fromhex(p) for p in proof.path],
        bytes.fromhex(proof.checkpoint.root),
    ):
        raise AuditVerificationError(
            f"record {proof.sequence} is not included under the checkpoint's Merkle root",
            sequence=proof.sequence,
        )
    event: dict[str, Any] = body["event"]
    return event
