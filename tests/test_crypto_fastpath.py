"""The optional C fast path of FieldEncryptor (flowtrace.crypto._fastpath) vs pure Python.

The C path must take the common call itself and hand everything else, with its original
arguments, to the pure-Python methods: same tokens, same errors, same events. A spy on
those fallbacks shows which path served each call.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import sysconfig
import tempfile
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowtrace
from flowtrace import EventKind, FlowEvent
from flowtrace.crypto import (
    CachePolicy,
    FieldEncryptor,
    KeyVault,
    LocalKeyProvider,
    MemoryVaultStore,
    SqliteVaultStore,
    _token,
)
from flowtrace.crypto._accel import FASTPATH
from flowtrace.crypto._cache import Entry
from flowtrace.crypto._encryptor import _PyEncryptorBase, _wire_fast_path
from flowtrace.errors import (
    CryptoError,
    InvalidContextValueError,
    KeyDestroyedError,
    KeyRetiredError,
    MalformedTokenError,
    TamperedTokenError,
    TokenError,
    WrongFieldError,
    WrongTenantError,
)

from .test_crypto_support import Clock

ENCRYPTOR_MODULE = sys.modules["flowtrace.crypto._encryptor"]
SOURCE = Path(ENCRYPTOR_MODULE.__file__).with_name("_fastpath.c")
EXTENSION = SOURCE.with_name("_fastpath" + str(sysconfig.get_config_var("EXT_SUFFIX") or ".so"))
PURE_FORCED = os.environ.get("FLOWTRACE_PURE_PYTHON", "") not in ("", "0")
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

pytestmark = pytest.mark.skipif(
    FASTPATH is None, reason="C fast path not active (not compiled, or FLOWTRACE_PURE_PYTHON=1)"
)


def py_encrypt(enc: FieldEncryptor, value: str, **kwargs: Any) -> str:
    return _PyEncryptorBase.encrypt(enc, value, **kwargs)


def py_decrypt(enc: FieldEncryptor, token: str, **kwargs: Any) -> str:
    return _PyEncryptorBase.decrypt(enc, token, **kwargs)


def new_encryptor(**kwargs: Any) -> FieldEncryptor:
    vault = KeyVault(LocalKeyProvider.generate("kek"), kek_id="kek", **kwargs)
    return FieldEncryptor(vault)


@pytest.fixture
def fallbacks() -> Iterator[list[str]]:
    """The names of the calls ("encrypt"/"decrypt") the C path handed to Python."""
    calls: list[str] = []

    def spy_encrypt(*args: Any, **kwargs: Any) -> str:
        calls.append("encrypt")
        return _PyEncryptorBase.encrypt(*args, **kwargs)

    def spy_decrypt(*args: Any, **kwargs: Any) -> str:
        calls.append("decrypt")
        return _PyEncryptorBase.decrypt(*args, **kwargs)

    _wire_fast_path(spy_encrypt, spy_decrypt)
    yield calls
    _wire_fast_path()


class TestWhichImplementation:
    def test_fast_path_is_active_when_built(self) -> None:
        """When the extension was compiled, encrypt/decrypt are the C methods."""
        if PURE_FORCED or not EXTENSION.exists():
            pytest.skip("pure Python forced, or no in-place extension")
        assert FASTPATH is not None
        base = FASTPATH.EncryptorBase
        assert FieldEncryptor.encrypt is base.__dict__["encrypt"]
        assert FieldEncryptor.decrypt is base.__dict__["decrypt"]
        assert issubclass(Entry, FASTPATH.EntryBase)
        assert FieldEncryptor.fast_path is True

    def test_extension_is_not_older_than_its_source(self) -> None:
        """The compiled fast path was built from the current _fastpath.c and its headers."""
        if not EXTENSION.exists():
            pytest.skip("no in-place extension next to its source")
        for source in (SOURCE, *SOURCE.parent.glob("*.h")):
            assert EXTENSION.stat().st_mtime >= source.stat().st_mtime, (
                f"{EXTENSION.name} is older than {source.name}: rebuild with "
                "`.venv/bin/pip install -e .`"
            )

    def test_env_var_forces_pure_python_with_the_same_tokens(self) -> None:
        """FLOWTRACE_PURE_PYTHON=1 uses the Python methods; they read C-made tokens."""
        code = (
            "import flowtrace, sys\n"
            "from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider\n"
            "from flowtrace.crypto._encryptor import _PyEncryptorBase\n"
            "from flowtrace.crypto import SqliteVaultStore\n"
            "store = SqliteVaultStore(sys.argv[1])\n"
            "provider = LocalKeyProvider({'kek': bytes(32)})\n"
            "enc = FieldEncryptor(KeyVault(provider, store, kek_id='kek'))\n"
            "with flowtrace.context(tenant='acme'):\n"
            "    print(FieldEncryptor.fast_path,"
            " FieldEncryptor.encrypt is _PyEncryptorBase.encrypt,"
            " enc.decrypt(sys.argv[2], field='email'))\n"
        )
        with tempfile.TemporaryDirectory() as tmp:
            db = str(Path(tmp, "vault.db"))
            provider = LocalKeyProvider({"kek": bytes(32)})
            enc = FieldEncryptor(KeyVault(provider, SqliteVaultStore(db), kek_id="kek"))
            with flowtrace.context(tenant="acme"):
                enc.encrypt("warm", field="email")
                token = enc.encrypt("alice@example.com", field="email")  # the C path
            enc.vault.close()
            out = subprocess.run(
                [sys.executable, "-c", code, db, token],
                env={**os.environ, "FLOWTRACE_PURE_PYTHON": "1"},
                capture_output=True,
                text=True,
            )
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["False", "True", "alice@example.com"]


class TestFastPathIsTaken:
    def test_usual_calls_never_reach_python(self, fallbacks: list[str]) -> None:
        """After the first call loads the key, encrypt and decrypt stay in C."""
        enc = new_encryptor()
        with flowtrace.context(tenant="acme"):
            enc.decrypt(enc.encrypt("warm", field="email"), field="email")
            fallbacks.clear()
            for i in range(50):
                token = enc.encrypt(f"user{i}@example.com", field="email")
                assert enc.decrypt(token, field="email", reason="support") == (
                    f"user{i}@example.com"
                )
                assert enc.decrypt(token, field="email", context=None) == f"user{i}@example.com"
            enc.encrypt("x", field="note", context=None, subject=None, deterministic=False)
        assert fallbacks == []

    def test_encryption_contexts_stay_in_c(self, fallbacks: list[str]) -> None:
        """Dicts of str to str (the record-binding recipe) are taken by the fast path."""
        enc = new_encryptor()
        with flowtrace.context(tenant="acme"):
            enc.decrypt(enc.encrypt("warm", field="f"), field="f")
            fallbacks.clear()
            for context in ({"record": "42"}, {"b": "2", "a": "1", "é": "ü"}, {}):
                token = enc.encrypt("v", field="f", context=context)
                assert enc.decrypt(token, field="f", context=dict(context)) == "v"
            assert fallbacks == []
            token = enc.encrypt("v", field="f", context={"record": "42"})
            with pytest.raises(TamperedTokenError):
                enc.decrypt(token, field="f", context={"record": "43"})
            assert fallbacks == ["decrypt"]  # the failure is Python's to raise and report

    def test_unusual_calls_go_to_python(self, fallbacks: list[str]) -> None:
        """Other mappings, subjects, deterministic mode, JSON tokens: the Python path."""
        enc = new_encryptor()
        with flowtrace.context(tenant="acme"):
            enc.decrypt(enc.encrypt("warm", field="f"), field="f")
            fallbacks.clear()
            proxy = MappingProxyType({"row": "1"})
            ctx_token = enc.encrypt("v", field="f", context=proxy)
            assert enc.decrypt(ctx_token, field="f", context=proxy) == "v"
            det = enc.encrypt("v", field="f", deterministic=True)
            assert enc.decrypt(det, field="f") == "v"
            assert enc.decrypt(enc.encrypt_value(7, field="n"), field="n") == "7"
            enc.encrypt("v", field="f", subject="p1")
        assert fallbacks == ["encrypt", "decrypt", "encrypt", "decrypt", "decrypt", "encrypt"]

    def test_contexts_the_fast_path_leaves_to_python(self, fallbacks: list[str]) -> None:
        """Big contexts, surrogates and invalid values: Python takes them (and validates)."""
        enc = new_encryptor()
        big = {f"k{i}": str(i) for i in range(17)}
        surrogate = {"\udc80": "x"}
        with flowtrace.context(tenant="acme"):
            enc.decrypt(enc.encrypt("warm", field="f"), field="f")
            fallbacks.clear()
            for context in (big, surrogate):
                token = enc.encrypt("v", field="f", context=context)
                assert enc.decrypt(token, field="f", context=context) == "v"
                assert py_decrypt(enc, token, field="f", context=context) == "v"
            with pytest.raises(InvalidContextValueError):
                enc.encrypt("v", field="f", context={"id": 7})  # type: ignore[dict-item]
            with pytest.raises(InvalidContextValueError, match="65535"):
                enc.encrypt("v", field="f", context={"id": "x" * 65_536})
        assert fallbacks == ["encrypt", "decrypt", "encrypt", "decrypt", "encrypt", "encrypt"]

    def test_argument_errors_are_pythons(self, fallbacks: list[str]) -> None:
        """Wrong argument shapes are handed over and raise Python's own errors."""
        enc = new_encryptor()
        with flowtrace.context(tenant="acme"):
            with pytest.raises(TypeError, match="field"):
                enc.encrypt("v")  # type: ignore[call-arg]
            with pytest.raises(TypeError, match="encrypt_value"):
                enc.encrypt(b"v", field="f")  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="unexpected keyword"):
                enc.decrypt("t", field="f", nope=1)  # type: ignore[call-arg]
            with pytest.raises(TypeError):
                enc.encrypt("v", "f")  # type: ignore[misc]
        assert fallbacks == ["encrypt", "encrypt", "decrypt", "encrypt"]

    def test_subject_keys_come_from_the_context_in_c(self, fallbacks: list[str]) -> None:
        """Per-subject encryptors use the context's subject on the fast path too."""
        enc = FieldEncryptor(enc_vault := KeyVault(LocalKeyProvider.generate("k"), kek_id="k"),
                             subject_keys=True)
        with flowtrace.context(tenant="acme", subject="p1"):
            enc.decrypt(enc.encrypt("warm", field="ssn"), field="ssn")
            fallbacks.clear()
            token = enc.encrypt("123-45-6789", field="ssn")
            assert enc.decrypt(token, field="ssn") == "123-45-6789"
            assert fallbacks == []
            keyring = enc_vault.keyring("acme", "p1")
            assert keyring is not None
            assert FieldEncryptor.inspect(token).key_id == keyring.dek_id.hex()
            enc.shred(subject="p1")
            with pytest.raises(KeyDestroyedError):
                enc.decrypt(token, field="ssn")
        with flowtrace.context(tenant="acme"), pytest.raises(flowtrace.errors.MissingSubjectError):
            enc.encrypt("v", field="ssn")


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    value=st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())),
    field=st.text(min_size=1, max_size=40),
)
def test_both_paths_read_each_others_tokens(value: str, field: str) -> None:
    """Any value (surrogates included) and field: C and Python tokens are interchangeable."""
    enc = SHARED
    with flowtrace.context(tenant="acme"):
        c_token = enc.encrypt(value, field=field)
        p_token = py_encrypt(enc, value, field=field)
        assert len(c_token) == len(p_token)
        assert FieldEncryptor.inspect(c_token) == FieldEncryptor.inspect(p_token)
        assert py_decrypt(enc, c_token, field=field) == value
        assert enc.decrypt(p_token, field=field) == value
        assert enc.decrypt(c_token, field=field) == value


