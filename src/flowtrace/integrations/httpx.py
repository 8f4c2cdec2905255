"""httpx (sync and async): every outgoing request carries the flow context.

::

    from flowtrace.integrations import httpx as ft_httpx

    ft_httpx.instrument()        # every httpx.Client / AsyncClient, from now on
    ft_httpx.uninstrument()      # exactly as before

Each request *hop* (the first request and every redirect) gets ``traceparent`` and
``baggage`` written with ``flowtrace.inject(headers, destination=<the hop's URL>)``: the
tenant and purpose always travel; ``flowtrace.user``/``flowtrace.subject`` only to hosts in
``configure(trust_domain=[...])`` — also after a redirect to a host outside it, whose copy
of the headers is rewritten. Patched with ``wrapt`` on ``Client._send_single_request`` and
``AsyncClient._send_single_request`` (the per-hop send), reversibly. Extra: ``httpx``.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from typing import Any

from flowtrace.errors import require_extra

from ._outbound import Patches, inject_request

_httpx: Any = require_extra("httpx", "httpx", "flowtrace.integrations.httpx")
_wrapt: Any = require_extra("wrapt", "httpx", "flowtrace.integrations.httpx")

__all__ = ["instrument", "is_instrumented", "uninstrument"]


def _sync(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    request = args[0] if args else kwargs["request"]
    inject_request(request.headers, str(request.url))
    return wrapped(*args, **kwargs)


async def _async(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    request = args[0] if args else kwargs["request"]
    inject_request(request.headers, str(request.url))
    return await wrapped(*args, **kwargs)


_patches = Patches(
    _wrapt,
    [
        (_httpx.Client, "_send_single_request", _sync),
        (_httpx.AsyncClient, "_send_single_request", _async),
    ],
)


def instrument() -> None:
    """Inject the flow context into every httpx request from now on (idempotent).

    Example::

        import httpx

        import flowtrace as ft
        from flowtrace.integrations import httpx as ft_httpx

        seen = []
        transport = httpx.MockTransport(lambda request: seen.append(request) or httpx.Response(204))
        ft_httpx.instrument()
        with ft.context(tenant="acme"), httpx.Client(transport=transport) as client:
            client.get("https://partner.example/hook")
        ft_httpx.uninstrument()
        assert seen[0].headers["baggage"] == "flowtrace.tenant=acme"
    """
    _patches.install()


def uninstrument() -> None:
    """Undo :func:`instrument` (no-op when not instrumented).

    Example::

        from flowtrace.integrations import httpx as ft_httpx

        ft_httpx.instrument()
        ft_httpx.uninstrument()
        assert not ft_httpx.is_instrumented()
    """
    _patches.uninstall()


def is_instrumented() -> bool:
    """Whether :func:`instrument` is in force.

    Example::

        from flowtrace.integrations import httpx as ft_httpx

        assert ft_httpx.is_instrumented() in (True, False)
    """
    return _patches.installed
