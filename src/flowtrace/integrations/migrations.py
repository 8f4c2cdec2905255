"""Apply one migration to every tenant schema, with progress and resumability.

::

    report = migrate_tenant_schemas(
        ADMIN_DSN, "0007_add_invoice_due", "ALTER TABLE invoices ADD COLUMN due date",
        prefix="tenant_",
    )

Each schema is migrated in its own transaction with ``search_path`` set to it (the
schema name validated and quoted), and the migration id is recorded in that schema's
``flowtrace_migrations`` table in the same transaction. A schema that already has the
id is skipped, so after a failure (which stops the run and names the schema) running the
same call again resumes where it stopped. ``progress`` receives one line per schema.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flowtrace.errors import MigrationError, require_extra

from .tenancy import validate_identifier

__all__ = ["MigrationReport", "migrate_tenant_schemas"]

_LEDGER = "flowtrace_migrations"


@dataclass
class MigrationReport:
    """Which schemas got the migration now and which had it already.

    Example::

        from flowtrace.integrations.migrations import MigrationReport

        report = MigrationReport(applied=["tenant_globex"], skipped=["tenant_acme"])
        print(f"{len(report.applied)} migrated, {len(report.skipped)} already done")
    """

    applied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _schemas(conn: Any, prefix: str) -> list[str]:
    rows = conn.execute(
        "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s) ORDER BY 1", (prefix,)
    ).fetchall()
    return [r[0] for r in rows]


def migrate_tenant_schemas(
    conn_or_dsn: Any,
    migration_id: str,
    migration: str | Callable[[Any, str], None],
    *,
    schemas: Sequence[str] | None = None,
    prefix: str | None = None,
    progress: Callable[[str], None] = print,
) -> MigrationReport:
    """Apply ``migration`` (SQL text, or ``f(conn, schema)``) to each tenant schema once.

    The schemas are ``schemas`` or every schema starting with ``prefix``. Raises
    :class:`~flowtrace.errors.MigrationError` naming the schema that failed (the ones
    before it stay migrated; call again to resume).

    Example::

        from flowtrace.integrations.migrations import migrate_tenant_schemas

        report = migrate_tenant_schemas(
            "host=db.internal dbname=app user=migrator", "0007_add_invoice_due",
            "ALTER TABLE invoices ADD COLUMN due date", prefix="tenant_",
        )
        print(report.applied, report.skipped)
    """
    psycopg: Any = require_extra("psycopg", "postgres", "flowtrace tenant migrations")
    if (schemas is None) == (prefix is None):
        raise MigrationError("pass exactly one of schemas=[...] or prefix='tenant_'")
    if isinstance(conn_or_dsn, str):
        with psycopg.connect(conn_or_dsn) as conn:
            return _migrate(conn, migration_id, migration, schemas, prefix, progress)
    return _migrate(conn_or_dsn, migration_id, migration, schemas, prefix, progress)


def _migrate(
    conn: Any,
    migration_id: str,
    migration: str | Callable[[Any, str], None],
    schemas: Sequence[str] | None,
    prefix: str | None,
    progress: Callable[[str], None],
) -> MigrationReport:
    from psycopg import sql

    names = list(schemas) if schemas is not None else _schemas(conn, prefix or "")
    conn.rollback()
    for name in names:
        validate_identifier(name, "tenant schema")
    report = MigrationReport()
    total = len(names)
    for n, name in enumerate(names, 1):
        schema = sql.Identifier(name)
        try:
            with conn.transaction():
                conn.execute(sql.SQL("SET LOCAL search_path = {}").format(schema))
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {}.{} (id text PRIMARY KEY, "
                        "applied_at timestamptz NOT NULL DEFAULT now())"
                    ).format(schema, sql.Identifier(_LEDGER))
                )
                done = conn.execute(
                    sql.SQL("SELECT 1 FROM {}.{} WHERE id = %s FOR UPDATE").format(
                        schema, sql.Identifier(_LEDGER)
                    ),
                    (migration_id,),
                ).fetchone()
                if done:
                    report.skipped.append(name)
                    progress(f"[{n}/{total}] {name}: already has {migration_id}, skipped")
                    continue
                if callable(migration):
                    migration(conn, name)
                else:
                    conn.execute(migration)
                conn.execute(
                    sql.SQL("INSERT INTO {}.{} (id) VALUES (%s)").format(
                        schema, sql.Identifier(_LEDGER)
                    ),
                    (migration_id,),
                )
        except Exception as exc:
            progress(f"[{n}/{total}] {name}: FAILED: {exc}")
            raise MigrationError(
                f"migration {migration_id!r} failed on schema {name!r} ({n} of {total}): "
                f"{exc}; {len(report.applied)} schema(s) were migrated in this run and keep "
                "it; fix the cause and run again to resume"
            ) from exc
        report.applied.append(name)
        progress(f"[{n}/{total}] {name}: applied {migration_id}")
    return report