SHARED = new_encryptor()

CONTEXT_TEXT = st.text(
    st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=12
)


@settings(max_examples=150)
@given(context=st.dictionaries(CONTEXT_TEXT, CONTEXT_TEXT, max_size=18), other=CONTEXT_TEXT)
def test_contexts_bind_tokens_the_same_way_on_both_paths(
    context: dict[str, str], other: str
) -> None:
    """Any context (order, unicode, surrogates, sizes around the C limit): interchangeable
    tokens, and a changed context fails on both paths."""
    enc = SHARED
    changed = {**context, "\x00extra": other}
    with flowtrace.context(tenant="acme"):
        c_token = enc.encrypt("v", field="f", context=context)
        p_token = py_encrypt(enc, "v", field="f", context=dict(reversed(context.items())))
        assert py_decrypt(enc, c_token, field="f", context=context) == "v"
        assert enc.decrypt(p_token, field="f", context=context) == "v"
        for token in (c_token, p_token):
            with pytest.raises(TamperedTokenError):
                enc.decrypt(token, field="f", context=changed)


@given(st.binary(max_size=300))
def test_text_codec_encodes_like_python(data: bytes) -> None:
    """The C base64url encoder gives exactly the token text of _token.encode_text."""
    assert FASTPATH is not None
    assert FASTPATH.b64url_encode(data) == _token.encode_text(data)


