"""Article 30 records from evidence, and a HIPAA-style access request answered by DSAR.

Embedded defaults only (span file, SQLite, local keys). It asserts:

* a GDPR registration (consent, purpose, legal basis, region on every step) produces an
  Art. 30 record whose categories, legal basis and recipients are *evidenced* with sample
  trace ids, the declared DPA as the processor's transfer safeguard, and the declared
  retention;
* a marketing export nobody declared is listed first, as UNDECLARED;
* "who accessed patient 42's record, and what do you hold about them?" — the signed
  subject-access bundle lists the clinician's read (audit), the stores that received the
  record (spans carrying the patient's pseudonym), and the record itself, decrypted under
  the ``dsar`` purpose (that decrypt is itself audited).

    python examples/privacy_records.py
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

import flowtrace as ft
from flowtrace import audit, lineage, privacy
from flowtrace import map as ftmap
from flowtrace.cli import main as cli
from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider
from flowtrace.otel import FlowContextSpanProcessor, JsonLinesSpanExporter

DECLARED = """\
version = 1
[[services]]
name = "signup-api"
region = "eu"
[[services]]
name = "records-api"
region = "eu"
[[stores]]
name = "sqlite/accounts"
region = "eu"
retention = "P3Y"
[[stores]]
name = "sqlite/clinic"
region = "eu"
retention = "P10Y"
[[processors]]
name = "mailer"
region = "eu"
dpa = "DPA-2026-003"

