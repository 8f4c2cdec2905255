"""Schema per tenant (search_path per transaction), database per tenant, tenant migrations."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import flowtrace as ft
from flowtrace.errors import (
    ConfigError,
    InvalidContextValueError,
    MigrationError,
    TenantRoutingError,
)
from flowtrace.integrations.tenancy import TenancyPolicy, schema_name
from tests._pg import ADMIN_DSN, admin_execute
from tests._services import require_service

psycopg = pytest.importorskip("psycopg")
pytest.importorskip("psycopg_pool")

from flowtrace.integrations.migrations import migrate_tenant_schemas  # noqa: E402
from flowtrace.integrations.psycopg import TenantConnection  # noqa: E402
from flowtrace.integrations.routing import AsyncTenantRouter, TenantRouter  # noqa: E402

pytestmark = pytest.mark.services

CRAFTED = [
    'a"; DROP SCHEMA public CASCADE; --',
    "a', public",
    "a;b",
    'a"',
    "a b",
    "Acme",
    "café",
    "\uff41cme",  # fullwidth a
    "a\u200bb",  # zero-width space
    "x" * 80,
]


@dataclass(frozen=True)
class Schemas:
    template: str
    role: str

    @property
    def app_dsn(self) -> str:
        return f"host=127.0.0.1 port=5432 user={self.role} dbname=test"


@pytest.fixture(scope="module")
def schemas() -> Iterator[Schemas]:
    require_service("postgresql")
    sfx = uuid.uuid4().hex[:10]
    s = Schemas(f"ft_sch_{sfx}_{{tenant}}", f"ft_sch_app_{sfx}")
    statements = [f"CREATE ROLE {s.role} LOGIN"]
    for tenant in ("a", "b"):
        name = s.template.format(tenant=tenant)
        statements += [
            f"CREATE SCHEMA {name}",
            f"GRANT USAGE ON SCHEMA {name} TO {s.role}",
            f"CREATE TABLE {name}.items (owner text)",
            f"INSERT INTO {name}.items VALUES ('{tenant}')",
            f"GRANT SELECT ON {name}.items TO {s.role}",
        ]
    admin_execute(*statements)
    try:
        yield s
    finally:
        admin_execute(
            *[f"DROP SCHEMA IF EXISTS {s.template.format(tenant=t)} CASCADE" for t in "ab"],
            f"DROP OWNED BY {s.role}",
            f"DROP ROLE {s.role}",
        )


class TestSearchPathPerTransaction:
    def test_each_tenant_reads_its_own_schema(self, schemas: Schemas) -> None:
        """search_path is the tenant's schema in its transactions, and nothing after."""
        cls = TenantConnection.with_policy(TenancyPolicy(tenant_schema=schemas.template))
        with cls.connect(schemas.app_dsn) as conn:
            for tenant in ("a", "b", "a"):
                with ft.context(tenant=tenant):
                    assert conn.execute("SELECT owner FROM items").fetchall() == [(tenant,)]
                    assert conn.execute("SHOW search_path").fetchone() == (
                        schemas.template.format(tenant=tenant),
                    )
                    conn.commit()
            with ft.cross_tenant(reason="no tenant schema"):
                with pytest.raises(psycopg.errors.UndefinedTable):
                    conn.execute("SELECT owner FROM items")
                conn.rollback()

    @pytest.mark.parametrize("tenant", CRAFTED)
    def test_crafted_tenant_names_are_refused_before_the_server(
        self, schemas: Schemas, tenant: str
    ) -> None:
        cls = TenantConnection.with_policy(TenancyPolicy(tenant_schema=schemas.template))
        with cls.connect(schemas.app_dsn) as conn, ft.context(tenant=tenant):
            with pytest.raises(InvalidContextValueError, match="cannot name a schema"):
                conn.execute("SELECT 1")
            assert conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE


@given(st.text(max_size=70))
@settings(max_examples=300)
def test_schema_name_accepts_only_plain_identifiers(tenant: str) -> None:
    """Anything outside [a-z0-9_] (after the template) is refused; the rest is kept as is."""
    plain = all(c in "abcdefghijklmnopqrstuvwxyz0123456789_" for c in tenant)
    ok = plain and len("t_" + tenant) <= 63
    if ok:
        assert schema_name("t_{tenant}", tenant) == "t_" + tenant
    else:
        with pytest.raises(InvalidContextValueError):
            schema_name("t_{tenant}", tenant)


def test_bad_schema_templates_are_refused() -> None:
    with pytest.raises(ConfigError, match="must contain"):
        TenancyPolicy(tenant_schema="tenants")
    with pytest.raises(ConfigError, match="not a valid identifier"):
        TenancyPolicy(tenant_schema='t"{tenant}')
    with pytest.raises(ConfigError, match="not a valid identifier"):
        TenancyPolicy(tenant_schema="t_{tenant}", shared_schemas=("public; drop",))


