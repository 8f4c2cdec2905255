"""``flowtrace db check`` flags each RLS misconfiguration on real tables; passes when right."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from flowtrace.cli import main
from flowtrace.errors import DatabaseCheckError
from tests._pg import ADMIN_DSN, admin_execute
from tests._services import require_service

pytest.importorskip("psycopg")

from flowtrace.integrations.dbcheck import check_database, require_rls

pytestmark = pytest.mark.services

POLICY = (
    "CREATE POLICY tenant_isolation ON {t} USING (tenant_id = current_setting('app.tenant', "
    "true)) WITH CHECK (tenant_id = current_setting('app.tenant', true))"
)


@dataclass(frozen=True)
class Setup:
    schema: str
    app: str
    owner: str
    bypass: str

    def t(self, name: str) -> str:
        return f"{self.schema}.{name}"


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    require_service("postgresql")
    sfx = uuid.uuid4().hex[:10]
    s = Setup(f"ft_chk_{sfx}", f"ft_chk_app_{sfx}", f"ft_chk_own_{sfx}", f"ft_chk_byp_{sfx}")

    def table(name: str, *extra: str, owner: str | None = None) -> list[str]:
        q = s.t(name)
        out = [
            f"CREATE TABLE {q} (id int, tenant_id text NOT NULL)",
            *[e.format(t=q) for e in extra],
        ]
        if owner:
            out.append(f"ALTER TABLE {q} OWNER TO {owner}")
        return [*out, f"GRANT SELECT ON {q} TO {s.app}, {s.bypass}"]

    enable, force = (
        "ALTER TABLE {t} ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE {t} FORCE ROW LEVEL SECURITY",
    )
    admin_execute(
        f"CREATE ROLE {s.app} LOGIN",
        f"CREATE ROLE {s.owner} LOGIN",
        f"CREATE ROLE {s.bypass} LOGIN BYPASSRLS",
        f"CREATE SCHEMA {s.schema}",
        f"GRANT USAGE ON SCHEMA {s.schema} TO {s.app}, {s.owner}, {s.bypass}",
        *table("good", enable, force, POLICY),
        *table("no_rls", POLICY),
        *table("not_forced", enable, POLICY),
        *table("no_policy", enable, force),
        *table("wrong_policy", enable, force, "CREATE POLICY anyone ON {t} USING (true)"),
        *table("opened", enable, force, POLICY, "CREATE POLICY admins ON {t} USING (true)"),
        *table("owned", enable, force, POLICY, owner=s.owner),
        f"CREATE TABLE {s.t('unrelated')} (id int)",
    )
    try:
        yield s
    finally:
        admin_execute(
            f"DROP SCHEMA {s.schema} CASCADE",
            *[f"DROP OWNED BY {r}" for r in (s.app, s.owner, s.bypass)],
            *[f"DROP ROLE {r}" for r in (s.app, s.owner, s.bypass)],
        )


def kinds(setup: Setup, tables: list[str], roles: list[str]) -> set[tuple[str, str]]:
    found = check_database(ADMIN_DSN, tables=[setup.t(n) for n in tables], roles=roles)
    return {(f.kind, f.subject) for f in found}


def test_a_correct_schema_passes(setup: Setup) -> None:
    assert kinds(setup, ["good"], [setup.app]) == set()
    require_rls(ADMIN_DSN, tables=[setup.t("good")], roles=[setup.app])  # does not raise


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("no_rls", {"rls_disabled"}),
        ("not_forced", {"rls_not_forced"}),
        ("no_policy", {"no_tenant_policy"}),
        ("wrong_policy", {"no_tenant_policy", "permissive_policy_without_tenant"}),
        ("opened", {"permissive_policy_without_tenant"}),
    ],
)
def test_each_table_misconfiguration_is_flagged(
    setup: Setup, table: str, expected: set[str]
) -> None:
    assert kinds(setup, [table], [setup.app]) == {(k, setup.t(table)) for k in expected}


def test_each_role_problem_is_flagged(setup: Setup) -> None:
    assert kinds(setup, ["good", "owned"], [setup.owner, setup.bypass, "postgres"]) == {
        ("owner", setup.owner),
        ("bypassrls", setup.bypass),
        ("superuser", "postgres"),
    }


def test_default_scope_is_every_table_with_the_tenant_column(setup: Setup) -> None:
    found = check_database(ADMIN_DSN, schemas=[setup.schema], roles=[setup.app])
    checked = {f.subject for f in found}
    assert setup.t("unrelated") not in checked
    assert {setup.t(n) for n in ("no_rls", "not_forced", "no_policy", "opened")} <= checked
    assert setup.t("good") not in checked


def test_the_connecting_role_is_checked_by_default(setup: Setup) -> None:
    """Connecting as the app role: no role findings; as postgres: superuser."""
    good = [setup.t("good")]
    app_dsn = f"host=127.0.0.1 port=5432 user={setup.app} dbname=test"
    assert check_database(app_dsn, tables=good) == []
    assert [f.kind for f in check_database(ADMIN_DSN, tables=good)] == ["superuser"]


def test_nothing_to_check_is_a_finding(setup: Setup) -> None:
    assert [
        f.kind for f in check_database(ADMIN_DSN, schemas=[setup.schema], tenant_column="nope")
    ] == ["no_tables", "superuser"]


def test_require_rls_raises_listing_findings(setup: Setup) -> None:
    with pytest.raises(DatabaseCheckError, match="rls_not_forced") as info:
        require_rls(ADMIN_DSN, tables=[setup.t("not_forced")], roles=[setup.app])
    assert [f.kind for f in info.value.findings] == ["rls_not_forced"]


def test_cli_exit_codes(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["db", "check", ADMIN_DSN, "--role", setup.app, "--table"]
    assert main([*base, setup.t("good")]) == 0
    assert "ok:" in capsys.readouterr().out
    assert main([*base, setup.t("no_rls"), "--table", setup.t("owned"), "--role", setup.owner]) == 1
    out = capsys.readouterr().out
    assert f"rls_disabled: {setup.t('no_rls')}" in out
    assert f"owner: {setup.owner}" in out


def test_pytest_helper_fails_with_findings(setup: Setup) -> None:
    from flowtrace.integrations.pytest_plugin import assert_rls

    assert_rls(ADMIN_DSN, tables=[setup.t("good")], roles=[setup.app])
    with pytest.raises(AssertionError, match="no_tenant_policy"):
        assert_rls(ADMIN_DSN, tables=[setup.t("no_policy")], roles=[setup.app])


def test_the_fixture_is_registered(setup: Setup, flowtrace_db_check) -> None:  # type: ignore[no-untyped-def]
    """The ``flowtrace-db`` pytest plugin provides ``flowtrace_db_check``."""
    flowtrace_db_check(ADMIN_DSN, tables=[setup.t("good")], roles=[setup.app])
    with pytest.raises(AssertionError, match="rls_disabled"):
        flowtrace_db_check(ADMIN_DSN, tables=[setup.t("no_rls")], roles=[setup.app])
