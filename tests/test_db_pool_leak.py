"""The pool leak: a session-level SET survives pool return; flowtrace's hook does not.

Random tenants (and some requests with no tenant at all) share a pool of 4 connections,
from 32 threads and from 1,000 asyncio tasks. Every row read is checked against the
tenant of the request that read it. With the hand-written ``SET app.tenant`` a request
without a tenant reads the rows of whichever tenant used the connection before (the
leak, reproduced); with flowtrace that request is refused before reaching the server and
no request ever reads a row of another tenant.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest

import flowtrace as ft
from flowtrace.errors import MissingTenantError
from tests import _pg
from tests._pg import ROWS_PER_TENANT, TENANTS, RlsDb

psycopg = pytest.importorskip("psycopg")
psycopg_pool = pytest.importorskip("psycopg_pool")
sqlalchemy = pytest.importorskip("sqlalchemy")

from psycopg import sql  # noqa: E402

from flowtrace.integrations.psycopg import AsyncTenantConnection, TenantConnection  # noqa: E402
from flowtrace.integrations.sqlalchemy import tenant_async_engine, tenant_engine  # noqa: E402

pytestmark = pytest.mark.services
rls_db = _pg.rls_db

THREADS = 32
PER_THREAD = 40
TASKS = 1000
POOL = 4
ANONYMOUS = 0.25  # share of requests that carry no tenant

Request = str | None


def requests(n: int, seed: int) -> list[Request]:
    rng = random.Random(seed)
    return [None if rng.random() < ANONYMOUS else rng.choice(TENANTS) for _ in range(n)]


class Tally:
    """Rows read, by whether they belonged to the requesting tenant."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def rows(self, tenant: Request, read: list[str]) -> None:
        with self._lock:
            self.counts["foreign"] += sum(1 for t in read if t != tenant)
            self.counts["own"] += sum(1 for t in read if t == tenant)
            self.counts["requests"] += 1

    def refused(self) -> None:
        with self._lock:
            self.counts["refused"] += 1


def set_stmt(tenant: str) -> sql.Composed:
    return sql.SQL("SET app.tenant = {}").format(sql.Literal(tenant))


def run_threads(work: Callable[[Request], None]) -> None:
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            for tenant in requests(PER_THREAD, index):
                work(tenant)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


async def run_tasks(work: Callable[[Request], Awaitable[None]]) -> None:
    await asyncio.gather(*(work(t) for t in requests(TASKS, 99)))


def expect_leak(tally: Tally) -> None:
    print("plain SET:", dict(tally.counts))
    assert tally.counts["foreign"] > 0, tally.counts


def expect_isolation(tally: Tally, total: int) -> None:
    print("flowtrace:", dict(tally.counts))
    anonymous = tally.counts["refused"]
    assert tally.counts["foreign"] == 0, tally.counts
    assert anonymous > 0
    assert tally.counts["requests"] == total - anonymous
    assert tally.counts["own"] == ROWS_PER_TENANT * (total - anonymous)


class TestPsycopg:
    def test_threads_plain_set_leaks(self, rls_db: RlsDb) -> None:
        tally = Tally()
        with psycopg_pool.ConnectionPool(rls_db.app_dsn, min_size=POOL, max_size=POOL) as pool:

            def work(tenant: Request) -> None:
                with pool.connection() as conn:
                    if tenant is not None:
                        conn.execute(set_stmt(tenant))
                    rows = conn.execute(f"SELECT tenant FROM {rls_db.table}").fetchall()
                    tally.rows(tenant, [r[0] for r in rows])

            run_threads(work)
        expect_leak(tally)

    def test_threads_flowtrace_hook_isolates(self, rls_db: RlsDb) -> None:
        tally = Tally()
        with psycopg_pool.ConnectionPool(
            rls_db.app_dsn, min_size=POOL, max_size=POOL, connection_class=TenantConnection
        ) as pool:

            def work(tenant: Request) -> None:
                with pool.connection() as conn:
                    try:
                        with ft.context(tenant=tenant):
                            rows = conn.execute(f"SELECT tenant FROM {rls_db.table}").fetchall()
                    except MissingTenantError:
                        tally.refused()
                        return
                    tally.rows(tenant, [r[0] for r in rows])

            run_threads(work)
        expect_isolation(tally, THREADS * PER_THREAD)

    def test_asyncio_plain_set_leaks(self, rls_db: RlsDb) -> None:
        tally = Tally()

        async def main() -> None:
            async with psycopg_pool.AsyncConnectionPool(
                rls_db.app_dsn, min_size=POOL, max_size=POOL
            ) as pool:

                async def work(tenant: Request) -> None:
                    async with pool.connection() as conn:
                        if tenant is not None:
                            await conn.execute(set_stmt(tenant))
                        cur = await conn.execute(f"SELECT tenant FROM {rls_db.table}")
                        tally.rows(tenant, [r[0] for r in await cur.fetchall()])

                await run_tasks(work)

        asyncio.run(main())
        expect_leak(tally)

    def test_asyncio_flowtrace_hook_isolates(self, rls_db: RlsDb) -> None:
        tally = Tally()

        async def main() -> None:
            async with psycopg_pool.AsyncConnectionPool(
                rls_db.app_dsn,
                min_size=POOL,
                max_size=POOL,
                connection_class=AsyncTenantConnection,
            ) as pool:

                async def work(tenant: Request) -> None:
                    async with pool.connection() as conn:
                        try:
                            with ft.context(tenant=tenant):
                                cur = await conn.execute(f"SELECT tenant FROM {rls_db.table}")
                                rows = await cur.fetchall()
                        except MissingTenantError:
                            tally.refused()
                            return
                        tally.rows(tenant, [r[0] for r in rows])

                await run_tasks(work)

        asyncio.run(main())
        expect_isolation(tally, TASKS)


