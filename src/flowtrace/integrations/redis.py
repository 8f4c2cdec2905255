"""Tenant-scoped cache keys for Redis (redis-py, sync and asyncio).

A cache keyed without the tenant serves one tenant's data to another. :func:`tenant_key`
builds every key from the flow context's tenant and fails closed without one;
:class:`TenantCache` / :class:`AsyncTenantCache` wrap a client so the code cannot forget::

    cache = TenantCache(redis.Redis())
    with ft.context(tenant="acme"):
        cache.set("profile:42", data, ex=300)     # key "ft:acme:profile:42"

Keys are ``{prefix}:{tenant}:{key}`` with ``%`` and ``:`` in the tenant percent-encoded,
so no tenant can forge a key of another (``a:b`` + ``c`` never equals ``a`` + ``b:c``).

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from typing import Any

import flowtrace as ft
from flowtrace.errors import ConfigError, require_extra

require_extra("redis", "redis", "flowtrace.integrations.redis")

__all__ = ["AsyncTenantCache", "TenantCache", "tenant_key"]


def _encode(tenant: str) -> str:
    return tenant.replace("%", "%25").replace(":", "%3A")


def tenant_key(key: str, *, prefix: str = "ft") -> str:
    """``key`` scoped to the current tenant; :class:`~flowtrace.errors.MissingTenantError`
    outside one (also inside ``cross_tenant`` without a tenant: enter the tenant whose
    cache you mean).

    Example::

        import flowtrace as ft
        from flowtrace.integrations.redis import tenant_key

        with ft.context(tenant="acme"):
            assert tenant_key("profile:42") == "ft:acme:profile:42"
        with ft.context(tenant="a:b"):
            assert tenant_key("c", prefix="app") == "app:a%3Ab:c"   # no forged keys
        try:
            tenant_key("profile:42")
        except ft.MissingTenantError:
            pass
    """
    if not isinstance(key, str) or not key:
        raise ConfigError(f"a cache key must be a non-empty str, got {key!r}")
    return f"{prefix}:{_encode(ft.require_tenant())}:{key}"


class _Scoped:
    def __init__(self, client: Any, *, prefix: str = "ft") -> None:
        if not prefix or ":" in prefix:
            raise ConfigError(f"prefix must be non-empty and contain no ':', got {prefix!r}")
        self.client = client
        self.prefix = prefix

    def key(self, key: str) -> str:
        """The tenant-scoped key the client sees for ``key``."""
        return tenant_key(key, prefix=self.prefix)


class TenantCache(_Scoped):
    """A ``redis.Redis`` whose keys are always scoped to the current tenant.

    Example::

        import redis

        import flowtrace as ft
        from flowtrace.integrations.redis import TenantCache

        cache = TenantCache(redis.Redis(host="cache.internal"))
        with ft.context(tenant="acme"):
            cache.set("profile:42", b"{}", ex=300)   # key "ft:acme:profile:42"
            assert cache.get("profile:42") == b"{}"
    """

    def get(self, key: str) -> Any:
        return self.client.get(self.key(key))

    def set(self, key: str, value: Any, **options: Any) -> Any:
        return self.client.set(self.key(key), value, **options)

    def delete(self, *keys: str) -> int:
        return int(self.client.delete(*[self.key(k) for k in keys]))

    def exists(self, *keys: str) -> int:
        return int(self.client.exists(*[self.key(k) for k in keys]))

    def incr(self, key: str, amount: int = 1) -> int:
        return int(self.client.incr(self.key(key), amount))

    def expire(self, key: str, seconds: int) -> bool:
        return bool(self.client.expire(self.key(key), seconds))


class AsyncTenantCache(_Scoped):
    """A ``redis.asyncio.Redis`` whose keys are always scoped to the current tenant.

    Example::

        import asyncio

        import redis.asyncio

        import flowtrace as ft
        from flowtrace.integrations.redis import AsyncTenantCache

        async def main():
            cache = AsyncTenantCache(redis.asyncio.Redis(host="cache.internal"))
            with ft.context(tenant="acme"):
                await cache.set("profile:42", b"{}", ex=300)
                return await cache.get("profile:42")

        asyncio.run(main())
    """

    async def get(self, key: str) -> Any:
        return await self.client.get(self.key(key))

    async def set(self, key: str, value: Any, **options: Any) -> Any:
        return await self.client.set(self.key(key), value, **options)

    async def delete(self, *keys: str) -> int:
        return int(await self.client.delete(*[self.key(k) for k in keys]))

    async def exists(self, *keys: str) -> int:
        return int(await self.client.exists(*[self.key(k) for k in keys]))

    async def incr(self, key: str, amount: int = 1) -> int:
        return int(await self.client.incr(self.key(key), amount))

    async def expire(self, key: str, seconds: int) -> bool:
        return bool(await self.client.expire(self.key(key), seconds))
