"""Database mode for tenant-isolation tests: canary rows per tenant, and every row read.

:func:`assert_db_isolation` plants one canary row per tenant (through ``insert_canary``,
run inside each tenant's context) *before* any run, then runs the code path once per
tenant through :func:`flowtrace.testing.assert_tenant_isolation` (so spans, events and
logs are checked too) while a :class:`RowRecorder` records every row any cursor fetched.
It fails when a run read another tenant's canary row, or never read its own (the check
would prove nothing)::

    recorder = RowRecorder()
    conn = TenantConnection.connect(dsn, cursor_factory=recorder.cursor_class)
    assert_db_isolation(
        lambda run: list_documents(conn),
        insert_canary=lambda tenant, canary: insert_document(conn, canary),
        recorder=recorder,
    )

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Sequence
from typing import Any

import flowtrace as ft
from flowtrace.errors import require_extra
from flowtrace.testing import IsolationReport, TenantRun, assert_tenant_isolation

require_extra("psycopg", "postgres", "flowtrace.integrations.dbisolation")

import psycopg  # noqa: E402

__all__ = ["RowRecorder", "assert_db_isolation"]


class RowRecorder:
    """Records every row fetched through cursors of :attr:`cursor_class` (thread-safe).

    Pass ``cursor_factory=recorder.cursor_class`` to a sync psycopg connection (or
    ``recorder.async_cursor_class`` to an async one).

    Example::

        from flowtrace.integrations.dbisolation import RowRecorder

        recorder = RowRecorder()
        recorder.record([("inv-1", "acme")])         # what its cursors do on every fetch
        assert recorder.collect() == [("inv-1", "acme")]
        assert recorder.collect() == []              # collected rows are forgotten
    """

    def __init__(self) -> None:
        self._rows: list[Any] = []
        self._lock = threading.Lock()
        self.cursor_class: type[psycopg.Cursor[Any]] = self._sync_class()
        self.async_cursor_class: type[psycopg.AsyncCursor[Any]] = self._async_class()

    def record(self, rows: Sequence[Any]) -> None:
        with self._lock:
            self._rows.extend(rows)

    def collect(self) -> list[Any]:
        """The rows fetched since the last call (and forget them)."""
        with self._lock:
            rows, self._rows = self._rows, []
        return rows

    def _sync_class(self) -> type[psycopg.Cursor[Any]]:
        record = self.record

        class RecordingCursor(psycopg.Cursor[Any]):
            def fetchone(self) -> Any:
                row = super().fetchone()
                if row is not None:
                    record([row])
                return row

            def fetchmany(self, size: int = 0) -> list[Any]:
                rows = super().fetchmany(size)
                record(rows)
                return rows

            def fetchall(self) -> list[Any]:
                rows = super().fetchall()
                record(rows)
                return rows

            def __next__(self) -> Any:
                row = super().__next__()
                record([row])
                return row

        return RecordingCursor

    def _async_class(self) -> type[psycopg.AsyncCursor[Any]]:
        record = self.record

        class AsyncRecordingCursor(psycopg.AsyncCursor[Any]):
            async def fetchone(self) -> Any:
                row = await super().fetchone()
                if row is not None:
                    record([row])
                return row

            async def fetchmany(self, size: int = 0) -> list[Any]:
                rows = await super().fetchmany(size)
                record(rows)
                return rows

            async def fetchall(self) -> list[Any]:
                rows = await super().fetchall()
                record(rows)
                return rows

            async def __anext__(self) -> Any:
                row = await super().__anext__()
                record([row])
                return row

        return AsyncRecordingCursor


def _contains(rows: list[Any], needle: str) -> bool:
    return any(needle in repr(row) for row in rows)


def assert_db_isolation(
    code_path: Callable[[TenantRun], Any],
    *,
    insert_canary: Callable[[str, str], None],
    recorder: RowRecorder,
    tenants: Sequence[str] = ("tenant-a", "tenant-b"),
    **options: Any,
) -> IsolationReport:
    """Plant a canary row per tenant, run ``code_path`` per tenant, check the rows read.

    ``insert_canary(tenant, canary)`` runs inside ``flowtrace.context(tenant=tenant)``
    for every tenant before the first run. ``options`` go to
    :func:`flowtrace.testing.assert_tenant_isolation` (whose own canary check is off:
    the database canaries replace it). Raises AssertionError listing every problem.

    Example::

        import flowtrace as ft
        from flowtrace.integrations.dbisolation import RowRecorder, assert_db_isolation
        from flowtrace.integrations.psycopg import TenantConnection

        recorder = RowRecorder()
        conn = TenantConnection.connect("host=db.internal dbname=app user=app",
                                        cursor_factory=recorder.cursor_class)

        def insert_canary(tenant, canary):
            with conn.transaction():
                conn.execute("INSERT INTO documents (tenant_id, title) VALUES (%s, %s)",
                             (ft.require_tenant(), canary))

        def list_documents(run):
            with conn.transaction():
                return conn.execute("SELECT title FROM documents").fetchall()

        assert_db_isolation(list_documents, insert_canary=insert_canary, recorder=recorder)
    """
    canaries = {tenant: f"ftdbcanary{secrets.token_hex(8)}" for tenant in tenants}
    for tenant, canary in canaries.items():
        with ft.context(tenant=tenant):
            insert_canary(tenant, canary)
    recorder.collect()  # rows read while planting are not the code path's
    report = assert_tenant_isolation(
        code_path,
        tenants=tenants,
        collect=recorder.collect,
        require_canary=False,
        **options,
    )
    problems: list[str] = []
    for capture in report.runs:
        tenant = capture.run.tenant
        rows = capture.items
        for other, canary in canaries.items():
            if other != tenant and _contains(rows, canary):
                problems.append(
                    f"LEAK: a query under {tenant!r} read the canary row of {other!r} ({canary})"
                )
        if not _contains(rows, canaries[tenant]):
            problems.append(
                f"no query under {tenant!r} read its own canary row ({canaries[tenant]}), so "
                "this check proves nothing: make the code path read the table the canary "
                "was inserted into"
            )
    if problems:
        raise AssertionError(
            "tenant isolation violated in the database:\n  - " + "\n  - ".join(problems)
        )
    return report
