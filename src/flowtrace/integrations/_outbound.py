"""Reversible patching of outbound HTTP clients with wrapt (shared by httpx and requests)."""

from __future__ import annotations

import threading
from collections.abc import Callable, MutableMapping
from typing import Any

import flowtrace as ft
from flowtrace.errors import ConfigError

__all__ = ["Patches", "inject_request"]


def inject_request(headers: MutableMapping[str, str], url: str) -> None:
    """Write the current flow context into ``headers`` for a request to ``url``.

    Identity members go only to trust-domain hosts (``destination=url``); stale
    ``flowtrace.`` members already in the headers (a redirect's copy) are replaced.
    """
    ft.inject(headers, destination=url)


class Patches:
    """Wrap ``owner.name`` for each target; undo exactly what was done (thread-safe)."""

    def __init__(self, wrapt: Any, targets: list[tuple[type, str, Callable[..., Any]]]) -> None:
        self._wrapt = wrapt
        self._targets = targets
        self._lock = threading.Lock()
        self._installed: list[tuple[type, str, Any]] = []

    @property
    def installed(self) -> bool:
        return bool(self._installed)

    def install(self) -> None:
        with self._lock:
            if self._installed:
                return  # idempotent: instrumenting twice must not inject twice
            for owner, name, wrapper in self._targets:
                if not hasattr(owner, name):
                    self._undo()
                    raise ConfigError(
                        f"{owner.__module__}.{owner.__qualname__} has no {name!r}: this "
                        "version of the library is not supported by this flowtrace version"
                    )
                original = owner.__dict__[name]
                setattr(owner, name, self._wrapt.FunctionWrapper(original, wrapper))
                self._installed.append((owner, name, original))

    def uninstall(self) -> None:
        with self._lock:
            self._undo()

    def _undo(self) -> None:
        while self._installed:
            owner, name, original = self._installed.pop()
            setattr(owner, name, original)
