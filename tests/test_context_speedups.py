"""The optional C accelerator for scopes (flowtrace._speedups) and its pure-Python fallback."""

from __future__ import annotations

import contextvars
import gc
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import flowtrace as ft
from flowtrace.context import _ContextBody, _PyScopeBase

ctxmod = sys.modules["flowtrace.context"]
ROOT = Path(__file__).resolve().parent.parent
EXTENSION = Path(ctxmod.__file__).with_name(
    "_speedups" + str(sysconfig.get_config_var("EXT_SUFFIX") or ".so")
)
PURE_FORCED = os.environ.get("FLOWTRACE_PURE_PYTHON", "") not in ("", "0")


class PyContext(_ContextBody, _PyScopeBase):
    """The pure-Python scope, whatever implementation ``ft.context`` uses here."""

    __slots__ = ()


needs_c = pytest.mark.skipif(
    not ctxmod.SPEEDUPS,
    reason="C accelerator not active (not compiled here, or FLOWTRACE_PURE_PYTHON=1)",
)


def _pure_env() -> dict[str, str]:
    return {**os.environ, "FLOWTRACE_PURE_PYTHON": "1"}


class TestWhichImplementation:
    def test_c_accelerator_is_active_when_built(self) -> None:
        """When the extension was compiled, ft.context enters and exits in C."""
        if PURE_FORCED:
            pytest.skip("FLOWTRACE_PURE_PYTHON is set for this run")
        if not EXTENSION.exists():
            pytest.skip(f"{EXTENSION.name} was not built (no C compiler at install time)")
        from flowtrace import _speedups

        assert ctxmod.SPEEDUPS is True
        assert issubclass(ft.context, _speedups.ScopeBase)
        assert ft.context.__enter__ is _speedups.ScopeBase.__dict__["__enter__"]
        assert ft.context.__exit__ is _speedups.ScopeBase.__dict__["__exit__"]

    def test_extension_is_not_older_than_its_source(self) -> None:
        """A compiled extension was built from the current _speedups.c (not a stale one)."""
        source = EXTENSION.with_name("_speedups.c")
        if not EXTENSION.exists() or not source.exists():
            pytest.skip("no in-place extension next to its source (installed wheel or no compiler)")
        assert EXTENSION.stat().st_mtime >= source.stat().st_mtime, (
            f"{EXTENSION.name} is older than _speedups.c: rebuild it with "
            "`.venv/bin/pip install -e .` (or delete .venv and rerun python3 dev.py test)"
        )

    def test_env_var_forces_the_pure_python_scope(self) -> None:
        """FLOWTRACE_PURE_PYTHON=1 makes ft.context use the Python hot path."""
        code = (
            "import sys, flowtrace as ft; m = sys.modules['flowtrace.context'];"
            "print(m.SPEEDUPS, ft.context.__enter__ is m._PyScopeBase.__enter__)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], env=_pure_env(), capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["False", "True"]

    def test_whole_context_suite_passes_on_pure_python(self) -> None:
        """tests/test_context.py passes unchanged with the pure-Python scope forced."""
        suite = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_context.py"]
        out = subprocess.run(
            [sys.executable, *suite],
            cwd=ROOT,
            env=_pure_env(),
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert " passed" in out.stdout


# -- identical behaviour: random programs run against both implementations ---------------

SPECS: list[dict[str, Any]] = [
    {"tenant": "acme"},
    {"tenant": "globex"},
    {"tenant": None},
    {"purpose": "billing"},
    {"user": "u-1", "purpose": "support"},
    {"purpose": "billing", "user": "u-1"},  # same fields, other order: another memo key
    {"region": "eu", "tenant": "acme"},
    {"tenant": "a\nb"},  # invalid: control character
    {"tenant": 7},  # invalid: not a string
    {"colour": "red"},  # invalid: unknown field
    {"lineage_parents": ["l-1", "l-2"]},  # unhashable: never memoized
    {"lineage_parents": ("l-1",)},
    {"baggage": {"k": "v"}},  # unhashable
    {},
]

OPS = st.one_of(
    st.tuples(st.just("enter"), st.integers(0, len(SPECS) - 1)),
    st.tuples(st.just("exit"), st.integers(0, 3)),  # 0 = innermost, n = n-th below it
    st.tuples(st.just("stray_exit"), st.integers(0, len(SPECS) - 1)),
    st.tuples(st.just("cross"), st.integers(0, 1)),  # 1 = enter, 0 = exit innermost
)


def _run(program: list[tuple[str, int]], pick: list[type[Any]]) -> list[object]:
    """Run ``program`` in a fresh context; scope SPECS[i] is built from pick[i % len(pick)]."""
    trace: list[object] = []
    events: list[ft.FlowEvent] = []

    def body() -> None:
        scopes = [pick[i % len(pick)](**spec) for i, spec in enumerate(SPECS)]
        stack: list[Any] = []
        crosses: list[ft.cross_tenant] = []
        for op, arg in program:
            try:
                if op == "enter":
                    scope = scopes[arg]
                    got: object = scope.__enter__()
                    stack.append(scope)
                elif op == "exit":
                    if not stack:
                        continue
                    i = max(0, len(stack) - 1 - arg)
                    stack[i].__exit__(None, None, None)
                    del stack[i]
                    got = None
                elif op == "stray_exit":  # a scope object that was never entered
                    got = scopes[arg].__exit__(None, None, None)
                elif arg:
                    crosses.append(ft.cross_tenant(reason="test"))
                    got = crosses[-1].__enter__()
                else:
                    if not crosses:
                        continue
                    got = crosses.pop().__exit__(None, None, None)
            except Exception as exc:
                got = (type(exc).__name__, str(exc))
            trace.append((op, arg, got, ft.current(), ft.cross_tenant_reason()))

    ft.add_observer(events.append)
    try:
        contextvars.Context().run(body)
    finally:
        ft.remove_observer(events.append)
    trace.append([(e.kind, dict(e.attributes)) for e in events])
    return trace


@needs_c
@settings(max_examples=150, deadline=None)
@given(st.lists(OPS, max_size=40))
def test_random_programs_behave_identically(program: list[tuple[str, int]]) -> None:
    """Enter/exit/nesting/out-of-order/cross-tenant programs: C, Python and mixed agree."""
    expected = _run(program, [PyContext])
    assert _run(program, [ft.context]) == expected
    # Mixed: scopes of both kinds nest inside each other (the node protocol is shared).
    assert _run(program, [ft.context, PyContext]) == expected
    assert _run(program, [PyContext, ft.context]) == expected


# -- the C paths in detail -------------------------------------------------------------


@needs_c
class TestCScope:
    def test_no_reference_leaks_on_hits_misses_and_errors(self) -> None:
        """Many enter/exit rounds (memo hits, misses, refused exits) leak no references."""
        hit = ft.context(tenant="acme")
        miss = ft.context(lineage_parents=["l-1"])  # unhashable: the Python miss path
        bad = ft.context(tenant="a\nb")
        with hit as warm:
            pass

        def counts() -> tuple[int, ...]:
            gc.collect()
            return tuple(sys.getrefcount(o) for o in (hit, miss, bad, warm, ctxmod.EMPTY))

        before = counts()
        for _ in range(500):
            with hit, miss:
                pass
            with pytest.raises(ft.InvalidContextValueError):
                bad.__enter__()
            with hit, pytest.raises(RuntimeError, match="out of order"):
                miss.__exit__(None, None, None)
        assert counts() == before

    def test_exit_checks_its_arguments(self) -> None:
        """__exit__ takes exactly (exc_type, exc, tb), like the Python version."""
        scope = ft.context(tenant="acme")
        scope.__enter__()
        with pytest.raises(TypeError, match="3 arguments"):
            scope.__exit__()  # type: ignore[call-arg]
        scope.__exit__(None, None, None)
        assert ft.current().is_empty

    def test_unexpected_node_is_handled_by_python(self) -> None:
        """A value in the variable the C path does not recognise goes to the Python code."""

        def body() -> object:
            ctxmod._var.set([ctxmod.EMPTY, ctxmod._ROOT, None])  # a list, not a tuple
            with ft.context(tenant="acme") as inside:
                assert ft.current() is inside
            return ctxmod._var.get()

        assert contextvars.Context().run(body) == [ctxmod.EMPTY, ctxmod._ROOT, None]

    def test_async_with_uses_the_same_hot_path(self) -> None:
        """`async with` enters and exits the C scope."""
        import asyncio

        async def main() -> str | None:
            async with ft.context(tenant="acme") as inside:
                assert ft.current() is inside
            return ft.current().tenant

        assert asyncio.run(main()) is None


@pytest.mark.parametrize("cls", [ft.context, PyContext], ids=["default", "python"])
def test_memo_stays_bounded(cls: type[Any]) -> None:
    """Thousands of distinct scopes never grow the derived-context memo past its bound."""
    for i in range(ctxmod._DERIVED_MAX + 50):
        with cls(purpose=f"p{i}"):
            pass
        assert len(ctxmod._derived) <= ctxmod._DERIVED_MAX
