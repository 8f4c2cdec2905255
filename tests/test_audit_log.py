"""AuditLog behaviour: defaults from the flow, scrubbing, durability, receipts, sinks,
automatic flow events, queries and the CLI."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider

import flowtrace as ft
from flowtrace import audit
from flowtrace.audit._event import encode_action
from flowtrace.cli import main
from flowtrace.errors import (
    AuditCorruptedError,
    AuditWriteError,
    ConfigError,
    RecordModifiedError,
    TenantSwitchError,
    TruncationError,
)
from flowtrace.flowcontext import EventKind, notify


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line)["record"]["event"] for line in path.read_bytes().splitlines()]


class TestRecording:
    """What an append stores."""

    def test_defaults_come_from_the_flow_context_and_trace(self, tmp_path: Path) -> None:
        """Tenant, actor, subject, purpose, region, service and trace id are filled in."""
        ft.configure(service="ehr")
        tracer = TracerProvider().get_tracer("t")
        path = tmp_path / "a.jsonl"
        scope = ft.context(
            tenant="st-mary", user="dr-house", subject="42", purpose="treatment", region="eu"
        )
        with audit.AuditLog(path) as log, tracer.start_as_current_span("req") as span, scope:
            receipt = log.append("patient.read", resource="patients/42")
        assert (receipt.durable, receipt.sequence) == (True, 0)
        (event,) = _events(path)
        assert event == {
            "action": "patient.read", "actor": "dr-house", "outcome": "success",
            "purpose": "treatment", "region": "eu", "resource": "patients/42",
            "service": "ehr", "subject": "42", "tenant": "st-mary",
            "trace_id": f"{span.get_span_context().trace_id:032x}", "ts": event["ts"],
        }
        assert dt.datetime.fromisoformat(event["ts"].replace("Z", "+00:00")).tzinfo

    def test_explicit_fields_win_over_context(self, tmp_path: Path) -> None:
        """A field given to append() overrides the flow context's value."""
        with audit.AuditLog(tmp_path / "a.jsonl") as log, ft.context(tenant="a", user="u"):
            log.append("x.y", actor="system", outcome="denied", reason="policy 7")
        (event,) = _events(tmp_path / "a.jsonl")
        assert (event["actor"], event["tenant"], event["outcome"], event["reason"]) == (
            "system", "a", "denied", "policy 7")

    def test_details_are_scrubbed_before_they_are_written(self, tmp_path: Path) -> None:
        """An e-mail or card number in details never reaches the file in clear."""
        path = tmp_path / "a.jsonl"
        with audit.AuditLog(path) as log:
            log.append("patient.export", details={
                "to": "bob@example.com", "note": "card 4111 1111 1111 1111", "pages": 3})
        raw = path.read_text()
        assert "bob@example.com" not in raw
        assert "4111 1111" not in raw
        assert _events(path)[0]["details"]["pages"] == 3

    @pytest.mark.parametrize(
        ("fields", "match"),
        [
            ({"outcome": "maybe"}, "outcome must be one of"),
            ({"actor": 7}, "'actor' must be a str"),
            ({"colour": "red"}, "unknown audit field 'colour'"),
            ({"details": {"x": float("nan")}}, "cannot be stored"),
            ({"data_categories": "health"}, "sequence of str"),
        ],
    )
    def test_bad_fields_are_refused_and_nothing_is_written(
        self, tmp_path: Path, fields: dict[str, Any], match: str
    ) -> None:
        """Invalid input raises AuditWriteError naming the problem; the log stays empty."""
        path = tmp_path / "a.jsonl"
        with audit.AuditLog(path) as log:
            with pytest.raises(AuditWriteError, match=match):
                log.append("x.y", **fields)
            assert log.size == 0
        assert path.read_bytes() == b""

    @given(
        action=st.text(min_size=1, max_size=20),
        actor=st.none() | st.text(max_size=10),
        outcome=st.sampled_from(["success", "denied", "error"]),
        categories=st.lists(st.text(max_size=5), max_size=3),
        details=st.dictionaries(st.text(max_size=5), st.integers(0, 99) | st.text(max_size=8),
                                max_size=3),
    )
    @settings(max_examples=150, deadline=None)
    def test_fast_encoder_equals_the_event_encoder(
        self, action: str, actor: str | None, outcome: str, categories: list[str],
        details: dict[str, Any],
    ) -> None:
        """append()'s hot path stores exactly what AuditEvent.from_context().encode() gives."""
        fields = {"actor": actor, "outcome": outcome, "data_categories": categories,
                  "details": details, "ts": "2026-01-01T00:00:00.000000Z"}
        try:
            fast = encode_action(action, dict(fields))
        except AuditWriteError:
            with pytest.raises(AuditWriteError):
                audit.AuditEvent.from_context(action, **fields).encode()
            return
        assert fast == audit.AuditEvent.from_context(action, **fields).encode()


