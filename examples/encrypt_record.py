"""Encrypt patient records by classification, store them in SQLite, erase one patient.

Run: python examples/encrypt_record.py   (offline; asserts every claim it prints)
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path

import flowtrace
from flowtrace.classify import Schema
from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider, SqliteVaultStore
from flowtrace.errors import KeyDestroyedError

SCHEMA = Schema.from_dict(
    {
        "name": "restricted:pii",
        "email": "restricted:pii",
        "diagnosis": "restricted:phi",
        "ward": "internal",
    }
)
PATIENTS = [
    {
        "id": "p-1",
        "name": "Alice Martin",
        "email": "alice@example.com",
        "diagnosis": "asthma",
        "ward": "B",
    },
    {
        "id": "p-2",
        "name": "Bob Stone",
        "email": "bob@example.com",
        "diagnosis": "fracture",
        "ward": "C",
    },
]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        provider = LocalKeyProvider.open_keyring(
            work / "keyring.json", master_key=LocalKeyProvider.new_master_key(), create=["kek-1"]
        )
        vault = KeyVault(provider, SqliteVaultStore(work / "keys.db"), kek_id="kek-1")
        enc = FieldEncryptor(vault, subject_keys=True)  # one key per patient

        db = sqlite3.connect(work / "app.db")
        db.execute("CREATE TABLE patients (id TEXT PRIMARY KEY, doc TEXT)")
        with flowtrace.context(tenant="st-marys", user="admissions"):
            for patient in PATIENTS:
                stored = enc.encrypt_record(
                    patient, SCHEMA, subject=patient["id"], context={"row": patient["id"]}
                )
                db.execute(
                    "INSERT INTO patients VALUES (?, ?)", (patient["id"], json.dumps(stored))
                )
        db.commit()

        raw = (work / "app.db").read_bytes()
        assert b"alice@example.com" not in raw
        assert b"asthma" not in raw
        print("stored rows hold only tokens for restricted fields:")
        row = json.loads(db.execute("SELECT doc FROM patients WHERE id = 'p-1'").fetchone()[0])
        print(f"  p-1 email = {row['email'][:40]}...  ward = {row['ward']}")

        with flowtrace.context(tenant="st-marys", user="dpo"):
            receipt = enc.shred(subject="p-1", reason="erasure request #981")
        print(f"shredded p-1: keys {[k.key_id for k in receipt.keys]}, reason {receipt.reason!r}")

        with flowtrace.context(tenant="st-marys", user="dr-house"):
            for patient_id in ("p-1", "p-2"):
                doc = json.loads(
                    db.execute("SELECT doc FROM patients WHERE id = ?", (patient_id,)).fetchone()[0]
                )
                try:
                    back = enc.decrypt_record(
                        doc, SCHEMA, context={"row": patient_id}, reason="treatment"
                    )
                except KeyDestroyedError:
                    assert patient_id == "p-1"
                    print(f"  {patient_id}: unreadable (KeyDestroyedError), the row is now inert")
                else:
                    assert patient_id == "p-2"
                    assert back == PATIENTS[1]
                    print(f"  {patient_id}: {back['name']}, {back['diagnosis']}")
        db.close()
        vault.close()


if __name__ == "__main__":
    main()
