"""CQRS / event sourcing with crypto-shredding: erase a user from an immutable event store.

Events are never rewritten, so personal fields are stored encrypted under the user's own
key. Erasing the user shreds that key (``flowtrace.privacy.erase``); rebuilding a
projection from the full event history then meets ``KeyDestroyedError`` — a typed,
catchable error — for exactly that user's personal fields, skips them, and the rebuilt
read model holds nothing of them. Embedded defaults only (SQLite, local keys). It asserts:

* before the erasure the projection holds both users' emails and order totals;
* after it, the rebuild completes without crashing, skips the shredded user's events
  (counted), keeps the other user's data, and the read model has no trace of the
  erased user (no row, no email, no id);
* the event store still holds every event (nothing was rewritten), and the erasure
  receipt verifies.

    python examples/event_sourcing_shred.py
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import flowtrace as ft
from flowtrace import audit, lineage, privacy
from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider, SqliteVaultStore
from flowtrace.errors import KeyDestroyedError

TENANT = "acme"


class EventStore:
    """Append-only: (seq, stream, type, data). Personal fields are tokens."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, stream, type, data)"
        )

    def append(self, stream: str, kind: str, data: dict[str, object]) -> None:
        self.db.execute("INSERT INTO events (stream, type, data) VALUES (?, ?, ?)",
                        (stream, kind, json.dumps(data)))

    def all(self) -> list[tuple[int, str, str, dict[str, object]]]:
        rows = self.db.execute("SELECT seq, stream, type, data FROM events ORDER BY seq")
        return [(s, st, t, json.loads(d)) for s, st, t, d in rows]


def rebuild(store: EventStore, enc: FieldEncryptor) -> tuple[dict[str, dict[str, object]], int]:
    """The customers read model from the full history; shredded events are skipped."""
    model: dict[str, dict[str, object]] = {}
    skipped = 0
    with ft.context(tenant=TENANT, purpose="projection"):
        for _, stream, kind, data in store.all():
            try:
                if kind == "registered":
                    email = enc.decrypt(str(data["email"]), field="email", reason="projection")
                    model[stream] = {"email": email, "total": 0}
                elif kind == "ordered" and stream in model:
                    total = int(str(model[stream]["total"])) + int(str(data["amount"]))
                    model[stream]["total"] = total
            except KeyDestroyedError:
                skipped += 1  # the user was erased: their events mean nothing any more
                model.pop(stream, None)
    return model, skipped


def main() -> None:
    here = Path.cwd()
    for name in ("events.db", "keys.db", "erase.json", "audit.jsonl"):
        (here / name).unlink(missing_ok=True)
    vault = KeyVault(LocalKeyProvider.generate("kek"), SqliteVaultStore(here / "keys.db"),
                     kek_id="kek")
    enc = FieldEncryptor(vault, subject_keys=True)
    store = EventStore(here / "events.db")
    for user, amounts in (("ana", [30, 12]), ("bo", [7])):
        with ft.context(tenant=TENANT, subject=user):
            email = enc.encrypt(f"{user}@example.com", field="email")
        store.append(user, "registered", {"email": email})
        for amount in amounts:
            store.append(user, "ordered", {"amount": amount})

    model, skipped = rebuild(store, enc)
    assert model == {"ana": {"email": "ana@example.com", "total": 42},
                     "bo": {"email": "bo@example.com", "total": 7}}
    assert skipped == 0

    key = audit.generate_key()
    log = audit.AuditLog(here / "audit.jsonl", signing_key=key)
    receipt = privacy.erase("ana", tenant=TENANT, vault=vault, state_file=here / "erase.json",
                            signing_key=key, audit_log=log, reason="Art. 17 request",
                            pseudonymizer=lineage.Pseudonymizer(os.urandom(32)))
    log.close()
    privacy.verify_signed(receipt, public_key=key.public_key())

    model, skipped = rebuild(store, enc)
    assert model == {"bo": {"email": "bo@example.com", "total": 7}}, model
    assert skipped == 1  # ana's registration; her orders have no row to attach to
    assert "ana" not in json.dumps(model)
    assert len(store.all()) == 5  # the event history is intact, only unreadable
    print(f"rebuilt read model: {model}; skipped {skipped} shredded event(s); "
          f"receipt summary {receipt['summary']}")


if __name__ == "__main__":
    main()
