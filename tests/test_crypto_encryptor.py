"""FieldEncryptor: tenancy, subjects, audited decrypts, records, equality lookups."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import pytest

import flowtrace
import flowtrace.crypto
from flowtrace import EventKind, FlowEvent
from flowtrace.classify import Schema
from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider, _token
from flowtrace.errors import (
    AuditWriteError,
    InvalidContextValueError,
    KeyDestroyedError,
    KeyRetiredError,
    MalformedTokenError,
    MissingSubjectError,
    MissingTenantError,
    TamperedTokenError,
    WrongFieldError,
    WrongTenantError,
)


@pytest.fixture
def enc() -> FieldEncryptor:
    return FieldEncryptor(KeyVault(LocalKeyProvider.generate("kek"), kek_id="kek"))


def test_public_namespace_is_deliberate() -> None:
    """flowtrace.crypto exports exactly its __all__, each documented and public-looking."""
    public = {n for n in dir(flowtrace.crypto) if n[0] not in "_@"} - {"hazmat", "annotations"}
    assert public == set(flowtrace.crypto.__all__)
    for name in flowtrace.crypto.__all__:
        obj = getattr(flowtrace.crypto, name)
        assert obj.__doc__, name
        if isinstance(obj, type):
            assert obj.__module__ == "flowtrace.crypto", name
    # One spelling for records: the FieldEncryptor methods (no module-level functions).
    assert not {"encrypt_record", "decrypt_record"} & public


def test_encrypt_and_decrypt_need_a_tenant(enc: FieldEncryptor) -> None:
    """Outside a tenant scope both directions raise MissingTenantError."""
    with pytest.raises(MissingTenantError):
        enc.encrypt("v", field="f")
    with flowtrace.context(tenant="acme"):
        token = enc.encrypt("v", field="f")
    with pytest.raises(MissingTenantError):
        enc.decrypt(token, field="f")


def test_bad_arguments_are_refused(enc: FieldEncryptor) -> None:
    """Non-str values, empty fields and non-str context values raise clear errors."""
    with flowtrace.context(tenant="acme"):
        with pytest.raises(TypeError, match="encrypt_value"):
            enc.encrypt(42, field="f")  # type: ignore[arg-type]
        with pytest.raises(InvalidContextValueError):
            enc.encrypt("v", field="")
        with pytest.raises(InvalidContextValueError):
            enc.encrypt("v", field="f", context={"id": 7})  # type: ignore[dict-item]


def test_satisfies_the_scrubber_encrypt_strategy(enc: FieldEncryptor) -> None:
    """encrypt(value, *, field) -> str is the scrubber's 'encrypt' strategy signature."""
    strategy = enc.encrypt
    with flowtrace.context(tenant="acme"):
        token = strategy("alice@example.com", field="email")
        assert isinstance(token, str)
        assert "alice" not in token
        assert enc.decrypt(token, field="email") == "alice@example.com"


def test_every_decrypt_is_reported_without_plaintext(
    enc: FieldEncryptor, events: list[FlowEvent]
) -> None:
    """Misses, hits and failures each emit one decrypt event with the documented names."""
    with flowtrace.context(tenant="acme", user="dr-who", subject="patient-42"):
        token = enc.encrypt("diagnosis: flu", field="diagnosis", subject="patient-42")
        fresh = FieldEncryptor(KeyVault(enc.vault._provider, enc.vault.store, kek_id="kek"))
        fresh.decrypt(token, field="diagnosis", reason="treatment")
        fresh.decrypt(token, field="diagnosis", reason="treatment")
        with pytest.raises(WrongFieldError):
            fresh.decrypt(token, field="email", reason="curiosity")
    decrypts = [e for e in events if e.kind == EventKind.DECRYPT]
    info = enc.inspect(token)
    base = {
        "actor": "dr-who",
        "tenant": "acme",
        "subject": "patient-42",
        "key_id": info.key_id,
        "key_version": 1,
    }
    assert [dict(e.attributes) for e in decrypts] == [
        {
            **base,
            "field": "diagnosis",
            "reason": "treatment",
            "outcome": "ok",
            "error": None,
            "cache": "miss",
        },
        {
            **base,
            "field": "diagnosis",
            "reason": "treatment",
            "outcome": "ok",
            "error": None,
            "cache": "hit",
        },
        {
            **base,
            "field": "email",
            "reason": "curiosity",
            "outcome": "error",
            "error": "WrongFieldError",
            "cache": "hit",
        },
    ]
    for event in decrypts:
        assert "flu" not in json.dumps(dict(event.attributes))
        assert token not in json.dumps(dict(event.attributes))


