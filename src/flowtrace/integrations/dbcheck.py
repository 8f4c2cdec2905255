"""Is row-level security really protecting the tenant tables? A start-up and CI check.

RLS does nothing, silently, for a table without ``ENABLE ROW LEVEL SECURITY``, for the
table's owner unless ``FORCE ROW LEVEL SECURITY``, for a table whose policies never read
the tenant setting, and for superuser or ``BYPASSRLS`` roles. :func:`check_database`
reports each of these as a :class:`Finding`; :func:`require_rls` raises
:class:`~flowtrace.errors.DatabaseCheckError` listing them (use it at start-up);
``flowtrace db check DSN`` prints them and exits 1; the pytest fixture
``flowtrace_db_check`` fails the test.

The tables checked are those named, or else every table with the tenant column. The
roles checked are those named (the roles the application connects as), or else the role
the check itself connects as.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flowtrace.errors import DatabaseCheckError, require_extra

__all__ = ["Finding", "check_database", "require_rls"]

_TABLES = """
SELECT c.oid, n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity,
       pg_get_userbyid(c.relowner)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%%'
  AND (%(schemas)s::text[] IS NULL OR n.nspname = ANY(%(schemas)s::text[]))
  AND (%(tables)s::text[] IS NULL
       OR n.nspname || '.' || c.relname = ANY(%(tables)s::text[])
       OR c.relname = ANY(%(tables)s::text[]))
  AND (%(tables)s::text[] IS NOT NULL OR EXISTS (
       SELECT 1 FROM pg_attribute a
       WHERE a.attrelid = c.oid AND a.attname = %(column)s AND NOT a.attisdropped))
ORDER BY 2, 3
"""

_POLICIES = """
SELECT p.polname, p.polpermissive, p.polcmd,
       coalesce(pg_get_expr(p.polqual, p.polrelid), ''),
       coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
