"""Per-transaction cost of flowtrace's tenant hook on the real PostgreSQL (127.0.0.1:5432).

The transaction: ``SELECT id, body FROM docs WHERE id = %s`` (one row, RLS-protected
table, forced RLS, policy on ``app.tenant``), ``fetchone()``, ``commit()`` -- i.e.
BEGIN + SELECT + COMMIT, three round trips.

* ours: :class:`flowtrace.integrations.psycopg.TenantConnection` inside
  ``flowtrace.context(tenant=...)`` (entered once, outside the timed loop): the settings
  ride in psycopg's BEGIN message.
* baseline: a plain ``psycopg.Connection`` whose session was ``SET app.tenant`` once at
  connect (the unsafe, leaking way; no per-transaction cost at all), same query, same row.
* reference, no target: a plain connection that sends ``set_config(..., true)`` as its own
  statement at the start of each transaction (what an ``after_begin`` hook does): one
  extra round trip.

Goal (issue 14): ours <= 1.10x the baseline. Needs PostgreSQL with trust auth for
``postgres``; creates and drops a unique role and schema. Run: ``python3 dev.py bench db``.
"""

from __future__ import annotations

import os
import platform
import uuid

import psycopg
from _timing import interleaved

import flowtrace as ft
from flowtrace.integrations.psycopg import TenantConnection

ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
NUMBER = 400
ROUNDS = 31


def admin(*statements: str) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def main() -> None:
    suffix = uuid.uuid4().hex[:10]
    schema, role = f"ft_bench_{suffix}", f"ft_bench_app_{suffix}"
    table = f"{schema}.docs"
    admin(
        f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS",
        f"CREATE SCHEMA {schema}",
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"CREATE TABLE {table} (id int PRIMARY KEY, tenant text NOT NULL, body text NOT NULL)",
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY p ON {table} USING (tenant = current_setting('app.tenant', true)"
        " OR (current_setting('app.tenant', true) = ''"
        " AND current_setting('app.bypass_rls', true) = 'on'))",
        f"GRANT SELECT ON {table} TO {role}",
        f"INSERT INTO {table} SELECT i, 't' || (i % 10), 'body ' || i"
        " FROM generate_series(1, 1000) i",
    )
    dsn = f"host=127.0.0.1 port=5432 user={role} dbname=test"
    query = f"SELECT id, body FROM {table} WHERE id = %s"
    conns: list[psycopg.Connection[object]] = []
    try:
        ours_conn = TenantConnection.connect(dsn)
        base_conn = psycopg.connect(dsn)
        ref_conn = psycopg.connect(dsn)
        conns += [ours_conn, base_conn, ref_conn]
        base_conn.execute("SET app.tenant = 't1'")
        base_conn.commit()

        def ours() -> None:
            assert ours_conn.execute(query, (11,)).fetchone() is not None
            ours_conn.commit()

        def base() -> None:
            assert base_conn.execute(query, (11,)).fetchone() is not None
            base_conn.commit()

        def extra_round_trip() -> None:
            ref_conn.execute("SELECT set_config('app.tenant', %s, true)", ("t1",))
            assert ref_conn.execute(query, (11,)).fetchone() is not None
            ref_conn.commit()

        print(
            f"# {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()},"
            f" psycopg {psycopg.__version__} ({psycopg.pq.__impl__}),"
            f" {NUMBER} transactions x {ROUNDS} rounds, load {os.getloadavg()[0]:.2f}"
        )
        with ft.context(tenant="t1"):
            for _ in range(200):  # warm the server's plan and caches for all three
                ours(), base(), extra_round_trip()
            mine, theirs, ratio = interleaved(ours, base, number=NUMBER, rounds=ROUNDS)
            verdict = "MET" if ratio <= 1.10 else "MISSED"
            print(
                f"{'hook (settings ride in BEGIN)':<36} ours {mine:7.1f} us   baseline "
                f"{theirs:7.1f} us   ratio {ratio:.3f}x  goal <= 1.10x: {verdict}"
            )
            ref, theirs2, ratio2 = interleaved(extra_round_trip, base, number=NUMBER, rounds=ROUNDS)
            print(
                f"{'reference: separate set_config':<36} ref  {ref:7.1f} us   baseline "
                f"{theirs2:7.1f} us   ratio {ratio2:.3f}x"
            )
    finally:
        for conn in conns:  # an open transaction would block the DROP below
            conn.close()
        admin(f"DROP SCHEMA {schema} CASCADE", f"DROP OWNED BY {role}", f"DROP ROLE {role}")


if __name__ == "__main__":
    main()
