"""Row-level security driven by the flow context, for SQLAlchemy 2 (Core, ORM, asyncio).

The engines built here connect through :class:`~flowtrace.integrations.psycopg.
TenantConnection` (the ``postgresql+psycopg`` dialect), so every transaction SQLAlchemy
begins -- Core ``engine.begin()``, ORM ``Session``, ``begin_nested()`` savepoints,
``AsyncSession`` -- starts with the tenancy settings in the same message as ``BEGIN``,
and fails closed with :class:`~flowtrace.errors.MissingTenantError` outside a tenant::

    engine = tenant_engine("postgresql+psycopg://app@db/app", pool_size=4)
    with ft.context(tenant="acme"), Session(engine) as session:
        session.scalars(select(Invoice)).all()      # only acme's rows, by RLS

The first connection initialises the dialect with a few queries of its own; open it
inside a tenant or ``flowtrace.cross_tenant(reason="warm-up")``. The ``AUTOCOMMIT``
isolation level has no transaction to carry the tenant and raises
:class:`~flowtrace.errors.TenantScopeError` (``pool_pre_ping``'s ``SELECT 1`` is let
through: it reads no data).

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from typing import Any

from flowtrace.errors import ConfigError, require_extra

from .tenancy import TenancyPolicy

require_extra("sqlalchemy", "sqlalchemy", "flowtrace.integrations.sqlalchemy")

import sqlalchemy  # noqa: E402
from sqlalchemy.engine import URL, Engine, make_url  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine  # noqa: E402

from .psycopg import AsyncTenantConnection, TenantConnection, _pinging  # noqa: E402

__all__ = ["tenant_async_engine", "tenant_engine"]


def _conninfo(url: str | URL) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql" or parsed.get_driver_name() != "psycopg":
        raise ConfigError(
            f"tenant engines need the 'postgresql+psycopg' dialect, got {parsed.drivername!r}: "
            "use a URL such as 'postgresql+psycopg://user@host/db'"
        )
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def tenant_engine(url: str | URL, *, policy: TenancyPolicy | None = None, **kwargs: Any) -> Engine:
    """``create_engine(url, **kwargs)`` whose connections carry the flow context.

    Example::

        from sqlalchemy import text

        import flowtrace as ft
        from flowtrace.integrations.sqlalchemy import tenant_engine

        engine = tenant_engine("postgresql+psycopg://app@db.internal/app", pool_size=4)
        with ft.context(tenant="acme"), engine.begin() as conn:
            conn.execute(text("SELECT id FROM invoices")).all()     # acme's rows, by RLS
    """
    conninfo = _conninfo(url)
    cls = TenantConnection.with_policy(policy or TenancyPolicy())

    def connect() -> Any:
        return cls.connect(conninfo)

    engine = sqlalchemy.create_engine(url, creator=connect, **kwargs)
    _allow_pre_ping(engine.dialect)
    return engine


def tenant_async_engine(
    url: str | URL, *, policy: TenancyPolicy | None = None, **kwargs: Any
) -> AsyncEngine:
    """``create_async_engine(url, **kwargs)`` whose connections carry the flow context.

    Example::

        import asyncio

        from sqlalchemy import text

        import flowtrace as ft
        from flowtrace.integrations.sqlalchemy import tenant_async_engine

        async def main():
            engine = tenant_async_engine("postgresql+psycopg://app@db.internal/app")
            with ft.context(tenant="acme"):
                async with engine.begin() as conn:
                    await conn.execute(text("SELECT id FROM invoices"))
            await engine.dispose()

        asyncio.run(main())
    """
    conninfo = _conninfo(url)
    cls = AsyncTenantConnection.with_policy(policy or TenancyPolicy())

    async def connect() -> Any:
        return await cls.connect(conninfo)

    engine = create_async_engine(url, async_creator=connect, **kwargs)
    _allow_pre_ping(engine.sync_engine.dialect)
    return engine


def _allow_pre_ping(dialect: Any) -> None:
    # pool_pre_ping runs SELECT 1 in autocommit (no transaction to carry a tenant, and
    # none needed: it reads no data), so the ping alone may pass the hook.
    ping = dialect.do_ping

    def do_ping(dbapi_connection: Any) -> Any:
        with _pinging(getattr(dbapi_connection, "driver_connection", dbapi_connection)):
            return ping(dbapi_connection)

    dialect.do_ping = do_ping
