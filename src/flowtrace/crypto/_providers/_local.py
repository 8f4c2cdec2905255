"""LocalKeyProvider: KEKs held by this process (tests) or in a keyring file (development).

The keyring file keeps each KEK encrypted under a master key taken from an environment
variable (``FLOWTRACE_MASTER_KEY`` by default) or a secret file, as unpadded base64url of
32 random bytes (``flowtrace.crypto.LocalKeyProvider.new_master_key()`` prints one).
It is meant for development and CI: production keys belong in a KMS.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ...errors import ConfigError, KeyProviderError, UnknownKeyError

__all__ = ["LocalKeyProvider"]

_WRAP_FORMAT: Final = 0x01
_FILE_FORMAT: Final = "flowtrace-local-keyring/1"
_NONCE: Final = 12


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ConfigError(f"{what} is not base64url text") from None


def _context_aad(label: bytes, kek_id: str, context: Mapping[str, str]) -> bytes:
    parts = [label, kek_id.encode(), b"\x00"]
    for key in sorted(context):
        parts += [key.encode(), b"\x00", context[key].encode(), b"\x00"]
    return b"".join(parts)


class LocalKeyProvider:
    """A :class:`~flowtrace.crypto.KeyProvider` whose KEKs live in this process.

    ``LocalKeyProvider.generate("kek-1")`` makes fresh random KEKs (tests);
    :meth:`open_keyring` loads (or creates) a keyring file protected by a master key.
    Wrapped keys are ``0x01 || nonce(12) || AES-256-GCM(KEK, DEK, aad)`` with the KEK id
    and encryption context in the AAD.

    Example::

        from flowtrace.crypto import KeyVault, LocalKeyProvider

        dev = LocalKeyProvider.generate("kek")           # throw-away keys, tests and demos
        master = LocalKeyProvider.new_master_key()       # keep it in a secret store
        provider = LocalKeyProvider.open_keyring(
            "keyring.json", master_key=master, create=["kek-1"]
        )
        vault = KeyVault(provider, kek_id="kek-1")
    """

    def __init__(
        self, keys: Mapping[str, bytes] | None = None, *, region: str | None = None
    ) -> None:
        self.region = region
        """Where these keys are held, for the residency guard (``None``: not checked)."""
        self._keys: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._master: AESGCM | None = None
        for kek_id, key in (keys or {}).items():
            self.add_key(kek_id, key)

    @classmethod
    def generate(cls, *kek_ids: str, region: str | None = None) -> LocalKeyProvider:
        """A provider with a fresh random KEK for each id (held in ``region``, if given)."""
        provider = cls(region=region)
        for kek_id in kek_ids:
            provider.add_key(kek_id)
        return provider

    @staticmethod
    def new_master_key() -> str:
        """A new random master key as text, for ``FLOWTRACE_MASTER_KEY`` or a secret file."""
        return _b64(os.urandom(32))

    @property
    def kek_ids(self) -> tuple[str, ...]:
        """The ids of the KEKs this provider holds."""
        return tuple(self._keys)

    def add_key(self, kek_id: str, key: bytes | None = None) -> None:
        """Add a KEK (random when ``key`` is None); saved if this is a keyring file."""
        if not kek_id or not isinstance(kek_id, str):
            raise ConfigError("a KEK id must be a non-empty str")
        key = os.urandom(32) if key is None else key
        if len(key) != 32:
            raise ConfigError(f"a KEK is 32 bytes, got {len(key)}")
        with self._lock:
            if kek_id in self._keys:
                raise ConfigError(f"KEK {kek_id!r} already exists; pick a new id to rotate")
            self._keys[kek_id] = key
            if self._path is not None:
                self._save()

    def wrap_key(self, kek_id: str, key: bytes, encryption_context: Mapping[str, str]) -> bytes:
        """Encrypt ``key`` under KEK ``kek_id`` bound to ``encryption_context``."""
        kek = self._kek(kek_id)
        nonce = os.urandom(_NONCE)
        aad = _context_aad(b"flowtrace/local-kek/v1\x00", kek_id, encryption_context)
        return bytes([_WRAP_FORMAT]) + nonce + AESGCM(kek).encrypt(nonce, key, aad)

    def unwrap_key(
        self, kek_id: str, wrapped: bytes, encryption_context: Mapping[str, str]
    ) -> bytes:
        """Decrypt a wrapped key; :class:`KeyProviderError` if it does not authenticate."""
        kek = self._kek(kek_id)
        if len(wrapped) < 1 + _NONCE + 16 or wrapped[0] != _WRAP_FORMAT:
            raise KeyProviderError(f"wrapped key under {kek_id!r} is malformed")
        aad = _context_aad(b"flowtrace/local-kek/v1\x00", kek_id, encryption_context)
        try:
            return AESGCM(kek).decrypt(wrapped[1 : 1 + _NONCE], wrapped[1 + _NONCE :], aad)
        except InvalidTag:
            raise KeyProviderError(
                f"wrapped key does not authenticate under KEK {kek_id!r} with this encryption "
                "context (corrupted, or wrapped by another KEK)"
            ) from None

    def _kek(self, kek_id: str) -> bytes:
        try:
            return self._keys[kek_id]
        except KeyError:
            raise UnknownKeyError(
                f"no KEK {kek_id!r} in this LocalKeyProvider (known: {sorted(self._keys)})"
            ) from None

    # --- keyring file -------------------------------------------------------------------

    @classmethod
    def open_keyring(
        cls,
        path: str | os.PathLike[str],
        *,
        master_key: str | None = None,
        master_key_env: str = "FLOWTRACE_MASTER_KEY",
        master_key_file: str | os.PathLike[str] | None = None,
        create: Iterable[str] = (),
    ) -> LocalKeyProvider:
        """Load a keyring file, creating it (with KEKs ``create``) if it does not exist.

        The master key is ``master_key``, else the contents of ``master_key_file``, else
        the environment variable ``master_key_env``; :class:`ConfigError` if none is set.
        """
        if master_key is None and master_key_file is not None:
            master_key = Path(master_key_file).read_text().strip()
        if master_key is None:
            master_key = os.environ.get(master_key_env)
        if not master_key:
            raise ConfigError(
                f"the keyring {os.fspath(path)!r} needs a master key: set {master_key_env} "
                "(see LocalKeyProvider.new_master_key()) or pass master_key_file="
            )
        raw = _unb64(master_key, "the master key")
        if len(raw) != 32:
            raise ConfigError("the master key must be 32 bytes (43 base64url characters)")
        provider = cls()
        provider._master = AESGCM(raw)
        file = Path(path)
        if file.exists():
            provider._load(file)
        provider._path = file
        for kek_id in create:
            if kek_id not in provider._keys:
                provider.add_key(kek_id)
        if not file.exists():
            with provider._lock:
                provider._save()
        return provider

    def _load(self, file: Path) -> None:
        assert self._master is not None
        try:
            data = json.loads(file.read_text())
            if data.get("format") != _FILE_FORMAT:
                raise ConfigError(f"{file} is not a {_FILE_FORMAT} keyring")
            for kek_id, blob in data["keys"].items():
                sealed = _unb64(blob, f"KEK {kek_id!r} in {file}")
                self._keys[kek_id] = self._master.decrypt(
                    sealed[:_NONCE], sealed[_NONCE:], f"{_FILE_FORMAT}\x00{kek_id}".encode()
                )
        except InvalidTag:
            raise ConfigError(
                f"the master key does not open keyring {file}: wrong key or edited file"
            ) from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"keyring file {file} is not valid: {exc}") from None

    def _save(self) -> None:
        assert self._master is not None
        assert self._path is not None
        keys = {}
        for kek_id, key in self._keys.items():
            nonce = os.urandom(_NONCE)
            aad = f"{_FILE_FORMAT}\x00{kek_id}".encode()
            keys[kek_id] = _b64(nonce + self._master.encrypt(nonce, key, aad))
        tmp = self._path.with_suffix(self._path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"format": _FILE_FORMAT, "keys": keys}, out, indent=1)
        os.replace(tmp, self._path)
