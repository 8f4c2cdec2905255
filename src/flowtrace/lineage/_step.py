"""``@flowtrace.step``: how a decorated call records an edge.

A step call is one edge. Before the body runs, flowtrace opens the edge span (see
``_run``), takes its span context as the lineage id, and runs the body with
``FlowContext.lineage_parents == (that id,)``: anything the body publishes, and any
nested step, descends from this edge, in this process or (through propagation) another.
When the body returns, outputs are computed and the span ends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .._wrapping import Step, wrap
from ..flowcontext import attach, current, detach
from ._run import Hashes, Identifiers, _begin, _Run, _Spec, _with_parent

__all__ = ["step"]

F = TypeVar("F", bound=Callable[..., Any])


class _EdgeStep(Step):
    """One step call: the body (each resumption) runs with ``lineage_parents == (edge id,)``."""

    __slots__ = ("run", "tokens")

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.tokens: list[Any] = []

    def enter(self) -> None:
        self.tokens.append(attach(_with_parent(current(), self.run.id)))

    def exit(self) -> None:
        detach(self.tokens.pop())

    def result(self, value: Any) -> Any:
        self.run.collect(value)
        self.run.finish()
        return value

    def error(self, exc: BaseException) -> None:
        self.run.finish("error", exc)

    def item(self, item: Any) -> None:
        self.run.collect(item)

    def finish(self) -> None:
        self.run.finish()


def step(
    name: str,
    *,
    inputs: Identifiers = None,
    outputs: Identifiers = None,
    code_version: str | None = None,
    params: Mapping[str, Any] | None = None,
    subjects: Identifiers = None,
    hashes: Hashes = None,
) -> Callable[[F], F]:
    """Decorate a transformation so every call records one lineage edge.

    ``inputs`` and ``subjects`` are identifiers or a callable of the call's arguments;
    ``outputs`` are identifiers or a callable of the result (for generator functions, of
    each yielded item). ``params`` (JSON) are recorded as given; ``hashes``
    (identifier -> ``sha256:...``, see :func:`~flowtrace.lineage.content_hash`) is a mapping
    or a callable of the result. Subjects become per-tenant keyed pseudonyms: configure
    ``flowtrace.configure(lineage=LineageConfig(pseudonym_key=...))`` first or recording raises
    :class:`~flowtrace.errors.PseudonymKeyError` (before the body runs).

    Works on plain, async, generator and async-generator functions.

    Example::

        import flowtrace as ft
        from flowtrace.lineage import LineageGraph, read_edges, ref
        from flowtrace.testing import Capture

        @ft.step(
            "normalize-charge",
            inputs=lambda event: [ref("stripe:charge", event["id"])],
            outputs=lambda order: [ref("postgres://billing/orders", order["id"])],
            code_version="billing-etl-2.3.1",
        )
        def normalize(event):
            return {"id": "o-" + event["id"]}

        with Capture() as capture, ft.context(tenant="acme"):
            normalize({"id": "ch_1"})
        graph = LineageGraph(read_edges(capture.spans()))
        assert graph.upstream("postgres://billing/orders#o-ch_1") == ["stripe:charge#ch_1"]
    """
    spec = _Spec(name, inputs, outputs, code_version, params, subjects, hashes)

    def begin(args: tuple[Any, ...], kwargs: dict[str, Any], resumable: bool) -> _EdgeStep:
        return _EdgeStep(_begin(spec, args, kwargs))

    def decorate(func: F) -> F:
        return wrap(func, begin)

    return decorate
