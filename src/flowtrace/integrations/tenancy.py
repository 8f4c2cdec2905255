"""The database tenancy policy every integration shares: which settings carry the flow
context into a transaction, and what happens without a tenant.

One :class:`TenancyPolicy` decides, from :func:`flowtrace.current`, the
``set_config(name, value, true)`` pairs a transaction starts with:

* inside a tenant: the tenant GUC (and user/purpose GUCs if configured);
* inside :func:`flowtrace.cross_tenant`: the tenant GUC empty and the bypass GUC ``on``
  (if the policy allows it), reported as a ``cross_tenant`` flow event and appended to
  the audit log if one is given;
* otherwise :class:`~flowtrace.errors.MissingTenantError`, before anything is sent.

The tenant setting is written in every transaction, so nothing a previous borrower of
the connection left in the session survives into this one. RLS policies honour the
bypass only together with an empty tenant (see docs/database.md), so a bypass left in a
session cannot widen a tenant transaction either.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import flowtrace as ft
from flowtrace.errors import ConfigError, InvalidContextValueError, MissingTenantError
from flowtrace.flowcontext import notify

if TYPE_CHECKING:
    from flowtrace.audit import AuditLog

__all__ = ["TenancyPolicy", "schema_name", "validate_identifier"]

# A custom GUC is "prefix.name"; both parts plain identifiers (quoted as a literal anyway).
_GUC = re.compile(r"[a-z_][a-z0-9_]{0,62}\.[a-z_][a-z0-9_]{0,62}")
# Identifiers flowtrace builds SQL from (schema names, tenant-derived names): ASCII only.
_IDENT = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def validate_identifier(name: str, what: str) -> str:
    """Return ``name`` if it is a plain lower-case ASCII identifier of at most 63 bytes.

    Raises :class:`~flowtrace.errors.ConfigError` otherwise: quotes, semicolons,
    whitespace, upper case and non-ASCII letters are all refused rather than escaped, so
    a crafted tenant name can never change the meaning of the SQL built from it.

    Example::

        from flowtrace.errors import ConfigError
        from flowtrace.integrations.tenancy import validate_identifier

        assert validate_identifier("app_role", "role") == "app_role"
        try:
            validate_identifier('app"; DROP TABLE invoices; --', "role")
        except ConfigError as exc:
            print(exc)                               # refused, never escaped
    """
    if not isinstance(name, str) or not _IDENT.fullmatch(name):
        raise ConfigError(
            f"{what} {name!r} is not a valid identifier: use 1-63 characters from a-z, 0-9 "
            "and '_', starting with a letter or '_'"
        )
    return name


def schema_name(template: str, tenant: str) -> str:
    """The schema of ``tenant`` from ``template`` (``"tenant_{tenant}"``), validated.

    A tenant whose schema name would not be a plain identifier (quotes, semicolons,
    spaces, upper case, non-ASCII letters, over 63 bytes) raises
    :class:`~flowtrace.errors.InvalidContextValueError`: it is refused, never escaped.

    Example::

        from flowtrace.errors import InvalidContextValueError
        from flowtrace.integrations.tenancy import schema_name

        assert schema_name("tenant_{tenant}", "acme") == "tenant_acme"
        try:
            schema_name("tenant_{tenant}", "Acme Corp")
        except InvalidContextValueError as exc:
            print(exc)
    """
    name = template.replace("{tenant}", tenant)
    if not _IDENT.fullmatch(name):
        raise InvalidContextValueError(
            "tenant",
            f"{tenant!r} cannot name a schema ({template!r} gives {name!r}); schema-per-tenant "
            "needs tenants made of a-z, 0-9 and '_' (63 bytes at most with the template)",
        )
    return name


def _check_guc(name: str | None, what: str) -> None:
    if name is not None and not _GUC.fullmatch(name):
        raise ConfigError(
            f"{what} {name!r} is not a custom setting name: use 'prefix.name' in lower case, "
            "e.g. 'app.tenant'"
        )


@dataclass(frozen=True)
class TenancyPolicy:
    """Which settings carry the flow context into each transaction.

    ``tenant_guc`` is what RLS policies read with ``current_setting('app.tenant', true)``.
    ``bypass_guc`` is the declared bypass a policy may honour together with an empty
    tenant setting; it is written ``on`` only inside ``flowtrace.cross_tenant(reason=...)``.
    With ``allow_cross_tenant=False`` a cross-tenant scope without a tenant fails closed.

    Schema per tenant: with ``tenant_schema="tenant_{tenant}"`` every tenant transaction
    also sets ``search_path`` to the tenant's schema (then ``shared_schemas``); names are
    validated by :func:`schema_name`. A cross-tenant transaction gets ``shared_schemas``
    only (``pg_catalog`` is always searched).

    Example::

        import flowtrace as ft
        from flowtrace.integrations.tenancy import TenancyPolicy

        policy = TenancyPolicy(tenant_guc="app.tenant", user_guc="app.user")
        with ft.context(tenant="acme", user="u-1"):
            assert ("app.tenant", "acme") in policy.settings()
        with ft.cross_tenant(reason="nightly usage report"):
            assert ("app.bypass_rls", "on") in policy.settings()
        try:
            policy.settings()                        # no tenant: nothing is sent
        except ft.MissingTenantError:
            pass
    """

    tenant_guc: str = "app.tenant"
    bypass_guc: str = "app.bypass_rls"
    user_guc: str | None = None
    purpose_guc: str | None = None
    allow_cross_tenant: bool = True
    audit_log: AuditLog | None = None
    tenant_schema: str | None = None
    shared_schemas: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_guc(self.tenant_guc, "tenant_guc")
        _check_guc(self.bypass_guc, "bypass_guc")
        _check_guc(self.user_guc, "user_guc")
        _check_guc(self.purpose_guc, "purpose_guc")
        names = [
            g for g in (self.tenant_guc, self.bypass_guc, self.user_guc, self.purpose_guc) if g
        ]
        if len(set(names)) != len(names):
            raise ConfigError(f"the tenancy settings must be distinct names, got {names}")
        if self.tenant_schema is not None:
            if "{tenant}" not in self.tenant_schema:
                raise ConfigError(
                    f"tenant_schema {self.tenant_schema!r} must contain '{{tenant}}', "
                    "e.g. 'tenant_{tenant}'"
                )
            validate_identifier(self.tenant_schema.replace("{tenant}", "x"), "tenant_schema")
        for shared in self.shared_schemas:
            validate_identifier(shared, "shared schema")

    def settings(self) -> tuple[tuple[str, str], ...]:
        """The ``(setting, value)`` pairs for a transaction starting now.

        Raises :class:`~flowtrace.errors.MissingTenantError` outside a tenant (unless in
        a permitted cross-tenant scope, which is reported and audited here).
        """
        ctx = ft.current()
        reason = ft.cross_tenant_reason()
        crossing = reason is not None and self.allow_cross_tenant
        if crossing:
            self._report_bypass(reason or "")
            # No tenant and the bypass on: a policy honours the bypass only when the
            # tenant setting is empty, so a leaked session-level bypass never widens a
            # tenant transaction (which always writes its tenant).
            pairs = [(self.tenant_guc, ""), (self.bypass_guc, "on")]
        elif not ctx.tenant:  # never an empty tenant: with it, a policy would allow the bypass
            raise MissingTenantError(
                "a database transaction was started without a tenant in the flow context; "
                "run it inside flowtrace.context(tenant=...), or inside "
                "flowtrace.cross_tenant(reason=...) for deliberate cross-tenant work"
            )
        else:
            pairs = [(self.tenant_guc, ctx.tenant)]
        if self.tenant_schema is not None:
            own = (
                []
                if crossing or not ctx.tenant
                else [schema_name(self.tenant_schema, ctx.tenant)]
            )
            # Validated names joined by ",": the statement builder quotes each one.
            pairs.append(("search_path", ",".join((*own, *self.shared_schemas))))
        if self.user_guc:
            pairs.append((self.user_guc, ctx.user or ""))
        if self.purpose_guc:
            pairs.append((self.purpose_guc, ctx.purpose or ""))
        return tuple(pairs)

    def _report_bypass(self, reason: str) -> None:
        # notify() raises if an observer fails: the transaction then never starts.
        notify("cross_tenant", {"reason": reason, "flowtrace.db.setting": self.bypass_guc})
        if self.audit_log is not None:
            self.audit_log.append(
                "db.cross_tenant", reason=reason, resource=f"setting:{self.bypass_guc}"
            )