@pytest.fixture(scope="module")
def databases() -> Iterator[dict[str, str]]:
    require_service("postgresql")
    sfx = uuid.uuid4().hex[:10]
    names = {t: f"ft_tdb_{sfx}_{t}" for t in ("a", "b")}
    for tenant, db in names.items():
        admin_execute(f"CREATE DATABASE {db}")
        with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={db}", autocommit=True) as c:
            c.execute("CREATE TABLE items (owner text)")
            c.execute("INSERT INTO items VALUES (%s)", (tenant,))
    try:
        yield {t: f"host=127.0.0.1 port=5432 user=postgres dbname={db}" for t, db in names.items()}
    finally:
        admin_execute(*[f"DROP DATABASE IF EXISTS {db} WITH (FORCE)" for db in names.values()])


class TestDatabasePerTenant:
    def test_routes_by_tenant_with_bounded_pools(self, databases: dict[str, str]) -> None:
        with TenantRouter(databases.__getitem__, max_pools=1, max_size=2) as router:
            for tenant in ("a", "b", "a"):
                with ft.context(tenant=tenant), router.connection() as conn:
                    assert conn.execute("SELECT owner FROM items").fetchall() == [(tenant,)]
                    conn.commit()
                assert router.pools() == [databases[tenant]]

    def test_the_bound_is_never_exceeded(self, databases: dict[str, str]) -> None:
        with TenantRouter(databases.__getitem__, max_pools=1) as router:
            with (
                ft.context(tenant="a"),
                router.connection(),
                ft.cross_tenant(reason="second tenant while a is busy"),
                ft.context(tenant="b"),
                pytest.raises(TenantRoutingError, match="max_pools"),
                router.connection(),
            ):
                pass
            assert router.pools() == [databases["a"]]

    def test_asyncio_router(self, databases: dict[str, str]) -> None:
        """Concurrent tasks for two tenants through max_pools=2: each reads its database."""

        async def main() -> list[tuple[str, list[tuple[str]]]]:
            async with AsyncTenantRouter(databases.__getitem__, max_pools=2) as router:

                async def read(tenant: str) -> tuple[str, list[tuple[str]]]:
                    with ft.context(tenant=tenant):
                        async with router.connection() as conn:
                            cur = await conn.execute("SELECT owner FROM items")
                            return tenant, await cur.fetchall()

                results = await asyncio.gather(*(read(t) for t in "abababab"))
                assert sorted(router.pools()) == sorted(databases.values())
                return results

        assert all(rows == [(tenant,)] for tenant, rows in asyncio.run(main()))

    def test_outside_a_tenant_is_refused(self, databases: dict[str, str]) -> None:
        with TenantRouter(databases.__getitem__) as router:
            with pytest.raises(ft.MissingTenantError), router.connection():
                pass
            assert router.pools() == []


def test_migration_applies_once_per_schema_and_resumes_after_a_failure() -> None:
    require_service("postgresql")
    sfx = uuid.uuid4().hex[:10]
    names = [f"ft_mig_{sfx}_{i}" for i in range(3)]
    admin_execute(*[f"CREATE SCHEMA {n}" for n in names])
    admin_execute(f"CREATE TABLE {names[1]}.widgets (clash int)")  # makes schema 2 fail
    lines: list[str] = []
    migration = "CREATE TABLE widgets (id int PRIMARY KEY)"
    try:
        with pytest.raises(MigrationError, match=f"{names[1]}.*run again to resume"):
            migrate_tenant_schemas(
                ADMIN_DSN,
                "0001_widgets",
                migration,
                prefix=f"ft_mig_{sfx}_",
                progress=lines.append,
            )
        assert lines[0] == f"[1/3] {names[0]}: applied 0001_widgets"
        assert lines[1].startswith(f"[2/3] {names[1]}: FAILED")
        admin_execute(f"DROP TABLE {names[1]}.widgets")
        lines.clear()
        report = migrate_tenant_schemas(
            ADMIN_DSN, "0001_widgets", migration, prefix=f"ft_mig_{sfx}_", progress=lines.append
        )
        assert (report.skipped, report.applied) == ([names[0]], names[1:])
        assert lines == [
            f"[1/3] {names[0]}: already has 0001_widgets, skipped",
            f"[2/3] {names[1]}: applied 0001_widgets",
            f"[3/3] {names[2]}: applied 0001_widgets",
        ]
        with psycopg.connect(ADMIN_DSN) as conn:
            for name in names:
                assert conn.execute(f"SELECT count(*) FROM {name}.widgets").fetchone() == (0,)
                ledger = conn.execute(f"SELECT id FROM {name}.flowtrace_migrations").fetchall()
                assert ledger == [("0001_widgets",)]
    finally:
        admin_execute(*[f"DROP SCHEMA IF EXISTS {n} CASCADE" for n in names])


def test_migration_refuses_crafted_schema_names() -> None:
    require_service("postgresql")
    with pytest.raises(ConfigError, match="not a valid identifier"):
        migrate_tenant_schemas(ADMIN_DSN, "x", "SELECT 1", schemas=['a"; DROP'], progress=print)
