"""The stable formats: RFC 8785 canonical JSON, record lines, RFC 6962 Merkle trees,
checkpoints, and the checked-in vectors under tests/vectors/audit/ (docs/spec/audit.md)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowtrace import audit
from flowtrace.audit._merkle import Frontier, inclusion_proof, root_of, verify_inclusion
from flowtrace.audit._record import (
    GENESIS,
    MAX_SAFE_INTEGER,
    CanonicalError,
    canonical,
    check_canonical,
    make_line,
)
from flowtrace.audit._verifier import Verifier
from flowtrace.errors import (
    AuditVerificationError,
    CheckpointSignatureError,
    RecordModifiedError,
)

VECTORS = Path(__file__).resolve().parent / "vectors" / "audit"

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)


class TestCanonicalJson:
    """RFC 8785: one byte sequence per JSON value."""

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (1e30, "1e+30"),
            (4.50, "4.5"),
            (2e-3, "0.002"),
            (0.000000000000000000000000001, "1e-27"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1e-7, "1e-7"),
            (1e-6, "0.000001"),
            (-0.0, "0"),
            (333333333.33333329, "333333333.3333333"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (9007199254740991, "9007199254740991"),
        ],
    )
    def test_numbers_serialize_like_ecmascript(self, value: float, expected: str) -> None:
        """Numbers follow RFC 8785 section 3.2.2.3 (ECMAScript Number.toString)."""
        assert canonical(value).decode() == expected

    def test_keys_sort_by_utf16_code_units(self) -> None:
        """The RFC 8785 section 3.2.3 sorting example comes out in the RFC's order."""
        value = {
            "\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet",
            "1": "One", "\U0001f600": "Emoji", "\u0080": "Control", "\u00f6": "o umlaut",
        }
        order = list(json.loads(canonical(value)))
        assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]

    def test_strings_escape_only_what_json_requires(self) -> None:
        """Controls as \\uXXXX or short escapes, non-ASCII kept as UTF-8, '/' unescaped."""
        assert canonical("a\"\\/\b\f\n\r\t\x01é€😀") == (
            '"a\\"\\\\/\\b\\f\\n\\r\\t\\u0001é€😀"'.encode()
        )

    @pytest.mark.parametrize(
        "value", [math.nan, math.inf, 2**53 + 1, {1: "x"}, b"bytes", "\ud800", object()]
    )
    def test_unrepresentable_values_are_refused(self, value: Any) -> None:
        """NaN, inexact big ints, non-str keys, bytes, lone surrogates raise CanonicalError."""
        with pytest.raises(CanonicalError):
            canonical(value)

    @given(json_values)
    @settings(max_examples=200, deadline=None)
    def test_round_trip_is_stable(self, value: Any) -> None:
        """canonical(parse(canonical(x))) == canonical(x), and check_canonical accepts it."""
        data = canonical(value)
        assert canonical(check_canonical(data)) == data
        assert json.loads(data) == json.loads(canonical(json.loads(data, parse_int=float)))

    @given(st.dictionaries(st.text(max_size=5), json_scalars, min_size=2, max_size=6))
    @settings(max_examples=200, deadline=None)
    def test_non_canonical_spellings_are_rejected(self, value: dict[str, Any]) -> None:
        """Pretty-printed or reordered JSON of the same value is not canonical."""
        data = canonical(value)
        spaced = json.dumps(json.loads(data), indent=1, ensure_ascii=False).encode()
        if spaced != data:
            with pytest.raises(CanonicalError):
                check_canonical(spaced)


class TestRecordLine:
    """A record line hashes its canonical body, which names its predecessor."""

    @given(
        st.dictionaries(st.text(min_size=1, max_size=5), json_scalars, max_size=5),
        st.integers(min_value=0, max_value=10**12),
        st.binary(min_size=32, max_size=32),
    )
    @settings(max_examples=300, deadline=None)
    def test_line_layout_and_hash(self, event: dict[str, Any], seq: int, prev: bytes) -> None:
        """The line is canonical JSON; its hash is SHA-256 of the body bytes."""
        line, digest = make_line(canonical(event), prev.hex(), seq)
        assert line.endswith(b"\n")
        parsed = check_canonical(line[:-1])
        assert parsed["hash"] == digest
        assert parsed["record"] == {"event": event, "prev": prev.hex(), "seq": seq, "v": 2}
        body = canonical(parsed["record"])
        assert hashlib.sha256(body).hexdigest() == digest
        assert canonical(parsed) + b"\n" == line

    @given(st.lists(st.text(max_size=20), min_size=1, max_size=40))
    @settings(max_examples=150, deadline=None)
    def test_any_chain_verifies_and_any_edit_breaks_it(self, actions: list[str]) -> None:
        """A chain built from random events verifies; editing one record's event fails."""
        prev, lines = GENESIS, []
        for seq, action in enumerate(actions):
            line, prev = make_line(canonical({"action": action}), prev, seq)
            lines.append(line)
        verifier = Verifier(check_format=True)
        verifier.feed(b"".join(lines))
        assert verifier.finish()[0] == len(actions)
        victim = len(actions) // 2
        forged = json.loads(lines[victim])
        forged["record"]["event"]["action"] += "!"
        lines[victim] = canonical(forged) + b"\n"
        fresh = Verifier()
        with pytest.raises(RecordModifiedError) as info:
            fresh.feed(b"".join(lines))
        assert info.value.sequence == victim


    @given(st.lists(st.text(max_size=10), max_size=40), st.integers(0, 5))
    @settings(max_examples=100, deadline=None)
    def test_the_writers_inlined_chain_equals_the_reference(
        self, actions: list[str], split: int
    ) -> None:
        """ChainState.extend (the writer's hot loop) matches make_line and the RFC 6962 root."""
        from flowtrace.audit._chain import ChainState

        events = [canonical({"action": a}) for a in actions]
        state = ChainState()
        lines: list[bytes] = []
        for part in (events[:split], events[split:]):
            lines += state.extend(part)[0]
        prev, expected, hashes = GENESIS, [], []
        for seq, event in enumerate(events):
            line, prev = make_line(event, prev, seq)
            expected.append(line)
            hashes.append(bytes.fromhex(prev))
        assert lines == expected
        assert (state.head, state.size) == (prev, len(events))
        assert state.frontier.root() == root_of(hashes)


