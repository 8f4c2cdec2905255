"""Key providers (local keyring, AWS KMS via moto) and behaviour during a KMS outage."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import flowtrace
from flowtrace.crypto import (
    AwsKmsKeyProvider,
    CachePolicy,
    FieldEncryptor,
    KeyProvider,
    KeyVault,
    LocalKeyProvider,
    RetryPolicy,
    SqliteVaultStore,
)
from flowtrace.errors import (
    ConfigError,
    KeyProviderError,
    KeyProviderUnavailableError,
    UnknownKeyError,
)

from .test_crypto_support import Clock, FlakyProvider

CTX = {"flowtrace:tenant": "acme"}


# --- LocalKeyProvider -------------------------------------------------------------------


def test_local_provider_wraps_bound_to_kek_and_context() -> None:
    """Unwrap needs the same KEK and encryption context; anything else is refused."""
    provider = LocalKeyProvider.generate("a", "b")
    assert isinstance(provider, KeyProvider)
    wrapped = provider.wrap_key("a", b"k" * 32, CTX)
    assert provider.unwrap_key("a", wrapped, CTX) == b"k" * 32
    with pytest.raises(KeyProviderError, match="does not authenticate"):
        provider.unwrap_key("a", wrapped, {"flowtrace:tenant": "globex"})
    with pytest.raises(KeyProviderError):
        provider.unwrap_key("b", wrapped, CTX)
    with pytest.raises(UnknownKeyError, match="no KEK 'zzz'"):
        provider.wrap_key("zzz", b"k" * 32, CTX)


def test_keyring_file_round_trips_under_the_env_master_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A keyring file created with FLOWTRACE_MASTER_KEY reopens with it (mode 0600)."""
    monkeypatch.setenv("FLOWTRACE_MASTER_KEY", LocalKeyProvider.new_master_key())
    path = tmp_path / "keyring.json"
    first = LocalKeyProvider.open_keyring(path, create=["kek-1"])
    wrapped = first.wrap_key("kek-1", b"d" * 32, CTX)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = LocalKeyProvider.open_keyring(path)
    assert second.kek_ids == ("kek-1",)
    assert second.unwrap_key("kek-1", wrapped, CTX) == b"d" * 32


def test_keyring_file_master_key_from_a_secret_file(tmp_path: Path) -> None:
    """master_key_file= reads the master key; KEKs added later are saved."""
    secret = tmp_path / "master.key"
    secret.write_text(LocalKeyProvider.new_master_key() + "\n")
    path = tmp_path / "keyring.json"
    provider = LocalKeyProvider.open_keyring(path, master_key_file=secret, create=["a"])
    provider.add_key("b")
    assert LocalKeyProvider.open_keyring(path, master_key_file=secret).kek_ids == ("a", "b")


