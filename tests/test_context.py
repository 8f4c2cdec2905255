"""The flow context: immutable, validated, scoped, fail-closed on tenant switches."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import pickle
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import flowtrace as ft
from flowtrace.flowcontext import MAX_VALUE_LENGTH, FlowContext


class TestFlowContext:
    def test_is_immutable(self) -> None:
        """Attributes cannot be assigned; replace() returns a new context."""
        ctx = FlowContext(tenant="acme")
        with pytest.raises(AttributeError):
            ctx.tenant = "globex"  # type: ignore[misc]
        assert ctx.replace(user="u-1") == FlowContext(tenant="acme", user="u-1")
        assert ctx == FlowContext(tenant="acme")

    def test_only_equal_to_flow_contexts(self) -> None:
        """A FlowContext never compares equal to a plain tuple with the same items."""
        assert FlowContext(tenant="a") != tuple(FlowContext(tenant="a"))

    @pytest.mark.parametrize(
        "value", ["", "x" * (MAX_VALUE_LENGTH + 1), "a\nb", "a\rb", "a\x1bb", "a\u2028b", "\x85"]
    )
    def test_rejects_invalid_values_naming_the_field(self, value: str) -> None:
        """Empty, overlong and control-character values raise a ValueError naming the field."""
        with pytest.raises(ft.InvalidContextValueError, match="'purpose'") as info:
            FlowContext(purpose=value)
        assert isinstance(info.value, ValueError)
        assert info.value.field == "purpose"

    def test_accepts_unicode_and_nbsp(self) -> None:
        """Printable unicode (including no-break space) is fine."""
        assert FlowContext(user="Zoë\u00a0Ünal 用户").user == "Zoë\u00a0Ünal 用户"

    def test_rejects_non_strings(self) -> None:
        """A non-str value is rejected rather than coerced."""
        with pytest.raises(ft.InvalidContextValueError, match="must be a str"):
            FlowContext(tenant=42)  # type: ignore[arg-type]

    def test_baggage_is_bounded_and_read_only(self) -> None:
        """Baggage keys are token-like, entries bounded, and the mapping is read-only."""
        ctx = FlowContext(baggage={"plan": "gold"})
        assert dict(ctx.baggage) == {"plan": "gold"}
        with pytest.raises(TypeError):
            ctx.baggage["plan"] = "free"  # type: ignore[index]
        with pytest.raises(ft.InvalidContextValueError, match="baggage"):
            FlowContext(baggage={"bad key": "x"})
        with pytest.raises(ft.InvalidContextValueError, match="limit"):
            FlowContext(baggage={f"k{i}": "v" for i in range(17)})

    def test_pickles_through_validation(self) -> None:
        """Contexts survive pickling (process pools) and come back equal."""
        ctx = FlowContext(tenant="acme", lineage_parents=["l1"], baggage={"a": "b"})
        assert pickle.loads(pickle.dumps(ctx)) == ctx

    def test_to_dict_lists_only_set_fields(self) -> None:
        """to_dict() omits unset fields."""
        assert FlowContext(tenant="t", region="eu").to_dict() == {"tenant": "t", "region": "eu"}


class TestScopes:
    def test_context_nests_and_restores(self) -> None:
        """Nested scopes inherit fields and restore the outer context on exit."""
        assert ft.current().is_empty
        with ft.context(tenant="acme", purpose="billing"):
            with ft.context(user="u-1") as inner:
                assert inner == FlowContext(tenant="acme", user="u-1", purpose="billing")
                assert ft.current() is inner
            assert ft.current().user is None
        assert ft.current().is_empty

    def test_restores_on_exception(self) -> None:
        """An exception inside a scope still restores the outer context."""
        with pytest.raises(RuntimeError), ft.context(tenant="acme"):
            raise RuntimeError("boom")
        assert ft.current().tenant is None

    def test_require_tenant(self) -> None:
        """require_tenant() returns the tenant or raises MissingTenantError."""
        with pytest.raises(ft.MissingTenantError, match="needs a tenant"):
            ft.require_tenant()
        with ft.context(tenant="acme"):
            assert ft.require_tenant() == "acme"

    def test_switching_tenant_fails_closed(self) -> None:
        """Entering another tenant, or clearing it, inside a tenant scope raises."""
        with ft.context(tenant="acme"):
            with pytest.raises(ft.TenantSwitchError, match="globex"):
                ft.context(tenant="globex").__enter__()
            with pytest.raises(ft.TenantSwitchError):
                ft.context(tenant=None).__enter__()
            assert ft.current().tenant == "acme"
            with ft.context(tenant="acme"):  # same tenant is fine
                pass

    def test_cross_tenant_allows_switch_and_reports(self) -> None:
        """Inside cross_tenant the switch is allowed; the scope and the switch are reported."""
        events: list[ft.FlowEvent] = []
        ft.add_observer(events.append)
        try:
            with ft.context(tenant="acme"), ft.cross_tenant(reason="usage dashboard"):
                with ft.context(tenant="globex"):
                    assert ft.current().tenant == "globex"
                assert ft.cross_tenant_reason() == "usage dashboard"
            assert ft.cross_tenant_reason() is None
        finally:
            ft.remove_observer(events.append)
        assert [e.kind for e in events] == ["cross_tenant", "tenant_switch"]
        assert events[0].attributes == {"reason": "usage dashboard"}
        assert events[1].attributes["to_tenant"] == "globex"

    @pytest.mark.parametrize("reason", ["", "   "])
    def test_cross_tenant_needs_reason(self, reason: str) -> None:
        """cross_tenant without a real reason is refused."""
        with pytest.raises(ft.InvalidContextValueError, match="reason"):
            ft.cross_tenant(reason=reason)

    def test_failing_observer_blocks_cross_tenant(self) -> None:
        """If the audit observer cannot record a cross-tenant scope, the scope is not entered."""

        def broken(event: ft.FlowEvent) -> None:
            raise OSError("audit disk full")

        ft.add_observer(broken)
        try:
            with ft.context(tenant="acme"):
                with pytest.raises(OSError, match="disk full"), ft.cross_tenant(reason="x"):
                    pass
                assert ft.cross_tenant_reason() is None
        finally:
            ft.remove_observer(broken)


class TestScopeAsDecorator:
    def test_sync_function(self) -> None:
        """A decorated function runs in the scope; signature and name are preserved."""

        @ft.context(tenant="acme")
        def handler(order_id: int, *, verbose: bool = False) -> str | None:
            """Doc."""
            return ft.current().tenant

        assert handler(1) == "acme"
        assert handler.__name__ == "handler"
        assert handler.__doc__ == "Doc."
        assert list(inspect.signature(handler).parameters) == ["order_id", "verbose"]
        assert inspect.signature(handler) == inspect.signature(handler.__wrapped__)
        assert ft.current().tenant is None

    def test_async_function(self) -> None:
        """Coroutines run in the scope and stay coroutine functions."""

        @ft.context(tenant="acme")
        async def handler() -> str | None:
            await asyncio.sleep(0)
            return ft.current().tenant

        assert inspect.iscoroutinefunction(handler)
        assert asyncio.run(handler()) == "acme"

    def test_generator_does_not_leak_into_consumer(self) -> None:
        """A generator body sees the scope; its consumer never does, between items."""

        @ft.context(tenant="acme")
        def rows() -> Iterator[str | None]:
            for _ in range(3):
                yield ft.current().tenant

        seen_outside = []
        seen_inside = []
        for tenant in rows():
            seen_inside.append(tenant)
            seen_outside.append(ft.current().tenant)
        assert seen_inside == ["acme"] * 3
        assert seen_outside == [None] * 3
        assert inspect.isgeneratorfunction(rows)

    def test_generator_forwards_send_throw_and_return(self) -> None:
        """send(), throw() and the return value pass through the wrapper."""

        @ft.context(tenant="acme")
        def echo() -> Iterator[str]:
            received = yield "ready"
            try:
                yield f"{received}@{ft.current().tenant}"
            except KeyError:
                yield "caught"
            return

        gen = echo()
        assert next(gen) == "ready"
        assert gen.send("hi") == "hi@acme"
        assert gen.throw(KeyError("k")) == "caught"

    def test_async_generator(self) -> None:
        """Async generators run in the scope per item and stay async-generator functions."""

        @ft.context(tenant="acme")
        async def stream() -> AsyncIterator[str | None]:
            for _ in range(2):
                await asyncio.sleep(0)
                yield ft.current().tenant

        async def consume() -> list[tuple[str | None, str | None]]:
            return [(t, ft.current().tenant) async for t in stream()]

        assert inspect.isasyncgenfunction(stream)
        assert asyncio.run(consume()) == [("acme", None), ("acme", None)]

    def test_method(self) -> None:
        """Decorated methods bind self."""

        class Service:
            @ft.context(purpose="billing")
            def purpose(self) -> str | None:
                return ft.current().purpose

        assert Service().purpose() == "billing"


class TestSharedScopes:
    def test_one_scope_object_shared_by_concurrent_tasks(self) -> None:
        """A module-level scope entered by many interleaving tasks keeps each task's view."""
        billing = ft.context(purpose="billing")

        async def task(tenant: str) -> list[tuple[str | None, str | None]]:
            seen = []
            with ft.context(tenant=tenant):
                for _ in range(3):
                    with billing:
                        await asyncio.sleep(0)
                        seen.append((ft.current().tenant, ft.current().purpose))
                    seen.append((ft.current().tenant, ft.current().purpose))
            return seen

        async def main() -> list[list[tuple[str | None, str | None]]]:
            return await asyncio.gather(*(task(f"t{i}") for i in range(50)))

        for i, seen in enumerate(asyncio.run(main())):
            assert seen == [(f"t{i}", "billing"), (f"t{i}", None)] * 3

    def test_one_scope_object_shared_by_threads(self) -> None:
        """The same scope object entered from several threads at once stays correct."""
        import threading

        scope = ft.context(tenant="acme")
        barrier = threading.Barrier(8)
        errors: list[BaseException] = []

        def work() -> None:
            try:
                barrier.wait()
                for _ in range(200):
                    with scope:
                        assert ft.current().tenant == "acme"
                    assert ft.current().tenant is None
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []

    def test_out_of_order_exit_is_refused(self) -> None:
        """Exiting a scope that is not the innermost one raises instead of corrupting state."""
        outer, inner = ft.context(tenant="acme"), ft.context(user="u")
        outer.__enter__()
        inner.__enter__()
        with pytest.raises(RuntimeError, match="out of order"):
            outer.__exit__(None, None, None)
        inner.__exit__(None, None, None)
        outer.__exit__(None, None, None)
        assert ft.current().is_empty

    def test_scope_is_read_only(self) -> None:
        """A scope's fields cannot be changed after creation."""
        scope = ft.context(tenant="acme")
        with pytest.raises(TypeError, match="read-only"):
            scope["tenant"] = "globex"
        with pytest.raises(TypeError, match="read-only"):
            scope.update(tenant="globex")
        assert dict(scope) == {"tenant": "acme"}

    def test_memoized_scopes_still_validate_and_report_switches(self) -> None:
        """The derived-context memo never skips validation or a tenant-switch report."""
        events: list[ft.FlowEvent] = []
        ft.add_observer(events.append)
        try:
            with ft.context(tenant="acme"):
                for _ in range(3):
                    with ft.cross_tenant(reason="r"), ft.context(tenant="globex"):
                        pass
                    with pytest.raises(ft.TenantSwitchError):
                        ft.context(tenant="globex").__enter__()
            for _ in range(2):
                with pytest.raises(ft.InvalidContextValueError):
                    ft.context(tenant="a\nb").__enter__()
        finally:
            ft.remove_observer(events.append)
        assert [e.kind for e in events].count("tenant_switch") == 3


