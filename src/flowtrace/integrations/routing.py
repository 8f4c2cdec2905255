"""Database per tenant: route each tenant to its own DSN through a bounded set of pools.

::

    router = TenantRouter(lambda tenant: f"host=db dbname=tenant_{tenant}", max_pools=50)
    with ft.context(tenant="acme"), router.connection() as conn:
        conn.execute("SELECT * FROM invoices")     # acme's database, acme's settings

The tenant comes from the flow context (:class:`~flowtrace.errors.MissingTenantError`
outside one). Each DSN gets one :class:`psycopg_pool.ConnectionPool` of at most
``max_size`` connections whose connections are
:class:`~flowtrace.integrations.psycopg.TenantConnection`; at most ``max_pools`` pools
are open, the least recently used idle one is closed to make room, and when every pool
is busy :class:`~flowtrace.errors.TenantRoutingError` is raised rather than exceeding
the bound (so ``max_pools * max_size`` bounds the connections this process opens).
:class:`AsyncTenantRouter` does the same for asyncio.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import flowtrace as ft
from flowtrace.errors import ConfigError, TenantRoutingError, require_extra

from .tenancy import TenancyPolicy

require_extra("psycopg_pool", "postgres", "flowtrace.integrations.routing")

import psycopg_pool  # noqa: E402

from .psycopg import AsyncTenantConnection, TenantConnection  # noqa: E402

__all__ = ["AsyncTenantRouter", "TenantRouter"]


class _Pools:
    """The bookkeeping both routers share: DSN -> pool, LRU order, use counts, the bound.

    Nothing in it awaits, so one threading lock serves threads and asyncio tasks alike.
    """

    def __init__(
        self,
        dsn_for: Callable[[str], str],
        make_pool: Callable[[str], Any],
        max_pools: int,
    ) -> None:
        if max_pools < 1:
            raise ConfigError("max_pools must be at least 1")
        self.dsn_for = dsn_for
        self._make_pool = make_pool
        self._max_pools = max_pools
        self._pools: OrderedDict[str, Any] = OrderedDict()
        self._busy: dict[str, int] = {}
        self._lock = threading.Lock()

    def dsns(self) -> list[str]:
        with self._lock:
            return list(self._pools)

    def acquire(self, dsn: str) -> tuple[Any, list[Any]]:
        """The pool for ``dsn`` (counted as busy) and the evicted pools the caller closes."""
        evicted: list[Any] = []
        with self._lock:
            pool = self._pools.get(dsn)
            if pool is None:
                while len(self._pools) >= self._max_pools:
                    idle = next((d for d in self._pools if not self._busy.get(d)), None)
                    if idle is None:
                        raise TenantRoutingError(
                            f"all {self._max_pools} tenant pools are in use; raise max_pools "
                            "or reduce the number of tenants served at the same time"
                        )
                    evicted.append(self._pools.pop(idle))
                    self._busy.pop(idle, None)
                pool = self._make_pool(dsn)
                self._pools[dsn] = pool
            self._pools.move_to_end(dsn)
            self._busy[dsn] = self._busy.get(dsn, 0) + 1
        return pool, evicted

    def release(self, dsn: str) -> None:
        with self._lock:
            if dsn in self._busy:
                self._busy[dsn] -= 1

    def drain(self) -> list[Any]:
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
            self._busy.clear()
        return pools


def _check_size(max_size: int) -> None:
    if max_size < 1:
        raise ConfigError("max_size must be at least 1")


class TenantRouter:
    """Tenant -> DSN -> a bounded pool of tenant connections (thread-safe).

    Example::

        import flowtrace as ft
        from flowtrace.integrations.routing import TenantRouter

        router = TenantRouter(lambda tenant: f"host=db.internal dbname=tenant_{tenant}",
                              max_pools=50, max_size=4)
        with ft.context(tenant="acme"), router.connection() as conn:
            conn.execute("SELECT id FROM invoices")
        router.close()
    """

    def __init__(
        self,
        dsn_for: Callable[[str], str],
        *,
        max_pools: int = 32,
        max_size: int = 4,
        policy: TenancyPolicy | None = None,
        pool_options: dict[str, Any] | None = None,
    ) -> None:
        _check_size(max_size)
        cls = TenantConnection.with_policy(policy or TenancyPolicy())
        options = dict(pool_options or {})

        def make_pool(dsn: str) -> psycopg_pool.ConnectionPool[Any]:
            return psycopg_pool.ConnectionPool(
                dsn, connection_class=cls, min_size=0, max_size=max_size, open=True, **options
            )

        self._pools = _Pools(dsn_for, make_pool, max_pools)

    def pools(self) -> list[str]:
        """The DSNs with an open pool, least recently used first."""
        return self._pools.dsns()

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[Any]:
        """A connection to the current tenant's database (returned to its pool after)."""
        dsn = self._pools.dsn_for(ft.require_tenant())
        pool, evicted = self._pools.acquire(dsn)
        try:
            for old in evicted:
                old.close()
            with pool.connection(timeout=timeout) as conn:
                yield conn
        finally:
            self._pools.release(dsn)

    def close(self) -> None:
        """Close every pool."""
        for pool in self._pools.drain():
            pool.close()

    def __enter__(self) -> TenantRouter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncTenantRouter:
    """:class:`TenantRouter` for asyncio: pools of
    :class:`~flowtrace.integrations.psycopg.AsyncTenantConnection`.

    Example::

        import asyncio

        import flowtrace as ft
        from flowtrace.integrations.routing import AsyncTenantRouter

        async def main():
            router = AsyncTenantRouter(lambda tenant: f"host=db.internal dbname=tenant_{tenant}")
            with ft.context(tenant="acme"):
                async with router.connection() as conn:
                    await conn.execute("SELECT id FROM invoices")
            await router.close()

        asyncio.run(main())
    """

    def __init__(
        self,
        dsn_for: Callable[[str], str],
        *,
        max_pools: int = 32,
        max_size: int = 4,
        policy: TenancyPolicy | None = None,
        pool_options: dict[str, Any] | None = None,
    ) -> None:
        _check_size(max_size)
        cls = AsyncTenantConnection.with_policy(policy or TenancyPolicy())
        options = dict(pool_options or {})

        def make_pool(dsn: str) -> psycopg_pool.AsyncConnectionPool[Any]:
            return psycopg_pool.AsyncConnectionPool(
                dsn, connection_class=cls, min_size=0, max_size=max_size, open=False, **options
            )

        self._pools = _Pools(dsn_for, make_pool, max_pools)

    def pools(self) -> list[str]:
        """The DSNs with an open pool, least recently used first."""
        return self._pools.dsns()

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[Any]:
        """A connection to the current tenant's database (returned to its pool after)."""
        dsn = self._pools.dsn_for(ft.require_tenant())
        pool, evicted = self._pools.acquire(dsn)
        try:
            for old in evicted:
                await old.close()
            await pool.open()  # idempotent: every task may call it
            async with pool.connection(timeout=timeout) as conn:
                yield conn
        finally:
            self._pools.release(dsn)

    async def close(self) -> None:
        """Close every pool."""
        for pool in self._pools.drain():
            await pool.close()

    async def __aenter__(self) -> AsyncTenantRouter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
