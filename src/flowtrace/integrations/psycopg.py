"""Row-level security driven by the flow context, for psycopg 3 (sync and async).

:class:`TenantConnection` and :class:`AsyncTenantConnection` are psycopg connections
whose every transaction starts with the tenancy settings of the current flow context::

    pool = ConnectionPool(dsn, connection_class=TenantConnection)
    with ft.context(tenant="acme"), pool.connection() as conn:
        conn.execute("SELECT * FROM invoices")   # BEGIN; SET LOCAL app.tenant = 'acme'; ...
                                                 # then the query

The settings ride in the same simple-protocol message as psycopg's own ``BEGIN`` (one
round trip, as without flowtrace). ``SET LOCAL`` (the statement form of
``set_config(..., true)``) is transaction-local: nothing survives a commit, a rollback or
the connection's return to a pool. Outside a tenant the ``BEGIN`` is never sent:
:class:`~flowtrace.errors.MissingTenantError`.

Autocommit mode has no ``BEGIN`` to ride on: a statement outside ``conn.transaction()``
on an autocommit connection raises :class:`~flowtrace.errors.TenantScopeError` (a
setting cannot be scoped to an implicit transaction without a second round trip);
``with conn.transaction():`` works and carries the settings. Liveness checks are the
exception: the empty query psycopg_pool's ``check_connection`` sends is let through
(it reads nothing), and so is SQLAlchemy's ``pool_pre_ping`` in the engines of
:mod:`flowtrace.integrations.sqlalchemy`.

psycopg is used through ``_start_query``/``_exec_command``, the two places where it
starts transactions (stable since psycopg 3.0; the tests pin the behaviour).

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from flowtrace.errors import TenantScopeError, require_extra

from .tenancy import TenancyPolicy

require_extra("psycopg", "postgres", "flowtrace.integrations.psycopg")

import psycopg  # noqa: E402
from psycopg import generators, pq  # noqa: E402

if TYPE_CHECKING:
    from psycopg.abc import PQGen

__all__ = ["AsyncTenantConnection", "TenantConnection", "settings_statements"]

_IDLE = pq.TransactionStatus.IDLE
_FATAL = pq.ExecStatus.FATAL_ERROR
_CACHE_MAX = 1024


def _literal(value: str) -> bytes:
    # An escape string (E'...') means the same whatever standard_conforming_strings
    # says: backslashes and quotes doubled. NUL cannot reach here (the flow context
    # refuses control characters).
    escaped = value.replace("\\", "\\\\").replace("'", "''")
    return b"E'" + escaped.encode("utf-8") + b"'"


def _name(name: str) -> bytes:
    # Validated lower-case "prefix.name" (or search_path); quoted so that keywords
    # ("user") are fine as parts.
    return b".".join(b'"' + part.encode("ascii") + b'"' for part in name.split("."))


def settings_statements(pairs: tuple[tuple[str, str], ...]) -> tuple[bytes, ...]:
    """``SET LOCAL "prefix"."name" = E'value'`` for each pair.

    ``SET LOCAL`` is the statement form of ``set_config(name, value, true)`` (the same
    transaction-local effect), measured several times cheaper on the server. Names were
    validated by :class:`~flowtrace.integrations.tenancy.TenancyPolicy`; values are
    quoted literals.

    Example::

        from flowtrace.integrations.psycopg import settings_statements

        (statement,) = settings_statements((("app.tenant", "o'brien"),))
        assert statement.startswith(b'SET LOCAL "app"."tenant" = E')
        assert statement.endswith(b"'o''brien'")     # the quote doubled: one literal
    """
    return tuple(
        b"SET LOCAL " + _name(name) + b" = " + _value(name, value) for name, value in pairs
    )


def _value(name: str, value: str) -> bytes:
    if name == "search_path":
        # SET takes each schema as its own literal (one literal is one schema name).
        return b", ".join(_literal(schema) for schema in value.split(","))
    return _literal(value)


class _TenantHook:
    """The hook shared by the sync and async connection classes."""

    tenancy: ClassVar[TenancyPolicy] = TenancyPolicy()
    _ft_pinging: bool = False
    _sql_cache: ClassVar[dict[tuple[tuple[str, str], ...], tuple[bytes, ...]]] = {}

    # Provided by psycopg's BaseConnection.
    pgconn: Any
    _autocommit: bool
    _pipeline: Any

    @classmethod
    def with_policy(cls, policy: TenancyPolicy) -> Any:
        """A subclass using ``policy`` (pass it as a pool's ``connection_class``)."""
        return type(cls.__name__, (cls,), {"tenancy": policy, "_sql_cache": {}})

    def _ft_statements(self) -> tuple[bytes, ...]:
        pairs = self.tenancy.settings()
        cache = self._sql_cache
        sql = cache.get(pairs)
        if sql is None:
            sql = settings_statements(pairs)
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            cache[pairs] = sql
        return sql

    def _start_query(self) -> PQGen[None]:
        if self._autocommit and self.pgconn.transaction_status == _IDLE and not self._ft_pinging:
            raise TenantScopeError(
                "a statement on an autocommit connection runs in an implicit transaction "
                "that a transaction-local tenant setting cannot reach; wrap it in "
                "'with conn.transaction():' or turn autocommit off"
            )
        return super()._start_query()  # type: ignore[misc,no-any-return]

    def _exec_command(self, command: Any, result_format: Any = pq.Format.TEXT) -> Any:
        if (
            isinstance(command, bytes)
            and command.startswith(b"BEGIN")
            and self.pgconn.transaction_status == _IDLE
        ):
            statements = self._ft_statements()  # raises before anything is sent
            if self._pipeline:
                return self._ft_begin_pipeline((command, *statements), result_format)
            return self._ft_begin(b"; ".join((command, *statements)))
        return super()._exec_command(command, result_format)  # type: ignore[misc]

    def _ft_begin(self, command: bytes) -> PQGen[None]:
        # BEGIN and the settings in one simple-protocol message: one round trip.
        self.pgconn.send_query(command)
        results = yield from generators.execute(self.pgconn)
        for result in results:
            if result.status == _FATAL:
                raise psycopg.errors.error_from_result(result, encoding=self.pgconn._encoding)

    def _ft_begin_pipeline(
        self, commands: tuple[bytes, ...], result_format: Any
    ) -> Generator[Any, Any, None]:
        # Pipeline mode speaks the extended protocol (one statement per command): queue
        # BEGIN and each setting; they leave with the next sync, no extra round trip.
        for command in commands:
            yield from super()._exec_command(command, result_format)  # type: ignore[misc]


@contextmanager
def _pinging(conn: Any) -> Iterator[None]:
    # A liveness check (empty query or SELECT 1, in autocommit) reads no data; the pool
    # holds the connection while it runs, so no application statement can slip in.
    if not isinstance(conn, _TenantHook):
        yield
        return
    conn._ft_pinging = True
    try:
        yield
    finally:
        conn._ft_pinging = False


class TenantConnection(_TenantHook, psycopg.Connection[Any]):
    """A :class:`psycopg.Connection` whose transactions carry the flow context.

    Example::

        import flowtrace as ft
        from flowtrace.integrations.psycopg import TenantConnection

        with TenantConnection.connect("host=db.internal dbname=app user=app") as conn:
            with ft.context(tenant="acme"):
                rows = conn.execute("SELECT id FROM invoices").fetchall()  # acme's, by RLS
                conn.commit()
    """

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if query == "" and params is None:  # a liveness check: no statement, no data
            with _pinging(self):
                return super().execute(query, params, **kwargs)
        return super().execute(query, params, **kwargs)


class AsyncTenantConnection(_TenantHook, psycopg.AsyncConnection[Any]):
    """A :class:`psycopg.AsyncConnection` whose transactions carry the flow context.

    Example::

        import asyncio

        import flowtrace as ft
        from flowtrace.integrations.psycopg import AsyncTenantConnection

        async def list_invoices():
            conn = await AsyncTenantConnection.connect("host=db.internal dbname=app user=app")
            async with conn:
                with ft.context(tenant="acme"):
                    cursor = await conn.execute("SELECT id FROM invoices")
                    return await cursor.fetchall()

        asyncio.run(list_invoices())
    """

    async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if query == "" and params is None:  # a liveness check: no statement, no data
            with _pinging(self):
                return await super().execute(query, params, **kwargs)
        return await super().execute(query, params, **kwargs)
