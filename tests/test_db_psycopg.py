"""psycopg 3: every transaction carries the flow context's tenant (real PostgreSQL, RLS)."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import flowtrace as ft
from flowtrace.errors import ConfigError, MissingExtraError, MissingTenantError, TenantScopeError
from tests import _pg
from tests._pg import ROWS_PER_TENANT, TENANTS, RlsDb

psycopg = pytest.importorskip("psycopg")
pool_mod = pytest.importorskip("psycopg_pool")

from flowtrace.integrations.psycopg import (  # noqa: E402
    AsyncTenantConnection,
    TenantConnection,
    settings_statements,
)
from flowtrace.integrations.tenancy import TenancyPolicy  # noqa: E402

pytestmark = pytest.mark.services
rls_db = _pg.rls_db


def tenants_read(conn: psycopg.Connection, db: RlsDb) -> list[str]:
    return [row[0] for row in conn.execute(f"SELECT tenant FROM {db.table}").fetchall()]


class TestEveryTransactionCarriesTheTenant:
    def test_a_tenant_reads_only_its_rows_and_the_setting_is_transaction_local(
        self, rls_db: RlsDb
    ) -> None:
        """RLS sees the tenant of the flow context; after commit the session has no tenant."""
        with TenantConnection.connect(rls_db.app_dsn) as conn:
            with ft.context(tenant="t1"):
                assert tenants_read(conn, rls_db) == ["t1"] * ROWS_PER_TENANT
                conn.commit()
            with ft.cross_tenant(reason="inspect the session after commit"):
                assert conn.execute(
                    "SELECT current_setting('app.bypass_rls'), current_setting('app.tenant')"
                ).fetchone() == ("on", "")
                conn.rollback()
            with ft.context(tenant="t2"):
                assert conn.execute(
                    "SELECT current_setting('app.bypass_rls'), current_setting('app.tenant')"
                ).fetchone() == ("", "t2")
                conn.rollback()

    def test_without_a_tenant_nothing_reaches_the_server(self, rls_db: RlsDb) -> None:
        """MissingTenantError before BEGIN is sent: the connection is still idle."""
        with TenantConnection.connect(rls_db.app_dsn) as conn:
            with pytest.raises(MissingTenantError, match="without a tenant"):
                conn.execute(f"SELECT * FROM {rls_db.table}")
            assert conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE

    def test_the_settings_ride_in_the_begin_message(self, rls_db: RlsDb, tmp_path: Path) -> None:
        """Same number of messages that wait for the server as plain psycopg: no extra trip."""

        def round_trips(conn: psycopg.Connection) -> tuple[int, str]:
            trace = tmp_path / f"trace-{id(conn)}"
            with trace.open("w") as out:
                conn.pgconn.trace(out.fileno())
                conn.execute("SELECT 1").fetchone()
                conn.commit()
                conn.pgconn.untrace()
            text = trace.read_text()
            sent = [ln for ln in text.splitlines() if "\tF\t" in ln]
            return sum(1 for ln in sent if "\tQuery\t" in ln or "\tSync" in ln), text

        with ft.context(tenant="t2"):
            with psycopg.connect(rls_db.app_dsn) as plain:
                base, _ = round_trips(plain)
            with TenantConnection.connect(rls_db.app_dsn) as conn:
                ours, text = round_trips(conn)
        assert (base, ours) == (3, 3)
        # The trace quotes the message: the closing quote shows nothing else was sent.
        assert '"BEGIN; SET LOCAL "app"."tenant" = E\'t2\'"' in text

    def test_async_connection(self, rls_db: RlsDb) -> None:
        """The async class carries the tenant and fails closed the same way."""

        async def main() -> tuple[list[str], bool]:
            async with await AsyncTenantConnection.connect(rls_db.app_dsn) as conn:
                with ft.context(tenant="t3"):
                    cur = await conn.execute(f"SELECT tenant FROM {rls_db.table}")
                    rows = [r[0] for r in await cur.fetchall()]
                    await conn.commit()
                try:
                    await conn.execute("SELECT 1")
                except MissingTenantError:
                    refused = conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
                else:
                    refused = False
                return rows, refused

        assert asyncio.run(main()) == (["t3"] * ROWS_PER_TENANT, True)


class TestCrossTenant:
    def test_bypass_is_set_reported_and_audited(
        self, rls_db: RlsDb, events: list[ft.FlowEvent]
    ) -> None:
        """Inside cross_tenant the declared bypass is on, an event and an audit record say so."""
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "audit.jsonl")
            with ft.audit.AuditLog(path) as log:
                cls = TenantConnection.with_policy(TenancyPolicy(audit_log=log))
                with cls.connect(rls_db.app_dsn) as conn, ft.cross_tenant(reason="support #42"):
                    assert sorted(set(tenants_read(conn, rls_db))) == list(TENANTS)
                    conn.rollback()
            records = Path(path).read_text().splitlines()
        assert any('"action":"db.cross_tenant"' in r and "support #42" in r for r in records)
        db_events = [e for e in events if e.attributes.get("flowtrace.db.setting")]
        assert [e.attributes["reason"] for e in db_events] == ["support #42"]

    def test_a_bypass_left_in_the_session_does_not_widen_a_tenant_transaction(
        self, rls_db: RlsDb
    ) -> None:
        """A session-level bypass (someone's plain SET) is inert: the tenant is never empty."""
        with TenantConnection.connect(rls_db.app_dsn) as conn:
            with ft.cross_tenant(reason="simulate a careless admin job"):
                conn.execute("SET app.bypass_rls = 'on'")  # session level, survives commit
                conn.commit()
            with ft.context(tenant="t1"):
                assert conn.execute("SHOW app.bypass_rls").fetchone() == ("on",)
                assert set(tenants_read(conn, rls_db)) == {"t1"}

    def test_a_policy_without_cross_tenant_fails_closed(self, rls_db: RlsDb) -> None:
        """allow_cross_tenant=False: a cross-tenant scope without a tenant is refused."""
        cls = TenantConnection.with_policy(TenancyPolicy(allow_cross_tenant=False))
        with (
            cls.connect(rls_db.app_dsn) as conn,
            ft.cross_tenant(reason="report"),
            pytest.raises(MissingTenantError),
        ):
            conn.execute("SELECT 1")


class TestTransactionShapes:
    def test_autocommit_statement_is_refused_and_transaction_block_works(
        self, rls_db: RlsDb
    ) -> None:
        """An implicit autocommit transaction cannot carry the tenant: refused; a block can."""
        with (
            TenantConnection.connect(rls_db.app_dsn, autocommit=True) as conn,
            ft.context(tenant="t4"),
        ):
            with pytest.raises(TenantScopeError, match=r"conn\.transaction"):
                conn.execute("SELECT 1")
            with conn.transaction():
                assert set(tenants_read(conn, rls_db)) == {"t4"}

    def test_savepoint_rollback_keeps_the_tenant(self, rls_db: RlsDb) -> None:
        """A rolled-back nested transaction does not undo the setting made at BEGIN."""
        with TenantConnection.connect(rls_db.app_dsn) as conn, ft.context(tenant="t5"):
            with conn.transaction():
                with conn.transaction(force_rollback=True):
                    assert set(tenants_read(conn, rls_db)) == {"t5"}
                with conn.transaction():
                    conn.execute(f"INSERT INTO {rls_db.table} (tenant, body) VALUES ('t5', 'tmp')")
                    raise psycopg.Rollback()
            with conn.transaction():
                assert tenants_read(conn, rls_db) == ["t5"] * ROWS_PER_TENANT

    def test_server_side_cursor(self, rls_db: RlsDb) -> None:
        """A named (server-side) cursor declared in the transaction reads only the tenant."""
        with TenantConnection.connect(rls_db.app_dsn) as conn, ft.context(tenant="t6"):
            with conn.cursor(name="ft_ssc") as cur:
                cur.itersize = 1
                cur.execute(f"SELECT tenant FROM {rls_db.table}")
                assert [r[0] for r in cur] == ["t6"] * ROWS_PER_TENANT
            conn.rollback()

    def test_copy_out_and_in(self, rls_db: RlsDb) -> None:
        """COPY TO reads only the tenant's rows; PostgreSQL refuses COPY FROM under RLS."""
        with TenantConnection.connect(rls_db.app_dsn) as conn, ft.context(tenant="t7"):
            with conn.cursor() as cur:
                with cur.copy(f"COPY (SELECT tenant FROM {rls_db.table}) TO STDOUT") as copy:
                    out = [row[0] for row in copy.rows()]
                assert out == ["t7"] * ROWS_PER_TENANT
            conn.rollback()
            with (
                pytest.raises(psycopg.errors.FeatureNotSupported, match="row-level"),
                conn.cursor() as cur,
                cur.copy(f"COPY {rls_db.table} (tenant, body) FROM STDIN") as copy,
            ):
                copy.write_row(("t0", "smuggled"))
            conn.rollback()

    def test_pipeline_mode(self, rls_db: RlsDb) -> None:
        """In pipeline mode the settings are queued after BEGIN."""
        with TenantConnection.connect(rls_db.app_dsn) as conn, ft.context(tenant="t1"):
            with conn.pipeline():
                cur = conn.execute(f"SELECT tenant FROM {rls_db.table}")
            assert {r[0] for r in cur.fetchall()} == {"t1"}
            conn.rollback()

    def test_connection_returned_to_the_pool_mid_transaction(self, rls_db: RlsDb) -> None:
        """The pool rolls back a returned open transaction; the next tenant sees only itself."""
        with pool_mod.ConnectionPool(
            rls_db.app_dsn,
            connection_class=TenantConnection,
            min_size=1,
            max_size=1,
            open=True,
        ) as pool:
            with ft.context(tenant="t2"):
                conn = pool.getconn()
                assert set(tenants_read(conn, rls_db)) == {"t2"}
                pool.putconn(conn)  # still in the transaction
            with ft.context(tenant="t3"), pool.connection() as again:
                assert again is conn
                assert set(tenants_read(again, rls_db)) == {"t3"}


class TestLivenessChecks:
    def test_pool_check_passes_and_the_exemption_ends_with_it(self, rls_db: RlsDb) -> None:
        """The pool's empty-query ping passes; afterwards autocommit statements are refused."""
        with pool_mod.ConnectionPool(
            rls_db.app_dsn,
            connection_class=TenantConnection,
            min_size=2,
            max_size=2,
            check=pool_mod.ConnectionPool.check_connection,
        ) as pool:
            pool.wait()
            pool.check()
            assert pool.get_stats().get("connections_lost", 0) == 0
            with ft.context(tenant="t1"), pool.connection() as conn:
                assert set(tenants_read(conn, rls_db)) == {"t1"}
                conn.rollback()
                conn.autocommit = True
                with pytest.raises(TenantScopeError):
                    conn.execute("SELECT 1")
                conn.autocommit = False

    def test_async_pool_check(self, rls_db: RlsDb) -> None:
        async def main() -> tuple[int, set[str]]:
            async with pool_mod.AsyncConnectionPool(
                rls_db.app_dsn,
                connection_class=AsyncTenantConnection,
                min_size=2,
                max_size=2,
                check=pool_mod.AsyncConnectionPool.check_connection,
            ) as pool:
                await pool.wait()
                await pool.check()
                with ft.context(tenant="t2"):
                    async with pool.connection() as conn:
                        cur = await conn.execute(f"SELECT tenant FROM {rls_db.table}")
                        seen = {r[0] for r in await cur.fetchall()}
                return pool.get_stats().get("connections_lost", 0), seen

        assert asyncio.run(main()) == (0, {"t2"})


def test_async_connection_returned_to_the_pool_mid_transaction(rls_db: RlsDb) -> None:
    """The async pool rolls back a returned open transaction; the next tenant sees itself."""

    async def main() -> tuple[set[str], set[str], bool]:
        async with pool_mod.AsyncConnectionPool(
            rls_db.app_dsn, connection_class=AsyncTenantConnection, min_size=1, max_size=1
        ) as pool:
            with ft.context(tenant="t4"):
                conn = await pool.getconn()
                first = {r[0] for r in await (await conn.execute(select_all(rls_db))).fetchall()}
                await pool.putconn(conn)  # still in the transaction
            with ft.context(tenant="t5"):
                async with pool.connection() as again:
                    rows = await (await again.execute(select_all(rls_db))).fetchall()
                    return first, {r[0] for r in rows}, again is conn

    assert asyncio.run(main()) == ({"t4"}, {"t5"}, True)


def select_all(db: RlsDb) -> str:
    return f"SELECT tenant FROM {db.table}"


def test_isolation_level_and_read_only_transactions(rls_db: RlsDb) -> None:
    """BEGIN ISOLATION LEVEL ... READ ONLY carries the settings too."""
    with TenantConnection.connect(rls_db.app_dsn) as conn, ft.context(tenant="t6"):
        conn.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
        conn.read_only = True
        assert conn.execute(
            "SELECT current_setting('transaction_isolation'), current_setting('app.tenant')"
        ).fetchone() == ("serializable", "t6")
        assert set(tenants_read(conn, rls_db)) == {"t6"}
        conn.rollback()


class TestPolicy:
    def test_bad_setting_names_are_refused(self) -> None:
        with pytest.raises(ConfigError, match=r"prefix\.name"):
            TenancyPolicy(tenant_guc="tenant'; DROP TABLE x; --")
        with pytest.raises(ConfigError, match="distinct"):
            TenancyPolicy(tenant_guc="app.x", bypass_guc="app.x")

    def test_user_and_purpose_settings(self, rls_db: RlsDb) -> None:
        cls = TenantConnection.with_policy(
            TenancyPolicy(user_guc="app.user", purpose_guc="app.purpose")
        )
        with (
            cls.connect(rls_db.app_dsn) as conn,
            ft.context(tenant="t1", user="u-9", purpose="billing"),
        ):
            assert conn.execute(
                "SELECT current_setting('app.user'), current_setting('app.purpose')"
            ).fetchone() == ("u-9", "billing")
            conn.rollback()

    def test_missing_extra_names_the_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(sys.modules, "psycopg", None)
        monkeypatch.delitem(sys.modules, "flowtrace.integrations.psycopg")
        with pytest.raises(MissingExtraError, match=r"flowtrace-sdk\[postgres\]"):
            import flowtrace.integrations.psycopg  # noqa: F401


@pytest.fixture(scope="module")
def admin_conn() -> psycopg.Connection:
    from tests._services import require_service

    require_service("postgresql")
    conn = psycopg.connect(_pg.ADMIN_DSN, autocommit=True)
    yield conn
    conn.close()


@settings(max_examples=60, deadline=None)
@given(value=st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40))
def test_any_value_round_trips_as_one_literal(admin_conn: psycopg.Connection, value: str) -> None:
    """Quotes, backslashes, semicolons, unicode: set_config receives exactly the value."""
    with admin_conn.transaction():
        for statement in settings_statements((("app.tenant", value), ("app.user", "x"))):
            admin_conn.execute(statement)  # type: ignore[arg-type]
        got = admin_conn.execute("SELECT current_setting('app.tenant')").fetchone()
    assert got == (value,)
