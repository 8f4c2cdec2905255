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

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import flowtrace as ft
from flowtrace.errors import ConfigError, TenantRoutingError, require_extra

from .tenancy import TenancyPolicy

require_extra("psycopg_pool", "postgres", "flowtrace.integrations.routing")

import psycopg_pool  # noqa: E402

from .psycopg import TenantConnection  # noqa: E402

__all__ = ["TenantRouter"]


class TenantRouter:
    """Tenant -> DSN -> a bounded pool of tenant connections (thread-safe)."""

    def __init__(
        self,
        dsn_for: Callable[[str], str],
        *,
        max_pools: int = 32,
        max_size: int = 4,
        policy: TenancyPolicy | None = None,
        pool_options: dict[str, Any] | None = None,
    ) -> None:
        if max_pools < 1 or max_size < 1:
            raise ConfigError("max_pools and max_size must be at least 1")
        self._dsn_for = dsn_for
        self._max_pools = max_pools
        self._max_size = max_size
        self._cls = TenantConnection.with_policy(policy or TenancyPolicy())
        self._options = dict(pool_options or {})
        self._pools: OrderedDict[str, psycopg_pool.ConnectionPool[Any]] = OrderedDict()
        self._busy: dict[str, int] = {}
        self._lock = threading.Lock()

    def pools(self) -> list[str]:
        """The DSNs with an open pool, least recently used first."""
        with self._lock:
            return list(self._pools)

    def _acquire(self, dsn: str) -> psycopg_pool.ConnectionPool[Any]:
        closing: list[psycopg_pool.ConnectionPool[Any]] = []
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
                    closing.append(self._pools.pop(idle))
                    self._busy.pop(idle, None)
                pool = psycopg_pool.ConnectionPool(
                    dsn,
                    connection_class=self._cls,
                    min_size=0,
                    max_size=self._max_size,
                    open=True,
                    **self._options,
                )
                self._pools[dsn] = pool
            self._pools.move_to_end(dsn)
            self._busy[dsn] = self._busy.get(dsn, 0) + 1
        for old in closing:
            old.close()
        return pool

    def _release(self, dsn: str) -> None:
        with self._lock:
            if dsn in self._busy:
                self._busy[dsn] -= 1

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[Any]:
        """A connection to the current tenant's database (returned to its pool after)."""
        dsn = self._dsn_for(ft.require_tenant())
        pool = self._acquire(dsn)
        try:
            with pool.connection(timeout=timeout) as conn:
                yield conn
        finally:
            self._release(dsn)

    def close(self) -> None:
        """Close every pool."""
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
            self._busy.clear()
        for pool in pools:
            pool.close()

    def __enter__(self) -> TenantRouter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
