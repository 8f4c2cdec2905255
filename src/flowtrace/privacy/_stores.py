"""The application's side of subject access and erasure: stores it registers.

flowtrace cannot know how a row, a cache key or a search document maps to a person; the
application says so with a small object per store. The name is the store's node in the
data-flow map (``postgresql/app``, ``redis/cache``) so evidence and hooks meet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = ["SubjectStore"]


@runtime_checkable
class SubjectStore(Protocol):
    """A store that can return (``fetch``) and delete (``delete``) one subject's records.

    ``name`` is the store's node name in the map. ``fetch`` returns the subject's records
    as JSON-ready mappings (tokens may stay encrypted: ``restricted`` names the fields
    that hold flowtrace tokens, decrypted under the ``dsar`` purpose for an access
    request). ``delete`` must be idempotent: deleting what is already gone is success.
    A store may leave ``delete`` out (raise ``NotImplementedError``): erasure then lists
    it as a manual task.

    Example::

        from flowtrace import privacy

        class Profiles:
            name = "sqlite/app"
            restricted = ("email",)

            def __init__(self):
                self.rows = {("acme", "u-1"): {"id": "u-1", "email": "tok"}}

            def fetch(self, subject, tenant):
                row = self.rows.get((tenant, subject))
                return [row] if row else []

            def delete(self, subject, tenant):
                self.rows.pop((tenant, subject), None)

        assert isinstance(Profiles(), privacy.SubjectStore)
    """

    @property
    def name(self) -> str: ...

    @property
    def restricted(self) -> Sequence[str]: ...

    def fetch(self, subject: str, tenant: str) -> Sequence[Mapping[str, Any]]: ...

    def delete(self, subject: str, tenant: str) -> None: ...