class TestDurability:
    """Receipts, group commit and failure reporting."""

    @pytest.mark.parametrize("durability", ["group", "fsync", "none"])
    def test_every_mode_yields_one_gap_free_chain(self, tmp_path: Path, durability: str) -> None:
        """Four threads x 100 appends: sequences 0..399, each receipt durable and distinct."""
        key = audit.generate_key()
        path = tmp_path / "a.jsonl"
        receipts: list[audit.Receipt] = []
        with audit.AuditLog(path, signing_key=key, durability=durability) as log:  # type: ignore[arg-type]
            def work() -> None:
                receipts.extend(log.append("x.y") for _ in range(100))

            threads = [threading.Thread(target=work) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert sorted(r.wait() for r in receipts) == list(range(400))
        assert audit.verify(path, public_key=key.public_key()).records == 400

    def test_wait_false_returns_a_pending_receipt_that_becomes_durable(
        self, tmp_path: Path
    ) -> None:
        """With wait=False the receipt says whether the record is durable yet."""
        with audit.AuditLog(tmp_path / "a.jsonl", group_max_delay=0.05) as log:
            receipt = log.append("x.y", wait=False)
            assert "pending" in repr(receipt) or receipt.durable
            assert receipt.wait(timeout=10) == 0
            assert receipt.durable
            assert receipt.record_hash is not None

    def test_a_failing_write_raises_and_leaves_the_chain_consistent(self, tmp_path: Path) -> None:
        """If the disk refuses a batch, append raises AuditWriteError; later appends chain on."""
        path = tmp_path / "a.jsonl"
        log = audit.AuditLog(path, durability="fsync")
        log.append("first")
        sink: Any = log.sink
        original = sink.write
        sink.write = lambda lines, cp: (_ for _ in ()).throw(OSError(28, "No space left"))
        with pytest.raises(AuditWriteError, match="No space left"):
            log.append("lost")
        sink.write = original
        assert log.append("second").sequence == 1
        log.close()
        assert [e["action"] for e in _events(path)] == ["first", "second"]
        audit.verify(path, public_key=None)

    def test_a_closed_log_refuses_appends(self, tmp_path: Path) -> None:
        """append() after close() raises instead of dropping the record."""
        log = audit.AuditLog(tmp_path / "a.jsonl")
        log.close()
        with pytest.raises(AuditWriteError, match="closed"):
            log.append("x.y")

    def test_bad_options_are_config_errors(self, tmp_path: Path) -> None:
        """Unknown durability or a zero checkpoint interval raise ConfigError."""
        with pytest.raises(ConfigError):
            audit.AuditLog(tmp_path / "a.jsonl", durability="sometimes")  # type: ignore[arg-type]
        with pytest.raises(ConfigError):
            audit.AuditLog(tmp_path / "b.jsonl", checkpoint_every=0)

    def test_opening_a_log_with_a_torn_tail_fails_closed(self, tmp_path: Path) -> None:
        """A writer refuses to extend a log whose last line is torn."""
        path = tmp_path / "a.jsonl"
        path.write_bytes(b'{"hash":"abc')
        with pytest.raises(AuditCorruptedError, match="recover"):
            audit.AuditLog(path)


class TestCheckpoints:
    """Signed checkpoints make truncation evident."""

    def test_cutting_the_last_ten_records_is_detected(self, tmp_path: Path) -> None:
        """The measured gap of plain hash chains: dropping the tail fails verification."""
        key = audit.generate_key()
        path = tmp_path / "a.jsonl"
        with audit.AuditLog(path, signing_key=key, checkpoint_every=25) as log:
            for i in range(100):
                log.append("x.y", resource=str(i))
        lines = path.read_bytes().splitlines(keepends=True)
        path.write_bytes(b"".join(lines[:-10]))
        assert audit.verify(path, public_key=None).records == 90  # chain alone: unnoticed
        with pytest.raises(TruncationError) as info:
            audit.verify(path, public_key=key.public_key())
        assert info.value.sequence == 90

    def test_an_unsealed_tail_fails_unless_explicitly_allowed(
        self, tmp_path: Path
    ) -> None:
        """Records after the last checkpoint fail verify by default; allow_unsealed=N
        accepts (and reports) a tail of at most N."""
        key = audit.generate_key()
        path = tmp_path / "a.jsonl"
        log = audit.AuditLog(path, signing_key=key, checkpoint_every=10, durability="fsync")
        for _ in range(13):
            log.append("x.y")
        with pytest.raises(TruncationError, match="not covered") as info:
            audit.verify(path, public_key=key.public_key())
        assert info.value.sequence == 10
        report = audit.verify(path, public_key=key.public_key(), allow_unsealed=3)
        assert (report.signed_records, report.unsigned_tail) == (10, 3)
        with pytest.raises(TruncationError, match="allowed: 2"):
            audit.verify(path, public_key=key.public_key(), allow_unsealed=2)
        assert log.checkpoint() is not None
        assert audit.verify(path, public_key=key.public_key())
        log.close()

    def test_inclusion_proof_for_one_record(self, tmp_path: Path) -> None:
        """An auditor checks one record against the signed root without the rest of the log."""
        key = audit.generate_key()
        path = tmp_path / "a.jsonl"
        with audit.AuditLog(path, signing_key=key) as log:
            for i in range(37):
                log.append("patient.read", subject=str(i))
        proof = audit.inclusion_proof(path, 20, public_key=key.public_key())
        event = audit.verify_inclusion(proof.to_json(), public_key=key.public_key())
        assert event["subject"] == "20"
        with pytest.raises(ft.FlowtraceError):
            audit.verify_inclusion(proof.to_json(), public_key=audit.generate_key().public_key())


class TestSqlite:
    """The SQLite sink is INSERT-only and verifiable."""

    def test_update_and_delete_are_rejected_and_tampering_detected(self, tmp_path: Path) -> None:
        """Triggers abort UPDATE/DELETE; a row edited behind their back fails verify()."""
        key = audit.generate_key()
        db = tmp_path / "a.db"
        with audit.AuditLog(audit.SqliteSink(db), signing_key=key) as log:
            for i in range(5):
                log.append("x.y", resource=str(i))
        conn = sqlite3.connect(db)
        for sql in ("UPDATE audit_log SET line = x'00'", "DELETE FROM audit_log",
                    "DELETE FROM audit_log_checkpoints"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(sql)
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("UPDATE audit_log SET line = replace(line, '\"3\"', '\"9\"') WHERE seq = 3")
        conn.commit()
        conn.close()
        reader = audit.SqliteSink(db)
        with pytest.raises(RecordModifiedError) as info:
            audit.verify(reader, public_key=key.public_key())
        reader.close()
        assert info.value.sequence == 3


class TestAutomaticEvents:
    """configure(audit_log=...) records the foundation's and capabilities' flow events."""

    def test_cross_tenant_and_switch_land_in_the_log(self, tmp_path: Path) -> None:
        """A cross_tenant scope and the switch inside it become audit records."""
        path = tmp_path / "a.jsonl"
        with audit.AuditLog(path) as log:
            ft.configure(audit_log=log)
            with (
                ft.context(tenant="acme", user="ops"),
                ft.cross_tenant(reason="dashboard"),
                ft.context(tenant="globex"),
            ):
                pass
        events = _events(path)
        assert [e["action"] for e in events] == ["flowtrace.cross_tenant",
                                                 "flowtrace.tenant_switch"]
        assert events[0]["reason"] == "dashboard"
        assert events[0]["actor"] == "ops"
        assert events[1]["details"] == {"from_tenant": "acme", "to_tenant": "globex"}

    def test_decrypt_events_keep_their_facts(self, tmp_path: Path) -> None:
        """A decrypt event (as the crypto capability reports it) is stored with its facts."""
        path = tmp_path / "a.jsonl"
        with audit.AuditLog(path) as log:
            ft.configure(audit_log=log)
            with ft.context(tenant="acme", user="dr-house"):
                notify(EventKind.DECRYPT, {
                    "actor": "dr-house", "tenant": "acme", "subject": "42",
                    "field": "diagnosis", "key_id": "ab12", "key_version": 3,
                    "reason": "treatment", "outcome": "ok", "error": None})
                notify(EventKind.MESSAGE_REFUSED, {"reason": "no tenant"})
        decrypt, refused = _events(path)
        assert (decrypt["action"], decrypt["outcome"], decrypt["resource"]) == (
            "flowtrace.decrypt", "success", "diagnosis")
        assert decrypt["details"] == {"field": "diagnosis", "key_id": "ab12", "key_version": 3}
        assert (refused["action"], refused["outcome"]) == ("flowtrace.message_refused", "denied")

    def test_real_field_decrypts_and_shreds_are_audited(self, tmp_path: Path) -> None:
        """FieldEncryptor.decrypt and shred (flowtrace.crypto) each leave an audit record."""
        from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider, MemoryVaultStore

        provider = LocalKeyProvider.open_keyring(
            tmp_path / "keyring.json", master_key=LocalKeyProvider.new_master_key(),
            create=["kek-1"],
        )
        vault = KeyVault(provider, MemoryVaultStore(), kek_id="kek-1")
        enc = FieldEncryptor(vault, subject_keys=True)
        path = tmp_path / "a.jsonl"
        with audit.AuditLog(path) as log:
            ft.configure(audit_log=log)
            with ft.context(tenant="st-mary", user="dr-house"):
                token = enc.encrypt("asthma", field="diagnosis", subject="42")
                assert enc.decrypt(token, field="diagnosis", reason="treatment") == "asthma"
                enc.shred(subject="42", reason="erasure request")
        vault.close()
        decrypt, shred = _events(path)
        assert (decrypt["action"], decrypt["actor"], decrypt["subject"], decrypt["resource"],
                decrypt["reason"], decrypt["outcome"]) == (
            "flowtrace.decrypt", "dr-house", "42", "diagnosis", "treatment", "success")
        assert "asthma" not in path.read_text()
        assert (shred["action"], shred["reason"]) == ("flowtrace.shred", "erasure request")

    def test_an_unrecordable_cross_tenant_scope_is_refused(self, tmp_path: Path) -> None:
        """If the audit log cannot write, entering cross_tenant raises (fail closed)."""
        log = audit.AuditLog(tmp_path / "a.jsonl")
        log.close()
        ft.configure(audit_log=log)
        entered = False
        with pytest.raises(AuditWriteError), ft.context(tenant="a"), ft.cross_tenant(reason="r"):
            entered = True
        assert not entered

    def test_configure_registers_the_observer_even_after_a_reset(self, tmp_path: Path) -> None:
        """configure(audit_log=log) alone wires flow events to the log (observers reset)."""
        import flowtrace.testing

        path = tmp_path / "a.jsonl"
        log = audit.AuditLog(path)
        flowtrace.testing.reset()  # drops every non-default observer
        ft.configure(audit_log=log)
        with ft.context(tenant="a"), ft.cross_tenant(reason="after reset"):
            pass
        log.close()
        assert [e["reason"] for e in _events(path)] == ["after reset"]
        with pytest.raises(ConfigError, match="AuditLog"):
            ft.configure(audit_log="audit.jsonl")

    def test_without_an_audit_log_flow_events_are_ignored(self, tmp_path: Path) -> None:
        """No configured log: the observer does nothing and scopes work as before."""
        audit.AuditLog(tmp_path / "a.jsonl").close()  # installs the observer
        with ft.context(tenant="a"), ft.cross_tenant(reason="r"):
            pass
        with pytest.raises(TenantSwitchError), ft.context(tenant="a"), ft.context(tenant="b"):
            pass


class TestQueryAndCli:
    """Who accessed patient 42 in the last six months, and why?"""

    @pytest.fixture
    def signed_log(self, tmp_path: Path) -> tuple[Path, Path]:
        key = audit.generate_key()
        path = tmp_path / "a.jsonl"
        old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=400)).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ")
        with audit.AuditLog(path, signing_key=key) as log:
            log.append("patient.read", subject="42", actor="dr-old", ts=old, purpose="care")
            log.append("patient.read", subject="42", actor="dr-house", purpose="treatment")
            log.append("patient.read", subject="7", actor="dr-house")
            log.append("patient.export", subject="42", actor="intern", outcome="denied",
                       reason="not on care team")
        pub = tmp_path / "k.pub"
        pub.write_bytes(audit.public_key_pem(key.public_key()))
        return path, pub

    def test_query_filters_by_subject_and_time(self, signed_log: tuple[Path, Path]) -> None:
        """Only subject 42's records from the last six months come back, with sequences."""
        path, _ = signed_log
        found = list(audit.query(path, subject="42", since="6mo"))
        assert [(e.sequence, e.actor, e.outcome) for e in found] == [
            (1, "dr-house", "success"), (3, "intern", "denied")]

    @pytest.mark.parametrize("text", ["6mo", "30d", "12h", "1y", "2w", "2026-01-01"])
    def test_since_forms(self, text: str) -> None:
        """Relative durations and ISO dates parse to a UTC instant in the past."""
        now = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
        assert audit.parse_since(text, now) < now

    def test_cli_query_prints_who_and_why(
        self, signed_log: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`flowtrace audit query --subject 42 --since 6mo` answers the regulator's question."""
        path, _ = signed_log
        assert main(["audit", "query", str(path), "--subject", "42", "--since", "6mo"]) == 0
        out = capsys.readouterr().out.splitlines()
        assert len(out) == 2
        assert "dr-house" in out[0]
        assert "why=treatment" in out[0]
        assert "intern" in out[1]
        assert "why=not on care team" in out[1]
        assert "denied" in out[1]

    def test_cli_verify_exit_codes_and_json(
        self, signed_log: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """verify exits 0 with a report, 1 naming the bad sequence after tampering."""
        path, pub = signed_log
        assert main(["audit", "verify", str(path), "--public-key", str(pub)]) == 0
        assert "OK: 4 records" in capsys.readouterr().out
        assert main(["audit", "verify", str(path), "--public-key", str(pub), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert (report["ok"], report["records"], report["signed_records"]) == (True, 4, 4)
        path.write_bytes(path.read_bytes().replace(b"dr-house", b"dr-houze", 1))
        assert main(["audit", "verify", str(path), "--public-key", str(pub), "--json"]) == 1
        failure = json.loads(capsys.readouterr().out)
        assert (failure["ok"], failure["error"], failure["sequence"]) == (
            False, "RecordModifiedError", 1)
        assert main(["audit", "verify", str(path), "--public-key", str(pub)]) == 1
        assert "RecordModifiedError" in capsys.readouterr().err

    def test_cli_keygen_then_sign_and_verify(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """keygen writes a 0600 private key and a public key that verify accepts."""
        key_path = tmp_path / "audit.pem"
        assert main(["audit", "keygen", "--out", str(key_path)]) == 0
        assert key_path.stat().st_mode & 0o777 == 0o600
        assert main(["audit", "keygen", "--out", str(key_path)]) == 1  # never overwrite
        path = tmp_path / "a.jsonl"
        with audit.AuditLog(path, signing_key=key_path) as log:
            log.append("x.y")
        pub = str(key_path) + ".pub"
        assert main(["audit", "verify", str(path), "--public-key", pub]) == 0
        assert main(["audit", "prove", str(path), "0", "--public-key", pub]) == 0
        proof = tmp_path / "proof.json"
        proof.write_text(capsys.readouterr().out.splitlines()[-1])
        assert main(["audit", "check-proof", str(proof), "--public-key", pub]) == 0


class TestSurface:
    """The public namespace and the demo step."""

    def test_all_lists_exactly_the_public_names(self) -> None:
        """flowtrace.audit.__all__ equals its public, non-module attributes."""
        import types

        public = {
            name for name, value in vars(audit).items()
            if not name.startswith("_") and not isinstance(value, types.ModuleType)
            and name != "annotations"
        }
        assert sorted(audit.__all__) == sorted(public)

    def test_namespace_is_reachable_as_ft_audit(self) -> None:
        """``import flowtrace as ft; ft.audit.AuditLog`` works (lazy namespace import)."""
        assert ft.audit is audit
        with pytest.raises(AttributeError):
            _ = ft.no_such_namespace  # type: ignore[attr-defined]

    def test_demo_step_runs(self, tmp_path: Path) -> None:
        """The audit demo step records, verifies and catches tampering offline."""
        from flowtrace._demo import audit as step

        said: list[str] = []
        step.run(tmp_path, said.append)
        assert any("edited record is caught" in line for line in said)
        assert any("last 10 records is caught" in line for line in said)
        assert any("appended without the key is caught" in line for line in said)
