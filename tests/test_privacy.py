"""Privacy operations: signed bundles and receipts, erasure plans that resume, the
verification pass, subject access from evidence."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.trace import SpanKind

import flowtrace as ft
from flowtrace import audit, lineage, privacy
from flowtrace.crypto import (
    FieldEncryptor,
    KeyVault,
    LocalKeyProvider,
    RetryPolicy,
    SqliteVaultStore,
)
from flowtrace.errors import (
    ErasureError,
    ErasureVerificationError,
    KeyDestroyedError,
    PrivacyError,
    SignatureError,
)
from flowtrace.testing import Capture

from ._privacy_stores import EventLog, SqliteRows

KEY = audit.generate_key()
PSEUDO = lineage.Pseudonymizer(b"p" * 32)
NO_WAIT = RetryPolicy(attempts=3, base_delay=0)


@pytest.fixture
def enc() -> FieldEncryptor:
    return FieldEncryptor(KeyVault(LocalKeyProvider.generate("kek"), kek_id="kek"),
                          subject_keys=True)


def _token(enc: FieldEncryptor, subject: str, value: str = "ana@example.com") -> str:
    with ft.context(tenant="acme", subject=subject):
        return enc.encrypt(value, field="email")


# -- signatures -------------------------------------------------------------------------------


def test_signed_document_verifies_and_returns_its_body() -> None:
    """A signed document verifies with the audit public key and comes back unsigned."""
    doc = {"flowtrace_privacy": 1, "kind": "x", "n": 3}
    assert privacy.verify_signed(privacy.sign(doc, KEY), public_key=KEY.public_key()) == doc


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1, max_size=20), st.integers())
def test_attacker_editing_any_value_is_caught(value: str, number: int) -> None:
    """An attacker who edits a signed receipt (without the key) fails verification."""
    signed = privacy.sign({"flowtrace_privacy": 1, "deleted": "pg/app", "n": 1}, KEY)
    forged = {**signed, "deleted": value, "n": number}
    if (value, number) == ("pg/app", 1):
        return
    with pytest.raises(SignatureError):
        privacy.verify_signed(forged, public_key=KEY.public_key())


def test_attacker_resigning_with_own_key_is_caught() -> None:
    """A receipt re-signed with another key does not verify under the audit key."""
    forged = privacy.sign({"flowtrace_privacy": 1}, audit.generate_key())
    with pytest.raises(SignatureError, match="signed by key"):
        privacy.verify_signed(forged, public_key=KEY.public_key())


def test_unsigned_document_is_refused() -> None:
    """Stripping the signature does not make a document acceptable."""
    with pytest.raises(SignatureError, match="no Ed25519 signature"):
        privacy.verify_signed({"flowtrace_privacy": 1}, public_key=KEY.public_key())


# -- erasure ----------------------------------------------------------------------------------


def test_erasure_shreds_first_deletes_and_lists_manual_tasks(
    enc: FieldEncryptor, tmp_path: Path
) -> None:
    """Shred, then hooks; an append-only store becomes a manual task; every step audited;
    old tokens raise KeyDestroyedError; the verification pass finds nothing."""
    rows = SqliteRows(tmp_path / "app.db", "sqlite/app")
    events = EventLog()
    token = _token(enc, "u-1")
    rows.put("acme", "u-1", token)
    events.events.append({"tenant": "acme", "subject": "u-1", "email": _token(enc, "u-1")})
    rows.put("acme", "u-2", _token(enc, "u-2"))
    log = audit.AuditLog(tmp_path / "audit.jsonl", signing_key=KEY)
    seen: list[tuple[str, str]] = []
    receipt = privacy.erase(
        "u-1", tenant="acme", vault=enc.vault, stores=[rows, events], signing_key=KEY,
        state_file=tmp_path / "state.json", audit_log=log, reason="ticket 981",
        pseudonymizer=PSEUDO, progress=lambda step, status: seen.append((step.id, status)),
    )
    log.close()
    body = privacy.verify_signed(receipt, public_key=KEY.public_key())
    assert [(s["id"], s["status"]) for s in body["steps"]] == [
        ("shred", "shredded"), ("delete:sqlite/app", "deleted"), ("delete:sqlite/events", "manual"),
    ]
    assert body["steps"][0]["shred_receipt"]["subject"] == PSEUDO.pseudonym("u-1", "acme")
    assert "u-1" not in json.dumps(body)
    assert ("shred", "shredded") in seen
    with ft.context(tenant="acme"), pytest.raises(KeyDestroyedError):
        enc.decrypt(token, field="email")
    assert rows.fetch("u-1", "acme") == []
    assert len(rows.fetch("u-2", "acme")) == 1
    report = privacy.verify_erasure("u-1", tenant="acme", stores=[rows, events], encryptor=enc,
                                    tokens=[(token, "email")])
    assert report["checked"] == {"stores": 2, "records": 1, "tokens": 1}
    steps = [e.details["step"] for e in audit.query(tmp_path / "audit.jsonl",
                                                    action="privacy.erasure.step")]
    assert steps == ["shred", "delete:sqlite/app", "delete:sqlite/events"]
    audit.verify(tmp_path / "audit.jsonl", public_key=KEY.public_key())


def test_rerun_skips_finished_steps(enc: FieldEncryptor, tmp_path: Path) -> None:
    """Running the same erasure again repeats nothing (steps are recorded as done)."""
    rows = SqliteRows(tmp_path / "app.db", "sqlite/app")
    kwargs: dict[str, Any] = {"tenant": "acme", "vault": enc.vault, "stores": [rows],
                                  "signing_key": KEY, "state_file": tmp_path / "s.json",
                                  "pseudonymizer": PSEUDO}
    first = privacy.erase("u-1", **kwargs)
    second = privacy.erase("u-1", **kwargs)
    assert rows.calls() == 1
    assert first["steps"] == second["steps"]


class Flaky:
    name, restricted = "redis/cache", ()

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    def fetch(self, subject: str, tenant: str) -> list[dict[str, Any]]:
        return []

    def delete(self, subject: str, tenant: str) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("redis down")


def test_hook_is_retried(enc: FieldEncryptor, tmp_path: Path) -> None:
    """A hook failing twice succeeds on the third attempt."""
    cache = Flaky(2)
    receipt = privacy.erase("u-1", tenant="acme", vault=enc.vault, stores=[cache],
                            signing_key=KEY, state_file=tmp_path / "s.json",
                            pseudonymizer=PSEUDO, retry=NO_WAIT)
    assert cache.calls == 3
    assert receipt["summary"] == {"shredded": 1, "deleted": 1}


def test_failing_hook_raises_and_the_rerun_resumes_there(
    enc: FieldEncryptor, tmp_path: Path
) -> None:
    """A hook failing every attempt raises ErasureError; the shred stays done and the next
    run starts at the failed hook."""
    cache = Flaky(10)
    kwargs: dict[str, Any] = {"tenant": "acme", "vault": enc.vault, "stores": [cache],
                                  "signing_key": KEY, "state_file": tmp_path / "s.json",
                                  "pseudonymizer": PSEUDO, "retry": NO_WAIT}
    with pytest.raises(ErasureError, match="delete:redis/cache failed 3 times"):
        privacy.erase("u-1", **kwargs)
    state = json.loads((tmp_path / "s.json").read_text())
    assert list(state["steps"]) == ["shred"]
    cache.failures = 0
    privacy.erase("u-1", **kwargs)
    assert cache.calls == 4


def test_state_file_of_another_subject_is_refused(enc: FieldEncryptor, tmp_path: Path) -> None:
    """One state file per request: another subject's state is never applied."""
    state = tmp_path / "s.json"
    privacy.erase("u-1", tenant="acme", vault=enc.vault, signing_key=KEY, state_file=state,
                  pseudonymizer=PSEUDO)
    with pytest.raises(ErasureError, match="another subject"):
        privacy.erase("u-2", tenant="acme", vault=enc.vault, signing_key=KEY,
                      state_file=state, pseudonymizer=PSEUDO)


CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from _privacy_stores import SqliteRows
from flowtrace import audit, lineage, privacy
from flowtrace.crypto import KeyVault, LocalKeyProvider, SqliteVaultStore
d = Path({tmp!r})
vault = KeyVault(LocalKeyProvider({{"kek": d.joinpath("kek").read_bytes()}}),
                 SqliteVaultStore(d / "keys.db"), kek_id="kek")
stores = [SqliteRows(d / "app.db", "sqlite/a"),
          SqliteRows(d / "app.db", "sqlite/b", block=d / "entered")]
privacy.erase("u-1", tenant="acme", vault=vault, stores=stores, state_file=d / "state.json",
              signing_key=audit.generate_key(), pseudonymizer=lineage.Pseudonymizer(b"p" * 32))
"""


def test_killed_erasure_resumes_without_repeating_finished_steps(tmp_path: Path) -> None:
    """A process killed (SIGKILL) inside the second hook: the rerun does not shred or call
    the first hook again, finishes the second, and the data is gone."""
    kek = os.urandom(32)
    (tmp_path / "kek").write_bytes(kek)
    vault = KeyVault(LocalKeyProvider({"kek": kek}), SqliteVaultStore(tmp_path / "keys.db"),
                     kek_id="kek")
    enc = FieldEncryptor(vault, subject_keys=True)
    a = SqliteRows(tmp_path / "app.db", "sqlite/a")
    b = SqliteRows(tmp_path / "app.db", "sqlite/b")
    token = _token(enc, "u-1")
    a.put("acme", "u-1", token)
    b.put("acme", "u-1", token)
    code = CHILD.format(tests=str(Path(__file__).parent), tmp=str(tmp_path))
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "entered").exists():
            assert child.poll() is None, "the child ended before reaching the second hook"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(30)
    state = json.loads((tmp_path / "state.json").read_text())
    assert sorted(state["steps"]) == ["delete:sqlite/a", "shred"]
    receipt = privacy.erase("u-1", tenant="acme", vault=vault, stores=[a, b], signing_key=KEY,
                            state_file=tmp_path / "state.json", pseudonymizer=PSEUDO)
    assert (a.calls(), b.calls()) == (1, 2)  # b was interrupted inside its hook
    assert [s["status"] for s in receipt["steps"]] == ["shredded", "deleted", "deleted"]
    assert a.fetch("u-1", "acme") == b.fetch("u-1", "acme") == []
    vault.refresh()
    with ft.context(tenant="acme"), pytest.raises(KeyDestroyedError):
        enc.decrypt(token, field="email")


# -- verification pass ------------------------------------------------------------------------


def test_verification_finds_plaintext_and_live_tokens(enc: FieldEncryptor, tmp_path: Path) -> None:
    """Plaintext left in a store, or a token whose key lives, is a finding (raised)."""
    rows = SqliteRows(tmp_path / "app.db", "sqlite/app")
    rows.put("acme", "u-1", "ana@example.com")
    live = _token(enc, "u-1")
    with pytest.raises(ErasureVerificationError) as caught:
        privacy.verify_erasure("u-1", tenant="acme", stores=[rows], encryptor=enc,
                               tokens=[live])
    assert len(caught.value.findings) == 2  # type: ignore[arg-type]


# -- subject access ---------------------------------------------------------------------------


def _spans() -> list[Any]:
    with Capture() as capture:
        ft.configure(lineage=lineage.LineageConfig(pseudonymizer=PSEUDO))
        tracer = ft.otel.get_tracer()
        schema = ft.Schema.from_dict({"email": "confidential:pii"})
        with ft.context(tenant="acme", subject="u-1", purpose="signup"):
            with tracer.start_as_current_span("INSERT", kind=SpanKind.CLIENT, attributes={
                "db.system": "sqlite", "db.namespace": "app"}):
                ft.map.record_data({"email": "x"}, schema=schema)
            with tracer.start_as_current_span("POST", kind=SpanKind.CLIENT, attributes={
                "http.request.method": "POST", "peer.service": "mailer"}):
                ft.map.record_data({"email": "x"}, schema=schema)
            lineage.record("rollup", inputs="sqlite://app/users#u-1",
                           outputs="sqlite://app/daily", subjects=["u-1"])
        with ft.context(tenant="acme", subject="u-2"), tracer.start_as_current_span(
            "SET", kind=SpanKind.CLIENT, attributes={"db.system": "redis", "db.namespace": "0"}
        ):
            pass
        spans = capture.spans()
    ft.configure()
    return list(spans)


def test_evidence_names_only_the_subjects_recipients() -> None:
    """Recipients come from spans carrying the subject's pseudonym, not another subject's."""
    evidence = privacy.gather("u-1", tenant="acme", spans=_spans(), pseudonymizer=PSEUDO)
    assert sorted(evidence.nodes) == ["mailer", "sqlite/app", "sqlite://app/daily"]
    assert evidence.derived == ["sqlite://app/users#u-1", "sqlite://app/daily"]
    assert privacy.gather("u-1", tenant="globex", spans=_spans(),
                          pseudonymizer=PSEUDO).nodes == {}


def test_no_pseudonym_key_fails_closed() -> None:
    """Without a pseudonym key the subject cannot be found: a PrivacyError, not an empty
    (falsely complete) answer."""
    with pytest.raises(PrivacyError, match="no pseudonym key"):
        privacy.gather("u-1", tenant="acme")


def test_subject_report_decrypts_under_dsar_and_audits_each_decrypt(
    enc: FieldEncryptor, tmp_path: Path
) -> None:
    """The bundle holds the decrypted data, recipients, derived records and accesses; each
    decrypt is an audit record; the bundle is signed; unfetched recipients are listed."""
    rows = SqliteRows(tmp_path / "app.db", "sqlite/app")
    rows.put("acme", "u-1", _token(enc, "u-1"))
    log = audit.AuditLog(tmp_path / "audit.jsonl", signing_key=KEY)
    with ft.context(tenant="acme", user="dr-x", subject="u-1"):
        log.append("profile.read", resource="users/u-1")
    log.close()
    evidence = privacy.gather("u-1", tenant="acme", spans=_spans(), pseudonymizer=PSEUDO,
                              audit=tmp_path / "audit.jsonl")
    log = audit.AuditLog(tmp_path / "audit.jsonl", signing_key=KEY)
    bundle = privacy.subject_report("u-1", tenant="acme", evidence=evidence, stores=[rows],
                                    encryptor=enc, signing_key=KEY, audit_log=log)
    log.close()
    body = privacy.verify_signed(bundle, public_key=KEY.public_key())
    assert body["data"] == [{"store": "sqlite/app",
                             "records": [{"subject": "u-1", "email": "ana@example.com"}]}]
    assert [a["actor"] for a in body["accesses"]] == ["dr-x"]
    assert body["not_fetched"] == ["mailer", "sqlite://app/daily"]
    decrypts = list(audit.query(tmp_path / "audit.jsonl", action="privacy.dsar.decrypt"))
    assert [(d.purpose, d.resource) for d in decrypts] == [("dsar", "sqlite/app#email")]


def test_html_summary_escapes_the_subjects_data() -> None:
    """A value planted by the subject (an attacker controls their own profile) is escaped."""
    page = privacy.bundle_html({
        "tenant": "acme", "recipients": [], "derived": [], "accesses": [],
        "data": [{"store": "sqlite/app", "records": [{"name": "<script>alert(1)</script>"}]}],
    })
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


class Crash(BaseException):
    """Stands in for the process dying (not an Exception: no retry catches it)."""


class Counting:
    restricted = ()

    def __init__(self, name: str, calls: dict[str, int], crash: bool) -> None:
        self.name, self.calls, self.crash = name, calls, crash

    def fetch(self, subject: str, tenant: str) -> list[dict[str, Any]]:
        return []

    def delete(self, subject: str, tenant: str) -> None:
        self.calls[self.name] = self.calls.get(self.name, 0) + 1
        if self.crash:
            self.crash = False
            raise Crash


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=1, max_value=6), st.data())
def test_any_crash_point_resumes_with_each_hook_finished_once(count: int, data: Any) -> None:
    """Wherever the process dies, the rerun completes; only the hook it died in ran twice."""
    import tempfile

    crash_at = data.draw(st.integers(min_value=0, max_value=count - 1))
    calls: dict[str, int] = {}
    stores = [Counting(f"s/{i}", calls, i == crash_at) for i in range(count)]
    vault = KeyVault(LocalKeyProvider.generate("kek"), kek_id="kek")
    with tempfile.TemporaryDirectory() as tmp:
        kwargs: dict[str, Any] = {"tenant": "acme", "vault": vault, "stores": stores,
                                  "signing_key": KEY, "state_file": Path(tmp) / "s.json",
                                  "pseudonymizer": PSEUDO}
        with pytest.raises(Crash):
            privacy.erase("u-1", **kwargs)
        receipt = privacy.erase("u-1", **kwargs)
    assert calls == {f"s/{i}": 2 if i == crash_at else 1 for i in range(count)}
    assert receipt["summary"] == {"shredded": 1, "deleted": count}
