"""The key vault on every store: rotation, retirement, KEK rotation, shredding, caching."""

from __future__ import annotations

import gc
import os
import threading
import time
import tracemalloc
import weakref
from collections.abc import Mapping
from pathlib import Path

import pytest

import flowtrace
from flowtrace.crypto import (
    CachePolicy,
    FieldEncryptor,
    KeyVault,
    LocalKeyProvider,
    MemoryVaultStore,
    SqliteVaultStore,
    VaultStore,
)
from flowtrace.errors import (
    ConfigError,
    KeyDestroyedError,
    KeyRetiredError,
    UnknownKeyError,
    WrongTenantError,
)

from .test_crypto_support import Clock, store

__all__ = ["store"]


def _encryptor(store: VaultStore, **kwargs: object) -> FieldEncryptor:
    vault = KeyVault(LocalKeyProvider.generate("kek-1"), store, kek_id="kek-1")
    return FieldEncryptor(vault, **kwargs)  # type: ignore[arg-type]


def test_rotation_keeps_old_tokens_and_rewrap_moves_them(store: VaultStore) -> None:
    """After rotate(), old tokens decrypt, new ones use v2, rewrap() lifts old ones to v2."""
    enc = _encryptor(store)
    with flowtrace.context(tenant="acme"):
        old = enc.encrypt("alice@example.com", field="email")
        assert enc.vault.rotate("acme") == 2
        new = enc.encrypt("bob@example.com", field="email")
        assert (enc.inspect(old).key_version, enc.inspect(new).key_version) == (1, 2)
        assert enc.decrypt(old, field="email") == "alice@example.com"
        moved = enc.rewrap(old, field="email")
        assert enc.inspect(moved).key_version == 2
        assert enc.inspect(moved).key_id == enc.inspect(old).key_id
        assert enc.decrypt(moved, field="email") == "alice@example.com"
        assert enc.rewrap(moved, field="email") == moved


def test_retiring_a_version_refuses_its_tokens(store: VaultStore) -> None:
    """retire(below=2) makes v1 tokens raise KeyRetiredError; rewrapped ones still work."""
    enc = _encryptor(store)
    with flowtrace.context(tenant="acme"):
        old = enc.encrypt("v", field="f")
        enc.vault.rotate("acme")
        moved = enc.rewrap(old, field="f")
        enc.vault.retire("acme", below=2)
        with pytest.raises(KeyRetiredError, match="retired"):
            enc.decrypt(old, field="f")
        assert enc.decrypt(moved, field="f") == "v"
        with pytest.raises(ConfigError):
            enc.vault.retire("acme", below=3)


def test_kek_rotation_rewraps_deks_without_touching_tokens(store: VaultStore) -> None:
    """After rotate_kek(), a vault holding only the new KEK decrypts the old tokens."""
    old_kek, new_kek = os.urandom(32), os.urandom(32)
    provider = LocalKeyProvider({"kek-1": old_kek, "kek-2": new_kek})
    enc = FieldEncryptor(KeyVault(provider, store, kek_id="kek-1"), subject_keys=True)
    with flowtrace.context(tenant="acme", subject="s-1"):
        token = enc.encrypt("secret", field="f")
        enc.vault.rotate("acme", "s-1")
        token2 = enc.encrypt("secret2", field="f")
    assert enc.vault.rotate_kek("kek-2") == 2
    assert {r.kek_id for r in store.all_versions()} == {"kek-2"}
    fresh = FieldEncryptor(KeyVault(LocalKeyProvider({"kek-2": new_kek}), store, kek_id="kek-2"))
    with flowtrace.context(tenant="acme"):
        assert fresh.decrypt(token, field="f") == "secret"
        assert fresh.decrypt(token2, field="f") == "secret2"


def test_shredding_a_subject_destroys_only_that_subject(store: VaultStore) -> None:
    """shred(subject=) returns a receipt; that subject's tokens raise KeyDestroyedError."""
    enc = _encryptor(store, subject_keys=True)
    with flowtrace.context(tenant="acme"):
        alice = enc.encrypt("alice@example.com", field="email", subject="alice")
        enc.vault.rotate("acme", "alice")
        alice2 = enc.encrypt("alice2@example.com", field="email", subject="alice")
        bob = enc.encrypt("bob@example.com", field="email", subject="bob")
        receipt = enc.shred(subject="alice", reason="GDPR Art. 17 request #12")
        assert (receipt.tenant, receipt.subject, receipt.reason) == (
            "acme",
            "alice",
            "GDPR Art. 17 request #12",
        )
        assert [(k.key_id, k.subject, k.versions) for k in receipt.keys] == [
            (enc.inspect(alice).key_id, "alice", (1, 2))
        ]
        assert abs(receipt.destroyed_at - time.time()) < 60
        for token in (alice, alice2):
            with pytest.raises(KeyDestroyedError, match="unrecoverable"):
                enc.decrypt(token, field="email")
        assert enc.decrypt(bob, field="email") == "bob@example.com"
        assert enc.shred(subject="alice").keys == ()
        # New data for the same person gets a new key, unrelated to the destroyed one.
        again = enc.encrypt("alice3@example.com", field="email", subject="alice")
        assert enc.inspect(again).key_id != enc.inspect(alice).key_id
        assert enc.decrypt(again, field="email") == "alice3@example.com"