def test_memo_stays_bounded() -> None:
    """Thousands of distinct scopes never grow the derived-context memo past its bound."""
    from flowtrace.flowcontext import _scope

    for i in range(_scope._DERIVED_MAX + 50):
        with ft.context(purpose=f"p{i}"):
            pass
        assert len(_scope._derived) <= _scope._DERIVED_MAX


def test_async_with_enters_and_exits() -> None:
    """`async with ft.context(...)` is in force inside and restores the context after."""
    import asyncio

    async def main() -> str | None:
        async with ft.context(tenant="acme") as inside:
            assert ft.current() is inside
        return ft.current().tenant

    assert asyncio.run(main()) is None


# -- issue 10 item 12: a scope around a `yield` never leaks onto the thread or task ---------
# The item12 tests fail on main before this change (the generator's tenant stayed in force
# for its consumer, and closing it inside another scope raised "exited out of order"),
# except the last one, which guards that awaited work started in the scope still sees it.


def _tenant_gen() -> Iterator[str | None]:
    with ft.context(tenant="gen-tenant"):
        yield ft.current().tenant
        yield ft.current().tenant


def test_item12_suspended_generator_scope_is_not_seen_by_its_consumer() -> None:
    """While a generator is suspended inside its scope, the consumer sees what it had before."""
    gen = _tenant_gen()
    assert next(gen) == "gen-tenant"
    assert ft.current().tenant is None
    with ft.context(tenant="other"):  # no TenantSwitchError: the generator's tenant is gone
        assert ft.current().tenant == "other"
        assert next(gen) == "gen-tenant"  # the generator still sees its own scope
        assert ft.current().tenant == "other"
    gen.close()
    assert ft.current().is_empty


