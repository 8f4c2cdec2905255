"""PostgreSQL audit tables on the real server: schema set-up split from appending (two
roles), and a table owner who disables the triggers is caught (issue 10 items 2 and 3).

Every test creates uniquely named roles, schemas and tables and drops them afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flowtrace import audit
from flowtrace.cli import main
from flowtrace.errors import (
    AuditWriteError,
    ConfigError,
    ForgedRecordError,
    TruncationError,
)
from tests._services import require_service

pytestmark = pytest.mark.services


@dataclass
class Db:
    host: str
    port: int
    suffix: str

    def dsn(self, user: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user={user} dbname=test"

    def admin(self) -> Any:
        import psycopg

        return psycopg.connect(self.dsn(), autocommit=True)


@pytest.fixture
def db() -> Db:
    host, port = require_service("postgresql")
    return Db(host, port, uuid.uuid4().hex[:10])


@pytest.fixture
def roles(db: Db) -> Iterator[tuple[str, str, str]]:
    """An owner role with its own schema, and a writer role with no privileges yet."""
    owner, writer, schema = f"ft_own_{db.suffix}", f"ft_app_{db.suffix}", f"ft_s_{db.suffix}"
    with db.admin() as conn:
        conn.execute(f"CREATE ROLE {owner} LOGIN")
        conn.execute(f"CREATE ROLE {writer} LOGIN")
        conn.execute(f"CREATE SCHEMA {schema} AUTHORIZATION {owner}")
    try:
        yield owner, writer, schema
    finally:
        with db.admin() as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.execute(f"DROP OWNED BY {writer}")
            conn.execute(f"DROP ROLE IF EXISTS {writer}")
            conn.execute(f"DROP ROLE IF EXISTS {owner}")


def test_an_insert_select_role_appends_after_the_owner_ran_init_db(
    db: Db, roles: tuple[str, str, str], tmp_path: Path
) -> None:
    """Issue 10 item 3 (fails before: opening the sink ran CREATE OR REPLACE FUNCTION and
    triggers, which an INSERT+SELECT role may not). The owner runs `flowtrace audit
    init-db --grant`; the writer role, with INSERT and SELECT only, opens the sink, appends
    and checkpoints, and the log verifies; it cannot UPDATE, DELETE or create anything."""
    import psycopg

    owner, writer, schema = roles
    table = f"{schema}.audit"
    key = audit.generate_key()
    with pytest.raises(ConfigError, match="init-db"):  # no tables yet: a clear message
        audit.PostgresSink(db.dsn(writer), table=table)
    assert main(["audit", "init-db", db.dsn(owner), "--table", table, "--grant", writer]) == 0
    sink = audit.PostgresSink(db.dsn(writer), table=table)
    with audit.AuditLog(sink, signing_key=key, checkpoint_every=5) as log:
        for i in range(12):
            log.append("patient.read", resource=f"patients/{i}")
    reader = audit.PostgresSink(db.dsn(writer), table=table)
    try:
        assert audit.verify(reader, public_key=key.public_key()).records == 12
    finally:
        reader.close()
    with psycopg.connect(db.dsn(writer), autocommit=True) as conn:
        for sql in (
            f"UPDATE {table} SET line = 'x'",
            f"DELETE FROM {table}_checkpoints",
            f"TRUNCATE {table}",
            f"CREATE TABLE {schema}.other (x int)",
            f"ALTER TABLE {table} DISABLE TRIGGER ALL",
        ):
            with pytest.raises(psycopg.Error, match=r"permission denied|must be owner"):
                conn.execute(sql)
    assert main(["audit", "init-db", db.dsn(owner), "--table", table]) == 0  # idempotent


def test_init_db_by_a_role_without_rights_fails_clearly(
    db: Db, roles: tuple[str, str, str]
) -> None:
    """The writer role cannot set up the schema: AuditWriteError, not a half-made table."""
    _, writer, schema = roles
    with pytest.raises(AuditWriteError, match="could not set up"):
        audit.init_db(db.dsn(writer), table=f"{schema}.audit")


@pytest.fixture
def owned_log(db: Db, roles: tuple[str, str, str]) -> Iterator[tuple[str, str, Any]]:
    """A signed log of 30 records written by the writer role, with a checkpoint mirror in a
    schema the log's owner cannot write (owned by the superuser)."""
    owner, writer, schema = roles
    table, mirror = f"{schema}.audit", f"ft_m_{db.suffix}.mirror"
    audit.init_db(db.dsn(owner), table=table, grant=writer)
    with db.admin() as conn:
        conn.execute(f"CREATE SCHEMA ft_m_{db.suffix}")
    audit.init_db(db.dsn(), table=mirror, grant=writer)
    key = audit.generate_key()
    mirrors = [audit.PostgresCheckpoints(db.dsn(writer), table=mirror)]
    with audit.AuditLog(audit.PostgresSink(db.dsn(writer), table=table), signing_key=key,
                        checkpoint_every=10, checkpoint_mirrors=mirrors) as log:
        for i in range(30):
            log.append("patient.read", resource=f"patients/{i}", wait=i % 5 == 4)
    try:
        yield table, mirror, key
    finally:
        with db.admin() as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS ft_m_{db.suffix} CASCADE")


