"""Tenant-scoped Redis keys, and assert_tenant_isolation catching cache and database leaks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

import flowtrace as ft
from flowtrace.errors import ConfigError, MissingTenantError
from flowtrace.testing import TenantRun, assert_tenant_isolation
from tests import _pg
from tests._pg import RlsDb
from tests._services import require_service

redis = pytest.importorskip("redis")
pytest.importorskip("psycopg")

from flowtrace.integrations.dbisolation import RowRecorder, assert_db_isolation  # noqa: E402
from flowtrace.integrations.psycopg import TenantConnection  # noqa: E402
from flowtrace.integrations.redis import AsyncTenantCache, TenantCache, tenant_key  # noqa: E402

rls_db = _pg.rls_db
tenant_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=20)


class TestKeys:
    def test_a_key_outside_a_tenant_fails_closed(self) -> None:
        with pytest.raises(MissingTenantError):
            tenant_key("profile:1")
        with ft.cross_tenant(reason="no tenant chosen"), pytest.raises(MissingTenantError):
            tenant_key("profile:1")

    def test_the_key_carries_the_tenant(self) -> None:
        with ft.context(tenant="acme"):
            assert tenant_key("profile:1") == "ft:acme:profile:1"
        with ft.context(tenant="a:b%"):
            assert tenant_key("c", prefix="app") == "app:a%3Ab%25:c"
        with ft.context(tenant="acme"), pytest.raises(ConfigError):
            tenant_key("")

    @given(tenant_text, tenant_text, tenant_text, tenant_text)
    def test_no_tenant_can_forge_another_tenants_key(
        self, t1: str, k1: str, t2: str, k2: str
    ) -> None:
        """Different (tenant, key) pairs never give the same Redis key."""
        with ft.context(tenant=t1):
            first = tenant_key(k1)
        with ft.context(tenant=t2):
            second = tenant_key(k2)
        assert (first == second) == ((t1, k1) == (t2, k2))


@pytest.fixture
def client() -> Iterator[object]:
    require_service("redis")
    conn = redis.Redis(host="127.0.0.1", port=6379)
    prefix = f"fttest{uuid.uuid4().hex[:10]}"
    conn.ft_test_prefix = prefix  # type: ignore[attr-defined]
    yield conn
    keys = list(conn.scan_iter(f"{prefix}*"))
    if keys:
        conn.delete(*keys)
    conn.close()


@pytest.mark.services
class TestRedis:
    def test_tenants_do_not_see_each_others_entries(self, client: redis.Redis) -> None:
        cache = TenantCache(client, prefix=client.ft_test_prefix)  # type: ignore[attr-defined]
        with ft.context(tenant="a"):
            cache.set("profile:1", "alice", ex=60)
            assert cache.get("profile:1") == b"alice"
        with ft.context(tenant="b"):
            assert cache.get("profile:1") is None
            assert cache.exists("profile:1") == 0
            assert cache.incr("hits") == 1
        with pytest.raises(MissingTenantError):
            cache.get("profile:1")

    def test_asyncio_client(self, client: redis.Redis) -> None:
        prefix = client.ft_test_prefix  # type: ignore[attr-defined]

        async def main() -> tuple[object, object]:
            aclient = redis.asyncio.Redis(host="127.0.0.1", port=6379)
            cache = AsyncTenantCache(aclient, prefix=prefix)
            try:
                with ft.context(tenant="a"):
                    await cache.set("k", "va", ex=60)
                with ft.context(tenant="b"):
                    other = await cache.get("k")
                with ft.context(tenant="a"):
                    mine = await cache.get("k")
                return other, mine
            finally:
                await aclient.aclose()

        assert asyncio.run(main()) == (None, b"va")

    def test_assert_tenant_isolation_catches_a_cache_keyed_without_the_tenant(
        self, client: redis.Redis
    ) -> None:
        prefix = client.ft_test_prefix  # type: ignore[attr-defined]
        served: list[str] = []

        def naive_profile(run: TenantRun) -> None:
            key = f"{prefix}:profile:1"  # the bug: no tenant in the key
            cached = client.get(key)
            if cached is None:
                client.set(key, run.canary, ex=60)
            served.append(cached.decode() if cached else run.canary)

        def collect() -> list[str]:
            out = served[:]
            served.clear()
            return out

        with pytest.raises(AssertionError, match=r"LEAK: item .* contains the canary of tenant"):
            assert_tenant_isolation(naive_profile, collect=collect)

        cache = TenantCache(client, prefix=prefix)

        def scoped_profile(run: TenantRun) -> None:
            cached = cache.get("profile:1")
            if cached is None:
                cache.set("profile:1", run.canary, ex=60)
            served.append(cached.decode() if cached else run.canary)

        assert_tenant_isolation(scoped_profile, collect=collect)


@pytest.mark.services
class TestDatabaseMode:
    def test_reading_another_tenants_canary_row_fails(self, rls_db: RlsDb) -> None:
        recorder = RowRecorder()
        with TenantConnection.connect(rls_db.app_dsn, cursor_factory=recorder.cursor_class) as conn:

            def insert_canary(tenant: str, canary: str) -> None:
                conn.execute(
                    f"INSERT INTO {rls_db.table} (tenant, body) VALUES (%s, %s)", (tenant, canary)
                )
                conn.commit()

            def list_documents(run: TenantRun) -> None:
                conn.execute(f"SELECT body FROM {rls_db.table}").fetchall()
                conn.commit()

            def list_documents_with_a_bypass(run: TenantRun) -> None:
                with ft.cross_tenant(reason="a bug: a helper that crosses tenants"):
                    for _row in conn.execute(f"SELECT body FROM {rls_db.table}"):
                        pass
                    conn.commit()

            report = assert_db_isolation(
                list_documents, insert_canary=insert_canary, recorder=recorder
            )
            assert all(capture.items for capture in report.runs)
            with pytest.raises(AssertionError, match="LEAK: a query under 'tenant-a' read"):
                assert_db_isolation(
                    list_documents_with_a_bypass, insert_canary=insert_canary, recorder=recorder
                )

    def test_a_code_path_that_reads_nothing_proves_nothing(self, rls_db: RlsDb) -> None:
        recorder = RowRecorder()
        with TenantConnection.connect(rls_db.app_dsn, cursor_factory=recorder.cursor_class) as conn:

            def insert_canary(tenant: str, canary: str) -> None:
                conn.execute(
                    f"INSERT INTO {rls_db.table} (tenant, body) VALUES (%s, %s)", (tenant, canary)
                )
                conn.commit()

            with pytest.raises(AssertionError, match="proves nothing"):
                assert_db_isolation(
                    lambda run: None, insert_canary=insert_canary, recorder=recorder
                )


def test_missing_extras_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without redis / psycopg the error says which extra to install."""
    import sys

    from flowtrace.errors import MissingExtraError
    from flowtrace.integrations.dbcheck import check_database

    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.delitem(sys.modules, "flowtrace.integrations.redis")
    with pytest.raises(MissingExtraError, match=r"flowtrace-sdk\[redis\]"):
        import flowtrace.integrations.redis  # noqa: F401
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(MissingExtraError, match=r"flowtrace-sdk\[postgres\]"):
        check_database("host=127.0.0.1")