def test_keyring_file_refuses_missing_or_wrong_master_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No master key, a malformed one or the wrong one: ConfigError naming the fix."""
    monkeypatch.delenv("FLOWTRACE_MASTER_KEY", raising=False)
    path = tmp_path / "keyring.json"
    with pytest.raises(ConfigError, match="FLOWTRACE_MASTER_KEY"):
        LocalKeyProvider.open_keyring(path)
    LocalKeyProvider.open_keyring(path, master_key=LocalKeyProvider.new_master_key(), create=["k"])
    with pytest.raises(ConfigError, match="does not open"):
        LocalKeyProvider.open_keyring(path, master_key=LocalKeyProvider.new_master_key())
    with pytest.raises(ConfigError, match="32 bytes"):
        LocalKeyProvider.open_keyring(path, master_key="c2hvcnQ")


# --- AWS KMS through real boto3 against moto ---------------------------------------------


@pytest.fixture
def kms() -> Iterator[tuple[Any, str]]:
    """A real boto3 KMS client served by moto, and one symmetric key id."""
    import boto3
    from botocore.config import Config
    from moto import mock_aws

    with mock_aws():
        client = boto3.client(
            "kms", region_name="eu-west-1", config=Config(retries={"max_attempts": 1})
        )
        key_id = client.create_key(Description="flowtrace test KEK")["KeyMetadata"]["KeyId"]
        yield client, key_id


def test_aws_kms_provider_round_trips_field_tokens(kms: tuple[Any, str]) -> None:
    """FieldEncryptor over AwsKmsKeyProvider encrypts and decrypts through KMS."""
    client, key_id = kms
    vault = KeyVault(AwsKmsKeyProvider(client), kek_id=key_id)
    enc = FieldEncryptor(vault)
    with flowtrace.context(tenant="acme"):
        token = enc.encrypt("123-45-6789", field="ssn")
        fresh = FieldEncryptor(KeyVault(AwsKmsKeyProvider(client), vault.store, kek_id=key_id))
        assert fresh.decrypt(token, field="ssn") == "123-45-6789"


def test_aws_kms_errors_map_to_flowtrace_errors(kms: tuple[Any, str]) -> None:
    """Wrong context -> KeyProviderError; unknown key -> UnknownKeyError."""
    client, key_id = kms
    provider = AwsKmsKeyProvider(client)
    wrapped = provider.wrap_key(key_id, b"k" * 32, CTX)
    assert provider.unwrap_key(key_id, wrapped, CTX) == b"k" * 32
    with pytest.raises(KeyProviderError):
        provider.unwrap_key(key_id, wrapped, {"flowtrace:tenant": "globex"})
    with pytest.raises(UnknownKeyError):
        provider.wrap_key("11111111-2222-3333-4444-555555555555", b"k" * 32, CTX)


def test_aws_kms_outage_fails_closed_and_recovers(kms: tuple[Any, str], tmp_path: Path) -> None:
    """KMS unreachable: typed error, no row written, nothing in the DB; then recovery."""
    from botocore.exceptions import EndpointConnectionError

    client, key_id = kms
    outage = {"on": True}

    def unreachable(**_: Any) -> None:
        if outage["on"]:
            raise EndpointConnectionError(endpoint_url="https://kms.eu-west-1.amazonaws.com")

    client.meta.events.register("before-send.kms", unreachable)
    sleeps: list[float] = []
    vault = KeyVault(
        AwsKmsKeyProvider(client),
        SqliteVaultStore(tmp_path / "keys.db"),
        kek_id=key_id,
        retry=RetryPolicy(attempts=3, sleep=sleeps.append),
    )
    enc = FieldEncryptor(vault)
    db = sqlite3.connect(tmp_path / "app.db")
    db.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT)")

    def save(email: str) -> None:
        with flowtrace.context(tenant="acme"):
            db.execute(
                "INSERT INTO people (email) VALUES (?)", (enc.encrypt(email, field="email"),)
            )
        db.commit()

    with pytest.raises(KeyProviderUnavailableError, match="after 3 attempts"):
        save("alice@example.com")
    assert len(sleeps) == 2
    assert db.execute("SELECT count(*) FROM people").fetchone() == (0,)
    db.close()
    for name in ("app.db", "keys.db"):
        assert b"alice@example.com" not in (tmp_path / name).read_bytes()

    outage["on"] = False
    db = sqlite3.connect(tmp_path / "app.db")
    save("alice@example.com")
    (stored,) = db.execute("SELECT email FROM people").fetchone()
    with flowtrace.context(tenant="acme"):
        assert enc.decrypt(stored, field="email") == "alice@example.com"
    db.close()
    vault.close()


# --- outages with a provider we switch off ----------------------------------------------


def test_retries_back_off_then_raise_then_recover() -> None:
    """Transient failures are retried with growing delays, then KeyProviderUnavailableError."""
    flaky = FlakyProvider(LocalKeyProvider.generate("k"))
    sleeps: list[float] = []
    retry = RetryPolicy(attempts=4, base_delay=0.1, max_delay=0.25, sleep=sleeps.append)
    enc = FieldEncryptor(KeyVault(flaky, kek_id="k", retry=retry))
    flaky.down = True
    with flowtrace.context(tenant="acme"), pytest.raises(KeyProviderUnavailableError):
        enc.encrypt("v", field="f")
    assert flaky.calls == 4
    assert len(sleeps) == 3
    assert all(0 <= s <= bound for s, bound in zip(sleeps, (0.1, 0.2, 0.25), strict=True))
    flaky.down = False
    with flowtrace.context(tenant="acme"):
        assert enc.decrypt(enc.encrypt("v", field="f"), field="f") == "v"


def test_encrypt_uses_a_cached_key_until_its_hard_limit_then_fails_closed() -> None:
    """During an outage encrypt keeps the expired active key for stale_grace, no longer."""
    flaky, clock = FlakyProvider(LocalKeyProvider.generate("k")), Clock()
    vault = KeyVault(
        flaky,
        kek_id="k",
        clock=clock,
        cache=CachePolicy(max_age=60, stale_grace=30),
        retry=RetryPolicy(attempts=1),
    )
    enc = FieldEncryptor(vault)
    with flowtrace.context(tenant="acme"):
        first = enc.encrypt("a", field="f")
        flaky.down = True
        clock.advance(70)  # expired, inside the grace
        during = enc.encrypt("b", field="f")
        clock.advance(25)  # 95 s > 60 + 30: hard limit reached
        with pytest.raises(KeyProviderUnavailableError):
            enc.encrypt("c", field="f")
        flaky.down = False
        assert [enc.decrypt(t, field="f") for t in (first, during)] == ["a", "b"]


def test_decrypt_of_an_uncached_key_during_an_outage_is_typed() -> None:
    """A decrypt that needs the KMS while it is down raises KeyProviderUnavailableError."""
    flaky = FlakyProvider(LocalKeyProvider.generate("k"))
    enc = FieldEncryptor(
        KeyVault(flaky, kek_id="k", retry=RetryPolicy(attempts=2, sleep=lambda s: None))
    )
    with flowtrace.context(tenant="acme"):
        token = enc.encrypt("v", field="f")
    reader = FieldEncryptor(
        KeyVault(
            flaky, enc.vault.store, kek_id="k", retry=RetryPolicy(attempts=2, sleep=lambda s: None)
        )
    )
    flaky.down = True
    with flowtrace.context(tenant="acme"), pytest.raises(KeyProviderUnavailableError):
        reader.decrypt(token, field="f")
    flaky.down = False
    with flowtrace.context(tenant="acme"):
        assert reader.decrypt(token, field="f") == "v"


def test_permanent_provider_errors_are_not_retried() -> None:
    """A refusal (e.g. unknown KEK) surfaces at once, without retries."""
    sleeps: list[float] = []
    enc = FieldEncryptor(
        KeyVault(
            LocalKeyProvider.generate("k"), kek_id="missing", retry=RetryPolicy(sleep=sleeps.append)
        )
    )
    with flowtrace.context(tenant="acme"), pytest.raises(UnknownKeyError):
        enc.encrypt("v", field="f")
    assert sleeps == []


def test_retry_policy_validates() -> None:
    """attempts < 1 is a ConfigError."""
    with pytest.raises(ConfigError):
        RetryPolicy(attempts=0)


def test_aws_provider_without_boto3_client_builds_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no client given, the provider makes a boto3 KMS client for the region."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    provider = AwsKmsKeyProvider(region_name="eu-central-1")
    assert provider._client.meta.region_name == "eu-central-1"


class _RaisingKms:
    """A stand-in KMS client whose calls raise the given botocore error."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def encrypt(self, **_: Any) -> Any:
        self.calls += 1
        raise self.error

    decrypt = encrypt


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ThrottlingException", 400, KeyProviderUnavailableError),
        ("KMSInternalException", 500, KeyProviderUnavailableError),
        ("SomethingNew", 503, KeyProviderUnavailableError),
        ("NotFoundException", 400, UnknownKeyError),
        ("AccessDeniedException", 400, KeyProviderError),
    ],
)
def test_kms_error_codes_map_to_retry_or_refusal(code: str, status: int, expected: type) -> None:
    """Throttling and 5xx are retried then KeyProviderUnavailableError; refusals are not retried."""
    from botocore.exceptions import ClientError

    error = ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Encrypt",
    )
    client = _RaisingKms(error)
    enc = FieldEncryptor(
        KeyVault(
            AwsKmsKeyProvider(client),
            kek_id="alias/x",
            retry=RetryPolicy(attempts=3, sleep=lambda s: None),
        )
    )
    with flowtrace.context(tenant="acme"), pytest.raises(expected) as raised:
        enc.encrypt("v", field="f")
    assert type(raised.value) is expected
    assert client.calls == (3 if expected is KeyProviderUnavailableError else 1)