def test_failures_before_key_lookup_are_reported_too(
    enc: FieldEncryptor, events: list[FlowEvent]
) -> None:
    """Garbage tokens and missing tenants still produce a decrypt event (outcome error)."""
    with flowtrace.context(tenant="acme"), pytest.raises(Exception):  # noqa: B017
        enc.decrypt("garbage!", field="f", reason="r")
    with pytest.raises(MissingTenantError):
        enc.decrypt("garbage!", field="f")
    assert [(e.attributes["error"], e.attributes["tenant"]) for e in events] == [
        ("MalformedTokenError", "acme"),
        ("MissingTenantError", None),
    ]


def test_a_failing_audit_observer_withholds_the_plaintext(enc: FieldEncryptor) -> None:
    """If the decrypt cannot be recorded, decrypt raises and returns nothing (fail closed),
    whether its key was cached or not, after exactly one attempt to record it."""
    attempts: list[FlowEvent] = []

    def broken_audit(event: FlowEvent) -> None:
        attempts.append(event)
        raise AuditWriteError("disk full")

    with flowtrace.context(tenant="acme"):
        token = enc.encrypt("v", field="f")
        flowtrace.add_observer(broken_audit)
        try:
            for cached in (False, True):
                attempts.clear()
                with pytest.raises(AuditWriteError):
                    enc.decrypt(token, field="f")
                assert len(attempts) == 1, cached
                flowtrace.remove_observer(broken_audit)
                assert enc.decrypt(token, field="f") == "v"  # now cached
                flowtrace.add_observer(broken_audit)
        finally:
            flowtrace.remove_observer(broken_audit)


def test_shred_is_reported(enc: FieldEncryptor, events: list[FlowEvent]) -> None:
    """shred() emits one shred event naming the destroyed key and the reason."""
    with flowtrace.context(tenant="acme", user="dpo"):
        token = enc.encrypt("v", field="f", subject="s-1")
        receipt = enc.shred(subject="s-1", reason="erasure request 9")
    (event,) = [e for e in events if e.kind == EventKind.SHRED]
    assert dict(event.attributes) == {
        "actor": "dpo",
        "tenant": "acme",
        "subject": "s-1",
        "scope": "subject",
        "reason": "erasure request 9",
        "key_id": enc.inspect(token).key_id,
        "key_count": 1,
        "destroyed_at": receipt.destroyed_at,
        "outcome": "ok",
    }
    assert receipt.to_dict()["keys"] == [
        {"key_id": enc.inspect(token).key_id, "subject": "s-1", "versions": [1]}
    ]


def test_subject_keys_follow_the_flow_context(enc: FieldEncryptor) -> None:
    """subject_keys=True keys by the context's subject, and insists on one."""
    per_subject = FieldEncryptor(enc.vault, subject_keys=True)
    with flowtrace.context(tenant="acme", subject="alice"):
        alice = per_subject.encrypt("a", field="f")
    with flowtrace.context(tenant="acme", subject="bob"):
        bob = per_subject.encrypt("b", field="f")
    assert per_subject.inspect(alice).key_id != per_subject.inspect(bob).key_id
    with flowtrace.context(tenant="acme"):
        with pytest.raises(MissingSubjectError):
            per_subject.encrypt("x", field="f")
        per_subject.shred(subject="alice")
        with pytest.raises(KeyDestroyedError):
            per_subject.decrypt(alice, field="f")
        assert per_subject.decrypt(bob, field="f") == "b"


SCHEMA = Schema.from_dict(
    {
        "email": "restricted:pii",
        "ssn": "restricted:pii",
        "name": "confidential:pii",
        "visits.diagnosis": "restricted:phi",
        "salary": "restricted:financial",
    }
)
RECORD: dict[str, Any] = {
    "id": 7,
    "name": "Alice",
    "email": "alice@example.com",
    "ssn": None,
    "salary": 52000,
    "visits": [
        {"date": "2026-01-02", "diagnosis": "flu"},
        {"date": "2026-02-03", "diagnosis": "cold"},
    ],
}


def test_records_encrypt_only_restricted_fields(enc: FieldEncryptor) -> None:
    """encrypt_record turns RESTRICTED fields into tokens, leaves the rest, round-trips."""
    with flowtrace.context(tenant="acme"):
        stored = enc.encrypt_record(RECORD, SCHEMA, context={"row": "7"})
        assert (stored["name"], stored["id"], stored["ssn"]) == ("Alice", 7, None)
        assert stored["visits"][0]["date"] == "2026-01-02"
        for value in (stored["email"], stored["salary"], stored["visits"][1]["diagnosis"]):
            assert enc.inspect(value).key_version == 1
        assert "alice@example.com" not in json.dumps(stored)
        assert RECORD["email"] == "alice@example.com"  # input untouched
        assert enc.decrypt_record(stored, SCHEMA, context={"row": "7"}, reason="export") == RECORD
        moved = dict(stored, visits=[stored["visits"][1], stored["visits"][0]])
        assert (
            enc.decrypt_record(moved, SCHEMA, context={"row": "7"})["visits"][0]["diagnosis"]
            == "cold"
        )
        with pytest.raises(WrongFieldError):
            enc.decrypt_record({"email": stored["salary"]}, SCHEMA, context={"row": "7"})