def test_item12_closing_a_generator_inside_another_scope_restores_everything() -> None:
    """Closing (or finishing) the generator in any order leaves exactly the prior context."""
    gen = _tenant_gen()
    next(gen)
    with ft.context(tenant="other", purpose="p"):
        gen.close()  # exits the generator's scope while "other" is innermost
        assert ft.current().tenant == "other"
        assert ft.current().purpose == "p"
    assert ft.current().is_empty


def test_item12_collected_generator_leaves_nothing_behind() -> None:
    """A generator dropped mid-iteration (garbage-collected) leaves the thread as it was."""
    import gc

    gen = _tenant_gen()
    next(gen)
    with ft.context(purpose="outer"):
        del gen
        gc.collect()
        assert ft.current().to_dict() == {"purpose": "outer"}
    assert ft.current().is_empty


def test_item12_cross_tenant_privilege_never_outlives_a_yield() -> None:
    """A cross_tenant scope inside a generator does not leave the privilege to its consumer."""

    def privileged() -> Iterator[None]:
        with ft.cross_tenant(reason="report"):
            yield

    with ft.context(tenant="acme"):
        gen = privileged()
        next(gen)
        assert ft.cross_tenant_reason() is None
        with pytest.raises(ft.TenantSwitchError):
            ft.context(tenant="globex").__enter__()
        gen.close()
    assert ft.cross_tenant_reason() is None


