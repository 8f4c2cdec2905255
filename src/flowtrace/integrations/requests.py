"""requests: every outgoing request carries the flow context.

::

    from flowtrace.integrations import requests as ft_requests

    ft_requests.instrument()     # every requests.Session (and requests.get, ...) from now on
    ft_requests.uninstrument()

``requests.Session.send`` is called once per hop (the first request and each redirect);
each gets ``traceparent`` and ``baggage`` from ``flowtrace.inject(headers,
destination=<the hop's URL>)``: identity members (``flowtrace.user``,
``flowtrace.subject``) only to hosts in ``configure(trust_domain=[...])``, and a redirect
to a host outside it gets its copied headers rewritten without them. Patched with
``wrapt``, reversibly. Extra: ``requests``.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from typing import Any

from flowtrace.errors import require_extra

from ._outbound import Patches, inject_request

_requests: Any = require_extra("requests", "requests", "flowtrace.integrations.requests")
_wrapt: Any = require_extra("wrapt", "requests", "flowtrace.integrations.requests")

__all__ = ["instrument", "is_instrumented", "uninstrument"]


def _send(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    request = args[0] if args else kwargs["request"]
    inject_request(request.headers, str(request.url))
    return wrapped(*args, **kwargs)


_patches = Patches(_wrapt, [(_requests.Session, "send", _send)])


def instrument() -> None:
    """Inject the flow context into every request sent by requests (idempotent).

    Example::

        import requests

        import flowtrace as ft
        from flowtrace.integrations import requests as ft_requests

        class Recorder(requests.adapters.BaseAdapter):   # stands in for the network
            sent = []

            def send(self, request, **kwargs):
                self.sent.append(request)
                response = requests.Response()
                response.status_code = 204
                return response

            def close(self):
                pass

        session = requests.Session()
        session.mount("https://", Recorder())
        ft_requests.instrument()
        with ft.context(tenant="acme"):
            session.get("https://partner.example/hook")
        ft_requests.uninstrument()
        prepared = Recorder.sent[0]
        assert prepared.headers["baggage"] == "flowtrace.tenant=acme"
    """
    _patches.install()


def uninstrument() -> None:
    """Undo :func:`instrument` (no-op when not instrumented).

    Example::

        from flowtrace.integrations import requests as ft_requests

        ft_requests.instrument()
        ft_requests.uninstrument()
        assert not ft_requests.is_instrumented()
    """
    _patches.uninstall()


def is_instrumented() -> bool:
    """Whether :func:`instrument` is in force.

    Example::

        from flowtrace.integrations import requests as ft_requests

        assert ft_requests.is_instrumented() in (True, False)
    """
    return _patches.installed
