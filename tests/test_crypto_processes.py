"""Crypto-shredding across processes: another process sharing the vault stops decrypting."""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

import flowtrace
from flowtrace.crypto import (
    CachePolicy,
    FieldEncryptor,
    KeyVault,
    LocalKeyProvider,
    PostgresVaultStore,
    SqliteVaultStore,
    VaultStore,
)
from flowtrace.errors import CryptoError, KeyDestroyedError

from .test_crypto_support import drop_schema, postgres_conninfo

INTERVAL = 0.5


def _open_store(kind: str, location: str) -> VaultStore:
    if kind == "sqlite":
        return SqliteVaultStore(location)
    conninfo, schema = location.split("|")
    return PostgresVaultStore(conninfo, schema=schema)


def _reader(conn: Connection, kind: str, location: str, kek: bytes, fake_clock: bool) -> None:
    """Child process: a vault on the shared store answering decrypt/advance commands."""
    now = [1000.0]
    clock = (lambda: now[0]) if fake_clock else time.monotonic
    vault = KeyVault(
        LocalKeyProvider({"k": kek}),
        _open_store(kind, location),
        kek_id="k",
        cache=CachePolicy(revalidate_interval=INTERVAL),
        clock=clock,
    )
    enc = FieldEncryptor(vault)
    conn.send(("ready", os.getpid()))
    with flowtrace.context(tenant="acme"):
        while True:
            command, argument = conn.recv()
            if command == "stop":
                break
            if command == "advance":
                now[0] += argument
                conn.send(("ok", None))
                continue
            try:
                conn.send(("ok", enc.decrypt(argument, field="f")))
            except CryptoError as exc:
                conn.send(("error", type(exc).__name__))
    vault.close()


class Reader:
    """Handle on a child process running :func:`_reader`."""

    def __init__(self, kind: str, location: str, kek: bytes, fake_clock: bool) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_reader, args=(child, kind, location, kek, fake_clock))
        self.process.start()
        assert self.ask("wait", None)[0] == "ready"
        assert self.process.pid != os.getpid()

    def ask(self, command: str, argument: Any) -> tuple[str, Any]:
        if command != "wait":
            self.conn.send((command, argument))
        if not self.conn.poll(60):
            raise AssertionError("reader process did not answer within 60 s")
        answer: tuple[str, Any] = self.conn.recv()
        return answer

    def close(self) -> None:
        self.conn.send(("stop", None))
        self.process.join(30)
        assert self.process.exitcode == 0


@pytest.fixture(params=["sqlite", "postgres"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(kind, location) of a vault store two processes can share."""
    if request.param == "sqlite":
        yield "sqlite", str(tmp_path / "shared.db")
        return
    conninfo = postgres_conninfo()
    schema = f"ft_crypto_{uuid.uuid4().hex[:12]}"
    try:
        yield "postgres", f"{conninfo}|{schema}"
    finally:
        drop_schema(conninfo, schema)


def _writer(kind: str, location: str, kek: bytes) -> FieldEncryptor:
    return FieldEncryptor(
        KeyVault(LocalKeyProvider({"k": kek}), _open_store(kind, location), kek_id="k")
    )


def test_shred_reaches_another_process_exactly_at_the_bound(shared: tuple[str, str]) -> None:
    """With its clock driven, the other process serves its cache until revalidate_interval
    has passed and raises KeyDestroyedError from that moment on."""
    kind, location = shared
    kek = os.urandom(32)
    writer = _writer(kind, location, kek)
    with flowtrace.context(tenant="acme"):
        token = writer.encrypt("alice@example.com", field="f", subject="alice")
        keep = writer.encrypt("bob@example.com", field="f", subject="bob")
    reader = Reader(kind, location, kek, fake_clock=True)
    try:
        assert reader.ask("decrypt", token) == ("ok", "alice@example.com")
        with flowtrace.context(tenant="acme"):
            writer.shred(subject="alice", reason="erasure")
            with pytest.raises(KeyDestroyedError):
                writer.decrypt(token, field="f")  # this process: at once
        assert reader.ask("advance", INTERVAL * 0.9) == ("ok", None)
        assert reader.ask("decrypt", token) == ("ok", "alice@example.com")  # inside the bound
        assert reader.ask("advance", INTERVAL * 0.1) == ("ok", None)
        assert reader.ask("decrypt", token) == ("error", "KeyDestroyedError")
        assert reader.ask("decrypt", keep) == ("ok", "bob@example.com")
    finally:
        reader.close()
        writer.vault.close()


def test_shred_reaches_another_process_in_real_time(shared: tuple[str, str]) -> None:
    """On a real clock the other process refuses the token soon after the shred (polled
    against a deadline of revalidate_interval plus generous scheduling slack)."""
    kind, location = shared
    kek = os.urandom(32)
    writer = _writer(kind, location, kek)
    with flowtrace.context(tenant="acme"):
        token = writer.encrypt("alice@example.com", field="f", subject="alice")
    reader = Reader(kind, location, kek, fake_clock=False)
    try:
        assert reader.ask("decrypt", token) == ("ok", "alice@example.com")
        with flowtrace.context(tenant="acme"):
            writer.shred(subject="alice")
        shredded = time.monotonic()
        deadline = shredded + INTERVAL + 10.0
        answer = reader.ask("decrypt", token)
        while answer[0] == "ok" and time.monotonic() < deadline:
            answer = reader.ask("decrypt", token)
        assert answer == ("error", "KeyDestroyedError")
    finally:
        reader.close()
        writer.vault.close()
