"""Field-level envelope encryption: per-tenant and per-subject keys, crypto-shredding.

The safe recipe::

    import flowtrace
    from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider, SqliteVaultStore

    vault = KeyVault(LocalKeyProvider.generate("kek-1"), SqliteVaultStore("keys.db"),
                     kek_id="kek-1")
    enc = FieldEncryptor(vault, subject_keys=True)
    with flowtrace.context(tenant="acme", subject="patient-42"):
        token = enc.encrypt("123-45-6789", field="ssn", context={"record": "42"})
        enc.decrypt(token, field="ssn", context={"record": "42"}, reason="billing")
        enc.shred(subject="patient-42")          # the token is now unrecoverable

Data keys (DEKs) exist in the vault only wrapped by a key-encryption key held by a
:class:`KeyProvider` (AWS KMS, or :class:`LocalKeyProvider` for development). Tokens follow
docs/spec/token.md. Raw key material is only reachable through
:mod:`flowtrace.crypto.hazmat`, which is for test vectors and interoperability.

Owns the token format, keys, the vault and shredding. May import:
:mod:`flowtrace.flowcontext` (the tenant/subject in force, decrypt events),
:mod:`flowtrace.classify`, :mod:`flowtrace.errors`; not the other capabilities.
"""

from __future__ import annotations

from ._cache import CachePolicy
from ._encryptor import FieldEncryptor, TokenInfo
from ._providers import AwsKmsKeyProvider, KeyProvider, LocalKeyProvider, RetryPolicy
from ._stores import (
    DekRecord,
    KeyringRecord,
    MemoryVaultStore,
    PostgresVaultStore,
    SqliteVaultStore,
    VaultStore,
)
from ._vault import DestroyedKey, KeyVault, ShredReceipt

__all__ = [
    "AwsKmsKeyProvider",
    "CachePolicy",
    "DekRecord",
    "DestroyedKey",
    "FieldEncryptor",
    "KeyProvider",
    "KeyVault",
    "KeyringRecord",
    "LocalKeyProvider",
    "MemoryVaultStore",
    "PostgresVaultStore",
    "RetryPolicy",
    "ShredReceipt",
    "SqliteVaultStore",
    "TokenInfo",
    "VaultStore",
]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("flowtrace.crypto._"):
        _obj.__module__ = __name__
del _name, _obj
