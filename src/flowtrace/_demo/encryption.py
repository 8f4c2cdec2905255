"""Demo step: field encryption with per-subject keys, audited decrypts, rotation, shredding."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import flowtrace
from flowtrace import EventKind, FlowEvent
from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider, SqliteVaultStore
from flowtrace.errors import KeyDestroyedError, WrongTenantError


def run(out: Path, say: Callable[[str], None]) -> None:
    """Encrypt, decrypt (audited), rotate, rewrap and shred; raise if any claim fails."""
    work = out / "encryption"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    provider = LocalKeyProvider.open_keyring(
        work / "keyring.json", master_key=LocalKeyProvider.new_master_key(), create=["kek-1"]
    )
    vault = KeyVault(provider, SqliteVaultStore(work / "keys.db"), kek_id="kek-1")
    enc = FieldEncryptor(vault, subject_keys=True)
    with flowtrace.context(tenant="acme", subject="patient-7"):
        start = time.perf_counter()
        for i in range(2_000):
            email = f"p{i}@example.com"
            if enc.decrypt(enc.encrypt(email, field="email"), field="email") != email:
                raise AssertionError("round trip failed")
        each = (time.perf_counter() - start) / 2_000 * 1e6
    say(f"2,000 email encrypt+decrypt round trips: {each:.1f} us each")
    events: list[FlowEvent] = []
    flowtrace.add_observer(events.append)
    try:
        with flowtrace.context(tenant="acme", user="dr-who", subject="patient-42"):
            token = enc.encrypt("123-45-6789", field="ssn", context={"record": "42"})
            say(f"encrypted an SSN for patient-42 into a {len(token)}-character token")
            value = enc.decrypt(token, field="ssn", context={"record": "42"}, reason="billing")
            if value != "123-45-6789":
                raise AssertionError("round trip failed")
            vault.rotate("acme", "patient-42")
            newer = enc.rewrap(token, field="ssn", context={"record": "42"})
            say(
                f"rotated the key: old token v{enc.inspect(token).key_version} still decrypts, "
                f"rewrap moved it to v{enc.inspect(newer).key_version}"
            )
        with flowtrace.context(tenant="globex"):
            try:
                enc.decrypt(token, field="ssn", context={"record": "42"})
            except WrongTenantError:
                say("tenant globex cannot decrypt acme's token (WrongTenantError)")
            else:
                raise AssertionError("a token decrypted under another tenant")
        with flowtrace.context(tenant="acme", user="dpo"):
            receipt = enc.shred(subject="patient-42", reason="erasure request #981")
            for candidate in (token, newer):
                try:
                    enc.decrypt(candidate, field="ssn", context={"record": "42"})
                except KeyDestroyedError:
                    continue
                raise AssertionError("a shredded token still decrypted")
        say(
            f"shredded patient-42 ({len(receipt.keys)} key, versions "
            f"{list(receipt.keys[0].versions)}): both tokens now raise KeyDestroyedError"
        )
    finally:
        flowtrace.remove_observer(events.append)
        vault.close()
    audited = [
        dict(e.attributes, kind=e.kind)
        for e in events
        if e.kind in (EventKind.DECRYPT, EventKind.SHRED)
    ]
    (work / "events.json").write_text(json.dumps(audited, indent=1))
    (work / "shred-receipt.json").write_text(json.dumps(receipt.to_dict(), indent=1))
    if "123-45-6789" in json.dumps(audited):
        raise AssertionError("plaintext reached an audit event")
    say(
        f"{len(audited)} decrypt/shred events reported (failures included), none with "
        f"plaintext; see {work / 'events.json'}"
    )