def test_deterministic_mode_gives_equal_tokens_for_equal_values(enc: FieldEncryptor) -> None:
    """Deterministic tokens repeat for equal inputs and still bind the field."""
    with flowtrace.context(tenant="acme"):
        a = enc.encrypt("alice@example.com", field="email", deterministic=True)
        assert a == enc.encrypt("alice@example.com", field="email", deterministic=True)
        assert a != enc.encrypt("alice@example.com", field="backup_email", deterministic=True)
        assert enc.inspect(a).deterministic
        assert enc.decrypt(a, field="email") == "alice@example.com"
        enc.vault.rotate("acme")
        terms = enc.deterministic_terms("alice@example.com", field="email")
        assert len(terms) == 2
        assert a in terms


def test_blind_index_lookups_work_across_key_versions(enc: FieldEncryptor) -> None:
    """An index written under v1 is still found after rotation via blind_index_terms."""
    with flowtrace.context(tenant="acme"):
        old_index = enc.blind_index("alice@example.com", field="email")
        assert old_index.startswith("bi1.1.")
        assert old_index != enc.blind_index("alice@example.com", field="email2")
        enc.vault.rotate("acme")
        new_index = enc.blind_index("alice@example.com", field="email")
        assert new_index.startswith("bi1.2.")
        assert enc.blind_index_terms("alice@example.com", field="email") == [new_index, old_index]
        assert old_index not in enc.blind_index_terms("bob@example.com", field="email")
    with flowtrace.context(tenant="globex"):
        assert old_index not in enc.blind_index_terms("alice@example.com", field="email")


def test_json_values_keep_their_type(enc: FieldEncryptor) -> None:
    """encrypt_value/decrypt_value restore numbers, lists and mappings."""
    with flowtrace.context(tenant="acme"):
        for value in (0, 3.5, True, [1, "a"], {"k": [None]}):
            token = enc.encrypt_value(value, field="v")
            assert enc.decrypt_value(token, field="v") == value


# --- once keys are cached: the same checks, errors and events ------------------------------


def test_cached_keys_serve_the_common_call_without_the_vault(
    enc: FieldEncryptor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the first use of a key and field, encrypt and decrypt (with or without a
    context, per tenant or per subject) are served from the key cache's index."""
    per_subject = FieldEncryptor(enc.vault, subject_keys=True)
    with flowtrace.context(tenant="acme", subject="p1"):
        for encryptor in (enc, per_subject):
            encryptor.decrypt(encryptor.encrypt("warm", field="email"), field="email")
        calls: list[str] = []
        for name in ("encryption_key", "decryption_key"):
            original = getattr(enc.vault, name)

            def spy(*args: Any, _name: str = name, _original: Any = original) -> Any:
                calls.append(_name)
                return _original(*args)

            monkeypatch.setattr(enc.vault, name, spy)
        for encryptor in (enc, per_subject):
            for context in (None, {"record": "42"}):
                token = encryptor.encrypt("v", field="email", context=context)
                assert encryptor.decrypt(token, field="email", context=context) == "v"
        assert calls == []
        enc.encrypt("v", field="phone")  # a new field: the general path, once
        assert calls == ["encryption_key"]


def test_argument_errors_are_typed(enc: FieldEncryptor) -> None:
    """Wrong argument shapes raise TypeError or InvalidContextValueError, cached or not."""
    with flowtrace.context(tenant="acme"):
        enc.decrypt(enc.encrypt("warm", field="f"), field="f")
        with pytest.raises(TypeError, match="field"):
            enc.encrypt("v")  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="encrypt_value"):
            enc.encrypt(b"v", field="f")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="unexpected keyword"):
            enc.decrypt("t", field="f", nope=1)  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            enc.encrypt("v", "f")  # type: ignore[misc]
        for field in ("", ["f"], None):
            with pytest.raises(InvalidContextValueError):
                enc.encrypt("v", field=field)  # type: ignore[arg-type]
        for subject in ("", ["s"], 7):
            with pytest.raises(InvalidContextValueError):
                enc.encrypt("v", field="f", subject=subject)  # type: ignore[arg-type]