class TestMerkle:
    """RFC 6962 tree hashes and inclusion proofs."""

    DATA: ClassVar[dict[str, list[str]]] = json.loads((VECTORS / "merkle.json").read_text())
    LEAVES: ClassVar[list[bytes]] = [bytes.fromhex(h) for h in DATA["leaves"]]
    ROOTS: ClassVar[list[str]] = DATA["roots"]

    def test_roots_match_the_rfc6962_reference_vectors(self) -> None:
        """Roots over the Certificate Transparency reference leaves match, size 1..8."""
        for size, expected in enumerate(self.ROOTS, 1):
            assert root_of(self.LEAVES[:size]).hex() == expected

    @given(st.integers(min_value=1, max_value=70), st.data())
    @settings(max_examples=120, deadline=None)
    def test_every_inclusion_proof_verifies_and_only_for_its_leaf(
        self, size: int, data: st.DataObject
    ) -> None:
        """Each leaf's proof checks against the root; another leaf or index does not."""
        leaves = [hashlib.sha256(str(i).encode()).digest() for i in range(size)]
        root = root_of(leaves)
        index = data.draw(st.integers(min_value=0, max_value=size - 1))
        proof = inclusion_proof(index, leaves)
        assert verify_inclusion(index, size, leaves[index], proof, root)
        other = (index + 1) % size
        if other != index:
            assert not verify_inclusion(other, size, leaves[index], proof, root)
            assert not verify_inclusion(index, size, leaves[other], proof, root)

    def test_frontier_root_equals_recomputed_root_at_every_size(self) -> None:
        """The incremental frontier agrees with a from-scratch tree hash at each size."""
        frontier, leaves = Frontier(), []
        for i in range(130):
            leaf = hashlib.sha256(bytes([i])).digest()
            frontier.append(leaf)
            leaves.append(leaf)
            assert frontier.root() == root_of(leaves)


