"""Demo step: "give me everything about user X" and "delete user X everywhere".

A sign-up writes the user's profile to SQLite (email encrypted under the user's own key),
an event to an append-only event log (ciphertext only), a cache entry, an email to a
mailer, and a lineage-derived daily aggregate; a support agent reads the profile (audit).
One call answers the access request from that evidence, one erases the user, and the
verification pass checks nothing readable is left.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

import flowtrace as ft
from flowtrace import audit, lineage, privacy
from flowtrace import map as ftmap
from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider, SqliteVaultStore
from flowtrace.errors import KeyDestroyedError
from flowtrace.otel import FlowContextSpanProcessor, JsonLinesSpanExporter

SCHEMA = ft.Schema.from_dict({"email": "confidential:pii"})


class Profiles:
    """SQLite profiles; the deletion hook removes the user's rows."""

    name, restricted = "sqlite/app", ("email",)

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("CREATE TABLE IF NOT EXISTS profiles (tenant, id, email)")

    def fetch(self, subject: str, tenant: str) -> Sequence[Mapping[str, Any]]:
        rows = self.db.execute("SELECT id, email FROM profiles WHERE tenant=? AND id=?",
                               (tenant, subject)).fetchall()
        return [{"id": i, "email": e} for i, e in rows]

    def delete(self, subject: str, tenant: str) -> None:
        self.db.execute("DELETE FROM profiles WHERE tenant=? AND id=?", (tenant, subject))


class Events:
    """An append-only event log holding only ciphertext: the shred is its erasure."""

    name, restricted = "sqlite/events", ("email",)

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def fetch(self, subject: str, tenant: str) -> Sequence[Mapping[str, Any]]:
        return [e for e in self.events if (e["tenant"], e["user"]) == (tenant, subject)]

    def delete(self, subject: str, tenant: str) -> None:
        raise NotImplementedError("append-only log")


class Cache:
    """An in-memory stand-in for a Redis cache."""

    name, restricted = "redis/0", ()

    def __init__(self) -> None:
        self.keys: dict[str, str] = {}

    def fetch(self, subject: str, tenant: str) -> Sequence[Mapping[str, Any]]:
        key = f"{tenant}:user:{subject}"
        return [{"key": key, "value": self.keys[key]}] if key in self.keys else []

    def delete(self, subject: str, tenant: str) -> None:
        self.keys.pop(f"{tenant}:user:{subject}", None)


