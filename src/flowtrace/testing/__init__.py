"""Testing helpers and the flowtrace pytest plugin (entry point ``pytest11``).

* :func:`reset` puts flowtrace's process-wide state back to defaults.
* :class:`Capture` (and the ``flowtrace_capture`` fixture) records every span and every
  flow event in memory, with deterministic span and trace ids.
* :func:`assert_tenant_isolation` runs a code path under two tenants with unique canary
  values and fails if anything captured under one tenant carries the other's canary, or
  carries no tenant at all.

::

    def test_invoice_is_traced(flowtrace_capture):
        create_invoice(...)
        span = flowtrace_capture.span("create_invoice")
        assert flowtrace_capture.flow_attributes(span)["tenant"] == "acme"

Owns test helpers only; it may import every flowtrace package (it sits near the top, under
the CLI). The pytest entry point (``pytest11``) is this package.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from ._capture import Capture, SequentialIdGenerator, _flowtrace_capture, reset
from ._isolation import IsolationReport, TenantRun, assert_tenant_isolation

__all__ = [
    "Capture",
    "IsolationReport",
    "SequentialIdGenerator",
    "TenantRun",
    "assert_tenant_isolation",
    "flowtrace_capture",
    "reset",
]

try:  # the plugin part needs pytest; the helpers above do not
    import pytest
except ImportError:  # pragma: no cover - exercised only without pytest
    pass
else:
    flowtrace_capture = pytest.fixture(name="flowtrace_capture")(_flowtrace_capture)
    """The pytest fixture: a :class:`Capture` installed for one test, state reset around it.

    Example::

        import flowtrace as ft

        charge = ft.handler("charge", tenant="acme")(lambda: None)

        def test_charge_is_traced(flowtrace_capture):
            charge()
            span = flowtrace_capture.span("charge")
            assert flowtrace_capture.flow_attributes(span)["tenant"] == "acme"
    """
