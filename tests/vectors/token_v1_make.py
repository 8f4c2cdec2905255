"""Regenerate tests/vectors/token_v1.json (run from the repository root).

The vectors are checked in; regenerating must give byte-identical files, because every
input (DEK, DEK id, nonce) is fixed here. tests/test_crypto_token.py verifies them both
through flowtrace and through an independent reading of docs/spec/token.md.
"""

from __future__ import annotations

import json
from pathlib import Path

from flowtrace.crypto.hazmat import seal_with_key

DEK = bytes(range(32))
DEK_ID = bytes.fromhex("0123456789abcdef")
NONCE = bytes.fromhex("000102030405060708090a0b")

CASES = [
    {
        "name": "randomized-ascii",
        "tenant": "acme",
        "field": "email",
        "plaintext": "alice@example.com",
        "context": {},
        "deterministic": False,
        "json": False,
    },
    {
        "name": "randomized-32-bytes",
        "tenant": "acme",
        "field": "ssn",
        "plaintext": "0123456789abcdef0123456789abcdef",
        "context": {"record": "42"},
        "deterministic": False,
        "json": False,
    },
    {
        "name": "randomized-empty",
        "tenant": "acme",
        "field": "note",
        "plaintext": "",
        "context": {},
        "deterministic": False,
        "json": False,
    },
    {
        "name": "randomized-unicode-context",
        "tenant": "müller-gmbh",
        "field": "patient.name",
        "plaintext": "Zoë Ångström 🙂",
        "context": {"table": "patients", "id": "7", "a": "b"},
        "deterministic": False,
        "json": False,
    },
    {
        "name": "deterministic",
        "tenant": "acme",
        "field": "email",
        "plaintext": "alice@example.com",
        "context": {},
        "deterministic": True,
        "json": False,
    },
    {
        "name": "deterministic-empty",
        "tenant": "acme",
        "field": "email",
        "plaintext": "",
        "context": {},
        "deterministic": True,
        "json": False,
    },
    {
        "name": "json-number",
        "tenant": "acme",
        "field": "salary",
        "plaintext": "52000",
        "context": {},
        "deterministic": False,
        "json": True,
    },
]


def main() -> None:
    vectors = []
    for case in CASES:
        token = seal_with_key(
            DEK,
            dek_id=DEK_ID,
            dek_version=3,
            tenant=case["tenant"],
            field=case["field"],
            plaintext=case["plaintext"].encode(),
            context=case["context"],
            deterministic=case["deterministic"],
            json=case["json"],
            nonce=None if case["deterministic"] else NONCE,
        )
        vectors.append({**case, "dek_version": 3, "token": token})
    out = {
        "format": "flowtrace field token, version 1 (docs/spec/token.md)",
        "dek_hex": DEK.hex(),
        "dek_id_hex": DEK_ID.hex(),
        "nonce_hex": NONCE.hex(),
        "vectors": vectors,
    }
    path = Path(__file__).with_name("token_v1.json")
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