def test_shredding_a_tenant_destroys_all_its_keys(store: VaultStore) -> None:
    """shred() without a subject destroys the tenant key and every subject key, no other."""
    enc = _encryptor(store)
    with flowtrace.context(tenant="acme"):
        tokens = [enc.encrypt("t", field="f"), enc.encrypt("s", field="f", subject="s1")]
    with flowtrace.context(tenant="globex"):
        other = enc.encrypt("g", field="f")
    with flowtrace.context(tenant="acme"):
        receipt = enc.shred(reason="tenant offboarding")
        assert sorted(k.subject or "" for k in receipt.keys) == ["", "s1"]
        for token in tokens:
            with pytest.raises(KeyDestroyedError):
                enc.decrypt(token, field="f")
    with flowtrace.context(tenant="globex"):
        assert enc.decrypt(other, field="f") == "g"


def test_store_holds_data_keys_only_wrapped(store: VaultStore) -> None:
    """Stored DEK records are ciphertext that only the KEK opens (never the raw key)."""
    provider = LocalKeyProvider.generate("kek-1")
    enc = FieldEncryptor(KeyVault(provider, store, kek_id="kek-1"))
    with flowtrace.context(tenant="acme"):
        enc.encrypt("v", field="f")
    (record,) = list(store.all_versions())
    context = {
        "flowtrace:tenant": "acme",
        "flowtrace:dek_id": record.dek_id.hex(),
        "flowtrace:dek_version": "1",
    }
    dek = provider.unwrap_key("kek-1", record.wrapped, context)
    assert len(dek) == 32
    assert dek not in record.wrapped


def test_unknown_key_ids_and_foreign_vaults_are_refused(store: VaultStore) -> None:
    """A token from another vault names an unknown DEK: UnknownKeyError."""
    enc = _encryptor(store)
    foreign = FieldEncryptor(KeyVault(LocalKeyProvider.generate("k"), kek_id="k"))
    with flowtrace.context(tenant="acme"):
        token = foreign.encrypt("v", field="f")
        with pytest.raises(UnknownKeyError, match="no data key"):
            enc.decrypt(token, field="f")


def test_tokens_never_cross_tenants_even_when_cached(store: VaultStore) -> None:
    """With the DEK hot in cache, another tenant still gets WrongTenantError."""
    enc = _encryptor(store)
    with flowtrace.context(tenant="acme"):
        token = enc.encrypt("v", field="f")
        enc.decrypt(token, field="f")
    with flowtrace.context(tenant="globex"), pytest.raises(WrongTenantError):
        enc.decrypt(token, field="f")


def test_sqlite_vault_survives_a_restart(tmp_path: Path) -> None:
    """A new process-like vault on the same SQLite file and KEK decrypts old tokens."""
    kek = os.urandom(32)
    first = SqliteVaultStore(tmp_path / "v.db")
    enc = FieldEncryptor(KeyVault(LocalKeyProvider({"k": kek}), first, kek_id="k"))
    with flowtrace.context(tenant="acme"):
        token = enc.encrypt("persisted", field="f")
    first.close()
    second = SqliteVaultStore(tmp_path / "v.db")
    again = FieldEncryptor(KeyVault(LocalKeyProvider({"k": kek}), second, kek_id="k"))
    with flowtrace.context(tenant="acme"):
        assert again.decrypt(token, field="f") == "persisted"
    second.close()


