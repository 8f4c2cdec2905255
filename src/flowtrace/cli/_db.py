"""``flowtrace db check DSN``: would row-level security really isolate the tenants?

Reports tenant tables without RLS enabled, without FORCE ROW LEVEL SECURITY, without a
policy reading the tenant setting (or with a permissive policy that ignores it), and
roles that are superuser, BYPASSRLS or own the tables. Exits 1 on any finding, 0 when
the set-up is correct. Run it in CI against a migrated database (docs/database.md).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "db",
        help="check that row-level security isolates tenants (needs the postgres extra)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    db_sub = parser.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    check = db_sub.add_parser("check", help="check tables and roles; exit 1 on findings")
    check.add_argument("dsn", help="connection string, e.g. 'host=db dbname=app user=ci'")
    check.add_argument(
        "--table",
        action="append",
        dest="tables",
        help="a tenant table (repeatable; default: every table with the tenant column)",
    )
    check.add_argument("--tenant-column", default="tenant_id", help="default: tenant_id")
    check.add_argument("--guc", default="app.tenant", help="tenant setting (app.tenant)")
    check.add_argument(
        "--role",
        action="append",
        dest="roles",
        help="a role the application connects as (repeatable; default: the DSN's role)",
    )
    check.add_argument("--schema", action="append", dest="schemas", help="limit to a schema")
    check.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    from ..integrations.dbcheck import check_database

    findings = check_database(
        args.dsn,
        tables=args.tables,
        tenant_column=args.tenant_column,
        guc=args.guc,
        roles=args.roles,
        schemas=args.schemas,
    )
    for finding in findings:
        print(finding)
    if findings:
        print(f"{len(findings)} finding(s): tenants are not isolated", file=sys.stderr)
        return 1
    print("ok: row-level security isolates tenants on every table checked")
    return 0
