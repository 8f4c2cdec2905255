"""Integrations with third-party libraries, one module per library, each behind an extra.

Importing this package imports no third-party library; each module raises
:class:`~flowtrace.errors.MissingExtraError` naming the extra when its library is absent.

* :mod:`flowtrace.integrations.psycopg` -- tenant settings per transaction (``postgres``)
* :mod:`flowtrace.integrations.sqlalchemy` -- the same for SQLAlchemy 2 (``sqlalchemy``)
* :mod:`flowtrace.integrations.redis` -- tenant-scoped cache keys (``redis``)
* :mod:`flowtrace.integrations.dbcheck` -- RLS / role checks for start-up and CI (``postgres``)
* :mod:`flowtrace.integrations.schemas` -- schema- and database-per-tenant routing

The policy they share (which settings carry the tenant, the bypass, identifier rules)
lives in :mod:`flowtrace.integrations.tenancy`.
"""
