"""The :class:`KeyProvider` protocol (KMS style) and bounded retries around it."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable

from ...errors import ConfigError, KeyProviderUnavailableError

__all__ = ["KeyProvider", "RetryPolicy"]

T = TypeVar("T")


@runtime_checkable
class KeyProvider(Protocol):
    """Wraps and unwraps data keys under a key-encryption key (KEK) named by id.

    This is the whole contract a KMS needs to satisfy (AWS KMS ``Encrypt``/``Decrypt``,
    Vault Transit ``encrypt``/``decrypt``, GCP KMS, Azure Key Vault ``wrapKey``/``unwrapKey``).
    ``encryption_context`` is non-secret associated data the wrapped key is bound to: the
    same mapping must be given to unwrap. It may be logged by the KMS (CloudTrail does),
    so flowtrace only puts ids in it, never personal data.

    A provider may also have a ``region`` attribute (a string such as ``"eu"``, or
    ``None``): where its KMS runs. When it is set, the vault asks the residency guard before
    every call (destination ``kms/<kek id>``), so data of a region whose rule forbids the
    KMS's region is never wrapped or unwrapped there
    (:class:`~flowtrace.errors.ResidencyViolationError`). It is optional (read with
    ``getattr``), so it is not part of the structural check.

    Errors a provider raises:

    * :class:`~flowtrace.errors.KeyProviderUnavailableError` for transient failures (network,
      throttling, 5xx); the vault retries these with backoff.
    * :class:`~flowtrace.errors.UnknownKeyError` when the KEK does not exist.
    * another :class:`~flowtrace.errors.KeyProviderError` for permanent refusals (wrong
      context, corrupted wrapped key, disabled KEK); never retried.

    Example::

        import os

        from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

        from flowtrace.crypto import KeyProvider, KeyVault

        class InProcessKms:                              # structurally a KeyProvider
            def __init__(self) -> None:
                self.keks = {"kek": os.urandom(32)}

            def wrap_key(self, kek_id, key, encryption_context):
                return aes_key_wrap(self.keks[kek_id], key)

            def unwrap_key(self, kek_id, wrapped, encryption_context):
                return aes_key_unwrap(self.keks[kek_id], wrapped)

        assert isinstance(InProcessKms(), KeyProvider)
        vault = KeyVault(InProcessKms(), kek_id="kek")
    """

    def wrap_key(self, kek_id: str, key: bytes, encryption_context: Mapping[str, str]) -> bytes:
        """Encrypt ``key`` under KEK ``kek_id``, bound to ``encryption_context``."""
        ...

    def unwrap_key(
        self, kek_id: str, wrapped: bytes, encryption_context: Mapping[str, str]
    ) -> bytes:
        """Decrypt a key wrapped by :meth:`wrap_key` with the same KEK and context."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter for transient KMS errors.

    ``attempts`` counts every call (``3`` = one call plus two retries). ``sleep`` is
    injectable so tests never wait.

    Example::

        from flowtrace.crypto import KeyVault, LocalKeyProvider, RetryPolicy

        vault = KeyVault(
            LocalKeyProvider.generate("kek"),
            kek_id="kek",
            retry=RetryPolicy(attempts=5, base_delay=0.1, max_delay=2.0),
        )
    """

    attempts: int = 3
    base_delay: float = 0.05
    max_delay: float = 1.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError("RetryPolicy(attempts=...) must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ConfigError("RetryPolicy delays must not be negative")

    def call(self, operation: Callable[[], T], what: str) -> T:
        """Run ``operation``; retry on :class:`KeyProviderUnavailableError`; re-raise the last."""
        for attempt in range(1, self.attempts + 1):
            try:
                return operation()
            except KeyProviderUnavailableError as exc:
                if attempt == self.attempts:
                    raise KeyProviderUnavailableError(
                        f"{what} failed after {self.attempts} attempts: {exc}. Nothing was "
                        "encrypted or decrypted; retry later or check the key provider"
                    ) from exc
                delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
                self.sleep(random.uniform(0, delay))
        raise AssertionError("unreachable")  # pragma: no cover