def test_contexts_of_any_size_are_validated_and_bound(enc: FieldEncryptor) -> None:
    """Large contexts and lone surrogates round-trip; non-str and oversized values raise."""
    big = {f"k{i}": str(i) for i in range(40)}
    surrogate = {"\udc80": "x"}
    with flowtrace.context(tenant="acme"):
        enc.decrypt(enc.encrypt("warm", field="f"), field="f")
        for context in (big, surrogate, MappingProxyType({"row": "1"})):
            token = enc.encrypt("v", field="f", context=context)
            assert enc.decrypt(token, field="f", context=dict(context)) == "v"
            with pytest.raises(TamperedTokenError):
                enc.decrypt(token, field="f")
        with pytest.raises(InvalidContextValueError):
            enc.encrypt("v", field="f", context={"id": 7})  # type: ignore[dict-item]
        with pytest.raises(InvalidContextValueError, match="65535"):
            enc.encrypt("v", field="f", context={"id": "x" * 65_536})
        with pytest.raises(InvalidContextValueError):
            enc.encrypt("v", field="f", context=["id"])  # type: ignore[arg-type]


def test_subject_keys_never_fall_back_to_a_cached_tenant_key(enc: FieldEncryptor) -> None:
    """A per-subject encryptor without a subject raises, even when another encryptor of
    the same vault has the tenant's key and the field cached."""
    per_subject = FieldEncryptor(enc.vault, subject_keys=True)
    with flowtrace.context(tenant="acme"):
        enc.decrypt(enc.encrypt("warm", field="ssn"), field="ssn")
        with pytest.raises(MissingSubjectError):
            per_subject.encrypt("123-45-6789", field="ssn")
    with flowtrace.context(tenant="acme", subject="p1"):
        token = per_subject.encrypt("123-45-6789", field="ssn")
        again = per_subject.encrypt("123-45-6789", field="ssn")
        keyring = enc.vault.keyring("acme", "p1")
        assert keyring is not None
        assert {enc.inspect(t).key_id for t in (token, again)} == {keyring.dek_id.hex()}
        per_subject.shred(subject="p1")
        with pytest.raises(KeyDestroyedError):
            per_subject.decrypt(again, field="ssn")


FAILURES = {
    "wrong_field": WrongFieldError,
    "wrong_tenant": WrongTenantError,
    "wrong_context": TamperedTokenError,
    "tampered_commitment": TamperedTokenError,
    "tampered_nonce": TamperedTokenError,
    "tampered_ciphertext": TamperedTokenError,
    "tampered_header": WrongFieldError,
    "truncated": TamperedTokenError,
    "retired": KeyRetiredError,
    "shredded": KeyDestroyedError,
    "not_base64": MalformedTokenError,
}


def _failing_decrypt(scenario: str, enc: FieldEncryptor) -> tuple[str, str, str, Any]:
    """(token, field, tenant, context) of a decrypt that must fail in ``scenario``, with
    the token's key and field cached: without the defect it would decrypt."""
    with flowtrace.context(tenant="acme"):
        token = enc.encrypt("secret", field="email")
        assert enc.decrypt(token, field="email") == "secret"
    with flowtrace.context(tenant="globex"):
        enc.decrypt(enc.encrypt("warm", field="email"), field="email")
    raw = bytearray(_token.decode_text(token))
    field, tenant, context = "email", "acme", None
    offsets = {
        "tampered_commitment": 20,
        "tampered_nonce": 35,
        "tampered_ciphertext": 50,
        "tampered_header": 12,
    }
    if scenario == "wrong_field":
        field = "phone"
    elif scenario == "wrong_tenant":
        tenant = "globex"
    elif scenario == "wrong_context":
        context = {"record": "1"}
    elif scenario in offsets:
        raw[offsets[scenario]] ^= 0x01
        token = _token.encode_text(bytes(raw))
    elif scenario == "truncated":
        token = _token.encode_text(bytes(raw[:-1]))
    elif scenario == "not_base64":
        token = token[:60] + "!" + token[61:]
    elif scenario == "retired":
        enc.vault.rotate("acme")
        enc.vault.retire("acme", below=2)
    elif scenario == "shredded":
        with flowtrace.context(tenant="acme"):
            enc.shred()
    return token, field, tenant, context


@pytest.mark.parametrize("scenario", list(FAILURES))
def test_each_failure_is_its_typed_error_reported_once(
    enc: FieldEncryptor, scenario: str, events: list[FlowEvent]
) -> None:
    """Every failing decrypt of a cached key raises its own error and emits exactly one
    decrypt event, outcome error."""
    token, field, tenant, context = _failing_decrypt(scenario, enc)
    events.clear()
    with flowtrace.context(tenant=tenant), pytest.raises(FAILURES[scenario]):
        enc.decrypt(token, field=field, context=context)
    (event,) = [e for e in events if e.kind == EventKind.DECRYPT]
    assert event.attributes["outcome"] == "error"
    assert event.attributes["error"] == FAILURES[scenario].__name__
