"""Row-level security driven by the flow context, on a real PostgreSQL.

Needs PostgreSQL on 127.0.0.1:5432 with trust auth for ``postgres`` (it creates and
drops its own role, schema and table). Without a server it says so and exits 0, unless
FLOWTRACE_REQUIRE_SERVICES=1. It asserts what it claims:

* the set-up from docs/database.md passes ``flowtrace db check``; the app role cannot
  bypass RLS;
* each tenant reads only its own invoices, through a pool of 2 connections;
* a request without a tenant is refused before anything reaches the server;
* a cross-tenant report sees every tenant and is reported as a ``cross_tenant`` event;
* the hand-written ``SET app.tenant`` leaks into the next request on the same pooled
  connection; flowtrace's per-transaction setting does not.

    python examples/tenant_database.py
"""

from __future__ import annotations

import os
import socket
import sys
import uuid

import flowtrace as ft


def server_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return True
    except OSError:
        return False


def main() -> None:
    import psycopg
    from psycopg_pool import ConnectionPool

    from flowtrace.integrations.dbcheck import check_database
    from flowtrace.integrations.psycopg import TenantConnection

    admin_dsn = "host=127.0.0.1 port=5432 user=postgres dbname=test"
    suffix = uuid.uuid4().hex[:10]
    schema, app = f"example_{suffix}", f"example_app_{suffix}"
    setup = [
        # The application's role: not a superuser, no BYPASSRLS, does not own the tables.
        f"CREATE ROLE {app} LOGIN NOSUPERUSER NOBYPASSRLS",
        f"CREATE SCHEMA {schema}",
        f"GRANT USAGE ON SCHEMA {schema} TO {app}",
        f"CREATE TABLE {schema}.invoices (id serial PRIMARY KEY, tenant_id text NOT NULL,"
        " amount numeric NOT NULL)",
        f"ALTER TABLE {schema}.invoices ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {schema}.invoices FORCE ROW LEVEL SECURITY",
        f"""CREATE POLICY tenant_isolation ON {schema}.invoices
              USING (tenant_id = current_setting('app.tenant', true)
                     OR (current_setting('app.tenant', true) = ''
                         AND current_setting('app.bypass_rls', true) = 'on'))
              WITH CHECK (tenant_id = current_setting('app.tenant', true))""",
        f"GRANT SELECT, INSERT ON {schema}.invoices TO {app}",
        f"GRANT USAGE ON SEQUENCE {schema}.invoices_id_seq TO {app}",
        f"INSERT INTO {schema}.invoices (tenant_id, amount)"
        " VALUES ('acme', 10), ('acme', 20), ('globex', 99)",
    ]
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        for statement in setup:
            admin.execute(statement)  # type: ignore[arg-type]
    app_dsn = f"host=127.0.0.1 port=5432 user={app} dbname=test"
    query = f"SELECT tenant_id, amount FROM {schema}.invoices ORDER BY id"
    try:
        findings = check_database(app_dsn, schemas=[schema])
        assert findings == [], findings
        print("db check: ok (RLS enabled and forced, policy reads app.tenant, role clean)")

        with ConnectionPool(
            app_dsn, connection_class=TenantConnection, min_size=2, max_size=2
        ) as pool:
            for tenant in ("acme", "globex", "acme"):
                with ft.context(tenant=tenant), pool.connection() as conn:
                    rows = conn.execute(query).fetchall()
                    assert {r[0] for r in rows} == {tenant}, rows
                    print(f"{tenant}: {len(rows)} invoice(s), all its own")
            try:
                with pool.connection() as conn:
                    conn.execute(query)
            except ft.MissingTenantError:
                print("no tenant: refused before reaching the server")
            else:
                raise AssertionError("a query without a tenant was sent")
            seen: list[ft.FlowEvent] = []
            ft.add_observer(seen.append)
            try:
                with ft.cross_tenant(reason="monthly revenue report"), pool.connection() as conn:
                    total = conn.execute(f"SELECT sum(amount) FROM {schema}.invoices").fetchone()
            finally:
                ft.remove_observer(seen.append)
            assert total is not None
            assert int(total[0]) == 129
            assert any(e.kind == "cross_tenant" for e in seen)
            print(f"cross-tenant report (reported as an event): total {total[0]}")

        # The bug flowtrace exists to prevent: a session-level SET on a pooled connection.
        with ConnectionPool(app_dsn, min_size=1, max_size=1) as plain:
            with plain.connection() as conn:
                conn.execute("SET app.tenant = 'globex'")
                conn.execute(query).fetchall()
            with plain.connection() as conn:  # the next request forgot to set a tenant
                leaked = conn.execute(query).fetchall()
        assert {r[0] for r in leaked} == {"globex"}
        print(f"plain SET: the next request on the connection read {len(leaked)} globex row(s)")
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")  # type: ignore[arg-type]
            admin.execute(f"DROP OWNED BY {app}")  # type: ignore[arg-type]
            admin.execute(f"DROP ROLE {app}")  # type: ignore[arg-type]


if __name__ == "__main__":
    if not server_available():
        print("PostgreSQL is not reachable on 127.0.0.1:5432: example skipped")
        sys.exit(1 if os.environ.get("FLOWTRACE_REQUIRE_SERVICES") == "1" else 0)
    main()
