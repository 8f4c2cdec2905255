"""Where the key vault keeps wrapped data keys: memory, SQLite, PostgreSQL."""

from __future__ import annotations

from ._base import DekRecord, KeyringRecord, VaultStore
from ._memory import MemoryVaultStore
from ._postgres import PostgresVaultStore
from ._sqlite import SqliteVaultStore

__all__ = [
    "DekRecord",
    "KeyringRecord",
    "MemoryVaultStore",
    "PostgresVaultStore",
    "SqliteVaultStore",
    "VaultStore",
]
