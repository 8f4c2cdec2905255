"""Shared fixtures and helpers for the crypto tests (no tests here): stores of every
kind, a controllable clock and a key provider that can be switched off (a KMS outage)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from flowtrace.crypto import (
    LocalKeyProvider,
    MemoryVaultStore,
    PostgresVaultStore,
    SqliteVaultStore,
    VaultStore,
)
from flowtrace.errors import KeyProviderUnavailableError

from ._services import require_service


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FlakyProvider:
    """Wraps a provider; while ``down`` every call raises KeyProviderUnavailableError."""

    def __init__(self, inner: LocalKeyProvider) -> None:
        self.inner = inner
        self.down = False
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise KeyProviderUnavailableError("simulated KMS outage")

    def wrap_key(self, kek_id: str, key: bytes, encryption_context: Mapping[str, str]) -> bytes:
        self._check()
        return self.inner.wrap_key(kek_id, key, encryption_context)

    def unwrap_key(
        self, kek_id: str, wrapped: bytes, encryption_context: Mapping[str, str]
    ) -> bytes:
        self._check()
        return self.inner.unwrap_key(kek_id, wrapped, encryption_context)


def postgres_conninfo() -> str:
    host, port = require_service("postgresql")
    return f"host={host} port={port} dbname=test user=postgres"


def drop_schema(conninfo: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VaultStore]:
    """A fresh, empty vault store of each kind."""
    if request.param == "memory":
        yield MemoryVaultStore()
    elif request.param == "sqlite":
        sqlite_store = SqliteVaultStore(tmp_path / "vault.db")
        yield sqlite_store
        sqlite_store.close()
    else:
        conninfo = postgres_conninfo()
        schema = f"ft_crypto_{uuid.uuid4().hex[:12]}"
        pg_store = PostgresVaultStore(conninfo, schema=schema)
        try:
            yield pg_store
        finally:
            pg_store.close()
            drop_schema(conninfo, schema)