class TestVectors:
    """The checked-in logs verify, by flowtrace and by a 40-line independent verifier:
    format 2 (writer signatures) in tests/vectors/audit/, format 1 (flowtrace 0.1) in v1/."""

    EXPECTED: ClassVar[dict[str, Any]] = json.loads((VECTORS / "expected.json").read_text())

    @pytest.mark.parametrize("directory", [VECTORS, VECTORS / "v1"], ids=["v2", "v1"])
    def test_flowtrace_verifies_the_vector_log(self, directory: Path) -> None:
        """verify() reproduces the recorded head, root and key id, for both formats."""
        expected = json.loads((directory / "expected.json").read_text())
        report = audit.verify(
            directory / "audit.jsonl",
            public_key=directory / "public_key.pem",
            check_format=True,
        )
        got = {"records": report.records, "head": report.head, "root": report.root,
               "key_id": report.key_id}
        assert got == {k: expected[k] for k in got}
        assert report.format_version == (2 if directory == VECTORS else 1)

    def test_canonical_events_match_the_vectors(self) -> None:
        """Each event in the vector log is stored exactly as the recorded canonical bytes."""
        lines = (VECTORS / "audit.jsonl").read_bytes().splitlines()
        stored = [canonical(json.loads(line)["record"]["event"]).decode() for line in lines]
        assert stored == self.EXPECTED["canonical_events"]

    @pytest.mark.parametrize("directory", [VECTORS, VECTORS / "v1"], ids=["v2", "v1"])
    def test_an_independent_verifier_built_from_the_spec_agrees(self, directory: Path) -> None:
        """Using only hashlib, json and cryptography (no flowtrace), the log checks out:
        hashes, chain, writer signatures (format 2) and checkpoints."""
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        public = load_pem_public_key((directory / "public_key.pem").read_bytes())
        prev, hashes, covered, acc = "0" * 64, [], 0, bytes(32)
        for seq, line in enumerate((directory / "audit.jsonl").read_bytes().splitlines()):
            prefix = line[:84]
            entry = json.loads(line)
            assert prefix == b'{"hash":"' + prefix[9:73] + b'","record":'
            body = json.dumps(entry["record"], sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False).encode()
            assert line[84 : 84 + len(body)] == body  # the body as stored is canonical
            digest = hashlib.sha256(body).hexdigest()
            assert prefix[9:73].decode() == digest
            record = entry["record"]
            version = record["v"]
            assert (record["seq"], record["prev"], version) == (seq, prev, version)
            if "writer" in entry:  # format 2: vouches for records covered..seq
                sig = bytes.fromhex(entry["writer"]["sig"])
                public.verify(  # type: ignore[union-attr]
                    sig, b"flowtrace-audit-writer-v2\n" + digest.encode() + acc.hex().encode()
                )
                acc = hashlib.sha256(acc + sig).digest()
                covered = seq + 1
            prev = digest
            hashes.append(bytes.fromhex(digest))
        assert covered == (len(hashes) if version == 2 else 0)

        def mth(leaves: list[bytes]) -> bytes:
            if len(leaves) == 1:
                return hashlib.sha256(b"\x00" + leaves[0]).digest()
            k = 1 << ((len(leaves) - 1).bit_length() - 1)
            return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()

        checkpoints = (directory / "audit.jsonl.checkpoints").read_bytes().splitlines()
        for line in checkpoints:
            data = json.loads(line)
            payload = json.dumps(data["checkpoint"], sort_keys=True, separators=(",", ":"))
            public.verify(  # type: ignore[union-attr]
                bytes.fromhex(data["sig"]),
                b"flowtrace-audit-checkpoint-v1\n" + payload.encode(),
            )
            size = data["checkpoint"]["size"]
            assert data["checkpoint"]["root"] == mth(hashes[:size]).hex()
            assert data["checkpoint"]["head"] == hashes[size - 1].hex()
        assert json.loads(checkpoints[-1])["checkpoint"]["size"] == len(hashes)
        expected = json.loads((directory / "expected.json").read_text())
        assert mth(hashes).hex() == expected["root"]

    def test_only_the_last_line_of_each_write_is_signed(self) -> None:
        """The vector log was written in two writes (3 + 2 records): lines 2 and 4 carry
        the writer signature."""
        lines = (VECTORS / "audit.jsonl").read_bytes().splitlines()
        signed = [i for i, line in enumerate(lines) if "writer" in json.loads(line)]
        assert signed == self.EXPECTED["signed_lines"] == [2, 4]

    @pytest.mark.parametrize("directory", [VECTORS, VECTORS / "v1"], ids=["v2", "v1"])
    def test_the_vector_inclusion_proof_checks(self, directory: Path) -> None:
        """The checked-in inclusion proof for record 1 verifies with the public key alone."""
        proof = (directory / "inclusion_proof_1.json").read_text()
        event = audit.verify_inclusion(proof, public_key=directory / "public_key.pem")
        assert (event["action"], event["outcome"]) == ("patient.export", "denied")
        tampered = proof.replace('"denied"', '"success"')
        with pytest.raises(RecordModifiedError):
            audit.verify_inclusion(tampered, public_key=directory / "public_key.pem")

    def test_a_forged_checkpoint_signature_is_refused(self) -> None:
        """Flipping one signature bit makes the checkpoint fail with CheckpointSignatureError."""
        line = (VECTORS / "audit.jsonl.checkpoints").read_bytes().splitlines()[0]
        data = json.loads(line)
        data["sig"] = ("1" if data["sig"][0] == "0" else "0") + data["sig"][1:]
        checkpoint = audit.Checkpoint.parse(canonical(data), 1)
        with pytest.raises(CheckpointSignatureError, match="invalid signature"):
            checkpoint.check(audit.load_public_key(VECTORS / "public_key.pem"), 1)
        assert issubclass(CheckpointSignatureError, AuditVerificationError)

    def test_a_forged_writer_signature_is_refused(self, tmp_path: Path) -> None:
        """Flipping one bit of a writer signature fails with ForgedRecordError at that line."""
        from flowtrace.errors import ForgedRecordError

        lines = (VECTORS / "audit.jsonl").read_bytes().splitlines(keepends=True)
        at = lines[2].rindex(b'"}}') - 1
        lines[2] = lines[2][:at] + (b"1" if lines[2][at:at + 1] == b"0" else b"0") + lines[2][
            at + 1 :]
        (tmp_path / "a.jsonl").write_bytes(b"".join(lines))
        (tmp_path / "a.jsonl.checkpoints").write_bytes(
            (VECTORS / "audit.jsonl.checkpoints").read_bytes())
        with pytest.raises(ForgedRecordError, match="does not verify") as info:
            audit.verify(tmp_path / "a.jsonl", public_key=VECTORS / "public_key.pem")
        assert info.value.sequence == 2
