"""pytest fixtures for database tenancy (entry point ``pytest11`` ``flowtrace-db``).

``flowtrace_db_check`` is a callable: ``flowtrace_db_check(dsn, **options)`` fails the
test listing every :class:`~flowtrace.integrations.dbcheck.Finding` (same options as
:func:`~flowtrace.integrations.dbcheck.check_database`)::

    def test_rls_protects_every_tenant_table(flowtrace_db_check):
        flowtrace_db_check(MIGRATED_DSN, roles=["app"])

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

__all__ = ["assert_rls", "flowtrace_db_check"]


def assert_rls(conn_or_dsn: Any, **options: Any) -> None:
    """Raise AssertionError listing every finding of ``check_database``.

    Example::

        from flowtrace.integrations.pytest_plugin import assert_rls

        def test_rls_protects_invoices():
            assert_rls("host=db.internal dbname=app user=migrator", tables=["invoices"],
                       roles=["app"])

        test_rls_protects_invoices()
    """
    from .dbcheck import check_database

    findings = check_database(conn_or_dsn, **options)
    if findings:
        raise AssertionError(
            "row-level security would not isolate tenants:\n  - "
            + "\n  - ".join(str(f) for f in findings)
        )


@pytest.fixture
def flowtrace_db_check() -> Callable[..., None]:
    """``flowtrace_db_check(dsn, **options)``: fail the test on any RLS finding.

    Example::

        # test_rls.py (the fixture comes with flowtrace's pytest plugin)
        def test_rls_protects_every_tenant_table(flowtrace_db_check):
            flowtrace_db_check("host=db.internal dbname=app user=migrator", roles=["app"])
    """
    return assert_rls
