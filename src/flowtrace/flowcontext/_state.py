"""Where the current flow context lives: one context variable holding a chain of nodes.

Private to :mod:`flowtrace.flowcontext`. A node is a tuple
``(context, parent node, scope, owner, slow, base)``:

* ``scope`` is the scope object that pushed it (``None`` for :func:`attach`);
* ``owner`` is the frame of the generator or async generator whose body entered the scope,
  or ``None`` for a scope entered by ordinary code;
* ``slow`` is true when this node or one below it has an owner: then :func:`visible`
  resolves what is in force instead of reading the top node;
* ``base`` is the node that was in force when this one was pushed (what it derives from).

The generator rule (docs/context.md): a scope entered inside a generator body is in force
only while that generator runs. When it is suspended at ``yield``, finished, or closed from
another context, the code around it sees exactly what it had before; when the generator
resumes, it sees its own scope again, not scopes its caller entered in between.
"""

from __future__ import annotations

import dis
from contextvars import ContextVar, Token
from types import FrameType
from typing import Any, Final

from ._value import EMPTY, FlowContext

__all__ = ["attach", "current", "current_tenant", "detach", "visible"]

Node = tuple[Any, Any, Any, Any, bool, Any]
ROOT: Final[Node] = (EMPTY, None, None, None, False, None)
var: ContextVar[Node] = ContextVar("flowtrace.context", default=ROOT)
get = var.get
set_node = var.set

# The same chain for cross-tenant scopes: the value is the reason (None outside any).
CROSS_ROOT: Final[Node] = (None, None, None, None, False, None)
cross_var: ContextVar[Node] = ContextVar("flowtrace.cross_tenant", default=CROSS_ROOT)
cross_get = cross_var.get


_YIELD: Final = dis.opmap["YIELD_VALUE"]
_SEND: Final = dis.opmap["SEND"]
_CACHE: Final = dis.opmap["CACHE"]
_ASYNC_GENERATOR: Final = 0x200  # inspect.CO_ASYNC_GENERATOR


def _hidden(owner: FrameType) -> bool:
    """Whether a generator's scope is out of force: it is not running and not merely
    awaiting (an async generator awaiting inside its scope is still in it, and tasks it
    started there see it)."""
    if owner.f_back is not None:
        return False
    if not owner.f_code.co_flags & _ASYNC_GENERATOR:
        return True
    code, i = owner.f_code.co_code, owner.f_lasti
    if i < 2 or code[i] != _YIELD:
        return True  # finished
    i -= 2
    while i > 0 and code[i] == _CACHE:
        i -= 2
    return code[i] != _SEND  # `await` suspends at SEND; `yield` does not


def _descends(node: Node, ancestor: Node) -> bool:
    while node is not None:
        if node is ancestor:
            return True
        node = node[5]
    return False


def visible(node: Node) -> Node:
    """The node in force for the code running now (only called when ``node[4]``)."""
    # The innermost running generator scope, if any: its body must see its own scope.
    running = None
    probe = node
    while probe[4]:
        owner = probe[3]
        if owner is not None and not _hidden(owner):
            running = probe
            break
        probe = probe[1]
    while True:
        owner = node[3]
        if owner is not None and _hidden(owner):
            node = node[1]  # a suspended, finished or foreign generator's scope: hidden
        elif running is None or _descends(node, running):
            return node
        else:
            node = node[1]  # entered by the caller while the generator was suspended


def current() -> FlowContext:
    """The flow context in force here (an empty one outside any scope).

    >>> import flowtrace as ft
    >>> with ft.context(tenant="acme"):
    ...     ft.current().tenant
    'acme'
    """
    node = get()
    ctx: FlowContext = node[0] if not node[4] else visible(node)[0]
    return ctx


def current_tenant() -> str | None:
    """``current().tenant`` in one call (internal interface, for hot paths that compare it)."""
    node = get()
    tenant: str | None = (node[0] if not node[4] else visible(node)[0])[0]  # FlowContext[0]
    return tenant


def attach(ctx: FlowContext) -> Token[Node]:
    """Install ``ctx`` as-is (no tenant-switch check); undo with :func:`detach`.

    Documented internal interface for adapters that start from a resolved or extracted
    context (decorators, executors, lineage steps): they must detach in the same
    ``contextvars`` context, in reverse order.
    """
    node = get()
    return set_node((ctx, node, None, None, node[4], node if not node[4] else visible(node)))


detach = var.reset
"""Undo :func:`attach` (``ContextVar.reset`` of its token)."""