def _python_decode(text: str) -> bytes | None:
    try:
        return _token.decode_text(text)
    except MalformedTokenError:
        return None


@given(st.text(alphabet=ALPHABET + "+/=*. \n\u00e9", max_size=90))
def test_text_codec_accepts_exactly_what_python_accepts(text: str) -> None:
    """Arbitrary text: the C decoder agrees with _token.decode_text (same bytes, or refused)."""
    assert FASTPATH is not None
    assert FASTPATH.b64url_decode(text) == _python_decode(text)


@given(st.binary(min_size=1, max_size=100), st.data())
def test_text_codec_refuses_every_edit_python_refuses(data: bytes, draw: st.DataObject) -> None:
    """One edited character of valid text (unused bits included): C and Python agree."""
    assert FASTPATH is not None
    text = _token.encode_text(data)
    i = draw.draw(st.integers(0, len(text) - 1))
    edited = text[:i] + draw.draw(st.sampled_from(ALPHABET + "+/=")) + text[i + 1 :]
    assert FASTPATH.b64url_decode(edited) == _python_decode(edited)


@pytest.mark.parametrize("size", [33, 34])
def test_only_the_canonical_last_character_decrypts(size: int, fallbacks: list[str]) -> None:
    """Tokens whose last character has unused bits: every other spelling is refused."""
    enc = new_encryptor()
    value = "x" * size
    with flowtrace.context(tenant="acme"):
        token = enc.encrypt(value, field="f")
        opened = []
        for char in ALPHABET:
            edited = token[:-1] + char
            with contextlib.suppress(TokenError):
                opened.append(enc.decrypt(edited, field="f"))
    assert opened == [value]