[[flows]]
from = "signup-api"
to = "sqlite/accounts"
categories = ["pii"]
purposes = ["registration"]
legal_bases = ["consent"]
[[flows]]
from = "signup-api"
to = "mailer"
categories = ["pii"]
purposes = ["registration"]
legal_bases = ["consent"]
[[flows]]
from = "records-api"
to = "sqlite/clinic"
categories = ["phi"]
purposes = ["treatment"]
legal_bases = ["vital-interest"]
"""

SCHEMA = ft.Schema.from_dict({"email": "confidential:pii", "diagnosis": "restricted:phi"})


class Clinic:
    """Patient records in SQLite; the diagnosis is a flowtrace token."""

    name, restricted = "sqlite/clinic", ("diagnosis",)

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("CREATE TABLE IF NOT EXISTS records (tenant, patient, diagnosis)")

    def fetch(self, subject: str, tenant: str) -> Sequence[Mapping[str, Any]]:
        rows = self.db.execute("SELECT patient, diagnosis FROM records WHERE tenant=? AND "
                               "patient=?", (tenant, subject)).fetchall()
        return [{"patient": p, "diagnosis": d} for p, d in rows]

    def delete(self, subject: str, tenant: str) -> None:
        self.db.execute("DELETE FROM records WHERE tenant=? AND patient=?", (tenant, subject))


def tracer_for(service: str, exporter: JsonLinesSpanExporter) -> Any:
    provider = TracerProvider(resource=Resource.create(
        {"service.name": service, "flowtrace.service.region": "eu"}))
    provider.add_span_processor(FlowContextSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("example")


def client(tracer: Any, name: str, attributes: dict[str, str], data: dict[str, str]) -> None:
    with tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes):
        ftmap.record_data(data, schema=SCHEMA)


def main() -> None:
    here = Path.cwd()
    for name in ("spans.jsonl", "clinic.db", "audit.jsonl", "map.toml"):
        (here / name).unlink(missing_ok=True)
    (here / "map.toml").write_text(DECLARED)
    pseudonymizer = lineage.Pseudonymizer(os.urandom(32))
    ft.configure(lineage=lineage.LineageConfig(pseudonymizer=pseudonymizer))
    exporter = JsonLinesSpanExporter(here / "spans.jsonl")
    signup, records = tracer_for("signup-api", exporter), tracer_for("records-api", exporter)
    enc = FieldEncryptor(KeyVault(LocalKeyProvider.generate("kek"), kek_id="kek"),
                         subject_keys=True)
    clinic = Clinic(here / "clinic.db")
    key = audit.generate_key()
    log = audit.AuditLog(here / "audit.jsonl", signing_key=key)

    # A GDPR registration: consent, purpose, legal basis and region on every step.
    with ft.context(tenant="acme", subject="ana@example.com", purpose="registration",
                    legal_basis="consent", region="eu"):
        client(signup, "INSERT accounts", {"db.system": "sqlite", "db.namespace": "accounts"},
               {"email": enc.encrypt("ana@example.com", field="email")})
        client(signup, "POST /welcome", {"http.request.method": "POST", "peer.service": "mailer"},
               {"email": "ana@example.com"})
    # Nobody declared this export.
    with ft.context(tenant="acme", subject="ana@example.com", purpose="marketing",
                    legal_basis="legitimate-interest", region="eu"):
        client(signup, "POST /audience", {"http.request.method": "POST",
                                          "peer.service": "adtech"}, {"email": "ana@x.com"})
    # A HIPAA-style record: stored encrypted, read by a clinician (audited).
    with ft.context(tenant="st-mary", subject="patient-42", purpose="treatment",
                    legal_basis="vital-interest", region="eu"):
        token = enc.encrypt("influenza", field="diagnosis")
        client(records, "INSERT records", {"db.system": "sqlite", "db.namespace": "clinic"},
               {"diagnosis": token})
        clinic.db.execute("INSERT INTO records VALUES ('st-mary', 'patient-42', ?)", (token,))
    with ft.context(tenant="st-mary", user="dr-house", subject="patient-42", purpose="treatment"):
        log.append("patient.read", resource="patients/42")
    exporter.shutdown()

    # Art. 30 records, from the CLI and in code.
    assert cli(["ropa", "--declared", str(here / "map.toml"), "--from", str(here / "spans.jsonl"),
                "--format", "html", "--out", str(here / "ropa.html")]) == 0
    declared = ftmap.load_declared(here / "map.toml")
    observed = ftmap.build([here / "spans.jsonl"])
    declared.apply_regions(observed)
    rows = privacy.ropa(observed, declared, controller="Acme Ltd, dpo@acme.example")
    assert rows[0]["purpose"] == "marketing"
    assert not rows[0]["declared"]
    (registration,) = [r for r in rows if r["purpose"] == "registration"]
    assert registration["categories_of_data"]["status"] == "evidenced"
    assert registration["categories_of_data"]["sample_traces"]
    assert registration["legal_bases"]["value"] == ["consent"]
    assert registration["recipients"]["transfer_safeguards"] == {"mailer": "DPA-2026-003"}
    assert registration["retention"]["value"] == ["P3Y"]
    print("RoPA:", [(r["purpose"], "declared" if r["declared"] else "UNDECLARED") for r in rows])

    # "Who accessed patient 42's record, and what do you hold about them?"
    evidence = privacy.gather("patient-42", tenant="st-mary", sources=[here / "spans.jsonl"],
                              audit=here / "audit.jsonl", pseudonymizer=pseudonymizer)
    bundle = privacy.subject_report("patient-42", tenant="st-mary", evidence=evidence,
                                    stores=[clinic], encryptor=enc, signing_key=key,
                                    audit_log=log)
    log.close()
    body = privacy.verify_signed(bundle, public_key=key.public_key())
    assert [(a["actor"], a["action"]) for a in body["accesses"]] == [("dr-house", "patient.read")]
    assert [r["node"] for r in body["recipients"]] == ["sqlite/clinic"]
    assert body["data"][0]["records"] == [{"patient": "patient-42", "diagnosis": "influenza"}]
    (here / "dsar-patient-42.json").write_text(json.dumps(bundle, indent=1))
    (here / "dsar-patient-42.html").write_text(privacy.bundle_html(bundle))
    decrypts = list(audit.query(here / "audit.jsonl", action="privacy.dsar.decrypt"))
    assert [d.purpose for d in decrypts] == ["dsar"]
    audit.verify(here / "audit.jsonl", public_key=key.public_key())
    print("DSAR patient-42: accesses", [a["actor"] for a in body["accesses"]],
          "recipients", [r["node"] for r in body["recipients"]])
    ft.configure(lineage=None)


if __name__ == "__main__":
    main()