def _verify(
    db: Db, table: str, key: Any, mirror: str | None = None
) -> audit.VerificationReport:
    reader = audit.PostgresSink(db.dsn(), table=table)
    anchors = [] if mirror is None else [audit.PostgresCheckpoints(db.dsn(), table=mirror)]
    try:
        return audit.verify(reader, public_key=key.public_key(), anchors=anchors)
    finally:
        reader.close()
        for anchor in anchors:
            anchor.close()


def test_a_table_owner_who_disables_the_trigger_rewrites_rows_and_deletes_checkpoints_is_caught(
    db: Db, roles: tuple[str, str, str], owned_log: tuple[str, str, Any]
) -> None:
    """Issue 10 item 2 on PostgreSQL (fails before format 2: with the checkpoint rows
    deleted the rewritten chain verified). The owner disables the triggers, rewrites
    record 12 and recomputes every later hash, and deletes the checkpoint rows."""
    import psycopg

    from tests.test_audit_threats import _rechain

    owner, _, _ = roles
    table, mirror, key = owned_log
    assert _verify(db, table, key, mirror).anchors > 0
    with psycopg.connect(db.dsn(owner), autocommit=True) as conn:
        rows = conn.execute(f"SELECT seq, line FROM {table} ORDER BY seq").fetchall()
        data = b"".join(bytes(line) + b"\n" for _, line in rows)
        forged = _rechain(data, 12, actor="someone-else").splitlines()
        conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
        conn.execute(f"ALTER TABLE {table}_checkpoints DISABLE TRIGGER ALL")
        for seq, line in enumerate(forged):
            conn.execute(f"UPDATE {table} SET line = %s WHERE seq = %s", (line, seq))
        conn.execute(f"DELETE FROM {table}_checkpoints")
    with pytest.raises(ForgedRecordError) as info:
        _verify(db, table, key)
    assert info.value.sequence is not None
    assert info.value.sequence <= 12


def test_a_table_owner_who_rolls_back_rows_and_checkpoints_is_caught_by_the_mirror(
    db: Db, roles: tuple[str, str, str], owned_log: tuple[str, str, Any]
) -> None:
    """Deleting the last rows down to an older signed state together with the checkpoint
    rows after it verifies on the table alone (the external-anchor line), and fails
    against the mirror the writer kept in a schema the owner cannot write."""
    import psycopg

    owner, _, _ = roles
    table, mirror, key = owned_log
    with psycopg.connect(db.dsn(owner), autocommit=True) as conn:
        conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
        conn.execute(f"ALTER TABLE {table}_checkpoints DISABLE TRIGGER ALL")
        conn.execute(f"DELETE FROM {table} WHERE seq >= 20")
        conn.execute(
            f"DELETE FROM {table}_checkpoints WHERE position('\"size\":20,' in "
            "convert_from(line, 'UTF8')) = 0 AND position('\"size\":10,' in "
            "convert_from(line, 'UTF8')) = 0"
        )
        with pytest.raises(psycopg.Error, match="permission denied"):
            conn.execute(f"DELETE FROM {mirror}_checkpoints")
    assert _verify(db, table, key).records == 20
    with pytest.raises(TruncationError) as info:
        _verify(db, table, key, mirror)
    assert info.value.sequence == 20