def _token_scenarios() -> list[str]:
    return [
        "wrong_field",
        "wrong_tenant",
        "tampered_commitment",
        "tampered_nonce",
        "tampered_ciphertext",
        "tampered_header",
        "truncated",
        "retired",
        "shredded",
        "not_base64",
    ]


def _prepare(scenario: str, enc: FieldEncryptor) -> tuple[str, str, str]:
    """(token, field, tenant) for a decrypt that must fail in ``scenario``."""
    with flowtrace.context(tenant="acme"):
        token = enc.encrypt("secret", field="email")
        enc.decrypt(token, field="email")  # cached: the fast path would serve a good one
    raw = bytearray(_token.decode_text(token))
    field, tenant = "email", "acme"
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
    elif scenario in offsets:
        raw[offsets[scenario]] ^= 0x01
        token = _token.encode_text(bytes(raw))
    elif scenario == "truncated":
        token = _token.encode_text(bytes(raw[:-1]))
    elif scenario == "not_base64":
        token = token[:60] + "!" + token[61:]
    elif scenario == "retired":
        vault = enc.vault
        vault.rotate("acme")
        vault.retire("acme", below=2)
    elif scenario == "shredded":
        with flowtrace.context(tenant="acme"):
            enc.shred()
    return token, field, tenant


@pytest.mark.parametrize("scenario", _token_scenarios())
def test_failures_are_pythons_errors_reported_once(
    scenario: str, fallbacks: list[str], events: list[FlowEvent]
) -> None:
    """Every failing decrypt is handed to Python: the same typed error, one failure event."""
    c_enc, p_enc = new_encryptor(), new_encryptor()
    c_token, field, tenant = _prepare(scenario, c_enc)
    p_token, _, _ = _prepare(scenario, p_enc)
    if scenario == "wrong_tenant":
        with flowtrace.context(tenant="globex"):
            c_enc.encrypt("warm", field="email")  # globex has a cached key of its own
    fallbacks.clear()
    events.clear()
    with flowtrace.context(tenant=tenant):
        with pytest.raises(CryptoError) as c_error:
            c_enc.decrypt(c_token, field=field)
        c_events = [e for e in events if e.kind == EventKind.DECRYPT]
        with pytest.raises(CryptoError) as p_error:
            py_decrypt(p_enc, p_token, field=field)
    assert type(c_error.value) is type(p_error.value)
    assert fallbacks == ["decrypt"]
    assert len(c_events) == 1
    assert c_events[0].attributes["outcome"] == "error"
    assert c_events[0].attributes["error"] == type(c_error.value).__name__
    expected = {
        "wrong_field": WrongFieldError,
        "wrong_tenant": WrongTenantError,
        "retired": KeyRetiredError,
        "shredded": KeyDestroyedError,
    }
    if scenario in expected:
        assert isinstance(c_error.value, expected[scenario])