FROM pg_policy p WHERE p.polrelid = %s ORDER BY 1
"""

_ROLES = """
SELECT r.rolname, r.rolsuper, r.rolbypassrls FROM pg_roles r
WHERE r.rolname = ANY(%s::text[]) ORDER BY 1
"""


@dataclass(frozen=True)
class Finding:
    """One reason RLS would not protect a tenant table.

    ``kind`` is one of ``no_tables``, ``rls_disabled``, ``rls_not_forced``,
    ``no_tenant_policy``, ``permissive_policy_without_tenant``, ``unknown_role``,
    ``superuser``, ``bypassrls``, ``owner``; ``subject`` names the table or role.

    Example::

        from flowtrace.integrations.dbcheck import Finding

        finding = Finding(
            "rls_not_forced", "invoices", "the owner bypasses RLS; FORCE ROW LEVEL SECURITY"
        )
        assert str(finding).startswith("rls_not_forced: invoices: ")
    """

    kind: str
    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}: {self.message}"


def _policy_findings(table: str, policies: list[Any], guc: str) -> list[Finding]:
    needle = f"'{guc}'"
    reads = [p for p in policies if needle in p[3] or needle in p[4]]
    found: list[Finding] = []
    if not reads:
        found.append(
            Finding(
                "no_tenant_policy",
                table,
                f"no policy reads current_setting('{guc}'): add one, e.g. USING (tenant_id = "
                f"current_setting('{guc}', true))",
            )
        )
    for name, permissive, _cmd, qual, check in policies:
        # Permissive policies are OR-ed: one that ignores the tenant opens every row.
        if permissive and needle not in qual and needle not in check:
            found.append(
                Finding(
                    "permissive_policy_without_tenant",
                    table,
                    f"permissive policy {name!r} does not read '{guc}' and is OR-ed with the "
                    "tenant policy: make it RESTRICTIVE or add the tenant condition",
                )
            )
    return found


def check_database(
    conn_or_dsn: Any,
    *,
    tables: Sequence[str] | None = None,
    tenant_column: str = "tenant_id",
    guc: str = "app.tenant",
    roles: Sequence[str] | None = None,
    schemas: Sequence[str] | None = None,
) -> list[Finding]:
    """Every reason RLS would not isolate tenants on these tables for these roles.

    ``conn_or_dsn`` is a psycopg connection or a connection string. Returns an empty
    list when the set-up is correct.

    Example::

        from flowtrace.integrations.dbcheck import check_database

        for finding in check_database("host=db.internal dbname=app user=migrator",
                                      roles=["app"], tenant_column="tenant_id"):
            print(finding)                           # e.g. "bypassrls: app: ..."
    """
    psycopg: Any = require_extra("psycopg", "postgres", "flowtrace db check")
    if isinstance(conn_or_dsn, str):
        with psycopg.connect(conn_or_dsn, autocommit=True) as conn:
            return _check(conn, tables, tenant_column, guc, roles, schemas)
    return _check(conn_or_dsn, tables, tenant_column, guc, roles, schemas)


def _check(
    conn: Any,
    tables: Sequence[str] | None,
    tenant_column: str,
    guc: str,
    roles: Sequence[str] | None,
    schemas: Sequence[str] | None,
) -> list[Finding]:
    cur = conn.cursor()
    params = {
        "schemas": list(schemas) if schemas else None,
        "tables": list(tables) if tables else None,
        "column": tenant_column,
    }
    rows = cur.execute(_TABLES, params).fetchall()
    findings: list[Finding] = []
    if not rows:
        what = f"named {list(tables)}" if tables else f"with a {tenant_column!r} column"
        findings.append(
            Finding("no_tables", "-", f"no tables {what} were found: nothing was checked")
        )
    owners: dict[str, set[str]] = {}
    for oid, schema, name, enabled, forced, owner in rows:
        table = f"{schema}.{name}"
        owners.setdefault(owner, set()).add(table)
        if not enabled:
            findings.append(
                Finding(
                    "rls_disabled",
                    table,
                    f"row level security is not enabled: ALTER TABLE {table} ENABLE ROW "
                    "LEVEL SECURITY",
                )
            )
        elif not forced:
            findings.append(
                Finding(
                    "rls_not_forced",
                    table,
                    f"the owner ({owner}) bypasses RLS: ALTER TABLE {table} FORCE ROW LEVEL "
                    "SECURITY",
                )
            )
        findings.extend(_policy_findings(table, cur.execute(_POLICIES, (oid,)).fetchall(), guc))
    in_use = list(roles) if roles else [cur.execute("SELECT current_user").fetchone()[0]]
    known = {r[0]: r for r in cur.execute(_ROLES, (in_use,)).fetchall()}
    for role in in_use:
        if role not in known:
            findings.append(Finding("unknown_role", role, "no such role"))
            continue
        _, superuser, bypass = known[role]
        if superuser:
            findings.append(
                Finding(
                    "superuser",
                    role,
                    "superusers bypass every RLS policy: connect as a NOSUPERUSER role",
                )
            )
            continue
        if bypass:
            findings.append(
                Finding("bypassrls", role, f"the role bypasses RLS: ALTER ROLE {role} NOBYPASSRLS")
            )
        for owner, owned in sorted(owners.items()):
            is_owner = cur.execute("SELECT pg_has_role(%s, %s, 'USAGE')", (role, owner)).fetchone()[
                0
            ]
            if is_owner:
                findings.append(
                    Finding(
                        "owner",
                        role,
                        f"owns (as or through {owner}) {', '.join(sorted(owned))}: owners may "
                        "alter or disable RLS; connect as a role that does not own the tables",
                    )
                )
    return findings


def require_rls(conn_or_dsn: Any, **options: Any) -> None:
    """:func:`check_database`, raising :class:`~flowtrace.errors.DatabaseCheckError` on any
    finding (for start-up: refuse to serve tenants with an unprotected database).

    Example::

        from flowtrace.integrations.dbcheck import require_rls

        # at start-up, before serving any tenant:
        require_rls("host=db.internal dbname=app user=app", tables=["invoices", "customers"])
    """
    findings = check_database(conn_or_dsn, **options)
    if findings:
        raise DatabaseCheckError(findings)
