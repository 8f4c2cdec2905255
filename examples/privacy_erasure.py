"""Erase one user everywhere, on real PostgreSQL and Redis, and survive a kill mid-plan.

Needs PostgreSQL (trust auth, user postgres, db test) and Redis on 127.0.0.1. Without
them it says so and exits 0, unless FLOWTRACE_REQUIRE_SERVICES=1. It asserts what it
claims:

* the plan comes from evidence: spans carrying the user's pseudonym show the profile table,
  the event log, the cache, and a lineage-derived daily aggregate;
* the first run is killed (SIGKILL) inside the Redis hook; the second run resumes — the
  shred and the PostgreSQL deletion are not repeated — and completes;
* PostgreSQL profile rows are deleted by a hook; the PostgreSQL event log keeps its rows,
  which hold only ciphertext and now raise KeyDestroyedError; the Redis keys are gone; the
  aggregate is flagged for recomputation; another user is untouched;
* the verification pass finds nothing; the receipt and the audit log verify.

    python examples/privacy_erasure.py
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import flowtrace as ft
from flowtrace import audit, lineage, privacy
from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider, SqliteVaultStore
from flowtrace.errors import KeyDestroyedError

DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
HERE = Path.cwd()


def available() -> bool:
    for port in (5432, 6379):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                pass
        except OSError:
            return False
    return True


class Profiles:
    """PostgreSQL rows, deleted by the hook."""

    restricted = ("email",)

    def __init__(self, schema: str) -> None:
        self.schema, self.name = schema, "postgresql/test"

    def fetch(self, subject: str, tenant: str) -> Sequence[Mapping[str, Any]]:
        import psycopg

        with psycopg.connect(DSN) as conn:
            rows = conn.execute(f"SELECT id, email FROM {self.schema}.profiles "  # type: ignore[arg-type]
                                "WHERE tenant=%s AND id=%s", (tenant, subject)).fetchall()
        return [{"id": i, "email": e} for i, e in rows]

    def delete(self, subject: str, tenant: str) -> None:
        import psycopg

        with psycopg.connect(DSN) as conn:
            conn.execute(f"DELETE FROM {self.schema}.profiles "  # type: ignore[arg-type]
                         "WHERE tenant=%s AND id=%s", (tenant, subject))
            conn.execute(f"INSERT INTO {self.schema}.hook_calls VALUES ('profiles')")  # type: ignore[arg-type]


class EventLog:
    """An append-only PostgreSQL event log holding only ciphertext: the shred erases it."""

    restricted = ("email",)

    def __init__(self, schema: str) -> None:
        self.schema, self.name = schema, "postgresql/events"

    def fetch(self, subject: str, tenant: str) -> Sequence[Mapping[str, Any]]:
        import psycopg

        with psycopg.connect(DSN) as conn:
            rows = conn.execute(f"SELECT payload FROM {self.schema}.events "  # type: ignore[arg-type]
                                "WHERE tenant=%s AND subject=%s", (tenant, subject)).fetchall()
        return [json.loads(p) for (p,) in rows]

    def delete(self, subject: str, tenant: str) -> None:
        raise NotImplementedError("append-only event log: the shred makes it unreadable")


class Cache:
    """Redis keys ``<prefix>:<tenant>:user:<id>:*``, deleted by the hook."""

    restricted = ()
    name = "redis/0"

    def __init__(self, prefix: str, block: bool = False) -> None:
        import redis

        self.prefix, self.block = prefix, block
        self.client = redis.Redis(host="127.0.0.1", port=6379)

    def fetch(self, subject: str, tenant: str) -> Sequence[Mapping[str, Any]]:
        keys = self.client.keys(f"{self.prefix}:{tenant}:user:{subject}:*")
        return [{"key": k.decode()} for k in keys]

    def delete(self, subject: str, tenant: str) -> None:
        if self.block:
            Path(HERE / "entered").write_text("1")
            time.sleep(120)  # the parent kills this process here
        for key in self.client.keys(f"{self.prefix}:{tenant}:user:{subject}:*"):
            self.client.delete(key)


def setting() -> dict[str, Any]:
    return json.loads((HERE / "setting.json").read_text())


def tools() -> tuple[KeyVault, Any, lineage.Pseudonymizer]:
    s = setting()
    vault = KeyVault(LocalKeyProvider({"kek": bytes.fromhex(s["kek"])}),
                     SqliteVaultStore(HERE / "keys.db"), kek_id="kek")
    return vault, audit.load_private_key(HERE / "audit.pem"), lineage.Pseudonymizer(
        bytes.fromhex(s["pseudonym_key"]))


def run_erasure(block: bool) -> dict[str, Any]:
    s = setting()
    vault, key, pseudonymizer = tools()
    stores = [Profiles(s["schema"]), EventLog(s["schema"]), Cache(s["prefix"], block=block)]
    evidence = privacy.gather("u-1", tenant="acme", sources=[HERE / "spans.jsonl"],
                              pseudonymizer=pseudonymizer)
    log = audit.AuditLog(HERE / "audit.jsonl", signing_key=key)
    try:
        return privacy.erase("u-1", tenant="acme", vault=vault, stores=stores,
                             evidence=evidence, state_file=HERE / "erase.state.json",
                             signing_key=key, audit_log=log, reason="request #42",
                             progress=lambda st, status: print(f"  {st.id}: {status}"))
    finally:
        log.close()


def record_signups(schema: str, prefix: str) -> list[str]:
    """Two users sign up; spans (with pseudonyms) go to spans.jsonl."""
    import psycopg
    import redis
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind

    from flowtrace import map as ftmap
    from flowtrace.otel import FlowContextSpanProcessor, JsonLinesSpanExporter

    vault, _, pseudonymizer = tools()
    enc = FieldEncryptor(vault, subject_keys=True)
    exporter = JsonLinesSpanExporter(HERE / "spans.jsonl")
    provider = TracerProvider(resource=Resource.create({"service.name": "accounts"}))
    provider.add_span_processor(FlowContextSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    ft.configure(lineage=lineage.LineageConfig(pseudonymizer=pseudonymizer),
                 tracer_provider=provider)
    tracer = provider.get_tracer("example")
    schema_map = ft.Schema.from_dict({"email": "confidential:pii"})
    cache = redis.Redis(host="127.0.0.1", port=6379)
    tokens = []
    with psycopg.connect(DSN) as conn:
        for user in ("u-1", "u-2"):
            with ft.context(tenant="acme", subject=user, purpose="signup",
                            legal_basis="contract", region="eu"):
                token = enc.encrypt(f"{user}@example.com", field="email")
                tokens.append(token)
                for table, namespace in (("profiles", "test"), ("events", "events")):
                    with tracer.start_as_current_span(
                        f"INSERT {table}", kind=SpanKind.CLIENT,
                        attributes={"db.system": "postgresql", "db.namespace": namespace},
                    ):
                        ftmap.record_data({"email": token}, schema=schema_map)
                conn.execute(f"INSERT INTO {schema}.profiles VALUES ('acme', %s, %s)",  # type: ignore[arg-type]
                             (user, token))
                conn.execute(f"INSERT INTO {schema}.events VALUES ('acme', %s, %s)",  # type: ignore[arg-type]
                             (user, json.dumps({"type": "signed_up", "email": token})))
                with tracer.start_as_current_span("SET", kind=SpanKind.CLIENT, attributes={
                        "db.system": "redis", "db.namespace": "0"}):
                    cache.set(f"{prefix}:acme:user:{user}:plan", "pro")
                lineage.record("daily-signups", inputs=f"postgresql://test/profiles#{user}",
                               outputs="postgresql://test/daily_signups", subjects=[user])
    provider.force_flush()
    exporter.shutdown()
    ft.configure(lineage=None, tracer_provider=None)
    return tokens


def main() -> None:
    import psycopg
    import redis

    schema, prefix = f"privacy_{uuid.uuid4().hex[:10]}", f"privacy-{uuid.uuid4().hex[:10]}"
    key = audit.generate_key()
    (HERE / "audit.pem").write_bytes(audit.private_key_pem(key))
    (HERE / "setting.json").write_text(json.dumps({
        "schema": schema, "prefix": prefix, "kek": os.urandom(32).hex(),
        "pseudonym_key": os.urandom(32).hex()}))
    with psycopg.connect(DSN, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
        admin.execute(f"CREATE TABLE {schema}.profiles (tenant text, id text, email text)")  # type: ignore[arg-type]
        admin.execute(f"CREATE TABLE {schema}.events (tenant text, subject text, payload text)")  # type: ignore[arg-type]
        admin.execute(f"CREATE TABLE {schema}.hook_calls (store text)")  # type: ignore[arg-type]
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        tokens = record_signups(schema, prefix)
        print("erasure, first attempt (killed inside the Redis hook):")
        child = subprocess.Popen([sys.executable, __file__, "--child"], cwd=HERE)
        deadline = time.monotonic() + 120
        while not (HERE / "entered").exists():
            assert child.poll() is None, "the erasure process ended before the Redis hook"
            assert time.monotonic() < deadline, "the erasure process never reached the hook"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        print("erasure, second attempt (resumes):")
        receipt = run_erasure(block=False)
        statuses = {s["id"]: s["status"] for s in receipt["steps"]}
        assert statuses == {
            "shred": "shredded", "delete:postgresql/test": "deleted",
            "delete:postgresql/events": "manual", "delete:redis/0": "deleted",
            "recompute:postgresql://test/profiles#u-1": "recompute",
            "recompute:postgresql://test/daily_signups": "recompute",
        }, statuses
        with psycopg.connect(DSN) as conn:
            (calls,) = conn.execute(f"SELECT count(*) FROM {schema}.hook_calls").fetchone()  # type: ignore[arg-type, misc]
        assert calls == 1, "the PostgreSQL hook ran again after the resume"
        vault, _, _ = tools()
        enc = FieldEncryptor(vault, subject_keys=True)
        stores = [Profiles(schema), EventLog(schema), Cache(prefix)]
        report = privacy.verify_erasure("u-1", tenant="acme", stores=stores, encryptor=enc,
                                        tokens=[(tokens[0], "email")])
        assert report["checked"]["records"] == 1  # the event log's row, ciphertext only
        with ft.context(tenant="acme"):
            try:
                enc.decrypt(EventLog(schema).fetch("u-1", "acme")[0]["email"], field="email")
                raise AssertionError("the event log still decrypts")
            except KeyDestroyedError:
                print("event log row of u-1: KeyDestroyedError (unreadable)")
            assert enc.decrypt(tokens[1], field="email") == "u-2@example.com"
        assert Cache(prefix).fetch("u-2", "acme"), "u-2's cache keys must stay"
        privacy.verify_signed(receipt, public_key=key.public_key())
        audit.verify(HERE / "audit.jsonl", public_key=key.public_key())
        print(f"verified; receipt summary {receipt['summary']}")
    finally:
        with psycopg.connect(DSN, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")  # type: ignore[arg-type]
        for k in client.keys(f"{prefix}:*"):
            client.delete(k)


if __name__ == "__main__":
    if "--child" in sys.argv:
        run_erasure(block=True)
        sys.exit(0)
    if not available():
        print("PostgreSQL or Redis is not reachable on 127.0.0.1: example skipped")
        sys.exit(1 if os.environ.get("FLOWTRACE_REQUIRE_SERVICES") == "1" else 0)
    main()
