"""A throw-away RLS schema on the real PostgreSQL: unique role, schema and table per use.

Superusers bypass RLS, so the application connects as a fresh role that is neither
superuser, nor BYPASSRLS, nor the table owner. Everything is dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests._services import require_service

ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
TENANTS = tuple(f"t{i}" for i in range(8))
ROWS_PER_TENANT = 3


@dataclass(frozen=True)
class RlsDb:
    """Names of one throw-away RLS set-up."""

    schema: str
    role: str
    table: str  # schema-qualified

    @property
    def app_dsn(self) -> str:
        return f"host=127.0.0.1 port=5432 user={self.role} dbname=test"


def admin_execute(*statements: str, missing_ok: bool = False) -> None:
    """Run each statement as postgres (autocommit); ``missing_ok`` skips undefined objects."""
    import psycopg

    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        for statement in statements:
            try:
                conn.execute(statement)  # type: ignore[arg-type]
            except psycopg.errors.UndefinedObject:
                if not missing_ok:
                    raise


def rls_statements(schema: str, role: str, table: str = "docs") -> list[str]:
    """The complete, correct set-up (the one docs/database.md shows)."""
    q = f"{schema}.{table}"
    return [
        f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS",
        f"CREATE SCHEMA {schema}",
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"CREATE TABLE {q} (id serial PRIMARY KEY, tenant text NOT NULL, body text NOT NULL)",
        f"ALTER TABLE {q} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {q} FORCE ROW LEVEL SECURITY",
        f"""CREATE POLICY tenant_isolation ON {q}
            USING (tenant = current_setting('app.tenant', true)
                   OR (current_setting('app.tenant', true) = ''
                       AND current_setting('app.bypass_rls', true) = 'on'))
            WITH CHECK (tenant = current_setting('app.tenant', true))""",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {q} TO {role}",
        f"GRANT USAGE ON SEQUENCE {q}_id_seq TO {role}",
    ]


def drop_statements(schema: str, role: str) -> list[str]:
    return [
        f"DROP SCHEMA IF EXISTS {schema} CASCADE",
        f"DROP OWNED BY {role}",
        f"DROP ROLE IF EXISTS {role}",
    ]


@pytest.fixture(scope="module")
def rls_db() -> Iterator[RlsDb]:
    """An RLS-protected table with ROWS_PER_TENANT rows for each of TENANTS."""
    require_service("postgresql")
    suffix = uuid.uuid4().hex[:12]
    db = RlsDb(schema=f"ft_rls_{suffix}", role=f"ft_app_{suffix}", table=f"ft_rls_{suffix}.docs")
    try:
        admin_execute(*rls_statements(db.schema, db.role))
        values = ", ".join(
            f"('{t}', 'row {n} of {t}')" for t in TENANTS for n in range(ROWS_PER_TENANT)
        )
        admin_execute(f"INSERT INTO {db.table} (tenant, body) VALUES {values}")
        yield db
    finally:
        admin_execute(*drop_statements(db.schema, db.role), missing_ok=True)
