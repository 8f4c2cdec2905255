"""SQLAlchemy 2 (Core, ORM, asyncio): the same guarantees as the psycopg connection."""

from __future__ import annotations

import asyncio
import sys

import pytest

import flowtrace as ft
from flowtrace.errors import ConfigError, MissingExtraError, MissingTenantError, TenantScopeError
from tests import _pg
from tests._pg import ROWS_PER_TENANT, RlsDb

sqlalchemy = pytest.importorskip("sqlalchemy")
pytest.importorskip("psycopg")

from sqlalchemy import text  # noqa: E402
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column  # noqa: E402

from flowtrace.integrations.sqlalchemy import tenant_async_engine, tenant_engine  # noqa: E402

pytestmark = pytest.mark.services
rls_db = _pg.rls_db


def url(db: RlsDb) -> str:
    return f"postgresql+psycopg://{db.role}@127.0.0.1:5432/test"


class Base(DeclarativeBase):
    pass


def doc_model(db: RlsDb) -> type[Base]:
    class Doc(Base):
        __tablename__ = "docs"
        __table_args__ = {"schema": db.schema}  # noqa: RUF012
        id: Mapped[int] = mapped_column(primary_key=True)
        tenant: Mapped[str]
        body: Mapped[str]

    return Doc


def test_core_orm_and_savepoints(rls_db: RlsDb) -> None:
    """ORM reads and writes only the tenant's rows; a rolled-back savepoint keeps the tenant."""
    Doc = doc_model(rls_db)
    engine = tenant_engine(url(rls_db), pool_size=1, max_overflow=0)
    try:
        with ft.context(tenant="t3"), Session(engine) as session:
            assert {d.tenant for d in session.query(Doc)} == {"t3"}
            nested = session.begin_nested()
            session.add(Doc(tenant="t3", body="draft"))
            session.flush()
            nested.rollback()
            assert len(session.query(Doc).all()) == ROWS_PER_TENANT
            session.add(Doc(tenant="t4", body="smuggled"))
            with pytest.raises(sqlalchemy.exc.ProgrammingError, match="row-level security"):
                session.flush()
            session.rollback()
        with ft.context(tenant="t5"), engine.begin() as conn:
            assert set(conn.scalars(text(f"SELECT tenant FROM {rls_db.table}"))) == {"t5"}
    finally:
        engine.dispose()


def test_outside_a_tenant_and_autocommit_fail_closed(rls_db: RlsDb) -> None:
    """No tenant: MissingTenantError (even for the first connect); AUTOCOMMIT: TenantScopeError."""
    engine = tenant_engine(url(rls_db), pool_size=1, max_overflow=0)
    try:
        with pytest.raises(MissingTenantError), engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        with (
            ft.context(tenant="t1"),
            engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
            pytest.raises(TenantScopeError),
        ):
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def test_async_session(rls_db: RlsDb) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession

    async def main() -> tuple[set[str], bool]:
        engine = tenant_async_engine(url(rls_db), pool_size=1, max_overflow=0)
        try:
            with ft.context(tenant="t6"):
                async with AsyncSession(engine) as session:
                    seen = set(await session.scalars(text(f"SELECT tenant FROM {rls_db.table}")))
            try:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            except MissingTenantError:
                return seen, True
            return seen, False
        finally:
            await engine.dispose()

    assert asyncio.run(main()) == ({"t6"}, True)


def test_pool_pre_ping_works_and_only_the_ping_is_exempt(rls_db: RlsDb) -> None:
    """pre-ping's SELECT 1 runs in autocommit; application statements there are still refused."""
    engine = tenant_engine(url(rls_db), pool_size=1, max_overflow=0, pool_pre_ping=True)
    try:
        with ft.context(tenant="t2"):
            for _ in range(3):  # every checkout after the first pings
                with engine.connect() as conn:
                    assert set(conn.scalars(text(f"SELECT tenant FROM {rls_db.table}"))) == {"t2"}
            with (
                engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
                pytest.raises(TenantScopeError),
            ):
                conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def test_async_pool_pre_ping(rls_db: RlsDb) -> None:
    async def main() -> list[set[str]]:
        engine = tenant_async_engine(url(rls_db), pool_size=1, pool_pre_ping=True)
        seen = []
        try:
            with ft.context(tenant="t7"):
                for _ in range(3):
                    async with engine.connect() as conn:
                        query = text(f"SELECT tenant FROM {rls_db.table}")
                        seen.append(set(await conn.scalars(query)))
        finally:
            await engine.dispose()
        return seen

    assert asyncio.run(main()) == [{"t7"}] * 3


def test_only_the_psycopg_dialect_is_accepted() -> None:
    with pytest.raises(ConfigError, match="postgresql\\+psycopg"):
        tenant_engine("sqlite://")


def test_missing_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)
    monkeypatch.delitem(sys.modules, "flowtrace.integrations.sqlalchemy")
    with pytest.raises(MissingExtraError, match=r"flowtrace-sdk\[sqlalchemy\]"):
        import flowtrace.integrations.sqlalchemy  # noqa: F401