class CountingProvider(LocalKeyProvider):
    """Counts unwraps; can be slowed down to widen race windows."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__({"k": os.urandom(32)})
        self.unwraps = 0
        self.delay = delay
        self._count_lock = threading.Lock()

    def unwrap_key(
        self, kek_id: str, wrapped: bytes, encryption_context: Mapping[str, str]
    ) -> bytes:
        with self._count_lock:
            self.unwraps += 1
        if self.delay:
            time.sleep(self.delay)  # simulated KMS latency, not a synchronisation device
        return super().unwrap_key(kek_id, wrapped, encryption_context)


def _token_and_fresh_vault(
    provider: CountingProvider, policy: CachePolicy, clock: Clock
) -> tuple[str, FieldEncryptor]:
    store = SqliteVaultStore(":memory:")
    writer = FieldEncryptor(KeyVault(provider, store, kek_id="k"))
    with flowtrace.context(tenant="acme"):
        token = writer.encrypt("v", field="f")
    reader = FieldEncryptor(KeyVault(provider, store, kek_id="k", cache=policy, clock=clock))
    provider.unwraps = 0
    return token, reader


def test_cache_max_age_forces_a_new_unwrap() -> None:
    """A cached DEK is reused until max_age, then unwrapped again."""
    clock, provider = Clock(), CountingProvider()
    token, reader = _token_and_fresh_vault(provider, CachePolicy(max_age=10), clock)
    with flowtrace.context(tenant="acme"):
        for _ in range(5):
            reader.decrypt(token, field="f")
        assert provider.unwraps == 1
        clock.advance(9.9)
        reader.decrypt(token, field="f")
        assert provider.unwraps == 1
        clock.advance(0.2)
        reader.decrypt(token, field="f")
        assert provider.unwraps == 2


def test_cache_max_uses_forces_a_new_unwrap() -> None:
    """After max_uses uses the DEK is unwrapped again."""
    clock, provider = Clock(), CountingProvider()
    token, reader = _token_and_fresh_vault(provider, CachePolicy(max_uses=3), clock)
    with flowtrace.context(tenant="acme"):
        for _ in range(4):
            reader.decrypt(token, field="f")
    assert provider.unwraps == 2


def test_cache_max_entries_bounds_memory() -> None:
    """Never more than max_entries DEK versions are held."""
    provider = CountingProvider()
    vault = KeyVault(provider, kek_id="k", cache=CachePolicy(max_entries=2))
    enc = FieldEncryptor(vault)
    with flowtrace.context(tenant="acme"):
        tokens = [enc.encrypt("v", field="f", subject=f"s{i}") for i in range(5)]
        for token in tokens:
            enc.decrypt(token, field="f")
    assert len(vault._cache) <= 2


def test_concurrent_misses_unwrap_once() -> None:
    """Eight threads missing the same DEK at once cause a single provider unwrap."""
    clock, provider = Clock(), CountingProvider(delay=0.2)
    token, reader = _token_and_fresh_vault(provider, CachePolicy(), clock)
    barrier = threading.Barrier(8)
    results: list[str] = []

    def worker() -> None:
        with flowtrace.context(tenant="acme"):
            barrier.wait()
            results.append(reader.decrypt(token, field="f"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["v"] * 8
    assert provider.unwraps == 1


def test_other_vault_sees_a_shred_within_the_revalidate_interval(tmp_path: Path) -> None:
    """A second vault on the same store serves its cache until the interval, then refuses."""
    kek = os.urandom(32)
    clock = Clock()
    writer = FieldEncryptor(
        KeyVault(LocalKeyProvider({"k": kek}), SqliteVaultStore(tmp_path / "v.db"), kek_id="k")
    )
    reader = FieldEncryptor(
        KeyVault(
            LocalKeyProvider({"k": kek}),
            SqliteVaultStore(tmp_path / "v.db"),
            kek_id="k",
            cache=CachePolicy(revalidate_interval=2.0),
            clock=clock,
        )
    )
    with flowtrace.context(tenant="acme"):
        token = writer.encrypt("v", field="f", subject="s")
        assert reader.decrypt(token, field="f") == "v"
        writer.shred(subject="s")
        clock.advance(1.9)
        assert reader.decrypt(token, field="f") == "v"  # inside the documented bound
        clock.advance(0.1)
        with pytest.raises(KeyDestroyedError):
            reader.decrypt(token, field="f")


def test_cache_policy_and_vault_reject_bad_settings() -> None:
    """Nonsense limits and a missing KEK id raise ConfigError."""
    with pytest.raises(ConfigError):
        CachePolicy(max_age=0)
    with pytest.raises(ConfigError):
        CachePolicy(max_entries=0)
    with pytest.raises(ConfigError):
        KeyVault(LocalKeyProvider(), kek_id="")


def test_refresh_applies_a_remote_shred_at_once(tmp_path: Path) -> None:
    """vault.refresh() polls the change log now instead of waiting for the interval."""
    kek = os.urandom(32)
    writer = FieldEncryptor(
        KeyVault(LocalKeyProvider({"k": kek}), SqliteVaultStore(tmp_path / "v.db"), kek_id="k")
    )
    reader = FieldEncryptor(
        KeyVault(
            LocalKeyProvider({"k": kek}),
            SqliteVaultStore(tmp_path / "v.db"),
            kek_id="k",
            cache=CachePolicy(revalidate_interval=3600),
        )
    )
    with flowtrace.context(tenant="acme"):
        token = writer.encrypt("v", field="f", subject="s")
        assert reader.decrypt(token, field="f") == "v"
        writer.shred(subject="s")
        assert reader.decrypt(token, field="f") == "v"  # cached, an hour-long bound
        reader.vault.refresh()
        with pytest.raises(KeyDestroyedError):
            reader.decrypt(token, field="f")


def test_concurrent_first_use_by_two_vaults_agrees_on_one_key(store: VaultStore) -> None:
    """Two vaults creating the same scope at once end up with one keyring both can use."""
    kek = os.urandom(32)
    encryptors = [
        FieldEncryptor(KeyVault(LocalKeyProvider({"k": kek}), store, kek_id="k"))
        for _ in range(4)
    ]
    barrier = threading.Barrier(len(encryptors))
    tokens: list[str] = []

    def first_use(enc: FieldEncryptor) -> None:
        with flowtrace.context(tenant="acme"):
            barrier.wait()
            tokens.append(enc.encrypt("v", field="f", subject="new-subject"))

    threads = [threading.Thread(target=first_use, args=(e,)) for e in encryptors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    live = store.find_keyring("acme", "new-subject")
    assert live is not None
    assert {FieldEncryptor.inspect(t).key_id for t in tokens} == {live.dek_id.hex()}
    with flowtrace.context(tenant="acme"):
        for enc in encryptors:
            assert [enc.decrypt(t, field="f") for t in tokens] == ["v"] * 4


# --- cached keys serving the common call ---------------------------------------------------


def test_cached_keys_honour_max_uses_max_age_and_the_revalidation_bound() -> None:
    """Keys serving repeated encrypts and decrypts are unwrapped again exactly at max_uses
    and max_age, and a shred or rotation by another vault applies within the bound."""
    clock, provider, store = Clock(), CountingProvider(), MemoryVaultStore()
    policy = CachePolicy(max_age=10, max_uses=4, revalidate_interval=1)
    enc = FieldEncryptor(KeyVault(provider, store, kek_id="k", cache=policy, clock=clock))
    other = KeyVault(provider, store, kek_id="k")
    with flowtrace.context(tenant="acme"):
        token = enc.encrypt("v", field="f")  # creates the key: its first use
        for _ in range(3):
            assert enc.decrypt(token, field="f") == "v"  # uses 2..4
        assert provider.unwraps == 0
        enc.encrypt("v", field="f")  # max_uses reached
        assert provider.unwraps == 1
        enc.encrypt("v", field="f")
        assert enc.decrypt(token, field="f") == "v"
        assert provider.unwraps == 1
        clock.advance(10.5)  # past max_age
        assert enc.decrypt(token, field="f") == "v"
        assert provider.unwraps == 2
        enc.encrypt("v", field="f")  # the same reloaded key serves both directions
        assert enc.decrypt(token, field="f") == "v"
        assert provider.unwraps == 2
        other.rotate("acme")
        assert enc.inspect(enc.encrypt("v", field="f")).key_version == 1  # within the bound
        clock.advance(1.5)
        assert enc.inspect(enc.encrypt("v", field="f")).key_version == 2
        assert enc.decrypt(token, field="f") == "v"
        other.shred(tenant="acme")
        assert enc.decrypt(token, field="f") == "v"  # within the bound
        clock.advance(1.5)
        with pytest.raises(KeyDestroyedError):
            enc.decrypt(token, field="f")


def test_rotation_in_this_vault_applies_to_the_next_encrypt() -> None:
    """A rotation or retirement by this vault takes effect at once on cached keys."""
    enc = FieldEncryptor(KeyVault(LocalKeyProvider.generate("k"), kek_id="k"))
    with flowtrace.context(tenant="acme"):
        old = enc.encrypt("v", field="f")
        assert enc.decrypt(old, field="f") == "v"
        enc.vault.rotate("acme")
        new = enc.encrypt("v", field="f")
        assert enc.inspect(new).key_version == 2
        assert enc.decrypt(new, field="f") == "v"
        assert enc.decrypt(old, field="f") == "v"
        enc.vault.retire("acme", below=2)
        with pytest.raises(KeyRetiredError):
            enc.decrypt(old, field="f")
        assert enc.decrypt(new, field="f") == "v"


def test_a_shred_reaches_keys_the_size_bound_half_dropped() -> None:
    """A key held under two cache slots, one of them dropped by max_entries, still stops
    decrypting the moment its subject is shredded."""
    enc = FieldEncryptor(
        KeyVault(LocalKeyProvider.generate("k"), kek_id="k", cache=CachePolicy(max_entries=3))
    )
    with flowtrace.context(tenant="acme"):
        token = enc.encrypt("a", field="f", subject="alice")  # 2 slots: active + version
        assert enc.decrypt(token, field="f") == "a"
        enc.encrypt("b", field="f", subject="bob")  # 2 more slots: one of alice's dropped
        assert len(enc.vault._cache) == 3
        assert enc.decrypt(token, field="f") == "a"
        enc.shred(subject="alice")
        with pytest.raises(KeyDestroyedError):
            enc.decrypt(token, field="f")


def test_more_fields_than_a_key_indexes_still_round_trip() -> None:
    """Past 4,096 distinct fields per key, encrypt and decrypt keep working."""
    enc = FieldEncryptor(KeyVault(LocalKeyProvider.generate("k"), kek_id="k"))
    with flowtrace.context(tenant="acme"):
        tokens = {f"f{i}": enc.encrypt(f"v{i}", field=f"f{i}") for i in range(4200)}
        for field in ("f0", "f4199"):
            for _ in range(2):
                assert enc.decrypt(tokens[field], field=field) == "v" + field[1:]
                assert enc.decrypt(enc.encrypt("x", field=field), field=field) == "x"


def test_threads_keep_their_own_tenants() -> None:
    """Eight real threads on four tenants each read back only their own tenant's values."""
    enc = FieldEncryptor(KeyVault(LocalKeyProvider.generate("k"), kek_id="k"))
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(n: int) -> None:
        try:
            with flowtrace.context(tenant=f"t{n % 4}"):
                start.wait()
                for i in range(300):
                    value = f"t{n % 4}-{n}-{i}"
                    token = enc.encrypt(value, field="f")
                    assert enc.decrypt(token, field="f") == value
                    if i % 50 == 0:
                        other = flowtrace.context(tenant=f"t{(n + 1) % 4}")
                        with (
                            flowtrace.cross_tenant(reason="test"),
                            other,
                            pytest.raises(WrongTenantError),
                        ):
                            enc.decrypt(token, field="f")
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_round_trips_retain_no_memory() -> None:
    """Many round trips of cached keys leave traced memory where it was."""
    enc = FieldEncryptor(KeyVault(LocalKeyProvider.generate("k"), kek_id="k"))
    value = "alice@example.com" * 3
    with flowtrace.context(tenant="acme"):
        tracemalloc.start()
        try:
            for _ in range(2_000):
                enc.decrypt(enc.encrypt(value, field="email"), field="email")
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(20_000):
                enc.decrypt(enc.encrypt(value, field="email"), field="email")
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert grown < 64 * 1024, f"{grown} bytes retained by 20,000 round trips"


def test_a_key_evicted_while_in_use_is_never_indexed() -> None:
    """An encrypt that loaded a key just before a shred evicted it cannot index it after."""
    vault = KeyVault(LocalKeyProvider.generate("k"), kek_id="k")
    entry = vault.encryption_key("acme")
    binding = entry.bind("f")
    vault.shred(tenant="acme")  # evicts the entry the "encrypt" is still holding
    vault._cache.index_sealer(binding)
    vault._cache.index_opener(binding)
    assert binding.sealer_key not in vault._cache.sealers
    assert binding.text not in vault._cache.openers


def test_a_shredded_key_leaves_memory_without_a_collection() -> None:
    """Once shredded, a key that served cached calls is freed by reference counting alone
    (no cycle between it and its bindings keeps its derived keys alive)."""
    enc = FieldEncryptor(KeyVault(LocalKeyProvider.generate("k"), kek_id="k"))
    gc.disable()
    try:
        with flowtrace.context(tenant="acme"):
            token = enc.encrypt("v", field="f")
            assert enc.decrypt(token, field="f") == "v"
            entry = next(iter(enc.vault._cache.sealers.values())).entry
            alive = weakref.ref(entry)
            del entry
            enc.shred()
        assert alive() is None
    finally:
        gc.enable()