def sa_url(db: RlsDb) -> str:
    return f"postgresql+psycopg://{db.role}@127.0.0.1:5432/test"


class TestSqlAlchemy:
    def test_threads_plain_set_leaks(self, rls_db: RlsDb) -> None:
        tally = Tally()
        engine = sqlalchemy.create_engine(sa_url(rls_db), pool_size=POOL, max_overflow=0)
        query = sqlalchemy.text(f"SELECT tenant FROM {rls_db.table}")

        def work(tenant: Request) -> None:
            with engine.begin() as conn:
                if tenant is not None:
                    conn.exec_driver_sql(set_stmt(tenant).as_string())
                tally.rows(tenant, list(conn.scalars(query)))

        try:
            run_threads(work)
        finally:
            engine.dispose()
        expect_leak(tally)

    def test_threads_flowtrace_hook_isolates(self, rls_db: RlsDb) -> None:
        """Core and ORM sessions alternate on one engine."""
        from sqlalchemy.orm import Session

        tally = Tally()
        engine = tenant_engine(sa_url(rls_db), pool_size=POOL, max_overflow=0)
        query = sqlalchemy.text(f"SELECT tenant FROM {rls_db.table}")
        turn = iter(range(10**9))

        def work(tenant: Request) -> None:
            try:
                with ft.context(tenant=tenant):
                    if next(turn) % 2:
                        with Session(engine) as session:
                            rows = list(session.scalars(query))
                    else:
                        with engine.begin() as conn:
                            rows = list(conn.scalars(query))
            except MissingTenantError:
                tally.refused()
                return
            tally.rows(tenant, rows)

        try:
            with ft.context(tenant="t0"), engine.connect():
                pass  # the dialect's first-connect queries run in a tenant
            run_threads(work)
        finally:
            engine.dispose()
        expect_isolation(tally, THREADS * PER_THREAD)

    def test_asyncio_plain_set_leaks(self, rls_db: RlsDb) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        tally = Tally()
        query = sqlalchemy.text(f"SELECT tenant FROM {rls_db.table}")

        async def main() -> None:
            engine = create_async_engine(sa_url(rls_db), pool_size=POOL, max_overflow=0)

            async def work(tenant: Request) -> None:
                async with engine.begin() as conn:
                    if tenant is not None:
                        await conn.exec_driver_sql(set_stmt(tenant).as_string())
                    tally.rows(tenant, list(await conn.scalars(query)))

            try:
                await run_tasks(work)
            finally:
                await engine.dispose()

        asyncio.run(main())
        expect_leak(tally)

    def test_asyncio_flowtrace_hook_isolates(self, rls_db: RlsDb) -> None:
        from sqlalchemy.ext.asyncio import AsyncSession

        tally = Tally()
        query = sqlalchemy.text(f"SELECT tenant FROM {rls_db.table}")

        async def main() -> None:
            engine = tenant_async_engine(sa_url(rls_db), pool_size=POOL, max_overflow=0)

            async def work(tenant: Request) -> None:
                try:
                    with ft.context(tenant=tenant):
                        async with AsyncSession(engine) as session:
                            rows = list(await session.scalars(query))
                except MissingTenantError:
                    tally.refused()
                    return
                tally.rows(tenant, rows)

            try:
                with ft.context(tenant="t0"):
                    async with engine.connect():
                        pass
                await run_tasks(work)
            finally:
                await engine.dispose()

        asyncio.run(main())
        expect_isolation(tally, TASKS)