def test_item12_async_generator_scope_stays_inside_the_generator() -> None:
    """The same for async generators: suspended or closed, the task keeps its own context."""
    import asyncio

    async def agen() -> AsyncIterator[str | None]:
        async with ft.context(tenant="gen-tenant"):
            await asyncio.sleep(0)  # awaiting inside the scope keeps it in force
            yield ft.current().tenant
            yield ft.current().tenant

    async def main() -> list[object]:
        seen: list[object] = []
        gen = agen()
        seen.append(await gen.__anext__())
        seen.append(ft.current().tenant)
        with ft.context(tenant="other"):
            seen.append(await gen.__anext__())
            seen.append(ft.current().tenant)
            await gen.aclose()
            seen.append(ft.current().tenant)
        seen.append(ft.current().is_empty)
        return seen

    assert asyncio.run(main()) == ["gen-tenant", None, "gen-tenant", "other", "other", True]


def test_item12_tasks_started_inside_an_async_generator_scope_see_it() -> None:
    """Work an async generator starts inside its scope (and awaits) runs in that scope."""
    import asyncio

    async def work() -> str | None:
        await asyncio.sleep(0)
        return ft.current().tenant

    async def agen() -> AsyncIterator[str | None]:
        with ft.context(tenant="gen-tenant"):
            yield await asyncio.create_task(work())

    async def main() -> list[str | None]:
        return [item async for item in agen()]

    assert asyncio.run(main()) == ["gen-tenant"]


_FIELD_POOL = [
    {"tenant": "acme"},
    {"purpose": "billing"},
    {"purpose": "support", "user": "u-1"},
    {"user": "u-1", "purpose": "support"},
    {"region": "eu"},
    {"purpose": None},
    {"lineage_parents": ["l-1"]},
    {"baggage": {"k": "v"}},
]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, len(_FIELD_POOL) - 1)), max_size=30))
def test_memoized_entries_equal_a_fresh_derivation(program: list[tuple[bool, int]]) -> None:
    """Whatever the memo remembers, a scope yields exactly FlowContext.replace(**fields)."""

    def body() -> None:
        stack: list[tuple[ft.context, FlowContext]] = []
        for enter, index in program:
            if enter or not stack:
                fields = _FIELD_POOL[index]
                expected = (stack[-1][1] if stack else FlowContext()).replace(**fields)
                scope = ft.context(**fields)
                assert scope.__enter__() == expected
                stack.append((scope, expected))
            else:
                stack.pop()[0].__exit__(None, None, None)
            assert ft.current() == (stack[-1][1] if stack else FlowContext())
        while stack:
            stack.pop()[0].__exit__(None, None, None)

    contextvars.Context().run(body)