def run(out: Path, say: Callable[[str], None]) -> None:
    """Sign two users up, answer an access request for one, erase them, verify."""
    spans_path = out / "privacy-spans.jsonl"
    spans_path.unlink(missing_ok=True)
    exporter = JsonLinesSpanExporter(spans_path)
    provider = TracerProvider(resource=Resource.create({"service.name": "accounts"}))
    provider.add_span_processor(FlowContextSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("demo")
    pseudonymizer = lineage.Pseudonymizer(os.urandom(32))
    ft.configure(lineage=lineage.LineageConfig(pseudonymizer=pseudonymizer),
                 tracer_provider=provider)
    key = audit.generate_key()
    (out / "privacy-audit-key.pub").write_bytes(audit.public_key_pem(key.public_key()))
    (out / "privacy-keys.db").unlink(missing_ok=True)
    vault = KeyVault(LocalKeyProvider.generate("kek"), SqliteVaultStore(out / "privacy-keys.db"),
                     kek_id="kek")
    enc = FieldEncryptor(vault, subject_keys=True)
    (out / "privacy-app.db").unlink(missing_ok=True)
    profiles, events, cache = Profiles(out / "privacy-app.db"), Events(), Cache()
    (out / "privacy-audit.jsonl").unlink(missing_ok=True)
    log = audit.AuditLog(out / "privacy-audit.jsonl", signing_key=key)

    def store(system: str, namespace: str, record: Mapping[str, str]) -> None:
        with tracer.start_as_current_span(f"INSERT {namespace}", kind=SpanKind.CLIENT,
                                          attributes={"db.system": system,
                                                      "db.namespace": namespace}):
            ftmap.record_data(record, schema=SCHEMA)

    tokens = []
    for user in ("u-1", "u-2"):
        with ft.context(tenant="acme", subject=user, purpose="signup", legal_basis="contract"):
            token = enc.encrypt(f"{user}@example.com", field="email")
            tokens.append(token)
            profiles.db.execute("INSERT INTO profiles VALUES ('acme', ?, ?)", (user, token))
            store("sqlite", "app", {"email": token})
            events.events.append({"tenant": "acme", "user": user, "email": token})
            store("sqlite", "events", {"email": token})
            cache.keys[f"acme:user:{user}"] = "plan=pro"
            store("redis", "0", {})
            with tracer.start_as_current_span("POST /send", kind=SpanKind.CLIENT, attributes={
                    "http.request.method": "POST", "peer.service": "mailer"}):
                ftmap.record_data({"email": f"{user}@example.com"}, schema=SCHEMA)
            lineage.record("daily-signups", inputs=f"sqlite://app/profiles#{user}",
                           outputs="sqlite://app/daily_signups", subjects=[user])
    with ft.context(tenant="acme", user="agent-7", subject="u-1", purpose="support"):
        log.append("profile.read", resource="profiles/u-1")
    provider.force_flush()
    exporter.shutdown()

    stores: list[privacy.SubjectStore] = [profiles, events, cache]
    say('"give me everything about user u-1":')
    evidence = privacy.gather("u-1", tenant="acme", sources=[spans_path],
                              audit=out / "privacy-audit.jsonl", pseudonymizer=pseudonymizer)
    bundle = privacy.subject_report("u-1", tenant="acme", evidence=evidence, stores=stores,
                                    encryptor=enc, signing_key=key, audit_log=log)
    (out / "dsar-u-1.json").write_text(json.dumps(bundle, indent=1, sort_keys=True))
    (out / "dsar-u-1.html").write_text(privacy.bundle_html(bundle))
    say(f"  recipients: {', '.join(r['node'] for r in bundle['recipients'])}")
    say(f"  derived: {', '.join(bundle['derived'])}")
    say(f"  accesses: {len(bundle['accesses'])} (agent-7 profile.read); data from "
        f"{len(bundle['data'])} stores, email decrypted under purpose 'dsar' (audited)")
    say(f"  signed bundle: {out / 'dsar-u-1.json'}, summary: {out / 'dsar-u-1.html'}")

    say('"delete user u-1 everywhere":')
    (out / "erase-u-1.state.json").unlink(missing_ok=True)
    receipt = privacy.erase(
        "u-1", tenant="acme", vault=vault, stores=stores, evidence=evidence,
        state_file=out / "erase-u-1.state.json", signing_key=key, audit_log=log,
        reason="demo request #1",
        progress=lambda step, status: (
            None if status == "running" else say(f"  {step.id}: {status}")
        ),
    )
    (out / "erase-u-1.receipt.json").write_text(json.dumps(receipt, indent=1, sort_keys=True))
    privacy.verify_erasure("u-1", tenant="acme", stores=stores, encryptor=enc,
                           tokens=[(tokens[0], "email")])
    with ft.context(tenant="acme"):
        try:
            enc.decrypt(events.events[0]["email"], field="email")
            raise AssertionError("the shredded user's event still decrypts")
        except KeyDestroyedError:
            pass
        assert enc.decrypt(tokens[1], field="email") == "u-2@example.com"
    log.close()
    audit.verify(out / "privacy-audit.jsonl", public_key=key.public_key())
    say("  verified: no plaintext left in registered stores; the event log's copy raises "
        "KeyDestroyedError; u-2 untouched")
    say(f"  signed receipt: {out / 'erase-u-1.receipt.json'}; every step in "
        f"{out / 'privacy-audit.jsonl'} (verified); public key: {out / 'privacy-audit-key.pub'}")
    ft.configure(lineage=None, tracer_provider=None)