def test_reported_events_match_the_python_path(events: list[FlowEvent]) -> None:
    """A fast decrypt reports the same attributes as the Python path (cache hit, no value)."""
    enc = new_encryptor()
    with flowtrace.context(tenant="acme", user="u1"):
        token = enc.encrypt("alice@example.com", field="email")
        enc.decrypt(token, field="email")
        events.clear()
        enc.decrypt(token, field="email", reason="support")
        py_decrypt(enc, token, field="email", reason="support")
    fast, slow = (e for e in events if e.kind == EventKind.DECRYPT)
    assert fast.attributes == slow.attributes
    assert fast.attributes["cache"] == "hit"
    assert fast.attributes["actor"] == "u1"
    assert "alice" not in repr(fast)


def test_a_refusing_observer_withholds_the_plaintext(fallbacks: list[str]) -> None:
    """An observer error on a fast decrypt propagates (fail closed) without a retry."""
    enc = new_encryptor()
    with flowtrace.context(tenant="acme"):
        token = enc.encrypt("secret", field="f")
        enc.decrypt(token, field="f")

        def refuse(event: FlowEvent) -> None:
            if event.kind == EventKind.DECRYPT:
                raise RuntimeError("audit log unavailable")

        flowtrace.add_observer(refuse)
        try:
            fallbacks.clear()
            with pytest.raises(RuntimeError, match="audit log unavailable"):
                enc.decrypt(token, field="f")
        finally:
            flowtrace.remove_observer(refuse)
    assert fallbacks == []


def test_cache_limits_and_revalidation_send_calls_to_python(fallbacks: list[str]) -> None:
    """max_uses, max_age and the change-log deadline are honoured by the C path."""
    clock = Clock()
    store = MemoryVaultStore()
    provider = LocalKeyProvider.generate("kek")
    policy = CachePolicy(max_age=10, max_uses=4, revalidate_interval=1)
    enc = FieldEncryptor(KeyVault(provider, store, kek_id="kek", cache=policy, clock=clock))
    other = FieldEncryptor(KeyVault(provider, store, kek_id="kek"))
    with flowtrace.context(tenant="acme"):
        token = enc.encrypt("v", field="f")  # creates the key: one entry, uses = 1
        fallbacks.clear()
        for _ in range(3):
            enc.decrypt(token, field="f")  # uses 2..4, in C
        assert fallbacks == []
        enc.encrypt("v", field="f")  # max_uses reached: Python unwraps again
        assert fallbacks == ["encrypt"]
        fallbacks.clear()
        enc.encrypt("v", field="f")  # the fresh entry: C again
        assert fallbacks == []
        clock.advance(10.5)  # past max_age and the revalidation deadline
        enc.decrypt(token, field="f")
        assert fallbacks == ["decrypt"]
        fallbacks.clear()
        enc.decrypt(token, field="f")
        assert fallbacks == []
        other.shred()  # another "process" shreds the tenant
        enc.decrypt(token, field="f")  # still within revalidate_interval: cached (bound)
        clock.advance(1.5)
        with pytest.raises(KeyDestroyedError):
            enc.decrypt(token, field="f")


def test_threads_keep_their_own_tenants() -> None:
    """Real threads on the C path: each reads back its own tenant's values only."""
    enc = new_encryptor()
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


def test_no_references_or_memory_leak() -> None:
    """Many round trips leave reference counts and traced memory where they were."""
    enc = new_encryptor()
    value, field = "alice@example.com" * 3, "email"
    with flowtrace.context(tenant="acme"):
        token = enc.encrypt(value, field=field)
        enc.decrypt(token, field=field)
        entry = next(iter(enc.vault._cache.entries.values()))
        counts = [sys.getrefcount(o) for o in (value, field, token, entry, entry.keys)]
        tracemalloc.start()
        for _ in range(2_000):
            enc.decrypt(enc.encrypt(value, field=field), field=field)
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(20_000):
            enc.decrypt(enc.encrypt(value, field=field), field=field)
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        assert [sys.getrefcount(o) for o in (value, field, token, entry, entry.keys)] == counts
    assert grown < 64 * 1024, f"{grown} bytes retained by 20,000 round trips"
